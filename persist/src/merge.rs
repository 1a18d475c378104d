//! Merging: a file's new version is its old zones as they are, then the
//! zones of a delta (a file holding only blocks some run built), with the
//! delta's blocks the old file lacks added to its index. One merge for
//! the runtime writing its own files and for the cache server merging
//! what processes hand over, so both publish the same bytes.

use alloc::borrow::Cow;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::exit_forms::{self, DirectForm};
use crate::header::MAX_ZONES;
use crate::index::{BlockEntry, Index, TraceEntry};
use crate::write::page_up;
use crate::ZoneKind;

/// Zones after R, in file order (zone `z` of an index is `zones[z - 1]`).
pub type Zones<'a> = Vec<(ZoneKind, Cow<'a, [u8]>)>;

/// A file's index and zones, owned or borrowed from a mapping.
#[derive(Default)]
pub struct Parts<'a> {
    pub index: Index,
    pub zones: Zones<'a>,
}

impl<'a> Parts<'a> {
    /// The index and zones of a checked file.
    pub fn of(v: &crate::Validated<'a>) -> Option<Parts<'a>> {
        let index = v.index.to_owned()?;
        let zones = (1..v.zones.len()).map(|i| (v.zones[i].kind, Cow::Borrowed(v.zone_bytes(i)))).collect();
        Some(Parts { index, zones })
    }

    pub fn zone_refs(&self) -> Vec<(ZoneKind, &[u8])> {
        self.zones.iter().map(|(k, z)| (*k, &z[..])).collect()
    }
}

/// A rewrite costs time proportional to the file: blocks are added when
/// they are at least one per this many blocks the file holds (a path
/// taken once is not worth it).
pub const MIN_GROWTH_DIVISOR: usize = 64;

/// A growth divisor that takes any new block (a delta whose worth was
/// decided elsewhere, or ahead-of-time translation's batches).
pub const EVERY_BLOCK: usize = u32::MAX as usize;

/// Zones a file may reach through the cache server's merges of deltas
/// too small for a rewrite of their own: each brings a (W, X) pair, which
/// every later load protects on its own (a few microseconds each), and a
/// file that would pass `MAX_ZONES` starts over. Past this, a file takes
/// only deltas worth a rewrite, and runs hand it no smaller ones.
pub const MAX_ZONES_FOR_SMALL: usize = 64;

/// What a delta brings that a file lacks.
#[derive(Clone, Copy, Default)]
pub struct Fresh {
    pub blocks: usize,
    pub traces: usize,
    /// Blocks of the file to flag as lookup targets ([`Index::marks`]).
    pub marks: usize,
    /// Blocks of the file to flag as cold heads ([`Index::marks`]).
    pub cold_heads: usize,
    /// Heads of the file whose trace to keep for good ([`Index::marks`]).
    pub stale_traces: usize,
}

impl Fresh {
    /// What `blocks` new blocks, `traces` new traces and marks of the
    /// file's blocks bring, each mark given as the flags its block lacks.
    pub fn of(blocks: usize, traces: usize, lacks: impl IntoIterator<Item = u32>) -> Fresh {
        let mut fresh = Fresh { blocks, traces, ..Fresh::default() };
        for l in lacks {
            fresh.marks += usize::from(l & BlockEntry::LOOKUP_TARGET != 0);
            fresh.cold_heads += usize::from(l & BlockEntry::COLD_HEAD != 0);
            fresh.stale_traces += usize::from(l & BlockEntry::STALE_TRACE != 0);
        }
        fresh
    }

