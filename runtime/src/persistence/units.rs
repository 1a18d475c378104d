//! Persistable code in the making. Under `-persist`, the blocks of a
//! module that every client marked persistable are emitted into segments
//! of their own: a W region growing down and an X region growing up from
//! the same boundary. Code reaches its slots (the module base, exit slots,
//! client block data) RIP-relative within the segment, so a segment can
//! be written out as a (W, X) zone pair whose only changes are its exits.

use alloc::vec::Vec;

use crate::translate::code_cache::CodeCache;
use crate::translate::segment::LiveSegment;
use crate::os::modules::FileIdentity;
use crate::os::startup_args::CStr;

/// Sizes of a module's first segment and of later ones (reservations in
/// the code cache; only touched pages cost memory).
const FIRST_SEGMENT: u64 = 1 << 20;
const LATER_SEGMENT: u64 = 8 << 20;
/// Segments of ahead-of-time translation, which fills them: fewer, larger
/// zones (a file holds at most `persist::header::MAX_ZONES`).
const AOT_SEGMENT: u64 = 32 << 20;
/// Data a client allocated for a block.
#[derive(Clone, Copy)]
pub(crate) struct BlockData {
    pub(crate) client: u32,
    pub(crate) addr: u64,
    pub(crate) len: u32,
}

/// A block emitted into a unit: 24 bytes, where addresses and a `Vec` of
/// its own took 48 (a cold python3 -c pass keeps 35,000 of them).
pub(crate) struct UnitBlock {
    pub(crate) tag: u64,
    /// Where its code starts, from its segment's lowest address.
    code_offset: u32,
    pub(crate) segment: u32,
    /// Its client block data: `Unit::block_data[data_at..][..data_len]`.
    data_at: u32,
    data_len: u16,
    /// Built by `-aot`'s discovery, not reached by running.
    pub(crate) ahead_of_time: bool,
}

/// A trace emitted into a unit (its blocks all the unit's module's).
pub(crate) struct UnitTrace {
    pub(crate) head: u64,
    pub(crate) start: u64,
    pub(crate) segment: u32,
    /// `[tag, end)` of each block it holds.
    pub(crate) spans: Vec<(u64, u64)>,
    /// Its budget of missed in-line checks (a W slot), or 0.
    pub(crate) budget: u64,
}

/// The persistable code of one module.
pub(crate) struct Unit {
    pub(crate) module_base: u64,
    /// One past the module's last executable byte.
    pub(crate) module_end: u64,
    /// Some of the module's code was flushed (rewritten, made writable or
    /// non-executable): blocks built since may come from code that is not
    /// the file's, so nothing of this unit is persisted.
    pub(crate) tainted: bool,
    pub(crate) path: CStr,
    pub(crate) identity: FileIdentity,
    pub(crate) segments: Vec<LiveSegment>,
    pub(crate) blocks: Vec<UnitBlock>,
    /// The blocks' client data, in the order of `blocks`.
    block_data: Vec<BlockData>,
    pub(crate) traces: Vec<UnitTrace>,
    /// Module offsets of blocks of the file in use that indirect branches
    /// reached in this run, which the file does not flag as lookup
    /// targets yet (its runs then enter them at load).
    pub(crate) lookup_marks: Vec<u32>,
}

impl Unit {
    /// Records the block of `tag` emitted at `start` into segment
    /// `segment`, with its client data.
    pub(crate) fn push_block(&mut self, tag: u64, start: u64, segment: u32, data: &[BlockData], ahead_of_time: bool) {
        let code_offset = u32::try_from(start - self.segments[segment as usize].lo).expect("a block within its segment");
        let data_at = u32::try_from(self.block_data.len()).expect("fewer than 2^32 client data");
        let data_len = u16::try_from(data.len()).expect("fewer than 2^16 client data a block");
        self.block_data.extend_from_slice(data);
        self.blocks.push(UnitBlock { tag, code_offset, segment, data_at, data_len, ahead_of_time });
    }

    /// Where the code of `block` (one of `blocks`) starts.
    pub(crate) fn start_of(&self, block: &UnitBlock) -> u64 {
        self.segments[block.segment as usize].lo + block.code_offset as u64
    }

    /// The client data of `block` (one of `blocks`).
    pub(crate) fn data_of(&self, block: &UnitBlock) -> &[BlockData] {
        &self.block_data[block.data_at as usize..][..block.data_len as usize]
    }

    /// The segment to emit the next block into, with room for it (a large
    /// one when translating `ahead_of_time`).
    pub(crate) fn current_segment(&mut self, cache: &mut CodeCache, ahead_of_time: bool) -> Option<u32> {
        if self.segments.last().is_none_or(|s| !s.has_room_for_a_block()) {
            let len = if ahead_of_time {
                AOT_SEGMENT
            } else if self.segments.is_empty() {
                FIRST_SEGMENT
            } else {
                LATER_SEGMENT
            };
            let region = cache.take_region(len)?;
            self.segments.push(LiveSegment::new(region, len, self.module_base));
        }
        Some(self.segments.len() as u32 - 1)
    }
}

#[derive(Default)]
pub(crate) struct Units {
    pub(crate) units: Vec<Unit>,
    /// Code ranges that changed during the run: a unit created later for a
    /// module overlapping one (its code was patched before it ran, as text
    /// relocations are) is tainted from the start.
    changed: Vec<(u64, u64)>,
}

impl Units {
    /// The index in `units` of the unit of the module at `base`, created
    /// on first use.
    pub(crate) fn unit_for(&mut self, base: u64, end: u64, path: CStr, identity: FileIdentity) -> usize {
        let i = match self.units.iter().position(|u| u.module_base == base && u.identity == identity) {
            Some(i) => i,
            None => {
                let tainted = self.changed.iter().any(|&(lo, hi)| base < hi && lo < end);
                self.units.push(Unit {
                    module_base: base,
                    module_end: end,
                    tainted,
                    path,
                    identity,
                    segments: Vec::new(),
                    blocks: Vec::new(),
                    block_data: Vec::new(),
                    traces: Vec::new(),
                    lookup_marks: Vec::new(),
                });
                self.units.len() - 1
            }
        };
        let unit = &mut self.units[i];
        unit.module_end = unit.module_end.max(end);
        i
    }

    /// Takes the units of the module at `base` out (the next block of the
    /// module starts a new one).
    pub(crate) fn retire(&mut self, base: u64) -> Vec<Unit> {
        let (retired, kept) = core::mem::take(&mut self.units).into_iter().partition(|u| u.module_base == base);
        self.units = kept;
        retired
    }

    /// Code in `[lo, hi)` was flushed (or may change): the units of the
    /// modules it overlaps are not persisted.
    pub(crate) fn taint(&mut self, lo: u64, hi: u64) {
        // Once a range: a JIT flushes the same pages over and over (a
        // loop rewriting a function 200,000 times kept 8 MB of them).
        if !self.changed.iter().any(|&(a, b)| a <= lo && hi <= b) {
            self.changed.push((lo, hi));
        }
        for u in self.units.iter_mut().filter(|u| u.module_base < hi && lo < u.module_end) {
            u.tainted = true;
        }
    }
}
