//! The index, archived with rkyv in the R zone: the module the file was
//! made from, the code segments (a W zone and the X zone right after it),
//! the blocks sorted by module offset, their exits, fault translations and
//! client data, and the traces built from them.

use alloc::string::String;
use alloc::vec::Vec;

use rkyv::{Archive, Deserialize, Serialize};

/// What identifies the module file without reading it: when these still
/// match, the key's content hash need not be recomputed.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ModuleInfo {
    pub path: String,
    /// dev, inode, size, mtime (ns), ctime (ns).
    pub identity: [u64; 5],
}

/// A W zone and the X zone right after it: code in X reaches its W zone
/// RIP-relative, so the pair is position-independent.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub w_zone: u32,
    pub x_zone: u32,
    /// Offset in the W zone of the 8-byte slot the loader sets to the
    /// module's base address.
    pub base_slot: u32,
    /// This segment's exits: `exits[first_exit..first_exit + exit_count]`.
    pub first_exit: u32,
    pub exit_count: u32,
    /// Bytes of the X zone holding code; its direct exits' stubs follow
    /// (a loader pages in the code only: linked exits never reach them).
    pub code_len: u32,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// The block's first app byte, as an offset from the module's base.
    pub module_offset: u32,
    /// App bytes the block was built from.
    pub app_len: u32,
    pub segment: u32,
    /// Where its code starts in the segment's X zone, and its length.
    pub code_offset: u32,
    pub code_len: u32,
    /// `exits[first_exit..first_exit + exit_count]`.
    pub first_exit: u32,
    pub exit_count: u32,
    /// Its packed fault translations (see [`crate::translations`]):
    /// `translations[translation_offset..translation_offset + translation_len]`.
    pub translation_offset: u32,
    pub translation_len: u32,
    /// `block_data[first_data..first_data + data_count]`.
    pub first_data: u32,
    pub data_count: u32,
    /// [`BlockEntry::AHEAD_OF_TIME`], [`BlockEntry::LOOKUP_TARGET`],
    /// [`BlockEntry::COLD_HEAD`], [`BlockEntry::STALE_TRACE`],
    /// [`BlockEntry::CALLS_BACKWARD`].
    pub flags: u32,
}

impl BlockEntry {
    /// Built by `-aot` from static discovery, not because a run reached it.
    pub const AHEAD_OF_TIME: u32 = 1;
    /// An indirect branch reached it in the run that built it.
    pub const LOOKUP_TARGET: u32 = 2;
    /// A trace head (a loop's start) whose entries that run counted never
    /// made hot: a loader with traces need not count them again.
    pub const COLD_HEAD: u32 = 4;
    /// As a mark ([`Index::marks`]): a trace head whose trace in the file
    /// went stale in a run (its in-line checks spent their budget) that
    /// recorded none in its place, or none a file can hold: the file keeps
    /// that trace, with a larger budget (`merge::TRACE_BUDGET_GROWTH`).
    /// As a block's flag: that budget is the largest
    /// (`merge::MAX_TRACE_BUDGET`), and runs mark the head no more.
    pub const STALE_TRACE: u32 = 8;
    /// Its last exit is a direct call's jump to its callee, which makes
    /// no trace head even when it goes backward (a function placed
    /// before its caller is no loop): the exit is not counted.
    pub const CALLS_BACKWARD: u32 = 16;
    pub const KNOWN_FLAGS: u32 = Self::AHEAD_OF_TIME | Self::LOOKUP_TARGET | Self::COLD_HEAD | Self::STALE_TRACE | Self::CALLS_BACKWARD;
    /// What later runs learn of a file's blocks ([`Index::marks`]).
    pub const MARKABLE: u32 = Self::LOOKUP_TARGET | Self::COLD_HEAD | Self::STALE_TRACE;

    pub fn ahead_of_time(&self) -> bool {
        self.flags & Self::AHEAD_OF_TIME != 0
    }

    pub fn lookup_target(&self) -> bool {
        self.flags & Self::LOOKUP_TARGET != 0
    }
}

impl ArchivedBlockEntry {
    pub fn ahead_of_time(&self) -> bool {
        self.flags.to_native() & BlockEntry::AHEAD_OF_TIME != 0
    }

    pub fn lookup_target(&self) -> bool {
        self.flags.to_native() & BlockEntry::LOOKUP_TARGET != 0
    }
}

/// A block a loader enters in its indirect-branch lookup table at once
/// (the others when first looked up): where its code is, without reading
/// the block table.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LookupTarget {
    pub module_offset: u32,
    pub segment: u32,
    pub code_offset: u32,
}