    /// All it brings, flags counted one by one.
    pub fn total(&self) -> usize {
        self.blocks + self.traces + self.marks + self.cold_heads + self.stale_traces
    }
}

/// A lookup target a file lacks costs every later run a round trip
/// through the dispatcher, and a file translated ahead of time (libc's,
/// shared by every program) lacks nothing else: each counts as this many
/// blocks.
pub const MARK_WEIGHT: usize = 8;

/// Whether `fresh` is worth a rewrite of a file of `held` blocks: any
/// trace (a hot path), or at least one block per `min_growth_divisor`
/// blocks held (a lookup target counting [`MARK_WEIGHT`] blocks, a cold
/// head, which saves later runs a few dispatches each, one), or a trace to
/// keep for good (each later run would record it afresh, a build).
pub fn worth_rewriting(fresh: Fresh, held: usize, min_growth_divisor: usize) -> bool {
    let grows = fresh.blocks.saturating_add(fresh.marks.saturating_mul(MARK_WEIGHT)).saturating_add(fresh.cold_heads);
    fresh.traces > 0 || fresh.stale_traces > 0 || (grows > 0 && grows.saturating_mul(min_growth_divisor) >= held)
}

/// Adds to `file` the blocks and traces of `delta` it lacks, and sets the
/// flags it marks ([`Index::marks`]); how many (blocks, traces and flags together),
/// or None (and `file` unchanged) when the delta adds no trace and
/// no block or fewer than one block per `min_growth_divisor` blocks
/// already held. A file with too many
/// zones to take the delta's starts over with the delta alone (its paths
/// come back as later runs take them). The delta's client data replaces
/// the file's. Exits are pre-linked afresh.
pub fn merge<'a>(file: &mut Parts<'a>, delta: Parts<'a>, min_growth_divisor: usize) -> Option<usize> {
    let Parts { index: d, zones: mut d_zones } = delta;
    let fits = !file.index.blocks.is_empty() && 1 + file.zones.len() + d_zones.len() < MAX_ZONES;
    let empty = Index::default();
    let target = if fits { &file.index } else { &empty };
    let known = |off: u32| target.blocks.binary_search_by_key(&off, |b| b.module_offset).is_ok();
    let mut fresh: Vec<usize> = (0..d.blocks.len()).filter(|&i| !known(d.blocks[i].module_offset)).collect();
    // A run builds a trace of a head whose file has one only when it
    // retired the file's (its in-line checks missed their budget: the
    // path the run took differs) or flushed it: the delta's replaces it.
    // But a trace's copy of a block counts in the block's client data,
    // the data the delta holds for the block: a trace is taken only if
    // every block it copies is one the file takes from this delta (the
    // runtime leaves out of a delta the blocks on disk, the merge those
    // the file holds). Without clients, any trace is.
    let taken: BTreeSet<u32> = fresh.iter().map(|&i| d.blocks[i].module_offset).collect();
    let copies_only_taken = |t: &TraceEntry| {
        let spans = &d.trace_spans[t.first_span as usize..(t.first_span + t.span_count) as usize];
        spans.iter().all(|s| taken.contains(&s.module_offset))
    };
    let mut fresh_traces: Vec<usize> = (0..d.traces.len()).filter(|&i| d.clients.is_empty() || copies_only_taken(&d.traces[i])).collect();
    if delta_mostly_held(&d, &fresh, &fresh_traces) {
        fresh.clear();
        fresh_traces.clear();
    }
    // A delta none of whose code is taken adds no zone: only its marks.
    let takes_code = !fresh.is_empty() || !fresh_traces.is_empty();
    let marks = target.unmarked(&d.marks);
    let zones_after = 1 + if fits { file.zones.len() } else { 0 } + if takes_code { d_zones.len() } else { 0 };
    let brings = Fresh::of(fresh.len(), fresh_traces.len(), marks.iter().map(|&(_, lacks)| lacks));
    if !worth_rewriting(brings, target.blocks.len(), min_growth_divisor) || zones_after >= MAX_ZONES {
        return None;
    }
    if !fits {
        *file = Parts::default();
    }
    if takes_code {
        bypass_dropped_blocks(&d, &mut d_zones, &taken);
    }
    let Parts { index, zones } = file;
    // A head's stale mark grows its trace's budget; the flag says only
    // that the budget is the largest (`raise_budgets`).
    for &(i, lacks) in &marks {
        index.blocks[i].flags |= lacks & !BlockEntry::STALE_TRACE;
    }
    // Exits to a block newly flagged a cold head led to its stub (to be
    // counted): they are linked to it again, as to an added block.
    let newly_cold: Vec<u32> = marks.iter().filter(|&&(_, lacks)| lacks & BlockEntry::COLD_HEAD != 0).map(|&(i, _)| index.blocks[i].module_offset).collect();
    let stale: Vec<u32> = marks.iter().filter(|&&(_, lacks)| lacks & BlockEntry::STALE_TRACE != 0).map(|&(i, _)| index.blocks[i].module_offset).collect();
    let segment_shift = index.segments.len() as u32;
    let mut added: Vec<u32> = fresh.iter().map(|&i| d.blocks[i].module_offset).chain(newly_cold).collect();
    added.sort_unstable();
    // A trace of the file that went stale in a run: recorded afresh (the
    // delta's replaces it, whose code stays in its segment, unreached), or
    // kept, marked stale. Either way the file's trace of that head gets a
    // larger budget than the stale one had.
    let in_delta = |h: u32| fresh_traces.binary_search_by_key(&h, |&i| d.traces[i].head).is_ok();
    let stale_budgets: Vec<(u32, u64)> = index
        .traces
        .iter()
        .filter(|t| in_delta(t.head) || stale.binary_search(&t.head).is_ok())
        .filter_map(|t| Some((t.head, budget_of(index, zones, t)?)))
        .collect();
    index.traces.retain(|t| !in_delta(t.head));
    if takes_code {
        take_code(index, zones, d, d_zones, &fresh, &fresh_traces);
    }
    index.derive_from_blocks();
    raise_budgets(file, &stale_budgets);
    prelink(file, segment_shift as usize, &added);
    if file.index.for_traces() {
        ready_for_traces(file);
    }
    Some(brings.total())
}

