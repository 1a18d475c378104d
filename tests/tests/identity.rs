//! The process looks like the application (issue 11, item 5): its
//! `/proc/PID/comm`, `cmdline`, `environ` and `auxv`, seen from inside and
//! from another process, are what they are natively, across `execve` too,
//! and `pgrep -x` finds a translated program by its name.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use dbi_tests::{assert_same_as_native, compiled, dbirun_path, programs_dir, temp_dir, tool, Build, Opt, RunOpts, Variant};

/// Arguments a launcher could mangle: spaces, empty strings, `--`, `-c`.
const AWKWARD: &[&str] = &["a b", "", "--", "-c", "x  y", ""];

fn program(variant: Variant) -> PathBuf {
    compiled(&programs_dir().join("proc_identity.c"), Build::new(variant, Opt::O2)).unwrap_or_else(|e| panic!("{e}"))
}

/// A clean, known environment with a value holding a space.
fn env() -> RunOpts {
    let mut opts = RunOpts::new();
    for (k, _) in std::env::vars_os() {
        opts = opts.env_remove(k);
    }
    opts.env("PATH", "/usr/bin:/bin").env("LC_ALL", "C").env("SPACED", "one two")
}

/// comm, cmdline (byte for byte), environ and auxv from inside the program,
/// for each linking mode the runtime loads differently.
#[test]
fn own_comm_cmdline_environ_auxv_as_native() {
    for variant in [Variant::Pie, Variant::Static, Variant::NoPie] {
        let exe = program(variant);
        let mut args = vec!["print"];
        args.extend_from_slice(AWKWARD);
        let native = assert_same_as_native(&exe, &args, &env());
        let out = native.stdout_str();
        assert!(out.starts_with("comm (14 bytes): proc_identity\\012\n"), "{out}");
        assert!(out.contains("environ is envp: yes") && out.contains("auxv is the stack's: yes"), "{out}");
    }
}

/// The kernel names a process after the file name it was exec'd by,
/// truncated to 15 bytes.
#[test]
fn long_names_are_truncated_like_the_kernel() {
    let dir = temp_dir("identity-long");
    let exe = dir.path().join("a_program_with_a_long_name");
    std::fs::copy(program(Variant::Pie), &exe).unwrap();
    let native = assert_same_as_native(&exe, &["print"], &env());
    assert!(native.stdout_str().starts_with("comm (16 bytes): a_program_with_\\012\n"), "{}", native.stdout_str());
}

/// A program exec'd by a translated one (followed by the runtime, which
/// re-execs itself) gets its own name and arguments, as natively.
#[test]
fn execve_chain_keeps_the_identity() {
    let dir = temp_dir("identity-exec");
    let second = dir.path().join("second_program");
    std::fs::copy(program(Variant::Pie), &second).unwrap();
    let second = second.to_str().unwrap();
    let mut args = vec!["exec", second, "print"];
    args.extend_from_slice(AWKWARD);
    let native = assert_same_as_native(&program(Variant::Pie), &args, &env());
    let out = native.stdout_str();
    assert!(out.contains("comm (15 bytes): second_program\\012\n"), "{out}");
    assert_eq!(out.matches("environ is envp: yes").count(), 2, "{out}");
}

/// What another process sees of `pid`.
fn seen_from_outside(pid: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let read = |what: &str| std::fs::read(format!("/proc/{pid}/{what}")).unwrap();
    (read("comm"), read("cmdline"), read("environ"), read("auxv"))
}

fn start(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    env().apply(cmd).unwrap();
    cmd.stdin(Stdio::piped());
    cmd.spawn().unwrap()
}

fn wait_ready(child: &mut Child) -> String {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while !text.ends_with("ready\n") {
        assert!(out.read_line(&mut text).unwrap() > 0, "no 'ready' line: {text}");
    }
    text
}

/// comm, cmdline, environ and auxv read by another process while the
/// program runs, native and translated.
#[test]
fn seen_from_another_process_as_native() {
    let exe = program(Variant::Pie);
    let mut args = vec!["wait"];
    args.extend_from_slice(AWKWARD);

    let mut native = start(Command::new(&exe).args(&args));
    wait_ready(&mut native);
    let natively = seen_from_outside(native.id());
    drop(native.stdin.take());
    assert!(native.wait().unwrap().success());

    let mut dbirun = start(Command::new(dbirun_path()).arg("--").arg(&exe).args(&args));
    wait_ready(&mut dbirun);
    let pid = dbi_tests::run::app_named(dbirun.id(), "proc_identity");
    let translated = seen_from_outside(pid);
    drop(dbirun.stdin.take());
    assert!(dbirun.wait().unwrap().success());

    assert_eq!(String::from_utf8_lossy(&translated.0), String::from_utf8_lossy(&natively.0), "comm");
    assert_eq!(translated.1, natively.1, "cmdline");
    assert_eq!(translated.2, natively.2, "environ");
    // The auxv differs in addresses (AT_RANDOM, AT_EXECFN, ...) and in the
    // order of its entries, not in its keys (the program checked above that
    // it is the one on its stack).
    let keys = |a: &[u8]| a.chunks_exact(16).map(|c| c[..8].to_vec()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(keys(&translated.3), keys(&natively.3), "auxv keys");
}

/// `pgrep -x sleep` finds a translated `sleep`, and `ps` shows its
/// command line.
#[test]
fn pgrep_finds_translated_sleep() {
    let sleep = tool("sleep");
    let mut dbirun = Command::new(dbirun_path())
        .arg("--")
        .arg("sleep")
        .arg("30")
        .env("PATH", sleep.parent().unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = dbi_tests::run::app_named(dbirun.id(), "sleep");
    let everyone = Command::new(tool("pgrep")).args(["-x", "sleep"]).output().unwrap();
    let found = String::from_utf8_lossy(&everyone.stdout).split_whitespace().any(|p| p == pid.to_string());
    let ps = Command::new(tool("ps")).args(["-o", "args=", "-p", &pid.to_string()]).output().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    unsafe { libc::kill(dbirun.id() as i32, libc::SIGTERM) };
    let status = dbirun.wait().unwrap();
    assert!(found, "pgrep -x sleep: {}", String::from_utf8_lossy(&everyone.stdout));
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim_end(), "sleep 30");
    assert_eq!(cmdline, b"sleep\x0030\x00");
    // A known limit: /proc/PID/exe is the runtime (only a privileged call
    // could change it).
    assert!(exe.is_some());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}
