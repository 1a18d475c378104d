//! Built-in clients: exactness oracles (an independent single-step tracer),
//! agreement between clients, unchanged application behaviour with every
//! client on, and bad client options.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dbi_tests::corpus::{check_program_with, program};
use dbi_tests::singlestep::{count_instructions, trace_pcs, ADDR_NO_RANDOMIZE};
use dbi_tests::{compiled, dbirun_path, temp_dir, Build, Opt, Variant};

/// The environment of both the traced and the translated run.
const ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("PATH", "/usr/bin:/bin")];

fn build(name: &str, variant: Variant, opt: Opt) -> PathBuf {
    compiled(&program(name).source_path(), Build::new(variant, opt)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `dbirun OPTIONS -- program args` with randomisation off and [`ENV`].
fn dbirun(options: &[&str], program: &Path, args: &[&str]) -> Output {
    dbirun_command(options, program, args).output().expect("dbirun runs")
}

/// [`dbirun`] with stdin, stdout and stderr on /dev/null.
fn dbirun_to_null(options: &[&str], program: &Path, args: &[&str]) -> std::process::ExitStatus {
    dbirun_command(options, program, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("dbirun runs")
}

fn dbirun_command(options: &[&str], program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(dbirun_path());
    cmd.args(options).arg("--").arg(program).args(args).env_clear();
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    // SAFETY: personality is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::personality(ADDR_NO_RANDOMIZE);
            Ok(())
        });
    }
    cmd
}

/// The single output file `client` wrote in `dir`.
fn client_output(dir: &Path, client: &str) -> String {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{client}.")))
        .collect();
    assert_eq!(files.len(), 1, "{client} output files in {}: {files:?}", dir.display());
    std::fs::read_to_string(&files[0]).unwrap()
}

/// The first number on the line of `text` that contains `label`.
fn number_after(text: &str, label: &str) -> u64 {
    let line = text.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no '{label}' in {text:?}"));
    line.split(|c: char| !c.is_ascii_digit()).find(|w| !w.is_empty()).unwrap().parse().unwrap()
}

/// inscount's total for `program args`, run with stdio on /dev/null like the
/// single-step tracer runs it, and the exit status.
fn inscount(program: &Path, args: &[&str]) -> (u64, i32) {
    inscount_with(&[], program, args)
}

/// [`inscount`] with more dbirun options.
fn inscount_with(options: &[&str], program: &Path, args: &[&str]) -> (u64, i32) {
    let dir = temp_dir("inscount");
    let logdir = dir.path().to_str().unwrap();
    let options: Vec<&str> = options.iter().copied().chain(["-logdir", logdir, "-c", "inscount"]).collect();
    let out = dbirun_to_null(&options, program, args);
    let text = client_output(dir.path(), "inscount");
    (number_after(&text, "instructions executed"), out.code().expect("exited"))
}

/// inscount's total equals what a ptrace single-step tracer counts natively.
fn check_inscount_exact(name: &str, variant: Variant, opt: Opt, args: &[&str]) {
    check_inscount_exact_with(&[], name, variant, opt, args);
}

fn check_inscount_exact_with(options: &[&str], name: &str, variant: Variant, opt: Opt, args: &[&str]) {
    let exe = build(name, variant, opt);
    let (stepped, native_status) = count_instructions(&exe, args, ENV);
    let (counted, status) = inscount_with(options, &exe, args);
    assert_eq!(status, native_status, "{name} {variant:?} {opt:?}: exit status");
    assert_eq!(counted, stepped, "{name} {variant:?} {opt:?}: inscount vs single-step");
}

#[test]
fn inscount_matches_single_step_asm() {
    check_inscount_exact("asm_basic", Variant::Static, Opt::O0, &[]);
}

#[test]
fn inscount_matches_single_step_libc_programs() {
    for name in ["exit_code", "setjmp_longjmp", "rip_relative"] {
        for opt in [Opt::O0, Opt::O2] {
            check_inscount_exact(name, Variant::Static, opt, &["3"]);
        }
    }
}