/// A delta (or what a run would hand over) whose blocks the file holds
/// this many times more code of than it would add is mostly held
/// ([`mostly_held`]).
pub const MOSTLY_HELD: u64 = 4;

/// Whether what a run built is mostly what the file holds already:
/// `held` bytes of code of blocks the file has, `adds` of the blocks and
/// traces it lacks. Such a run did not see the file as it is now (a cold
/// run that raced another: concurrent jobs, or a run started before the
/// cache server merged the first one's delta), and its segments hold
/// all it built: merged, they would go into the file whole, mostly code
/// no index entry names (a second copy of a module's start-up:
/// python3.11's file grew from 7.7 to 12 MB, and a run's code was split
/// between the copies). Only its marks are taken: what it alone brings
/// comes back in a later run's delta, which holds only what that run
/// lacked.
pub fn mostly_held(held: u64, adds: u64) -> bool {
    held > MOSTLY_HELD.saturating_mul(adds)
}

/// [`mostly_held`] for `delta` merged into a file that lacks its blocks
/// `fresh` and traces `fresh_traces` (the runtime leaves out of a delta
/// the blocks it finds on disk, and decides for those itself).
fn delta_mostly_held(delta: &Index, fresh: &[usize], fresh_traces: &[usize]) -> bool {
    let all: u64 = delta.blocks.iter().map(|b| b.code_len as u64).sum();
    let fresh_code: u64 = fresh.iter().map(|&i| delta.blocks[i].code_len as u64).sum();
    let trace_code: u64 = fresh_traces.iter().map(|&i| delta.traces[i].code_len as u64).sum();
    mostly_held(all - fresh_code, fresh_code + trace_code)
}

/// Adds `d`'s segments and zones to the file's, with its blocks `fresh`
/// and traces `fresh_traces` (its client data replaces the file's).
fn take_code<'a>(index: &mut Index, zones: &mut Zones<'a>, d: Index, d_zones: Zones<'a>, fresh: &[usize], fresh_traces: &[usize]) {
    let zone_shift = zones.len() as u32;
    let segment_shift = index.segments.len() as u32;
    let exit_shift = index.exits.len() as u32;
    let translation_shift = index.translations.len() as u32;
    let data_shift = index.block_data.len() as u32;
    index.segments.extend(d.segments.iter().map(|s| {
        let mut s = s.clone();
        s.w_zone += zone_shift;
        s.x_zone += zone_shift;
        s.first_exit += exit_shift;
        s
    }));
    index.exits.extend_from_slice(&d.exits);
    index.translations.extend_from_slice(&d.translations);
    index.block_data.extend_from_slice(&d.block_data);
    index.blocks.extend(fresh.iter().map(|&i| {
        let mut b = d.blocks[i].clone();
        b.segment += segment_shift;
        b.first_exit += exit_shift;
        b.translation_offset += translation_shift;
        b.first_data += data_shift;
        b
    }));
    index.blocks.sort_by_key(|b| b.module_offset);
    let span_shift = index.trace_spans.len() as u32;
    index.trace_spans.extend_from_slice(&d.trace_spans);
    index.traces.extend(fresh_traces.iter().map(|&i| {
        let mut t = d.traces[i].clone();
        t.segment += segment_shift;
        t.first_exit += exit_shift;
        t.translation_offset += translation_shift;
        t.first_span += span_shift;
        t
    }));
    index.traces.sort_by_key(|t| t.head);
    // The delta's segments come after the file's: its stubs stay in order.
    index.counting_stubs.extend(d.counting_stubs.iter().map(|c| {
        let mut c = *c;
        c.segment += segment_shift;
        c
    }));
    index.module = d.module;
    index.clients = d.clients;
    index.options = d.options;
    index.client_zones = d.client_zones.map(|(w, x)| (w + zone_shift, x + zone_shift));
    zones.extend(d_zones);
}

