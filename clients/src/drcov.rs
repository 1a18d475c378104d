//! `drcov`: basic-block coverage in DynamoRIO's drcov format: its current
//! one by default (`DRCOV VERSION: 3`, module table version 5), the older
//! one (version 2, module table version 2) with `-format_version 2`; both
//! are what Lighthouse, bncov and drcov2lcov read.
//! A block is covered once it runs: each block's own data holds a flag
//! its first instruction sets (`mov byte [rip + flag], 1`, no flags
//! touched), so blocks loaded from a persisted file report coverage of this
//! run exactly as freshly built ones do: a file holds the flags cleared,
//! and its blocks are read at exit, not listed as it loads (a warm run
//! pays for the blocks that ran). Modules are listed by path and
//! blocks by module and offset, so the output does not depend on the order
//! blocks were built or loaded in.
//!
//! ```text
//! DRCOV VERSION: 3
//! DRCOV FLAVOR: drcov
//! Module Table: version 5, count N
//! Columns: id, containing_id, start, end, entry, offset, preferred_base, path
//!   0,   0, 0x..., 0x..., 0x0000000000000000, 0000000000000000, 0x0000000000000000, /path
//! BB Table: M bbs
//! M binary entries { u32 start (offset from the module base); u16 size; u16 module id }
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use hashbrown::HashMap;
use iced_x86::{Code, Instruction};
use spin::Mutex;

use crate::api::inline::near;
use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, ModuleRef, Services};

struct Module {
    path: String,
    base: u64,
    end: u64,
}

/// A block's data: the covered flag, a reserved byte, the block's size.
const DATA_LEN: usize = 8;

struct Block {
    module: usize,
    offset: u32,
    size: u16,
    flag: *mut u8,
}

#[derive(Default)]
struct Coverage {
    modules: Vec<Module>,
    by_tag: HashMap<u64, usize>,
    blocks: Vec<Block>,
}

// SAFETY: the flag pointers are block data that lives for the whole run.
unsafe impl Send for Coverage {}

impl Coverage {
    /// The id of the module containing `pc`, listed now if it is new;
    /// None outside every module (JIT code has no place in drcov's table).
    /// Asked of the runtime each time: another module may have been
    /// mapped where one was unmapped.
    fn module_of(&mut self, pc: u64, services: &dyn Services) -> Option<usize> {
        let mut id = None;
        services.with_module(pc, &mut |m| id = m.map(|m| self.module_id(m)));
        id
    }

    /// The id of module `m`, listed now if it is new.
    fn module_id(&mut self, m: ModuleRef) -> usize {
        self.modules.iter().position(|k| k.base == m.base && k.path == m.path).unwrap_or_else(|| {
            self.modules.push(Module { path: String::from(m.path), base: m.base, end: m.end });
            self.modules.len() - 1
        })
    }

    /// Records the block at `tag` of module `module` with its data at `flag`.
    fn add(&mut self, module: usize, tag: u64, size: u16, flag: *mut u8) {
        self.by_tag.insert(tag, self.blocks.len());
        self.blocks.push(Block { module, offset: (tag - self.modules[module].base) as u32, size, flag });
    }
}

pub struct Drcov {
    options_hash: u64,
    /// The file format version: 3 (current) or 2.
    format_version: u32,
    coverage: Mutex<Option<Coverage>>,
}

impl Drcov {
    pub fn new(options: &[&str]) -> Result<Drcov, String> {
        let mut format_version = 3;
        crate::options::parse("drcov", options, |o, v| match o {
            "-format_version" => match v {
                Some("2") => {
                    format_version = 2;
                    Ok(Some(2))
                }
                Some("3") => Ok(Some(2)),
                _ => Err(String::from("client drcov: -format_version takes 2 or 3")),
            },
            _ => Ok(None),
        })?;
        // The format is only how the file is written: the code is the same.
        Ok(Drcov { options_hash: crate::options::hash(&[]), format_version, coverage: Mutex::new(None) })
    }
}

