//! The server's link to a remote store (docs/remote.md), when one is
//! configured: two threads of its own, one fetching and one pushing (a
//! large push takes seconds; a process waiting for a fetch must not wait
//! behind it), so neither a run nor the merger ever waits on the network.
//!
//! - Read-through: when the merger is about to create a file for a key
//!   this directory has no file of (a run missed it), the thread fetches
//!   the key's file from the store, checks it in full as `cachetool pull`
//!   does, and queues it to the merger as a delta: it is merged with what
//!   the run built, and later runs load both. Each key is asked for once
//!   per server life.
//! - Read-through at a process's request: a process that finds no file
//!   for a module asks the server for it by name; the link looks the name
//!   up in the store (its listing of keys by file name), fetches and
//!   checks the first file fit for this machine and publishes it at once,
//!   and the process, which waited at most `remote_wait`, maps it. A name
//!   the store does not have is not asked for again in the server's life.
//! - Write-behind: files the merger publishes are pushed (as `cachetool
//!   push` pushes them: only when the store's file for the key has fewer
//!   blocks), each at most once per `PUSH_INTERVAL`, one at a time.
//! - A store that is down or slow pauses the link for `BACK_OFF`.
//! - With the deep check on (`dbicached --deep-check`, or
//!   `DBIRUN_DEEP_CHECK=1` in the environment dbirun starts it with), a
//!   fetched file is offered (published or merged) only once a third
//!   thread has translated its blocks again and found the same code
//!   (`cachetool::deep_check`): seconds per file, so the process that
//!   asked for it does not wait for it, the runs after do.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachetool::module_file::Modules;
use persist::key::CacheKey;
use remote::layout::{listing_object, Listing, Manifest, Subject, LISTING_LIMIT};
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
    /// A process asks for the file `name`, which this directory lacks:
    /// publish the store's and say so on `found`.
    Find { name: String, found: Sender<bool> },
    /// The merger creates the file `name` of `key`: fetch the store's.
    Fetch { name: String, key: CacheKey },
    /// The merger published `name`: push it (in time).
    Published { name: String },
}

/// Where the link's jobs go: fetches to one thread, pushes to the other.
#[derive(Clone)]
pub struct RemoteLink {
    fetching: Sender<RemoteJob>,
    pushing: Sender<RemoteJob>,
}

impl RemoteLink {
    /// Queues `job` on its thread; false if the link is gone.
    pub fn send(&self, job: RemoteJob) -> bool {
        let thread = match job {
            RemoteJob::Published { .. } => &self.pushing,
            RemoteJob::Find { .. } | RemoteJob::Fetch { .. } => &self.fetching,
        };
        thread.send(job).is_ok()
    }
}

/// A fetched file waiting for its deep check, and what to do with it
/// once it passes.
struct ToCheck {
    name: String,
    file: cachetool::cache_file::Aligned,
    then: Offer,
}

#[derive(Clone, Copy)]
enum Offer {
    /// Publish it for the processes that will ask.
    Publish,
    /// Merge it with what a run built.
    Merge,
}

/// Starts the link's threads. With `DBIRUN_TRUSTED_KEYS` set, only files
/// signed by those keys are fetched; with `DBIRUN_SIGNING_KEY` set, what
/// is pushed is signed; with `deep_check`, what is fetched is offered
/// only after its deep check.
pub fn start(shared: Arc<Shared>, store: Box<dyn Store>, deep_check: bool) -> Result<RemoteLink, String> {
    let store: Arc<dyn Store> = Arc::from(store);
    let checker = match deep_check {
        false => None,
        true => {
            let dbirun = cachetool::beside_this_program("dbirun").map_err(|e| format!("the deep check needs dbirun: {e}"))?;
            let (tx, rx) = std::sync::mpsc::channel();
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || check_then_offer(&shared, &dbirun, rx));
            Some(tx)
        }
    };
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = std::sync::mpsc::channel();
        let link = Link {
            shared: Arc::clone(&shared),
            store: Arc::clone(&store),
            trust: Trust::from_keys_and_env(&[])?,
            signer: Signer::from_env()?,
            checker: checker.clone(),
            asked: HashSet::new(),
            absent: HashSet::new(),
            due: BTreeMap::new(),
            pushed: BTreeMap::new(),
            paused_until: None,
        };
        std::thread::spawn(move || link.run(rx));
        threads.push(tx);
    }
    let pushing = threads.pop().expect("two threads");
    let fetching = threads.pop().expect("two threads");
    Ok(RemoteLink { fetching, pushing })
}

struct Link {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    trust: Trust,
    signer: Option<Signer>,
    /// The deep check's thread, when it is on.
    checker: Option<Sender<ToCheck>>,
    /// Keys already asked for (their manifest objects).
    asked: HashSet<String>,
    /// File names the store does not have.
    absent: HashSet<String>,
    /// Files to push, and when.
    due: BTreeMap<String, Instant>,
    /// When each file was last pushed.
    pushed: BTreeMap<String, Instant>,
    paused_until: Option<Instant>,
}

