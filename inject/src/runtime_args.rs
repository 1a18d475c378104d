//! The argv contract between dbirun and dbi-runtime.
//!
//! ```text
//! dbi-runtime [-v] [-stats] [-persist] [-persist_dir ABS_DIR] [-persist_report ABS_FILE] [-persist_server] [-aot] [-aot_progress] [-aot_batch N] [-aot_seeds ABS_FILE] [-no_follow_children]
//!             [-no_native_exec] [-traces] [-predicted_returns] [-record_run PID START_NS COMMAND] [-logdir ABS_DIR] [-c NAME COUNT OPT_1 ... OPT_COUNT]...
//!             -- APP_PATH ARGV0 [ARG...]
//! ```
//!
//! - Options always come in this order, each at most once, in single-dash spelling.
//! - `-persist_dir` and `-logdir` are followed by their value as a separate argument, always absolute
//!   (the runtime must not depend on a cwd the app may change before it persists).
//! - Each client is `-c`, its name, the decimal count of its options, then exactly
//!   that many options. A count instead of a terminator lets client options be
//!   anything, "--" and "-c" included, without escaping.
//! - After `--`: APP_PATH is the file to load (already resolved through `$PATH`,
//!   possibly relative to the cwd), ARGV0 is APP as the user typed it (the app's
//!   argv[0], as under a shell), then the app's arguments.
//!
//! None of this shows once the app runs: the runtime renames the process
//! after APP_PATH and points `/proc/PID/cmdline` at the app's own argv
//! (`runtime/src/proc_identity.rs`).

use std::ffi::OsString;
use std::path::Path;

use crate::options::Options;

/// A run whose end the runtime records itself (dbirun exec'd it).
pub struct RunToRecord {
    /// The run's process: dbirun's, which the runtime keeps.
    pub pid: u32,
    /// When dbirun started, in nanoseconds since the Unix epoch.
    pub start_ns: u128,
    /// The command line for the index, quoted as a shell would need it.
    pub command: String,
}

