//! Using persisted cache files: finding a module's file, mapping it inside
//! the code cache reservation with each zone's own protection, checking
//! it, rebasing its W zones, and registering its blocks lazily (a block
//! becomes a fragment when the dispatcher first looks for it; blocks of
//! the same file reach each other through their W slots without that).

use alloc::borrow::Cow;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::{Acquire, Relaxed, Release}};

use persist::index::{ArchivedBlockEntry, ArchivedExitEntry, ArchivedExitRef, ArchivedIndex, ArchivedTraceEntry, BlockEntry};
use persist::{translations, KeyField, Reject, ZoneKind};

use crate::translate::file_lookup;
use crate::translate::code_cache::CodeCache;
use crate::translate::ibl::IblTable;
use crate::translate::trace_table::{Trace, TraceTable};
use crate::translate::fragment::{pack_translations, ExitRecord, Fragment, Patch, Translation};
use crate::translate::mangle::Fixup;
use crate::os::modules::FileIdentity;
use crate::persistence::files as files;
use crate::persistence::slot_faults;
use crate::persistence::server::Served;
use crate::os::startup_args::CStr;
use crate::stats::{self, STATS};
use crate::os::sys::{self, AsRawFd};

/// The longest app span of a block (a page plus one instruction).
const MAX_BLOCK_SPAN: u64 = 4096 + 16;

/// Address ranges of the mapped files, readable without a lock (from the
/// dispatcher deciding how to link an exit, and from signal handlers):
/// chunks allocated as files are loaded and never freed, so a reader
/// never sees one go away. A file is used only once its range is here:
/// linking an exit of a file not recorded would patch its read-execute
/// code instead of its W slot.
const RANGES_PER_CHUNK: usize = 256;
const MAX_CHUNKS: usize = 64;
type RangeChunk = [[AtomicU64; 2]; RANGES_PER_CHUNK];
static RANGE_CHUNKS: [AtomicPtr<RangeChunk>; MAX_CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CHUNKS];
static RANGE_COUNT: AtomicUsize = AtomicUsize::new(0);

fn range(i: usize) -> (u64, u64) {
    // SAFETY: chunks below RANGE_COUNT were published (Release) before the
    // count and are never freed.
    let chunk = unsafe { &*RANGE_CHUNKS[i / RANGES_PER_CHUNK].load(Acquire) };
    let r = &chunk[i % RANGES_PER_CHUNK];
    (r[0].load(Relaxed), r[1].load(Relaxed))
}

/// Whether `addr` is inside a mapped cache file.
pub(crate) fn in_mapped_file(addr: u64) -> bool {
    let n = RANGE_COUNT.load(Acquire);
    (0..n).any(|i| {
        let (lo, hi) = range(i);
        (lo..hi).contains(&addr)
    })
}

/// Whether one more file's range can be recorded (checked before it is
/// mapped; the translator's lock makes the check and the record one step).
fn range_room() -> bool {
    RANGE_COUNT.load(Relaxed) < RANGES_PER_CHUNK * MAX_CHUNKS
}

fn publish_range(lo: u64, hi: u64) {
    let i = RANGE_COUNT.load(Relaxed);
    let slot = &RANGE_CHUNKS[i / RANGES_PER_CHUNK];
    if slot.load(Acquire).is_null() {
        let chunk: alloc::boxed::Box<RangeChunk> =
            alloc::boxed::Box::new([const { [AtomicU64::new(0), AtomicU64::new(0)] }; RANGES_PER_CHUNK]);
        slot.store(alloc::boxed::Box::leak(chunk), Release);
    }
    // SAFETY: just allocated or already published; only the translator's
    // holder writes.
    let chunk = unsafe { &*slot.load(Acquire) };
    chunk[i % RANGES_PER_CHUNK][0].store(lo, Relaxed);
    chunk[i % RANGES_PER_CHUNK][1].store(hi, Relaxed);
    RANGE_COUNT.store(i + 1, Release);
}

/// `pc`'s offset in the module at `base`, if an index can hold it: a pc
/// 4 GiB or more past the base must not find the block of its low 32 bits.
fn module_offset(pc: u64, base: u64) -> Option<u32> {
    u32::try_from(pc.checked_sub(base)?).ok()
}

/// Why a file was not used, counted for `-stats`.
#[derive(Clone, Copy)]
pub(crate) enum Unused {
    Invalid(Reject),
    Key(KeyField),
    ModuleChanged,
    Untrusted,
    NoRoom,
    Rejected,
}

impl Unused {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unused::Invalid(r) => r.name(),
            Unused::Key(KeyField::ModuleHash) | Unused::ModuleChanged => "module changed",
            Unused::Key(KeyField::Clients) => "other clients",
            Unused::Key(KeyField::TlsLayout) => "other TLS layout",
            // The runtime options that change code.
            Unused::Key(KeyField::Options) => "other -stats or -traces setting",
            Unused::Key(KeyField::RuntimeVersion) => "other runtime version",
            Unused::Untrusted => "untrusted owner or mode",
            Unused::NoRoom => "no room in the code cache",
            Unused::Rejected => "rejected by a client",
        }
    }
}

pub(crate) struct LoadedFile {
    module_base: u64,
    /// The module's end and path as mapped in this run.
    module_end: u64,
    module_path: CStr,
    identity: FileIdentity,
    module_hash: [u8; 32],
    map: u64,
    len: u64,
    index: &'static ArchivedIndex,
    /// (W zone address, X zone address) of each segment.
    segments: Vec<(u64, u64)>,
    /// Zones of the file, R included.
    zones: usize,
    /// Tags registered as fragments.
    registered: Vec<u64>,
    /// Retired after a flush of its module's code: nothing more is used.
    dead: bool,
    /// Its descriptor came from the cache server.
    served: bool,
    /// Its block table's place in the lookup's second level
    /// (`translate/file_lookup.rs`), if it has one.
    lookup_handle: Option<usize>,
    /// The blocks in code order, made at the first signal that interrupts
    /// the file's code (`code_order`).
    code_order: spin::Once<Vec<CodePlace>>,
}

