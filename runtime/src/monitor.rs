//! The trace monitor (DynamoRIO's name): counts entries to trace heads at
//! the dispatcher, records the path a thread takes from a hot head, and
//! builds the trace from it (NET's scheme: heads are targets of backward
//! direct branches and of traces' exits; the path recorded is the next one
//! executed).
//!
//! A recording thread runs copies of the path's blocks whose exits all
//! come back to the dispatcher (direct ones never linked, indirect ones
//! never looked up), so the dispatcher sees each pc the path goes on at.
//! The trace is then built afresh from the recorded tags: each block
//! decoded, instrumented and mangled as a block is, then stitched
//! (`translate::trace`). One thread records at a time.

use alloc::vec::Vec;

use crate::stats::{self, STATS};
use crate::translate::emit::{self, Counted, Placement};
use crate::translate::mangle::{self, Addressing, CallForm, Op};
use crate::translate::bb_builder::BasicBlock;
use crate::translate::trace::{self, stitch};
use crate::translate::fragment::{Fragment, Patch};
use crate::translate::link;
use crate::translate::trace_table::{Trace, TraceTable, HOT};
use crate::persistence::units::UnitTrace;
use crate::translator::Translator;

/// Most blocks a trace holds.
const MAX_TRACE_BLOCKS: usize = 64;
/// Dispatches by other threads after which a recording whose thread has
/// stopped coming back (it exited, or exec'd from a vfork) is dropped.
const ABANDONED_AFTER: u32 = 10_000;

/// Whether a trace from `head` can hold the block at `pc`: its
/// translations keep app pcs as 32-bit offsets from the head
/// (`fragment::pack_translations`), so a path that goes further away (from
/// a static program into a JIT's pages, from a PIE into a library) ends
/// before it; a fault there was translated to a pc with its high half cut
/// off. The margin covers the block's own length.
fn within_translation_reach(head: u64, pc: u64) -> bool {
    pc.abs_diff(head) < (1 << 31) - (1 << 16)
}

/// Where a thread arrives at the dispatcher from.
#[derive(Clone, Copy)]
pub(crate) enum Arrival {
    /// A direct exit whose branch (in the code of the block or trace it
    /// leaves, unlike its stub) is at `branch`; `counts_target` if the
    /// monitor counts entries to its target ([`emit::Counted`]).
    Direct { branch: u64, counts_target: bool },
    /// An indirect branch whose lookup missed.
    Indirect,
    /// Anything else (a system call, a signal, the start).
    Other,
}

/// What the dispatcher does with the thread next.
pub(crate) enum Step {
    /// Enter this cache address (a recorded block's copy).
    Enter(u64),
    /// Enter the fragment for the pc without linking the exit it came by.
    Unlinked,
    /// Enter the fragment for the pc (a head's block), and link the exit
    /// it came by to the head's counting stub (`link_via_head_stub`).
    ViaHeadStub,
    /// Carry on as without traces.
    Normal,
}

impl Translator {
    /// The monitor's part in a dispatch: the thread whose context is at
    /// `thread` (its stack at `sp`) continues at `pc`, arriving as
    /// `arrival`.
    pub(crate) fn monitor(&mut self, thread: u64, pc: u64, arrival: Arrival, sp: u64, may_record: bool) -> Step {
        if let Some(rec) = self.traces.recording.as_mut() {
            if rec.owner == thread {
                rec.idle = 0;
                return self.record_step(pc, arrival, sp);
            }
            rec.idle += 1;
            if rec.idle > ABANDONED_AFTER {
                self.traces.abandon_recording();
            }
        }
        let Arrival::Direct { branch, counts_target } = arrival else { return Step::Normal };
        if self.traces.in_copy(branch) {
            // A copy's exit (its recording was dropped): never linked.
            return Step::Unlinked;
        }
        self.adopt_file_trace(pc);
        if self.traces.get(pc).is_some() || self.fragments.is_sandboxed(pc) {
            return Step::Normal;
        }
        if !(counts_target || self.traces.is_head(pc)) {
            return Step::Normal;
        }
        let entries = self.traces.count_entry(pc);
        if entries == 1 {
            // A new head: exits linked to its block come here from now on.
            crate::stats::add(&crate::stats::STATS.heads_counted, 1);
            self.fragments.unlink_incoming(pc);
        }
        if entries >= HOT {
            if let Some(start) = self.start_recording(thread, pc, sp, may_record) {
                return Step::Enter(start);
            }
        }
        Step::ViaHeadStub
    }

