//! The translator's shared state (code cache, fragment table, lookup
//! table, persistable units, mapped cache files) behind one lock, and what
//! the rest of the runtime asks of it: build or find a block, flush a
//! range, persist, fork safely, translate a cache pc back to the app.

use spin::Mutex;

use crate::translate::code_cache::CodeCache;
use crate::translate::emit::{self, Counted, EmitError, Placement};
use crate::translate::fragment::{Fragment, FragmentTable, Patch};
use crate::translate::ibl::IblTable;
use crate::translate::trace_table::TraceTable;
use crate::translate::mangle::{Addressing, CallForm};
use crate::persistence::load::LoadedFiles;
use crate::persistence::units::Units;
use crate::stats::{self, STATS};
use crate::thread::ThreadContext;
use crate::translate::{bb_builder, link, mangle};

/// Everything shared by the translation pipeline.
pub(crate) struct Translator {
    pub(crate) cache: CodeCache,
    pub(crate) fragments: FragmentTable,
    pub(crate) ibl: IblTable,
    /// Persistable code being built, per module (with `-persist`).
    pub(crate) units: Units,
    /// Persisted files in use.
    pub(crate) loaded: LoadedFiles,
    /// Traces, their heads and recorded blocks' copies (`crate::monitor`).
    pub(crate) traces: TraceTable,
}

static TRANSLATOR: Mutex<Option<Translator>> = Mutex::new(None);

/// The translator, locked (Some once `init` ran).
pub(crate) fn lock() -> spin::MutexGuard<'static, Option<Translator>> {
    TRANSLATOR.lock()
}

impl Translator {
    /// The cache address of the fragment for `pc`, building it if needed.
    /// Err: the app cannot execute at `pc` (the fault it gets there).
    pub(crate) fn fragment_start(&mut self, pc: u64, sp: u64) -> Result<u64, bb_builder::CodeFault> {
        if self.fragments.sandbox_stale(pc) {
            self.fragments.remove(pc);
        }
        self.adopt_file_trace(pc);
        if let Some(f) = self.traces.get(pc).or_else(|| self.fragments.get(pc)) {
            return Ok(f.start);
        }
        let module = if crate::options::get().persist { file_module(pc) } else { None };
        if let Some(start) = module.and_then(|m| self.from_file(pc, m)) {
            return Ok(start);
        }
        let t0 = stats::ticks_for_stats();
        crate::fault_injection::at_build();
        let mut block = bb_builder::build(pc, sp)?;
        let end = block.end_pc().max(pc + 1);
        // The module's base, and the unit and segment a persistable block
        // would go to.
        let target = module.filter(|m| m.can_hold(end)).and_then(|m| {
            let unit = self.units.unit_for(m.base, m.end, m.path, m.identity);
            Some((m.base, unit, self.units.units[unit].current_segment(&mut self.cache, crate::aot::translating())?))
        });
        let segment = target.map(|(_, u, s)| &mut self.units.units[u].segments[s as usize]);
        let (client_persistable, data) = instrument(&mut block, segment);
        let persistable = target.is_some() && !block.sandboxed && client_persistable;
        let mut fragment = target
            .filter(|_| persistable)
            .and_then(|(base, u, s)| self.emit_persistable(pc, end, &block, base, u, s, data))
            .unwrap_or_else(|| {
                let ops = mangle::mangle(&block, Addressing::Absolute, CallForm::for_blocks()).expect("absolute addressing always works");
                match emit::emit(pc, end, &ops, Placement::Cache(&mut self.cache), Counted::BackwardExits, link_targets(&self.fragments, &self.traces)) {
                    Ok(f) => f,
                    Err(_) => crate::log::fatal(70, format_args!("code cache full")),
                }
            });
        note_counted_links(&mut fragment, &mut self.traces);
        let start = fragment.start;
        stats::add(&STATS.blocks_built, 1);
        stats::add(&STATS.cache_bytes, fragment.size as u64);
        self.fragments.insert(fragment);
        if block.sandboxed {
            self.fragments.sandbox(pc, core::mem::take(&mut block.bytes));
        }
        stats::add(&STATS.translate_ticks, stats::ticks_for_stats() - t0);
        Ok(start)
    }

