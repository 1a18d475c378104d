//! The server's link to a remote store (docs/remote.md), when one is
//! configured: its own thread, so neither a run nor the merger ever
//! waits on the network.
//!
//! - Read-through: when the merger is about to create a file for a key
//!   this directory has no file of (a run missed it), the thread fetches
//!   the key's file from the store, checks it in full as `cachetool pull`
//!   does, and queues it to the merger as a delta: it is merged with what
//!   the run built, and later runs load both. Each key is asked for once
//!   per server life.
//! - Write-behind: files the merger publishes are pushed (as `cachetool
//!   push` pushes them: only when the store's file for the key has fewer
//!   blocks), each at most once per `PUSH_INTERVAL`, one at a time.
//! - A store that is down or slow pauses the link for `BACK_OFF`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachetool::module_file::Modules;
use persist::key::CacheKey;
use remote::signing::{Signer, Trust};
use remote::{Problem, Store};

use crate::counters::Counters;
use crate::merger::Job;
use crate::state::Shared;

/// A file is pushed at most this often.
pub const PUSH_INTERVAL: Duration = Duration::from_secs(60);
/// After the store failed to answer, nothing is asked of it for this long.
const BACK_OFF: Duration = Duration::from_secs(60);

pub enum RemoteJob {
    /// The merger creates the file `name` of `key`: fetch the store's.
    Fetch { name: String, key: CacheKey },
    /// The merger published `name`: push it (in time).
    Published { name: String },
}

/// Starts the link's thread; its jobs come through the returned sender.
/// With `DBIRUN_TRUSTED_KEYS` set, only files signed by those keys are
/// fetched; with `DBIRUN_SIGNING_KEY` set, what is pushed is signed.
pub fn start(shared: Arc<Shared>, store: Box<dyn Store>) -> Result<Sender<RemoteJob>, String> {
    let trust = Trust::from_keys_and_env(&[])?;
    let signer = Signer::from_env()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let link = Link {
            shared: &shared,
            store,
            trust,
            signer,
            asked: HashSet::new(),
            due: BTreeMap::new(),
            pushed: BTreeMap::new(),
            paused_until: None,
        };
        link.run(rx)
    });
    Ok(tx)
}

struct Link<'a> {
    shared: &'a Shared,
    store: Box<dyn Store>,
    trust: Trust,
    signer: Option<Signer>,
    /// Keys already asked for (their manifest objects).
    asked: HashSet<String>,
    /// Files to push, and when.
    due: BTreeMap<String, Instant>,
    /// When each file was last pushed.
    pushed: BTreeMap<String, Instant>,
    paused_until: Option<Instant>,
}

impl Link<'_> {
    fn run(mut self, jobs: Receiver<RemoteJob>) {
        loop {
            match jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(RemoteJob::Fetch { name, key }) => self.fetch(&name, &key),
                Ok(RemoteJob::Published { name }) => {
                    let when = self.pushed.get(&name).map_or_else(Instant::now, |t| *t + PUSH_INTERVAL);
                    self.due.entry(name).or_insert(when);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.push_due();
        }
    }

    fn paused(&mut self) -> bool {
        match self.paused_until {
            Some(t) if Instant::now() < t => true,
            _ => {
                self.paused_until = None;
                false
            }
        }
    }

    fn failed(&mut self, what: &str, e: &remote::RemoteError) {
        Counters::add(&self.shared.counters.remote_errors, 1);
        self.shared.log.line(format_args!("remote: {what}: {e}"));
        if matches!(e.problem, Problem::Unreachable | Problem::Timeout | Problem::Denied | Problem::NoBucket) {
            self.paused_until = Some(Instant::now() + BACK_OFF);
        }
    }

    fn fetch(&mut self, name: &str, key: &CacheKey) {
        let manifest = remote::layout::key_object(key);
        if self.paused() || !self.asked.insert(manifest.clone()) {
            return;
        }
        let mut bytes = 0;
        let got = cachetool::pull::fetch(self.store.as_ref(), &manifest, &self.trust, &mut Modules::default(), &mut bytes, &|m| {
            (m.name != name).then(|| format!("the store names it {}", m.name))
        });
        match got {
            Err(e) => self.failed(&format!("fetching {name}"), &e),
            Ok(Err(why)) => self.shared.log.line(format_args!("remote: nothing usable for {name}: {why}")),
            Ok(Ok(f)) => match memory_file(f.file.bytes()) {
                Err(e) => self.shared.log.line(format_args!("remote: {name}: {e}")),
                // Queued as the bytes the merger will read (the file), not
                // the bytes fetched (compressed).
                Ok(file) => match self.shared.queue(Job::HandOver { name: name.to_string(), file, len: f.file.bytes().len() as u64 }, f.file.bytes().len() as u64) {
                    Ok(()) => {
                        Counters::add(&self.shared.counters.remote_fetched, 1);
                        self.shared.log.line(format_args!("remote: fetched {name} ({bytes} bytes)"));
                    }
                    Err(why) => self.shared.log.line(format_args!("remote: fetched {name} but not merged: {why}")),
                },
            },
        }
    }

    fn push_due(&mut self) {
        let now = Instant::now();
        let Some((name, _)) = self.due.iter().find(|(_, t)| **t <= now).map(|(n, t)| (n.clone(), *t)) else { return };
        if self.paused() {
            return;
        }
        self.due.remove(&name);
        self.pushed.insert(name.clone(), now);
        let (report, failure) = cachetool::push::push(self.store.as_ref(), &self.shared.dir, std::slice::from_ref(&name), 1, self.signer.as_ref(), &|| {});
        if let Some(e) = failure {
            return self.failed(&format!("pushing {name}"), &e);
        }
        if !report.pushed.is_empty() {
            Counters::add(&self.shared.counters.remote_pushed, 1);
            self.shared.log.line(format_args!("remote: pushed {name} ({} bytes sent)", report.bytes));
        }
    }
}

/// A memory file holding `bytes`, as a process's hand-over would be.
fn memory_file(bytes: &[u8]) -> std::io::Result<File> {
    // SAFETY: memfd_create with a static name; the fd is ours.
    let fd = unsafe { libc::memfd_create(c"dbicached-fetched".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    Ok(file)
}
