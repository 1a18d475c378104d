//! The fragment table: every block in the code cache, by the app pc it
//! starts at, with what linking and fault translation need.

use alloc::boxed::Box;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::translate::address_map::AddressMap;
use crate::translate::mangle::Fixup;
use crate::translate::retired::Retired;
use crate::translate::tags_by_page::TagsByPage;

/// What linking an exit rewrites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Patch {
    /// The 4-byte aligned rel32 field of a branch in the cache.
    Rel32(u64),
    /// The 8-byte W slot a mapped file's `jmp [rip + slot]` goes through.
    Slot(u64),
}

/// A [`Patch`] in one word, as fragments keep them (a slot's address
/// with the top bit set: addresses here are user space, below 2^47).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PackedPatch(u64);

const SLOT_BIT: u64 = 1 << 63;

impl From<Patch> for PackedPatch {
    fn from(p: Patch) -> PackedPatch {
        match p {
            Patch::Rel32(site) => PackedPatch(site),
            Patch::Slot(slot) => PackedPatch(slot | SLOT_BIT),
        }
    }
}

impl From<PackedPatch> for Patch {
    fn from(p: PackedPatch) -> Patch {
        if p.0 & SLOT_BIT != 0 { Patch::Slot(p.0 & !SLOT_BIT) } else { Patch::Rel32(p.0) }
    }
}

/// A direct exit of a fragment, as fragments hand them out; they keep
/// it in [`ExitRecord::BYTES`] bytes ([`ExitRecord::to_bytes`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ExitRecord {
    patch: PackedPatch,
    /// The exit stub the branch points at while unlinked.
    pub(crate) stub: u64,
    pub(crate) target: u64,
    /// Its W slot's distance from the patched field (0: none).
    slot_from_patch: i32,
    /// How far before the patched rel32 field the branch starts.
    branch_to_field: u8,
    /// The branch's condition code (`NO_COND`: a `jmp`).
    cond: u8,
    /// Linked to the target's fragment when emitted.
    pub(crate) prelinked: bool,
}

const NO_COND: u8 = 0x7f;

/// Where the packed second word of an exit's bytes keeps what (the patched
/// address is a user-space address, below 2^47).
const PATCH_BITS: u64 = (1 << 47) - 1;
const PACKED_SLOT_BIT: u64 = 1 << 47;
const BRANCH_SHIFT: u32 = 48;
const COND_SHIFT: u32 = 56;
const PRELINKED_BIT: u64 = 1 << 63;

impl ExitRecord {
    /// An emitted exit: `branch` (with condition `cond`) patched at the
    /// rel32 field `patch_site`, and its W slot `slot` in a persistable
    /// segment (else 0), for writing it to a file.
    pub(crate) fn emitted(patch_site: u64, stub: u64, target: u64, prelinked: bool, branch: u64, cond: Option<iced_x86::ConditionCode>, slot: u64) -> ExitRecord {
        ExitRecord {
            patch: Patch::Rel32(patch_site).into(),
            stub,
            target,
            slot_from_patch: if slot == 0 { 0 } else { i32::try_from(slot.wrapping_sub(patch_site) as i64).expect("a segment's W slot near its code") },
            branch_to_field: u8::try_from(patch_site - branch).expect("a branch's rel32 field within its first bytes"),
            cond: cond.map_or(NO_COND, |c| c as u8),
            prelinked,
        }
    }

    /// A mapped file's exit, through its W slot `slot`.
    pub(crate) fn through_slot(slot: u64, stub: u64, target: u64, prelinked: bool) -> ExitRecord {
        ExitRecord { patch: Patch::Slot(slot).into(), stub, target, slot_from_patch: 0, branch_to_field: 0, cond: NO_COND, prelinked }
    }

    /// The bytes a fragment keeps it in: its target, its patched address
    /// with the branch's shape and whether it was linked when emitted,
    /// then its stub's and its W slot's distances from the patched
    /// address (all of them in the code cache's one reservation).
    pub(crate) const BYTES: usize = 24;

