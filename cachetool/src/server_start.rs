//! Starting the cache server of a directory (`dbicached`, installed and
//! built beside `dbirun` and `cachetool`), for `cachetool server start`
//! and for `dbirun -persist`, which starts one on demand.

use std::path::Path;
use std::time::Duration;

/// Starts a server for `dir` exiting after `idle` without a request, in
/// its own session (it outlives the caller and its terminal), its output
/// appended to the log in the directory (a caller waiting for its own
/// output to end must not wait for the server). Does not wait for it to
/// answer; a second server started at once exits (exactly one wins).
pub fn spawn(dir: &Path, idle: Duration) -> Result<(), String> {
    let mut cmd = std::process::Command::new(crate::beside_this_program("dbicached")?);
    cmd.arg("--dir").arg(dir).arg("--idle").arg(idle.as_secs_f64().to_string());
    let log_path = dir.join(persist::server_protocol::LOG);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("starting dbicached: {e}"))?;
    // Reaped by a thread, so it never lingers as a zombie of the caller.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Whether a server started from this process (which inherits its
/// environment) reads through a remote store (`DBIRUN_REMOTE`,
/// docs/remote.md): it then fetches the files a run's first modules
/// lack, if the run waits for it to listen.
pub fn reads_through_a_remote_store() -> bool {
    std::env::var(remote::location::ENV).is_ok_and(|v| !v.is_empty())
}