    /// With traces, takes into the trace table the trace of head `pc` a
    /// loaded file holds, when the dispatcher first meets the head: a
    /// file's traces are only entered in the lookup table when it loads,
    /// and a thread may run one before (through a lookup, or an exit the
    /// file led to it), which needs none of the table's records
    /// (`LoadedFiles` answers for its code).
    pub(crate) fn adopt_file_trace(&mut self, pc: u64) {
        if !crate::options::get().monitors() || !self.loaded.any_in_use() || self.traces.get(pc).is_some() || self.traces.was_removed(pc) {
            return;
        }
        let Some(m) = file_module(pc) else { return };
        if let Some(trace) = self.loaded.trace_at(pc, m.base, m.identity) {
            stats::add(&STATS.traces_adopted, 1);
            self.traces.insert(trace);
        }
    }

    /// The live blocks and traces, for a save.
    fn live(&self) -> crate::persistence::save::Live<'_> {
        crate::persistence::save::Live { fragments: &self.fragments, traces: &self.traces }
    }

    /// For an indirect branch's lookup: the code of `pc`'s block in its
    /// module's persisted file, if the file has one and no fragment is
    /// registered there, without registering it (as blocks reached through
    /// a file's pre-linked exits are not): the lookup table alone needs it.
    /// A block the file does not flag as a lookup target is marked.
    pub(crate) fn file_block_for_lookup(&mut self, pc: u64) -> Option<u64> {
        if !crate::options::get().persist || self.fragments.get(pc).is_some() || self.traces.get(pc).is_some() {
            return None;
        }
        let m = file_module(pc)?;
        self.loaded.load_once(&mut self.cache, &mut self.ibl, &self.traces, m.base, m.end, m.path, m.identity);
        let (start, flagged) = self.loaded.block_for_lookup(pc, m.base, m.identity)?;
        if !flagged {
            self.mark_lookup_target(pc, &m);
        }
        Some(start)
    }

    /// Enters in the lookup table the blocks of loaded files that the
    /// lookup's miss routine found for a thread (`hits`, app pcs) since it
    /// last passed the dispatcher, as a miss through the dispatcher would
    /// have (`translate/file_lookup.rs`).
    pub(crate) fn enter_file_hits(&mut self, hits: &[u64]) {
        for &pc in hits {
            if self.ibl.get(pc).is_some() {
                continue;
            }
            if let Some(start) = self.file_block_for_lookup(pc) {
                stats::add(&STATS.file_lookups, 1);
                self.ibl.insert(pc, start);
            }
        }
    }

    /// An indirect branch reached `pc`, just entered in the lookup table
    /// (a fragment built or registered for it). A block of a loaded file
    /// is marked as in [`Self::mark_lookup_target`] unless the file flags
    /// it already.
    pub(crate) fn note_lookup_target(&mut self, pc: u64) {
        self.fragments.note_lookup_target(pc);
        if !crate::options::get().persist || !self.loaded.any_in_use() {
            return;
        }
        let Some(m) = file_module(pc) else { return };
        if self.loaded.unflagged_lookup_target(pc, m.base, m.identity) {
            self.mark_lookup_target(pc, &m);
        }
    }

    /// Marks the block at `pc` of module `m`'s loaded file, which does not
    /// flag it, in the module's unit, so that the file learns it
    /// (`Index::marks`): a file translated ahead of time has its
    /// blocks looked up through the dispatcher only in its first run.
    fn mark_lookup_target(&mut self, pc: u64, m: &FileModule) {
        let unit = self.units.unit_for(m.base, m.end, m.path, m.identity);
        self.units.units[unit].lookup_marks.push((pc - m.base) as u32);
    }

    /// Records that the exit patched at `patch` (stub `stub`) now jumps to
    /// `start`, the fragment or trace for `target`.
    pub(crate) fn note_link(&mut self, target: u64, start: u64, patch: Patch, stub: u64) {
        if self.traces.get(target).is_some_and(|t| t.start == start) {
            self.traces.note_link(target, patch, stub);
        } else {
            self.fragments.note_link(target, patch, stub);
        }
    }

    /// The block at `pc` decoded and instrumented for the code cache (not
    /// for a persisted file).
    pub(crate) fn block_for_cache(&mut self, pc: u64, sp: u64) -> Result<bb_builder::BasicBlock, bb_builder::CodeFault> {
        let mut block = bb_builder::build(pc, sp)?;
        instrument(&mut block, None);
        Ok(block)
    }

    /// Registers the block at `pc` from its module's persisted file (loaded
    /// on the first miss in the module).
    fn from_file(&mut self, pc: u64, m: FileModule) -> Option<u64> {
        self.loaded.load_once(&mut self.cache, &mut self.ibl, &self.traces, m.base, m.end, m.path, m.identity);
        let fragment = self.loaded.register(pc, m.base, m.identity)?;
        let start = fragment.start;
        crate::translate::smc::after_build(pc, fragment.app_end());
        self.fragments.insert_from_file(fragment);
        Some(start)
    }

    /// Where a loop head's counting stub goes on to when the head's block
    /// is a file's and nothing of it is registered: the file's code,
    /// without the fragment record a registration builds (its exits and
    /// translations read from the index, about a fifth of what counting
    /// ~3,500 heads costs the first run after `cachetool aot`). None when
    /// the head has a fragment or trace, or no file holds it.
    pub(crate) fn file_head_start(&mut self, pc: u64) -> Option<u64> {
        if !crate::options::get().persist || self.fragments.get(pc).is_some() || self.traces.get(pc).is_some() {
            return None;
        }
        if let Some(block) = self.traces.head_stub_block(pc) {
            return Some(block);
        }
        let m = file_module(pc)?;
        self.loaded.load_once(&mut self.cache, &mut self.ibl, &self.traces, m.base, m.end, m.path, m.identity);
        let (start, app_end) = self.loaded.block_for_head(pc, m.base, m.identity)?;
        crate::translate::smc::after_build(pc, app_end);
        Some(start)
    }

    /// Emits the block of the module at `base` into segment `segment` of
    /// unit `unit`; None if it cannot be made module-relative.
    #[allow(clippy::too_many_arguments)]
    fn emit_persistable(
        &mut self,
        pc: u64,
        end: u64,
        block: &bb_builder::BasicBlock,
        base: u64,
        unit: usize,
        segment: u32,
        data: alloc::vec::Vec<crate::persistence::units::BlockData>,
    ) -> Option<Fragment> {
        let ops = mangle::mangle(block, Addressing::ModuleRelative { base }, CallForm::for_blocks())?;
        let unit = &mut self.units.units[unit];
        let place = Placement::Segment { segment: &mut unit.segments[segment as usize], module_base: base };
        match emit::emit(pc, end, &ops, place, Counted::BackwardExits, link_targets(&self.fragments, &self.traces)) {
            Ok(f) => {
                unit.push_block(pc, f.start, segment, &data, crate::aot::translating());
                Some(f)
            }
            Err(EmitError::Full | EmitError::NotRelative) => None,
        }
    }
}

