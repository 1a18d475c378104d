//! Per-block execution counters shared by the counting clients: one u64
//! per block next to the code cache, incremented inline by
//! `add [rip + counter], 1` at block entry (flags saved only where live),
//! with whatever the client remembers about the block beside it.

use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::api::inline::{add_to, cheapest_counter_point, near, preserving_flags};
use crate::api::{BlockIr, Services};

pub struct Counted<T> {
    pub tag: u64,
    pub info: T,
    counter: *mut u64,
}

impl<T> Counted<T> {
    /// Executions so far (a racing increment may be missed by a reader).
    pub fn count(&self) -> u64 {
        // SAFETY: counters live for the whole run.
        unsafe { core::ptr::read_volatile(self.counter) }
    }
}

// SAFETY: the counter pointer is only read; blocks move between threads
// under the mutex.
unsafe impl<T: Send> Send for Counted<T> {}

pub struct BlockCounters<T> {
    blocks: Mutex<Vec<Counted<T>>>,
}

impl<T: Send> BlockCounters<T> {
    pub const fn new() -> Self {
        BlockCounters { blocks: Mutex::new(Vec::new()) }
    }

    /// Counts executions of `block` (a block built again after a flush
    /// keeps its counter). `info` describes a block seen for the first time.
    /// False when no counter could be allocated (the block is not counted).
    pub fn instrument(&self, block: &mut BlockIr, services: &dyn Services, info: impl FnOnce(&BlockIr) -> T) -> bool {
        let counter = {
            let mut blocks = self.blocks.lock();
            match blocks.iter().find(|b| b.tag == block.tag) {
                Some(b) => b.counter,
                None => {
                    let Some(c) = services.alloc_near_code(8) else { return false };
                    let counter = c as *mut u64;
                    blocks.push(Counted { tag: block.tag, info: info(block), counter });
                    counter
                }
            }
        };
        let (at, live) = cheapest_counter_point(block);
        let code = preserving_flags(live, services.flags_spill_offset(), vec![add_to(near(counter as u64), 1)]);
        block.insert_meta(at, code);
        true
    }

    /// Runs `f` over every block seen.
    pub fn with_blocks<R>(&self, f: impl FnOnce(&[Counted<T>]) -> R) -> R {
        f(&self.blocks.lock())
    }
}
