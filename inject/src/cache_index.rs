//! Recording a `-persist` run in the cache directory's index
//! (`index.sqlite`, see `cachetool::index`) once the application has
//! exited. A failure to record never changes what the run printed or how
//! it ended: at most one warning line, with `-v`. Recording waits at most
//! [`RECORD_BUDGET`] for a busy index: a run it could not record is left
//! in the directory as a pending report, which the next recorder (dbirun
//! or any cachetool command) records.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::launch::ChildEnd;
use persist::run_report::RunEnd;

/// The command as a shell would need it (arguments quoted where needed).
pub fn command_line(app: &OsStr, args: &[std::ffi::OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    persist::run_report::quoted_command(std::iter::once(app).chain(args.iter().map(|a| a.as_os_str())).map(OsStr::as_bytes))
}

fn describe(end: ChildEnd) -> String {
    match end {
        ChildEnd::Exited(code) => format!("exit {code}"),
        ChildEnd::Signaled(sig) => format!("signal {sig}"),
    }
}

/// How long the app's exit may wait on a busy index.
pub const RECORD_BUDGET: Duration = Duration::from_millis(100);

/// Records the run whose runtime report is the file at `report_path` (then
/// removed), or leaves it pending when the index stays busy.
pub fn record(dir: &Path, opts: &crate::options::Options, end: ChildEnd, report_path: &Path, took: Duration) {
    let text = std::fs::read_to_string(report_path).unwrap_or_default();
    let report = crate::run_report::parse(&text);
    let run_end = run_end(opts, end, took);
    let run = cachetool::index::record::Run {
        time: run_end.time,
        command: &run_end.command,
        exit_status: &run_end.exit_status,
        duration_ms: run_end.duration_ms,
        report: &report,
    };
    // Not even a panic in here may become the run's status or output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| cachetool::index::record::record_within(dir, &run, RECORD_BUDGET))
        .unwrap_or_else(|_| Err(cachetool::index::Error::Io("internal error".into())));
    std::panic::set_hook(hook);
    match result {
        Err(cachetool::index::Error::Busy(_)) => match leave_pending(dir, report_path, &text, &run_end) {
            Ok(()) if opts.verbose => eprintln!("dbirun: the cache index is busy: this run will be recorded by the next dbirun or cachetool"),
            Ok(()) => {}
            Err(e) => {
                let _ = std::fs::remove_file(report_path);
                if opts.verbose {
                    eprintln!("dbirun: warning: run not recorded (the cache index is busy and {e})");
                }
            }
        },
        other => {
            let _ = std::fs::remove_file(report_path);
            if let Err(e) = other {
                if opts.verbose {
                    eprintln!("dbirun: warning: run not recorded in {}: {e}", dir.join(cachetool::INDEX_FILE).display());
                }
            }
        }
    }
}

fn run_end(opts: &crate::options::Options, end: ChildEnd, took: Duration) -> RunEnd {
    RunEnd {
        time: cachetool::now(),
        duration_ms: took.as_millis() as u64,
        exit_status: describe(end),
        command: command_line(&opts.app, &opts.app_args),
    }
}

/// With a cache server: the run's report is left pending and the server
/// asked to record it, so the app's exit does not wait on the index; if
/// no server takes the request, the run is recorded here.
pub fn leave_to_server(dir: &Path, opts: &crate::options::Options, end: ChildEnd, report_path: &Path, took: Duration) {
    let text = std::fs::read_to_string(report_path).unwrap_or_default();
    let left = leave_pending(dir, report_path, &text, &run_end(opts, end, took));
    match left {
        Ok(()) if crate::cache_server::ask_to_record(dir) => {}
        Ok(()) => {
            // The pending report is claimed by whichever recorder comes first.
            if let Ok(mut ix) = cachetool::index::Index::open_within(dir, RECORD_BUDGET) {
                ix.ingest_pending();
            }
        }
        Err(_) => record(dir, opts, end, report_path, took),
    }
}

/// Appends the run's end to its report and renames it pending, at once
/// whole (a recorder never sees it half written).
fn leave_pending(dir: &Path, report_path: &Path, text: &str, end: &RunEnd) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::fs::write(report_path, format!("{text}{}", end.lines()))?;
    std::fs::rename(report_path, dir.join(persist::cache_dir::pending_report_name(nanos, std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let args = ["-c".into(), "print('a b')".into(), "x".into()];
        assert_eq!(command_line(OsStr::new("/usr/bin/python3"), &args), r#"/usr/bin/python3 -c 'print('\''a b'\'')' x"#);
    }
}