/// Lets the clients instrument `block` (their block data in `segment` if
/// it may be persisted); whether they all let it be persisted, and the
/// data they allocated.
pub(crate) fn instrument(
    block: &mut bb_builder::BasicBlock,
    segment: Option<&mut crate::translate::segment::LiveSegment>,
) -> (bool, alloc::vec::Vec<crate::persistence::units::BlockData>) {
    if !crate::client_host::active() {
        return (true, alloc::vec::Vec::new());
    }
    let mut ir = clients::api::BlockIr::new(block.tag, []);
    ir.items = core::mem::take(&mut block.items);
    let (flags, data) = crate::client_host::instrument(&mut ir, segment);
    block.items = ir.items;
    (flags.persistable, data)
}

/// Where the exits of a new block link at once: an existing block,
/// unless the target is a head or has a trace ([`links_through_traces`]),
/// or the exit counts its target's entries (a backward one, not a call's:
/// `emit::Counted`): then the target's trace or its head's counting stub
/// if it has one, else nothing (the exit's first use passes the
/// dispatcher, which makes its target a head, as the exit of a loaded
/// file's block does).
fn link_targets<'a>(fragments: &'a FragmentTable, traces: &'a TraceTable) -> impl Fn(u64, bool) -> Option<u64> + 'a {
    move |t, counts| {
        if links_through_traces(t, traces) || (counts && crate::options::get().traces) {
            traces.exit_link_target(t)
        } else {
            fragments.link_target(t).map(|f| f.start)
        }
    }
}