/// Where a block's code lies in a file: (segment, code offset), then the
/// block's index in the index's `blocks` (sorted by module offset).
type CodePlace = (u32, u32, u32);

impl LoadedFile {
    /// The blocks in code order: a signal finds the block it interrupted
    /// and the blocks after it in its segment by binary search rather
    /// than two scans of every block (python3.11's file: 40,000). Made
    /// once, when first needed, not at load (O(pages touched) loading).
    fn code_order(&self) -> &[CodePlace] {
        self.code_order.call_once(|| {
            let mut places: Vec<CodePlace> =
                self.index.blocks.iter().enumerate().map(|(i, b)| (b.segment.to_native(), b.code_offset.to_native(), i as u32)).collect();
            places.sort_unstable();
            places
        })
    }

    /// What clients read of it at exit (retired or not: its blocks ran).
    fn client_view(&self) -> FileView {
        FileView {
            path: self.module_path,
            base: self.module_base,
            end: self.module_end,
            is_main: crate::os::modules::with_module(self.module_base, |m| m.is_some_and(|m| m.base == self.module_base && m.is_main)),
            index: self.index,
            segments: self.segments.clone(),
        }
    }

    fn block_x(&self, b: &ArchivedBlockEntry) -> (u64, u64) {
        (self.segments[b.segment.to_native() as usize].0, self.code_at(b.segment.to_native(), b.code_offset.to_native()))
    }

    /// The address of `code_offset` in segment `segment`'s X zone.
    fn code_at(&self, segment: u32, code_offset: u32) -> u64 {
        self.segments[segment as usize].1 + code_offset as u64
    }

    /// Resets every exit slot to its stub: no block of the file is entered
    /// through another any more.
    fn unlink_all(&self) {
        for s in 0..self.index.segments.len() {
            self.unlink_segment(s);
        }
    }

    /// Resets the slots of `exits[first..first + count]`, of segment
    /// `segment`, to their stubs.
    fn unlink_exits_in(&self, segment: u32, first: u32, count: u32) {
        for (patch, stub, _) in self.exits_in(segment, first, count) {
            crate::translate::link::unlink(patch, stub);
        }
    }

    /// Resets every exit slot of segment `s` to its stub.
    fn unlink_segment(&self, s: usize) {
        let seg = &self.index.segments[s];
        self.unlink_exits_in(s as u32, seg.first_exit.to_native(), seg.exit_count.to_native());
    }

    /// Resets the exit slots a thread running at `pc` can reach before it
    /// leaves the file's code through one of them: those of its block or
    /// trace, and of the blocks its exits written as direct branches (or
    /// running on into the next block) lead to, and theirs in turn. The
    /// writer makes an exit direct only when its target lies later in
    /// the segment, so the walk goes forward and ends; it is a few blocks
    /// where unlinking the rest of the segment was tens of thousands of
    /// slots (python3's file), longer than a 5 kHz timer's period.
    fn unlink_from(&self, pc: u64) {
        let Some(s) = self.segment_containing(pc) else { return };
        let start = match self.trace_containing(pc) {
            Some(t) => t.code_offset.to_native(),
            None => match self.block_containing(pc) {
                Some(b) => b.code_offset.to_native(),
                None => {
                    // A stub, a slot trampoline (which goes on through
                    // its exit's slot, a block's or a trace's) or
                    // filler: every exit of the segment.
                    self.unlink_segment(s);
                    return;
                }
            },
        };
        let code_len = self.index.segments[s].code_len.to_native();
        // SAFETY: the X zone is mapped readable up to where the next
        // segment or the file ends, for as long as the file is loaded.
        let x = unsafe { core::slice::from_raw_parts(self.segments[s].1 as *const u8, (self.x_end(s) - self.segments[s].1) as usize) };
        let mut pending = BTreeSet::from([start]);
        while let Some(at) = pending.pop_first() {
            let Some((first, count)) = self.exits_of_code_at(s, at) else {
                // Code no block or trace of the index starts at: what runs
                // from there is unknown, so every block after it.
                self.unlink_blocks_after(s, at);
                continue;
            };
            for e in &self.index.exits[first as usize..(first + count) as usize] {
                let (patch, stub, _) = self.exit_in(s as u32, e);
                crate::translate::link::unlink(patch, stub);
                match persist::exit_forms::direct_form(x, e.stub.to_native()).and_then(|(form, _)| form.continues_at(code_len)) {
                    Some(next) if next > at => {
                        pending.insert(next);
                    }
                    // Backward: not a file this runtime wrote.
                    Some(next) => self.unlink_blocks_after(s, next),
                    None => {}
                }
            }
        }
    }

    /// The exits (first, count) of the block or trace whose code starts at
    /// `offset` of segment `s`.
    fn exits_of_code_at(&self, s: usize, offset: u32) -> Option<(u32, u32)> {
        let places = self.code_order();
        if let Ok(at) = places.binary_search_by(|&(seg, off, _)| (seg as usize, off).cmp(&(s, offset))) {
            let b = &self.index.blocks[places[at].2 as usize];
            return Some((b.first_exit.to_native(), b.exit_count.to_native()));
        }
        let t = self.index.traces.iter().find(|t| t.segment.to_native() as usize == s && t.code_offset.to_native() == offset)?;
        Some((t.first_exit.to_native(), t.exit_count.to_native()))
    }

    /// Resets the exit slots of every block of segment `s` whose code
    /// starts at `offset` or later.
    fn unlink_blocks_after(&self, s: usize, offset: u32) {
        let places = self.code_order();
        let first = places.partition_point(|&(seg, off, _)| (seg as usize, off) < (s, offset));
        for &(_, _, i) in places[first..].iter().take_while(|&&(seg, _, _)| seg as usize == s) {
            let b = &self.index.blocks[i as usize];
            self.unlink_exits_in(b.segment.to_native(), b.first_exit.to_native(), b.exit_count.to_native());
        }
    }