/// A delta's blocks the file holds already are not added: their code
/// stays in the delta's segment, where the delta's other blocks and
/// traces may branch or run on into it directly. Such an exit goes
/// through its slot instead ([`prelink`] points it at the file's block,
/// [`ready_for_traces`] at a trace), so that no code runs which the index
/// does not name: a deep check compares every block a thread can reach,
/// and a client's counters in the dropped block's data would count
/// execution no one reads.
fn bypass_dropped_blocks(d: &Index, zones: &mut Zones<'_>, taken: &BTreeSet<u32>) {
    if taken.len() == d.blocks.len() {
        return;
    }
    // Each segment's dropped blocks by where their code starts in X.
    let dropped: BTreeSet<(u32, u32)> =
        d.blocks.iter().filter(|b| !taken.contains(&b.module_offset)).map(|b| (b.segment, b.code_offset)).collect();
    for (s, seg) in d.segments.iter().enumerate() {
        let s = s as u32;
        if dropped.range((s, 0)..=(s, u32::MAX)).next().is_none() {
            continue;
        }
        let first = seg.first_exit as usize;
        let x = &mut zones[seg.x_zone as usize - 1].1;
        let leads_to = |to: i64| u32::try_from(to).is_ok_and(|to| dropped.contains(&(s, to)));
        for e in &d.exits[first..first + seg.exit_count as usize] {
            through_slot_if(x, e, |form| match form {
                DirectForm::Jump { to, .. } | DirectForm::Conditional { to, .. } => leads_to(to),
                // It runs on into the next block, which starts at most
                // `CODE_ALIGN - 1` bytes of filler after it.
                DirectForm::RunsOn { end } => (end..end + 4).any(leads_to),
            });
        }
    }
}

/// Rewrites exit `e`'s branch in X, if it is in a direct form `wanted`
/// says, as a jump through the exit's slot.
fn through_slot_if(x: &mut Cow<'_, [u8]>, e: &crate::index::ExitEntry, wanted: impl Fn(DirectForm) -> bool) {
    let Some((form, slot)) = exit_forms::direct_form(x, e.stub) else { return };
    if wanted(form) {
        slot_form(x.to_mut(), form, slot);
    }
}

/// Rewrites `form` as a jump through the slot at X offset `slot`
/// (`jmp [rip + slot]`, behind a `j<not cc> +6` for a conditional exit):
/// the same length, so nothing after it moves.
fn slot_form(x: &mut [u8], form: DirectForm, slot: i64) {
    let (at, not_cc) = match form {
        DirectForm::Jump { at, .. } => (at, None),
        DirectForm::Conditional { at, cc, .. } => (at, Some(cc ^ 1)),
        DirectForm::RunsOn { end } => (end as usize - 6, None),
    };
    let mut bytes = [0u8; 8];
    let mut n = 0;
    if let Some(cc) = not_cc {
        bytes[..2].copy_from_slice(&[0x70 | cc, 0x06]);
        n = 2;
    }
    // A file damaged so that its branch runs past the zone stays as it is.
    if at + n + 6 > x.len() {
        return;
    }
    let jump_end = (at + n + 6) as i64;
    bytes[n..n + 2].copy_from_slice(&[0xff, 0x25]);
    bytes[n + 2..n + 6].copy_from_slice(&((slot - jump_end) as i32).to_le_bytes());
    x[at..at + n + 6].copy_from_slice(&bytes[..n + 6]);
}

