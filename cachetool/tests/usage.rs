//! cachetool as users meet it on the command line: one-line usage errors,
//! pipes closed early, ages spelled without ambiguity, and prune able to
//! remove every problem verify reports.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;

fn cachetool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachetool"))
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    for args in [
        &["frobnicate"][..],
        &["inspect"],
        &["list", "--bogus"],
        &["prune", "--older-than"],
        &["prune", "--older-than", "30x"],
        &["prune", "--older-than", "90m"],
    ] {
        let out = c.tool(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("cachetool: ") && err.contains("--help"), "{args:?}: {err}");
    }
    // What is missing is named.
    assert!(text(&c.tool(&["inspect"]).stderr).contains("<WHAT>"));
    // `m` could be minutes or months: refused, with both spellings offered.
    let err = text(&c.tool(&["prune", "--older-than", "90m"]).stderr);
    assert!(err.contains("ambiguous") && err.contains("90min"), "{err}");
    assert!(text(&c.tool(&["prune", "--dry-run", "--older-than", "90min"]).stdout).contains("would remove 0 files"));
    // Help still prints in full, exit 0.
    let out = c.tool(&["--help"]);
    assert!(out.status.success() && text(&out.stdout).contains("Usage:"));
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/ls", &["/"]);
    for args in [&["list"][..], &["stats"], &["--json", "verify"], &["prune", "--dry-run", "--all"]] {
        let mut child = cachetool()
            .arg("--dir")
            .arg(c.dir())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line is written, as
        // `| head -0` does.
        drop(child.stdout.take());
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(
            status.signal() == Some(libc::SIGPIPE) || status.success(),
            "{args:?}: {status:?} (a panic exits 101)"
        );
    }
}

