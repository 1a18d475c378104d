//! dbirun and the cache server (`dbicached`, docs/server.md): with
//! `-persist`, the run's processes hand their new blocks to the server of
//! the cache directory and exit without merging or writing files; dbirun
//! starts one on demand (it exits after [`IDLE`] without requests), and
//! leaves the run's report for it to record. `-no_persist_server`, or a
//! server that cannot start, leaves everything to the run's processes
//! (file mode).

use std::path::Path;
use std::time::Duration;

use persist::server_protocol::{self as protocol, Kind};

/// A server dbirun starts exits after this long without a request.
pub const IDLE: Duration = Duration::from_secs(600);

/// Whether the run's processes may hand over to a server of `dir`: one
/// listens, or one was just started (a process that finds none at its
/// end writes its files itself).
pub fn ensure(dir: &Path, verbose: bool) -> bool {
    if cachetool::server_start::listening(dir) {
        // A server of another dbirun version may merge differently: its
        // directory is written in file mode until it exits.
        let status = protocol::request_within(dir, Kind::Status, Duration::from_millis(200));
        let theirs = status.ok().and_then(|s| serde_json::from_slice::<serde_json::Value>(&s).ok()).and_then(|v| v["runtime_version"].as_str().map(String::from));
        let ours = format!("{:08x}", cachetool::RUNTIME_VERSION);
        if theirs.as_deref() != Some(ours.as_str()) {
            if verbose {
                eprintln!(
                    "dbirun: persist: the cache server of {} is of another version ({}): processes write their own files",
                    dir.display(),
                    theirs.as_deref().unwrap_or("not answering")
                );
            }
            return false;
        }
        if verbose {
            eprintln!("dbirun: persist: using the cache server of {}", dir.display());
        }
        return true;
    }
    match cachetool::server_start::spawn(dir, IDLE) {
        Ok(()) => {
            if verbose {
                eprintln!("dbirun: persist: started a cache server for {}", dir.display());
            }
            true
        }
        Err(why) => {
            if verbose {
                eprintln!("dbirun: persist: no cache server ({why}): processes write their own files");
            }
            false
        }
    }
}

/// Asks the server of `dir` to record the runs left pending (after the
/// hand-overs it received before); false if no server took the request.
pub fn ask_to_record(dir: &Path) -> bool {
    protocol::request_within(dir, Kind::Ingest, Duration::from_millis(200)).is_ok()
}
