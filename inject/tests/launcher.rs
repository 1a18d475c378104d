//! Integration tests of the `dbirun` launcher as a process: errors, argv contract, statuses, signals.
//!
//! None of these needs a working runtime: `$DBI_RUNTIME` points at a small
//! shell script that records its argv and does whatever the test needs (exit
//! with a status, kill itself, trap a signal). Each test has its own temp dir
//! and every wait is bounded, so a broken launcher fails instead of hanging.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// What users type: the libc-free front (inject/front), placed beside
/// dbirun-full by the build script.
const DBIRUN: &str = env!("DBIRUN_FRONT_PATH");
const DBIRUN_FULL: &str = env!("CARGO_BIN_EXE_dbirun-full");
const LIMIT: Duration = Duration::from_secs(20);

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// A temp dir plus helpers for the files a test needs in it.
struct Fixture {
    dir: TempDir,
}

/// Executables written by one test must not be open for writing in a child
/// another test is forking at that moment (the child inherits the fd until it
/// execs, and exec of the file then fails with ETXTBSY). Writers hold this
/// lock exclusively; spawns hold it shared.
static FORK_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn spawn(cmd: &mut Command) -> std::process::Child {
    let _guard = FORK_LOCK.read().unwrap_or_else(|e| e.into_inner());
    cmd.spawn().unwrap()
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _guard = FORK_LOCK.write().unwrap_or_else(|e| e.into_inner());
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A fake runtime: records its argv (one per line, argv[0] first) in `argv`, then runs `body`.
    fn runtime(&self, body: &str) -> PathBuf {
        let argv = self.path("argv");
        let script = format!(
            "#!/bin/sh\nfor a in \"$0\" \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\n{body}\n",
            argv.display()
        );
        self.write("fake-runtime", &script, 0o755)
    }

    /// dbirun in this dir, using the fake runtime if one was written.
    fn dbirun(&self) -> Command {
        let mut cmd = Command::new(DBIRUN);
        cmd.current_dir(self.dir.path());
        // -persist's default directory: inside the fixture, never the real home.
        cmd.env("XDG_CACHE_HOME", self.path("xdg"));
        let rt = self.path("fake-runtime");
        if rt.exists() {
            cmd.env("DBI_RUNTIME", rt);
        } else {
            // Any launch here is a bug in the test's expectations: make it visible.
            cmd.env("DBI_RUNTIME", self.path("no-runtime-expected"));
        }
        cmd
    }

    /// The runtime's argv, without the `-persist_report FILE` pair (a
    /// fresh file name each run, checked apart: in the cache directory with
    /// -persist, else a temporary file for -stats or clients).
    fn argv(&self) -> Vec<String> {
        let p = self.path("argv");
        let text = fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("runtime did not run ({}): {e}", p.display()));
        let mut argv: Vec<String> = text.lines().map(str::to_string).collect();
        if let Some(i) = argv.iter().position(|a| a == "-persist_report") {
            let report = Path::new(&argv[i + 1]).to_path_buf();
            if argv.iter().any(|a| a == "-persist") {
                assert_eq!(argv[i - 2], "-persist_dir", "{argv:?}");
                assert_eq!(Path::new(&argv[i - 1]), report.parent().unwrap(), "the report goes to the cache directory");
            } else {
                assert!(argv.iter().any(|a| a == "-stats" || a == "-c"), "a report without -persist is for -stats or clients' summaries: {argv:?}");
                assert!(!report.exists(), "dbirun removes the temporary report: {}", report.display());
            }
            argv.drain(i..i + 2);
        }
        argv
    }

    fn runtime_started(&self) -> bool {
        self.path("argv").exists()
    }

    /// Runs to completion (bounded), stdout and stderr captured through files.
    fn run(&self, cmd: &mut Command) -> Outcome {
        let out = self.path("dbirun.stdout");
        let err = self.path("dbirun.stderr");
        cmd.stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap());
        let mut child = spawn(cmd);
        let status = wait_bounded(&mut child);
        Outcome {
            status,
            stdout: fs::read_to_string(out).unwrap(),
            stderr: fs::read_to_string(err).unwrap(),
        }
    }
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dbirun did not finish within {LIMIT:?}");
        }
        sleep(Duration::from_millis(10));
    }
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + LIMIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        sleep(Duration::from_millis(10));
    }
}

/// A usage error: status 2, exactly one line on stderr, nothing on stdout, no runtime.
fn assert_usage_error(f: &Fixture, args: &[&str], expect: &str) {
    let o = f.run(f.dbirun().args(args));
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", o.stderr);
    assert_eq!(o.stderr_lines().len(), 1, "{args:?}: {:?}", o.stderr);
    assert!(o.stderr.starts_with("dbirun: "), "{args:?}: {:?}", o.stderr);
    assert!(
        o.stderr.contains(expect),
        "{args:?}: {:?} lacks {expect:?}",
        o.stderr
    );
    assert_eq!(o.stdout, "", "{args:?}");
    assert!(!f.runtime_started(), "{args:?} started the runtime");
}