    /// `head`'s counting stub counted down to zero: the thread records
    /// from it if it can, or the stub counts again.
    pub(crate) fn head_hot(&mut self, thread: u64, head: u64, sp: u64, may_record: bool) -> Step {
        if self.traces.get(head).is_some() {
            return Step::Normal;
        }
        match self.start_recording(thread, head, sp, may_record) {
            Some(start) => Step::Enter(start),
            None => {
                self.traces.recount(head, HOT as i64);
                Step::Normal
            }
        }
    }

    /// `head`'s count by a file's counting stub, whose go slot is at
    /// `go_slot`, reached zero: the cache address the thread enters,
    /// recording from the head if it can; None to go on through the
    /// dispatcher.
    pub(crate) fn file_head_hot(&mut self, thread: u64, head: u64, sp: u64, may_record: bool, go_slot: u64) -> Option<u64> {
        if self.loaded.in_retired_file(go_slot) {
            return None;
        }
        crate::verbose!("trace head {head:#x}: counted hot by its file's counting stub");
        // Known as a head from now on: cold if it never gets hot.
        self.traces.note_head(head);
        self.adopt_file_trace(head);
        if let Some(start) = self.traces.get(head).map(|t| t.start) {
            // Built since (its stubs lead to it), or a file's trace.
            return Some(start);
        }
        self.start_recording(thread, head, sp, may_record).or_else(|| self.file_head_start(head))
    }

    /// Leads the go slots of the counting stubs the head's file has for it
    /// to `trace`, which takes them as links (a retired trace sends them
    /// back to the stubs' counting code).
    fn lead_file_counting_stubs_to(&self, trace: &mut Trace) {
        let head = trace.fragment.tag;
        let Some(m) = crate::translator::file_module(head) else { return };
        for (go_slot, counting) in self.loaded.counting_stubs_of(head, m.base, m.identity) {
            link::link(Patch::Slot(go_slot), trace.fragment.start);
            trace.fragment.add_incoming(Patch::Slot(go_slot), counting);
        }
    }

    /// Starts recording at `head` if no thread records; the copy to enter.
    fn start_recording(&mut self, thread: u64, head: u64, sp: u64, may_record: bool) -> Option<u64> {
        if !may_record || self.traces.recording.is_some() {
            return None;
        }
        let copy = self.copy_block(head, sp)?;
        let start = copy.start;
        self.traces.start_recording(thread, head, copy);
        Some(start)
    }

    /// Links the exit patched at `patch` (stub `stub`) that came to the
    /// head `head` to the head's counting stub, made now (to go on to the
    /// head's block at `block_start`) if it has none: later entries by that
    /// exit are counted without the dispatcher.
    pub(crate) fn link_via_head_stub(&mut self, head: u64, block_start: u64, patch: Patch, stub: u64) {
        let counter_stub = match self.traces.head_stub(head) {
            Some(s) => s,
            None => {
                let left = HOT.saturating_sub(self.traces.entries(head)).max(1);
                let counter = TraceTable::new_counter(left as i64);
                let Some((s, len)) = emit::head_counter(&mut self.cache, head, counter, block_start) else { return };
                self.traces.add_head_stub(head, s, len, counter, block_start);
                s
            }
        };
        link::link(patch, counter_stub);
        self.traces.note_head_stub_link(head, patch, stub);
    }

    /// The recording thread is back at the dispatcher: the path goes on at
    /// `pc`, or ends there.
    fn record_step(&mut self, pc: u64, arrival: Arrival, sp: u64) -> Step {
        let from_copy = match arrival {
            Arrival::Direct { branch, .. } => self.traces.in_copy(branch),
            Arrival::Indirect => true,
            Arrival::Other => false,
        };
        let blocks = &self.traces.recording.as_ref().expect("recording").blocks;
        let ends = !from_copy
            || pc == blocks[0]
            || blocks.len() >= MAX_TRACE_BLOCKS
            || self.traces.is_head(pc)
            || self.fragments.is_sandboxed(pc)
            || !within_translation_reach(blocks[0], pc);
        if !ends {
            if let Some(copy) = self.copy_block(pc, sp) {
                let start = copy.start;
                self.traces.record(pc, copy);
                return Step::Enter(start);
            }
        }
        let blocks = self.traces.finish_recording();
        self.build_trace(&blocks, sp);
        Step::Unlinked
    }