    pub(crate) fn to_bytes(&self) -> [u8; Self::BYTES] {
        let (at, slot_bit) = match self.patch() {
            Patch::Rel32(site) => (site, 0),
            Patch::Slot(slot) => (slot, PACKED_SLOT_BIT),
        };
        debug_assert!(at <= PATCH_BITS);
        let packed = at | slot_bit | (self.branch_to_field as u64) << BRANCH_SHIFT | (self.cond as u64) << COND_SHIFT | if self.prelinked { PRELINKED_BIT } else { 0 };
        let stub_from_patch = i32::try_from(self.stub.wrapping_sub(at) as i64).expect("an exit's stub within the code cache of its patched address");
        let mut out = [0u8; Self::BYTES];
        out[..8].copy_from_slice(&self.target.to_le_bytes());
        out[8..16].copy_from_slice(&packed.to_le_bytes());
        out[16..20].copy_from_slice(&stub_from_patch.to_le_bytes());
        out[20..].copy_from_slice(&self.slot_from_patch.to_le_bytes());
        out
    }

    pub(crate) fn from_bytes(b: &[u8; Self::BYTES]) -> ExitRecord {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let half = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let packed = word(8);
        let at = packed & PATCH_BITS;
        ExitRecord {
            patch: if packed & PACKED_SLOT_BIT != 0 { Patch::Slot(at) } else { Patch::Rel32(at) }.into(),
            stub: at.wrapping_add(half(16) as i64 as u64),
            target: word(0),
            slot_from_patch: half(20),
            branch_to_field: (packed >> BRANCH_SHIFT) as u8,
            cond: (packed >> COND_SHIFT) as u8 & 0x7f,
            prelinked: packed & PRELINKED_BIT != 0,
        }
    }

    pub(crate) fn patch(&self) -> Patch {
        self.patch.into()
    }

    /// The branch instruction's address (0 for a mapped file's exit).
    pub(crate) fn branch(&self) -> u64 {
        match self.patch() {
            Patch::Rel32(site) => site - self.branch_to_field as u64,
            Patch::Slot(_) => 0,
        }
    }

    pub(crate) fn cond(&self) -> Option<iced_x86::ConditionCode> {
        (self.cond != NO_COND).then(|| iced_x86::ConditionCode::values().nth(self.cond as usize).expect("a condition code"))
    }

    /// The exit's W slot: a mapped file's, or one in a persistable
    /// segment; 0 for an exit of code in the cache.
    pub(crate) fn slot(&self) -> u64 {
        match self.patch() {
            Patch::Slot(slot) => slot,
            Patch::Rel32(_) if self.slot_from_patch == 0 => 0,
            Patch::Rel32(site) => site.wrapping_add(self.slot_from_patch as i64 as u64),
        }
    }
}

pub(crate) struct Fragment {
    pub(crate) tag: u64,
    pub(crate) start: u64,
    /// Its exits ([`ExitRecord::BYTES`] each), then its translation
    /// points: each point where the app pc or the state fixup changes, in
    /// cache order, for translating a fault in the cache back to the
    /// application, packed as files pack them (`persist::translations`,
    /// app pcs as offsets from the tag, a few bytes a point), since only
    /// faults and signals read them. One allocation for both, fixed once
    /// built: a cold python3 -c pass has 38,000 blocks.
    tail: Box<[u8]>,
    /// (patch, stub) of every exit linked to this fragment, to unlink
    /// them when it is flushed.
    pub(crate) incoming: Box<[(PackedPatch, u64)]>,
    pub(crate) size: u32,
    exit_count: u32,
    /// How many app bytes from the tag the block was built from (a block
    /// spans at most [`MAX_BLOCK_SPAN`]; a trace, its head block).
    pub(crate) app_len: u16,
    /// An indirect branch reached it (it is in the lookup table): a
    /// persisted file lists it, for loaders to enter at once.
    pub(crate) lookup_target: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Translation {
    pub(crate) cache_offset: u32,
    pub(crate) app_pc: u64,
    pub(crate) fixup: Fixup,
}

/// `points` (a fragment's, in cache order) packed for the fragment of
/// `tag`.
pub(crate) fn pack_translations(tag: u64, points: &[Translation]) -> Vec<u8> {
    // Room for the usual 3 bytes a point: one allocation, not a growth
    // byte by byte.
    let mut out = Vec::with_capacity(points.len() * 3);
    persist::translations::pack(
        &mut out,
        points.iter().map(|t| persist::translations::Entry {
            cache_offset: t.cache_offset,
            // A trace's blocks may lie before its head: wrapping, and
            // sign-extended back.
            app_offset: t.app_pc.wrapping_sub(tag) as u32,
            fixup: t.fixup.encode(),
        }),
    );
    out
}

// A cold python3 -c pass keeps 38,000 of them: the heap's 64-byte class.
const _: () = assert!(core::mem::size_of::<Fragment>() <= 64);

/// [`Fragment::app_len`] of a block from `tag` to `app_end` (a length a
/// file may claim past any block's saturates: flushing looks for blocks
/// [`MAX_BLOCK_SPAN`] back at most).
pub(crate) fn app_len(tag: u64, app_end: u64) -> u16 {
    u16::try_from(app_end.saturating_sub(tag)).unwrap_or(u16::MAX)
}

impl Fragment {
    /// The fragment of `tag` whose code is `[start, start + size)`, with
    /// `exits` and its packed `translations` ([`pack_translations`]).
    pub(crate) fn new(tag: u64, app_len: u16, start: u64, size: u32, exits: impl ExactSizeIterator<Item = ExitRecord>, translations: &[u8], lookup_target: bool) -> Fragment {
        let exit_count = u32::try_from(exits.len()).expect("fewer than 2^32 exits");
        let mut tail = Vec::with_capacity(exits.len() * ExitRecord::BYTES + translations.len());
        exits.for_each(|e| tail.extend_from_slice(&e.to_bytes()));
        tail.extend_from_slice(translations);
        Fragment { tag, start, tail: tail.into_boxed_slice(), incoming: Box::default(), size, exit_count, app_len, lookup_target }
    }