/// Builds the runtime's full argv; `persist_dir` must already be absolute,
/// and so must `report` (where the run's processes append their cache
/// events, with -persist, and their counters, with -stats).
pub fn runtime_argv(
    runtime: &Path,
    resolved_app: &Path,
    opts: &Options,
    report: Option<&Path>,
    server: bool,
    record: Option<&RunToRecord>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![runtime.as_os_str().to_os_string()];
    let flags_before_dir = [
        (opts.verbose, "-v"),
        (opts.stats, "-stats"),
        (opts.persist, "-persist"),
    ];
    argv.extend(
        flags_before_dir
            .iter()
            .filter(|f| f.0)
            .map(|f| OsString::from(f.1)),
    );
    if let Some(dir) = &opts.persist_dir {
        debug_assert!(dir.is_absolute());
        argv.push("-persist_dir".into());
        argv.push(dir.as_os_str().to_os_string());
    }
    if let Some(report) = report {
        argv.push("-persist_report".into());
        argv.push(report.as_os_str().to_os_string());
    }
    if server {
        argv.push("-persist_server".into());
    }
    let flags_after_dir = [
        (opts.aot, "-aot"),
        (opts.aot_progress, "-aot_progress"),
        (opts.no_follow_children, "-no_follow_children"),
        (opts.no_native_exec, "-no_native_exec"),
        (opts.with_traces(), "-traces"),
        (opts.predicted_returns, "-predicted_returns"),
    ];
    argv.extend(
        flags_after_dir
            .iter()
            .filter(|f| f.0)
            .map(|f| OsString::from(f.1)),
    );
    if let Some(n) = opts.aot_batch {
        argv.push("-aot_batch".into());
        argv.push(n.to_string().into());
    }
    if let Some(seeds) = &opts.aot_seeds {
        debug_assert!(seeds.is_absolute());
        argv.push("-aot_seeds".into());
        argv.push(seeds.as_os_str().to_os_string());
    }
    if let Some(run) = record {
        argv.push("-record_run".into());
        argv.push(run.pid.to_string().into());
        argv.push(run.start_ns.to_string().into());
        argv.push(run.command.clone().into());
    }
    if let Some(dir) = &opts.logdir {
        debug_assert!(dir.is_absolute());
        argv.push("-logdir".into());
        argv.push(dir.as_os_str().to_os_string());
    }
    for client in &opts.clients {
        argv.push("-c".into());
        argv.push(client.name.as_str().into());
        argv.push(client.options.len().to_string().into());
        argv.extend(client.options.iter().cloned());
    }
    argv.push("--".into());
    argv.push(resolved_app.as_os_str().to_os_string());
    argv.push(opts.app.clone());
    argv.extend(opts.app_args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ClientSpec;
    use std::path::PathBuf;

    fn base() -> Options {
        Options {
            verbose: false,
            stats: false,
            stats_file: None,
            stats_per_process: false,
            persist: false,
            persist_dir: None,
            no_persist_server: false,
            aot: false,
            aot_seeds: None,
            aot_progress: false,
            aot_batch: None,
            logdir: None,
            no_follow_children: false,
            no_native_exec: false,
            traces: false,
            no_traces: false,
            predicted_returns: false,
            clients: vec![],
            app: "ls".into(),
            app_args: vec!["-la".into(), "/usr".into()],
        }
    }

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn no_options() {
        let argv = runtime_argv(Path::new("/rt"), Path::new("/usr/bin/ls"), &base(), None, false, None);
        assert_eq!(
            strings(argv),
            ["/rt", "-traces", "--", "/usr/bin/ls", "ls", "-la", "/usr"]
        );
    }

    #[test]
    fn everything() {
        let opts = Options {
            verbose: true,
            stats: true,
            stats_file: None,
            stats_per_process: false,
            persist: true,
            persist_dir: Some(PathBuf::from("/cache dir")),
            no_persist_server: false,
            aot: false,
            aot_seeds: None,
            aot_progress: false,
            aot_batch: None,
            logdir: None,
            no_follow_children: true,
            no_native_exec: true,
            traces: true,
            no_traces: false,
            predicted_returns: false,
            clients: vec![
                ClientSpec {
                    name: "null".into(),
                    options: vec!["--".into(), "-c".into(), "x".into()],
                },
                ClientSpec {
                    name: "null".into(),
                    options: vec![],
                },
            ],
            app: "./a.out".into(),
            app_args: vec!["--".into()],
        };
        let argv = runtime_argv(Path::new("/rt"), Path::new("./a.out"), &opts, Some(Path::new("/r")), true, None);
        assert_eq!(
            strings(argv),
            [
                "/rt",
                "-v",
                "-stats",
                "-persist",
                "-persist_dir",
                "/cache dir",
                "-persist_report",
                "/r",
                "-persist_server",
                "-no_follow_children",
                "-no_native_exec",
                "-traces",
                "-c",
                "null",
                "3",
                "--",
                "-c",
                "x",
                "-c",
                "null",
                "0",
                "--",
                "./a.out",
                "./a.out",
                "--",
            ]
        );
    }

    /// Traces by default, with -persist or without, and for -aot (its
    /// files are for runs with traces); never with -no_traces, even
    /// beside -traces.
    #[test]
    fn traces_unless_turned_off() {
        let traces = |change: &dyn Fn(&mut Options)| {
            let mut opts = base();
            change(&mut opts);
            strings(runtime_argv(Path::new("/rt"), Path::new("/usr/bin/ls"), &opts, None, false, None)).contains(&"-traces".to_string())
        };
        assert!(traces(&|_| {}));
        assert!(traces(&|o| o.persist = true));
        assert!(traces(&|o| o.aot = true));
        assert!(!traces(&|o| o.no_traces = true));
        assert!(!traces(&|o| {
            o.traces = true;
            o.no_traces = true;
        }));
    }

    #[test]
    fn argv0_is_what_the_user_typed() {
        let mut opts = base();
        opts.app = "python3".into();
        opts.app_args.clear();
        let argv = runtime_argv(Path::new("/rt"), Path::new("/usr/bin/python3"), &opts, None, false, None);
        assert_eq!(strings(argv), ["/rt", "-traces", "--", "/usr/bin/python3", "python3"]);
    }
}
