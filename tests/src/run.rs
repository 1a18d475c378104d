//! Running programs with a hard timeout and comparing a native run with a
//! run under `dbirun`.
//!
//! Programs are always executed directly (never through `sh -c`): under
//! `dbirun` the real binary must be what runs. Every run gets its own process
//! group (killed whole on timeout), stdin from /dev/null unless a file is
//! given, and RLIMIT_CORE = 0 so crashing programs leave no core files.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Status {
    pub fn from_exit_status(s: ExitStatus) -> Status {
        match (s.code(), s.signal()) {
            (Some(c), _) => Status::Code(c),
            (None, Some(sig)) => Status::Signal(sig),
            (None, None) => Status::Code(-1),
        }
    }
    pub fn is_signal(self) -> bool {
        matches!(self, Status::Signal(_))
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGSYS => "SIGSYS",
        _ => "?",
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Status::Code(c) => write!(f, "exited with {c}"),
            Status::Signal(s) => write!(f, "killed by signal {s} ({})", signal_name(s)),
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
}

impl Observed {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a run or a comparison failed.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The process (group) did not finish in time and was killed.
    TimedOut(String),
    /// The translated run differs from the native one.
    Mismatch(String),
    /// Anything else (spawn failure, native run failing, ...).
    Error(String),
}

impl Failure {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::TimedOut(_))
    }
    pub fn message(&self) -> &str {
        match self {
            Failure::TimedOut(m) | Failure::Mismatch(m) | Failure::Error(m) => m,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Options shared by the native and the translated run.
#[derive(Clone, Debug, Default)]
pub struct RunOpts {
    /// Working directory (default: the test process's).
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (on top of the inherited environment).
    pub env: Vec<(OsString, OsString)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<OsString>,
    /// File to use as stdin (default: /dev/null).
    pub stdin: Option<PathBuf>,
    /// Hard timeout per run (default: [`crate::default_timeout`], 60 s).
    pub timeout: Option<Duration>,
    /// Extra `dbirun` options, placed after `-no_native_exec`, before `--`.
    pub dbirun_options: Vec<OsString>,
}

impl RunOpts {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env_remove.push(key.into());
        self
    }
    pub fn stdin(mut self, file: impl Into<PathBuf>) -> Self {
        self.stdin = Some(file.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    pub fn dbirun_option(mut self, opt: impl Into<OsString>) -> Self {
        self.dbirun_options.push(opt.into());
        self
    }
    fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(crate::default_timeout)
    }

    /// Applies cwd, environment and stdin to `cmd`.
    pub fn apply(&self, cmd: &mut Command) -> Result<(), Failure> {
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        match &self.stdin {
            Some(f) => {
                let file = std::fs::File::open(f).map_err(|e| {
                    Failure::Error(format!("cannot open stdin file {}: {e}", f.display()))
                })?;
                cmd.stdin(file);
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        Ok(())
    }
}

/// At most this much of each stream is kept (the rest is read and dropped).
const OUTPUT_CAP: usize = 64 << 20;

fn read_capped(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut dropped = 0usize;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                dropped += n - n.min(room);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if dropped > 0 {
        out.extend_from_slice(format!("\n[dbi-tests: {dropped} more bytes dropped]\n").as_bytes());
    }
    out
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            s.push_str(&format!(" {a:?}"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs `cmd` (stdout and stderr captured; stdin as already configured, or
/// /dev/null) in its own process group, killing the group after `timeout`.
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Observed, Failure> {
    let what = describe_command(cmd);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Error(format!("cannot start {what}: {e}")))?;
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    for (is_err, stream) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        let stream = stream.expect("piped stream");
        std::thread::spawn(move || {
            let _ = tx.send((is_err, read_capped(stream)));
        });
    }
    drop(tx);

    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let exit = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid);
                let _ = child.wait();
                return Err(Failure::Error(format!("waiting for {what}: {e}")));
            }
        }
        if start.elapsed() >= timeout {
            break None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };

    let collect = |deadline: Duration, out: &mut Option<Vec<u8>>, err: &mut Option<Vec<u8>>| {
        let until = Instant::now() + deadline;
        while out.is_none() || err.is_none() {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((true, b)) => *err = Some(b),
                Ok((false, b)) => *out = Some(b),
                Err(_) => break,
            }
        }
    };
    let (mut out, mut err) = (None, None);

    let Some(status) = exit else {
        kill_group(pgid);
        let _ = child.wait();
        collect(Duration::from_secs(5), &mut out, &mut err);
        return Err(Failure::TimedOut(format!(
            "timed out after {} s (process group killed): {what}\n{}{}",
            timeout.as_secs(),
            tail("stdout so far", out.as_deref().unwrap_or_default(), 10),
            tail("stderr so far", err.as_deref().unwrap_or_default(), 10),
        )));
    };
    // The pipes close when every process holding them is gone. Leftover
    // processes of the group (daemonised children) are killed after a grace
    // period so a stray writer cannot hang the test.
    collect(Duration::from_secs(3), &mut out, &mut err);
    if out.is_none() || err.is_none() {
        kill_group(pgid);
        collect(Duration::from_secs(5), &mut out, &mut err);
    }
    match (out, err) {
        (Some(stdout), Some(stderr)) => Ok(Observed {
            stdout,
            stderr,
            status: Status::from_exit_status(status),
        }),
        _ => Err(Failure::Error(format!(
            "{what}: output pipes still open after the process exited"
        ))),
    }
}

/// [`try_run`] with stdin from /dev/null and the default timeout; panics
/// (failing the test) on timeout ("timed out") or when the program cannot be
/// started. For a stdin file, cwd or environment use [`RunOpts::apply`] and
/// [`try_run`].
pub fn run(cmd: &mut Command) -> Observed {
    cmd.stdin(Stdio::null());
    match try_run(cmd, crate::default_timeout()) {
        Ok(o) => o,
        Err(f) => panic!("{f}"),
    }
}

fn native_command(program: &Path, args: &[&str], opts: &RunOpts) -> Result<Command, Failure> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    opts.apply(&mut cmd)?;
    Ok(cmd)
}

/// Runs `program args` natively with `opts`.
pub fn run_native(program: &Path, args: &[&str], opts: &RunOpts) -> Result<Observed, Failure> {
    try_run(
        &mut native_command(program, args, opts)?,
        opts.effective_timeout(),
    )
}

/// Runs `dbirun DBIRUN_ARGS... -- program args` with `opts` (cwd, env, stdin,
/// timeout; `opts.dbirun_options` are placed after `dbirun_args`).
pub fn run_dbirun(
    dbirun_args: &[&str],
    program: &Path,
    args: &[&str],
    opts: &RunOpts,
) -> Result<Observed, Failure> {
    let mut cmd = Command::new(crate::dbirun_path());
    // The caller's fixed options first: `opts.dbirun_options` may end with a
    // client, whose options run until `--`. DBI_TESTS_DBIRUN_OPTIONS adds
    // options to every run, e.g. "-persist -persist_dir /tmp/x" to run a
    // whole suite twice, cold then warm (scripts/test-persisted.sh).
    let extra = std::env::var("DBI_TESTS_DBIRUN_OPTIONS").unwrap_or_default();
    cmd.args(extra.split_whitespace())
        .args(dbirun_args)
        .args(&opts.dbirun_options)
        .arg("--")
        .arg(program)
        .args(args);
    opts.apply(&mut cmd)?;
    try_run(&mut cmd, opts.effective_timeout())
}

fn label(program: &Path, args: &[&str]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        if a.is_empty() || a.contains(char::is_whitespace) || a.len() > 60 {
            let short: String = a.chars().take(60).collect();
            s.push_str(&format!(
                " {short:?}{}",
                if a.len() > 60 { "..." } else { "" }
            ));
        } else {
            s.push(' ');
            s.push_str(a);
        }
    }
    s
}