    pub(crate) fn exit_count(&self) -> usize {
        self.exit_count as usize
    }

    /// Its exit `i`.
    pub(crate) fn exit(&self, i: usize) -> ExitRecord {
        let bytes = &self.tail[i * ExitRecord::BYTES..][..ExitRecord::BYTES];
        ExitRecord::from_bytes(bytes.try_into().expect("an exit's bytes"))
    }

    /// Its exits, in the order they were given.
    pub(crate) fn exits(&self) -> impl ExactSizeIterator<Item = ExitRecord> + '_ {
        (0..self.exit_count()).map(|i| self.exit(i))
    }

    /// Its exit `i` was not left linked when emitted after all.
    pub(crate) fn unmark_prelinked(&mut self, i: usize) {
        let exit = ExitRecord { prelinked: false, ..self.exit(i) };
        self.tail[i * ExitRecord::BYTES..][..ExitRecord::BYTES].copy_from_slice(&exit.to_bytes());
    }

    /// Its translation points as packed ([`pack_translations`]).
    pub(crate) fn packed_translations(&self) -> &[u8] {
        &self.tail[self.exit_count() * ExitRecord::BYTES..]
    }

    /// Forgets the exits linked to it, handing them over.
    pub(crate) fn take_incoming(&mut self) -> Box<[(PackedPatch, u64)]> {
        core::mem::take(&mut self.incoming)
    }

    /// One past the last app byte the block was built from.
    pub(crate) fn app_end(&self) -> u64 {
        self.tag + self.app_len as u64
    }

    /// Records that the exit patched at `patch` (with its `stub`) jumps
    /// here. The list grows one entry at a time: most fragments have one
    /// or two links in, and `Vec`'s first growth to four took a 128-byte
    /// block of the runtime's heap for each of them (cold python3 -c pass:
    /// 38,000 blocks).
    pub(crate) fn add_incoming(&mut self, patch: Patch, stub: u64) {
        let mut incoming = self.take_incoming().into_vec();
        // Exactly one more: the heap grows a block within its size class
        // in place, and a fragment keeps its list in a boxed slice, 8
        // bytes less than a `Vec` (the fragment fits the 64-byte class).
        incoming.reserve_exact(1);
        incoming.push((patch.into(), stub));
        self.incoming = incoming.into_boxed_slice();
    }