/// A trace: the code of a hot path through several of the module's blocks
/// (its head first), stitched into one line, kept in a segment like a
/// block's. A loader enters it in place of its head's block.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Its head block's module offset.
    pub head: u32,
    pub segment: u32,
    pub code_offset: u32,
    pub code_len: u32,
    /// `exits[first_exit..first_exit + exit_count]`, inside its segment's.
    pub first_exit: u32,
    pub exit_count: u32,
    /// Packed fault translations, whose app offsets are from the module's
    /// base (a trace's blocks may lie before its head).
    pub translation_offset: u32,
    pub translation_len: u32,
    /// `trace_spans[first_span..first_span + span_count]`: the app bytes
    /// of each block it holds, the head's first.
    pub first_span: u32,
    pub span_count: u32,
    /// Offset in the segment's W zone of its budget of missed in-line
    /// checks (a u64 counted down), or [`TraceEntry::NO_BUDGET`].
    pub budget_slot: u32,
}

impl TraceEntry {
    /// A trace kept for good: its misses are not counted.
    pub const NO_BUDGET: u32 = u32::MAX;
}

/// The app bytes of one block of a trace.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TraceSpan {
    pub module_offset: u32,
    pub app_len: u32,
}

/// An exit a loader with traces relinks: `exits[exit]`, of segment
/// `segment`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRef {
    pub segment: u32,
    pub exit: u32,
}

/// The counting stub of a loop's head in a segment
/// ([`crate::counting_stubs`]): counted exits of the segment to the head
/// lead to it.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountingStub {
    pub segment: u32,
    /// The head's module offset.
    pub head: u32,
    /// Offset of its code in the segment's X zone.
    pub code: u32,
    /// Offset of its counter (a u64 counted down) in the segment's W zone;
    /// its go slot is the 8 bytes after it.
    pub counter: u32,
    /// Offset in the X zone of the code its go slot leads to in the file:
    /// the head block's when the stub was written. A merge leads exits to
    /// the stub only while the file's block of the head is that one.
    pub goes_to: u32,
}

/// A direct exit. Its code is `jmp [rip + slot]` (after a short `jcc` over
/// it for a conditional exit); the slot holds an X-zone offset in the file
/// (the target block's code, or the exit's stub), rebased at load.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ExitEntry {
    /// Offset of the 8-byte slot in the segment's W zone.
    pub slot: u32,
    /// Offset of the exit's stub in the segment's X zone.
    pub stub: u32,
    /// The app target as an offset from the module's base.
    pub target: i64,
}

/// Flags a delta sets on a block of the file it is merged into
/// ([`Index::marks`]).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub module_offset: u32,
    /// Some of [`BlockEntry::MARKABLE`].
    pub flags: u32,
}

/// Per-block data a client allocated (zeroed in the file).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockData {
    pub client: u32,
    /// Offset in the block's segment's W zone.
    pub w_offset: u32,
}

/// What one client stored with the file (its persistence events).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ClientData {
    pub ro: Vec<u8>,
    /// Ranges in the client segment's W and X zones.
    pub rw_offset: u32,
    pub rw_len: u32,
    pub rx_offset: u32,
    pub rx_len: u32,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Index {
    pub module: ModuleInfo,
    pub segments: Vec<Segment>,
    /// Sorted by module offset, no two alike.
    pub blocks: Vec<BlockEntry>,
    pub exits: Vec<ExitEntry>,
    /// Every block's packed fault translations.
    pub translations: Vec<u8>,
    pub block_data: Vec<BlockData>,
    /// One per client, in key order.
    pub clients: Vec<ClientData>,
    /// The (W zone, X zone) holding the clients' writable and executable
    /// data, if any client stored some.
    pub client_zones: Option<(u32, u32)>,
    /// The options the code was built with, spelled as dbirun takes them
    /// (`-stats`, `-c NAME OPTION...`): what `cachetool aot --from-index`
    /// translates the module with again after an upgrade.
    pub options: Vec<String>,
    /// How many of `blocks` were translated ahead of time (a loader
    /// that trusted a wrong count would only enter blocks in its lookup
    /// table later or sooner).
    pub ahead_of_time_blocks: u32,
    /// The blocks flagged [`BlockEntry::LOOKUP_TARGET`], by module offset.
    pub lookup_targets: Vec<LookupTarget>,
    /// Sorted by head, no two alike.
    pub traces: Vec<TraceEntry>,
    pub trace_spans: Vec<TraceSpan>,
    /// Exits of blocks and traces to a trace's head: in a file for runs
    /// with traces their slots lead to the trace.
    pub exits_to_traces: Vec<ExitRef>,
    /// Blocks' backward exits, and traces' exits, to anything but a
    /// trace's head or a [`BlockEntry::COLD_HEAD`]: in a file for runs
    /// with traces their slots lead to their counting stubs, or to their
    /// stubs (the dispatcher counts), so that their targets' entries are
    /// counted. Sorted by segment, then stub offset.
    pub counted_exits: Vec<ExitRef>,
    /// Counting stubs of loops' heads, by segment then head, no two
    /// alike: a counted exit's slot leads to the stub of its target in its
    /// segment rather than to its own stub when the stub goes on to the
    /// target's block.
    pub counting_stubs: Vec<CountingStub>,
    /// In a delta only: flags to set on blocks the file it is merged
    /// into holds (not the delta), by module offset, increasing, no two
    /// alike. [`BlockEntry::LOOKUP_TARGET`] for blocks an indirect branch
    /// reached in the run that wrote it (later runs enter them in the
    /// lookup table at load: a file translated ahead of time learns its
    /// lookup targets from the runs that use it); [`BlockEntry::COLD_HEAD`]
    /// for blocks that run counted as a loop's start and never found hot
    /// (later runs with traces need not count them again: a delta carries
    /// only new blocks, so a loop a file's blocks run only in later runs
    /// was counted in every run).
    pub marks: Vec<Mark>,
    /// Where each span of [`BUCKET`] bytes of the module starts in
    /// `blocks`: entry `k` is the position of the first block at or after
    /// module offset `k * BUCKET`, up to one span past the last block's;
    /// empty in a file of fewer than [`BUCKETED_FROM`] blocks. A block is
    /// then searched for among the few of its span: the directory is small
    /// and stays cached, where a binary search of a large index reads a
    /// dozen far-apart entries (each a cache and TLB miss), and a file
    /// translated ahead of time is searched thousands of times in its
    /// first run. A lookup checks the entry it finds, so a wrong directory
    /// can only hide blocks.
    pub block_buckets: Vec<u32>,
}

