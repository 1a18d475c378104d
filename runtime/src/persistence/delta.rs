//! A delta: some of a module's live blocks and traces as a `.dpc` file of
//! their own would hold them (their segments copied into W and X zones, exits
//! re-encoded in the file's form, module-relative targets, client data
//! and their persistence events), for the save to hand over or merge.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;
use persist::index::{BlockData, BlockEntry, ClientData, CountingStub, ExitEntry, Index, Mark, ModuleInfo, Segment, TraceEntry, TraceSpan};
use persist::merge::Parts;
use persist::exit_data::{self, StoredExit};
use persist::translations;
use persist::write::page_up;
use persist::ZoneKind;

use crate::persistence::units::{Unit, UnitBlock, UnitTrace};
use crate::translate::emit::{self, RELATIVE_STUB_CODE_LEN};
use crate::translate::code_cache::CODE_ALIGN;
use crate::translate::encoder;
use crate::translate::trace_table::TraceTable;
use crate::translate::fragment::Fragment;
use crate::translate::link;
use crate::translate::segment::LiveSegment;

/// A delta: the index and zones of `blocks` and `traces` alone, as a file
/// of their own would hold them, and the flags to set on blocks of the
/// file it is merged into (`marks`).
pub(crate) fn delta_of(
    unit: &Unit,
    blocks: &[(&UnitBlock, &Fragment)],
    traces: &[(&UnitTrace, &Fragment)],
    marks: &[Mark],
    live_traces: &TraceTable,
) -> Parts<'static> {
    let base = unit.module_base;
    let mut index = Index {
        module: ModuleInfo {
            path: alloc::string::String::from_utf8_lossy(unit.path.as_bytes()).into_owned(),
            identity: unit.identity.to_array(),
        },
        options: crate::persistence::key::dbirun_options(),
        marks: marks.to_vec(),
        ..Index::default()
    };
    let mut zones: Vec<(ZoneKind, Vec<u8>)> = Vec::new();
    for (s, seg) in unit.segments.iter().enumerate() {
        let here: Vec<&(&UnitBlock, &Fragment)> = blocks.iter().filter(|(b, _)| b.segment as usize == s).collect();
        let its_traces: Vec<&(&UnitTrace, &Fragment)> = traces.iter().filter(|(t, _)| t.segment as usize == s).collect();
        if here.is_empty() && its_traces.is_empty() {
            continue;
        }
        let (w, x) = write_segment(unit, seg, &here, &its_traces, live_traces, 1 + zones.len() as u32, &mut index);
        zones.push((ZoneKind::Writable, w));
        zones.push((ZoneKind::Exec, x));
    }
    index.blocks.sort_by_key(|b| b.module_offset);
    index.traces.sort_by_key(|t| t.head);
    index.derive_from_blocks();
    add_client_data(&mut index, base, 1 + zones.len(), &mut zones);
    Parts { index, zones: zones.into_iter().map(|(k, z)| (k, Cow::Owned(z))).collect() }
}

/// The clients' persistence events: read-only data into the index,
/// writable and executable data into one more (W, X) zone pair if any.
fn add_client_data(index: &mut Index, base: u64, next_zone: usize, zones: &mut Vec<(ZoneKind, Vec<u8>)>) {
    let data = crate::client_host::persist_data(base);
    let (rw_total, rx_total): (usize, usize) = data.iter().fold((0, 0), |(w, x), (_, rx, rw)| (w + rw.len(), x + rx.len()));
    let pad = persist::write::w_front_padding(rw_total);
    let (mut w, mut x) = (vec![0u8; pad], Vec::new());
    index.clients = data
        .into_iter()
        .map(|(ro, rx, rw)| {
            let c = ClientData {
                ro,
                rw_offset: w.len() as u32,
                rw_len: rw.len() as u32,
                rx_offset: x.len() as u32,
                rx_len: rx.len() as u32,
            };
            w.extend_from_slice(&rw);
            x.extend_from_slice(&rx);
            c
        })
        .collect();
    index.client_zones = None;
    if rw_total + rx_total > 0 {
        index.client_zones = Some((next_zone as u32, next_zone as u32 + 1));
        zones.push((ZoneKind::Writable, w));
        zones.push((ZoneKind::Exec, x));
    }
}

