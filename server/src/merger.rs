//! The one thread that writes: it takes the queued jobs in order, in
//! batches, merges every delta of a batch for one file in a single
//! rewrite (the second compiler of a `make -j` adds to the first's file
//! at once), publishes it as a file-mode process would (the file's lock,
//! temp file + rename), writes the file's verified memo so processes load
//! it without checking its zones again, then records the runs left
//! pending and keeps the directory's size budget.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use persist::file_identity::{verified_memo, FileIdentity};
use persist::merge::{merge, Parts, EVERY_BLOCK};
use rkyv::util::AlignedVec;

use crate::counters::Counters;
use crate::gathering::{self, Fate, Gathered};
use crate::log::Log;
use crate::remote_link::{RemoteJob, RemoteLink};
use crate::vouched::{memo_matches, Vouched};

/// The largest delta the server reads.
pub const MAX_DELTA: u64 = 1 << 30;
/// Jobs taken in one batch.
const BATCH: usize = 256;
/// The merger thread's nice value.
const MERGER_NICE: i32 = 10;

pub enum Job {
    /// A delta for the cache file `name`, in a memory file of `len` bytes.
    HandOver { name: String, file: File, len: u64 },
    /// Record the pending run reports.
    Ingest,
    /// Answered when every job queued before it is done (a Sync, and a
    /// Stop before it is answered).
    Sync(Sender<()>),
}

pub struct Merger<'a> {
    pub dir: &'a Path,
    pub counters: &'a Counters,
    pub log: &'a Log,
    pub vouched: &'a Vouched,
    /// The remote store's link, when one is configured.
    pub remote: Option<RemoteLink>,
}

