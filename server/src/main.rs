//! `dbicached --dir DIR [--idle SECONDS] [--remote URL]`: the cache server of the
//! per-user cache directory DIR (see the library's docs). Exit status 0
//! when it stopped or went idle, 3 when another server already runs for
//! DIR, 1 on any other failure.

use std::time::Duration;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut dir = None;
    let mut idle = Duration::from_secs(600);
    let mut remote = None;
    let mut i = 1;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--dir", Some(d)) => dir = Some(std::path::PathBuf::from(d)),
            ("--idle", Some(s)) => match s.parse::<f64>() {
                Ok(v) if v > 0.0 => idle = Duration::from_secs_f64(v),
                _ => return usage(&format!("bad --idle '{s}' (seconds)")),
            },
            ("--remote", Some(url)) => remote = Some(url.clone()),
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
    match dbicached::daemon::run(&dbicached::daemon::Config { dir, idle, remote }) {
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
    eprintln!("dbicached: {why} (usage: dbicached --dir DIR [--idle SECONDS] [--remote URL])");
    std::process::ExitCode::from(2)
}