#[test]
fn unknown_options_are_one_line_errors() {
    let f = Fixture::new();
    f.runtime("exit 0");
    assert_usage_error(
        &f,
        &["-bogus", "--", "/bin/true"],
        "unknown option '-bogus'",
    );
    assert_usage_error(
        &f,
        &["--bogus", "--", "/bin/true"],
        "unknown option '--bogus'",
    );
    assert_usage_error(
        &f,
        &["-stats", "-bogus", "/bin/true"],
        "unknown option '-bogus'",
    );
}

#[test]
fn unknown_client_is_a_one_line_error() {
    let f = Fixture::new();
    f.runtime("exit 0");
    assert_usage_error(
        &f,
        &["-c", "nosuch", "--", "/bin/true"],
        "unknown client 'nosuch' (available: ",
    );
}

#[test]
fn missing_app_or_value_is_a_usage_error() {
    let f = Fixture::new();
    f.runtime("exit 0");
    assert_usage_error(&f, &[], "no application given");
    assert_usage_error(&f, &["-v", "--"], "no application given");
    // Client options run until '--', so the app is swallowed without one.
    assert_usage_error(&f, &["-c", "null", "/bin/true"], "no application given");
    assert_usage_error(&f, &["-persist_dir"], "requires a value");
}

#[test]
fn help_and_version_go_to_stdout() {
    let f = Fixture::new();
    for flag in ["-h", "--help"] {
        let o = f.run(f.dbirun().arg(flag));
        assert_eq!(o.status.code(), Some(0));
        assert!(o
            .stdout
            .contains("Usage: dbirun [options] [-c CLIENT [client options]] -- APP [ARGS...]"));
        assert!(o.stdout.contains("--persist_dir <DIR>"), "{}", o.stdout);
        assert_eq!(o.stderr, "");
    }
    let o = f.run(f.dbirun().arg("--version"));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        o.stdout.trim(),
        format!("dbirun {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Checks status and the exact one-line message; the runtime must not start.
fn assert_app_error(f: &Fixture, cmd: &mut Command, code: i32, message: &str) {
    let o = f.run(cmd);
    assert_eq!(o.status.code(), Some(code), "{}", o.stderr);
    assert_eq!(o.stderr, format!("dbirun: {message}\n"));
    assert_eq!(o.stdout, "");
    assert!(!f.runtime_started());
}

#[test]
fn missing_app_file() {
    let f = Fixture::new();
    f.runtime("exit 0");
    assert_app_error(
        &f,
        f.dbirun().args(["--", "/nonexistent/x"]),
        127,
        "/nonexistent/x: No such file or directory",
    );
    assert_app_error(
        &f,
        f.dbirun().args(["--", "no-such-command-xyz"]),
        127,
        "no-such-command-xyz: command not found",
    );
    let empty_bin = f.path("empty-bin");
    fs::create_dir(&empty_bin).unwrap();
    assert_app_error(
        &f,
        f.dbirun().env("PATH", &empty_bin).args(["--", "ls"]),
        127,
        "ls: command not found",
    );
}

#[test]
fn directory_app() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let d = f.path("adir");
    fs::create_dir(&d).unwrap();
    assert_app_error(
        &f,
        f.dbirun().arg("--").arg(&d),
        126,
        &format!("{}: Is a directory", d.display()),
    );
    // Relative, as typed: the message shows what the user wrote.
    assert_app_error(
        &f,
        f.dbirun().args(["--", "./adir"]),
        126,
        "./adir: Is a directory",
    );
}

#[test]
fn non_executable_app() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let plain = f.write("bin/plain", "#!/bin/sh\n", 0o644);
    // Even root needs an x bit for X_OK on a regular file.
    assert_eq!(
        nix::unistd::access(&plain, nix::unistd::AccessFlags::X_OK),
        Err(nix::errno::Errno::EACCES)
    );
    assert_app_error(
        &f,
        f.dbirun().arg("--").arg(&plain),
        126,
        &format!("{}: Permission denied", plain.display()),
    );
    // Found only as a non-executable file in PATH: bash names the file it found.
    assert_app_error(
        &f,
        f.dbirun().env("PATH", f.path("bin")).args(["--", "plain"]),
        126,
        &format!("{}: Permission denied", plain.display()),
    );
}