    /// A copy of the block at `pc` whose every exit comes back to the
    /// dispatcher, emitted; None if there is no block there to copy (a
    /// fault, sandboxed code).
    fn copy_block(&mut self, pc: u64, sp: u64) -> Option<Fragment> {
        let block = self.block_for_cache(pc, sp).ok().filter(|b| !b.sandboxed)?;
        let mut ops = mangle::mangle(&block, Addressing::Absolute, CallForm::Plain)?;
        for m in &mut ops {
            if matches!(m.op, Op::IndirectExit) {
                m.op = Op::IndirectToDispatcher;
            }
        }
        let end = block.end_pc().max(pc + 1);
        emit::emit(pc, end, &ops, Placement::Cache(&mut self.cache), Counted::BackwardExits, |_, _| None).ok()
    }
    /// Builds and registers the trace through the recorded `blocks` (as far
    /// as their code still goes that way): in their module's persistable
    /// segment when it can go there, else in the cache.
    fn build_trace(&mut self, blocks: &[u64], sp: u64) {
        let head = blocks[0];
        // A trace a file keeps counts its misses as one in the cache does:
        // a loop's trace recorded during an interpreter's start-up missed
        // 5 in-line checks a round of the loop after it, in every warm run
        // (python3's 2M-square loop: 14.5M lookups against 0.6M). What a
        // run records afresh replaces the file's trace, and the merge
        // gives a head whose trace went stale a larger budget each time,
        // so that short runs soon stop recording (`persist::merge::
        // TRACE_BUDGET_GROWTH`). A head's fourth trace in a run counts no
        // misses, in files too: a count every miss by every thread (xz's
        // two threads sharing its line) cost xz -T2 a third more time.
        let budget = self.traces.counts_misses(head).then_some(TraceTable::MISS_BUDGET);
        let Some((fragment, spans)) = self.persistable_trace(blocks, sp, budget).or_else(|| self.cache_trace(blocks, sp)) else {
            return;
        };
        for exit in fragment.exits().filter(|e| e.prelinked) {
            self.traces.note_counted_link(exit.target, exit.patch(), exit.stub);
        }
        stats::add(&STATS.traces_built, 1);
        stats::add(&STATS.trace_blocks, spans.len() as u64);
        crate::verbose!("trace at {head:#x}: {} blocks, {} bytes", spans.len(), fragment.size);
        self.ibl.insert(head, fragment.start);
        let mut trace = Trace { fragment, spans };
        // Exits counting at the head's stub go to the trace now.
        for (patch, stub) in self.traces.take_head_stub(head) {
            link::link(patch, trace.fragment.start);
            trace.fragment.add_incoming(patch, stub);
        }
        if crate::options::get().persist {
            self.lead_file_counting_stubs_to(&mut trace);
        }
        self.traces.insert(trace);
    }

    /// The trace through `blocks` in the code cache, with the spans of the
    /// blocks it holds.
    fn cache_trace(&mut self, blocks: &[u64], sp: u64) -> Option<(Fragment, Vec<(u64, u64)>)> {
        let mut built = Vec::with_capacity(blocks.len());
        for &tag in blocks {
            let Some(block) = self.block_for_cache(tag, sp).ok().filter(|b| !b.sandboxed) else { break };
            built.push(block);
        }
        let (mut ops, spans) = stitched(&built, blocks, Addressing::Absolute)?;
        let head = blocks[0];
        set_budget(&mut ops, self.traces.miss_budget(head));
        let traces = &self.traces;
        let Ok(fragment) = emit::emit(head, spans[0].1, &ops, Placement::Cache(&mut self.cache), Counted::EveryExit, |t, _| traces.exit_link_target(t))
        else {
            crate::log::fatal(70, format_args!("code cache full"))
        };
        Some((fragment, spans))
    }

