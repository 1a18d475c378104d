//! Ahead-of-time translation (issue 15, first step): `dbirun -persist -aot
//! -- PROGRAM` starts the program as a run would (its interpreter loads
//! its libraries) but translates its modules from their symbols instead
//! of running it, into the files a run uses. The first run after it
//! builds far fewer blocks than a cold run and behaves exactly as
//! natively.

use std::path::Path;
use std::process::{Command, Output};

use dbi_tests::{dbirun_path, temp_dir};

fn dbirun(dir: &Path, options: &[&str], program: &[&str]) -> Output {
    Command::new(dbirun_path())
        .args(["-persist", "-no_persist_server", "-persist_dir"])
        .arg(dir)
        .args(options)
        .arg("--")
        .args(program)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (blocks built, blocks loaded) of the last run recorded in `dir`.
fn last_run(dir: &Path) -> (u64, u64) {
    let uid = unsafe { libc::getuid() };
    let cachetool = dbirun_path().with_file_name("cachetool");
    let out = Command::new(cachetool).arg("--dir").arg(dir.join(uid.to_string())).args(["--json", "runs"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = &runs[0];
    (last["blocks_built"].as_u64().unwrap(), last["blocks_loaded"].as_u64().unwrap())
}

#[test]
fn after_aot_the_first_run_builds_few_blocks() {
    let program = ["/usr/bin/ls", "-la", "/usr/bin"];
    let native = Command::new(program[0]).args(&program[1..]).output().unwrap();
    // Cold, for comparison.
    let cold_dir = temp_dir("aot-cold");
    let cold = dbirun(cold_dir.path(), &[], &program);
    assert_eq!(cold.stdout, native.stdout);
    let (cold_built, _) = last_run(cold_dir.path());
    // Ahead of time: the program does not run (no output), status 0.
    let dir = temp_dir("aot");
    let aot = dbirun(dir.path(), &["-aot", "-v"], &program);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    assert!(aot.stdout.is_empty(), "the program did not run: {}", text(&aot.stdout));
    let err = text(&aot.stderr);
    assert!(err.contains("aot: /usr/bin/ls: ") && err.contains("libc.so.6: "), "each module translated:\n{err}");
    // The first run: exactly as natively, from the files.
    let first = dbirun(dir.path(), &[], &program);
    assert_eq!(first.status.code(), native.status.code(), "{}", text(&first.stderr));
    assert_eq!(first.stdout, native.stdout);
    assert_eq!(first.stderr, native.stderr);
    let (built, loaded) = last_run(dir.path());
    eprintln!("ls -la /usr/bin: cold built {cold_built}; after AOT built {built}, loaded {loaded}");
    assert!(built * 5 < cold_built, "after AOT the run builds at most a fifth of a cold run's blocks: {built} of {cold_built}");
}

#[test]
fn aot_needs_persist() {
    let out = Command::new(dbirun_path()).args(["-aot", "--", "/bin/true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("dbirun: -aot translates into the persisted cache: it needs -persist"), "{}", text(&out.stderr));
}

#[test]
fn cachetool_aot_translates_programs() {
    let dir = temp_dir("aot-cachetool");
    let cachetool = dbirun_path().with_file_name("cachetool");
    let out = Command::new(&cachetool).arg("--persist-dir").arg(dir.path()).args(["aot", "/usr/bin/ls", "/usr/bin/sort"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("/usr/bin/ls: translated in ") && said.contains("/usr/bin/sort: translated in "), "{said}");
    let native = Command::new("/usr/bin/sort").arg("/etc/passwd").output().unwrap();
    let first = dbirun(dir.path(), &[], &["/usr/bin/sort", "/etc/passwd"]);
    assert_eq!(first.stdout, native.stdout);
    let (built, loaded) = last_run(dir.path());
    assert!(built * 20 < loaded, "sort ran from the files: {built} built, {loaded} loaded");
    let bad = Command::new(&cachetool).arg("--persist-dir").arg(dir.path()).args(["aot", "/nonexistent/prog"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).starts_with("cachetool: aot /nonexistent/prog: "), "{}", text(&bad.stderr));
}

/// `cachetool aot --client`: the files carry that client's
/// instrumentation, so a run with the client starts warm and its output
/// is a cold run's.
#[test]
fn cachetool_aot_with_a_client() {
    let dir = temp_dir("aot-cachetool-client");
    let cachetool = dbirun_path().with_file_name("cachetool");
    let out = Command::new(&cachetool)
        .arg("--persist-dir")
        .arg(dir.path())
        .args(["aot", "--client", "bbcount -top 3", "/usr/bin/sort"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = [temp_dir("aot-client-logs-cold"), temp_dir("aot-client-logs-first")];
    let cold_dir = temp_dir("aot-client-cold");
    let mut reports = Vec::new();
    for (cache, logs) in [(cold_dir.path(), &logs[0]), (dir.path(), &logs[1])] {
        let run = dbirun(cache, &["-logdir", logs.path().to_str().unwrap(), "-c", "bbcount", "-top", "3"], &["/usr/bin/sort", "/etc/passwd"]);
        assert!(run.status.success(), "{}", text(&run.stderr));
        let files: Vec<_> = std::fs::read_dir(logs.path()).unwrap().flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        reports.push(std::fs::read_to_string(&files[0]).unwrap());
    }
    let (built, loaded) = last_run(dir.path());
    assert!(built * 20 < loaded, "the bbcount run started from the AOT files: {built} built, {loaded} loaded");
    // Execution counts, not translations: the report is the cold run's
    // (addresses aside: modules move between runs).
    let counts = |r: &str| r.lines().take(3).map(String::from).collect::<Vec<_>>();
    assert_eq!(counts(&reports[0]), counts(&reports[1]));
    let bad = Command::new(&cachetool).arg("--persist-dir").arg(dir.path()).args(["aot", "--client", "nosuch", "/usr/bin/sort"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).starts_with("cachetool: aot /usr/bin/sort: "), "{}", text(&bad.stderr));
}

/// A program whose section headers point past its end and whose unwind
/// table claims four billion entries: translated from what is sound, and
/// run as natively.
#[test]
fn lying_elf_metadata_costs_blocks_not_correctness() {
    let dir = temp_dir("aot-lying");
    let program = dir.path().join("ls-lying");
    let mut bytes = std::fs::read("/usr/bin/ls").unwrap();
    let len = bytes.len() as u64;
    bytes[40..48].copy_from_slice(&(len * 2).to_le_bytes());
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(bytes[56..58].try_into().unwrap()) as usize;
    let mut lied = false;
    for i in 0..phnum {
        let p = phoff + i * 56;
        if u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap()) == 0x6474_e550 {
            let off = u64::from_le_bytes(bytes[p + 8..p + 16].try_into().unwrap()) as usize;
            bytes[off + 8..off + 12].copy_from_slice(&u32::MAX.to_le_bytes());
            lied = true;
        }
    }
    assert!(lied, "ls has an unwind table");
    std::fs::write(&program, &bytes).unwrap();
    std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cache = dir.path().join("cache");
    let aot = dbirun(&cache, &["-aot"], &[program.to_str().unwrap()]);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    let native = Command::new(&program).args(["-la", "/usr/bin"]).output().unwrap();
    let run = dbirun(&cache, &[], &[program.to_str().unwrap(), "-la", "/usr/bin"]);
    assert_eq!(run.status.code(), native.status.code(), "{}", text(&run.stderr));
    assert_eq!(run.stdout, native.stdout);
}