#[test]
fn runtime_argv_encoding() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let app = f.write("bin/myapp", "#!/bin/sh\n", 0o755);
    let o = f.run(f.dbirun().env("PATH", f.path("bin")).args([
        "-v",
        "-stats",
        "-persist",
        "-persist_dir",
        "rel/cache",
        "-no_follow_children",
        "-no_native_exec",
        "-c",
        "null",
        "a",
        "-b",
        "--client",
        "null",
        "--",
        "myapp",
        "x",
        "--",
        "-y",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let cwd = f.dir.path().canonicalize().unwrap();
    let expect = [
        f.path("fake-runtime").display().to_string(),
        "-v".into(),
        "-stats".into(),
        "-persist".into(),
        "-persist_dir".into(),
        cwd.join("rel/cache").join(uid().to_string()).display().to_string(),
        "-no_follow_children".into(),
        "-no_native_exec".into(),
        "-traces".into(),
        "-c".into(),
        "null".into(),
        "2".into(),
        "a".into(),
        "-b".into(),
        "-c".into(),
        "null".into(),
        "0".into(),
        "--".into(),
        app.display().to_string(),
        "myapp".into(),
        "x".into(),
        "--".into(),
        "-y".into(),
    ];
    assert_eq!(f.argv(), expect);
}

#[test]
fn option_spellings_reach_the_runtime_identically() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["-stats"], &["-stats", "-traces"]),
        (&["--stats"], &["-stats", "-traces"]),
        (&["--v"], &["-v", "-traces"]),
        (&["--verbose"], &["-v", "-traces"]),
        (&["--persist"], &["-persist", "-persist_dir", "{xdg}/dbirun/{uid}", "-traces"]),
        (&["-persist", "-persist_dir", "x"], &["-persist", "-persist_dir", "{dir}/x/{uid}", "-traces"]),
        (&["--persist", "--persist_dir", "x"], &["-persist", "-persist_dir", "{dir}/x/{uid}", "-traces"]),
        (&["-persist", "--persist-dir", "x"], &["-persist", "-persist_dir", "{dir}/x/{uid}", "-traces"]),
        (&["-persist", "--persist-dir=x"], &["-persist", "-persist_dir", "{dir}/x/{uid}", "-traces"]),
        (&["-persist", "--persist_dir=x"], &["-persist", "-persist_dir", "{dir}/x/{uid}", "-traces"]),
        (&["-traces", "-no_traces"], &[]),
        (&["-traces", "-disable_traces"], &[]),
        (&["--traces", "--no-traces"], &[]),
        (&["-traces"], &["-traces"]),
        (&["--traces"], &["-traces"]),
        // Traces are the default: -no_traces alone turns them off.
        (&["-no_traces"], &[]),
        // Without -persist the directory is passed on but not prepared.
        (&["-persist_dir", "/nonexistent/x"], &["-persist_dir", "/nonexistent/x", "-traces"]),
        (&["--no-follow-children"], &["-no_follow_children", "-traces"]),
        (&["--no_follow_children"], &["-no_follow_children", "-traces"]),
        (&["--no_native_exec"], &["-no_native_exec", "-traces"]),
        (&["-predicted_returns"], &["-traces", "-predicted_returns"]),
        (&["--predicted-returns"], &["-traces", "-predicted_returns"]),
        (&["--client", "null", "o"], &["-traces", "-c", "null", "1", "o"]),
    ];
    for (given, passed) in cases {
        let f = Fixture::new();
        f.runtime("exit 0");
        let o = f.run(f.dbirun().args(*given).args(["--", "/bin/true", "arg"]));
        assert_eq!(o.status.code(), Some(0), "{given:?}: {}", o.stderr);
        let argv = f.argv();
        let dir = f.dir.path().canonicalize().unwrap();
        let expect: Vec<String> = passed
            .iter()
            .map(|p| {
                p.replace("{xdg}", &f.path("xdg").display().to_string())
                    .replace("{dir}", &dir.display().to_string())
                    .replace("{uid}", &uid().to_string())
            })
            .chain(["--", "/bin/true", "/bin/true", "arg"].map(String::from))
            .collect();
        assert_eq!(&argv[1..], expect, "{given:?}");
    }
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[test]
fn persist_dir_is_created_private_per_user() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new();
    f.runtime("exit 0");
    let o = f.run(f.dbirun().args(["-persist", "--", "/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let dir = f.path("xdg").join("dbirun").join(uid().to_string());
    let meta = fs::metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), uid());
}