/// Runs `program args` natively, then as `dbirun -no_native_exec -- program
/// args`, with the same cwd, environment and stdin, and compares status,
/// stdout and stderr byte for byte. Returns the native observation.
pub fn compare_with_native(
    program: &Path,
    args: &[&str],
    opts: &RunOpts,
) -> Result<Observed, Failure> {
    let what = label(program, args);
    let native = run_native(program, args, opts).map_err(|f| match f {
        Failure::TimedOut(m) => Failure::Error(format!("{what}: the NATIVE run timed out: {m}")),
        Failure::Error(m) | Failure::Mismatch(m) => {
            Failure::Error(format!("{what}: the native run failed: {m}"))
        }
    })?;
    let translated =
        run_dbirun(&["-no_native_exec"], program, args, opts).map_err(|f| match f {
            Failure::TimedOut(m) => Failure::TimedOut(format!("{what}: translated run {m}")),
            Failure::Error(m) | Failure::Mismatch(m) => {
                Failure::Error(format!("{what}: translated run: {m}"))
            }
        })?;
    let translated = Observed { stderr: without_client_summaries(&translated.stderr), ..translated };
    compare_observed(&what, &native, &translated).map_err(Failure::Mismatch)?;
    Ok(native)
}

/// `stderr` without the clients' summary lines dbirun prints after the
/// program has exited (`dbirun: CLIENT: ...`, `Services::summary`): only
/// at the very end, so anything the program itself printed is still
/// compared in full.
pub fn without_client_summaries(stderr: &[u8]) -> Vec<u8> {
    let mut end = stderr.len();
    loop {
        let body = &stderr[..end];
        let start = body[..body.len().saturating_sub(1)].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = &body[start..];
        let is_summary = !line.is_empty()
            && line.ends_with(b"\n")
            && clients::BUILT_IN.iter().any(|c| line.starts_with(format!("dbirun: {c}: ").as_bytes()));
        if !is_summary {
            return stderr[..end].to_vec();
        }
        end = start;
    }
}

