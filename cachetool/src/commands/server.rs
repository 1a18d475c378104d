//! `server start|status|stop`: the cache server of the directory
//! (`dbicached`, started from beside this cachetool).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dbicached::protocol::Kind;

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
    /// Ask the server to exit.
    Stop,
}

/// `dbicached` beside this executable (as installed and as built).
fn server_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Fail(e.to_string()))?;
    let beside = exe.with_file_name("dbicached");
    if beside.is_file() {
        Ok(beside)
    } else {
        fail(format_args!("dbicached not found beside {}", exe.display()))
    }
}

pub fn run(dir: &Path, action: &Action, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    match action {
        Action::Start { idle } => {
            if dbicached::client::request(dir, Kind::Status).is_ok() {
                println!("a server already runs for {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            let mut cmd = std::process::Command::new(server_binary()?);
            cmd.arg("--dir").arg(dir).arg("--idle").arg(idle.to_string());
            // Nothing of this command's own: a caller waiting for its output
            // to end must not wait for the server. What it says goes to
            // `dbicached.log` in the directory.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("dbicached.log"))
                .map_err(|e| Fail(format!("{}: {e}", dir.join("dbicached.log").display())))?;
            cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(log);
            // Its own session: the server outlives this command and its terminal.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    libc::setsid();
                    Ok(())
                });
            }
            cmd.spawn().map_err(|e| Fail(format!("starting dbicached: {e}")))?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while dbicached::client::request(dir, Kind::Status).is_err() {
                if Instant::now() > deadline {
                    return fail("the server did not answer after starting");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("server started for {}", dir.display());
        }
        Action::Status => {
            let reply = dbicached::client::request(dir, Kind::Status).map_err(Fail)?;
            let status: serde_json::Value = serde_json::from_slice(&reply).map_err(|e| Fail(e.to_string()))?;
            if as_json {
                json(&status);
            } else {
                println!(
                    "server pid {}, up {:.1} s, {} requests, {} refused",
                    status["pid"], status["uptime_ms"].as_u64().unwrap_or(0) as f64 / 1000.0, status["requests"], status["refused"]
                );
            }
        }
        Action::Stop => {
            dbicached::client::request(dir, Kind::Stop).map_err(Fail)?;
            println!("server stopped");
        }
    }
    Ok(ExitCode::SUCCESS)
}
