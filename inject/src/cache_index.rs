//! Recording a `-persist` run in the cache directory's index
//! (`index.sqlite`, see `cachetool::index`) once the application has
//! exited. A failure to record never changes what the run printed or how
//! it ended: at most one warning line, with `-v`.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::launch::ChildEnd;
use crate::run_report::RunReport;

/// The command as a shell would need it (arguments quoted where needed).
fn command_line(app: &OsStr, args: &[std::ffi::OsString]) -> String {
    std::iter::once(app)
        .chain(args.iter().map(|a| a.as_os_str()))
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(end: ChildEnd) -> String {
    match end {
        ChildEnd::Exited(code) => format!("exit {code}"),
        ChildEnd::Signaled(sig) => format!("signal {sig}"),
    }
}

pub fn record(dir: &Path, opts: &crate::options::Options, end: ChildEnd, report: &RunReport, took: Duration) {
    let command = command_line(&opts.app, &opts.app_args);
    let run = cachetool::index::record::Run {
        time: cachetool::now(),
        command: &command,
        exit_status: &describe(end),
        duration_ms: took.as_millis() as u64,
        report,
    };
    // Not even a panic in here may become the run's status or output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| cachetool::index::record::record(dir, &run).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err("internal error".into()));
    std::panic::set_hook(hook);
    if let Err(e) = result {
        if opts.verbose {
            eprintln!("dbirun: warning: run not recorded in {}: {e}", dir.join(cachetool::INDEX_FILE).display());
        }
    }
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