/// The (W, X) zones of `seg` holding `blocks` and `traces`, whose entries
/// are added to `index`. X is the segment's code with each exit of these
/// rewritten to a direct branch when it goes forward to a block of this
/// segment, else to `jmp [rip + slot]`, then the segment's stubs; W is
/// zeros but for the blocks' client data (as it is now, but for what the
/// client calls run state: zeroed), traces' miss
/// budgets and exit slots, which hold X offsets (of the target block when
/// it is in this segment, else of the exit's stub) that the loader
/// rebases.
fn write_segment(
    unit: &Unit,
    seg: &LiveSegment,
    blocks: &[&(&UnitBlock, &Fragment)],
    traces: &[&(&UnitTrace, &Fragment)],
    live_traces: &TraceTable,
    w_zone: u32,
    index: &mut Index,
) -> (Vec<u8>, Vec<u8>) {
    let base = unit.module_base;
    let here: HashMap<u64, u64> = blocks.iter().map(|(b, f)| (b.tag, f.start)).collect();
    let traces_on = crate::options::get().traces.then_some(live_traces);
    let fragments = || blocks.iter().map(|(_, f)| f).chain(traces.iter().map(|(_, f)| f));
    // The heads of this segment its counted exits lead to, each to get a
    // counting stub; W is their counters and go slots, then the
    // segment's W.
    let mut heads: Vec<u64> = fragments().flat_map(|f| f.exits()).filter(|e| gets_counting_stub(traces_on, &here, e.target, &live_exit_data(e.stub))).map(|e| e.target).collect();
    heads.sort_unstable();
    heads.dedup();
    let w_used = ((seg.split - seg.w_next) as usize).next_multiple_of(8);
    let counters = heads.len() * persist::counting_stubs::COUNTER_STRIDE;
    let w_len = page_up(w_used + counters);
    // X is the code, then a slot trampoline for each conditional exit,
    // then the stubs (live at the segment's end), then the counting stubs.
    let code_end = ((seg.x_next - seg.split) as usize).next_multiple_of(8);
    let conditional = fragments().flat_map(|f| f.exits()).filter(|e| e.cond().is_some()).count();
    let stubs_at = code_end + conditional * encoder::TRAMPOLINE_LEN;
    // SAFETY: [split, x_next) is this segment's emitted code, [stub_next,
    // x_end) its stubs.
    let mut x = unsafe { core::slice::from_raw_parts(seg.split as *const u8, (seg.x_next - seg.split) as usize) }.to_vec();
    x.resize(stubs_at, 0xcc); // int3
    // SAFETY: as above.
    x.extend_from_slice(unsafe { core::slice::from_raw_parts(seg.stub_next as *const u8, (seg.x_end - seg.stub_next) as usize) });
    let mut z = Zones {
        seg,
        base,
        w_len,
        stubs_at,
        next_trampoline: code_end,
        w: vec![0u8; w_len],
        x,
        here,
        traces: traces_on,
        form: Vec::with_capacity(16),
    };
    let first_exit = index.exits.len() as u32;
    let segment = index.segments.len() as u32;
    for (b, f) in blocks {
        let block_first_exit = index.exits.len() as u32;
        z.exits(f, None, index);
        let translation_offset = index.translations.len() as u32;
        z.translations(f, b.tag, index);
        let first_data = index.block_data.len() as u32;
        for d in unit.data_of(b).iter().filter(|d| seg.contains(d.addr)) {
            let at = z.w_off(d.addr);
            // SAFETY: the client's live block data in this segment's W.
            z.w[at..at + d.len as usize].copy_from_slice(unsafe { core::slice::from_raw_parts(d.addr as *const u8, d.len as usize) });
            // What this run's execution recorded there starts from zero in the next.
            let run_state = crate::client_host::run_state_len(d.client as usize).min(d.len as usize);
            z.w[at..at + run_state].fill(0);
            index.block_data.push(BlockData { client: d.client, w_offset: at as u32 });
        }
        let code_offset = z.code(f, b.tag);
        index.blocks.push(BlockEntry {
            module_offset: (b.tag - base) as u32,
            app_len: f.app_len as u32,
            segment,
            code_offset,
            code_len: f.size,
            first_exit: block_first_exit,
            exit_count: index.exits.len() as u32 - block_first_exit,
            translation_offset,
            translation_len: index.translations.len() as u32 - translation_offset,
            first_data,
            data_count: index.block_data.len() as u32 - first_data,
            flags: if b.ahead_of_time { BlockEntry::AHEAD_OF_TIME } else { 0 }
                | if z.calls_backward(f, b.tag) { BlockEntry::CALLS_BACKWARD } else { 0 }
                | if f.lookup_target { BlockEntry::LOOKUP_TARGET } else { 0 }
                | if live_traces.is_cold_head(b.tag) { BlockEntry::COLD_HEAD } else { 0 },
        });
    }
    for (t, f) in traces {
        let trace_first_exit = index.exits.len() as u32;
        z.exits(f, Some(t.head), index);
        let translation_offset = index.translations.len() as u32;
        // A trace's blocks may lie before its head: offsets from the base.
        z.translations(f, base, index);
        let budget_slot = match t.budget {
            0 => TraceEntry::NO_BUDGET,
            slot => {
                let at = z.w_off(slot);
                // A trace this run found stale (and recorded none in place
                // of) is kept with a larger budget, as the merge does.
                let budget = if live_traces.get(t.head).is_none() {
                    persist::merge::grown_budget(TraceTable::MISS_BUDGET)
                } else {
                    TraceTable::MISS_BUDGET
                };
                z.w[at..at + 8].copy_from_slice(&budget.to_le_bytes());
                at as u32
            }
        };
        let first_span = index.trace_spans.len() as u32;
        index.trace_spans.extend(t.spans.iter().map(|&(lo, hi)| TraceSpan { module_offset: (lo - base) as u32, app_len: (hi - lo) as u32 }));
        let code_offset = z.code(f, t.head);
        index.traces.push(TraceEntry {
            head: (t.head - base) as u32,
            segment,
            code_offset,
            code_len: f.size,
            first_exit: trace_first_exit,
            exit_count: index.exits.len() as u32 - trace_first_exit,
            translation_offset,
            translation_len: index.translations.len() as u32 - translation_offset,
            first_span,
            span_count: t.spans.len() as u32,
            budget_slot,
        });
    }
    z.counting_stubs(segment, &heads, w_len - w_used - counters, index);
    index.segments.push(Segment {
        w_zone,
        x_zone: w_zone + 1,
        base_slot: z.w_off(seg.base_slot) as u32,
        first_exit,
        exit_count: index.exits.len() as u32 - first_exit,
        code_len: code_end as u32,
    });
    (z.w, z.x)
}