/// Whether an exit to `target` is linked where the trace table says
/// (the target's trace or its head's counting stub), whatever the exit
/// is: the target is a head, or has a trace.
fn links_through_traces(target: u64, traces: &TraceTable) -> bool {
    traces.is_head(target) || traces.get(target).is_some()
}

/// Records where the exits of the new block `fragment` that
/// [`link_targets`] led to a trace or a counting stub went, so that those
/// are relinked as the others are (when the trace goes, when the head's
/// trace is built), and leaves its exits linked to blocks for the
/// fragment table to record.
fn note_counted_links(fragment: &mut Fragment, traces: &mut TraceTable) {
    for i in 0..fragment.exit_count() {
        let exit = fragment.exit(i);
        // An exit that counts was linked at once only to a head's stub or
        // trace (a target not yet a head has neither).
        if exit.prelinked && links_through_traces(exit.target, traces) {
            traces.note_counted_link(exit.target, exit.patch(), exit.stub);
            fragment.unmark_prelinked(i);
        }
    }
}

/// A file-backed module, whose blocks can be persisted.
#[derive(Clone, Copy)]
pub(crate) struct FileModule {
    pub(crate) base: u64,
    pub(crate) end: u64,
    /// One past the end of the executable mapping holding the pc looked up:
    /// a persisted block lies within one.
    code_end: u64,
    pub(crate) path: crate::os::startup_args::CStr,
    pub(crate) identity: crate::os::modules::FileIdentity,
}

impl FileModule {
    /// Whether a block `[pc, end)` of this module can be persisted: inside
    /// one executable mapping, at offsets the file's index (u32) and
    /// module-relative code (i32 displacements) can express. Code of a
    /// module spanning more than 2 GiB beyond that is translated, not
    /// persisted.
    pub(crate) fn can_hold(&self, end: u64) -> bool {
        end <= self.code_end && end.checked_sub(self.base).is_some_and(|o| i32::try_from(o).is_ok())
    }
}

pub(crate) fn file_module(pc: u64) -> Option<FileModule> {
    crate::os::modules::with_module(pc, |m| {
        let m = m?;
        let code_end = m.code_end(pc)?;
        Some(FileModule { base: m.base, end: m.end, code_end, path: m.path, identity: m.identity? })
    })
}

/// The application's code in `[lo, hi)` changed, or stopped being code:
/// forget every fragment built from it (and, if there were any, persist
/// nothing more of its modules).
pub(crate) fn flush_range(lo: u64, hi: u64) {
    flush(lo, hi, true);
}

/// `[lo, hi)` became writable: whatever code is there may be rewritten
/// (text relocations, self-modifying code), so its modules' blocks are not
/// persisted from now on.
pub(crate) fn code_may_change(lo: u64, hi: u64) {
    if let Some(tr) = TRANSLATOR.lock().as_mut() {
        tr.units.taint(lo, hi);
    }
}

/// The application's code in `[lo, hi)` went away: forget every fragment
/// built from it.
pub(crate) fn forget_range(lo: u64, hi: u64) {
    flush(lo, hi, false);
}

