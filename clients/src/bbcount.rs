//! `bbcount`: executions of every basic block, counted inline by one
//! `add [rip + counter], 1` per block into a counter next to the code cache.
//! At exit: totals and the most executed blocks with module+offset.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use spin::Mutex;

use crate::api::inline::{add_to, flags_live_at, near, preserving_flags};
use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};

struct Block {
    tag: u64,
    instructions: u64,
    counter: *mut u64,
}

// SAFETY: counters live for the whole run; reads are of plain u64s.
unsafe impl Send for Block {}

pub struct BbCount {
    top: usize,
    options_hash: u64,
    blocks: Mutex<Vec<Block>>,
}

impl BbCount {
    pub fn new(options: &[&str]) -> Result<BbCount, String> {
        let mut top = 20;
        crate::options::parse("bbcount", options, |o, v| match o {
            "-top" => {
                top = crate::options::number("bbcount", o, v)? as usize;
                Ok(Some(2))
            }
            _ => Ok(None),
        })?;
        Ok(BbCount { top, options_hash: crate::options::hash(options), blocks: Mutex::new(Vec::new()) })
    }

    /// The counter for `tag` (a block built again after a flush keeps it).
    fn counter_for(&self, block: &BlockIr, services: &dyn Services) -> Option<*mut u64> {
        let mut blocks = self.blocks.lock();
        if let Some(b) = blocks.iter().find(|b| b.tag == block.tag) {
            return Some(b.counter);
        }
        let counter = services.alloc_near_code(8)? as *mut u64;
        blocks.push(Block { tag: block.tag, instructions: block.app_count() as u64, counter });
        Some(counter)
    }
}

impl Client for BbCount {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "bbcount", version: 1, options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, _tls: usize, services: &dyn Services) -> EmitFlags {
        let Some(counter) = self.counter_for(block, services) else {
            return EmitFlags::DEFAULT;
        };
        let live = flags_live_at(block, 0);
        let code = preserving_flags(live, services.flags_spill_offset(), vec![add_to(near(counter as u64), 1)]);
        block.insert_meta(0, code);
        EmitFlags::PERSISTABLE
    }

    fn process_exit(&self, services: &dyn Services) {
        let blocks = self.blocks.lock();
        // SAFETY: counters are live for the run; a racing increment is fine.
        let count = |b: &Block| unsafe { core::ptr::read_volatile(b.counter) };
        let executions: u64 = blocks.iter().map(count).sum();
        let instructions: u64 = blocks.iter().map(|b| count(b) * b.instructions).sum();
        let mut out = String::new();
        let _ = writeln!(out, "blocks built: {}", blocks.len());
        let _ = writeln!(out, "block executions: {executions}");
        let _ = writeln!(out, "instructions executed: {instructions}");
        let mut order: Vec<&Block> = blocks.iter().filter(|b| count(b) > 0).collect();
        order.sort_by(|a, b| count(b).cmp(&count(a)).then(a.tag.cmp(&b.tag)));
        let _ = writeln!(out, "top {} blocks (executions, instructions, location):", self.top.min(order.len()));
        for b in order.iter().take(self.top) {
            let _ = write!(out, "{:>12} {:>4} ", count(b), b.instructions);
            crate::report::location(&mut out, services, b.tag);
            out.push('\n');
        }
        services.write_output("bbcount", "log", None, out.as_bytes());
    }
}