impl Merger<'_> {
    /// Runs the jobs until every sender is gone.
    pub fn run(&self, jobs: Receiver<Job>) {
        // Merging is background work: the programs running come first
        // (this thread only; answering hand-overs stays prompt).
        // SAFETY: setpriority on this thread's id.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, MERGER_NICE) };
        // Kept open between batches: opening a connection parses the
        // whole schema, which cost more than recording a run.
        let mut index = None;
        let mut gathered = Gathered::default();
        loop {
            // Small deltas due to be merged wait until no hand-over came
            // for a while (`gathering::SETTLE_AFTER`).
            let next = match gathered.any_due() {
                true => jobs.recv_timeout(gathering::SETTLE_AFTER),
                false => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let first = match next {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.settle(&mut gathered);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            Counters::sub(&self.counters.queued, batch.len() as u64);
            let mut by_file: BTreeMap<String, Vec<(File, u64)>> = BTreeMap::new();
            let mut ingest = false;
            let mut answer = Vec::new();
            for job in batch {
                match job {
                    Job::HandOver { name, file, len } => {
                        Counters::sub(&self.counters.queued_bytes, len);
                        by_file.entry(name).or_default().push((file, len));
                    }
                    Job::Ingest => ingest = true,
                    Job::Sync(done) => answer.push(done),
                }
            }
            for (name, deltas) in by_file {
                self.merge_file(&name, deltas, &mut gathered, false);
            }
            // A sync settles everything handed over before it.
            if !answer.is_empty() {
                self.settle(&mut gathered);
            }
            // Runs are recorded after the files they wrote are published.
            if ingest || !answer.is_empty() {
                self.ingest(&mut index);
            }
            for done in answer {
                let _ = done.send(());
            }
        }
    }

    /// Merges the small deltas due to be merged.
    fn settle(&self, gathered: &mut Gathered) {
        for name in gathered.take_due() {
            self.merge_file(&name, Vec::new(), gathered, true);
        }
    }

    /// Merges what `deltas` and those waiting for the file `name` bring
    /// that is worth it; small deltas that bring what recurs only when
    /// `settling` (else the file is marked due).
    fn merge_file(&self, name: &str, deltas: Vec<(File, u64)>, gathered: &mut Gathered, settling: bool) {
        // Deltas gathered before come first: the newest delta's key wins.
        let mut buffers = gathered.take(name);
        buffers.extend(deltas.into_iter().filter_map(|(f, len)| match read_all(&f, len) {
            Ok(b) => Some(b),
            Err(e) => {
                self.refuse(name, &e.to_string());
                None
            }
        }));
        let mut checked = Vec::new();
        for (i, b) in buffers.iter().enumerate() {
            match persist::validate(b) {
                Ok(v) => checked.push((i, v)),
                Err(r) => self.refuse(name, r.name()),
            }
        }
        // The module's latest version wins: deltas of an older one are left.
        let Some(key) = checked.last().map(|(_, v)| v.key.clone()) else { return };
        checked.retain(|(_, v)| v.key == key);
        let path = self.dir.join(name);
        let lock = match cachetool::lock::lock(&path) {
            Ok(l) => l,
            Err(e) => return self.error(name, &format!("cannot lock: {e}")),
        };
        let on_disk = on_disk(&path);
        let depth = match &on_disk {
            Some((_, id)) if memo_matches(&lock, *id) => persist::Depth::Structure,
            _ => persist::Depth::Full,
        };
        let old = on_disk.as_ref().and_then(|(m, _)| persist::validate_with(m, depth).ok()).filter(|v| v.key == key);
        if let (None, Some(remote)) = (&old, &self.remote) {
            // A key this directory has no file of: the store may have one.
            remote.send(RemoteJob::Fetch { name: name.to_string(), key: key.clone() });
        }
        // Decided on the archived indexes, before copying anything: most
        // deltas of warm runs add too little to be worth a rewrite, and
        // wait for others (`gathering`).
        let mut pending_wait = Vec::new();
        let mut merging = checked.iter().map(|(i, _)| *i).collect::<Vec<usize>>();
        if let Some(o) = &old {
            let deltas: Vec<&persist::Validated> = checked.iter().map(|(_, v)| v).collect();
            let sizes: Vec<usize> = checked.iter().map(|&(i, _)| buffers[i].len()).collect();
            let fates = gathering::decide(o, &deltas, &sizes);
            let with = |fate: Fate| checked.iter().zip(&fates).filter(|(_, &f)| f == fate).map(|(&(i, _), _)| i).collect::<Vec<usize>>();
            merging = with(Fate::Merge);
            let mut waiting = with(Fate::Wait);
            let recurs = with(Fate::Recurs);
            if settling {
                merging.extend(recurs);
            } else if !recurs.is_empty() {
                gathered.mark_due(name);
                waiting.extend(recurs);
                waiting.sort_unstable();
            }
            if !waiting.is_empty() {
                self.log.line(format_args!("{name}: {} deltas waiting, too small for a rewrite yet", waiting.len()));
            }
            if merging.is_empty() {
                drop(checked);
                drop(old);
                self.keep_waiting(name, buffers, &waiting, gathered);
                return;
            }
            // Taken after the merge: `checked` borrows the buffers.
            pending_wait = waiting;
        }
        let deltas = checked.iter().filter(|(i, _)| merging.contains(i)).map(|(_, v)| v);
        self.merge_and_publish(name, &path, &lock, &key, old.as_ref(), deltas);
        drop(checked);
        drop(old);
        self.keep_waiting(name, buffers, &pending_wait, gathered);
    }

    /// Merges `deltas` into `old` (None: a file of its own) and publishes
    /// the result as `path`, whose lock is held.
    fn merge_and_publish<'a>(
        &self,
        name: &str,
        path: &Path,
        lock: &File,
        key: &persist::CacheKey,
        old: Option<&persist::Validated<'a>>,
        deltas: impl Iterator<Item = &'a persist::Validated<'a>>,
    ) {
        let mut file = old.and_then(Parts::of).unwrap_or_default();
        let mut added = 0;
        for v in deltas {
            if let Some(delta) = Parts::of(v) {
                // As decided (worth a rewrite alone, or bringing what
                // recurs): each delta is taken whole, however small.
                added += merge(&mut file, delta, EVERY_BLOCK).unwrap_or(0);
            }
        }
        if added == 0 {
            return;
        }
        let zones = file.zone_refs();
        let layout = persist::write::lay_out(key, &file.index, &zones);
        match publish(path, &layout) {
            Ok(id) => {
                let _ = lock.write_all_at(&verified_memo(id), 0);
                self.vouched.note(name, id);
                if let Some(remote) = &self.remote {
                    remote.send(RemoteJob::Published { name: name.to_string() });
                }
                Counters::add(&self.counters.merges, 1);
                Counters::add(&self.counters.blocks_added, added as u64);
                Counters::add(&self.counters.bytes_written, layout.len() as u64);
                self.log.line(format_args!("wrote {name}: {} blocks, {added} new, {} bytes", file.index.blocks.len(), layout.len()));
            }
            Err(e) => self.error(name, &format!("cannot write: {e}")),
        }
    }

    /// Keeps the deltas `waiting` (indexes into `buffers`) for the file
    /// `name`'s next merge.
    fn keep_waiting(&self, name: &str, buffers: Vec<AlignedVec<16>>, waiting: &[usize], gathered: &mut Gathered) {
        let kept = buffers.into_iter().enumerate().filter(|(i, _)| waiting.contains(i)).map(|(_, b)| b).collect();
        gathered.keep(name, kept);
        Counters::set(&self.counters.gathered, gathered.waiting() as u64);
    }

    /// Records the pending runs through `index`, opened first unless it
    /// is open on the database at the index's path.
    fn ingest(&self, index: &mut Option<cachetool::index::Index>) {
        if index.as_ref().is_some_and(|ix| !ix.still_current()) {
            *index = None;
        }
        if index.is_none() {
            let opened = match cachetool::index::Index::open_within(self.dir, Duration::from_secs(5)) {
                Err(e) if e.needs_rebuild() => cachetool::index::Index::open_or_rebuild(self.dir).map(|(ix, _)| ix),
                other => other,
            };
            match opened {
                Ok(ix) => *index = Some(ix),
                Err(e) => return self.log.line(format_args!("runs not recorded yet: {e}")),
            }
        }
        let Some(ix) = index.as_mut() else { return };
        let n = ix.ingest_pending();
        Counters::add(&self.counters.runs_recorded, n as u64);
        if cachetool::prune::enforce_budget(ix).is_err() {
            // Opened again next time, in case the database went bad.
            *index = None;
        }
    }

    fn refuse(&self, name: &str, why: &str) {
        Counters::add(&self.counters.rejected, 1);
        self.log.line(format_args!("refused a delta for {name}: {why}"));
    }

    fn error(&self, name: &str, why: &str) {
        Counters::add(&self.counters.errors, 1);
        self.log.line(format_args!("{name}: {why}"));
    }
}