impl Client for Drcov {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "drcov", version: 3, code_options_hash: self.options_hash }
    }

    fn block_data_run_state(&self) -> usize {
        1
    }

    fn block_data_is_plain(&self) -> bool {
        true
    }

    fn basic_block(&self, block: &mut BlockIr, _tls: usize, services: &dyn Services) -> EmitFlags {
        let size = block.app_instructions().map(|i| i.len()).sum::<usize>().min(u16::MAX as usize) as u16;
        let mut guard = self.coverage.lock();
        let cov = guard.get_or_insert_with(Coverage::default);
        let flag = match cov.by_tag.get(&block.tag) {
            Some(&i) => cov.blocks[i].flag,
            None => {
                let Some(module) = cov.module_of(block.tag, services) else { return EmitFlags::PERSISTABLE };
                let Some(data) = services.alloc_block_data(DATA_LEN) else { return EmitFlags::DEFAULT };
                // SAFETY: fresh block data of DATA_LEN bytes.
                unsafe { (data.add(2) as *mut u16).write_unaligned(size) };
                cov.add(module, block.tag, size, data);
                data
            }
        };
        let set = Instruction::with2(Code::Mov_rm8_imm8, near(flag as u64), 1u32).expect("mov byte");
        block.insert_meta(0, [set]);
        EmitFlags::PERSISTABLE
    }

    fn process_exit(&self, services: &dyn Services) {
        let mut guard = self.coverage.lock();
        let cov = guard.get_or_insert_with(Coverage::default);
        // The blocks that ran, by module: (offset, size).
        let mut covered: Vec<Vec<(u32, u16)>> = Vec::new();
        fn add(covered: &mut Vec<Vec<(u32, u16)>>, module: usize, offset: u32, size: u16) {
            if covered.len() <= module {
                covered.resize_with(module + 1, Vec::new);
            }
            covered[module].push((offset, size));
        }
        // The blocks of the run's cache files are read here, not listed as
        // the files load: a file holds their flags cleared. Each file's come
        // in module order.
        services.for_each_persisted_file(&mut |m, blocks| {
            let module = cov.module_id(m);
            for p in blocks {
                // SAFETY: the data this client gave the block, in the
                // file's writable zone, mapped for the whole run.
                let (flag, size) = unsafe { (p.data.read_volatile(), (p.data.add(2) as *const u16).read_unaligned()) };
                if flag != 0 {
                    add(&mut covered, module, (p.tag - m.base) as u32, size);
                }
            }
        });
        for b in &cov.blocks {
            // SAFETY: flags are block data that lives for the whole run.
            if unsafe { b.flag.read_volatile() } != 0 {
                add(&mut covered, b.module, b.offset, b.size);
            }
        }
        let mut modules: Vec<usize> = (0..covered.len()).filter(|&m| !covered[m].is_empty()).collect();
        modules.sort_by(|&a, &b| cov.modules[a].path.cmp(&cov.modules[b].path).then(cov.modules[a].base.cmp(&cov.modules[b].base)));
        let mut entries: Vec<(u16, u32, u16)> = Vec::with_capacity(covered.iter().map(Vec::len).sum());
        for (id, &m) in modules.iter().enumerate() {
            let blocks = &mut covered[m];
            // Sorted already but for blocks built in this run, appended
            // last: the stable sort merges that tail into the file's run
            // (the unstable one sorted python3's ~40,000 blocks anew, 1.7%
            // of a warm `python3 -c pass` under drcov).
            blocks.sort();
            // A block built in this run may also be in a file (a trace's copy).
            blocks.dedup();
            entries.extend(blocks.iter().map(|&(offset, size)| (id as u16, offset, size)));
        }
        let mut text = String::new();
        if self.format_version == 2 {
            let _ = writeln!(text, "DRCOV VERSION: 2");
            let _ = writeln!(text, "DRCOV FLAVOR: drcov");
            let _ = writeln!(text, "Module Table: version 2, count {}", modules.len());
            let _ = writeln!(text, "Columns: id, base, end, entry, checksum, timestamp, path");
            for (i, &m) in modules.iter().enumerate() {
                let m = &cov.modules[m];
                let _ = writeln!(
                    text,
                    "{i:3}, {:#018x}, {:#018x}, 0x0000000000000000, 0x00000000, 0x00000000, {}",
                    m.base, m.end, m.path
                );
            }
        } else {
            // DynamoRIO's drcovlib lists each module once per segment with
            // containing_id naming the first; ours are whole images, so
            // each contains itself at file offset 0.
            let _ = writeln!(text, "DRCOV VERSION: 3");
            let _ = writeln!(text, "DRCOV FLAVOR: drcov");
            let _ = writeln!(text, "Module Table: version 5, count {}", modules.len());
            let _ = writeln!(text, "Columns: id, containing_id, start, end, entry, offset, preferred_base, path");
            for (i, &m) in modules.iter().enumerate() {
                let m = &cov.modules[m];
                let _ = writeln!(
                    text,
                    "{i:3}, {i:3}, {:#018x}, {:#018x}, 0x0000000000000000, 0000000000000000, 0x0000000000000000, {}",
                    m.base, m.end, m.path
                );
            }
        }
        let _ = writeln!(text, "BB Table: {} bbs", entries.len());
        let mut bytes = text.into_bytes();
        for &(id, start, size) in &entries {
            bytes.extend_from_slice(&start.to_le_bytes());
            bytes.extend_from_slice(&size.to_le_bytes());
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        services.write_output("drcov", "proc.log", None, &bytes);
    }
}
