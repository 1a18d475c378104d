//! Ahead-of-time translation (issue 15, first step): `dbirun -persist -aot
//! -- PROGRAM` starts the program as a run would (its interpreter loads
//! its libraries) but translates its modules from their symbols instead
//! of running it, into the files a run uses. The first run after it
//! builds far fewer blocks than a cold run and behaves exactly as
//! natively.

use std::path::Path;
use std::process::{Command, Output};

use dbi_tests::{dbirun_path, temp_dir};

fn dbirun_command(dir: &Path, options: &[&str], program: &[&str]) -> Command {
    let mut c = Command::new(dbirun_path());
    c.args(["-persist", "-no_persist_server", "-persist_dir"]).arg(dir).args(options).arg("--").args(program);
    c
}

fn dbirun(dir: &Path, options: &[&str], program: &[&str]) -> Output {
    dbirun_command(dir, options, program).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The per-user cache directory dbirun writes into under `base`.
fn user_dir(base: &Path) -> std::path::PathBuf {
    base.join(unsafe { libc::getuid() }.to_string())
}

/// The cachetool built beside dbirun.
fn cachetool() -> Command {
    Command::new(dbirun_path().with_file_name("cachetool"))
}

/// (blocks built, blocks loaded) of the last run recorded in `dir`.
fn last_run(dir: &Path) -> (u64, u64) {
    let out = cachetool().arg("--dir").arg(user_dir(dir)).args(["--json", "runs"]).output().unwrap();
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
    let out = cachetool().arg("--persist-dir").arg(dir.path()).args(["aot", "/usr/bin/ls", "/usr/bin/sort"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("/usr/bin/ls: translated in ") && said.contains("/usr/bin/sort: translated in "), "{said}");
    let native = Command::new("/usr/bin/sort").arg("/etc/passwd").output().unwrap();
    let first = dbirun(dir.path(), &[], &["/usr/bin/sort", "/etc/passwd"]);
    assert_eq!(first.stdout, native.stdout);
    let (built, loaded) = last_run(dir.path());
    assert!(built * 20 < loaded, "sort ran from the files: {built} built, {loaded} loaded");
    let bad = cachetool().arg("--persist-dir").arg(dir.path()).args(["aot", "/nonexistent/prog"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).starts_with("cachetool: aot /nonexistent/prog: "), "{}", text(&bad.stderr));
}

/// `cachetool aot --client`: the files carry that client's
/// instrumentation, so a run with the client starts warm and its output
/// is a cold run's.
#[test]
fn cachetool_aot_with_a_client() {
    let dir = temp_dir("aot-cachetool-client");
    let out = cachetool()
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
    let bad = cachetool().arg("--persist-dir").arg(dir.path()).args(["aot", "--client", "nosuch", "/usr/bin/sort"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).starts_with("cachetool: aot /usr/bin/sort: "), "{}", text(&bad.stderr));
}

/// The JSON `cachetool inspect` prints for the module `module`'s file.
fn inspect(dir: &Path, module: &str) -> serde_json::Value {
    let out = cachetool().arg("--dir").arg(user_dir(dir)).args(["--json", "inspect", module]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["inspection"]["summary"].clone()
}

/// The value of the `-stats` line `label` dbirun printed.
fn stat(stderr: &str, label: &str) -> u64 {
    let line = stderr.lines().find(|l| l.trim_start().starts_with(&format!("{label}:"))).unwrap_or_else(|| panic!("no {label:?} in\n{stderr}"));
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

/// Files tell blocks translated ahead of time from blocks runs reached,
/// through merges both ways; `-stats` counts the ahead-of-time blocks
/// loaded and used.
#[test]
fn files_and_stats_tell_aot_blocks_apart() {
    let dir = temp_dir("aot-provenance");
    let program = ["/usr/bin/sort", "/etc/passwd"];
    let cold = dbirun(dir.path(), &["-stats"], &program);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    let before = inspect(dir.path(), "sort");
    assert_eq!(before["ahead_of_time_blocks"], 0, "{before}");
    let from_runs = before["blocks"].as_u64().unwrap();
    let aot = dbirun(dir.path(), &["-stats", "-aot"], &program[..1]);
    assert!(aot.status.success(), "{}", text(&aot.stderr));
    let after = inspect(dir.path(), "sort");
    let (blocks, ahead) = (after["blocks"].as_u64().unwrap(), after["ahead_of_time_blocks"].as_u64().unwrap());
    assert_eq!(blocks - ahead, from_runs, "the run's blocks keep their origin: {after}");
    assert!(ahead > from_runs, "{after}");
    // Paths the cold run did not take: they come from the AOT blocks.
    let first = dbirun(dir.path(), &["-stats"], &["/usr/bin/sort", "-n", "-r", "-u", "-t:", "-k3", "/etc/passwd"]);
    assert!(first.status.success());
    let err = text(&first.stderr);
    let (loaded, aot_loaded, aot_used) = (stat(&err, "blocks loaded"), stat(&err, "AOT blocks loaded"), stat(&err, "AOT blocks used"));
    assert!(aot_loaded > 0 && aot_loaded < loaded, "the run loaded both kinds:\n{err}");
    assert!(aot_used > 0 && aot_used <= stat(&err, "blocks registered"), "{err}");
}

/// Rewrites every cache file in `dir` as a dbirun of another runtime
/// version would have written it (the key's runtime version changed):
/// what an upgrade leaves behind.
fn age_files(dir: &Path) {
    for e in std::fs::read_dir(user_dir(dir)).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".dpc") {
            continue;
        }
        let file = dbi_tests::persist::Aligned::read(&e.path());
        let v = file.validate().unwrap();
        let parts = persist::merge::Parts::of(&v).unwrap();
        let mut key = v.key.clone();
        key.runtime_version ^= 0x5a5a_5a5a;
        std::fs::write(e.path(), persist::write::build(&key, &parts.index, &parts.zone_refs())).unwrap();
    }
}

/// After an upgrade, `cachetool aot --from-index` translates every module
/// the files know, for each configuration they were built with (here no
/// client, and bbcount), from the blocks they hold: the next runs load
/// at least 95% of their blocks and behave as before.
#[test]
fn aot_from_index_makes_runs_warm_after_an_upgrade() {
    let dir = temp_dir("aot-from-index");
    let logs = [temp_dir("aot-from-index-logs-before"), temp_dir("aot-from-index-logs-after")];
    // A fixed buffer and one thread: by default sort sizes its buffer
    // from the memory free at the moment (sysinfo), and under load another
    // size took another path (2 blocks, 5 instructions more, once in CI).
    let sort = ["/usr/bin/sort", "-S", "1M", "--parallel=1", "-t:", "-k3", "-n", "/etc/passwd"];
    let native = Command::new(sort[0]).args(&sort[1..]).output().unwrap();
    let bbcount = |logs: &Path| vec!["-logdir".to_string(), logs.display().to_string(), "-c".into(), "bbcount".into(), "-top".into(), "3".into()];
    let before = dbirun(dir.path(), &[], &sort);
    assert_eq!(before.stdout, native.stdout);
    let opts = bbcount(logs[0].path());
    let with_client = dbirun(dir.path(), &opts.iter().map(String::as_str).collect::<Vec<_>>(), &sort);
    assert_eq!(with_client.stdout, native.stdout);
    age_files(dir.path());

    let out = cachetool().arg("--dir").arg(user_dir(dir.path())).args(["aot", "--from-index"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("no clients: ") && said.contains("-c bbcount -top 3: "), "one translation per configuration:\n{said}");

    let after = dbirun(dir.path(), &[], &sort);
    assert_eq!(after.stdout, native.stdout);
    assert_eq!(after.status.code(), native.status.code());
    let (built, loaded) = last_run(dir.path());
    assert!(built * 20 <= built + loaded, "no client: {built} built, {loaded} loaded");
    let opts = bbcount(logs[1].path());
    let with_client = dbirun(dir.path(), &opts.iter().map(String::as_str).collect::<Vec<_>>(), &sort);
    assert_eq!(with_client.stdout, native.stdout);
    let (built, loaded) = last_run(dir.path());
    assert!(built * 20 <= built + loaded, "bbcount: {built} built, {loaded} loaded");
    let whole = |logs: &Path| {
        let f = std::fs::read_dir(logs).unwrap().flatten().next().expect("bbcount's file").path();
        std::fs::read_to_string(f).unwrap()
    };
    let report = |logs: &Path| whole(logs).lines().take(3).map(String::from).collect::<Vec<_>>();
    // On a mismatch, the whole reports, top blocks included, say where.
    assert_eq!(
        report(logs[0].path()),
        report(logs[1].path()),
        "bbcount counts the same after the re-translation; before:\n{}\nafter:\n{}",
        whole(logs[0].path()),
        whole(logs[1].path())
    );
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

/// A copy of `from` at `to`, executable, with `edit` applied to its bytes.
fn edited_copy(from: &str, to: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(from).unwrap();
    edit(&mut bytes);
    std::fs::write(to, &bytes).unwrap();
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The blocks `-aot -v` says it translated for the module `name`.
fn aot_blocks(stderr: &str, name: &str) -> u64 {
    let line = stderr.lines().find(|l| l.starts_with("dbirun: aot: ") && l.contains(name) && l.ends_with(" blocks"));
    let line = line.unwrap_or_else(|| panic!("no aot line for {name}:\n{stderr}"));
    line.rsplit(' ').nth(1).unwrap().parse().unwrap()
}

/// What cannot be translated is refused with one line each, and the
/// programs after it are translated: a file that is not ELF, an ELF file
/// of another machine.
#[test]
fn cachetool_aot_says_what_it_cannot_translate_and_goes_on() {
    let dir = temp_dir("aot-refused");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not a program\n").unwrap();
    std::fs::set_permissions(&text_file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let arm = dir.path().join("true-aarch64");
    // e_machine: EM_AARCH64.
    edited_copy("/usr/bin/true", &arm, |b| b[18..20].copy_from_slice(&183u16.to_le_bytes()));
    let cache = dir.path().join("cache");
    let out = cachetool()
        .arg("--persist-dir")
        .arg(&cache)
        .arg("aot")
        .args([&text_file, &arm])
        .arg("/usr/bin/sort")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one line per program refused:\n{err}");
    assert!(lines[0].starts_with(&format!("cachetool: aot {}: ", text_file.display())), "{err}");
    assert!(lines[1].starts_with(&format!("cachetool: aot {}: ", arm.display())), "{err}");
    assert!(text(&out.stdout).contains("/usr/bin/sort: translated in "), "{}", text(&out.stdout));
    let (built, loaded) = {
        let native = Command::new("/usr/bin/sort").arg("/etc/passwd").output().unwrap();
        let run = dbirun(&cache, &[], &["/usr/bin/sort", "/etc/passwd"]);
        assert_eq!(run.stdout, native.stdout);
        last_run(&cache)
    };
    assert!(built * 20 < loaded, "sort was translated: {built} built, {loaded} loaded");
}

/// A program without section headers (no symbol tables to read) is
/// translated from its unwind table, which the program headers locate.
#[test]
fn a_program_without_sections_is_translated_from_its_unwind_table() {
    let dir = temp_dir("aot-no-sections");
    let program = dir.path().join("ls-no-sections");
    edited_copy("/usr/bin/ls", &program, |b| {
        b[40..48].fill(0); // e_shoff
        b[60..64].fill(0); // e_shnum, e_shstrndx
    });
    let cache = dir.path().join("cache");
    let aot = dbirun(&cache, &["-aot", "-v"], &[program.to_str().unwrap()]);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    let blocks = aot_blocks(&text(&aot.stderr), "ls-no-sections");
    assert!(blocks > 1000, "ls's functions come from its unwind table: {blocks} blocks");
    let native = Command::new(&program).args(["-la", "/usr/bin"]).output().unwrap();
    let run = dbirun(&cache, &[], &[program.to_str().unwrap(), "-la", "/usr/bin"]);
    assert_eq!(run.status.code(), native.status.code(), "{}", text(&run.stderr));
    assert_eq!(run.stdout, native.stdout);
}

/// An unwind table whose every function start is off by one byte (each
/// a guess in the middle of an instruction): the blocks built from them
/// are never entered at those addresses by a run, which behaves as
/// natively.
#[test]
fn function_starts_that_lie_cost_blocks_not_correctness() {
    let dir = temp_dir("aot-off-by-one");
    let program = dir.path().join("ls-off-by-one");
    edited_copy("/usr/bin/ls", &program, |b| {
        let phoff = u64_at(b, 32) as usize;
        let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
        let hdr = (0..phnum)
            .map(|i| phoff + i * 56)
            .find(|&p| u32::from_le_bytes(b[p..p + 4].try_into().unwrap()) == 0x6474_e550)
            .map(|p| u64_at(b, p + 8) as usize)
            .expect("ls has an unwind table");
        // version, eh_frame_ptr_enc, fde_count_enc, table_enc; then the
        // frame pointer and count (4 bytes each), then (start, fde) pairs.
        assert_eq!(&b[hdr..hdr + 4], &[1, 0x1b, 0x03, 0x3b]);
        let count = u32::from_le_bytes(b[hdr + 8..hdr + 12].try_into().unwrap()) as usize;
        for i in 0..count {
            let at = hdr + 12 + i * 8;
            let start = i32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            b[at..at + 4].copy_from_slice(&(start + 1).to_le_bytes());
        }
    });
    let cache = dir.path().join("cache");
    let aot = dbirun(&cache, &["-aot", "-v"], &[program.to_str().unwrap()]);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    let native = Command::new(&program).args(["-la", "/usr/bin"]).output().unwrap();
    let run = dbirun(&cache, &[], &[program.to_str().unwrap(), "-la", "/usr/bin"]);
    assert_eq!(run.status.code(), native.status.code(), "{}", text(&run.stderr));
    assert_eq!(run.stdout, native.stdout);
    assert_eq!(run.stderr, native.stderr);
}

/// A library's initialiser (run by ld.so before the program's entry,
/// where AOT stops) replaces the program's file: what was translated is
/// the old file's code, so no file is published under the new file's
/// content, and a run of the new program behaves as natively.
#[test]
fn a_program_replaced_while_aot_runs_is_not_persisted() {
    let dir = temp_dir("aot-replaced");
    let d = dir.path();
    std::fs::write(
        d.join("swap.c"),
        "#include <stdio.h>\n#include <stdlib.h>\n\
         __attribute__((constructor)) static void swap(void) {\n\
           const char *from = getenv(\"SWAP_FROM\"), *to = getenv(\"SWAP_TO\");\n\
           if (from && to) rename(from, to);\n}\n",
    )
    .unwrap();
    std::fs::write(d.join("prog.c"), "#include <stdio.h>\nint main(void) { puts(\"old\"); return 0; }\n").unwrap();
    std::fs::write(d.join("new.c"), "#include <stdio.h>\nint main(void) { puts(\"new\"); return 3; }\n").unwrap();
    let gcc = |args: &[&str]| {
        let out = Command::new("gcc").current_dir(d).args(args).output().unwrap();
        assert!(out.status.success(), "gcc {args:?}: {}", text(&out.stderr));
    };
    gcc(&["-shared", "-fPIC", "-o", "libswap.so", "swap.c"]);
    gcc(&["-o", "prog", "prog.c", "-L.", "-Wl,--no-as-needed", "-lswap", "-Wl,-rpath,$ORIGIN"]);
    gcc(&["-o", "prog.new", "new.c", "-L.", "-Wl,--no-as-needed", "-lswap", "-Wl,-rpath,$ORIGIN"]);
    let prog = d.join("prog");
    let cache = d.join("cache");
    let aot = Command::new(dbirun_path())
        .args(["-persist", "-no_persist_server", "-v", "-aot", "-persist_dir"])
        .arg(&cache)
        .arg("--")
        .arg(&prog)
        .env("SWAP_FROM", d.join("prog.new"))
        .env("SWAP_TO", &prog)
        .output()
        .unwrap();
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    assert!(!d.join("prog.new").exists(), "the initialiser replaced the program");
    let published: Vec<String> = std::fs::read_dir(user_dir(&cache))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dpc"))
        .collect();
    assert!(published.iter().any(|n| n.starts_with("libswap.so-")), "the rest is persisted: {published:?}");
    assert!(!published.iter().any(|n| n.starts_with("prog-")), "nothing for the replaced program: {published:?}");
    let run = dbirun(&cache, &[], &[prog.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert_eq!(text(&run.stdout), "new\n");
}

/// AOT killed while it writes its files (SIGKILL to its process group as
/// soon as the first one appears, temporary or published): every file it
/// left under a cache file's name is whole and valid.
#[test]
fn an_interrupted_aot_publishes_nothing_half_written() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("aot-killed");
    let cc1 = Command::new("gcc").arg("-print-prog-name=cc1").output().unwrap();
    let cc1 = text(&cc1.stdout).trim().to_string();
    let mut child = Command::new(dbirun_path())
        .args(["-persist", "-no_persist_server", "-aot", "-persist_dir"])
        .arg(dir.path())
        .arg("--")
        .arg(&cc1)
        .process_group(0)
        .spawn()
        .unwrap();
    let files = user_dir(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let writing = || std::fs::read_dir(&files).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(".dpc")));
    while !writing() {
        assert!(std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(), "AOT of cc1 wrote nothing");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL), "AOT of cc1 was still running");
    let out = cachetool().arg("--dir").arg(user_dir(dir.path())).args(["--json", "verify"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)));
    assert_eq!(v["problems"], 0, "{v}");
}

/// A module of hundreds of thousands of blocks reports its progress with
/// `-aot_progress` (cachetool's bar reads it, and keeps it off its own
/// output).
#[test]
fn big_modules_report_progress() {
    let dir = temp_dir("aot-progress");
    let out = dbirun(dir.path(), &["-aot", "-aot_progress"], &["/usr/bin/python3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let steps: Vec<&str> = err.lines().filter(|l| l.starts_with("dbirun: aot: progress: /usr/bin/python3")).collect();
    assert!(steps.len() >= 5, "python3.11 has over 80,000 blocks:\n{err}");
    assert!(steps[0].ends_with(": 16384 blocks") && steps[1].ends_with(": 32768 blocks"), "{steps:?}");
    let out = cachetool().arg("--persist-dir").arg(dir.path()).args(["aot", "/usr/bin/python3"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("progress"), "{}", text(&out.stderr));
}

/// A library named alone is translated without a program that loads it
/// (the runtime maps it for a stand-in program).
#[test]
fn cachetool_aot_translates_a_library_alone() {
    let dir = temp_dir("aot-library");
    let lib = std::fs::canonicalize("/usr/lib/x86_64-linux-gnu/libexpat.so.1").unwrap();
    let out = cachetool().arg("--persist-dir").arg(dir.path()).arg("aot").arg(&lib).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = inspect(dir.path(), lib.to_str().unwrap());
    let blocks = summary["blocks"].as_u64().unwrap();
    assert!(blocks > 1000 && summary["ahead_of_time_blocks"] == blocks, "{summary}");
    // python3 loads libexpat at start-up: it uses the file.
    let run = dbirun(dir.path(), &["-v"], &["/usr/bin/python3", "-c", "import pyexpat; print(pyexpat.EXPAT_VERSION)"]);
    let native = Command::new("/usr/bin/python3").args(["-c", "import pyexpat; print(pyexpat.EXPAT_VERSION)"]).output().unwrap();
    assert_eq!(run.stdout, native.stdout);
    let err = text(&run.stderr);
    assert!(err.lines().any(|l| l.starts_with("dbirun: persist: using ") && l.contains("libexpat")), "{err}");
}

/// Code that is data and data that is code: a switch compiled to a jump
/// table (its cases reached only through the table), and bytes of data
/// placed in the text after a jump (which the in-function guess decodes
/// as code). The first run after AOT takes its cases from the files and
/// behaves as natively whatever the input.
#[test]
fn jump_tables_and_data_in_code() {
    let dir = temp_dir("aot-data-in-code");
    let d = dir.path();
    let mut src = String::from("#include <stdio.h>\n#include <stdlib.h>\n__attribute__((noinline)) int pick(int x) {\n  switch (x) {\n");
    for case in 0..24 {
        src.push_str(&format!("  case {case}: return x * {} + {};\n", case + 3, case * 7));
    }
    src.push_str("  default: return -1;\n  }\n}\n");
    // Data in .text after an unconditional jump, inside a function.
    src.push_str(
        "__attribute__((noinline)) int hop(int x) {\n\
           __asm__ volatile(\"jmp 1f\\n.byte 0x0f,0x0b,0xff,0xff,0x48,0x8b,0x04,0x25,0xc7,0xc7,0xc7\\n1:\");\n\
           return x + 1;\n}\n\
         int main(int argc, char **argv) {\n\
           int n = argc > 1 ? atoi(argv[1]) : 0, s = 0;\n\
           for (int i = 0; i < n; i++) s += pick(i % 25) + hop(i);\n\
           printf(\"%d\\n\", s);\n  return 0;\n}\n",
    );
    std::fs::write(d.join("cases.c"), src).unwrap();
    let out = Command::new("gcc").current_dir(d).args(["-O2", "-o", "cases", "cases.c"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let prog = d.join("cases");
    let cache = d.join("cache");
    let aot = dbirun(&cache, &["-aot"], &[prog.to_str().unwrap()]);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    for n in ["0", "7", "25", "100"] {
        let native = Command::new(&prog).arg(n).output().unwrap();
        let run = dbirun(&cache, &[], &[prog.to_str().unwrap(), n]);
        assert_eq!(run.stdout, native.stdout, "input {n}");
        assert_eq!(run.status.code(), native.status.code());
    }
    // The cases came from the files: the program's own blocks were not
    // built by the runs (at most a few: the runs' own new paths).
    let summary = inspect(&cache, prog.to_str().unwrap());
    let from_runs = summary["blocks"].as_u64().unwrap() - summary["ahead_of_time_blocks"].as_u64().unwrap();
    assert!(from_runs <= 4, "the switch's cases were translated ahead of time: {from_runs} blocks from runs\n{summary}");
}

/// Runs `dbirun` as `dbirun()` does, also returning the peak resident
/// memory (KiB) of its largest process (the translating one).
fn dbirun_with_peak_rss(dir: &Path, options: &[&str], program: &[&str]) -> (Output, i64) {
    let child = dbirun_command(dir, options, program)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // The pipes are read before waiting (the verbose output is long).
    let (mut stdout, mut stderr) = (child.stdout.unwrap(), child.stderr.unwrap());
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).unwrap();
        b
    });
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let err = err_reader.join().unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child, with out-parameters we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (Output { status, stdout: out, stderr: err }, usage.ru_maxrss)
}

/// How many times the verbose output says the file of `module` was written.
fn writes_of(stderr: &str, module: &str) -> usize {
    stderr.lines().filter(|l| l.contains("persist: wrote ") && l.contains(&format!("/{module}-"))).count()
}

/// How many batches of `module` the verbose output says were set aside.
fn batches_of(stderr: &str, module: &str) -> usize {
    stderr.lines().filter(|l| l.contains("persist: set aside a batch of ") && l.contains(&format!("/{module}-"))).count()
}

/// A module is translated in batches (`-aot_batch`): each batch is set
/// aside in a file of its own (the module's file is written once, from
/// all of them, at the end) and its memory reused, so the translating
/// process's peak memory follows the batch, not the module (python3.11:
/// 222,000 blocks). The file ends up with the same blocks, and the first
/// run after it behaves as natively and builds almost nothing.
#[test]
fn huge_modules_are_translated_in_batches_with_bounded_memory() {
    let program = ["/usr/bin/python3", "-c", "import json; print(json.dumps({'a': [1, 2]}))"];
    let whole_dir = temp_dir("aot-one-batch");
    let (whole, whole_rss) = dbirun_with_peak_rss(whole_dir.path(), &["-aot", "-v", "-aot_batch", "100000000"], &program[..1]);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole.stderr));
    let dir = temp_dir("aot-batches");
    let (batched, batched_rss) = dbirun_with_peak_rss(dir.path(), &["-aot", "-v", "-aot_batch", "16384"], &program[..1]);
    assert_eq!(batched.status.code(), Some(0), "{}", text(&batched.stderr));
    let err = text(&batched.stderr);
    assert_eq!(writes_of(&text(&whole.stderr), "python3.11"), 1);
    assert!(batches_of(&err, "python3.11") >= 10, "python3.11's batches set aside:\n{err}");
    assert_eq!(writes_of(&err, "python3.11"), 1, "the file is written once, at the end:\n{err}");
    let blocks = |d: &Path| inspect(d, "/usr/bin/python3.11")["blocks"].as_u64().unwrap();
    assert_eq!(blocks(dir.path()), blocks(whole_dir.path()), "the batches hold every block one batch does");
    eprintln!("peak RSS translating python3: one batch {whole_rss} KiB, batches of 16384 blocks {batched_rss} KiB");
    assert!(batched_rss * 4 < whole_rss * 3, "batches bound memory: {batched_rss} KiB against {whole_rss} KiB");
    let verify = cachetool().arg("--dir").arg(user_dir(dir.path())).arg("verify").output().unwrap();
    assert!(verify.status.success(), "{}{}", text(&verify.stdout), text(&verify.stderr));
    let native = Command::new(program[0]).args(&program[1..]).output().unwrap();
    let first = dbirun(dir.path(), &[], &program);
    assert_eq!(first.stdout, native.stdout);
    assert_eq!(first.status.code(), native.status.code(), "{}", text(&first.stderr));
    let (built, loaded) = last_run(dir.path());
    assert!(built * 100 < loaded, "the first run builds almost nothing: {built} built, {loaded} loaded");
}

#[test]
fn aot_batch_needs_aot_and_a_positive_count() {
    let out = Command::new(dbirun_path()).args(["-persist", "-aot_batch", "10", "--", "/bin/true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("dbirun: -aot_batch sets how -aot writes its files: it needs -aot"), "{}", text(&out.stderr));
    let out = Command::new(dbirun_path()).args(["-persist", "-aot", "-aot_batch", "0", "--", "/bin/true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// Functions only initialisers, finalisers and the PLT lead to: a
/// stripped program without unwind tables, whose constructor and
/// destructor no symbol, unwind entry or branch names. Their blocks come
/// from the init/fini arrays, and the PLT stubs from `.plt`: the first
/// run after AOT finds them in the file.
#[test]
fn initialisers_finalisers_and_plt_stubs_are_seeds() {
    let dir = temp_dir("aot-init-fini");
    let d = dir.path();
    std::fs::write(
        d.join("ctor.c"),
        "#include <stdio.h>\n\
         #include <stdlib.h>\n\
         static void __attribute__((constructor)) hello(void) { puts(getenv(\"NOPE_NOT_SET\") ? \"set\" : \"hello\"); }\n\
         static void __attribute__((destructor)) bye(void) { puts(\"bye\"); }\n\
         int main(void) { puts(\"main\"); return 0; }\n",
    )
    .unwrap();
    let cc = |out: &str, extra: &[&str]| {
        let o = Command::new("gcc")
            .current_dir(d)
            .args(["-O1", "-no-pie", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-o", out, "ctor.c"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    cc("ctor", &[]);
    cc("ctor-stripped", &["-s"]);
    // Where the constructor and the destructor are, from the unstripped twin.
    let nm = Command::new("nm").arg(d.join("ctor")).output().unwrap();
    let offset_of = |name: &str| {
        let line = text(&nm.stdout).lines().find(|l| l.ends_with(&format!(" {name}"))).map(str::to_owned);
        u64::from_str_radix(line.unwrap_or_else(|| panic!("{name} in nm")).split(' ').next().unwrap(), 16).unwrap()
    };
    // Module offsets: from the page of the first PT_LOAD (0x400000 here).
    let elf = std::fs::read(d.join("ctor")).unwrap();
    let phoff = u64_at(&elf, 32) as usize;
    let first_load = (0..u16::from_le_bytes([elf[56], elf[57]]) as usize)
        .map(|i| phoff + i * 56)
        .find(|&p| u32::from_le_bytes(elf[p..p + 4].try_into().unwrap()) == 1)
        .map(|p| u64_at(&elf, p + 16) & !0xfff)
        .unwrap();
    let (hello, bye) = (offset_of("hello") - first_load, offset_of("bye") - first_load);
    let prog = d.join("ctor-stripped");
    let cache = d.join("cache");
    let aot = dbirun(&cache, &["-aot", "-v"], &[prog.to_str().unwrap()]);
    assert_eq!(aot.status.code(), Some(0), "{}", text(&aot.stderr));
    assert!(aot.stdout.is_empty(), "the program did not run: {}", text(&aot.stdout));
    let err = text(&aot.stderr);
    let count = |what: &str| -> u64 {
        let line = err.lines().find(|l| l.contains("ctor-stripped: ") && l.ends_with(&format!(" {what} entries")));
        line.unwrap_or_else(|| panic!("a {what} line:\n{err}")).rsplit(": ").next().unwrap().split(' ').next().unwrap().parse().unwrap()
    };
    assert!(count("init/fini") >= 2, "constructor and destructor named:\n{err}");
    assert!(count("PLT") >= 1, "puts's stub named:\n{err}");
    let out = cachetool()
        .arg("--dir")
        .arg(user_dir(&cache))
        .args(["--json", "inspect", "--blocks", prog.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let aot_at = |offset: u64| {
        v[0]["blocks"].as_array().unwrap().iter().any(|b| b["module_offset"].as_u64() == Some(offset) && b["ahead_of_time"] == true)
    };
    assert!(aot_at(hello), "the constructor at {hello:#x} was translated ahead of time");
    assert!(aot_at(bye), "the destructor at {bye:#x} was translated ahead of time");
    let native = Command::new(&prog).output().unwrap();
    let run = dbirun(&cache, &[], &[prog.to_str().unwrap()]);
    assert_eq!(text(&run.stdout), text(&native.stdout));
    assert_eq!(run.status.code(), native.status.code(), "{}", text(&run.stderr));
}

/// Files translated ahead of time learn their lookup targets from the
/// first run that uses them: that run enters each block an indirect
/// branch reaches in the lookup table through the dispatcher and marks it
/// in the file (itself, and through the cache server), so later runs
/// enter them at load and pass the dispatcher about as often as after
/// ordinary runs. Without traces: their heads get hot at other times in
/// each run, so a run's new traces (written too) would hide whether the
/// lookup targets were all learnt.
#[test]
fn runs_after_aot_learn_its_lookup_targets() {
    let program = ["/usr/bin/ls", "-la", "/usr/bin"];
    let native = Command::new(program[0]).args(&program[1..]).output().unwrap();
    for with_server in [false, true] {
        let dir = temp_dir("aot-marks");
        let aot = dbirun(dir.path(), &["-stats", "-no_traces", "-aot"], &program[..1]);
        assert!(aot.status.success(), "{}", text(&aot.stderr));
        let targets = |module: &str| inspect(dir.path(), module)["lookup_targets"].as_u64().unwrap();
        let (ls_before, libc_before) = (targets("ls"), targets("libc.so.6"));
        let runs: Vec<String> = (0..3)
            .map(|_| {
                let run = if with_server {
                    let mut c = Command::new(dbirun_path());
                    // The suite may run with -no_persist_server in DBIRUN_OPTIONS.
                    c.env_remove("DBIRUN_OPTIONS");
                    c.args(["-persist", "-stats", "-no_traces", "-persist_dir"]).arg(dir.path()).arg("--").args(program);
                    let run = c.output().unwrap();
                    // What the run handed over is merged before the next.
                    let sync = cachetool().arg("--persist-dir").arg(dir.path()).args(["server", "sync"]).output().unwrap();
                    assert!(sync.status.success(), "{}", text(&sync.stderr));
                    run
                } else {
                    dbirun(dir.path(), &["-stats", "-no_traces"], &program)
                };
                assert_eq!(run.stdout, native.stdout);
                assert_eq!(run.status.code(), native.status.code());
                text(&run.stderr)
            })
            .collect();
        if with_server {
            let stop = cachetool().arg("--persist-dir").arg(dir.path()).args(["server", "stop"]).output().unwrap();
            assert!(stop.status.success(), "{}", text(&stop.stderr));
        }
        let (ls_after, libc_after) = (targets("ls"), targets("libc.so.6"));
        assert!(
            ls_after > ls_before && libc_after > libc_before,
            "the first run flagged lookup targets (server: {with_server}): ls {ls_before} -> {ls_after}, libc {libc_before} -> {libc_after}"
        );
        assert!(stat(&runs[0], "cache files written") >= 2, "{}", runs[0]);
        let dispatched: Vec<u64> = runs.iter().map(|r| stat(r, "dispatcher entries")).collect();
        let loaded: Vec<u64> = runs.iter().map(|r| stat(r, "lookup entries loaded")).collect();
        // Targets the lookup's miss routine found in the files (the
        // dispatcher enters them in the table afterwards).
        let in_files: Vec<u64> = runs.iter().map(|r| stat(r, "lookups in loaded files")).collect();
        eprintln!(
            "ls -la after AOT (server: {with_server}): dispatcher entries {dispatched:?}, lookup entries loaded {loaded:?}, lookups in loaded files {in_files:?}"
        );
        assert!(loaded[1] >= loaded[0] + (ls_after - ls_before) + (libc_after - libc_before), "{loaded:?}");
        assert!(in_files[0] >= ls_after - ls_before, "the first run found its targets in the files: {in_files:?}");
        assert!(in_files[1] * 4 < in_files[0], "the second run has them in the table from the start: {in_files:?}");
        assert!(dispatched[1] <= dispatched[0], "{dispatched:?}");
        // Nothing left to learn: a run writes a file only for blocks it
        // built. A run of ls took a path of one block the runs before had
        // not (once in a CI run under load; a timing-dependent path such as
        // the vDSO's clock read retrying is the likely one) and wrote it:
        // that is a new block, not a lookup target left unlearnt.
        let (written, built) = (stat(&runs[1], "cache files written"), stat(&runs[1], "blocks built"));
        assert!(written <= built, "nothing left to learn: {written} files written for {built} blocks built:\n{}", runs[1]);
        assert!(dispatched[2] <= dispatched[1] + dispatched[1] / 10, "{dispatched:?}");
    }
}

/// (size, copied) in KiB of `smaps`' read-write mappings of a cache file
/// whose name starts with `module`: a private file mapping's pages are
/// anonymous once written (copied on write), never before (Private_Dirty
/// would count the page cache's pages of a file written a moment ago).
fn w_zone_pages(smaps: &str, module: &str) -> (u64, u64) {
    let (mut size, mut copied, mut in_zone) = (0, 0, false);
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some(range) if range.contains('-') && !range.ends_with(':') => {
                let perms = fields.next().unwrap_or("");
                let name = line.rsplit('/').next().unwrap_or("");
                in_zone = perms == "rw-p" && name.starts_with(module) && name.ends_with(".dpc");
            }
            Some("Size:") if in_zone => size += fields.next().unwrap().parse::<u64>().unwrap(),
            Some("Anonymous:") if in_zone => copied += fields.next().unwrap().parse::<u64>().unwrap(),
            _ => {}
        }
    }
    (size, copied)
}

const PYTHON: &str = "/usr/bin/python3";

/// Python code that calls many of python3.11's functions: exits all over
/// its file.
const PYTHON_WORK: &str =
    "import json, re, textwrap; print(len(json.dumps({str(i): [i] * 3 for i in range(2000)})), re.sub('a+', 'b', 'caaat'), textwrap.fill('x ' * 50, 20))";

/// A cache directory with python3's modules translated ahead of time
/// (with `-stats`, as the runs using it are).
fn python_translated_ahead(prefix: &str) -> tempfile::TempDir {
    let dir = temp_dir(prefix);
    let aot = dbirun(dir.path(), &["-stats", "-aot"], &[PYTHON]);
    assert!(aot.status.success(), "{}", text(&aot.stderr));
    dir
}

/// A file translated ahead of time is mostly exits no run takes: its W
/// zones (private mappings of the file, checked in the run's own
/// /proc/self/smaps) are copied only where the run takes exits, the
/// 64 KiB of slots around one rebased when a jump through it first
/// faults; and a
/// run that takes an exit through every page still matches native.
#[test]
fn exit_slots_are_rebased_only_where_exits_are_taken() {
    let py = PYTHON;
    let dir = python_translated_ahead("aot-slots");
    let show = "import sys; sys.stdout.write(open('/proc/self/smaps').read())";
    let run = dbirun(dir.path(), &["-stats"], &[py, "-c", show]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (size, copied) = w_zone_pages(&text(&run.stdout), "python3.11-");
    let rebased = stat(&text(&run.stderr), "slot pages rebased");
    eprintln!("python3.11's W zones: {size} KiB mapped, {copied} KiB copied; {rebased} pages of slots rebased (every module)");
    assert!(size > 1024, "the AOT file's W zones are mapped: {size} KiB");
    // A page is copied when a slot on it is rebased (or its base slot
    // written, or an exit on it linked): a fault rebases the 64 KiB
    // around the slot, and python3 -c pass takes exits in nearly every
    // 64 KiB of the file; rebasing at load copied all.
    assert!(copied < size, "only the windows of exits taken are copied: {copied} of {size} KiB");
    assert!(rebased > 0 && copied / 4 <= rebased + 16, "copied pages are those rebased: {copied} KiB, {rebased} pages");
    // Exits all over the file, output as natively.
    let native = Command::new(py).args(["-c", PYTHON_WORK]).output().unwrap();
    let run = dbirun(dir.path(), &["-stats"], &[py, "-c", PYTHON_WORK]);
    assert_eq!(run.stdout, native.stdout, "{}", text(&run.stderr));
    assert!(stat(&text(&run.stderr), "blocks loaded") > 0, "{}", text(&run.stderr));
    assert_eq!(run.status.code(), native.status.code());
}

/// A thread that blocks SIGSEGV would be killed by the first jump through
/// a slot not rebased yet (the kernel forces a blocked synchronous fault
/// to its default action): when the app blocks it (glibc does, for a
/// moment, in pthread_create and posix_spawn), or starts with it
/// blocked, every slot is rebased first, and the program runs as
/// natively.
#[test]
fn a_program_blocking_sigsegv_runs_from_files_with_slots_not_rebased() {
    use std::os::unix::process::CommandExt;
    let (py, work) = (PYTHON, PYTHON_WORK);
    let dir = python_translated_ahead("aot-slots-blocked");
    let blocks_then_works = format!("import signal; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGSEGV]); {work}");
    let inherits_blocked = |c: &mut Command| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGSEGV);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            })
        };
    };
    for (script, inherited) in [(blocks_then_works.as_str(), false), (work, true)] {
        let mut native = Command::new(py);
        native.args(["-c", script]);
        let mut run = dbirun_command(dir.path(), &["-stats"], &[py, "-c", script]);
        if inherited {
            inherits_blocked(&mut native);
            inherits_blocked(&mut run);
        }
        let (native, run) = (native.output().unwrap(), run.output().unwrap());
        assert_eq!(run.stdout, native.stdout, "inherited: {inherited}\n{}", text(&run.stderr));
        assert_eq!(run.status.code(), native.status.code(), "{}", text(&run.stderr));
        assert!(stat(&text(&run.stderr), "blocks loaded") > 0, "{}", text(&run.stderr));
    }
}
