//! `dbirun`: runs an application under the dbi runtime and exits with the application's status.
//!
//! Exit statuses of dbirun itself: 2 usage error, 126 app or runtime not
//! executable, 127 app or runtime not found, 125 a failed system call in dbirun;
//! otherwise whatever the application returned or died of.
#![cfg_attr(not(test), no_main)]
// Under `cargo test` the harness owns main, so the launch path is unused there.
#![cfg_attr(test, allow(dead_code))]

mod cache_dir;
mod cache_index;
mod cache_server;
mod launch;
mod options;
mod resolve;
mod run_report;
mod runtime_args;
mod runtime_path;
mod stats_summary;

/// Entered from libc's startup directly instead of std's `lang_start`, which
/// would set SIGPIPE to SIG_IGN (ignored dispositions survive exec, so every
/// application would start with SIGPIPE ignored) and reopen closed fds 0-2 on
/// /dev/null. Neither happens natively, and dbirun cannot undo them afterwards
/// because the original state is lost. std still works: on Linux it picks up
/// argv from `.init_array`, not from `lang_start`.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // Unwinding out of an extern "C" fn aborts, and SIGABRT would pass for the app's status.
    let code = std::panic::catch_unwind(run).unwrap_or(125);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

fn fail(message: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("dbirun: {message}");
    code
}

/// The clients' lines for the user, on dbirun's stderr after the program
/// exited; labelled with pid and program when several processes spoke.
fn print_summaries(report: &persist::run_report::RunReport) {
    let one_process = report.summaries.windows(2).all(|w| w[0].pid == w[1].pid);
    for s in &report.summaries {
        if one_process {
            eprintln!("dbirun: {}: {}", s.client, s.text);
        } else {
            eprintln!("dbirun: {}: {} (pid {}, {})", s.client, s.text, s.pid, s.program);
        }
    }
}

/// The -stats summary of the run, to `-stats_file` or dbirun's stderr.
fn print_stats(opts: &options::Options, report: &persist::run_report::RunReport) {
    let text = stats_summary::render(report, opts.stats_per_process);
    match &opts.stats_file {
        Some(file) => {
            if let Err(e) = std::fs::write(file, &text) {
                eprintln!("dbirun: warning: -stats_file {}: {e}", file.display());
            }
        }
        None => eprint!("{text}"),
    }
}

/// Whether clients can create files in `dir`.
fn writable_dir(dir: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err("not a directory".into()),
        Ok(_) => nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK)
            .map_err(|e| format!("not writable ({})", e.desc())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such directory".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn run() -> i32 {
    let args: Vec<_> = std::env::args_os().collect();
    let opts = match options::parse_with_defaults(&args, std::env::var_os(options::ENV_OPTIONS).as_deref()) {
        Ok(options::Parsed::Run(opts)) => opts,
        Ok(options::Parsed::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };

    let app_path = match resolve::resolve(&opts.app, std::env::var_os("PATH").as_deref()) {
        Ok(path) => path,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let runtime = match runtime_path::locate() {
        Ok(path) => path,
        Err(message) => return fail(message, 127),
    };
    let mut opts = opts;
    for (name, slot) in [
        ("-persist_dir", &mut opts.persist_dir),
        ("-logdir", &mut opts.logdir),
        ("-stats_file", &mut opts.stats_file),
        ("-aot_seeds", &mut opts.aot_seeds),
    ] {
        if let Some(dir) = slot.take() {
            match std::path::absolute(&dir) {
                Ok(abs) => *slot = Some(abs),
                Err(e) => return fail(format_args!("{name} {}: {e}", dir.display()), 125),
            }
        }
    }

    if let Some(dir) = &opts.logdir {
        // Client results would be lost silently: refuse before the app runs.
        if let Err(why) = writable_dir(dir) {
            return fail(format_args!("-logdir {}: {why}", dir.display()), 2);
        }
    }

    if opts.aot_batch.is_some() && !opts.aot {
        return fail("-aot_batch sets how -aot writes its files: it needs -aot", 2);
    }
    if opts.aot_seeds.is_some() && !opts.aot {
        return fail("-aot_seeds names what -aot translates: it needs -aot", 2);
    }
    if opts.aot && !opts.persist {
        return fail("-aot translates into the persisted cache: it needs -persist", 2);
    }
    if opts.persist {
        let base = opts.persist_dir.clone().or_else(cache_dir::default_base);
        match base.map(|b| cache_dir::prepare(&b)) {
            Some(Ok(dir)) => opts.persist_dir = Some(dir),
            Some(Err(why)) => {
                eprintln!("dbirun: warning: not persisting code: {why}");
                opts.persist = false;
                opts.persist_dir = None;
            }
            None => {
                eprintln!("dbirun: warning: not persisting code: no cache directory (set HOME or -persist_dir)");
                opts.persist = false;
            }
        }
    }

    // Clients' summaries are printed after the app: dbirun waits for them.
    let summarizing = opts.clients.iter().any(|c| clients::SUMMARIZING.contains(&c.name.as_str()));
    // Where the run's processes report: in the cache directory with
    // -persist (the index records it), else a private temporary file.
    let report = match opts.persist_dir.as_deref().filter(|_| opts.persist) {
        Some(dir) => Some(run_report::path_in(dir)),
        None if opts.stats || summarizing => match run_report::temporary() {
            Ok(path) => Some(path),
            Err(e) => return fail(format_args!("-stats: cannot create a report file: {e}"), 125),
        },
        None => None,
    };
    let server = match opts.persist_dir.as_deref().filter(|_| opts.persist && !opts.no_persist_server) {
        Some(dir) => cache_server::ensure(dir, opts.verbose),
        None => false,
    };
    // Nothing to do after the app (no clients' summaries, no -stats
    // summary, a cache server to record the run, or no run to record): the
    // runtime replaces dbirun in this process, and the run's own process
    // leaves its end in the report for the server to record. Without a
    // server dbirun stays, to record the run in the index before it exits.
    if !summarizing && !opts.stats && (server || report.is_none()) {
        let record = report.as_ref().map(|_| runtime_args::RunToRecord {
            pid: std::process::id(),
            start_ns: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
            command: cache_index::command_line(&opts.app, &opts.app_args),
        });
        if let (Some(path), Some(run)) = (&report, &record) {
            // A run killed before its end is written is recorded from this.
            let _ = std::fs::write(path, persist::run_report::command_line(&run.command));
        }
        let argv = runtime_args::runtime_argv(&runtime, &app_path, &opts, report.as_deref(), server, record.as_ref());
        let e = launch::exec(&argv);
        return fail(&e, e.exit_code());
    }
    let argv = runtime_args::runtime_argv(&runtime, &app_path, &opts, report.as_deref(), server, None);
    let started = std::time::Instant::now();
    let end = launch::run(&argv);
    if let Some(report) = &report {
        let parsed = run_report::parse(&std::fs::read_to_string(report).unwrap_or_default());
        print_summaries(&parsed);
        if opts.stats {
            print_stats(&opts, &parsed);
        }
        match (&end, opts.persist_dir.as_deref().filter(|_| opts.persist)) {
            (Ok(end), Some(dir)) if server => cache_index::leave_to_server(dir, &opts, *end, report, started.elapsed()),
            (Ok(end), Some(dir)) => cache_index::record(dir, &opts, *end, report, started.elapsed()),
            _ => {
                let _ = std::fs::remove_file(report);
            }
        }
    }
    match end {
        Ok(end) => launch::exit_like(end),
        Err(e) => fail(&e, e.exit_code()),
    }
}