/// How much larger the budget of missed in-line checks of a head's trace
/// is each time one of its traces went stale in a run, up to
/// [`MAX_TRACE_BUDGET`]: a run records a head's trace afresh when the one
/// its file held goes stale on the way the run takes (a loop's trace
/// recorded during an interpreter's start-up missed 5 in-line checks a
/// round of the loop after it, in every warm run), but a short run pays
/// more for recording than the trace saves it, and start-up code that
/// takes other ways in every run (hash-seeded) would be recorded in every
/// run. A larger budget each time lets the short runs stop recording
/// after a few, while a loop still spends it in a few milliseconds.
pub const TRACE_BUDGET_GROWTH: u64 = 16;
/// The largest budget a file gives a trace: more misses than a python3
/// start-up makes lookups in all (~600,000), about 10 ms of a loop whose
/// trace misses every round. A head whose traces keep going stale within
/// a run gets a fourth that counts no misses (`TraceTable::counts_misses`),
/// which then replaces the file's for good.
pub const MAX_TRACE_BUDGET: u64 = 1 << 22;

/// Where the budget of missed in-line checks of trace `t` lies: its W
/// zone's place in the zones, and the 8 bytes in it; None if it counts none.
fn budget_place(index: &Index, t: &TraceEntry) -> Option<(usize, core::ops::Range<usize>)> {
    (t.budget_slot != TraceEntry::NO_BUDGET)
        .then(|| (index.segments[t.segment as usize].w_zone as usize - 1, t.budget_slot as usize..t.budget_slot as usize + 8))
}

/// The budget of missed in-line checks a file gives its trace `t`, if it
/// counts them.
fn budget_of(index: &Index, zones: &Zones<'_>, t: &TraceEntry) -> Option<u64> {
    let (w, slot) = budget_place(index, t)?;
    Some(u64::from_le_bytes(zones[w].1.get(slot)?.try_into().ok()?))
}

/// The budget of a head's trace after one of `stale` went stale.
pub fn grown_budget(stale: u64) -> u64 {
    stale.saturating_mul(TRACE_BUDGET_GROWTH).clamp(1, MAX_TRACE_BUDGET)
}

/// Gives the trace of each head in `stale` (head, the budget its stale
/// trace had; increasing) the [`grown_budget`], and flags the heads whose
/// budget that makes the largest [`BlockEntry::STALE_TRACE`]: runs mark
/// a head whose file trace went stale until then, each mark a rewrite
/// that grows the budget (a flag set at the first mark stopped the
/// growth there: a cc1 trace under drcov went stale and was recorded
/// afresh in every run).
fn raise_budgets(parts: &mut Parts<'_>, stale: &[(u32, u64)]) {
    let Parts { index, zones } = parts;
    let mut largest = Vec::new();
    for t in index.traces.iter() {
        let (Ok(i), Some((w, slot))) = (stale.binary_search_by_key(&t.head, |&(h, _)| h), budget_place(index, t)) else { continue };
        let budget = grown_budget(stale[i].1);
        zones[w].1.to_mut()[slot].copy_from_slice(&budget.to_le_bytes());
        if budget >= MAX_TRACE_BUDGET {
            largest.push(t.head);
        }
    }
    for head in largest {
        if let Ok(b) = index.blocks.binary_search_by_key(&head, |b| b.module_offset) {
            index.blocks[b].flags |= BlockEntry::STALE_TRACE;
        }
    }
}

/// Points every exit whose target block is anywhere in the file straight
/// at it: a slot holds a distance from its own segment's X zone
/// ([`crate::exit_slots`]), and zones
/// keep their distances wherever the file is mapped, so exits across
/// segments (blocks added by later runs) are pre-linked too. Segments
/// before `first_new` are a file's as it was written (each exit to one of
/// its blocks linked already, and a merge moves no zone): of their exits
/// only those to the blocks `added` (module offsets, increasing) are
/// looked at, so that a merge costs what it adds, not what the file holds.
pub fn prelink(parts: &mut Parts<'_>, first_new: usize, added: &[u32]) {
    let Parts { index, zones } = parts;
    let at = zone_places(zones);
    // at[z - 1] is zone z's distance from the first zone after R.
    let place = |z: u32| at[z as usize - 1] as i64;
    for (s, seg) in index.segments.iter().enumerate() {
        if s < first_new && added.is_empty() {
            continue;
        }
        let first = seg.first_exit as usize;
        for e in &index.exits[first..first + seg.exit_count as usize] {
            let Ok(offset) = u32::try_from(e.target) else { continue };
            if s < first_new && added.binary_search(&offset).is_err() {
                continue;
            }
            let Ok(b) = index.blocks.binary_search_by_key(&offset, |b| b.module_offset) else { continue };
            let b = &index.blocks[b];
            let target_x = index.segments[b.segment as usize].x_zone;
            let value = crate::exit_slots::stored(place(target_x) + b.code_offset as i64 - place(seg.x_zone)).to_le_bytes();
            let slot = e.slot as usize..e.slot as usize + 8;
            let w = &mut zones[seg.w_zone as usize - 1].1;
            // A zone still mapped from the old file is copied only to change it.
            if w[slot.clone()] != value {
                w.to_mut()[slot].copy_from_slice(&value);
            }
        }
    }
}

