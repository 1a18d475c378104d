//! Traces and their heads. A head is a block the monitor counts entries
//! to (the target of a backward direct branch or of a trace's exit): no
//! exit is linked to it, so every entry passes the dispatcher, until its
//! trace exists and takes its place. A trace is a fragment of its own,
//! found by its head's tag before the head's block, with the app ranges
//! of every block it holds: writing to any of them flushes it.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};

use crate::translate::fragment::{Fragment, Patch};
use crate::translate::retired::{self, Retired};

/// Entries to a head before its path is recorded. DynamoRIO's 50 made
/// python3's start-up build 1,100 traces a run (in-cache counting makes a
/// high threshold cheap): 1,000 builds 146, and its later recording
/// follows the program's hot phase better (a 20M-square loop 1.61x native
/// against 1.78x; 4,000 gained nothing more).
pub(crate) const HOT: u32 = 1000;

pub(crate) struct Trace {
    pub(crate) fragment: Fragment,
    /// `[tag, end)` of each block the trace was built from.
    pub(crate) spans: Vec<(u64, u64)>,
}

/// A head's counting stub (`emit::head_counter`): exits to the head link
/// here until its trace exists, so entries are counted in the cache.
pub(crate) struct HeadStub {
    pub(crate) start: u64,
    /// The i64 it counts down (never freed: a thread may be in the stub).
    counter: u64,
    /// (patch, stub) of every exit linked to it.
    incoming: Vec<(Patch, u64)>,
}

/// A trace retired as stale: where its code is, and the app ranges of its
/// blocks.
struct StaleTrace {
    start: u64,
    spans: Vec<(u64, u64)>,
}

/// The path a thread is recording (see the monitor).
pub(crate) struct Recording {
    /// The recording thread's context address.
    pub(crate) owner: u64,
    /// Tags of the blocks run so far, the head first.
    pub(crate) blocks: Vec<u64>,
    /// Dispatches of other threads since the owner's last.
    pub(crate) idle: u32,
    /// The copies of the blocks it ran (never linked), by cache start:
    /// kept while a thread may run one, for translating a fault in it.
    copies: BTreeMap<u64, Fragment>,
}

/// In-line checks of a trace that may miss before it is recorded afresh:
/// a trace recorded in one phase of a program (an interpreter's start-up)
/// may follow other ways than the next phase's.
const MISS_BUDGET: u64 = 1024;
/// Times a head's trace is recorded afresh before its last one is kept.
const MAX_REBUILDS: u32 = 3;

#[derive(Default)]
pub(crate) struct TraceTable {
    by_head: HashMap<u64, Trace>,
    /// Head by cache start, of live traces.
    by_start: BTreeMap<u64, u64>,
    /// Entries counted so far, by head.
    heads: HashMap<u64, u32>,
    /// Counting stubs, by head.
    head_stubs: HashMap<u64, HeadStub>,
    /// The code of every counting stub made (never freed), by start: its
    /// end and the block it goes on to.
    head_stub_code: BTreeMap<u64, (u64, u64)>,
    /// Heads whose trace was ever removed: a file's trace of theirs is not
    /// adopted again.
    removed: HashSet<u64>,
    /// Heads whose entries were ever counted hot.
    hot: HashSet<u64>,
    /// The last trace of each head retired as stale that has none since
    /// (its fragment is in `retired`): a file keeps it, with a larger
    /// budget, so that the runs after do not each record and build it
    /// again (`persist::merge::TRACE_BUDGET_GROWTH`).
    stale: HashMap<u64, StaleTrace>,
    /// Traces removed while a thread may still run them (`retired.rs`).
    retired: Retired,
    /// Heads whose trace could not go into their module's file: it reads
    /// client data of its blocks that lies outside the segment it is built
    /// in (in an earlier segment of this run), which it cannot reach
    /// module-relative, or a client gave its copy of a loaded file's block
    /// data of its own. Files mark them cold like never-hot
    /// heads, or every later run would count, record and build them again
    /// in the cache (python3's unittest under drcov: 200 traces a run).
    unpersistable: HashSet<u64>,
    /// Traces of each head retired as stale so far.
    rebuilds: HashMap<u64, u32>,
    /// The path a thread is recording, if one is.
    pub(crate) recording: Option<Recording>,
    /// Copies of recordings dropped while their thread may have been in
    /// one (a flush, an owner gone quiet).
    orphans: Retired,
}