    /// The translation points, decoded, in cache order.
    pub(crate) fn translations(&self) -> impl Iterator<Item = Translation> + '_ {
        persist::translations::unpack(self.packed_translations()).map(|e| Translation {
            cache_offset: e.cache_offset,
            app_pc: self.tag.wrapping_add(e.app_offset as i32 as i64 as u64),
            // The runtime packed these itself: every code decodes.
            fixup: crate::translate::mangle::decode_fixup(e.fixup).unwrap_or(Fixup::None),
        })
    }

    /// The translation in force at cache address `pc` inside this fragment.
    pub(crate) fn translation_at(&self, pc: u64) -> Option<Translation> {
        let offset = pc.checked_sub(self.start)? as u32;
        self.translations().take_while(|t| t.cache_offset <= offset).last()
    }
}

#[derive(Default)]
pub(crate) struct FragmentTable {
    /// Boxed: the table's buckets are 16 bytes, not the fragment's 112,
    /// and growing it (doubling, old and new tables at once) moves no
    /// fragment (cold python3 -c pass: 38,000 of them).
    by_tag: HashMap<u64, Box<Fragment>>,
    /// Tag by cache start, of the live fragments built in the cache (a
    /// flushed one's record answers for its code in `retired`).
    by_start: AddressMap<u64>,
    /// Fragments removed while a thread may still run them (`retired.rs`).
    retired: Retired,
    /// Live fragments' tags by app page, for flushing a range (the
    /// fragment has its end).
    by_app: TagsByPage,
    /// The app bytes of sandboxed fragments (`smc::Guard::Sandboxed`), by
    /// tag: nothing links to them and the lookup table does not hold them,
    /// so every entry passes the dispatcher, which compares these first.
    sandboxed: HashMap<u64, Vec<u8>>,
}

/// Blocks never extend further than this past their tag (one page plus one
/// straddling instruction).
const MAX_BLOCK_SPAN: u64 = 4096 + 16;

impl FragmentTable {
    pub(crate) fn get(&self, tag: u64) -> Option<&Fragment> {
        self.by_tag.get(&tag).map(|f| &**f)
    }

    pub(crate) fn insert(&mut self, fragment: Fragment) {
        self.by_start.insert(fragment.start, fragment.tag);
        self.insert_by_tag(fragment);
    }

    /// Inserts a loaded file's block, registered: not by its cache
    /// address, since the file answers for its code (`LoadedFiles`'
    /// `translation_at`, `unlink_file_at`). The first run after
    /// ahead-of-time translation registers thousands, in the order it
    /// reaches them; entered by address, each moved half a page of the
    /// index (3% of that run).
    pub(crate) fn insert_from_file(&mut self, fragment: Fragment) {
        self.insert_by_tag(fragment);
    }

    fn insert_by_tag(&mut self, fragment: Fragment) {
        self.by_app.insert(fragment.tag);
        for exit in fragment.exits().filter(|e| e.prelinked) {
            if let Some(target) = self.by_tag.get_mut(&exit.target) {
                target.add_incoming(exit.patch(), exit.stub);
            }
        }
        self.by_tag.insert(fragment.tag, Box::new(fragment));
    }

    /// The fragment for `tag` was entered in the lookup table.
    pub(crate) fn note_lookup_target(&mut self, tag: u64) {
        if let Some(f) = self.by_tag.get_mut(&tag) {
            f.lookup_target = true;
        }
    }

    /// The fragment for `tag` if other code may jump to it directly.
    pub(crate) fn link_target(&self, tag: u64) -> Option<&Fragment> {
        self.by_tag.get(&tag).map(|f| &**f).filter(|_| !self.sandboxed.contains_key(&tag))
    }

    /// Marks the fragment for `tag` sandboxed, with the app bytes it was
    /// built from.
    pub(crate) fn sandbox(&mut self, tag: u64, bytes: Vec<u8>) {
        self.sandboxed.insert(tag, bytes);
    }

    pub(crate) fn is_sandboxed(&self, tag: u64) -> bool {
        self.sandboxed.contains_key(&tag)
    }

    /// Whether the app rewrote the bytes of sandboxed fragment `tag`.
    pub(crate) fn sandbox_stale(&self, tag: u64) -> bool {
        self.sandboxed.get(&tag).is_some_and(|bytes| {
            // SAFETY: the block's bytes, still mapped: unmapping them would
            // have flushed the fragment.
            let now = unsafe { core::slice::from_raw_parts(tag as *const u8, bytes.len()) };
            now != bytes.as_slice()
        })
    }