/// Bytes of module code per entry of [`Index::block_buckets`].
pub const BUCKET: u32 = 64;

/// Files with fewer blocks are binary searched: their index is small.
pub const BUCKETED_FROM: usize = 4096;

impl Index {
    /// Sets what is derived from the blocks, their flags and the traces:
    /// [`Index::ahead_of_time_blocks`], [`Index::lookup_targets`] and the
    /// exits a loader with traces relinks.
    pub fn derive_from_blocks(&mut self) {
        self.derive_trace_exits();
        self.ahead_of_time_blocks = self.blocks.iter().filter(|b| b.ahead_of_time()).count() as u32;
        self.lookup_targets = self
            .blocks
            .iter()
            .filter(|b| b.lookup_target())
            .map(|b| LookupTarget { module_offset: b.module_offset, segment: b.segment, code_offset: b.code_offset })
            .collect();
        self.derive_block_buckets();
    }

    fn derive_block_buckets(&mut self) {
        self.block_buckets.clear();
        let Some(last) = self.blocks.last().filter(|_| self.blocks.len() >= BUCKETED_FROM) else { return };
        let spans = (last.module_offset / BUCKET) as usize + 2;
        let mut first = 0;
        for span in 0..spans {
            let start = span as u64 * u64::from(BUCKET);
            while first < self.blocks.len() && u64::from(self.blocks[first].module_offset) < start {
                first += 1;
            }
            self.block_buckets.push(first as u32);
        }
    }
}

impl Index {
    /// Sets [`Index::exits_to_traces`] and [`Index::counted_exits`], so a
    /// loader does not scan every exit.
    fn derive_trace_exits(&mut self) {
        self.exits_to_traces.clear();
        self.counted_exits.clear();
        let heads: alloc::collections::BTreeSet<i64> = self.traces.iter().map(|t| t.head as i64).collect();
        let flags_at = |off: i64| {
            let off = u32::try_from(off).ok()?;
            let i = self.blocks.binary_search_by_key(&off, |b| b.module_offset).ok()?;
            Some(self.blocks[i].flags)
        };
        // (segment, exits, tag, whether every exit counts: a trace's do,
        // whether the last is a call's, which does not)
        let blocks = self.blocks.iter().map(|b| (b.segment, b.first_exit, b.exit_count, b.module_offset, false, b.flags & BlockEntry::CALLS_BACKWARD != 0));
        let traces = self.traces.iter().map(|t| (t.segment, t.first_exit, t.exit_count, t.head, true, false));
        for (segment, first, count, tag, all, calls) in blocks.chain(traces) {
            for exit in first..first + count {
                let target = self.exits[exit as usize].target;
                let r = ExitRef { segment, exit };
                let backward = target <= tag as i64 && !(calls && exit + 1 == first + count);
                if heads.contains(&target) {
                    self.exits_to_traces.push(r);
                } else if (all || backward) && flags_at(target).is_none_or(|f| f & BlockEntry::COLD_HEAD == 0) {
                    self.counted_exits.push(r);
                }
            }
        }
        let exits = &self.exits;
        self.counted_exits.sort_by_key(|r| (r.segment, exits[r.exit as usize].stub));
        // By target: a run that retires a trace unlinks the exits to its
        // head, found by a binary search (a scan read python3.11's whole
        // exit table, 1 MB of a warm run's resident set).
        self.exits_to_traces.sort_by_key(|r| (exits[r.exit as usize].target, r.segment, r.exit));
    }