impl TraceTable {
    pub(crate) fn get(&self, head: u64) -> Option<&Fragment> {
        self.by_head.get(&head).map(|t| &t.fragment)
    }

    pub(crate) fn is_head(&self, tag: u64) -> bool {
        self.heads.contains_key(&tag)
    }

    /// The counting stub of `head`, if it has one.
    pub(crate) fn head_stub(&self, head: u64) -> Option<u64> {
        self.head_stubs.get(&head).map(|s| s.start)
    }

    /// Where `head`'s counting stub goes on to, if it has one.
    pub(crate) fn head_stub_block(&self, head: u64) -> Option<u64> {
        let start = self.head_stub(head)?;
        self.head_stub_code.get(&start).map(|&(_, block)| block)
    }

    /// Where a new block's or trace's exit to `target`, whose entries are
    /// counted, is linked as it is emitted: the target's trace, else its
    /// head's counting stub. Linking to the stub at once spares the exit
    /// the dispatcher round trip that would link it there: a cold
    /// python3 -c pass made 8,275 of them (about 1,000 to one head), and
    /// now enters the dispatcher 44,143 times instead of 52,996.
    /// None: the exit goes to its stub until the dispatcher links it.
    pub(crate) fn exit_link_target(&self, target: u64) -> Option<u64> {
        self.get(target).map(|f| f.start).or_else(|| self.head_stub(target))
    }

    /// Records that the exit patched at `patch` was linked where
    /// [`TraceTable::exit_link_target`] led it for `target`.
    pub(crate) fn note_counted_link(&mut self, target: u64, patch: Patch, stub: u64) {
        if self.get(target).is_some() {
            self.note_link(target, patch, stub);
        } else {
            self.note_head_stub_link(target, patch, stub);
        }
    }

    /// A new i64 counter holding `value`, for a counting stub.
    pub(crate) fn new_counter(value: i64) -> u64 {
        alloc::boxed::Box::leak(alloc::boxed::Box::new(value)) as *mut i64 as u64
    }

    /// Records `head`'s counting stub, `len` bytes at `start`, which goes
    /// on to the head's block at `block_start`.
    pub(crate) fn add_head_stub(&mut self, head: u64, start: u64, len: u64, counter: u64, block_start: u64) {
        self.head_stubs.insert(head, HeadStub { start, counter, incoming: Vec::new() });
        self.head_stub_code.insert(start, (start + len, block_start));
    }

    /// If cache address `pc` is in a counting stub, the block the stub
    /// goes on to (a thread there reaches that block's exits next).
    pub(crate) fn block_after_head_stub(&self, pc: u64) -> Option<u64> {
        let (_, &(end, block)) = self.head_stub_code.range(..=pc).next_back()?;
        (pc < end).then_some(block)
    }

    /// Records that the exit patched at `patch` now jumps to `head`'s
    /// counting stub.
    pub(crate) fn note_head_stub_link(&mut self, head: u64, patch: Patch, stub: u64) {
        if let Some(s) = self.head_stubs.get_mut(&head) {
            s.incoming.push((patch, stub));
        }
    }

    /// `head` counts `entries` more before its stub reports it hot again.
    pub(crate) fn recount(&self, head: u64, entries: i64) {
        if let Some(s) = self.head_stubs.get(&head) {
            // SAFETY: a leaked counter; a racing stub may lose one count.
            unsafe { core::ptr::write_volatile(s.counter as *mut i64, entries) };
        }
    }

    /// Takes `head`'s counting stub out, with the exits linked to it (its
    /// trace takes them).
    pub(crate) fn take_head_stub(&mut self, head: u64) -> Vec<(Patch, u64)> {
        self.head_stubs.remove(&head).map_or_else(Vec::new, |s| s.incoming)
    }

    /// Drops `head`'s counting stub, whose block went: exits linked to it
    /// go back to their stubs.
    pub(crate) fn drop_head_stub(&mut self, head: u64) {
        for (patch, stub) in self.take_head_stub(head) {
            crate::translate::link::unlink(patch, stub);
        }
    }

    /// Whether a trace of `head` was removed in this run (stale, flushed).
    pub(crate) fn was_removed(&self, head: u64) -> bool {
        self.removed.contains(&head)
    }

    /// Entries to `head` the dispatcher counted since it became one (or
    /// its last trace went).
    pub(crate) fn entries(&self, head: u64) -> u32 {
        self.heads.get(&head).copied().unwrap_or(0)
    }