    /// The trace through `blocks` in the persistable segment of their
    /// module, as far as they lie in it, so that a file keeps it as it
    /// keeps blocks; None if it cannot go there: not under `-persist`, not
    /// a file's code, a client that keeps the block from files or gives
    /// it data of its own (a trace's copy of a block would need its own,
    /// kept apart from the block's), code not module-relative (client
    /// data outside the segment). In those two cases the head is noted,
    /// for files to mark it cold.
    fn persistable_trace(&mut self, blocks: &[u64], sp: u64, budget: Option<u64>) -> Option<(Fragment, Vec<(u64, u64)>)> {
        if !crate::options::get().persist {
            return None;
        }
        let head = blocks[0];
        let m = crate::translator::file_module(head)?;
        let unit = self.units.unit_for(m.base, m.end, m.path, m.identity);
        if self.units.units[unit].tainted {
            return None;
        }
        let s = self.units.units[unit].current_segment(&mut self.cache, false)? as usize;
        let mut built = Vec::with_capacity(blocks.len());
        for &tag in blocks {
            let Ok(mut block) = crate::translate::bb_builder::build(tag, sp) else { break };
            let end = block.end_pc().max(tag + 1);
            if block.sandboxed || tag < m.base || !m.can_hold(end) {
                break;
            }
            let (persistable, data) = crate::translator::instrument(&mut block, Some(&mut self.units.units[unit].segments[s]));
            if !persistable {
                return None;
            }
            if !data.is_empty() {
                // A client gave the trace's copy data of its own: its block
                // is a file's (clients read those at exit, not at load).
                self.traces.note_unpersistable(head);
                return None;
            }
            built.push(block);
        }
        let (mut ops, spans) = stitched(&built, blocks, Addressing::ModuleRelative { base: m.base })?;
        let segment = &mut self.units.units[unit].segments[s];
        // Its budget lives in the segment's W, so a file carries it.
        let budget = match budget {
            Some(misses) => {
                let slot = segment.alloc_w(8)?;
                // SAFETY: a fresh slot of the segment's writable W.
                unsafe { core::ptr::write_volatile(slot as *mut u64, misses) };
                slot
            }
            None => 0,
        };
        set_budget(&mut ops, budget);
        let traces = &self.traces;
        let place = Placement::Segment { segment, module_base: m.base };
        let fragment = match emit::emit(head, spans[0].1, &ops, place, Counted::EveryExit, |t, _| traces.exit_link_target(t)) {
            Ok(fragment) => fragment,
            Err(emit::EmitError::NotRelative) => {
                crate::verbose!("trace at {head:#x}: reads client data outside its segment: not persisted, its head marked cold");
                self.traces.note_unpersistable(head);
                return None;
            }
            Err(_) => return None,
        };
        self.units.units[unit].traces.push(UnitTrace { head, start: fragment.start, segment: s as u32, spans: spans.clone(), budget });
        Some((fragment, spans))
    }
}

impl Translator {
    /// For `-aot` seeded with a file's traces (its deep check): builds the
    /// trace through `blocks` again, as a run built it, in its module's
    /// persistable segment, to be saved with the module's blocks; false
    /// if it cannot be built there.
    pub(crate) fn aot_trace(&mut self, blocks: &[u64], sp: u64, counts_misses: bool) -> bool {
        let Some((fragment, spans)) = self.persistable_trace(blocks, sp, counts_misses.then_some(TraceTable::MISS_BUDGET)) else { return false };
        self.traces.insert(Trace { fragment, spans });
        true
    }
}

/// Points every in-line check of a trace's `ops` at its budget of misses
/// (0: not counted).
fn set_budget(ops: &mut [mangle::MangledOp], budget: u64) {
    for m in ops {
        if let Op::InlineTarget { misses_left, .. } = &mut m.op {
            *misses_left = budget;
        }
    }
}

/// The ops of the trace through `built`, the blocks of the recorded
/// `tags` as far as they could be built, and the spans of the blocks it
/// holds; None if none can be mangled so. Each call and return takes the
/// form [`trace::call_forms`] gives it among the blocks the trace holds
/// (a block that cannot continue into the next ends it, and may leave a
/// call without the return it was paired with: then again without it).
fn stitched(built: &[BasicBlock], tags: &[u64], addressing: Addressing) -> Option<(Vec<mangle::MangledOp>, Vec<(u64, u64)>)> {
    let mut held = built.len();
    loop {
        let ends: Vec<trace::BlockEnd> = built[..held].iter().map(trace::BlockEnd::of).collect();
        let forms = trace::call_forms(&ends, &tags[..held], CallForm::for_blocks());
        let mut parts = Vec::with_capacity(held);
        for (block, &form) in built[..held].iter().zip(&forms) {
            parts.push((block.tag, mangle::mangle(block, addressing, form)?));
        }
        if parts.is_empty() {
            return None;
        }
        let (ops, used) = stitch(parts);
        let same = used == held || trace::call_forms(&ends[..used], &tags[..used], CallForm::for_blocks()) == forms[..used];
        if same {
            let spans = built[..used].iter().map(|b| (b.tag, b.end_pc().max(b.tag + 1))).collect();
            return Some((ops, spans));
        }
        held = used;
    }
}