    /// The counting stub of the head at `head` in segment `segment`.
    pub fn counting_stub(&self, segment: u32, head: u32) -> Option<&CountingStub> {
        let i = self.counting_stubs.binary_search_by_key(&(segment, head), |c| (c.segment, c.head)).ok()?;
        Some(&self.counting_stubs[i])
    }

    /// Whether the file is for runs with traces (not `-no_traces`): its
    /// exits are then readied for them ([`crate::merge::ready_for_traces`]).
    pub fn for_traces(&self) -> bool {
        !self.options.iter().any(|o| o == NO_TRACES)
    }
}

/// The option, in [`Index::options`], of runs without traces.
pub const NO_TRACES: &str = "-no_traces";

impl ArchivedIndex {
    /// Whether the exit whose stub is at `stub_offset` in segment
    /// `segment`'s X zone is one of [`Index::counted_exits`] (a wrong
    /// order, in a file not written by a merge, only hides some).
    pub fn is_counted_exit(&self, segment: u32, stub_offset: u32) -> bool {
        let key = |r: &ArchivedExitRef| {
            let stub = self.exits.get(r.exit.to_native() as usize).map_or(0, |e| e.stub.to_native());
            (r.segment.to_native(), stub)
        };
        self.counted_exits.binary_search_by_key(&(segment, stub_offset), key).is_ok()
    }
}

impl Index {
    /// The blocks `marks` names that lack some of the flags it sets: their
    /// positions, with the flags they lack.
    pub fn unmarked(&self, marks: &[Mark]) -> Vec<(usize, u32)> {
        let at = |off: u32| self.blocks.binary_search_by_key(&off, |b| b.module_offset).ok();
        marks
            .iter()
            .filter_map(|m| at(m.module_offset).map(|i| (i, m.flags & BlockEntry::MARKABLE & !self.blocks[i].flags)))
            .filter(|&(_, lacks)| lacks != 0)
            .collect()
    }
}

impl ArchivedCountingStub {
    /// Its go slot's offset in its segment's W zone.
    pub fn go_slot(&self) -> u32 {
        self.counter.to_native() + crate::counting_stubs::GO_SLOT_AT as u32
    }

    /// Its counting code's offset in its segment's X zone: where its go
    /// slot leads until a trace of its head is built.
    pub fn counting_code(&self) -> u32 {
        self.code.to_native() + crate::counting_stubs::COUNT_AT as u32
    }
}

impl ArchivedIndex {
    /// The counting stubs of segment `segment` (they lie by segment).
    pub fn counting_stubs_in(&self, segment: u32) -> &[ArchivedCountingStub] {
        let stubs = &self.counting_stubs[..];
        let lo = stubs.partition_point(|c| c.segment.to_native() < segment);
        let hi = lo + stubs[lo..].partition_point(|c| c.segment.to_native() == segment);
        &stubs[lo..hi]
    }

    /// Of the `flags` a mark of the block at `module_offset` sets, those
    /// it lacks in this file (0 when the file does not hold it).
    pub fn lacks_flags(&self, module_offset: u32, flags: u32) -> u32 {
        self.block_at(module_offset).map_or(0, |b| flags & BlockEntry::MARKABLE & !b.flags.to_native())
    }

    /// The block starting at `module_offset`.
    pub fn block_at(&self, module_offset: u32) -> Option<&ArchivedBlockEntry> {
        let span = (module_offset / BUCKET) as usize;
        let blocks = match (self.block_buckets.get(span), self.block_buckets.get(span + 1)) {
            (Some(lo), Some(hi)) => self.blocks.get(lo.to_native() as usize..hi.to_native() as usize)?,
            _ => &self.blocks[..],
        };
        let i = blocks.binary_search_by_key(&module_offset, |b| b.module_offset.to_native()).ok()?;
        Some(&blocks[i])
    }

    /// The trace whose head is at `module_offset`.
    pub fn trace_at(&self, module_offset: u32) -> Option<&ArchivedTraceEntry> {
        let i = self.traces.binary_search_by_key(&module_offset, |t| t.head.to_native()).ok()?;
        Some(&self.traces[i])
    }
}

impl ArchivedIndex {
    /// An owned copy, to extend when merging.
    pub fn to_owned(&self) -> Option<Index> {
        rkyv::deserialize::<Index, rkyv::rancor::Error>(self).ok()
    }
}
