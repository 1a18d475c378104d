//! What the server's threads share: the directory, counters, log, the
//! merger's queue (bounded: a full queue refuses hand-overs, and their
//! senders write their files themselves) and the life-cycle flags.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::Mutex;
use std::time::Instant;

use crate::counters::Counters;
use crate::log::Log;
use crate::merger::Job;
use crate::vouched::Vouched;

/// Jobs and delta bytes waiting at most: what the server's memory holds
/// (deltas wait as memory files; the merger copies one batch at a time).
pub const MAX_QUEUED: u64 = 1024;
pub const MAX_QUEUED_BYTES: u64 = 1 << 30;

pub struct Shared {
    pub dir: PathBuf,
    pub counters: Counters,
    pub log: Log,
    pub started: Instant,
    /// Set by the merger at a Stop request.
    pub stop: AtomicBool,
    /// Connections being served.
    pub connections: AtomicU64,
    pub vouched: Vouched,
    jobs: Mutex<Option<Sender<Job>>>,
    last_activity: Mutex<Instant>,
}

impl Shared {
    pub fn new(dir: PathBuf, jobs: Sender<Job>) -> Shared {
        Shared {
            log: Log::new(&dir),
            dir,
            counters: Counters::default(),
            started: Instant::now(),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            vouched: Vouched::default(),
            jobs: Mutex::new(Some(jobs)),
            last_activity: Mutex::new(Instant::now()),
        }
    }

    /// Queues `job` (carrying `bytes` of delta) for the merger.
    pub fn queue(&self, job: Job, bytes: u64) -> Result<(), &'static str> {
        let c = &self.counters;
        if c.queued.load(Relaxed) >= MAX_QUEUED || c.queued_bytes.load(Relaxed) + bytes > MAX_QUEUED_BYTES {
            return Err("busy: too much queued");
        }
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = jobs.as_ref() else { return Err("stopping") };
        Counters::add(&c.queued, 1);
        Counters::add(&c.queued_bytes, bytes);
        tx.send(job).map_err(|_| "stopping")
    }

    /// No more jobs: the merger ends once it has done those queued.
    pub fn close_queue(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    pub fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    pub fn idle_for(&self) -> std::time::Duration {
        self.last_activity.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }

    /// Nothing queued and no one connected.
    pub fn quiet(&self) -> bool {
        self.counters.queued.load(Relaxed) == 0 && self.connections.load(Relaxed) == 0
    }
}
