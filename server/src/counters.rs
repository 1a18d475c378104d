//! The server's counters, for `cachetool server status`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Default)]
pub struct Counters {
    /// Frames answered.
    pub requests: AtomicU64,
    /// Connections of another uid, and frames refused.
    pub refused: AtomicU64,
    /// Connections served.
    pub clients: AtomicU64,
    /// Deltas received.
    pub hand_overs: AtomicU64,
    /// Jobs waiting for the merger, and their bytes.
    pub queued: AtomicU64,
    pub queued_bytes: AtomicU64,
    /// Files published, the blocks they gained, the bytes written.
    pub merges: AtomicU64,
    pub blocks_added: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Deltas too small for a rewrite, waiting for others (`gathering`).
    pub gathered: AtomicU64,
    /// Deltas refused (bad name, not a memory file, failed the checks).
    pub rejected: AtomicU64,
    /// Writes that failed (a full disk, a lost lock).
    pub errors: AtomicU64,
    /// Runs recorded in the index.
    pub runs_recorded: AtomicU64,
    /// Cache files served to processes at a module's load.
    pub served: AtomicU64,
    /// Files the check at the server's start went through, and whether it
    /// is done (`start_check`).
    pub start_checked: AtomicU64,
    pub start_check_done: AtomicU64,
    /// Files fetched from the remote store and queued to be merged, files
    /// pushed to it, its failures.
    pub remote_fetched: AtomicU64,
    pub remote_pushed: AtomicU64,
    pub remote_errors: AtomicU64,
    /// Fetched files that passed, or failed, their deep check.
    pub remote_deep_checked: AtomicU64,
    pub remote_refused: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Relaxed);
    }

    pub fn json(&self, started: Instant) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Relaxed);
        serde_json::json!({
            "pid": std::process::id(),
            "uptime_ms": started.elapsed().as_millis() as u64,
            "protocol": persist::server_protocol::VERSION,
            "runtime_version": format!("{:08x}", cachetool::RUNTIME_VERSION),
            "requests": g(&self.requests),
            "refused": g(&self.refused),
            "clients": g(&self.clients),
            "hand_overs": g(&self.hand_overs),
            "queued": g(&self.queued),
            "queued_bytes": g(&self.queued_bytes),
            "merges": g(&self.merges),
            "blocks_added": g(&self.blocks_added),
            "gathered": g(&self.gathered),
            "bytes_written": g(&self.bytes_written),
            "rejected": g(&self.rejected),
            "errors": g(&self.errors),
            "runs_recorded": g(&self.runs_recorded),
            "served": g(&self.served),
            "start_checked": g(&self.start_checked),
            "start_check_done": g(&self.start_check_done) != 0,
            "remote_fetched": g(&self.remote_fetched),
            "remote_pushed": g(&self.remote_pushed),
            "remote_errors": g(&self.remote_errors),
            "remote_deep_checked": g(&self.remote_deep_checked),
            "remote_refused": g(&self.remote_refused),
        })
    }
}