    /// Enters the file's traces in the lookup table in place of their
    /// heads' blocks; how many. Nothing else is done per trace or exit:
    /// the file's slots were readied for runs with traces when it was
    /// written (`persist::merge::ready_for_traces`), and the trace table
    /// adopts a trace when the dispatcher first meets its head
    /// ([`LoadedFiles::trace_at`]).
    fn enter_traces(&self, traces: &TraceTable, ibl: &mut IblTable) -> usize {
        let mut entered = 0;
        for t in self.index.traces.iter() {
            let head = self.module_base + t.head.to_native() as u64;
            if traces.get(head).is_none() && !traces.was_removed(head) {
                ibl.insert(head, self.code_at(t.segment.to_native(), t.code_offset.to_native()));
                entered += 1;
            }
        }
        entered
    }

    /// The file's trace of `head` as the trace table holds one.
    fn trace(&self, t: &ArchivedTraceEntry) -> Trace {
        let base = self.module_base;
        let exits = self.exit_records(t.segment.to_native(), t.first_exit.to_native(), t.exit_count.to_native());
        // A trace's translations are from the module's base.
        let head = base + t.head.to_native() as u64;
        let translations = self.fragment_translations(t.translation_offset.to_native(), t.translation_len.to_native(), base, head);
        let first = t.first_span.to_native() as usize;
        let spans: Vec<(u64, u64)> = self.index.trace_spans[first..first + t.span_count.to_native() as usize]
            .iter()
            .map(|s| {
                let lo = base + s.module_offset.to_native() as u64;
                (lo, lo + s.app_len.to_native() as u64)
            })
            .collect();
        let start = self.code_at(t.segment.to_native(), t.code_offset.to_native());
        let fragment = Fragment::new(head, crate::translate::fragment::app_len(head, spans[0].1), start, t.code_len.to_native(), exits, &translations, false);
        Trace { fragment, spans }
    }

    /// The file's trace whose code contains `pc`, if any.
    fn trace_containing(&self, pc: u64) -> Option<&ArchivedTraceEntry> {
        let s = self.segment_containing(pc)?;
        let off = pc - self.segments[s].1;
        self.index.traces.iter().find(|t| {
            let start = t.code_offset.to_native() as u64;
            t.segment.to_native() as usize == s && (start..start + t.code_len.to_native() as u64).contains(&off)
        })
    }

    /// Lends the file's block table to the lookup's miss routine, which
    /// then finds any of its blocks without the dispatcher.
    fn publish_blocks(&self) -> Option<usize> {
        // Leaked: the routine may read it after the file is retired.
        let code_bases: &'static [u64] = Vec::leak(self.segments.iter().map(|&(_, x)| x).collect());
        let buckets = self.index.block_buckets.as_slice();
        file_lookup::publish(file_lookup::FileBlocks {
            module_base: self.module_base,
            blocks: self.index.blocks.as_slice(),
            buckets: (buckets.as_ptr() as u64, buckets.len()),
            code_bases,
        })
    }

    fn segment_containing(&self, pc: u64) -> Option<usize> {
        (0..self.segments.len()).find(|&s| (self.segments[s].0..self.x_end(s)).contains(&pc))
    }

    /// Where segment `s`'s X zone ends: at the next segment's W zone, or
    /// the file's end.
    fn x_end(&self, s: usize) -> u64 {
        let x = self.segments[s].1;
        self.segments.iter().map(|&(w, _)| w).filter(|&w| w > x).min().unwrap_or(self.map + self.len)
    }

    /// The block whose code contains `pc`, if any.
    fn block_containing(&self, pc: u64) -> Option<&ArchivedBlockEntry> {
        let s = self.segment_containing(pc)?;
        let offset = u32::try_from(pc - self.segments[s].1).ok()?;
        let places = self.code_order();
        // The last block starting at or before `pc` in its segment.
        let at = places.partition_point(|&(seg, off, _)| (seg as usize, off) <= (s, offset)).checked_sub(1)?;
        let (seg, start, i) = places[at];
        let b = &self.index.blocks[i as usize];
        (seg as usize == s && offset - start < b.code_len.to_native()).then_some(b)
    }