/// A segment's (W, X) zones being written.
struct Zones<'a> {
    seg: &'a LiveSegment,
    base: u64,
    w_len: usize,
    /// Where the stubs start in X.
    stubs_at: usize,
    /// Where the next conditional exit's slot trampoline goes in X: they
    /// lie together after the code, not each before its stub as in the
    /// cache, so that a run taking the conditional exits no run had
    /// taken before (a `jcc` to the trampoline) touches a few pages of
    /// them, not the stubs' (python3.11's file: 12 page faults in its
    /// stubs, 768 KiB of a warm run's resident set).
    next_trampoline: usize,
    w: Vec<u8>,
    x: Vec<u8>,
    /// Cache start of each block written, by tag.
    here: HashMap<u64, u64>,
    /// The run's traces, when it has them (`-traces`).
    traces: Option<&'a TraceTable>,
    /// One buffer for every exit's file form (a huge module has millions).
    form: Vec<u8>,
}

/// The exit data of the live stub at `stub`.
fn live_exit_data(stub: u64) -> StoredExit {
    // SAFETY: a live stub of a segment, its data right after its code.
    let bytes = unsafe { core::slice::from_raw_parts((stub + RELATIVE_STUB_CODE_LEN as u64) as *const u8, exit_data::LEN) };
    StoredExit::from_bytes(bytes).expect("a stub's exit data")
}

/// Whether an exit to `target` (its stub's data `data`) leads to a
/// counting stub of its target in a file for runs with traces (`traces`):
/// one that counts its target's entries, to a block written in the same
/// segment, not a head this run found cold (later runs do not count it)
/// nor one it has a trace of (its slot leads to the trace).
fn gets_counting_stub(traces: Option<&TraceTable>, here: &HashMap<u64, u64>, target: u64, data: &StoredExit) -> bool {
    traces.is_some_and(|t| !t.is_cold_head(target) && t.get(target).is_none())
        && data.kind & exit_data::COUNTS_TARGET != 0
        && here.contains_key(&target)
}

