//! Per-block execution counters shared by the counting clients. Each
//! block's own data (`Services::alloc_block_data`) holds its counter,
//! incremented inline by `add [rip + counter], 1` at block entry (flags
//! saved only where live), followed by what the client remembers about the
//! block, encoded: a persisted block brings both back in a later run (its
//! counter at zero: the first [`RUN_STATE`] bytes are run state), read at
//! exit ([`BlockCounters::executed`]).
//!
//! Block data: counter u64, info length u32, reserved u32, info bytes.

use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;
use spin::Mutex;

use crate::api::inline::{add_to, cheapest_counter_point, near, preserving_flags};
use crate::api::{BlockIr, EmitFlags, Services};

/// What a counting client keeps about a block, stored in its data.
pub trait BlockInfo: Sized + Send + Clone {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Option<Self>;
}

impl BlockInfo for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Longest info a persisted block may claim (a block has at most a few
/// hundred instructions).
const MAX_INFO: usize = 1 << 16;
const HEADER: usize = 16;
/// The counter: what a file holds zeroed (`Client::block_data_run_state`).
pub const RUN_STATE: usize = 8;

struct Counted<T> {
    tag: u64,
    info: T,
    counter: *mut u64,
}

impl<T> Counted<T> {
    /// Executions so far (a racing increment may be missed by a reader).
    fn count(&self) -> u64 {
        // SAFETY: counters live for the whole run.
        unsafe { core::ptr::read_volatile(self.counter) }
    }
}

// SAFETY: the counter pointer is only read; blocks move between threads
// under the mutex.
unsafe impl<T: Send> Send for Counted<T> {}

struct Blocks<T> {
    list: Vec<Counted<T>>,
    by_tag: Option<HashMap<u64, usize>>,
}

pub struct BlockCounters<T> {
    blocks: Mutex<Blocks<T>>,
}

impl<T: BlockInfo> BlockCounters<T> {
    pub const fn new() -> Self {
        BlockCounters { blocks: Mutex::new(Blocks { list: Vec::new(), by_tag: None }) }
    }

    fn add(blocks: &mut Blocks<T>, c: Counted<T>) {
        let by_tag = blocks.by_tag.get_or_insert_with(HashMap::new);
        by_tag.insert(c.tag, blocks.list.len());
        blocks.list.push(c);
    }

    /// Counts executions of `block` (a block built again after a flush
    /// keeps its counter). `info` describes a block seen for the first time.
    /// The block is persistable unless no counter could be allocated (it is
    /// not counted then).
    pub fn instrument(&self, block: &mut BlockIr, services: &dyn Services, info: impl FnOnce(&BlockIr) -> T) -> EmitFlags {
        let counter = {
            let mut blocks = self.blocks.lock();
            let known = blocks.by_tag.as_ref().and_then(|m| m.get(&block.tag)).copied();
            match known {
                Some(i) => blocks.list[i].counter,
                None => {
                    let info = info(block);
                    let mut bytes = vec![0u8; HEADER];
                    info.encode(&mut bytes);
                    let len = bytes.len() - HEADER;
                    bytes[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                    let Some(data) = services.alloc_block_data(bytes.len()) else { return EmitFlags::DEFAULT };
                    // SAFETY: fresh block data of this length.
                    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len()) };
                    let counter = data as *mut u64;
                    Self::add(&mut blocks, Counted { tag: block.tag, info, counter });
                    counter
                }
            }
        };
        let (at, live) = cheapest_counter_point(block);
        let code = preserving_flags(live, services.flags_spill_offset(), vec![add_to(near(counter as u64), 1)]);
        block.insert_meta(at, code);
        EmitFlags::PERSISTABLE
    }

    /// The blocks that ran in this process, by tag: those built in it and
    /// those of its cache files (whose counters a file holds at zero, read
    /// now rather than listed as the file loads). A tag counted in both
    /// (a trace's copy of a file's block) is one block.
    pub fn executed(&self, services: &dyn Services) -> Vec<Executed<T>> {
        let mut ran: Vec<Executed<T>> = Vec::new();
        services.for_each_persisted_file(&mut |_, blocks| {
            for p in blocks {
                // SAFETY: the block data this client wrote when the block
                // was built (counter, header, info), in the file's
                // writable zone, mapped for the whole run.
                let (count, info) = unsafe {
                    let count = core::ptr::read_volatile(p.data as *const u64);
                    if count == 0 {
                        continue;
                    }
                    let len = *(p.data.add(8) as *const u32) as usize;
                    (count, (len <= MAX_INFO).then(|| T::decode(core::slice::from_raw_parts(p.data.add(HEADER), len))).flatten())
                };
                // Undecodable info (a file this client version did not
                // write cannot be loaded: its key differs) is not counted.
                if let Some(info) = info {
                    ran.push(Executed { tag: p.tag, info, count });
                }
            }
        });
        let blocks = self.blocks.lock();
        ran.extend(blocks.list.iter().filter(|b| b.count() > 0).map(|b| Executed { tag: b.tag, info: b.info.clone(), count: b.count() }));
        ran.sort_by_key(|b| b.tag);
        ran.dedup_by(|later, kept| {
            let same = later.tag == kept.tag;
            if same {
                kept.count += later.count;
            }
            same
        });
        ran
    }
}

/// A block that ran: how often, and what the client noted about it.
pub struct Executed<T> {
    pub tag: u64,
    pub info: T,
    pub count: u64,
}

impl BlockInfo for Vec<iced_x86::Mnemonic> {
    fn encode(&self, out: &mut Vec<u8>) {
        for &m in self {
            out.extend_from_slice(&(m as u16).to_le_bytes());
        }
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        bytes
            .chunks(2)
            .map(|c| iced_x86::Mnemonic::try_from(u16::from_le_bytes(c.try_into().ok()?) as usize).ok())
            .collect()
    }
}