fn flush(lo: u64, hi: u64, changed: bool) {
    let mut guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_mut() else { return };
    // What earlier holds of the lock retired is out of reach now: a thread
    // that picks its next fragment from here on runs none of it
    // (`quiescence.rs`), and what no thread can be running goes.
    crate::quiescence::advance();
    let oldest = crate::quiescence::oldest_passage();
    let freed = tr.fragments.free_retired_before(oldest) + tr.traces.free_retired_before(oldest);
    stats::add(&STATS.retired_freed, freed);
    tr.ibl.free_replaced_before(oldest);
    let mut tags = tr.fragments.flush_range(lo, hi);
    let traces = tr.traces.flush_range(lo, hi);
    for &head in &traces {
        tr.loaded.unlink_exits_to(head);
    }
    if !tags.is_empty() || !traces.is_empty() {
        // A path through the range may be being recorded.
        tr.traces.abandon_recording();
    }
    for tag in tr.loaded.retire_overlapping(lo, hi, &mut tr.ibl) {
        if tr.fragments.remove(tag) {
            tags.push(tag);
        } else {
            // A head whose counting stub leads to the file's code unregistered.
            tr.traces.drop_head_stub(tag);
        }
    }
    for &tag in tags.iter().chain(&traces) {
        tr.ibl.remove(tag);
    }
    for &tag in &tags {
        // A head's counting stub goes on to its block: it goes with it.
        tr.traces.drop_head_stub(tag);
    }
    if changed && !tags.is_empty() {
        tr.units.taint(lo, hi);
    }
    if !tags.is_empty() {
        stats::add(&STATS.fragments_flushed, tags.len() as u64);
        crate::verbose!("flushed {} blocks from {lo:#x}-{hi:#x}", tags.len());
    }
}

/// `head`'s trace spent its budget of missed in-line checks: it goes, to
/// be recorded afresh from the path its head runs now.
pub(crate) fn retire_stale_trace(head: u64) {
    let mut guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_mut() else { return };
    // A file's trace may run before the dispatcher met its head.
    tr.adopt_file_trace(head);
    if tr.traces.retire_stale(head) {
        tr.loaded.unlink_exits_to(head);
        tr.ibl.remove(head);
        // The save marks a file's stale trace in its module's unit, which
        // a run that builds nothing there lacked: the mark never came,
        // and the trace went stale in every run (two of cc1's in `gcc -c`).
        if let Some(m) = file_module(head).filter(|m| tr.loaded.has_trace(m.base, m.identity, head)) {
            tr.units.unit_for(m.base, m.end, m.path, m.identity);
        }
        stats::add(&STATS.traces_stale, 1);
        crate::verbose!("trace at {head:#x}: stale, recorded afresh");
    }
}

/// Writes the persistable blocks of every module to their files (at
/// process exit, exec, or a fatal signal); with `background` (an exit or
/// an exec), handed to the cache server by a detached copy of the
/// process when there is one, so the process ends at once.
pub(crate) fn persist_all(background: bool) {
    if !crate::options::get().persist {
        return;
    }
    let guard = TRANSLATOR.lock();
    if let Some(tr) = guard.as_ref() {
        let (units, live, loaded) = (&tr.units.units, tr.live(), &tr.loaded);
        note_heads_counted_in_files(units, live.traces, loaded);
        if !(background && crate::persistence::save::hand_over_in_background(units, live, loaded)) {
            crate::persistence::save::save_units(units, live, loaded);
        }
    }
    crate::persistence::save::warn_about_write_failures();
    crate::persistence::report::append();
}

/// Adds to `-stats`' loop heads counted those only files' counting stubs
/// counted.
fn note_heads_counted_in_files(units: &[crate::persistence::units::Unit], traces: &TraceTable, loaded: &crate::persistence::load::LoadedFiles) {
    if !crate::options::get().stats {
        return;
    }
    for u in units {
        let mut heads = loaded.heads_counted_in_file(u.module_base, u.identity);
        heads.sort_unstable();
        heads.dedup();
        let seen_only_there = heads.iter().filter(|&&t| traces.entries(t) == 0).count();
        crate::stats::add(&crate::stats::STATS.heads_counted, seen_only_there as u64);
    }
}

/// Writes the persistable blocks of modules based in `[lo, hi)`, which
/// are being unmapped.
pub(crate) fn persist_unloading(lo: u64, hi: u64) {
    if !crate::options::get().persist {
        return;
    }
    let guard = TRANSLATOR.lock();
    if let Some(tr) = guard.as_ref() {
        let units: alloc::vec::Vec<_> = tr.units.units.iter().filter(|u| (lo..hi).contains(&u.module_base)).collect();
        for u in units {
            crate::persistence::save::save_units(core::slice::from_ref(u), tr.live(), &tr.loaded);
        }
    }
}

