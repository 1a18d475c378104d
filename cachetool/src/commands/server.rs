//! `server start|status|stop`: the cache server of the directory
//! (`dbicached`, started from beside this cachetool).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use persist::server_protocol::{request, Kind};

use crate::output::json;
use crate::session::{existing_dir, fail, Fail, Result};

#[derive(clap::Subcommand)]
pub enum Action {
    /// Start the server (exits after --idle seconds without a request).
    Start {
        #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
        idle: f64,
    },
    /// The server's pid, uptime and counters.
    Status,
    /// Wait until everything handed over so far is merged and recorded.
    Sync,
    /// Ask the server to exit after merging what it holds, and wait until it has.
    Stop,
}

pub fn run(dir: &Path, action: &Action, as_json: bool) -> Result<ExitCode> {
    if let Action::Start { .. } = action {
        // A fresh machine's job starts its server before any run, e.g. to
        // read through a remote store from the first run on.
        cachetool::cache_dir::create_private(dir).map_err(Fail)?;
    }
    existing_dir(dir)?;
    match action {
        Action::Start { idle } => {
            if request(dir, Kind::Status).is_ok() {
                println!("a server already runs for {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            if !(*idle > 0.0 && idle.is_finite()) {
                return fail(format_args!("--idle {idle}: a number of seconds above 0"));
            }
            cachetool::server_start::spawn(dir, Duration::from_secs_f64(*idle)).map_err(Fail)?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while request(dir, Kind::Status).is_err() {
                if Instant::now() > deadline {
                    return fail("the server did not answer after starting");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("server started for {}", dir.display());
        }
        Action::Status => {
            let reply = request(dir, Kind::Status).map_err(Fail)?;
            let status: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| Fail(e.to_string()))?;
            if as_json {
                json(&status);
            } else {
                let n = |k: &str| status[k].as_u64().unwrap_or(0);
                println!("server pid {}, up {:.1} s", n("pid"), n("uptime_ms") as f64 / 1000.0);
                println!("  {} clients, {} requests, {} refused", n("clients"), n("requests"), n("refused"));
                println!("  {} hand-overs, {} queued ({} bytes), {} rejected", n("hand_overs"), n("queued"), n("queued_bytes"), n("rejected"));
                println!("  {} files written ({} blocks added, {} bytes), {} errors", n("merges"), n("blocks_added"), n("bytes_written"), n("errors"));
                println!("  {} small deltas waiting to be merged with others", n("gathered"));
                println!("  {} runs recorded", n("runs_recorded"));
                let done = if status["start_check_done"].as_bool() == Some(true) { "done" } else { "going on" };
                println!("  {} files gone through by the check at its start ({done})", n("start_checked"));
            }
        }
        Action::Sync => {
            persist::server_protocol::request_within(dir, Kind::Sync, Duration::from_secs(300)).map_err(Fail)?;
            println!("server synced");
        }
        Action::Stop => {
            persist::server_protocol::request_within(dir, Kind::Stop, Duration::from_secs(300)).map_err(Fail)?;
            if !exited_within(dir, Duration::from_secs(300)) {
                return fail("the server answered but has not exited after 300 s");
            }
            println!("server stopped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the server has exited (its lock on the directory is free)
/// before `limit`: it answers a stop before its merger has written the
/// last files, and a script that removes or copies the directory after
/// `server stop` must not race those writes.
fn exited_within(dir: &Path, limit: Duration) -> bool {
    let Ok(lock) = std::fs::File::open(dir.join(persist::server_protocol::LOCK)) else { return true };
    let deadline = Instant::now() + limit;
    loop {
        match lock.try_lock_shared() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return false,
        }
    }
}