#[test]
fn unsafe_persist_dirs_are_refused_and_the_run_goes_on() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new();
    f.runtime("exit 0");
    // Writable by others.
    let base = f.path("shared");
    let mine = base.join(uid().to_string());
    fs::create_dir_all(&mine).unwrap();
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o777)).unwrap();
    let o = f.run(f.dbirun().args(["-persist", "-persist_dir", "shared", "--", "/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("not persisting code") && o.stderr.contains("writable by others"), "{}", o.stderr);
    assert!(!f.argv().iter().any(|a| a.starts_with("-persist")), "{:?}", f.argv());
    // Owned by someone else (only root can make one).
    fs::set_permissions(&mine, fs::Permissions::from_mode(0o700)).unwrap();
    if nix::unistd::chown(&mine, Some(nix::unistd::Uid::from_raw(65534)), None).is_ok() && fs::metadata(&mine).unwrap().uid() != uid() {
        let o = f.run(f.dbirun().args(["-persist", "-persist_dir", "shared", "--", "/bin/true"]));
        assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
        assert!(o.stderr.contains("owned by uid 65534"), "{}", o.stderr);
        assert!(!f.argv().iter().any(|a| a.starts_with("-persist")), "{:?}", f.argv());
    }
    // A file where the directory should be.
    fs::write(f.path("file-base"), "x").unwrap();
    let o = f.run(f.dbirun().args(["-persist", "-persist_dir", "file-base", "--", "/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("not persisting code") && o.stderr.contains("file-base is not a directory"), "the documented refusal: {}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}

#[test]
fn app_without_double_dash_and_argv0_as_typed() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let o = f.run(f.dbirun().args(["-stats", "sh", "-v", "-c", "x"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let argv = f.argv();
    assert_eq!(argv[1..4], ["-stats", "-traces", "--"]);
    assert!(
        argv[4].ends_with("/sh") && Path::new(&argv[4]).is_absolute(),
        "{argv:?}"
    );
    assert_eq!(argv[5..], ["sh", "-v", "-c", "x"]);
}

#[test]
fn unset_path_searches_the_default_path() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let o = f.run(f.dbirun().env_remove("PATH").args(["--", "sh"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let argv = f.argv();
    let defaults = ["/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh"];
    assert!(defaults.contains(&argv[3].as_str()), "{argv:?}");
}

#[test]
fn exit_status_passes_through() {
    for code in [0, 1, 7, 126, 127, 255] {
        let f = Fixture::new();
        f.runtime(&format!("exit {code}"));
        let o = f.run(f.dbirun().args(["--", "/bin/true"]));
        assert_eq!(o.status.code(), Some(code), "{}", o.stderr);
        assert_eq!(o.stderr, "");
    }
}

#[test]
fn signal_death_passes_through() {
    // 40 is a real-time signal (SIGRTMIN+6 under glibc): its default action kills too.
    for sig in [11, 9, 15, 40] {
        let f = Fixture::new();
        f.runtime(&format!("ulimit -c 0\nkill -{sig} $$\nexit 99"));
        let o = f.run(f.dbirun().args(["--", "/bin/true"]));
        assert_eq!(
            o.status.signal(),
            Some(sig),
            "signal {sig}: {:?} {}",
            o.status,
            o.stderr
        );
        assert_eq!(o.stderr, "");
    }
    // dbirun must not add a core file of its own next to the app's.
    let f = Fixture::new();
    f.runtime("ulimit -c 0\nkill -SEGV $$");
    let o = f.run(f.dbirun().args(["--", "/bin/true"]));
    assert_eq!(o.status.signal(), Some(11));
    assert!(!o.status.core_dumped());
    assert!(!f.path("core").exists());
}

#[test]
fn environment_is_passed_unchanged() {
    let f = Fixture::new();
    let env_out = f.path("env");
    f.runtime(&format!("exec /usr/bin/env > '{}'", env_out.display()));
    let rt = f.path("fake-runtime");
    let o = f.run(
        f.dbirun()
            .env_clear()
            .env("DBI_RUNTIME", &rt)
            .env("PATH", "/usr/bin:/bin")
            .env("ODD", "a b=c")
            .args(["--", "/bin/true"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let mut got: Vec<String> = fs::read_to_string(env_out)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("PWD=")) // dash exports PWD itself
        .map(str::to_string)
        .collect();
    got.sort();
    let mut want = vec![
        format!("DBI_RUNTIME={}", rt.display()),
        "ODD=a b=c".into(),
        "PATH=/usr/bin:/bin".into(),
    ];
    want.sort();
    assert_eq!(got, want);
}

/// Signal bits from /proc status lines ("SigIgn:\t0000000000001000").
fn sig_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn signal_state_is_inherited_by_the_runtime() {
    use nix::sys::signal::{
        sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow,
    };

    let status_of_runtime = |prepare: bool| -> String {
        let f = Fixture::new();
        let out = f.path("status");
        // grep reads its own status and leaves signals alone; exec makes it the runtime's process.
        f.runtime(&format!(
            "exec /bin/grep -E '^Sig(Ign|Blk)' /proc/self/status > '{}'",
            out.display()
        ));
        let mut cmd = f.dbirun();
        cmd.args(["--", "/bin/true"]);
        if prepare {
            unsafe {
                cmd.pre_exec(|| {
                    let ignore =
                        SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
                    for s in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGPIPE] {
                        sigaction(s, &ignore)?;
                    }
                    let mut blocked = SigSet::empty();
                    blocked.add(Signal::SIGUSR1);
                    blocked.add(Signal::SIGTERM);
                    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None)?;
                    Ok(())
                });
            }
        }
        let o = f.run(&mut cmd);
        assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
        fs::read_to_string(out).unwrap()
    };

    // Natively a program starts with SIGPIPE at its default: Rust's std startup must not leak into the app.
    let plain = status_of_runtime(false);
    assert_eq!(
        sig_mask(&plain, "SigIgn") & (bit(13) | bit(2) | bit(1)),
        0,
        "{plain}"
    );
    assert_eq!(sig_mask(&plain, "SigBlk"), 0, "{plain}");

    let prepared = status_of_runtime(true);
    let ign = sig_mask(&prepared, "SigIgn");
    assert_eq!(
        ign & (bit(2) | bit(1) | bit(13)),
        bit(2) | bit(1) | bit(13),
        "{prepared}"
    );
    assert_eq!(
        sig_mask(&prepared, "SigBlk"),
        bit(10) | bit(15),
        "{prepared}"
    );
}

/// Starts dbirun on a fake runtime that traps `traps` and loops; returns once it is ready.
fn start_looping(f: &Fixture, traps: &[&str]) -> Child {
    let ready = f.path("ready");
    let marker = f.path("marker");
    let mut body = String::from("ulimit -c 0\n");
    for name in traps {
        body += &format!(
            "trap 'echo {name} > \"{}\"; exit 42' {name}\n",
            marker.display()
        );
    }
    body += &format!(
        ": > '{}'\nwhile :; do /bin/sleep 0.05; done",
        ready.display()
    );
    f.runtime(&body);
    let mut cmd = f.dbirun();
    cmd.args(["--", "/bin/true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn(&mut cmd);
    wait_for_file(&ready);
    child
}

#[test]
fn signals_sent_to_dbirun_are_forwarded() {
    let names = ["TERM", "INT", "HUP", "QUIT"];
    for (name, sig) in names.iter().zip([
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ]) {
        let f = Fixture::new();
        let mut child = start_looping(&f, &names);
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = wait_bounded(&mut child);
        assert_eq!(status.code(), Some(42), "{name}: {status:?}");
        assert_eq!(fs::read_to_string(f.path("marker")).unwrap().trim(), *name);
    }
}

#[test]
fn forwarded_signal_that_kills_the_app_kills_dbirun_too() {
    let f = Fixture::new();
    let mut child = start_looping(&f, &[]);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_bounded(&mut child);
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

#[test]
fn runtime_lookup() {
    // An explicit $DBI_RUNTIME that does not exist is an error, not a fallback.
    let f = Fixture::new();
    let o = f.run(
        Command::new(DBIRUN)
            .env("DBI_RUNTIME", f.path("missing"))
            .args(["--", "/bin/true"]),
    );
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(o.stderr_lines().len(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("DBI_RUNTIME"), "{}", o.stderr);

    // Present but not executable: exec fails and is reported, as a shell would, with 126.
    let plain = f.write("plain-runtime", "#!/bin/sh\nexit 0\n", 0o644);
    let o = f.run(
        Command::new(DBIRUN)
            .env("DBI_RUNTIME", &plain)
            .args(["--", "/bin/true"]),
    );
    assert_eq!(o.status.code(), Some(126));
    assert_eq!(
        o.stderr,
        format!(
            "dbirun: cannot execute runtime '{}': Permission denied\n",
            plain.display()
        )
    );

    // Without $DBI_RUNTIME, a dbi-runtime beside the dbirun executable wins.
    let f = Fixture::new();
    let argv = f.path("argv");
    let beside = f.write(
        "install/dbi-runtime",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > '{}'\nexit 3\n",
            argv.display()
        ),
        0o755,
    );
    let copy = f.path("install/dbirun");
    {
        let _guard = FORK_LOCK.write().unwrap_or_else(|e| e.into_inner());
        fs::copy(DBIRUN, &copy).unwrap();
    }
    let o = f.run(
        Command::new(&copy)
            .env_remove("DBI_RUNTIME")
            .args(["--", "/bin/true"]),
    );
    assert_eq!(o.status.code(), Some(3), "{}", o.stderr);
    assert_eq!(f.argv()[0], beside.display().to_string());
}

#[test]
fn closed_standard_fds_stay_closed() {
    // A runtime started with fds 0-2 closed must see them closed, as the app
    // would natively (std's startup would otherwise reopen them on /dev/null).
    let f = Fixture::new();
    f.runtime("exec /usr/bin/test -e /proc/self/fd/0 -o -e /proc/self/fd/1 -o -e /proc/self/fd/2");
    let rt = f.path("fake-runtime");
    let close_std = || {
        for fd in 0..3 {
            unsafe { nix::libc::close(fd) };
        }
        Ok(())
    };
    let mut native = Command::new(&rt);
    native.env_clear();
    let mut under = f.dbirun();
    under
        .env_clear()
        .env("DBI_RUNTIME", &rt)
        .args(["--", "/bin/true"]);
    let mut statuses = Vec::new();
    for cmd in [&mut native, &mut under] {
        unsafe { cmd.pre_exec(close_std) };
        let mut child = spawn(cmd);
        statuses.push(wait_bounded(&mut child).code());
    }
    assert_eq!(
        statuses,
        [Some(1), Some(1)],
        "test(1) exits 1 when all three are closed"
    );
}

/// DBIRUN_OPTIONS holds default options, beneath the command line's.
#[test]
fn default_options_from_dbirun_options() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let o = f.run(f.dbirun().env("DBIRUN_OPTIONS", "-stats -persist_dir /nonexistent/x").args(["-v", "--", "/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    let argv = f.argv();
    assert_eq!(&argv[1..], ["-v", "-stats", "-persist_dir", "/nonexistent/x", "-traces", "--", "/bin/true", "/bin/true"].map(String::from));
    let o = f.run(f.dbirun().env("DBIRUN_OPTIONS", "-bogus").args(["--", "/bin/true"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(o.stderr_lines().len(), 1, "{}", o.stderr);
    assert!(o.stderr.starts_with("dbirun: DBIRUN_OPTIONS: "), "{}", o.stderr);
}

/// Whether the ELF file at `path` names a program interpreter (PT_INTERP):
/// a dynamically linked program, started by ld.so.
fn has_interpreter(path: &str) -> bool {
    let elf = fs::read(path).unwrap();
    let word = |at: usize, len: usize| elf[at..at + len].iter().rev().fold(0u64, |v, &b| v << 8 | b as u64);
    let (phoff, phentsize, phnum) = (word(32, 8) as usize, word(54, 2) as usize, word(56, 2) as usize);
    (0..phnum).any(|i| word(phoff + i * phentsize, 4) == 3)
}

/// dbirun-full starts every run the front hands over: linked statically, it spends nothing in ld.so
/// (a dynamic dbirun took ~0.6 ms more a run here). Built without the static
/// C archives (no libc6-dev), it stays dynamic, and says so at build time.
#[test]
fn dbirun_is_linked_without_an_interpreter_where_static_archives_exist() {
    let out = Command::new("cc").arg("-print-file-name=libc.a").output().expect("cc");
    let libc_a = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !Path::new(&libc_a).is_absolute() {
        eprintln!("no static libc here ({libc_a}): dbirun is dynamic by design");
        return;
    }
    assert!(!has_interpreter(DBIRUN_FULL), "{DBIRUN_FULL} has a PT_INTERP: the static link in inject/build.rs did not happen");
    // And a dynamic program here does have one: the check can fail.
    assert!(has_interpreter("/bin/sh"), "/bin/sh without PT_INTERP: the header walk is wrong");
}

/// The front copied alone into the fixture: a command line it hands over
/// finds no dbirun-full beside it there, so a run shows which of the two
/// started the runtime.
fn front_alone(f: &Fixture) -> PathBuf {
    let p = f.path("alone/dbirun");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _guard = FORK_LOCK.write().unwrap_or_else(|e| e.into_inner());
    fs::copy(DBIRUN, &p).unwrap();
    p
}

/// Runs `program` as the fixture's dbirun would be run, with `args`.
fn run_as(f: &Fixture, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(program);
    cmd.current_dir(f.dir.path()).env("XDG_CACHE_HOME", f.path("xdg")).env("DBI_RUNTIME", f.path("fake-runtime")).env_remove("DBIRUN_OPTIONS");
    cmd.envs(env.iter().copied()).args(args);
    f.run(&mut cmd)
}

/// The runtime's argv with the run's own numbers (pid, start time,
/// report name) replaced: they differ between any two runs.
fn without_run_numbers(argv: Vec<String>) -> Vec<String> {
    let mut argv = argv;
    if let Some(i) = argv.iter().position(|a| a == "-record_run") {
        argv[i + 1] = "PID".into();
        argv[i + 2] = "NS".into();
    }
    argv
}

/// What the front starts itself: the runtime command line dbirun-full
/// builds for the same command line and environment, with no dbirun-full
/// anywhere near (the copy runs alone).
#[test]
fn the_front_starts_plain_runs_as_dbirun_full_would() {
    let cases: &[(&[&str], &str)] = &[
        (&["--", "/bin/true", "arg"], ""),
        (&["/bin/true", "-x", "--", "y"], ""),
        (&["-no_traces", "--", "/bin/true"], ""),
        (&["-disable_traces", "-traces", "--", "/bin/true"], ""),
        (&["--no-follow-children", "-predicted_returns", "--", "/bin/true", "a b", ""], ""),
        (&["-persist_dir", "rel/x", "--persist-dir=/abs/y", "--", "/bin/true"], ""),
        (&["-persist_dir", "rel/x", "--", "/bin/true"], ""),
        (&["--", "sh", "-c", "true"], ""),
        (&["--", "/bin/true"], "-disable_traces  -no_follow_children -persist_dir /from/env"),
        (&["--persist_dir", "cmd", "--", "/bin/true"], "-persist_dir /from/env"),
        // Clients that print no summary, their options, -logdir.
        (&["-c", "drcov", "--", "/bin/true"], ""),
        (&["-logdir", "logs", "-c", "bbcount", "-top", "5", "--client", "null", "--", "/bin/true", "x"], ""),
        (&["--logdir=logs", "-no_traces", "-c", "null", "x", "--", "/bin/true"], ""),
        (&["-logdir", "/tmp", "--logdir", "logs", "-c", "opcodes", "--", "/bin/true"], ""),
        (&["-c", "null", "--", "/bin/true"], "-c drcov -format_version 2 -logdir logs -no_traces"),
        (&["--", "/bin/true"], "-logdir logs -c drcov -format_version 2"),
    ];
    for (args, env_options) in cases {
        let f = Fixture::new();
        f.runtime("exit 0");
        fs::create_dir(f.path("logs")).unwrap();
        let alone = front_alone(&f);
        let env = [("DBIRUN_OPTIONS", *env_options), ("PATH", "/usr/bin:/bin")];
        let from_front = run_as(&f, &alone, args, &env);
        assert_eq!(from_front.status.code(), Some(0), "{args:?}: the front handed over: {}", from_front.stderr);
        let front_argv = f.argv();
        let from_full = run_as(&f, Path::new(DBIRUN_FULL), args, &env);
        assert_eq!(from_full.status.code(), Some(0), "{args:?}: {}", from_full.stderr);
        assert_eq!(front_argv, f.argv(), "{args:?} with DBIRUN_OPTIONS={env_options:?}");
    }
}

/// Everything but a plain run goes to dbirun-full with the argv and
/// environment as they came: clients that print a summary, -stats, -v,
/// help, mistakes, file mode, a cache directory or server that is not
/// ready.
#[test]
fn the_front_hands_everything_else_to_dbirun_full() {
    let cases: &[(&[&str], &str)] = &[
        (&["-c", "inscount", "--", "/bin/true"], ""),
        (&["-c", "null", "-c", "inscount", "--", "/bin/true"], ""),
        (&["-c", "drcov", "-help"], ""),
        (&["-c", "drcov", "-h", "--", "/bin/true"], ""),
        (&["-c", "nosuch", "--", "/bin/true"], ""),
        (&["-c", "--", "/bin/true"], ""),
        (&["-c", "null", "/bin/true"], ""),
        (&["--client=null", "--", "/bin/true"], ""),
        (&["-logdir", "no-such-dir", "-c", "null", "--", "/bin/true"], ""),
        (&["-logdir", "fake-runtime", "-c", "null", "--", "/bin/true"], ""),
        (&["-logdir", "--", "/bin/true"], ""),
        (&["-stats", "--", "/bin/true"], ""),
        (&["-v", "--", "/bin/true"], ""),
        (&["-logdir", ".", "--", "/bin/true"], ""),
        (&["-aot", "-persist", "--", "/bin/true"], ""),
        (&["--help"], ""),
        (&["-persist"], ""),
        (&["-bogus", "--", "/bin/true"], ""),
        (&["-persist=1", "--", "/bin/true"], ""),
        (&["-persist_dir", "--", "/bin/true"], ""),
        (&["-persist_dir", "a/../b", "--", "/bin/true"], ""),
        (&["-persist_dir", "a//b", "--", "/bin/true"], ""),
        (&["--", "no-such-program-here"], ""),
        (&["--", "./not-here"], ""),
        (&["-persist", "-no_persist_server", "--", "/bin/true"], ""),
        // No cache directory yet, and no server: dbirun-full prepares both.
        (&["-persist", "--", "/bin/true"], ""),
        (&["--", "/bin/true"], "-stats"),
        (&["--", "/bin/true"], "-bogus"),
        (&["--", "/bin/true"], "/bin/true"),
        (&["--", "/bin/true"], "-c inscount"),
    ];
    for (args, env_options) in cases {
        let f = Fixture::new();
        f.runtime("exit 0");
        let alone = front_alone(&f);
        let o = run_as(&f, &alone, args, &[("DBIRUN_OPTIONS", env_options)]);
        let full = f.path("alone/dbirun-full");
        assert_eq!(o.status.code(), Some(127), "{args:?} with DBIRUN_OPTIONS={env_options:?}: {}", o.stderr);
        assert_eq!(o.stderr, format!("dbirun: cannot execute {}: No such file or directory (errno 2)\n", full.display()), "{args:?}");
        assert!(!f.runtime_started(), "{args:?}: the front started the runtime");
    }
}

/// Every built-in client is either one the front starts itself or, if it
/// prints a summary after the app (dbirun-full waits for it), handed over:
/// the front's list of quiet clients keeps up with `clients::BUILT_IN`.
#[test]
fn the_front_starts_every_client_but_those_that_summarise() {
    for &client in clients::BUILT_IN {
        let f = Fixture::new();
        f.runtime("exit 0");
        let alone = front_alone(&f);
        let o = run_as(&f, &alone, &["-c", client, "--", "/bin/true"], &[]);
        if clients::SUMMARIZING.contains(&client) {
            assert_eq!(o.status.code(), Some(127), "{client}: {}", o.stderr);
            assert!(!f.runtime_started(), "{client}: the front started a client whose summary dbirun-full prints");
        } else {
            assert_eq!(o.status.code(), Some(0), "{client}: the front handed over: {}", o.stderr);
            let argv = f.argv();
            assert!(argv.windows(3).any(|w| w == ["-c", client, "0"]), "{client}: {argv:?}");
        }
    }
}

/// Listens on `dir`'s cache server socket and holds its lock, with a
/// lock note naming this process and `version`, as a `dbicached` of that
/// version does (the lock is held until the returned file drops).
fn listen_as_server(dir: &Path, version: u32) -> (std::os::unix::net::UnixListener, nix::fcntl::Flock<fs::File>) {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.join(persist::server_protocol::SOCKET)).unwrap();
    let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(persist::server_protocol::LOCK)).unwrap();
    let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e).unwrap();
    fs::write(dir.join(persist::server_protocol::LOCK), persist::server_protocol::lock_note(std::process::id(), version)).unwrap();
    (listener, lock)
}

/// With -persist and a server of this version listening, the front starts
/// the run itself: the same runtime command line as dbirun-full's, and
/// the run's report (its command line) in the cache directory. A server of
/// another version is dbirun-full's to deal with.
#[test]
fn a_persist_run_with_this_versions_server_listening_is_the_fronts() {
    let f = Fixture::new();
    f.runtime("exit 0");
    let alone = front_alone(&f);
    let dir = f.path("xdg/dbirun").join(uid().to_string());
    let _server = listen_as_server(&dir, cachetool::RUNTIME_VERSION);
    let args = ["-persist", "--", "/bin/echo", "a b", "c"];
    let from_front = run_as(&f, &alone, &args, &[]);
    assert_eq!(from_front.status.code(), Some(0), "the front handed over: {}", from_front.stderr);
    let text = fs::read_to_string(f.path("argv")).unwrap();
    let report = text.lines().skip_while(|l| *l != "-persist_report").nth(1).unwrap().to_string();
    assert_eq!(fs::read_to_string(&report).unwrap(), "command /bin/echo 'a b' c\n", "{report}");
    let front_argv = without_run_numbers(f.argv());
    let expect_pid_and_time = text.lines().skip_while(|l| *l != "-record_run").nth(1).unwrap().parse::<u32>();
    assert!(expect_pid_and_time.is_ok(), "{text}");
    assert!(front_argv.contains(&"-persist_server".to_string()), "{front_argv:?}");
    let from_full = run_as(&f, Path::new(DBIRUN_FULL), &args, &[]);
    assert_eq!(from_full.status.code(), Some(0), "{}", from_full.stderr);
    assert_eq!(front_argv, without_run_numbers(f.argv()));

    // The note of another version: handed over.
    fs::write(dir.join(persist::server_protocol::LOCK), persist::server_protocol::lock_note(std::process::id(), cachetool::RUNTIME_VERSION ^ 1)).unwrap();
    fs::remove_file(f.path("argv")).unwrap();
    let o = run_as(&f, &alone, &args, &[]);
    assert_eq!(o.status.code(), Some(127), "{}", o.stderr);
    assert!(!f.runtime_started());

    // This version's note left by a server that is gone (nothing holds
    // the lock): handed over, and the lock is not left taken.
    fs::write(dir.join(persist::server_protocol::LOCK), persist::server_protocol::lock_note(std::process::id(), cachetool::RUNTIME_VERSION)).unwrap();
    drop(_server);
    let o = run_as(&f, &alone, &args, &[]);
    assert_eq!(o.status.code(), Some(127), "{}", o.stderr);
    assert!(!f.runtime_started());
    let lock = fs::File::open(dir.join(persist::server_protocol::LOCK)).unwrap();
    assert!(nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok(), "the front kept the lock");
}
