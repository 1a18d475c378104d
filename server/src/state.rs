//! What the server's threads share: the directory, counters, log, the
//! merger's queue (bounded: a full queue refuses hand-overs, and their
//! senders write their files themselves) and the life-cycle flags.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::log::Log;
use crate::merger::Job;
use crate::remote_link::{RemoteJob, RemoteLink};
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
    /// The remote store's link, once started, and how long a process's
    /// request for a file this directory lacks waits for it.
    pub remote: OnceLock<RemoteLink>,
    pub remote_wait: Duration,
    last_activity: Mutex<Instant>,
}

impl Shared {
    pub fn new(dir: PathBuf, jobs: Sender<Job>, remote_wait: Duration) -> Shared {
        Shared {
            log: Log::new(&dir),
            dir,
            counters: Counters::default(),
            started: Instant::now(),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            vouched: Vouched::default(),
            jobs: Mutex::new(Some(jobs)),
            remote: OnceLock::new(),
            remote_wait,
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

    /// Whether the remote store had the file `name` this directory lacks
    /// and it is now published, asked within `remote_wait` (a fetch that
    /// takes longer goes on, for later runs).
    pub fn found_remotely(&self, name: &str) -> bool {
        let Some(link) = self.remote.get() else { return false };
        if self.remote_wait.is_zero() {
            return false;
        }
        let (found, answer) = std::sync::mpsc::channel();
        if !link.send(RemoteJob::Find { name: name.to_string(), found }) {
            return false;
        }
        answer.recv_timeout(self.remote_wait).unwrap_or(false)
    }
}
