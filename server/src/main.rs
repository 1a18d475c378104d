//! `dbicached --dir DIR [--idle SECONDS] [--remote URL] [--remote-wait MS] [--deep-check]`: the cache server of the
//! per-user cache directory DIR (see the library's docs). Exit status 0
//! when it stopped or went idle, 3 when another server already runs for
//! DIR, 1 on any other failure.

use std::time::Duration;

/// The environment variable giving `--remote-wait` (dbirun starts the
/// server with the run's environment).
const REMOTE_WAIT_ENV: &str = "DBIRUN_REMOTE_WAIT_MS";
/// A process waits this long for a file the directory lacks by default.
const DEFAULT_REMOTE_WAIT: Duration = Duration::from_millis(60);
/// A process gives up on the server's answer after 100 ms
/// (runtime/src/persistence/server.rs, SERVE_WITHIN): waiting longer is useless.
const MAX_REMOTE_WAIT_MS: u64 = 90;

/// The environment variable turning `--deep-check` on (`1`), as dbirun
/// starts the server with the run's environment.
const DEEP_CHECK_ENV: &str = "DBIRUN_DEEP_CHECK";

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut dir = None;
    let mut idle = Duration::from_secs(600);
    let mut remote = None;
    let mut remote_wait = None;
    let mut deep_check = std::env::var(DEEP_CHECK_ENV).is_ok_and(|v| v == "1");
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--deep-check" {
            deep_check = true;
            i += 1;
            continue;
        }
        match (args[i].as_str(), args.get(i + 1)) {
            ("--dir", Some(d)) => dir = Some(std::path::PathBuf::from(d)),
            ("--idle", Some(s)) => match s.parse::<f64>() {
                Ok(v) if v > 0.0 => idle = Duration::from_secs_f64(v),
                _ => return usage(&format!("bad --idle '{s}' (seconds)")),
            },
            ("--remote", Some(url)) => remote = Some(url.clone()),
            ("--remote-wait", Some(ms)) => remote_wait = Some(ms.clone()),
            (other, _) => return usage(&format!("unexpected argument '{other}'")),
        }
        i += 2;
    }
    let Some(dir) = dir else { return usage("--dir DIR is required") };
    // The store named, else the one of the environment it was started in
    // (dbirun starts it on demand with the run's environment).
    let remote = match remote::Location::from_option_or_env(remote.as_deref()) {
        Ok(r) => r,
        Err(why) => return usage(&why),
    };
    let remote_wait = match remote_wait.or_else(|| std::env::var(REMOTE_WAIT_ENV).ok()).map(|ms| ms.parse::<u64>()) {
        None => DEFAULT_REMOTE_WAIT,
        Some(Ok(ms)) => Duration::from_millis(ms.min(MAX_REMOTE_WAIT_MS)),
        Some(Err(_)) => return usage("bad --remote-wait (milliseconds)"),
    };
    match dbicached::daemon::run(&dbicached::daemon::Config { dir, idle, remote, remote_wait, deep_check }) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(dbicached::daemon::StartError::AlreadyRunning) => {
            eprintln!("dbicached: a server already runs for this directory");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("dbicached: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn usage(why: &str) -> std::process::ExitCode {
    eprintln!("dbicached: {why} (usage: dbicached --dir DIR [--idle SECONDS] [--remote URL] [--remote-wait MS] [--deep-check])");
    std::process::ExitCode::from(2)
}