impl Link {
    fn run(mut self, jobs: Receiver<RemoteJob>) {
        loop {
            match jobs.recv_timeout(Duration::from_millis(500)) {
                Ok(RemoteJob::Find { name, found }) => {
                    let _ = found.send(self.find(&name));
                }
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
            Ok(Ok(f)) => {
                self.shared.log.line(format_args!("remote: fetched {name} ({bytes} bytes)"));
                self.offer(name, f.file.bytes(), Offer::Merge);
            }
        }
    }

    /// Offers the fetched, checked file `bytes` as `name`: at once, or
    /// after its deep check. Whether it is offered now.
    fn offer(&self, name: &str, bytes: &[u8], then: Offer) -> bool {
        match &self.checker {
            Some(checker) => {
                let _ = checker.send(ToCheck { name: name.to_string(), file: cachetool::cache_file::Aligned::from_bytes(bytes), then });
                false
            }
            None => offer_now(&self.shared, name, bytes, then),
        }
    }

    /// Publishes the store's file `name` if it has one fit for this
    /// machine; whether the directory now has the file.
    fn find(&mut self, name: &str) -> bool {
        let dest = self.shared.dir.join(name);
        if dest.exists() {
            return true;
        }
        if self.paused() || self.absent.contains(name) {
            return false;
        }
        let subject = Subject::File(name);
        let listing = match self.store.get(&listing_object(&subject, cachetool::RUNTIME_VERSION), LISTING_LIMIT) {
            Err(e) => {
                self.failed(&format!("looking for {name}"), &e);
                return false;
            }
            Ok(found) => found.and_then(|b| Listing::parse(&b, &subject, cachetool::RUNTIME_VERSION).ok()),
        };
        let mut machine = Modules::default();
        for listed in listing.map(|l| l.keys).unwrap_or_default() {
            if !self.asked.insert(listed.manifest.clone()) {
                continue;
            }
            let mut bytes = 0;
            let only_this = |m: &Manifest| (m.name != name).then(|| format!("the store names it {}", m.name));
            match cachetool::pull::fetch(self.store.as_ref(), &listed.manifest, &self.trust, &mut machine, &mut bytes, &only_this) {
                Err(e) => {
                    self.failed(&format!("fetching {name}"), &e);
                    return false;
                }
                Ok(Err(why)) => self.shared.log.line(format_args!("remote: not using {name}: {why}")),
                Ok(Ok(f)) => {
                    self.shared.log.line(format_args!("remote: fetched {name} for a process ({bytes} bytes)"));
                    return self.offer(name, f.file.bytes(), Offer::Publish);
                }
            }
        }
        self.absent.insert(name.to_string());
        false
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

/// Offers the fetched file `bytes` as `name` (`then`); whether it is.
fn offer_now(shared: &Shared, name: &str, bytes: &[u8], then: Offer) -> bool {
    let offered = match then {
        Offer::Publish => publish(shared, name, bytes).map_err(|e| e.to_string()),
        Offer::Merge => memory_file(bytes).map_err(|e| e.to_string()).and_then(|file| {
            // Queued as the bytes the merger will read (the file), not
            // the bytes fetched (compressed).
            shared.queue(Job::HandOver { name: name.to_string(), file, len: bytes.len() as u64 }, bytes.len() as u64).map_err(String::from)
        }),
    };
    match &offered {
        Ok(()) => Counters::add(&shared.counters.remote_fetched, 1),
        Err(e) => shared.log.line(format_args!("remote: {name} not offered: {e}")),
    }
    offered.is_ok()
}

/// The deep check's thread: each fetched file translated again and
/// compared, offered if it matches.
fn check_then_offer(shared: &Shared, dbirun: &std::path::Path, files: Receiver<ToCheck>) {
    for f in files {
        let checked = cachetool::deep_check::check(f.file.bytes(), dbirun);
        match checked {
            Ok(c) => {
                shared.log.line(format_args!("remote: {}: deep check passed ({} blocks)", f.name, c.blocks));
                Counters::add(&shared.counters.remote_deep_checked, 1);
                offer_now(shared, &f.name, f.file.bytes(), f.then);
            }
            Err(why) => {
                shared.log.line(format_args!("remote: {} refused: deep check failed: {why}", f.name));
                Counters::add(&shared.counters.remote_refused, 1);
            }
        }
    }
}

/// Publishes the checked file `bytes` as `name` unless the directory
/// got one meanwhile (under the file's lock, as the merger writes),
/// and vouches for it: serving it checks nothing again.
fn publish(shared: &Shared, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dest = shared.dir.join(name);
    let _lock = cachetool::lock::lock(&dest)?;
    if dest.exists() {
        return Ok(());
    }
    let tmp = match cachetool::incoming::stage_with(&shared.dir, name, bytes, false, false)? {
        Ok(tmp) => tmp,
        Err(_) => return Ok(()),
    };
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(meta) = std::fs::symlink_metadata(&dest) {
        shared.vouched.note(name, persist::file_identity::FileIdentity::of(&meta));
    }
    Ok(())
}


/// A memory file holding `bytes`, as a process's hand-over would be.
fn memory_file(bytes: &[u8]) -> std::io::Result<File> {
    let mut file = File::from(rustix::fs::memfd_create("dbicached-fetched", rustix::fs::MemfdFlags::CLOEXEC)?);
    file.write_all(bytes)?;
    Ok(file)
}