    fn translations_in(&self, offset: u32, len: u32) -> translations::Unpack<'static> {
        let first = offset as usize;
        translations::unpack(&self.index.translations[first..first + len as usize])
    }

    /// The packed translations of the fragment of `tag` from
    /// `translations[offset..offset + len]`, their app offsets from
    /// `app_base`: a block's bytes as they are (offsets from its tag, as a
    /// fragment keeps them), a trace's packed again from its head.
    fn fragment_translations(&self, offset: u32, len: u32, app_base: u64, tag: u64) -> Cow<'static, [u8]> {
        if app_base == tag {
            let first = offset as usize;
            return Cow::Borrowed(&self.index.translations[first..first + len as usize]);
        }
        let points: Vec<Translation> = self
            .translations_in(offset, len)
            .map(|t| Translation {
                cache_offset: t.cache_offset,
                app_pc: app_base + t.app_offset as u64,
                fixup: crate::translate::mangle::decode_fixup(t.fixup).unwrap_or(Fixup::None),
            })
            .collect();
        Cow::Owned(pack_translations(tag, &points))
    }

    fn translation_at(&self, b: &ArchivedBlockEntry, pc: u64) -> Option<(u64, Fixup)> {
        let (_, start) = self.block_x(b);
        let tag = self.module_base + b.module_offset.to_native() as u64;
        self.translation_in(start, b.translation_offset.to_native(), b.translation_len.to_native(), tag, pc)
    }

    /// The app pc and fixup at cache address `pc` of the fragment whose
    /// code starts at `start`, from its translations
    /// `translations[offset..offset + len]`, their app offsets from
    /// `app_base` (a block's tag, a trace's module base).
    fn translation_in(&self, start: u64, offset: u32, len: u32, app_base: u64, pc: u64) -> Option<(u64, Fixup)> {
        let off = pc.checked_sub(start)? as u32;
        let t = self.translations_in(offset, len).take_while(|t| t.cache_offset <= off).last()?;
        Some((app_base + t.app_offset as u64, crate::translate::mangle::decode_fixup(t.fixup)?))
    }

    /// `exits[first..first + count]`, of segment `segment`.
    fn exits_in(&self, segment: u32, first: u32, count: u32) -> impl ExactSizeIterator<Item = (Patch, u64, u64)> + '_ {
        let exits = &self.index.exits[first as usize..(first + count) as usize];
        exits.iter().map(move |e| self.exit_in(segment, e))
    }

    /// The exit `e` of segment `segment`: its W slot, its stub and its app
    /// target.
    fn exit_in(&self, segment: u32, e: &ArchivedExitEntry) -> (Patch, u64, u64) {
        let (w, x) = self.segments[segment as usize];
        (Patch::Slot(w + e.slot.to_native() as u64), x + e.stub.to_native() as u64, self.module_base.wrapping_add(e.target.to_native() as u64))
    }

    /// The exits to `head`'s trace (`exits_to_traces` is sorted by target:
    /// a binary search finds them): the patch and stub of each.
    fn exits_to_trace(&self, head: u64) -> impl Iterator<Item = (Patch, u64)> + '_ {
        let refs = self.index.exits_to_traces.as_slice();
        let target_of = move |r: &ArchivedExitRef| self.index.exits[r.exit.to_native() as usize].target.to_native();
        let want = head.wrapping_sub(self.module_base) as i64;
        let first = refs.partition_point(|r| target_of(r) < want);
        refs[first..].iter().take_while(move |r| target_of(r) == want).map(move |r| {
            let (patch, stub, _) = self.exit_in(r.segment.to_native(), &self.index.exits[r.exit.to_native() as usize]);
            (patch, stub)
        })
    }

    /// The records of a fragment's exits `exits[first..first + count]`, of
    /// segment `segment`: linked where a slot no longer holds its stub.
    fn exit_records(&self, segment: u32, first: u32, count: u32) -> impl ExactSizeIterator<Item = ExitRecord> + '_ {
        self.exits_in(segment, first, count)
            .map(move |(patch, stub, target)| {
                let Patch::Slot(slot) = patch else { unreachable!() };
                let x = self.segments[segment as usize].1;
                // SAFETY: the slot is in the file's W zone, mapped writable.
                let prelinked = persist::exit_slots::resolve(unsafe { *(slot as *const u64) }, x) != stub;
                ExitRecord::through_slot(slot, stub, target, prelinked)
            })
    }
}

/// A file taken into use, as clients see it at process exit
/// (`client_host`): its module, and its blocks' client data.
pub(crate) struct FileView {
    pub(crate) path: CStr,
    pub(crate) base: u64,
    pub(crate) end: u64,
    pub(crate) is_main: bool,
    index: &'static ArchivedIndex,
    /// (W zone address, X zone address) of each segment.
    segments: Vec<(u64, u64)>,
}

impl FileView {
    /// The file's blocks holding data of client `client`, in module order.
    pub(crate) fn blocks_of(&self, client: usize) -> impl Iterator<Item = clients::api::PersistedBlock> + '_ {
        persisted_blocks(self.index, self.base, &self.segments, client)
    }
}

/// The blocks of the file with `index` (its module at `base`, its
/// segments' (W, X) zones at `segments`) holding data of client `client`.
fn persisted_blocks<'a>(index: &'static ArchivedIndex, base: u64, segments: &'a [(u64, u64)], client: usize) -> impl Iterator<Item = clients::api::PersistedBlock> + 'a {
    index.blocks.iter().flat_map(move |b| {
        let first = b.first_data.to_native() as usize;
        let w = segments[b.segment.to_native() as usize].0;
        let tag = base + b.module_offset.to_native() as u64;
        index.block_data[first..first + b.data_count.to_native() as usize]
            .iter()
            .filter(move |d| d.client.to_native() as usize == client)
            .map(move |d| clients::api::PersistedBlock { tag, data: (w + d.w_offset.to_native() as u64) as *mut u8 })
    })
}

#[derive(Default)]
pub(crate) struct LoadedFiles {
    files: Vec<LoadedFile>,
    /// Modules whose file was looked for.
    attempted: Vec<(u64, FileIdentity)>,
}

impl LoadedFiles {
    /// The content hash of the module at `base` if a file for it is used
    /// (read from the file's key, checked when it was loaded).
    pub(crate) fn module_hash_for(&self, base: u64, identity: FileIdentity) -> Option<[u8; 32]> {
        self.files.iter().find(|f| f.module_base == base && f.identity == identity).map(|f| f.module_hash)
    }

    /// Blocks of the file in use for the module at `base` (0 if none).
    pub(crate) fn block_count(&self, base: u64, identity: FileIdentity) -> usize {
        self.files.iter().find(|f| f.module_base == base && f.identity == identity).map_or(0, |f| f.index.blocks.len())
    }

    /// Whether the file in use for the module at `base` has zones to take
    /// a small delta (`persist::merge::MAX_ZONES_FOR_SMALL`).
    pub(crate) fn takes_small_deltas(&self, base: u64, identity: FileIdentity) -> bool {
        self.files
            .iter()
            .find(|f| f.module_base == base && f.identity == identity)
            .is_none_or(|f| f.zones + 2 <= persist::merge::MAX_ZONES_FOR_SMALL)
    }

    /// Whether the file in use for the module at `base` has the block `tag`.
    pub(crate) fn has_block(&self, base: u64, identity: FileIdentity, tag: u64) -> bool {
        self.files.iter().any(|f| {
            f.module_base == base && f.identity == identity && module_offset(tag, base).and_then(|o| f.index.block_at(o)).is_some()
        })
    }

    /// Whether a file of the module at `base` this run loaded holds a trace
    /// of `head` (a trace this run built of it replaces that one).
    pub(crate) fn has_trace(&self, base: u64, identity: FileIdentity, head: u64) -> bool {
        self.files.iter().any(|f| {
            f.module_base == base && f.identity == identity && module_offset(head, base).and_then(|o| f.index.trace_at(o)).is_some()
        })
    }