/// A static-pie's glibc sorts its initial mappings (program, vDSO) by
/// address at start-up, so this needs the app's native address layout:
/// the vDSO below the program, runtime memory out of the mmap area.
#[test]
fn inscount_matches_single_step_static_pie() {
    for opt in [Opt::O0, Opt::O2] {
        check_inscount_exact("exit_code", Variant::StaticPie, opt, &["3"]);
    }
}

/// Dynamic programs too: ld.so, libc and the program, from the
/// interpreter's first instruction.
#[test]
fn inscount_matches_single_step_dynamic() {
    for variant in [Variant::Pie, Variant::NoPie] {
        check_inscount_exact("exit_code", variant, Opt::O2, &["3"]);
    }
}

#[test]
fn bbcount_totals_agree_with_inscount() {
    for name in ["loops_recursion", "func_pointers"] {
        let exe = build(name, Variant::Pie, Opt::O2);
        let dir = temp_dir("bbcount");
        let logdir = dir.path().to_str().unwrap();
        let out = dbirun(&["-logdir", logdir, "-c", "inscount", "-c", "bbcount", "-top", "3"], &exe, &[]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let ins = number_after(&client_output(dir.path(), "inscount"), "instructions executed");
        let bb = client_output(dir.path(), "bbcount");
        assert_eq!(number_after(&bb, "instructions executed"), ins, "{name}: bbcount vs inscount\n{bb}");
        assert!(number_after(&bb, "block executions") > 0);
        let top: Vec<&str> = bb.lines().skip_while(|l| !l.starts_with("top")).skip(1).collect();
        assert_eq!(top.len(), 3, "{bb}");
        assert!(top.iter().all(|l| l.contains(&format!("{name}+0x"))), "top blocks are in the program: {bb}");
    }
}

#[test]
fn only_from_app_counts_less_than_everything() {
    let exe = build("loops_recursion", Variant::Pie, Opt::O2);
    let all = inscount(&exe, &[]).0;
    let dir = temp_dir("inscount-app");
    let logdir = dir.path().to_str().unwrap();
    dbirun(&["-logdir", logdir, "-c", "inscount", "-only_from_app"], &exe, &[]);
    let app = number_after(&client_output(dir.path(), "inscount"), "instructions executed");
    assert!(app > 0 && app < all, "only_from_app {app} vs all {all}");
}

/// Every client leaves the application's behaviour exactly as natively.
#[test]
fn app_behaviour_unchanged_under_clients() {
    let dir = temp_dir("client-logs");
    let logdir = dir.path().to_str().unwrap().to_owned();
    for client in clients::BUILT_IN {
        // threads runs ~90M instructions: its traces would be GBs.
        let programs: &[&str] = if matches!(*client, "instrace" | "memtrace") {
            &["cxx_exceptions", "signal_faults", "tls_vars", "simd"]
        } else {
            &["cxx_exceptions", "signal_faults", "threads", "simd"]
        };
        for name in programs {
            check_program_with(name, &["-logdir", &logdir, "-c", client]);
        }
    }
}

/// With a client loaded the runtime catches every signal whose default
/// action kills (to run the clients' exits first): the app's own handlers,
/// ignored signals, masks and default deaths stay exactly native.
#[test]
fn signals_unchanged_under_a_client() {
    let dir = temp_dir("client-signals");
    let logdir = dir.path().to_str().unwrap().to_owned();
    for name in ["signal_death", "sig_raise_all", "sig_mask", "sig_restart", "sig_segv_longjmp"] {
        check_program_with(name, &["-logdir", &logdir, "-c", "bbcount"]);
    }
}

#[test]
fn bad_client_options_stop_before_the_app_runs() {
    let dir = temp_dir("bad-client");
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    for opts in [&["-c", "inscount", "-bogus"][..], &["-c", "bbcount", "-top"], &["-c", "null", "x"]] {
        let out = dbirun(opts, Path::new("/bin/sh"), &["-c", &script]);
        assert_eq!(out.status.code(), Some(2), "{opts:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{opts:?}: {err}");
        assert!(err.contains("client"), "{opts:?}: {err}");
        assert!(!marker.exists(), "{opts:?}: the app ran");
    }
}

/// A drcov file read from the format's public description (header lines,
/// a module table of version 2, or of version 5 as DynamoRIO's drcovlib
/// writes it since DRCOV VERSION 3, then fixed 8-byte little-endian BB
/// entries).
struct Drcov {
    version: u32,
    modules: Vec<(u64, u64, String)>,
    blocks: Vec<(u32, u16, u16)>,
}

fn parse_drcov(bytes: &[u8]) -> Drcov {
    let mut rest = bytes;
    let mut line = || {
        let end = rest.iter().position(|&b| b == b'\n').expect("a header line");
        let l = String::from_utf8(rest[..end].to_vec()).unwrap();
        rest = &rest[end + 1..];
        l
    };
    let version: u32 = line().strip_prefix("DRCOV VERSION: ").expect("DRCOV VERSION").parse().unwrap();
    assert!(line().starts_with("DRCOV FLAVOR: "));
    let table = line();
    let (table_version, count) = table.strip_prefix("Module Table: version ").and_then(|t| t.split_once(", count ")).expect(&table);
    let (table_version, count): (u32, usize) = (table_version.parse().unwrap(), count.parse().unwrap());
    let columns: &[&str] = match (version, table_version) {
        (2, 2) => &["id", "base", "end", "entry", "checksum", "timestamp", "path"],
        (3, 5) => &["id", "containing_id", "start", "end", "entry", "offset", "preferred_base", "path"],
        other => panic!("unexpected drcov and module table versions {other:?}"),
    };
    assert_eq!(line(), format!("Columns: {}", columns.join(", ")));
    let col = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let mut modules = Vec::new();
    for i in 0..count {
        let l = line();
        let cols: Vec<&str> = l.splitn(columns.len(), ", ").map(str::trim).collect();
        assert_eq!(cols.len(), columns.len(), "{l}");
        assert_eq!(cols[0].parse::<usize>().unwrap(), i, "{l}");
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        if version == 3 {
            assert_eq!(cols[col("containing_id")].parse::<usize>().unwrap(), i, "a whole image contains itself: {l}");
            hex(cols[col("offset")]);
            hex(cols[col("preferred_base")]);
        }
        let start = hex(cols[col(if version == 3 { "start" } else { "base" })]);
        modules.push((start, hex(cols[col("end")]), cols[columns.len() - 1].to_owned()));
    }
    let bbs = line();
    let n: usize = bbs.strip_prefix("BB Table: ").and_then(|s| s.strip_suffix(" bbs")).expect(&bbs).parse().unwrap();
    assert_eq!(rest.len(), 8 * n, "BB table size");
    let blocks = rest
        .chunks_exact(8)
        .map(|e| {
            let start = u32::from_le_bytes(e[0..4].try_into().unwrap());
            let size = u16::from_le_bytes(e[4..6].try_into().unwrap());
            let id = u16::from_le_bytes(e[6..8].try_into().unwrap());
            (start, size, id)
        })
        .collect();
    Drcov { version, modules, blocks }
}

#[test]
fn drcov_lists_exactly_the_blocks_executed() {
    let exe = build("qsort_callback", Variant::Pie, Opt::O2);
    let dir = temp_dir("drcov");
    let logdir = dir.path().to_str().unwrap();
    let out = dbirun(&["-logdir", logdir, "-c", "drcov", "-c", "bbcount", "-top", "1000000"], &exe, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("drcov."))
        .expect("a drcov file");
    let cov = parse_drcov(&std::fs::read(&file).unwrap());
    assert_eq!(cov.version, 3, "DynamoRIO's current format by default");
    assert!(cov.modules.iter().any(|m| m.2.ends_with("qsort_callback")), "{:?}", cov.modules);
    // The older format on request: the same modules and blocks.
    let old_dir = temp_dir("drcov-v2");
    let out = dbirun(&["-logdir", old_dir.path().to_str().unwrap(), "-c", "drcov", "-format_version", "2"], &exe, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let old = parse_drcov(&std::fs::read(only_file(old_dir.path(), "drcov.")).unwrap());
    assert_eq!(old.version, 2);
    let paths = |c: &Drcov| c.modules.iter().map(|m| m.2.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&old), paths(&cov));
    assert_eq!(old.blocks, cov.blocks);
    let mut covered = std::collections::BTreeSet::new();
    for &(start, size, id) in &cov.blocks {
        let (base, end, path) = &cov.modules[id as usize];
        assert!(size > 0 && base + start as u64 + size as u64 <= *end, "block {start:#x}+{size} outside {path}");
        assert!(covered.insert(format!("{path}+{start:#x}")), "block listed twice: {path}+{start:#x}");
    }
    // bbcount lists every block that ran at least once as module+offset.
    let bb = client_output(dir.path(), "bbcount");
    let executed: std::collections::BTreeSet<String> = bb
        .lines()
        .skip_while(|l| !l.starts_with("top"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .filter(|loc| loc.contains("+0x"))
        .collect();
    assert_eq!(covered, executed);
}

#[test]
fn opcode_mix_totals_match_inscount() {
    let exe = build("simd", Variant::Static, Opt::O2);
    let dir = temp_dir("opcodes");
    let logdir = dir.path().to_str().unwrap();
    let out = dbirun(&["-logdir", logdir, "-c", "opcodes", "-c", "inscount"], &exe, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mix = client_output(dir.path(), "opcodes");
    let ins = number_after(&client_output(dir.path(), "inscount"), "instructions executed");
    assert_eq!(number_after(&mix, "instructions executed"), ins);
    let listed: u64 = mix.lines().skip(2).map(|l| l.split_whitespace().next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(listed, ins, "the histogram adds up");
    assert!(mix.lines().any(|l| l.ends_with(" mov")), "{mix}");
}

/// instrace's pc sequence is exactly the single-step tracer's.
#[test]
fn instrace_pcs_match_single_step() {
    for (name, args) in [("asm_basic", &[][..]), ("exit_code", &["3"][..])] {
        check_instrace_exact(&[], name, args);
    }
}

/// Traces hold each of their blocks' instrumentation: counts and pc
/// sequences stay exact through hot loops made traces (`-traces`), with
/// in-line target checks that hit and miss.
#[test]
fn clients_stay_exact_in_traces() {
    for opt in [Opt::O0, Opt::O2] {
        check_inscount_exact_with(&["-traces"], "trace_paths", Variant::Static, opt, &["calls", "3000"]);
    }
    check_instrace_exact(&["-traces"], "trace_paths", &["calls", "3000"]);
}

/// Traces a cold `-persist -traces` run wrote to its file hold their
/// blocks' instrumentation: inscount stays exact in the cold run that
/// builds them and in the warm run that loads them.
#[test]
fn inscount_stays_exact_in_persisted_traces() {
    let exe = build("trace_paths", Variant::Static, Opt::O2);
    // Long enough for traces to outlive their table's changes (a retired
    // trace is not written).
    let args = ["calls", "4000"];
    let (stepped, _) = count_instructions(&exe, &args, ENV);
    let cache = temp_dir("inscount-traces");
    let dir = cache.path().to_str().unwrap();
    let options = ["-persist", "-persist_dir", dir, "-no_persist_server", "-traces"];
    for run in ["cold", "warm"] {
        let (counted, _) = inscount_with(&options, &exe, &args);
        assert_eq!(counted, stepped, "{run} run: inscount vs single-step");
        if run == "cold" {
            let user = cache.path().join(unsafe { libc::getuid() }.to_string());
            let out = Command::new(dbirun_path().with_file_name("cachetool"))
                .arg("--dir")
                .arg(&user)
                .args(["--json", "inspect", exe.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let traces = v[0]["inspection"]["summary"]["traces"].as_u64().unwrap_or(0);
            assert!(traces > 0, "the program's file holds its traces: {v}");
        }
    }
}

fn check_instrace_exact(options: &[&str], name: &str, args: &[&str]) {
    let exe = build(name, Variant::Static, Opt::O2);
    let (stepped, _) = trace_pcs(&exe, args, ENV);
    let dir = temp_dir("instrace");
    let logdir = dir.path().to_str().unwrap();
    let options: Vec<&str> = options.iter().copied().chain(["-logdir", logdir, "-c", "instrace"]).collect();
    dbirun_to_null(&options, &exe, args);
    let trace = client_output(dir.path(), "instrace");
    let traced: Vec<u64> = trace
        .lines()
        .map(|l| {
            let (pc, op) = l.split_once(',').unwrap_or_else(|| panic!("bad line {l:?}"));
            assert!(!op.is_empty() && op != "?", "opcode name in {l:?}");
            u64::from_str_radix(pc.trim_start_matches("0x"), 16).unwrap()
        })
        .collect();
    assert_eq!(traced.len(), stepped.len(), "{name}: trace length");
    if let Some(i) = (0..traced.len()).find(|&i| traced[i] != stepped[i]) {
        panic!("{name}: pc {i} differs: instrace {:#x}, single-step {:#x}", traced[i], stepped[i]);
    }
}

#[test]
fn instrace_threads_each_get_a_file() {
    let exe = build("tls_vars", Variant::Pie, Opt::O2);
    let dir = temp_dir("instrace-threads");
    let logdir = dir.path().to_str().unwrap();
    // Both clients see the same execution: the totals agree exactly.
    let out = dbirun(&["-logdir", logdir, "-c", "instrace", "-c", "inscount"], &exe, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("instrace."))
        .collect();
    assert!(files.len() > 1, "one file per thread: {files:?}");
    let lines: u64 = files.iter().map(|f| std::fs::read_to_string(f).unwrap().lines().count() as u64).sum();
    let ins = number_after(&client_output(dir.path(), "inscount"), "instructions executed");
    assert_eq!(lines, ins, "instrace lines vs inscount");
}

/// memtrace records the program's own array and thread-local writes at
/// their exact addresses, sizes and order.
#[test]
fn memtrace_sees_known_arrays() {
    let dir = temp_dir("memtrace");
    let src = dir.path().join("arrays.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
int arr[16];
static __thread long tv[4];
int main(void) {
    for (int i = 0; i < 16; i++) arr[i] = i * 3;
    long s = 0;
    for (int i = 0; i < 4; i++) { tv[i] = i; s += tv[i]; }
    fprintf(stderr, "%p %p\n", (void *)arr, (void *)tv);
    return (int)s + arr[5] - 21;
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("arrays");
    let cc = Command::new("gcc").args(["-O1", "-o"]).arg(&exe).arg(&src).status().unwrap();
    assert!(cc.success());
    let logdir = dir.path().join("logs");
    std::fs::create_dir(&logdir).unwrap();
    let out = dbirun(&["-logdir", logdir.to_str().unwrap(), "-c", "memtrace"], &exe, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let addrs: Vec<u64> = stderr
        .split_whitespace()
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
        .collect();
    let (arr, tv) = (addrs[0], addrs[1]);
    let trace = client_output(&logdir, "memtrace");
    let refs: Vec<(u64, u64, String)> = trace
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            (hex(f[1]), f[2].parse().unwrap(), f[3].to_owned())
        })
        .collect();
    let writes_in = |lo: u64, len: u64, size: u64| -> Vec<u64> {
        refs.iter().filter(|r| r.0 >= lo && r.0 < lo + len && r.1 == size && r.2 == "w").map(|r| r.0 - lo).collect()
    };
    assert_eq!(writes_in(arr, 64, 4), (0..16).map(|i| 4 * i).collect::<Vec<_>>(), "arr[i] = ... in order");
    assert_eq!(writes_in(tv, 32, 8), vec![0, 8, 16, 24], "tv[i] = i through FS");
    assert!(refs.iter().any(|r| r.0 == arr + 20 && r.1 == 4 && r.2 == "r"), "the read of arr[5]");
}

/// The single file in `dir` whose name starts with `prefix`.
fn only_file(dir: &Path, prefix: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    assert_eq!(files.len(), 1, "{prefix}* files in {}: {files:?}", dir.display());
    files.into_iter().next().unwrap()
}

/// A program dying of a fault with the default action still gets its
/// clients' process exit: drcov and bbcount files complete (parseable,
/// with the program's blocks), and the death is the native one.
#[test]
fn client_files_complete_after_a_fatal_fault() {
    use std::os::unix::process::ExitStatusExt;
    for variant in [Variant::Pie, Variant::Static] {
        let exe = build("signal_death", variant, Opt::O2);
        for (how, sig) in [("segv", libc::SIGSEGV), ("fpe", libc::SIGFPE), ("ill", libc::SIGILL)] {
            let native = Command::new(&exe).arg(how).stdout(Stdio::null()).status().unwrap();
            assert_eq!(native.signal(), Some(sig), "{how}: natively {native:?}");
            let dir = temp_dir("fatal-clients");
            let logdir = dir.path().to_str().unwrap();
            let out = dbirun(&["-logdir", logdir, "-c", "drcov", "-c", "bbcount", "-top", "5"], &exe, &[how]);
            assert_eq!(out.status.signal(), Some(sig), "{how} {variant:?}: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
            assert!(!out.status.core_dumped() || native.core_dumped(), "{how}: core dump semantics");
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("dying by {how}\n"));

            let cov = parse_drcov(&std::fs::read(only_file(dir.path(), "drcov.")).unwrap());
            let main = cov.modules.iter().position(|m| m.2.ends_with("signal_death")).expect("the program's module");
            assert!(cov.blocks.iter().any(|b| b.2 as usize == main), "{how}: no block of the program");
            let bb = client_output(dir.path(), "bbcount");
            assert!(number_after(&bb, "instructions executed") > 1000, "{bb}");
            let top: Vec<&str> = bb.lines().skip_while(|l| !l.starts_with("top")).skip(1).collect();
            assert_eq!(top.len(), 5, "{bb}");
        }
    }
}

/// Killed by a signal another process sends (default action), a program
/// blocked in a system call still writes its clients' files, and dies of
/// that signal.
#[test]
fn client_files_written_when_killed_by_sigterm() {
    let (bb, _) = killed_by_sigterm("sigterm-clients", &[]);
    assert!(number_after(&bb, "instructions executed") > 1000, "{bb}");
}

/// The same in a warm run: the blocks bbcount counts are mostly the cache
/// files', which it reads at exit; the process ends from a signal
/// handler, where the translator's lock may be held.
#[test]
fn warm_client_files_written_when_killed_by_sigterm() {
    let cache = temp_dir("sigterm-clients-cache");
    let persist = ["-persist", "-no_persist_server", "-persist_dir", cache.path().to_str().unwrap(), "-stats"];
    let (cold, _) = killed_by_sigterm("sigterm-clients-cold", &persist);
    let (warm, stderr) = killed_by_sigterm("sigterm-clients-warm", &persist);
    let loaded = number_after(&stderr, "blocks loaded");
    assert!(loaded > 1000, "a warm run\n{stderr}");
    let executed = |bb: &str| number_after(bb, "blocks executed");
    assert!(executed(&warm) * 10 > executed(&cold) * 9, "the warm run counts the files' blocks too\ncold:\n{cold}\nwarm:\n{warm}");
}

/// Runs `/bin/sleep 30` under `-c bbcount` with `options`, kills the
/// translated sleep with SIGTERM once it sleeps, and returns bbcount's
/// file and dbirun's stderr.
fn killed_by_sigterm(name: &str, options: &[&str]) -> (String, String) {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir(name);
    let logdir = dir.path().to_str().unwrap();
    let mut all = options.to_vec();
    all.extend(["-logdir", logdir, "-c", "bbcount"]);
    let child = dbirun_command(&all, Path::new("/bin/sleep"), &["30"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = dbi_tests::run::app_named(child.id(), "sleep") as i32;
    // Let it reach its nanosleep.
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{:?}", out.status);
    (client_output(dir.path(), "bbcount"), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A vfork child (posix_spawn, system, popen) runs in its parent's memory:
/// it writes no client file of its own (it used to, with the parent's
/// counts so far, and took the parent's threads' exit events with it); the
/// programs it execs write theirs.
#[test]
fn vfork_children_write_no_client_files_of_the_parent() {
    let exe = build("system_popen", Variant::Pie, Opt::O2);
    let dir = temp_dir("vfork-clients");
    let logdir = dir.path().to_str().unwrap();
    let out = dbirun(&["-logdir", logdir, "-c", "bbcount"], &exe, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parent_files = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bbcount.system_popen."))
        .collect::<Vec<_>>();
    assert_eq!(parent_files, [format!("bbcount.system_popen.{}.log", parent_pid(&parent_files))], "{parent_files:?}");
    let others = std::fs::read_dir(dir.path()).unwrap().count() - 1;
    assert!(others > 0, "the exec'd programs wrote no files");
}

fn parent_pid(files: &[String]) -> String {
    files.first().and_then(|f| f.split('.').nth(2)).unwrap_or("?").to_owned()
}

/// Client files are named after the program as the user ran it: a symlink
/// (`/usr/bin/python3` -> `python3.11` on Debian) gives its own name.
#[test]
fn client_files_use_the_name_the_program_was_run_by() {
    let dir = temp_dir("client-names");
    let link = dir.path().join("my-echo");
    std::os::unix::fs::symlink("/bin/echo", &link).unwrap();
    let logs = temp_dir("client-names-logs");
    let out = dbirun(&["-logdir", logs.path().to_str().unwrap(), "-c", "inscount"], &link, &["hi"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"hi\n");
    let names: Vec<String> = std::fs::read_dir(logs.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("inscount.my-echo."), "{names:?}");
}

/// inscount also prints its total at the end, as DynamoRIO's sample does,
/// but through dbirun's stderr after the program exited: the program's own
/// output (here a shell capturing a child's stderr) never holds it.
#[test]
fn inscount_total_is_printed_by_dbirun_at_the_end() {
    let logs = temp_dir("inscount-summary");
    let logdir = logs.path().to_str().unwrap();
    let out = dbirun(&["-logdir", logdir, "-c", "inscount"], Path::new("/bin/echo"), &["hi"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hi\n");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let file = client_output(logs.path(), "inscount");
    assert_eq!(lines[0], format!("dbirun: inscount: {}", file.trim_end()), "the line says what the file says");

    let logs2 = temp_dir("inscount-summary-2");
    let out = dbirun(&["-logdir", logs2.path().to_str().unwrap(), "-c", "inscount"], Path::new("/bin/sh"), &["-c", "y=$(ls /nonexistent 2>&1); echo \"[$y]\""]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("[ls: ") && !stdout.contains("Instrumentation"), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() >= 2 && err.lines().all(|l| l.starts_with("dbirun: inscount: Instrumentation results: ") && l.contains("(pid ")), "one labelled line per process: {err}");
}