#[test]
fn prune_removes_what_verify_reports() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    c.run_ok(&[], "/usr/bin/ls", &["/"]);
    let name = c.file_of("true");
    // Let the index record the file as it is now (quick checks only).
    c.tool_ok(&["list"]);
    // Damage one byte of the code zone: only a full read of the file sees it.
    let shown = c.json(&["inspect", c.dir().join(&name).to_str().unwrap()]);
    let zones = shown[0]["inspection"]["zones"].as_array().unwrap().clone();
    let x = zones.iter().find(|z| z["kind"] == "X").expect("an X zone");
    let at = x["offset"].as_u64().unwrap() as usize + 16;
    let path = c.dir().join(&name);
    let mut bytes = fs::read(&path).unwrap();
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let out = c.tool(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("{name}: corrupt")), "{}", text(&out.stdout));
    let removed = c.tool_ok(&["prune", "--corrupt"]);
    assert!(removed.contains(&format!("removed {name} ")), "{removed}");
    assert!(!path.exists());
    let out = c.tool(&["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    // The same damage is taken by --stale, which the docs say includes
    // corrupt files.
    c.run_ok(&[], "/usr/bin/true", &[]);
    let name = c.file_of("true");
    let path = c.dir().join(&name);
    let mut bytes = fs::read(&path).unwrap();
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let removed = c.tool_ok(&["prune", "--stale"]);
    assert!(removed.contains(&format!("removed {name} ")), "{removed}");
    assert!(c.tool(&["verify"]).status.success());
    // ls's file, valid, stays.
    assert!(c.dir().join(c.file_of("ls")).exists());
}

#[test]
fn modules_are_found_by_any_name_that_leads_to_their_file() {
    let c = Cache::new();
    let tmp = tempfile::TempDir::new().unwrap();
    // Run through a symlink and by its real path: one module, known by
    // its real path, with one cache file.
    let link = tmp.path().join("my-true");
    std::os::unix::fs::symlink("/usr/bin/true", &link).unwrap();
    c.run_ok(&[], link.to_str().unwrap(), &[]);
    c.run_ok(&[], "/usr/bin/true", &[]);
    let real = fs::canonicalize("/usr/bin/true").unwrap();
    let name = c.file_of("true");
    for what in [link.to_str().unwrap(), real.to_str().unwrap(), "true"] {
        let shown = c.tool_ok(&["inspect", what]);
        assert!(shown.contains(&name) && shown.contains(&format!("module:           {}", real.display())), "inspect {what}: {shown}");
    }
    // From another directory, by a relative name, the file is valid (not
    // an orphan): the index holds the real path.
    let out = Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(c.dir()).arg("verify").current_dir(tmp.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    // A module with no cache: said so, with the near matches.
    let out = c.tool(&["inspect", "/bin/false"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no cache for this module"), "{err}");
    let out = c.tool(&["inspect", "libc.so.7"]);
    let err = text(&out.stderr);
    assert!(err.contains("no such cache file or module") && err.contains("libc.so.6"), "{err}");

    // prune --module takes the base name and the real path too, and says
    // when nothing matched.
    let out = c.tool(&["prune", "--dry-run", "--module", "libc.so.6", "--module", link.to_str().unwrap(), "--module", "nosuch"]);
    assert!(out.status.success());
    let said = text(&out.stdout);
    assert!(said.contains("would remove 2 files"), "{said}");
    assert!(text(&out.stderr).contains("no cache file of a module named nosuch"), "{}", text(&out.stderr));
}

#[test]
fn list_fits_100_columns_and_counts_temporary_files() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/python3", &["-c", "pass"]);
    // A temporary copy a killed writer left behind.
    let name = c.file_of("libc.so.6");
    fs::write(c.dir().join(format!("{name}.tmp.{}.00000000000000ff", 1 << 23)), vec![0u8; 300_000]).unwrap();
    let listed = c.tool_ok(&["list"]);
    for line in listed.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
    let last = listed.lines().last().unwrap();
    assert!(last.contains("1 temporary files, 293.0 KiB"), "{last}");
    let wide = c.tool_ok(&["list", "--wide"]);
    assert!(wide.contains(&name) && wide.contains("clients none"), "{wide}");
    let stats = c.tool_ok(&["stats"]);
    assert!(stats.contains("temporary files: 1 (293.0 KiB;"), "{stats}");
}

#[test]
fn runs_shows_the_history_and_stats_zero_forgets_it() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    c.run_ok(&[], "/bin/sh", &["-c", "exit 0"]);
    let shown = c.tool_ok(&["runs"]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two runs, newest first:\n{shown}");
    assert!(lines[0].starts_with("WHEN") && lines[1].contains("/bin/sh -c 'exit 0'") && lines[2].contains("/usr/bin/true"), "{shown}");
    assert!(lines[1].contains("exit 0"), "{shown}");
    let json = c.json(&["runs", "--last", "1"]);
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["command"], "/bin/sh -c 'exit 0'");
    let out = c.tool_ok(&["stats", "--zero"]);
    assert!(out.contains("forgot 2 recorded runs") && out.contains("runs recorded:   0"), "{out}");
    assert!(c.tool_ok(&["runs"]).contains("no runs recorded"));
    // The files stay, and keep being used.
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert_eq!(c.count("SELECT count(*) FROM runs"), 1);
    assert!(c.dir().join(c.file_of("true")).exists());
}

#[test]
fn a_size_budget_is_kept_after_every_run() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    assert!(c.tool_ok(&["config"]).contains("max-size = none"));
    c.tool_ok(&["config", "max-size", "600K"]);
    assert!(c.tool_ok(&["config", "max-size"]).contains("max-size = 600K"));
    assert_eq!(c.tool(&["config", "max-size", "lots"]).status.code(), Some(1));
    // python3's caches are several MB: the run's recording trims the
    // directory back under the budget, least recently used first.
    // true's file was last used an hour ago (times are in seconds).
    let true_file = c.file_of("true");
    c.db().execute("UPDATE cache_files SET last_used = coalesce(last_used, created) - 3600, created = created - 3600", []).unwrap();
    c.run_ok(&[], "/usr/bin/python3", &["-c", "pass"]);
    let total: u64 = c.files().iter().map(|f| fs::metadata(c.dir().join(f)).unwrap().len()).sum();
    assert!(total <= 600 << 10, "{total} bytes kept: {:?}", c.files());
    assert!(!c.files().contains(&true_file), "the least recently used file went first: {:?}", c.files());
    assert_eq!(c.count("SELECT count(*) FROM cache_files"), c.files().len() as i64, "the index follows");
    assert_eq!(c.count("SELECT coalesce(sum(file_size), 0) FROM cache_files"), total as i64);
    // Without a budget, nothing is trimmed.
    c.tool_ok(&["config", "max-size", "none"]);
    c.run_ok(&[], "/usr/bin/python3", &["-c", "pass"]);
    let total: u64 = c.files().iter().map(|f| fs::metadata(c.dir().join(f)).unwrap().len()).sum();
    assert!(total > 600 << 10, "{total}");
}

/// A program run by a relative name (`./prog`, as `make check` does) is
/// recorded by its real path: from another directory its file is valid,
/// not an orphan; stale pruning leaves it; an export/import keeps it; and
/// running it by its absolute path uses the same file.
#[test]
fn a_program_run_as_dot_slash_is_the_same_module_everywhere() {
    let c = Cache::new();
    let work = tempfile::TempDir::new().unwrap();
    let prog = work.path().join("prog");
    fs::write(work.path().join("prog.c"), "int main(void) { return 0; }\n").unwrap();
    assert!(Command::new("gcc").arg("-o").arg(&prog).arg(work.path().join("prog.c")).status().unwrap().success());
    let out = Command::new(dbirun_path())
        .args(["-persist", "-persist_dir"])
        .arg(&c.base)
        .args(["--", "./prog"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = c.file_of("prog");
    let elsewhere = tempfile::TempDir::new().unwrap();
    let tool = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(c.dir()).args(args).current_dir(elsewhere.path()).output().unwrap();
    let out = tool(&["verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let out = tool(&["prune", "--stale", "--dry-run"]);
    assert!(!text(&out.stdout).contains(&name), "{}", text(&out.stdout));
    let listed = c.tool_ok(&["list", "--wide"]);
    assert!(listed.contains(&format!("{} ", prog.display())), "recorded by its real path: {listed}");
    // The absolute path finds the same file, and uses it.
    c.run_ok(&["-v"], prog.to_str().unwrap(), &[]);
    assert_eq!(c.file_of("prog"), name);
    let bundle = work.path().join("b.tar.zst");
    c.tool_ok(&["export", bundle.to_str().unwrap()]);
    let other = Cache::new();
    let out = Command::new(env!("CARGO_BIN_EXE_cachetool")).arg("--dir").arg(other.dir()).args(["import", bundle.to_str().unwrap()]).current_dir(elsewhere.path()).output().unwrap();
    assert!(text(&out.stdout).contains(&format!("took {name}")), "{}", text(&out.stdout));
}