    /// Looks for the file of the module at `base` once; a file taken into
    /// use has its blocks entered in the indirect-branch table.
    pub(crate) fn load_once(&mut self, cache: &mut CodeCache, ibl: &mut IblTable, traces: &TraceTable, base: u64, end: u64, path: CStr, identity: FileIdentity) {
        if self.attempted.iter().any(|&(b, id)| b == base && id == identity) {
            return;
        }
        self.attempted.push((base, identity));
        let Some(dir) = crate::options::get().persist_dir else { return };
        let t0 = stats::ticks();
        let file = files::file_for(&dir, &path);
        match load(cache, &dir, &file, base, end, &path, identity) {
            Ok(Some(mut f)) => {
                stats::add(&STATS.files_loaded, 1);
                stats::add(&STATS.bytes_mapped, f.len);
                let served = if f.served { ", served by the cache server" } else { "" };
                crate::verbose!("persist: using {} ({} blocks{served})", files::display(&file), f.index.blocks.len());
                crate::persistence::report::used(&file, f.index.blocks.len());
                stats::add(&STATS.blocks_loaded, f.index.blocks.len() as u64);
                // The blocks indirect branches reached in the runs that
                // built them are entered in the lookup table now, from
                // their own list; any other block when first looked up.
                // The table, and loading, stay proportional to what runs
                // (and the block table is not read).
                let targets = &f.index.lookup_targets;
                ibl.reserve(targets.len());
                for t in targets.iter() {
                    ibl.insert(base + t.module_offset.to_native() as u64, f.code_at(t.segment.to_native(), t.code_offset.to_native()));
                }
                stats::add(&STATS.lookup_targets_loaded, targets.len() as u64);
                let ahead_of_time = (f.index.ahead_of_time_blocks.to_native() as usize).min(f.index.blocks.len());
                stats::add(&STATS.aot_blocks_loaded, ahead_of_time as u64);
                if crate::options::get().monitors() {
                    stats::add(&STATS.traces_loaded, f.enter_traces(traces, ibl) as u64);
                }
                f.lookup_handle = f.publish_blocks();
                // Without clients no view is made (a module lookup per file).
                if crate::client_host::active() {
                    crate::client_host::file_taken_into_use(f.client_view());
                }
                self.files.push(f);
            }
            Ok(None) => {}
            Err(why) => {
                stats::note_rejected(why.name());
                crate::persistence::report::rejected(&file, why.name());
                crate::verbose!("persist: not using {}: {}", files::display(&file), why.name());
            }
        }
        stats::add(&STATS.load_ticks, stats::ticks() - t0);
    }

    pub(crate) fn any_in_use(&self) -> bool {
        self.files.iter().any(|f| !f.dead)
    }

    /// Whether the file in use for the module at `base` holds a block at
    /// `pc` it does not flag as a lookup target.
    pub(crate) fn unflagged_lookup_target(&self, pc: u64, base: u64, identity: FileIdentity) -> bool {
        self.index_in_use_at(pc, base, identity).and_then(|(ix, off)| ix.block_at(off)).is_some_and(|b| !b.lookup_target())
    }

    /// Whether the file in use for the module at `base` holds a block at
    /// `pc` it does not flag as a cold head, and no trace of it.
    pub(crate) fn unflagged_cold_head(&self, pc: u64, base: u64, identity: FileIdentity) -> bool {
        self.index_in_use_at(pc, base, identity).is_some_and(|(ix, off)| ix.lacks_flags(off, BlockEntry::COLD_HEAD) != 0 && ix.trace_at(off).is_none())
    }

    /// Whether the file in use for the module at `base` has a trace of
    /// `head` whose budget a merge may still grow (its head not flagged
    /// [`BlockEntry::STALE_TRACE`]).
    pub(crate) fn trace_budget_may_grow(&self, head: u64, base: u64, identity: FileIdentity) -> bool {
        self.index_in_use_at(head, base, identity).is_some_and(|(ix, off)| ix.trace_at(off).is_some() && ix.lacks_flags(off, BlockEntry::STALE_TRACE) != 0)
    }

    /// The index of the file in use for the module at `base`, and `pc`'s
    /// module offset.
    fn index_in_use_at(&self, pc: u64, base: u64, identity: FileIdentity) -> Option<(&'static ArchivedIndex, u32)> {
        let f = &self.files[self.file_in_use(base, identity)?];
        Some((f.index, module_offset(pc, base)?))
    }

    /// The code of the block at `pc` in the file of the module at `base`,
    /// not registered, and whether the file flags it as a lookup target.
    pub(crate) fn block_for_lookup(&self, pc: u64, base: u64, identity: FileIdentity) -> Option<(u64, bool)> {
        let (i, b) = self.block_in_use(pc, base, identity)?;
        Some((self.files[i].block_x(b).1, b.lookup_target()))
    }

    /// The code of the block at `pc` in the file of the module at `base`,
    /// and the end of its app code, not registered as a fragment but noted
    /// as reached (a retirement of the file names it; `-stats` counts it
    /// registered): a counting stub about to lead to it needs no more.
    pub(crate) fn block_for_head(&mut self, pc: u64, base: u64, identity: FileIdentity) -> Option<(u64, u64)> {
        let (i, b) = self.block_in_use(pc, base, identity)?;
        let f = &mut self.files[i];
        f.registered.push(pc);
        stats::add(&STATS.blocks_registered, 1);
        Some((f.block_x(b).1, pc + b.app_len.to_native() as u64))
    }