    /// Whether `tag` is a head later runs need not count: its entries
    /// were never counted hot, or its trace could not be persisted.
    pub(crate) fn is_cold_head(&self, tag: u64) -> bool {
        self.is_head(tag) && (!self.hot.contains(&tag) || self.unpersistable.contains(&tag))
    }

    /// The heads in `[lo, hi)` later runs need not count ([`Self::is_cold_head`]).
    pub(crate) fn cold_heads_in(&self, lo: u64, hi: u64) -> impl Iterator<Item = u64> + '_ {
        self.heads.keys().copied().filter(move |&t| t >= lo && t < hi && self.is_cold_head(t))
    }

    /// The heads in `[lo, hi)` whose trace this run removed (stale,
    /// flushed) and that have none now, or one no file can hold (a file's
    /// trace that went stale and was recorded afresh into a trace reading
    /// client data outside its segment kept its budget, went stale in
    /// every run and was recorded again: 5 traces in every warm `gcc -c`
    /// under drcov, whose cold marks alone were too small a change for
    /// cc1's file to take).
    pub(crate) fn traceless_removed_in(&self, lo: u64, hi: u64) -> impl Iterator<Item = u64> + '_ {
        self.removed.iter().copied().filter(move |&t| t >= lo && t < hi && (!self.by_head.contains_key(&t) || self.unpersistable.contains(&t)))
    }

    /// `head`'s trace could not go into its module's file.
    pub(crate) fn note_unpersistable(&mut self, head: u64) {
        self.unpersistable.insert(head);
    }

    /// Makes `tag` a head if it is not, with no entry counted (a file's
    /// counting stub counted them).
    pub(crate) fn note_head(&mut self, tag: u64) {
        self.heads.entry(tag).or_insert(0);
    }

    /// Counts an entry to `tag`, making it a head if it is not; returns the
    /// entries counted so far.
    pub(crate) fn count_entry(&mut self, tag: u64) -> u32 {
        let n = self.heads.entry(tag).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    pub(crate) fn insert(&mut self, trace: Trace) {
        let head = trace.fragment.tag;
        self.stale.remove(&head);
        self.by_start.insert(trace.fragment.start, head);
        self.by_head.insert(head, trace);
    }

    /// Records that the exit patched at `patch` now jumps to `head`'s trace.
    pub(crate) fn note_link(&mut self, head: u64, patch: Patch, stub: u64) {
        if let Some(t) = self.by_head.get_mut(&head) {
            t.fragment.add_incoming(patch, stub);
        }
    }

    /// Removes `head`'s trace (its code stays where it is): exits linked to
    /// it go back to their stubs, and its head is counted from zero again.
    pub(crate) fn remove(&mut self, head: u64) -> Option<Trace> {
        let t = self.by_head.remove(&head)?;
        self.removed.insert(head);
        self.by_start.remove(&t.fragment.start);
        for &(patch, stub) in &*t.fragment.incoming {
            let patch: Patch = patch.into();
            crate::translate::link::unlink(patch, stub);
        }
        if let Some(n) = self.heads.get_mut(&head) {
            *n = 0;
        }
        // Counted afresh through a new stub.
        self.drop_head_stub(head);
        Some(t)
    }

    /// Removes every trace holding a block built from app bytes in
    /// `[lo, hi)`; returns their heads.
    pub(crate) fn flush_range(&mut self, lo: u64, hi: u64) -> Vec<u64> {
        let heads: Vec<u64> = self
            .by_head
            .values()
            .filter(|t| t.spans.iter().any(|&(a, b)| a < hi && b > lo))
            .map(|t| t.fragment.tag)
            .collect();
        for &head in &heads {
            if let Some(t) = self.remove(head) {
                self.retired.keep(t.fragment);
            }
        }
        self.stale.retain(|_, t| !t.spans.iter().any(|&(a, b)| a < hi && b > lo));
        heads
    }

    /// In-line checks of a trace that may miss before it is recorded
    /// afresh.
    pub(crate) const MISS_BUDGET: u64 = MISS_BUDGET;
    /// Whether a new trace of `head` counts its missed in-line checks: not
    /// once the head's traces went stale too often (its paths vary: the
    /// trace is kept for good).
    pub(crate) fn counts_misses(&self, head: u64) -> bool {
        self.rebuilds.get(&head).is_none_or(|&n| n < MAX_REBUILDS)
    }

    /// The address of a new budget of missed in-line checks for a trace
    /// of `head` (see `Op::InlineTarget`), or 0 if it counts none. A
    /// budget is never freed: a thread may still run a retired trace.
    pub(crate) fn miss_budget(&self, head: u64) -> u64 {
        if !self.counts_misses(head) {
            return 0;
        }
        let budget: &'static mut u64 = alloc::boxed::Box::leak(alloc::boxed::Box::new(MISS_BUDGET));
        budget as *mut u64 as u64
    }

    /// Removes `head`'s trace, which spent its miss budget: its head is
    /// counted again, and the next trace recorded from the path it runs
    /// now. False if it was already gone.
    pub(crate) fn retire_stale(&mut self, head: u64) -> bool {
        let Some(t) = self.remove(head) else { return false };
        self.stale.insert(head, StaleTrace { start: t.fragment.start, spans: t.spans });
        self.retired.keep(t.fragment);
        *self.rebuilds.entry(head).or_insert(0) += 1;
        true
    }

    /// `head`'s trace at cache address `start`, retired as stale with none
    /// since (a head with a live trace has none here: `insert` drops it).
    pub(crate) fn stale_trace(&self, head: u64, start: u64) -> Option<&Fragment> {
        self.stale.get(&head).filter(|t| t.start == start).and_then(|_| self.retired.get(start))
    }

    /// `owner` (a thread context's address) starts recording at `head`,
    /// whose copy it enters first.
    pub(crate) fn start_recording(&mut self, owner: u64, head: u64, copy: Fragment) {
        self.hot.insert(head);
        let mut copies = BTreeMap::new();
        copies.insert(copy.start, copy);
        self.recording = Some(Recording { owner, blocks: alloc::vec![head], idle: 0, copies });
    }

    /// The recording thread goes on to the block at `tag`, whose copy it
    /// enters.
    pub(crate) fn record(&mut self, tag: u64, copy: Fragment) {
        let rec = self.recording.as_mut().expect("recording");
        rec.blocks.push(tag);
        rec.copies.insert(copy.start, copy);
    }

    /// The recorded path, once its thread is back at the dispatcher (out
    /// of every copy, which goes).
    pub(crate) fn finish_recording(&mut self) -> Vec<u64> {
        self.recording.take().map_or_else(Vec::new, |r| r.blocks)
    }

    /// Drops the recording while its thread may still run a copy.
    pub(crate) fn abandon_recording(&mut self) {
        if let Some(r) = self.recording.take() {
            for (_, copy) in r.copies {
                self.orphans.keep(copy);
            }
        }
    }

    /// Whether cache address `pc` is in a recorded block's copy.
    pub(crate) fn in_copy(&self, pc: u64) -> bool {
        self.copy_containing(pc).is_some()
    }

    fn copy_containing(&self, pc: u64) -> Option<&Fragment> {
        let current = self.recording.as_ref().and_then(|r| retired::fragment_at(&r.copies, pc, |f| f));
        current.or_else(|| self.orphans.containing(pc))
    }

    /// The trace (live or retired) or block copy whose code contains cache
    /// address `pc`.
    pub(crate) fn containing(&self, pc: u64) -> Option<&Fragment> {
        let trace = self.by_start.range(..=pc).next_back().and_then(|(_, head)| self.get(*head));
        trace
            .filter(|f| pc < f.start + f.size as u64)
            .or_else(|| self.copy_containing(pc))
            .or_else(|| self.retired.answering_for(pc))
    }

    /// Frees the retired traces and orphaned copies no thread runs any
    /// more: those retired before epoch `oldest` (`quiescence.rs`), but the
    /// stale traces a file may keep. Returns how many went.
    pub(crate) fn free_retired_before(&mut self, oldest: u64) -> u64 {
        let kept_for_files: hashbrown::HashSet<u64> = match self.retired.len() {
            0 => Default::default(),
            _ => self.stale.values().map(|t| t.start).collect(),
        };
        self.retired.free_before(oldest, |start| kept_for_files.contains(&start)) + self.orphans.free_before(oldest, |_| false)
    }

    /// Forgets the retired traces whose code starts in `[lo, hi)`, which
    /// the cache takes back.
    pub(crate) fn forget_retired_code_in(&mut self, lo: u64, hi: u64) {
        self.retired.forget_code_in(lo, hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(head: u64, start: u64, spans: &[(u64, u64)]) -> Trace {
        let fragment = Fragment::new(head, crate::translate::fragment::app_len(head, spans[0].1), start, 0x100, core::iter::empty(), &[], false);
        Trace { fragment, spans: spans.to_vec() }
    }

    #[test]
    fn a_write_to_any_block_of_a_trace_flushes_it() {
        let mut t = TraceTable::default();
        assert_eq!(t.count_entry(0x1000), 1);
        t.insert(trace(0x1000, 0x9000, &[(0x1000, 0x1010), (0x5000, 0x5020)]));
        t.insert(trace(0x2000, 0x9100, &[(0x2000, 0x2010)]));
        assert_eq!(t.containing(0x90ff).map(|f| f.tag), Some(0x1000));
        assert_eq!(t.flush_range(0x5010, 0x5011), [0x1000]);
        assert!(t.get(0x1000).is_none());
        // Retired: a thread may still run it.
        assert_eq!(t.containing(0x9010).map(|f| f.tag), Some(0x1000));
        assert_eq!(t.count_entry(0x1000), 1, "its head is counted again");
        assert!(t.get(0x2000).is_some());
    }

    /// An exit emitted to a head goes to its counting stub while the
    /// head has no trace, then to the trace; either way it is recorded
    /// where a later relink finds it (the stub's exits move to the trace
    /// built, the trace's go back to their stubs when it goes).
    #[test]
    fn exits_emitted_to_a_head_link_to_its_stub_then_its_trace() {
        let mut t = TraceTable::default();
        assert_eq!(t.exit_link_target(0x1000), None, "not counted yet: the dispatcher links it");
        t.count_entry(0x1000);
        t.add_head_stub(0x1000, 0x8000, 0x40, TraceTable::new_counter(10), 0x8800);
        assert_eq!(t.exit_link_target(0x1000), Some(0x8000));
        t.note_counted_link(0x1000, Patch::Rel32(0x7004), 0x7100);
        assert_eq!(t.take_head_stub(0x1000), [(Patch::Rel32(0x7004), 0x7100)]);
        t.insert(trace(0x1000, 0x9000, &[(0x1000, 0x1010)]));
        assert_eq!(t.exit_link_target(0x1000), Some(0x9000));
        t.note_counted_link(0x1000, Patch::Rel32(0x7204), 0x7300);
        let incoming: Vec<(Patch, u64)> = t.get(0x1000).expect("the trace").incoming.iter().map(|&(p, stub)| (p.into(), stub)).collect();
        assert_eq!(incoming, [(Patch::Rel32(0x7204), 0x7300)]);
    }

    #[test]
    fn a_head_whose_traces_keep_going_stale_keeps_its_last() {
        let mut t = TraceTable::default();
        for _ in 0..MAX_REBUILDS {
            let budget = t.miss_budget(0x1000);
            assert_ne!(budget, 0);
            // SAFETY: a budget is a leaked u64.
            assert_eq!(unsafe { *(budget as *const u64) }, MISS_BUDGET);
            t.insert(trace(0x1000, 0x9000, &[(0x1000, 0x1010)]));
            assert!(t.retire_stale(0x1000));
            assert!(!t.retire_stale(0x1000), "already gone");
        }
        assert_eq!(t.miss_budget(0x1000), 0, "the next trace is kept for good");
        assert_ne!(t.miss_budget(0x2000), 0, "other heads keep theirs");
    }

    /// A trace retired as stale stays at hand for a file to keep, until a
    /// new trace of its head takes its place or its code is written to.
    #[test]
    fn a_stale_trace_is_kept_until_replaced_or_flushed() {
        let mut t = TraceTable::default();
        t.insert(trace(0x1000, 0x9000, &[(0x1000, 0x1010)]));
        assert!(t.stale_trace(0x1000, 0x9000).is_none(), "live, not stale");
        assert!(t.retire_stale(0x1000));
        assert_eq!(t.stale_trace(0x1000, 0x9000).map(|f| f.tag), Some(0x1000));
        assert!(t.stale_trace(0x1000, 0x9100).is_none(), "another trace of the head");
        t.insert(trace(0x1000, 0x9100, &[(0x1000, 0x1010)]));
        assert!(t.stale_trace(0x1000, 0x9000).is_none(), "replaced");
        assert!(t.retire_stale(0x1000));
        assert!(t.stale_trace(0x1000, 0x9100).is_some());
        assert!(t.flush_range(0x1008, 0x1009).is_empty(), "no live trace there");
        assert!(t.stale_trace(0x1000, 0x9100).is_none(), "its code was written to");
    }
}
