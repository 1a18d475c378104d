//! The runtime's options, as passed by `dbirun`:
//! `dbi-runtime [options] -- PATH ARGV0 [ARGS...]`.

use alloc::vec::Vec;

use crate::os::startup_args::CStr;

#[derive(Default)]
pub(crate) struct Options {
    /// `-v`: log module loads and rejected inputs.
    pub(crate) verbose: bool,
    /// `-stats`: print counters to stderr at exit.
    pub(crate) stats: bool,
    /// `-no_native_exec`: map application code without PROT_EXEC, so any
    /// instruction that escapes the code cache faults (a test-only option).
    pub(crate) no_native_exec: bool,
    /// `-traces`: join hot paths of blocks into traces (`monitor.rs`);
    /// with `-aot`, translate for runs that do (files keyed and readied
    /// for them), though nothing runs to be traced.
    pub(crate) traces: bool,
    /// `-predicted_returns`: blocks' calls and returns in the form the
    /// CPU's return stack predicts (`translate/returns.rs`).
    pub(crate) predicted_returns: bool,
    /// `-no_follow_children`: run exec'd programs natively.
    pub(crate) no_follow_children: bool,
    /// `-persist`: keep translated code in per-module cache files.
    pub(crate) persist: bool,
    pub(crate) persist_dir: Option<CStr>,
    /// `-persist_report FILE`: where each process appends its cache report
    /// for `dbirun`'s index.
    pub(crate) persist_report: Option<CStr>,
    /// `-persist_server`: hand new blocks to the directory's cache server
    /// at exit (dbirun found or started one), falling back to writing
    /// the files itself when it does not take them.
    pub(crate) persist_server: bool,
    /// `-aot`: translate the program's modules ahead of time when it
    /// reaches its entry point, instead of running it (`aot.rs`).
    pub(crate) aot: bool,
    /// `-aot_seeds FILE`: translate ahead of time only the modules the
    /// file names, from the offsets it gives them too (`aot/seeds.rs`).
    pub(crate) aot_seeds: Option<CStr>,
    /// `-aot_progress`: a line on stderr every [`crate::aot`] progress
    /// step, for `cachetool aot`'s progress bar.
    pub(crate) aot_progress: bool,
    /// `-aot_batch N`: blocks [`crate::aot`] builds between writes to the
    /// module's file.
    pub(crate) aot_batch: Option<usize>,
    /// `-record_run PID START_NS COMMAND`: `dbirun` exec'd the runtime in
    /// process PID (at START_NS, Unix nanoseconds) and left the run's end
    /// to it: when that process ends, its report is finished with the
    /// run's end and left for the cache index (`persistence::report`).
    pub(crate) record_run: Option<RunToRecord>,
    /// `-logdir DIR`: where clients write their files (default: the cwd at start).
    pub(crate) logdir: Option<CStr>,
    /// `-c NAME N opt1..optN`, in order.
    pub(crate) clients: Vec<(CStr, Vec<CStr>)>,
    /// The option arguments exactly as given, to start followed children
    /// with the same options.
    pub(crate) as_given: Vec<CStr>,
}

/// The run `dbirun` left to this runtime to record (`-record_run`).
#[derive(Clone, Copy)]
pub(crate) struct RunToRecord {
    /// The process whose end is the run's (exec keeps it; forks are others).
    pub(crate) pid: u32,
    pub(crate) start_ns: u64,
    /// The command line, quoted as a shell would need it.
    pub(crate) command: CStr,
}

impl Options {
    /// Whether the dispatcher counts heads and records traces: with
    /// `-traces`, when the program runs (`-aot` runs nothing of it).
    pub(crate) fn monitors(&self) -> bool {
        self.traces && !self.aot
    }
}

static mut OPTIONS: Option<Options> = None;

pub(crate) fn get() -> &'static Options {
    // SAFETY: written once in `parse` before any reader runs, then read-only.
    unsafe { (*core::ptr::addr_of!(OPTIONS)).as_ref().expect("options not parsed") }
}

/// What follows the options: the program to load and its argv.
pub(crate) struct Command {
    pub(crate) path: CStr,
    pub(crate) argv: Vec<CStr>,
}

/// Parses the runtime's own argv (without argv[0]); exits with status 2 on a
/// malformed command line, which only a broken launcher can produce.
pub(crate) fn parse(args: &[CStr]) -> Command {
    let mut opts = Options::default();
    let mut i = 0;
    let bad = |what: &str| -> ! { crate::log::fatal(2, format_args!("runtime: {what}")) };
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        match arg {
            b"--" => break,
            b"-v" => opts.verbose = true,
            b"-stats" => opts.stats = true,
            b"-no_native_exec" => opts.no_native_exec = true,
            b"-no_follow_children" => opts.no_follow_children = true,
            b"-traces" => opts.traces = true,
            b"-predicted_returns" => opts.predicted_returns = true,
            b"-persist" => opts.persist = true,
            b"-persist_server" => opts.persist_server = true,
            b"-aot" => opts.aot = true,
            b"-aot_progress" => opts.aot_progress = true,
            b"-persist_dir" => {
                let Some(dir) = args.get(i) else { bad("-persist_dir needs a directory") };
                opts.persist_dir = Some(*dir);
                i += 1;
            }
            b"-aot_seeds" => {
                let Some(file) = args.get(i) else { bad("-aot_seeds needs a file") };
                opts.aot_seeds = Some(*file);
                i += 1;
            }
            b"-aot_batch" => {
                let Some(n) = args.get(i).and_then(|n| n.parse_decimal()).filter(|&n| n > 0) else {
                    bad("-aot_batch needs a positive number")
                };
                opts.aot_batch = Some(n);
                i += 1;
            }
            b"-record_run" => {
                let (Some(pid), Some(start), Some(command)) = (args.get(i), args.get(i + 1), args.get(i + 2)) else {
                    bad("-record_run needs a pid, a start time and a command")
                };
                let (Some(pid), Some(start_ns)) = (pid.parse_u64().and_then(|p| u32::try_from(p).ok()), start.parse_u64()) else {
                    bad("-record_run needs a pid and a start time in nanoseconds")
                };
                opts.record_run = Some(RunToRecord { pid, start_ns, command: *command });
                i += 3;
            }
            b"-persist_report" => {
                let Some(file) = args.get(i) else { bad("-persist_report needs a file") };
                opts.persist_report = Some(*file);
                i += 1;
            }
            b"-logdir" => {
                let Some(dir) = args.get(i) else { bad("-logdir needs a directory") };
                opts.logdir = Some(*dir);
                i += 1;
            }
            b"-c" => {
                let (Some(name), Some(count)) = (args.get(i), args.get(i + 1)) else {
                    bad("-c needs a client name and an option count")
                };
                let Some(n) = count.parse_decimal() else { bad("bad client option count") };
                i += 2;
                let Some(client_opts) = args.get(i..i + n) else { bad("missing client options") };
                opts.clients.push((*name, client_opts.to_vec()));
                i += n;
            }
            _ => crate::log::fatal(
                2,
                format_args!("runtime: unknown option '{}'", args[i - 1]),
            ),
        }
    }
    let (Some(path), Some(_)) = (args.get(i), args.get(i + 1)) else {
        bad("usage: dbi-runtime [options] -- PATH ARGV0 [ARGS...]")
    };
    opts.as_given = args[..i - 1].to_vec();
    let command = Command { path: *path, argv: args[i + 1..].to_vec() };
    // SAFETY: single-threaded start-up; nothing has read OPTIONS yet.
    unsafe { *core::ptr::addr_of_mut!(OPTIONS) = Some(opts) };
    command
}