    /// The heads whose entries the counting stubs of the file in use for
    /// the module at `base` counted in this run (their counters moved
    /// from where every run starts them), as app pcs. Read at the end of a
    /// run: a segment's counters lie together, so the stubs' entries are
    /// read only for those that moved.
    pub(crate) fn heads_counted_in_file(&self, base: u64, identity: FileIdentity) -> Vec<u64> {
        use persist::counting_stubs::COUNTER_STRIDE;
        let Some(f) = self.file_in_use(base, identity).map(|i| &self.files[i]) else { return Vec::new() };
        let mut heads = Vec::new();
        for (s, &(w, _)) in f.segments.iter().enumerate() {
            let stubs = f.index.counting_stubs_in(s as u32);
            let Some(first) = stubs.first().map(|c| w + c.counter.to_native() as u64) else { continue };
            for (k, c) in stubs.iter().enumerate() {
                // SAFETY: validation checked that a segment's counters lie
                // together in its W zone, mapped for as long as the
                // process runs; threads may count meanwhile.
                let n = unsafe { core::ptr::read_volatile((first + (COUNTER_STRIDE * k) as u64) as *const u64) };
                if n != crate::translate::trace_table::HOT as u64 {
                    heads.push(base.wrapping_add(c.head.to_native() as u64));
                }
            }
        }
        heads
    }

    /// The go slots of the counting stubs the file in use for the module
    /// at `base` has for the head at `head`, each with the stub's counting
    /// code, where it leads when no trace is built (a stub per segment
    /// whose exits count the head).
    pub(crate) fn counting_stubs_of(&self, head: u64, base: u64, identity: FileIdentity) -> Vec<(u64, u64)> {
        let Some(f) = self.file_in_use(base, identity).map(|i| &self.files[i]) else { return Vec::new() };
        let Some(offset) = module_offset(head, base) else { return Vec::new() };
        let mut found = Vec::new();
        for (s, &(w, x)) in f.segments.iter().enumerate() {
            let stubs = f.index.counting_stubs_in(s as u32);
            if let Ok(i) = stubs.binary_search_by_key(&offset, |c| c.head.to_native()) {
                found.push((w + stubs[i].go_slot() as u64, x + stubs[i].counting_code() as u64));
            }
        }
        found
    }

    /// If `pc` lies in a counting stub of a loaded file: where a thread in
    /// it goes on, the head's trace its go slot leads to, or else the
    /// head's block.
    pub(crate) fn counting_stub_goes_on(&self, pc: u64) -> Option<u64> {
        let f = self.file_containing(pc)?;
        let s = f.segment_containing(pc)?;
        let (w, x) = f.segments[s];
        let stubs = f.index.counting_stubs_in(s as u32);
        let from = pc.checked_sub(x + stubs.first()?.code.to_native() as u64)? as usize / persist::counting_stubs::LEN;
        let c = stubs.get(from)?;
        // SAFETY: the go slot lies in the segment's W zone (validated),
        // mapped for as long as the process runs.
        let leads_to = persist::exit_slots::resolve(unsafe { core::ptr::read_volatile((w + c.go_slot() as u64) as *const u64) }, x);
        Some(if leads_to == x + c.counting_code() as u64 { x + c.goes_to.to_native() as u64 } else { leads_to })
    }

    /// The position of the file in use (not retired) for the module at `base`.
    fn file_in_use(&self, base: u64, identity: FileIdentity) -> Option<usize> {
        self.files.iter().position(|f| !f.dead && f.module_base == base && f.identity == identity)
    }

    /// The file in use for the module at `base` (its position) and its
    /// block at `pc`, now taken into use (counted for `-stats`).
    fn block_in_use(&self, pc: u64, base: u64, identity: FileIdentity) -> Option<(usize, &'static ArchivedBlockEntry)> {
        let i = self.file_in_use(base, identity)?;
        let f = &self.files[i];
        let b = f.index.block_at(module_offset(pc, base)?)?;
        if b.ahead_of_time() {
            stats::add(&STATS.aot_blocks_registered, 1);
        }
        Some((i, b))
    }

    /// The fragment for `pc` from the file of the module at `base`,
    /// registered now.
    pub(crate) fn register(&mut self, pc: u64, base: u64, identity: FileIdentity) -> Option<Fragment> {
        let (i, b) = self.block_in_use(pc, base, identity)?;
        let f = &mut self.files[i];
        let (_, start) = f.block_x(b);
        let exits = f.exit_records(b.segment.to_native(), b.first_exit.to_native(), b.exit_count.to_native());
        let translations = f.fragment_translations(b.translation_offset.to_native(), b.translation_len.to_native(), pc, pc);
        let app_len = u16::try_from(b.app_len.to_native()).unwrap_or(u16::MAX);
        let fragment = Fragment::new(pc, app_len, start, b.code_len.to_native(), exits, &translations, b.lookup_target());
        f.registered.push(pc);
        stats::add(&STATS.blocks_registered, 1);
        Some(fragment)
    }

    /// The app's code in `[lo, hi)` changed: a file with a block there is
    /// retired (its blocks reach each other without the dispatcher, so
    /// they go as a whole): out of the lookup table, exits unlinked.
    /// Returns the tags of its registered fragments.
    pub(crate) fn retire_overlapping(&mut self, lo: u64, hi: u64, ibl: &mut IblTable) -> Vec<u64> {
        let mut tags = Vec::new();
        for f in self.files.iter_mut().filter(|f| !f.dead) {
            // Blocks are sorted by start and span at most a page and a bit.
            let from = lo.saturating_sub(f.module_base).saturating_sub(MAX_BLOCK_SPAN);
            let first = f.index.blocks.partition_point(|b| (b.module_offset.to_native() as u64) < from);
            let overlaps = f.index.blocks[first..]
                .iter()
                .map(|b| (f.module_base + b.module_offset.to_native() as u64, b.app_len.to_native() as u64))
                .take_while(|&(start, _)| start < hi)
                .any(|(start, len)| start + len > lo)
                || f.index.trace_spans.iter().any(|s| {
                    let start = f.module_base + s.module_offset.to_native() as u64;
                    start < hi && start + s.app_len.to_native() as u64 > lo
                });
            if overlaps {
                if let Some(handle) = f.lookup_handle {
                    file_lookup::withdraw(handle);
                }
                let heads = f.index.traces.iter().map(|t| t.head.to_native());
                for off in f.index.blocks.iter().map(|b| b.module_offset.to_native()).chain(heads) {
                    ibl.remove(f.module_base + off as u64);
                }
                f.unlink_all();
                f.dead = true;
                tags.append(&mut f.registered);
            }
        }
        tags
    }

