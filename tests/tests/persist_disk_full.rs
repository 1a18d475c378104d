//! A cache directory on a full disk (issue 13, item 8): the caches cannot
//! be written, the run's output and status stay exactly as natively, and
//! one warning line (without -v) says which modules and why.
//!
//! The full disk is a 1 MiB tmpfs mounted in a private mount namespace
//! (`unshare -rm`: a user namespace, so no privileges are needed), which
//! python3's caches (about 8 MB) overflow.

use std::process::Command;

use dbi_tests::{dbirun_path, temp_dir, with_private_tmpfs};

#[test]
fn a_full_disk_costs_one_warning_line() {
    let dir = temp_dir("persist-disk-full");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let run = |program: &[&str]| {
        with_private_tmpfs(&mnt, "size=1m", r#"exec "$@""#)
            .arg(dbirun_path())
            .args(["-persist", "-persist_dir"])
            .arg(&mnt)
            .arg("--")
            .args(program)
            .output()
            .expect("unshare (util-linux) runs")
    };
    let native = Command::new("/usr/bin/python3").args(["-c", "import sys; print('out'); sys.exit(4)"]).output().unwrap();
    let o = run(&["/usr/bin/python3", "-c", "import sys; print('out'); sys.exit(4)"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(99), "could not mount a tmpfs in a user and mount namespace: {err}");
    assert_eq!(o.status.code(), native.status.code(), "{err}");
    assert_eq!(o.stdout, native.stdout);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{err}");
    let line = lines[0];
    assert!(line.starts_with("dbirun: warning: persist: could not write the cache of "), "{line}");
    assert!(line.contains("python3") && line.contains("libc.so.6"), "names the modules: {line}");
    assert!(line.to_lowercase().contains("space") || line.contains("28"), "says why: {line}");
}

/// With the cache server (issue 14): the server's writes fail, not the
/// run's. The run's output and status stay as natively and it prints
/// nothing; the server counts the failures (`cachetool server status`),
/// logs them if it can, and publishes nothing half-written.
#[test]
fn a_full_disk_under_the_cache_server() {
    let dir = temp_dir("persist-disk-full-server");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let status_file = dir.path().join("status.json");
    let cachetool = dbirun_path().with_file_name("cachetool");
    let script = r#"d=$1; out=$2; tool=$3; shift 3
"$@"; status=$?
"$tool" --persist-dir "$d" server sync >/dev/null 2>&1
"$tool" --json --persist-dir "$d" server status >"$out"
"$tool" --persist-dir "$d" server stop >/dev/null 2>&1
ls -a "$d"/* >"$out.files"
exit $status"#;
    let program = ["/usr/bin/python3", "-c", "import sys; print('out'); sys.exit(4)"];
    let native = Command::new(program[0]).args(&program[1..]).output().unwrap();
    let o = with_private_tmpfs(&mnt, "size=1m", script)
        .env_remove("DBIRUN_OPTIONS")
        .arg(&mnt)
        .arg(&status_file)
        .arg(&cachetool)
        .arg(dbirun_path())
        .args(["-persist", "-persist_dir"])
        .arg(&mnt)
        .arg("--")
        .args(program)
        .output()
        .expect("unshare (util-linux) runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(99), "could not mount a tmpfs in a user and mount namespace: {err}");
    assert_eq!(o.status.code(), native.status.code(), "{err}");
    assert_eq!(o.stdout, native.stdout);
    assert_eq!(err, "", "the run itself wrote nothing");
    let status: serde_json::Value = serde_json::from_slice(&std::fs::read(&status_file).unwrap()).unwrap();
    assert!(status["hand_overs"].as_u64().unwrap() > 0, "{status}");
    assert!(status["errors"].as_u64().unwrap() > 0, "the failed writes are counted: {status}");
    let files = std::fs::read_to_string(status_file.with_extension("json.files")).unwrap();
    assert!(!files.contains(".tmp."), "no temporary file left: {files}");
}
