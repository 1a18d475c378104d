//! The plain run's runtime command line: the argv contract of
//! `inject/src/runtime_args.rs` (options in its order, single-dash,
//! absolute directories, each client's options counted), for the options
//! the front takes.

use alloc::vec::Vec;

use crate::startup::Startup;
use crate::{app_path, cache_dir, command, server, sys};

/// Overrides the runtime binary, as in dbirun-full (`runtime_path.rs`).
const RUNTIME_ENV: &[u8] = b"DBI_RUNTIME";
const RUNTIME_FILE: &[u8] = b"dbi-runtime";

/// A run ready to exec.
pub struct Run {
    /// NUL-terminated strings; `argv[0]` is the runtime's path.
    pub argv: Vec<Vec<u8>>,
    /// The report file written for the run (with `-persist`).
    report: Option<Vec<u8>>,
}

impl Run {
    /// Removes the report again: the runtime could not be executed, and
    /// dbirun-full, taking over, writes its own.
    pub fn forget_report(&self) {
        if let Some(path) = &self.report {
            let _ = rustix::fs::unlink(path.as_slice());
        }
    }
}

fn regular_file(path: &[u8]) -> bool {
    rustix::fs::stat(path).is_ok_and(|m| rustix::fs::FileType::from_raw_mode(m.st_mode) == rustix::fs::FileType::RegularFile)
}

/// `$DBI_RUNTIME`, else `dbi-runtime` beside this executable, else where
/// the build put it; None where dbirun-full would report an error.
fn runtime(start: &Startup) -> Option<Vec<u8>> {
    if let Some(path) = start.var(RUNTIME_ENV).filter(|v| !v.is_empty()) {
        return regular_file(path).then(|| path.to_vec());
    }
    if let Some(mut beside) = sys::own_dir() {
        beside.push(b'/');
        beside.extend_from_slice(RUNTIME_FILE);
        if regular_file(&beside) {
            return Some(beside);
        }
    }
    let built = env!("DBI_RUNTIME_PATH").as_bytes();
    regular_file(built).then(|| built.to_vec())
}

fn c(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.push(0);
    v
}

/// The runtime argv for `start`'s command line if it is a plain run the
/// front can start itself (writing the run's report first, with
/// `-persist`); None to hand over to dbirun-full.
pub fn plan(start: &Startup) -> Option<Run> {
    let request = command::parse(start.args.get(1..).unwrap_or_default(), start.var(b"DBIRUN_OPTIONS"))?;
    // With -persist and no server, dbirun-full waits to record the run itself.
    if request.persist && request.no_persist_server {
        return None;
    }
    let app = app_path::resolve(request.command[0], start.var(b"PATH"))?;
    let runtime = runtime(start)?;
    let persist_dir = match request.persist_dir {
        Some(dir) => Some(cache_dir::absolute(dir)?),
        None => None,
    };
    // With -persist, the user's directory under the base (made absolute above).
    let persist_dir = if request.persist {
        let base = match persist_dir {
            Some(dir) => dir,
            None => cache_dir::default_base(start)?,
        };
        let dir = cache_dir::user_dir(&base)?;
        if !server::is_ours(&dir) {
            return None;
        }
        Some(dir)
    } else {
        persist_dir
    };

    let logdir = match request.logdir {
        Some(dir) => Some(cache_dir::absolute(dir).filter(|d| writable_dir(d))?),
        None => None,
    };

    let mut argv = alloc::vec![c(&runtime)];
    if request.persist {
        argv.push(c(b"-persist"));
    }
    if let Some(dir) = &persist_dir {
        argv.extend([c(b"-persist_dir"), c(dir)]);
    }
    // With -persist: the run's report, and the run the runtime records at its end.
    let report = persist_dir.as_deref().filter(|_| request.persist).map(|dir| {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let mut path = dir.to_vec();
        path.push(b'/');
        path.extend_from_slice(persist::cache_dir::report_name(pid, sys::now_ns()).as_bytes());
        let start_ns = sys::now_ns();
        let command = persist::run_report::quoted_command(request.command.iter().copied());
        // A run killed before its end is written is recorded from this
        // (as in dbirun-full, a failed write does not stop the run).
        write_new(&path, persist::run_report::command_line(&command).as_bytes());
        let record = [c(b"-record_run"), c(alloc::format!("{pid}").as_bytes()), c(alloc::format!("{start_ns}").as_bytes()), c(command.as_bytes())];
        (path, record)
    });
    if let Some((path, _)) = &report {
        argv.extend([c(b"-persist_report"), c(path), c(b"-persist_server")]);
    }
    argv.extend(flags_after_dir(&request));
    let report = report.map(|(path, record)| {
        argv.extend(record);
        path
    });
    if let Some(dir) = &logdir {
        argv.extend([c(b"-logdir"), c(dir)]);
    }
    for (name, options) in &request.clients {
        argv.extend([c(b"-c"), c(name), c(alloc::format!("{}", options.len()).as_bytes())]);
        argv.extend(options.iter().map(|o| c(o)));
    }
    argv.push(c(b"--"));
    argv.push(c(&app));
    argv.extend(request.command.iter().map(|a| c(a)));
    Some(Run { argv, report })
}

/// Whether clients can create files in `dir` (dbirun-full refuses the run
/// otherwise, and says why).
fn writable_dir(dir: &[u8]) -> bool {
    use rustix::fs::{Access, FileType};
    rustix::fs::stat(dir).is_ok_and(|m| FileType::from_raw_mode(m.st_mode) == FileType::Directory)
        && rustix::fs::access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

fn flags_after_dir(request: &command::Request) -> Vec<Vec<u8>> {
    [
        (request.no_follow_children, &b"-no_follow_children"[..]),
        (!request.no_traces, b"-traces"),
        (request.predicted_returns, b"-predicted_returns"),
    ]
    .iter()
    .filter(|f| f.0)
    .map(|f| c(f.1))
    .collect()
}

/// Writes `bytes` to `path` as `std::fs::write` does (created mode 0666
/// less the umask, or truncated).
fn write_new(path: &[u8], bytes: &[u8]) {
    use rustix::fs::{Mode, OFlags};
    if let Ok(fd) = rustix::fs::open(path, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC, Mode::from_raw_mode(0o666)) {
        let _ = rustix::io::write(&fd, bytes);
    }
}