    /// Records that the exit patched at `patch` (with its `stub`) now
    /// jumps to the fragment for `target`.
    pub(crate) fn note_link(&mut self, target: u64, patch: Patch, stub: u64) {
        if let Some(f) = self.by_tag.get_mut(&target) {
            f.add_incoming(patch, stub);
        }
    }

    /// Points the exits linked to the fragment for `tag` back at their
    /// stubs (it became a trace head: entries to it are counted).
    pub(crate) fn unlink_incoming(&mut self, tag: u64) {
        if let Some(f) = self.by_tag.get_mut(&tag) {
            for (patch, stub) in f.take_incoming() {
                crate::translate::link::unlink(patch.into(), stub);
            }
        }
    }

    /// Removes the fragment of `tag`, if there is one: exits linked to it
    /// go back to their stubs, and one whose code is in the cache is kept
    /// retired (a thread may be running it).
    pub(crate) fn remove(&mut self, tag: u64) -> bool {
        self.by_app.remove(tag);
        self.sandboxed.remove(&tag);
        let Some(f) = self.by_tag.remove(&tag) else { return false };
        for &(patch, stub) in &*f.incoming {
            crate::translate::link::unlink(patch.into(), stub);
        }
        // A loaded file's block is not entered by cache address: the file
        // answers for its code, retired or not.
        if self.by_start.at_or_below(f.start) == Some((f.start, tag)) {
            // The retired record answers for its code from now on.
            self.by_start.remove(f.start);
            self.retired.keep(*f);
        }
        true
    }

    /// Removes every fragment built from app bytes in `[lo, hi)`: exits
    /// linked to them go back to their stubs; returns their tags (for the
    /// lookup table).
    pub(crate) fn flush_range(&mut self, lo: u64, hi: u64) -> Vec<u64> {
        let mut tags = self.by_app.in_range(lo.saturating_sub(MAX_BLOCK_SPAN), hi);
        tags.retain(|tag| self.by_tag.get(tag).is_some_and(|f| f.app_end() > lo));
        for &tag in &tags {
            self.remove(tag);
        }
        tags
    }

    /// Forgets every fragment whose tag is in `[lo, hi)`, entirely (its
    /// cache address too), without unlinking anything: only for code no
    /// thread runs again, whose memory is about to be reused (ahead-of-time
    /// translation, after the program's entry). Returns their tags.
    pub(crate) fn drop_range(&mut self, lo: u64, hi: u64) -> Vec<u64> {
        // Whole maps in one pass each: a batch is a large part of them.
        let tags = self.by_app.take_range(lo, hi);
        let inside = |tag: &u64| (lo..hi).contains(tag);
        self.sandboxed.retain(|tag, _| !inside(tag));
        self.by_tag.retain(|tag, _| !inside(tag));
        self.by_start.retain(|_, tag| !inside(&tag));
        tags
    }

    /// Frees the retired fragments no thread runs any more: those retired
    /// before epoch `oldest` (`quiescence.rs`). Returns how many went.
    pub(crate) fn free_retired_before(&mut self, oldest: u64) -> u64 {
        self.retired.free_before(oldest, |_| false)
    }

    /// Forgets the retired fragments whose code starts in `[lo, hi)`, which
    /// the cache takes back.
    pub(crate) fn forget_retired_code_in(&mut self, lo: u64, hi: u64) {
        self.retired.forget_code_in(lo, hi);
    }

