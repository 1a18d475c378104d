//! The block index, archived with rkyv in the R zone: blocks sorted by
//! module offset, each with its code's place in the X zone.

use alloc::vec::Vec;

use rkyv::{Archive, Deserialize, Serialize};

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// The block's start, as an offset from the module's base.
    pub module_offset: u64,
    /// Where its code starts in the X zone, and its length.
    pub code_offset: u32,
    pub code_len: u32,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Index {
    pub blocks: Vec<BlockEntry>,
    /// Offsets in the X zone of 8-byte fields holding module-relative
    /// addresses, rebased at load.
    pub relocations: Vec<u32>,
}