    fn file_containing(&self, pc: u64) -> Option<&LoadedFile> {
        self.files.iter().find(|f| (f.map..f.map + f.len).contains(&pc))
    }

    /// Whether the slot `addr` belongs to a retired file (never relinked).
    pub(crate) fn in_retired_file(&self, addr: u64) -> bool {
        self.file_containing(addr).is_some_and(|f| f.dead)
    }

    /// The app pc and fixup at cache address `pc` in a file's block or
    /// trace that may not be registered.
    pub(crate) fn translation_at(&self, pc: u64) -> Option<(u64, Fixup)> {
        let f = self.file_containing(pc)?;
        if let Some(t) = f.trace_containing(pc) {
            let start = f.code_at(t.segment.to_native(), t.code_offset.to_native());
            // A trace's translations are from the module's base.
            return f.translation_in(start, t.translation_offset.to_native(), t.translation_len.to_native(), f.module_base, pc);
        }
        f.translation_at(f.block_containing(pc)?, pc)
    }

    /// The trace of `head` in the file in use for the module at `base`,
    /// for the trace table to adopt.
    pub(crate) fn trace_at(&self, head: u64, base: u64, identity: FileIdentity) -> Option<Trace> {
        let f = &self.files[self.file_in_use(base, identity)?];
        Some(f.trace(f.index.trace_at(module_offset(head, base)?)?))
    }

    /// `head`'s trace went: the exits of files led to it go back to their
    /// stubs.
    pub(crate) fn unlink_exits_to(&self, head: u64) {
        for f in self.files_holding(head) {
            for (patch, stub) in f.exits_to_trace(head) {
                crate::translate::link::unlink(patch, stub);
            }
        }
    }

    /// The files in use whose module holds `pc`.
    fn files_holding(&self, pc: u64) -> impl Iterator<Item = &LoadedFile> + '_ {
        self.files.iter().filter(move |f| !f.dead && module_offset(pc, f.module_base).is_some())
    }

    /// A thread runs the file code at `pc` and must soon reach the
    /// dispatcher: the exit slots it can reach go back to their stubs (the
    /// file's direct branches only go forward, so any path through its
    /// code soon meets one of them); the rest of the file stays linked.
    pub(crate) fn unlink_file_at(&self, pc: u64) -> bool {
        let Some(f) = self.file_containing(pc) else { return false };
        f.unlink_from(pc);
        true
    }
}

/// Whether the module file at `path`, with `identity` (not the one the
/// cache file `file` records), holds the content `hash` names: its lock
/// file notes so, or hashing the module says so (then noted there).
fn same_content(file: &[u8], path: &CStr, identity: FileIdentity, hash: &[u8; 32]) -> bool {
    if files::module_hash_noted(file, identity, hash) {
        return true;
    }
    let same = crate::os::modules::content_hash(path, identity).as_ref() == Some(hash);
    if same {
        files::note_module_hash(file, identity, hash);
    }
    same
}

/// Shows each client its data in the file; false if one rejects it.
fn resurrect(v: &persist::Validated<'static>, base: u64, map: u64, segments: &[(u64, u64)]) -> bool {
    let ix = v.index;
    for i in 0..crate::client_host::count() {
        let c = ix.clients.get(i);
        let ro: &[u8] = c.map_or(&[], |c| &c.ro);
        let zone = |z: u32| v.zones[z as usize].offset + map;
        let (rx, rw): (&[u8], &mut [u8]) = match (ix.client_zones.as_ref(), c) {
            // SAFETY: validation checked the ranges lie in these zones; the
            // W zone is mapped writable.
            (Some(z), Some(c)) => unsafe {
                (
                    core::slice::from_raw_parts((zone(z.1.to_native()) + c.rx_offset.to_native() as u64) as *const u8, c.rx_len.to_native() as usize),
                    core::slice::from_raw_parts_mut((zone(z.0.to_native()) + c.rw_offset.to_native() as u64) as *mut u8, c.rw_len.to_native() as usize),
                )
            },
            _ => (&[], &mut []),
        };
        let mut blocks = persisted_blocks(ix, base, segments, i);
        if !crate::client_host::resurrect(i, base, ro, rx, rw, &mut blocks) {
            return false;
        }
    }
    true
}

/// How a cache file was opened.
struct Opened {
    fd: sys::OwnedFd,
    /// This version passed every check before (its memo names it), or the
    /// cache server checked it whole: its zones need not be hashed.
    checked: bool,
    served: bool,
}

/// The cache file `file` of the directory `dir`, opened; None if there is
/// none. A version whose memo says it passed every check is opened here;
/// any other is asked of the cache server, whose descriptor spares the
/// process hashing its zones (warm runs of files the server published,
/// whose memos name them, never wait on the server).
fn open(dir: &CStr, file: &[u8]) -> Result<Option<Opened>, Unused> {
    let own = files::open_trusted(file);
    let vouched = own.as_ref().is_ok_and(|fd| crate::os::modules::identity_of(fd).is_some_and(|id| files::verified_before(file, id)));
    if !vouched && crate::options::get().persist_server {
        match crate::persistence::server::open_served(dir, files::file_name(file)) {
            Served::File(fd) => return files::trusted(fd).map(|fd| Some(Opened { fd, checked: true, served: true })).map_err(|_| Unused::Untrusted),
            Served::Absent if own.is_err() => return Ok(None),
            Served::Absent | Served::Unknown => {}
        }
    }
    match own {
        Ok(fd) => Ok(Some(Opened { fd, checked: vouched, served: false })),
        Err("absent") => Ok(None),
        Err(_) => Err(Unused::Untrusted),
    }
}