    /// The fragment whose code contains cache address `pc`, live or
    /// retired (not a loaded file's: [`FragmentTable::insert_from_file`]).
    pub(crate) fn containing(&self, pc: u64) -> Option<&Fragment> {
        let live = self.by_start.at_or_below(pc).and_then(|(start, tag)| {
            let f = self.by_tag.get(&tag)?;
            (f.start == start && pc < f.start + f.size as u64).then_some(&**f)
        });
        live.or_else(|| self.retired.answering_for(pc))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fragment with no exits and no translations.
    pub(crate) fn fragment(tag: u64, app_len: u64, start: u64, size: u32) -> Fragment {
        Fragment::new(tag, app_len as u16, start, size, core::iter::empty(), &[], false)
    }

    /// A fragment at 0x5000 whose one exit, linked to `target`, goes
    /// through the W slot at `slot` (a mapped file's form).
    fn caller_through_slot(slot: u64, stub: u64, target: u64) -> Fragment {
        Fragment::new(0x5000, 0x10, 0x9100, 0x20, [ExitRecord::through_slot(slot, stub, target, true)].into_iter(), &[], false)
    }

    #[test]
    fn finds_fragments_by_tag_and_cache_address() {
        let mut t = FragmentTable::default();
        t.insert(fragment(0x1000, 0x10, 0x9000, 0x40));
        t.insert(fragment(0x2000, 0x08, 0x9040, 0x20));
        assert_eq!(t.get(0x1000).map(|f| f.start), Some(0x9000));
        assert_eq!(t.containing(0x9000).map(|f| f.tag), Some(0x1000));
        assert_eq!(t.containing(0x903f).map(|f| f.tag), Some(0x1000));
        assert_eq!(t.containing(0x9040).map(|f| f.tag), Some(0x2000));
        assert!(t.containing(0x9060).is_none(), "past the last fragment's code");
        assert!(t.containing(0x8fff).is_none());
        assert!(t.remove(0x1000));
        assert!(t.get(0x1000).is_none(), "removed");
        // A thread may still run it: its code answers, retired, also once
        // the tag has a new block elsewhere.
        assert_eq!(t.containing(0x9010).map(|f| (f.tag, f.start)), Some((0x1000, 0x9000)));
        t.insert(fragment(0x1000, 0x10, 0x9080, 0x40));
        assert_eq!(t.containing(0x9010).map(|f| f.start), Some(0x9000));
        assert_eq!(t.containing(0x9090).map(|f| f.start), Some(0x9080));
        assert!(!t.remove(0x3000), "no such fragment");
    }

    #[test]
    fn flushing_a_range_removes_overlapping_blocks_and_unlinks_their_callers() {
        let mut t = FragmentTable::default();
        // A W slot standing in for a mapped file's exit: linking stores the
        // target there, unlinking the stub.
        let slot = Box::new(core::sync::atomic::AtomicU64::new(0));
        let slot_addr = &*slot as *const _ as u64;
        // Stubs lie near their slots, in the code cache.
        let stub = slot_addr + 0x9ff0;
        let caller = caller_through_slot(slot_addr, stub, 0x1ff8);
        // Starts before the range and ends inside it.
        t.insert(fragment(0x1ff8, 0x10, 0x9000, 0x40));
        t.insert(fragment(0x3000, 0x10, 0x9040, 0x40));
        t.insert(caller);
        slot.store(0x9000, core::sync::atomic::Ordering::Relaxed);

        let mut flushed = t.flush_range(0x2000, 0x3000);
        flushed.sort();
        assert_eq!(flushed, [0x1ff8]);
        assert!(t.get(0x1ff8).is_none());
        assert!(t.get(0x3000).is_some(), "[0x3000, ..) is outside [0x2000, 0x3000)");
        assert_eq!(slot.load(core::sync::atomic::Ordering::Relaxed), stub, "the caller's exit is back at its stub");
    }

    #[test]
    fn dropping_a_range_forgets_its_blocks_and_their_code_and_writes_nothing() {
        let mut t = FragmentTable::default();
        let slot = Box::new(core::sync::atomic::AtomicU64::new(0x9000));
        let slot_addr = &*slot as *const _ as u64;
        let caller = caller_through_slot(slot_addr, slot_addr + 0x9ff0, 0x1000);
        t.insert(fragment(0x1000, 0x10, 0x9000, 0x40));
        t.insert(fragment(0x1010, 0x10, 0x9040, 0x40));
        t.insert(caller);
        let mut dropped = t.drop_range(0x1000, 0x2000);
        dropped.sort();
        assert_eq!(dropped, [0x1000, 0x1010]);
        assert!(t.get(0x1000).is_none() && t.get(0x1010).is_none());
        assert!(t.containing(0x9000).is_none() && t.containing(0x9050).is_none(), "their code is no fragment's");
        assert_eq!(t.containing(0x9100).map(|f| f.tag), Some(0x5000));
        assert_eq!(slot.load(core::sync::atomic::Ordering::Relaxed), 0x9000, "no code is written: it may be reused");
    }

    #[test]
    fn sandboxed_fragments_are_never_link_targets_and_notice_rewrites() {
        let mut t = FragmentTable::default();
        let code = Box::new([0x90u8, 0x90, 0xc3]);
        let tag = code.as_ptr() as u64;
        t.insert(fragment(tag, 3, 0x9000, 0x10));
        assert!(t.link_target(tag).is_some());
        t.sandbox(tag, code.to_vec());
        assert!(t.link_target(tag).is_none());
        assert!(!t.sandbox_stale(tag));
        let mut code = code;
        // SAFETY: our own buffer; volatile so the write is not elided.
        unsafe { core::ptr::write_volatile(&mut code[1], 0xcc) };
        assert!(t.sandbox_stale(tag));
    }

    #[test]
    fn exit_records_keep_what_they_were_given_in_their_bytes() {
        let through_bytes = |e: ExitRecord| ExitRecord::from_bytes(&e.to_bytes());
        for cond in [None, Some(iced_x86::ConditionCode::e), Some(iced_x86::ConditionCode::g), Some(iced_x86::ConditionCode::le)] {
            for slot in [0, 0x7f00_0000_1000, 0x7eff_ff00_0008] {
                for (stub, prelinked) in [(0x7f00_0020_0000, true), (0x7f00_0000_0ff0, false)] {
                    let e = through_bytes(ExitRecord::emitted(0x7f00_0010_0004, stub, 0x7fff_ffff_f000, prelinked, 0x7f00_0010_0002, cond, slot));
                    assert_eq!(e.patch(), Patch::Rel32(0x7f00_0010_0004));
                    assert_eq!((e.branch(), e.cond(), e.slot()), (0x7f00_0010_0002, cond, slot));
                    assert_eq!((e.stub, e.target, e.prelinked), (stub, 0x7fff_ffff_f000, prelinked));
                }
            }
        }
        let e = through_bytes(ExitRecord::through_slot(0x7f00_0030_0008, 0x7f00_0040_0000, 0x55_0000_1000, true));
        assert_eq!((e.patch(), e.slot(), e.cond(), e.prelinked), (Patch::Slot(0x7f00_0030_0008), 0x7f00_0030_0008, None, true));
        assert_eq!((e.stub, e.target), (0x7f00_0040_0000, 0x55_0000_1000));
        let packed: PackedPatch = Patch::Slot(0x7fff_ffff_f000).into();
        assert_eq!(Patch::from(packed), Patch::Slot(0x7fff_ffff_f000));
    }

    #[test]
    fn translation_at_picks_the_last_point_at_or_before_the_pc() {
        let spilled = Fixup::Spilled2 { reg: 1, slot: 0x40, reg2: 0, slot2: 0x48 };
        // The last point's app pc lies before the tag, as a trace's may.
        let points: Vec<Translation> = [(0, 0x1000, Fixup::None), (7, 0x1003, spilled), (20, 0xff8, Fixup::RspMoved(-8))]
            .into_iter()
            .map(|(cache_offset, app_pc, fixup)| Translation { cache_offset, app_pc, fixup })
            .collect();
        let exit = ExitRecord::emitted(0x9010, 0x9ff0, 0x2000, false, 0x900f, None, 0);
        let f = Fragment::new(0x1000, 0x10, 0x9000, 0x40, [exit].into_iter(), &pack_translations(0x1000, &points), false);
        assert!(f.translations().eq(points.iter().copied()));
        assert_eq!(f.exits().collect::<Vec<_>>(), [exit], "the exits before the points are the fragment's own");
        assert_eq!(f.translation_at(0x9000).map(|t| t.app_pc), Some(0x1000));
        assert_eq!(f.translation_at(0x9006).map(|t| t.app_pc), Some(0x1000));
        assert_eq!(f.translation_at(0x9007).map(|t| t.app_pc), Some(0x1003));
        assert_eq!(f.translation_at(0x9030).map(|t| (t.app_pc, t.fixup)), Some((0xff8, Fixup::RspMoved(-8))));
        assert_eq!(f.translation_at(0x9008).map(|t| t.fixup), Some(spilled));
        assert!(f.translation_at(0x8fff).is_none());
    }
}
