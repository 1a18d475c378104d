//! The index, archived with rkyv in the R zone: the module the file was
//! made from, the code segments (a W zone and the X zone right after it),
//! the blocks sorted by module offset, their exits, fault translations and
//! client data.

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
    /// [`BlockEntry::AHEAD_OF_TIME`], [`BlockEntry::LOOKUP_TARGET`].
    pub flags: u32,
}

impl BlockEntry {
    /// Built by `-aot` from static discovery, not because a run reached it.
    pub const AHEAD_OF_TIME: u32 = 1;
    /// An indirect branch reached it in the run that built it.
    pub const LOOKUP_TARGET: u32 = 2;
    pub const KNOWN_FLAGS: u32 = Self::AHEAD_OF_TIME | Self::LOOKUP_TARGET;

    pub fn ahead_of_time(&self) -> bool {
        self.flags & Self::AHEAD_OF_TIME != 0
    }
}

impl ArchivedBlockEntry {
    pub fn ahead_of_time(&self) -> bool {
        self.flags.to_native() & BlockEntry::AHEAD_OF_TIME != 0
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
}

impl Index {
    /// Sets what is derived from the blocks' flags:
    /// [`Index::ahead_of_time_blocks`] and [`Index::lookup_targets`].
    pub fn derive_from_blocks(&mut self) {
        self.ahead_of_time_blocks = self.blocks.iter().filter(|b| b.ahead_of_time()).count() as u32;
        self.lookup_targets = self
            .blocks
            .iter()
            .filter(|b| b.flags & BlockEntry::LOOKUP_TARGET != 0)
            .map(|b| LookupTarget { module_offset: b.module_offset, segment: b.segment, code_offset: b.code_offset })
            .collect();
    }
}

impl ArchivedIndex {
    /// The block starting at `module_offset`.
    pub fn block_at(&self, module_offset: u32) -> Option<&ArchivedBlockEntry> {
        let i = self.blocks.binary_search_by_key(&module_offset, |b| b.module_offset.to_native()).ok()?;
        Some(&self.blocks[i])
    }
}

impl ArchivedIndex {
    /// An owned copy, to extend when merging.
    pub fn to_owned(&self) -> Option<Index> {
        rkyv::deserialize::<Index, rkyv::rancor::Error>(self).ok()
    }
}