/// Maps and checks the file at `file` for the module at `base`; Ok(None)
/// if there is none.
fn load(cache: &mut CodeCache, dir: &CStr, file: &[u8], base: u64, end: u64, path: &CStr, identity: FileIdentity) -> Result<Option<LoadedFile>, Unused> {
    if !range_room() {
        return Err(Unused::NoRoom);
    }
    let Some(Opened { fd, checked, served }) = open(dir, file)? else { return Ok(None) };
    let file_identity = crate::os::modules::identity_of(&fd);
    let len = file_identity.map_or(0, |id| id.size);
    if len < persist::header::HEADER_LEN as u64 {
        return Err(Unused::Invalid(Reject::Truncated));
    }
    let Some(map) = cache.take_region(len) else {
        return Err(Unused::NoRoom);
    };
    // SAFETY: replaces part of the cache reservation that nothing uses.
    let r = unsafe { sys::mmap(map, len, sys::PROT_READ, sys::MAP_PRIVATE | sys::MAP_FIXED, fd.as_raw_fd() as i64, 0) };
    drop(fd);
    if r.is_err() {
        return Err(Unused::NoRoom);
    }
    let give_back = |why| {
        // SAFETY: our own mapping, returned to an inaccessible reservation.
        let _ = unsafe { sys::mmap(map, sys::page_up(len), sys::PROT_NONE, sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED | sys::MAP_NORESERVE, -1, 0) };
        Err(why)
    };
    // SAFETY: the mapping is len bytes long and stays mapped for good.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(map as *const u8, len as usize) };
    // The zones' hashes are checked once per version of the file (the
    // memo names the file's identity, which any write changes), and not
    // at all for a version the server checked.
    let depth = if checked { persist::Depth::Trusted } else { persist::Depth::Full };
    let v = match persist::validate_with(bytes, depth) {
        Ok(v) => v,
        Err(r) => return give_back(Unused::Invalid(r)),
    };
    if !checked {
        if let Some(id) = file_identity {
            files::note_verified(file, id);
        }
    }
    let want = crate::persistence::key::key_for(v.key.module_hash, base);
    if let Some(field) = v.key.mismatch(&want) {
        return give_back(Unused::Key(field));
    }
    let recorded = v.index.module.identity.as_slice().iter().map(|x| x.to_native()).collect::<Vec<_>>();
    let same_file = recorded == identity.to_array();
    if !same_file && !same_content(file, path, identity, &v.key.module_hash) {
        return give_back(Unused::ModuleChanged);
    }
    // Each zone gets its protection; W is private, rebased below.
    for z in &v.zones[1..] {
        let prot = match z.kind {
            ZoneKind::Exec => sys::PROT_READ | sys::PROT_EXEC,
            ZoneKind::Writable => sys::PROT_READ | sys::PROT_WRITE,
            ZoneKind::ReadOnly => sys::PROT_READ,
        };
        // SAFETY: a zone of our own mapping.
        if unsafe { sys::mprotect(map + z.offset, z.len, prot) }.is_err() {
            return give_back(Unused::NoRoom);
        }
    }
    // Without client block data, a W zone holds its base slot, exit
    // slots, traces' miss budgets, counting stubs' counters (counts, like
    // the budgets) and words nothing reads: its slots are
    // rebased a page at a time when code first jumps through them
    // (`slot_faults`), and loading writes only the base slots. A budget
    // is a count (from `TraceTable::MISS_BUDGET` down, past zero only to small
    // negatives), a canonical address to the rebasing, which leaves it
    // alone, as it does the data of clients whose data is plain (counts,
    // flags: `Client::block_data_is_plain`). Other client data may hold
    // any bits: then every slot is rebased now, each found through the
    // index's exits.
    let only_slots = v.index.block_data.is_empty() || crate::client_host::block_data_is_plain();
    // Every W page rebased now is written right away: one call instead
    // of a fault per page. The rest, code included, is paged in as it is
    // used: a read fault maps the 64 KiB around it from the page cache,
    // and a file holds the code of every run it merged, or of a whole
    // module translated ahead of time. Mapping all of a file's code at
    // load cost a warm `python3 -c pass` 1.8 MB more peak RSS and more
    // system time than faulting it in.
    for z in v.zones.iter().filter(|z| z.kind == ZoneKind::Writable && !only_slots) {
        sys::populate(map + z.offset, z.len, true);
    }
    let segments: Vec<(u64, u64)> = v
        .index
        .segments
        .iter()
        .map(|s| (map + v.zones[s.w_zone.to_native() as usize].offset, map + v.zones[s.x_zone.to_native() as usize].offset))
        .collect();
    // A zone of slots only is left to `slot_faults`, which rebases it now
    // if it must, every stored distance in order (cc1's AOT file has 2
    // million; finding each through the index's exits would read 32 MB
    // of it).
    let mut deferred = [false; persist::header::MAX_ZONES];
    for (s, seg) in v.index.segments.iter().enumerate() {
        let (w, x) = segments[s];
        let w_zone = seg.w_zone.to_native() as usize;
        let w_len = v.zones[w_zone].len;
        // SAFETY: validation checked every slot lies in this W zone, and
        // the zone is ours, mapped writable above.
        unsafe {
            if only_slots {
                if !core::mem::replace(&mut deferred[w_zone], true) {
                    slot_faults::defer(w, w_len, x);
                }
            } else {
                let first = seg.first_exit.to_native() as usize;
                let exit_slots = v.index.exits[first..first + seg.exit_count.to_native() as usize].iter().map(|e| e.slot.to_native());
                // The counting stubs' go slots are rebased as exit slots are.
                let go_slots = v.index.counting_stubs_in(s as u32).iter().map(|c| c.go_slot());
                for at in exit_slots.chain(go_slots) {
                    let slot = (w + at as u64) as *mut u64;
                    *slot = persist::exit_slots::resolve(*slot, x);
                }
            }
            *((w + seg.base_slot.to_native() as u64) as *mut u64) = base;
        }
    }
    if !resurrect(&v, base, map, &segments) {
        return give_back(Unused::Rejected);
    }
    publish_range(map, map + len);
    Ok(Some(LoadedFile {
        module_base: base,
        module_end: end,
        module_path: *path,
        identity,
        module_hash: v.key.module_hash,
        map,
        len,
        index: v.index,
        segments,
        zones: v.zones.len(),
        registered: Vec::new(),
        dead: false,
        served,
        lookup_handle: None,
        code_order: spin::Once::new(),
    }))
}
