//! `opcodes`: the dynamic opcode mix. Each block's executions are counted
//! inline; at exit every mnemonic's count is its blocks' executions times
//! its occurrences in them.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use iced_x86::Mnemonic;

use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};
use crate::block_counters::BlockCounters;

pub struct Opcodes {
    options_hash: u64,
    /// Per block: the mnemonics of its app instructions.
    counters: BlockCounters<Vec<Mnemonic>>,
}

impl Opcodes {
    pub fn new(options: &[&str]) -> Result<Opcodes, String> {
        crate::options::parse("opcodes", options, |_, _| Ok(None))?;
        Ok(Opcodes { options_hash: crate::options::hash(options), counters: BlockCounters::new() })
    }
}

impl Client for Opcodes {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "opcodes", version: 2, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, _tls: usize, services: &dyn Services) -> EmitFlags {
        let mnemonics = |b: &BlockIr| b.app_instructions().map(|i| i.mnemonic()).collect();
        self.counters.instrument(block, services, mnemonics)
    }

    fn block_data_run_state(&self) -> usize {
        crate::block_counters::RUN_STATE
    }

    fn process_exit(&self, services: &dyn Services) {
        let mut mix: BTreeMap<String, u64> = BTreeMap::new();
        for b in self.counters.executed(services) {
            for m in &b.info {
                *mix.entry(format!("{m:?}").to_lowercase()).or_default() += b.count;
            }
        }
        let total: u64 = mix.values().sum();
        let mut order: Vec<(&String, &u64)> = mix.iter().collect();
        order.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out = String::new();
        let _ = writeln!(out, "instructions executed: {total}");
        let _ = writeln!(out, "distinct opcodes: {}", order.len());
        for (name, count) in order {
            let _ = writeln!(out, "{count:>14} {name}");
        }
        services.write_output("opcodes", "log", None, out.as_bytes());
    }
}
