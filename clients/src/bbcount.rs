//! `bbcount`: executions of every basic block, counted inline. At exit:
//! totals and the most executed blocks with module+offset.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};
use crate::block_counters::{BlockCounters, Executed};

pub struct BbCount {
    top: usize,
    options_hash: u64,
    /// Per block: its number of app instructions.
    counters: BlockCounters<u64>,
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
        // -top only shapes the report: files are shared across its values.
        Ok(BbCount { top, options_hash: crate::options::hash(&[]), counters: BlockCounters::new() })
    }
}

impl Client for BbCount {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "bbcount", version: 2, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, _tls: usize, services: &dyn Services) -> EmitFlags {
        self.counters.instrument(block, services, |b| b.app_count() as u64)
    }

    fn block_data_run_state(&self) -> usize {
        crate::block_counters::RUN_STATE
    }

    fn block_data_is_plain(&self) -> bool {
        // A counter, a length and an instruction count.
        true
    }

    fn process_exit(&self, services: &dyn Services) {
        let out = {
            let blocks = self.counters.executed(services);
            let executions: u64 = blocks.iter().map(|b| b.count).sum();
            let instructions: u64 = blocks.iter().map(|b| b.count * b.info).sum();
            let mut out = String::new();
            let _ = writeln!(out, "blocks executed: {}", blocks.len());
            let _ = writeln!(out, "block executions: {executions}");
            let _ = writeln!(out, "instructions executed: {instructions}");
            let mut order: Vec<&Executed<u64>> = blocks.iter().collect();
            order.sort_by(|a, b| b.count.cmp(&a.count).then(a.tag.cmp(&b.tag)));
            let _ = writeln!(out, "top {} blocks (executions, instructions, location):", self.top.min(order.len()));
            for b in order.iter().take(self.top) {
                let _ = write!(out, "{:>12} {:>4} ", b.count, b.info);
                crate::report::location(&mut out, services, b.tag);
                out.push('\n');
            }
            out
        };
        services.write_output("bbcount", "log", None, out.as_bytes());
    }
}