/// A copy of the first `len` bytes of `file`, 16-byte aligned for the
/// checks: the sender could still change the memory file, so what is
/// checked and merged is the server's own copy.
fn read_all(file: &File, len: u64) -> std::io::Result<AlignedVec<16>> {
    if len > MAX_DELTA {
        return Err(std::io::Error::other(format!("{len} bytes (at most {MAX_DELTA})")));
    }
    let mut buf = AlignedVec::<16>::with_capacity(len as usize);
    buf.resize(len as usize, 0);
    file.read_exact_at(buf.as_mut_slice(), 0)?;
    Ok(buf)
}

/// The file as it is on disk, mapped, and its identity.
fn on_disk(path: &Path) -> Option<(memmap2::Mmap, FileIdentity)> {
    let f = File::open(path).ok()?;
    let meta = f.metadata().ok()?;
    if meta.len() == 0 || !meta.is_file() {
        return None;
    }
    // SAFETY: cache files are replaced by rename, never written in place.
    let map = unsafe { memmap2::Mmap::map(&f) }.ok()?;
    Some((map, FileIdentity::of(&meta)))
}

/// Writes `file` to a temporary file beside `path` and renames it over
/// `path`; the identity of the file published.
fn publish(path: &Path, file: &persist::write::Layout) -> std::io::Result<FileIdentity> {
    let tmp = cachetool::cache_dir::temp_beside(path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| file.pieces().try_for_each(|piece| f.write_all(piece)));
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(FileIdentity::of(&std::fs::symlink_metadata(path)?))
}