/// [`compare_with_native`], panicking with a readable report on any difference.
pub fn assert_same_as_native(program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
    match compare_with_native(program, args, opts) {
        Ok(o) => o,
        Err(f) => panic!("{f}"),
    }
}

/// Compares two observations; the error describes every differing part
/// (status, first differing line of stdout and of stderr).
pub fn compare_observed(
    what: &str,
    native: &Observed,
    translated: &Observed,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if native.status != translated.status {
        problems.push(format!(
            "status: native {}, translated {}",
            native.status, translated.status
        ));
    }
    if native.stdout != translated.stdout {
        problems.push(describe_diff("stdout", &native.stdout, &translated.stdout));
    }
    if native.stderr != translated.stderr {
        problems.push(describe_diff("stderr", &native.stderr, &translated.stderr));
    } else if !problems.is_empty() && !translated.stderr.is_empty() {
        problems.push(tail("stderr (same in both)", &translated.stderr, 5));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: translated run differs from native\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn show_line(line: Option<&[u8]>) -> String {
    match line {
        None => "<end of output>".to_owned(),
        Some(l) => {
            let s = String::from_utf8_lossy(l);
            let esc: String = s.escape_debug().collect();
            if esc.chars().count() > 300 {
                format!(
                    "\"{}...\" ({} bytes)",
                    esc.chars().take(300).collect::<String>(),
                    l.len()
                )
            } else {
                format!("\"{esc}\"")
            }
        }
    }
}

fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

/// One paragraph: sizes, the line before the first difference and the
/// differing lines from both sides; for stderr, a few more translated lines.
pub fn describe_diff(name: &str, native: &[u8], translated: &[u8]) -> String {
    let a = split_lines(native);
    let b = split_lines(translated);
    let i = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
    let mut s = format!(
        "{name} differs: native {} bytes / {} lines, translated {} bytes / {} lines; first difference at line {}:",
        native.len(),
        a.len(),
        translated.len(),
        b.len(),
        i + 1
    );
    if i > 0 {
        s.push_str(&format!(
            "\n      (line {} same:   {})",
            i,
            show_line(Some(a[i - 1]))
        ));
    }
    s.push_str(&format!(
        "\n      native:     {}",
        show_line(a.get(i).copied())
    ));
    s.push_str(&format!(
        "\n      translated: {}",
        show_line(b.get(i).copied())
    ));
    if name == "stderr" && b.len() > i + 1 {
        for (k, l) in b.iter().enumerate().skip(i + 1).take(8) {
            s.push_str(&format!(
                "\n      translated line {}: {}",
                k + 1,
                show_line(Some(l))
            ));
        }
    }
    s
}

fn tail(name: &str, data: &[u8], n: usize) -> String {
    if data.is_empty() {
        return format!("  {name}: <empty>\n");
    }
    let lines = split_lines(data);
    let start = lines.len().saturating_sub(n);
    let mut s = format!(
        "  {name} (last {} of {} lines):\n",
        lines.len() - start,
        lines.len()
    );
    for l in &lines[start..] {
        s.push_str(&format!("      {}\n", show_line(Some(l))));
    }
    s
}

/// Waits (up to 20 s) for the app dbirun `parent` runs to be named
/// exactly `name`: dbirun's own process when it exec'd the runtime, else
/// its child.
pub fn app_named(parent: u32, name: &str) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if std::fs::read_to_string(format!("/proc/{parent}/comm")).is_ok_and(|c| c.trim_end() == name) {
            return parent;
        }
        let out = std::process::Command::new(crate::tool("pgrep")).args(["-x", "-P", &parent.to_string(), name]).output().unwrap();
        let pids = String::from_utf8_lossy(&out.stdout);
        if let Some(pid) = pids.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "pgrep -x -P {parent} {name} found nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod summary_tests {
    use super::without_client_summaries;

    #[test]
    fn only_trailing_summary_lines_go() {
        assert_eq!(without_client_summaries(b"app\ndbirun: inscount: 5 executed\n"), b"app\n");
        assert_eq!(without_client_summaries(b"dbirun: inscount: a\ndbirun: inscount: b\n"), b"");
        assert_eq!(without_client_summaries(b"dbirun: inscount: a\napp\n"), b"dbirun: inscount: a\napp\n");
        assert_eq!(without_client_summaries(b"app"), b"app");
        assert_eq!(without_client_summaries(b""), b"");
        assert_eq!(without_client_summaries(b"dbirun: nosuch: x\n"), b"dbirun: nosuch: x\n");
    }
}