/// Points the slots of a file for runs with traces as such a run wants
/// them: an exit to a trace's head at the trace, and a counted exit
/// ([`Index::counted_exits`]) at its counting stub, or at its stub (for
/// the dispatcher to count) if it has none that goes on to its target's
/// block, so a loop's start is counted as a head. Done once per merge, so
/// that loading writes nothing.
pub fn ready_for_traces(parts: &mut Parts<'_>) {
    let Parts { index, zones } = parts;
    let places = zone_places(zones);
    let place = |z: u32| places[z as usize - 1] as i64;
    let mut set = |r: &crate::index::ExitRef, goes_to: i64| {
        let seg = &index.segments[r.segment as usize];
        let e = &index.exits[r.exit as usize];
        let value = crate::exit_slots::stored(goes_to - place(seg.x_zone)).to_le_bytes();
        let slot = e.slot as usize..e.slot as usize + 8;
        let w = &mut zones[seg.w_zone as usize - 1].1;
        if w[slot.clone()] != value {
            w.to_mut()[slot].copy_from_slice(&value);
        }
    };
    for r in &index.exits_to_traces {
        let target = index.exits[r.exit as usize].target;
        let Ok(t) = index.traces.binary_search_by_key(&target, |t| t.head as i64) else { continue };
        let t = &index.traces[t];
        set(r, place(index.segments[t.segment as usize].x_zone) + t.code_offset as i64);
    }
    for r in &index.counted_exits {
        let seg = &index.segments[r.segment as usize];
        let e = &index.exits[r.exit as usize];
        let goes_to = counting_stub_in_use(index, r).map_or(e.stub, |c| c.code);
        set(r, place(seg.x_zone) + goes_to as i64);
    }
    // A branch written straight to a block that is a trace's head now
    // (the trace came with this delta or a later one) would skip the
    // trace, one of a trace's exits (all counted) straight to the block
    // after it would skip the count that makes a side path hot: each
    // goes through its slot. Conditional exits to their trampolines
    // (after the code) do already.
    for r in index.exits_to_traces.iter().chain(&index.counted_exits) {
        let seg = &index.segments[r.segment as usize];
        let code_len = seg.code_len as i64;
        through_slot_if(&mut zones[seg.x_zone as usize - 1].1, &index.exits[r.exit as usize], |form| match form {
            DirectForm::Jump { to, .. } | DirectForm::Conditional { to, .. } => to < code_len,
            DirectForm::RunsOn { .. } => true,
        });
    }
}

/// The counting stub of counted exit `r`'s target in its segment, if the
/// block it goes on to is still the target's in the file: a merge drops a
/// delta's block the file holds already, whose code stays in the delta's
/// segment unnamed.
fn counting_stub_in_use<'i>(index: &'i Index, r: &crate::index::ExitRef) -> Option<&'i crate::index::CountingStub> {
    let target = u32::try_from(index.exits[r.exit as usize].target).ok()?;
    let c = index.counting_stub(r.segment, target)?;
    let b = &index.blocks[index.blocks.binary_search_by_key(&target, |b| b.module_offset).ok()?];
    (b.segment == r.segment && b.code_offset == c.goes_to).then_some(c)
}

/// Where each zone after R lies from the first of them, as a mapping lays
/// them out (each from a page boundary).
fn zone_places(zones: &Zones<'_>) -> Vec<usize> {
    let mut at = Vec::with_capacity(zones.len() + 1);
    at.push(0usize);
    for (_, z) in zones.iter() {
        at.push(at.last().unwrap() + page_up(z.len()));
    }
    at
}
