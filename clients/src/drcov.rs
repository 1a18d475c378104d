//! `drcov`: basic-block coverage in DynamoRIO's drcov format (version 2,
//! module table version 2), which Lighthouse, bncov and drcov2lcov read.
//! A block is covered when it is built, which happens on its first
//! execution; nothing is added to the code.
//!
//! ```text
//! DRCOV VERSION: 2
//! DRCOV FLAVOR: drcov
//! Module Table: version 2, count N
//! Columns: id, base, end, entry, checksum, timestamp, path
//!   0, 0x..., 0x..., 0x0000000000000000, 0x00000000, 0x00000000, /path
//! BB Table: M bbs
//! M binary entries { u32 start (offset from the module base); u16 size; u16 module id }
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use hashbrown::HashSet;
use spin::Mutex;

use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};

struct Module {
    path: String,
    base: u64,
    end: u64,
}

#[derive(Default)]
struct Coverage {
    modules: Vec<Module>,
    seen: HashSet<u64>,
    /// (module index, offset, size)
    blocks: Vec<(u16, u32, u16)>,
}

pub struct Drcov {
    options_hash: u64,
    coverage: Mutex<Option<Coverage>>,
}

impl Drcov {
    pub fn new(options: &[&str]) -> Result<Drcov, String> {
        crate::options::parse("drcov", options, |_, _| Ok(None))?;
        Ok(Drcov { options_hash: crate::options::hash(options), coverage: Mutex::new(None) })
    }
}

impl Client for Drcov {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "drcov", version: 1, options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, _tls: usize, services: &dyn Services) -> EmitFlags {
        let size = block.app_instructions().map(|i| i.len()).sum::<usize>().min(u16::MAX as usize) as u16;
        let mut guard = self.coverage.lock();
        let cov = guard.get_or_insert_with(Coverage::default);
        if !cov.seen.insert(block.tag) {
            return EmitFlags::PERSISTABLE;
        }
        let mut module = None;
        services.with_module(block.tag, &mut |m| {
            module = m.map(|m| (String::from(m.path), m.base, m.end));
        });
        // Code outside every module (JIT code) has no place in drcov's table.
        let Some((path, base, end)) = module else { return EmitFlags::PERSISTABLE };
        let id = match cov.modules.iter().position(|m| m.base == base && m.path == path) {
            Some(i) => i,
            None => {
                cov.modules.push(Module { path, base, end });
                cov.modules.len() - 1
            }
        };
        cov.blocks.push((id as u16, (block.tag - base) as u32, size));
        EmitFlags::PERSISTABLE
    }

    fn process_exit(&self, services: &dyn Services) {
        let guard = self.coverage.lock();
        let empty = Coverage::default();
        let cov = guard.as_ref().unwrap_or(&empty);
        let mut text = String::new();
        let _ = writeln!(text, "DRCOV VERSION: 2");
        let _ = writeln!(text, "DRCOV FLAVOR: drcov");
        let _ = writeln!(text, "Module Table: version 2, count {}", cov.modules.len());
        let _ = writeln!(text, "Columns: id, base, end, entry, checksum, timestamp, path");
        for (i, m) in cov.modules.iter().enumerate() {
            let _ = writeln!(
                text,
                "{i:3}, {:#018x}, {:#018x}, 0x0000000000000000, 0x00000000, 0x00000000, {}",
                m.base, m.end, m.path
            );
        }
        let _ = writeln!(text, "BB Table: {} bbs", cov.blocks.len());
        let mut bytes = text.into_bytes();
        for &(id, start, size) in &cov.blocks {
            bytes.extend_from_slice(&start.to_le_bytes());
            bytes.extend_from_slice(&size.to_le_bytes());
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        services.write_output("drcov", "proc.log", None, &bytes);
    }
}