/// Ahead-of-time translation of the module at `base` (code in `[lo, hi)`)
/// reached a batch's end: its blocks are set aside in a file of their
/// own (at the `last` batch, the module's file takes every batch), then
/// forgotten and their memory reused, so translating a module of any size
/// takes the memory of one batch.
pub(crate) fn aot_checkpoint(base: u64, lo: u64, hi: u64, last: bool) {
    let mut guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_mut() else { return };
    if crate::options::get().persist {
        for u in tr.units.units.iter().filter(|u| u.module_base == base) {
            crate::persistence::save::checkpoint(u, tr.live(), &tr.loaded, last);
        }
    }
    for tag in tr.fragments.drop_range(lo, hi) {
        tr.ibl.remove(tag);
    }
    let heads: alloc::vec::Vec<u64> = tr.units.units.iter().filter(|u| u.module_base == base).flat_map(|u| u.traces.iter().map(|t| t.head)).collect();
    for head in heads {
        tr.traces.remove(head);
    }
    for unit in tr.units.retire(base) {
        // Newest first: the cache takes the addresses back.
        for seg in unit.segments.iter().rev() {
            tr.fragments.forget_retired_code_in(seg.lo, seg.x_end);
            tr.traces.forget_retired_code_in(seg.lo, seg.x_end);
            // SAFETY: after the program's entry no translated code runs, and
            // the fragments built in these segments were just dropped.
            unsafe { tr.cache.give_back(seg.lo, seg.x_end - seg.lo) };
        }
    }
}

/// Sets up the shared translator state; called once before the first entry.
pub(crate) fn init(ctx: &mut ThreadContext) {
    stats::start_clock();
    let tr = Translator {
        cache: CodeCache::new(),
        fragments: FragmentTable::default(),
        ibl: IblTable::new(),
        units: Units::default(),
        loaded: LoadedFiles::default(),
        traces: TraceTable::default(),
    };
    tr.ibl.publish(ctx);
    *TRANSLATOR.lock() = Some(tr);
}

/// The app pc and state fixup for cache address `pc`, if it is in a fragment.
pub(crate) fn translation_at(pc: u64) -> Option<(u64, crate::translate::mangle::Fixup)> {
    let guard = TRANSLATOR.lock();
    let tr = guard.as_ref()?;
    match tr.fragments.containing(pc).or_else(|| tr.traces.containing(pc)) {
        Some(f) => f.translation_at(pc).map(|t| (t.app_pc, t.fixup)),
        None => tr.loaded.translation_at(pc),
    }
}

/// Points every direct exit of the fragment containing `pc` back at its
/// stub, so a thread running in it soon reaches the dispatcher. Called from
/// a signal handler that interrupted app code in the cache: that thread
/// holds no runtime lock, so waiting for the translator cannot deadlock,
/// and giving up instead could leave a thread spinning in a linked loop
/// with its signal never delivered.
pub(crate) fn unlink_fragment_at(pc: u64) {
    let guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_ref() else { return };
    // In a head's counting stub, the thread goes on to the head's block:
    // its exits are the ones to unlink (a loop through the stub and the
    // block never passes the dispatcher otherwise).
    let pc = tr.traces.block_after_head_stub(pc).unwrap_or(pc);
    // In a file's counting stub, the thread goes on through its go slot:
    // to the head's block, or to its trace.
    let pc = tr.loaded.counting_stub_goes_on(pc).unwrap_or(pc);
    // A trace first: one a file holds is code of the file, but its exits
    // are its own (the file's blocks only reach it through their slots).
    let trace = tr.traces.containing(pc);
    if trace.is_none() && tr.loaded.unlink_file_at(pc) {
        return;
    }
    let Some(f) = trace.or_else(|| tr.fragments.containing(pc)) else { return };
    for exit in f.exits() {
        link::unlink(exit.patch(), exit.stub);
    }
}