impl Zones<'_> {
    fn w_off(&self, addr: u64) -> usize {
        self.w_len - (self.seg.split - addr) as usize
    }

    fn x_off(&self, addr: u64) -> usize {
        if addr >= self.seg.stub_next {
            self.stubs_at + (addr - self.seg.stub_next) as usize
        } else {
            (addr - self.seg.split) as usize
        }
    }

    /// Whether a run with traces must find an exit to `target` (its stub's
    /// exit data `data`) going through its slot, which a loader points at
    /// its stub (an exit that counts its target: a block's backward one,
    /// every one of a trace) or at a trace (of its target): a branch
    /// written straight to the target's block would skip both. Not a
    /// count of a head this run found cold: later runs do not count it
    /// (`BlockEntry::COLD_HEAD`), so its slot would only lead to the
    /// block, through a memory-indirect jump (a call to a function placed
    /// before its caller is a backward branch: `bench/footprint.sh`'s
    /// `distinct 6000` took 42 ns more a call than without traces).
    fn slot_decides(&self, target: u64, data: &StoredExit) -> bool {
        let Some(traces) = self.traces else { return false };
        traces.get(target).is_some() || (data.kind & exit_data::COUNTS_TARGET != 0 && !traces.is_cold_head(target))
    }

    /// Where the next conditional exit's slot trampoline lies in the
    /// file, as the address it would have if the file's X zone were where
    /// this segment's code is (code keeps its distance to W in the file).
    fn take_trampoline(&mut self) -> u64 {
        let at = self.next_trampoline;
        self.next_trampoline += encoder::TRAMPOLINE_LEN;
        debug_assert!(self.next_trampoline <= self.stubs_at);
        self.seg.split + at as u64
    }

    /// Whether the last exit of the block `f` at `tag` goes backward
    /// without counting its target: only a call's does (`emit::Counted`).
    /// Read from its stub's data in the segment's copy, as [`Zones::exits`]
    /// reads it.
    fn calls_backward(&self, f: &Fragment, tag: u64) -> bool {
        let Some(last) = f.exit_count().checked_sub(1).map(|i| f.exit(i)) else { return false };
        let data = self.x_off(last.stub + RELATIVE_STUB_CODE_LEN as u64);
        let counts = StoredExit::from_bytes(&self.x[data..]).is_some_and(|d| d.kind & exit_data::COUNTS_TARGET != 0);
        last.target <= tag && !counts
    }

    /// Writes the exits of `f` (a trace of `trace_head`, or a block) in
    /// their file form, their slots and stubs' data, and adds their
    /// entries to `index`.
    fn exits(&mut self, f: &Fragment, trace_head: Option<u64>, index: &mut Index) {
        let code_end = f.start + f.size as u64;
        for e in f.exits() {
            let (branch, cond) = (e.branch(), e.cond());
            let at = self.x_off(branch);
            let data_live = e.stub + RELATIVE_STUB_CODE_LEN as u64;
            let data = self.x_off(data_live);
            let stored = StoredExit::from_bytes(&self.x[data..]).expect("a stub's exit data");
            // A conditional exit's slot trampoline.
            let trampoline = cond.map(|_| self.take_trampoline());
            let forward = self.here.get(&e.target).copied().filter(|&t| t > branch && !self.slot_decides(e.target, &stored));
            // The branch was emitted padded to the file form's length.
            self.form.clear();
            match forward {
                // The fragment's last jump, to the code placed right after
                // it: the fragment runs on into it.
                Some(to) if cond.is_none() && branch + encoder::persistable_exit_len(None) as u64 == code_end && to == code_end.next_multiple_of(CODE_ALIGN) => {
                    encoder::exit_falls_through(&mut self.form, (to - branch) as usize)
                }
                // Forward in the same segment: a direct branch. A path of
                // those always ends, at a slot (which can be unlinked),
                // so a thread in this code still reaches the dispatcher.
                Some(to) => encoder::exit_direct(&mut self.form, branch, cond, to),
                // A conditional exit this run never linked (it was not
                // taken, or its target is elsewhere), or a trace's side
                // exit (the trace is the way its run went on): a `jcc` to
                // its slot trampoline after the code, so the way on runs
                // without a jump. A trace's exit back to its own head
                // keeps the jump through its slot: its loop's way.
                None if trampoline.is_some()
                    && (link::is_unlinked(e.patch(), e.stub) || trace_head.is_some_and(|head| head != e.target)) =>
                {
                    encoder::exit_direct(&mut self.form, branch, cond, trampoline.unwrap())
                }
                None => encoder::exit_via_slot(&mut self.form, branch, cond, e.slot()),
            }
            self.x[at..at + self.form.len()].copy_from_slice(&self.form);
            if let Some(trampoline) = trampoline {
                // Pointed at its slot from where it lies in the file; the
                // cache's, before the stub, is left as filler.
                self.form.clear();
                encoder::slot_trampoline(&mut self.form, trampoline, e.slot());
                let at = (trampoline - self.seg.split) as usize;
                self.x[at..at + self.form.len()].copy_from_slice(&self.form);
                let before_stub = self.x_off(e.stub) - encoder::TRAMPOLINE_LEN;
                self.x[before_stub..before_stub + encoder::TRAMPOLINE_LEN].fill(0xcc);
            }
            let goes_to = self.here.get(&e.target).copied().unwrap_or(e.stub);
            let slot = self.w_off(e.slot());
            let goes_to = persist::exit_slots::stored(self.x_off(goes_to) as i64);
            self.w[slot..slot + 8].copy_from_slice(&goes_to.to_le_bytes());
            index.exits.push(ExitEntry { slot: slot as u32, stub: self.x_off(e.stub) as u32, target: e.target.wrapping_sub(self.base) as i64 });
            // The stub's data moved with the stubs: its distances must
            // still lead to its branch, slot and base slot.
            let by = data as i64 - (data_live - self.seg.split) as i64;
            let moved = stored.moved(by);
            self.x[data..data + exit_data::LEN].copy_from_slice(&moved.to_bytes());
        }
    }

    /// Appends to X the counting stubs of `heads` (increasing), their
    /// counters and go slots from W offset `counters` on (the merge leads
    /// the counted exits to them), and adds their entries to `index`.
    /// Addresses are those of the file's layout placed where this
    /// segment's code is: its W zone ends where its X zone starts.
    fn counting_stubs(&mut self, segment: u32, heads: &[u64], counters: usize, index: &mut Index) {
        use persist::counting_stubs::COUNTER_STRIDE;
        debug_assert!(counters + heads.len() * COUNTER_STRIDE <= self.w_len - (self.seg.split - self.seg.w_next) as usize);
        let split = self.seg.split;
        let w_addr = |off: usize| split - (self.w_len - off) as u64;
        let start = self.x.len().next_multiple_of(8);
        self.x.resize(start, 0xcc);
        for (i, &head) in heads.iter().enumerate() {
            let (code, counter) = (self.x.len(), counters + i * COUNTER_STRIDE);
            let goes_to = self.x_off(self.here[&head]);
            // Counted down from the threshold in every run (W is mapped
            // private: a run's counts never reach the file); the go slot
            // leads to the counting code until a run builds the head's
            // trace.
            use persist::counting_stubs::{COUNT_AT, GO_SLOT_AT};
            self.w[counter..counter + 8].copy_from_slice(&(crate::translate::trace_table::HOT as u64).to_le_bytes());
            let go_slot = counter + GO_SLOT_AT;
            self.w[go_slot..go_slot + 8].copy_from_slice(&persist::exit_slots::stored((code + COUNT_AT) as i64).to_le_bytes());
            let place = emit::CountingStubPlace {
                at: split + code as u64,
                counter: w_addr(counter),
                goes_to: split + goes_to as u64,
                base_slot: self.seg.base_slot,
            };
            emit::counting_stub(&mut self.x, &place, head.wrapping_sub(self.base));
            index.counting_stubs.push(CountingStub {
                segment,
                head: head.wrapping_sub(self.base) as u32,
                code: code as u32,
                counter: counter as u32,
                goes_to: goes_to as u32,
            });
        }
    }

    /// Packs the fault translations of `f`, app pcs as offsets from
    /// `app_base`, into `index`: a block's as the fragment keeps them
    /// (offsets from its tag, packed the same way), a trace's anew.
    fn translations(&self, f: &Fragment, app_base: u64, index: &mut Index) {
        if app_base == f.tag {
            index.translations.extend_from_slice(f.packed_translations());
            return;
        }
        translations::pack(
            &mut index.translations,
            f.translations().map(|t| translations::Entry {
                cache_offset: t.cache_offset,
                app_offset: (t.app_pc - app_base) as u32,
                fixup: t.fixup.encode(),
            }),
        );
    }

    /// Lets the clients adjust the file's copy of the code of `f` (for
    /// `tag`); its offset in X.
    fn code(&mut self, f: &Fragment, tag: u64) -> u32 {
        let start = self.x_off(f.start);
        crate::client_host::persist_patch(self.base, tag, &mut self.x[start..start + f.size as usize]);
        start as u32
    }
}
