//! `memtrace`: every memory reference the application makes (pc, address,
//! size, read or write), per thread, stored inline into a buffer like
//! `instrace`'s and flushed by a conditional clean call. Each address is
//! computed with `lea` from the instruction's own operand (plus the FS base
//! via `rdfsbase` for FS-relative ones) into two scratch registers the
//! operand does not use (`reserve_scratch`: dead ones free, live ones
//! spilled to TLS slots); nothing touches the flags except the buffer check
//! at block start.
//! Output `memtrace.<app>.<pid>.<tid>.log`: `0x<pc>,0x<addr>,<size>,<r|w|rw>`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use iced_x86::{Code, Instruction, InstructionInfoFactory, MemoryOperand, OpAccess, Register};

use crate::api::inline::{gs_slot, reserve_scratch};
use crate::api::{BlockIr, CleanCallContext, Client, ClientIdentity, EmitFlags, Item, ItemKind, Services};
use crate::trace_buffer::{self, ins, FLUSH, PTR, SPILL_A, SPILL_B, TID};

const ENTRIES: usize = 8192;
/// u64 pc, u64 address, u32 size, u32 access (1 read, 2 write, 3 both).
const ENTRY_SIZE: usize = 24;

pub struct MemTrace {
    options_hash: u64,
}

impl MemTrace {
    pub fn new(options: &[&str]) -> Result<MemTrace, String> {
        crate::options::parse("memtrace", options, |_, _| Ok(None))?;
        Ok(MemTrace { options_hash: crate::options::hash(options) })
    }

    fn flush(&self, tls: &mut [u64], tid: u32, services: &dyn Services) {
        let bytes = trace_buffer::take(tls);
        if bytes.is_empty() {
            return;
        }
        let mut text = String::with_capacity(bytes.len() * 2);
        for e in bytes.chunks_exact(ENTRY_SIZE) {
            let pc = u64::from_le_bytes(e[0..8].try_into().unwrap());
            let addr = u64::from_le_bytes(e[8..16].try_into().unwrap());
            let size = u32::from_le_bytes(e[16..20].try_into().unwrap());
            let rw = match u32::from_le_bytes(e[20..24].try_into().unwrap()) {
                1 => "r",
                2 => "w",
                _ => "rw",
            };
            let _ = writeln!(text, "{pc:#x},{addr:#x},{size},{rw}");
        }
        services.append_output("memtrace", "log", Some(tid), text.as_bytes());
    }
}

/// One memory reference to record.
struct Reference {
    pc: u64,
    segment: Register,
    base: Register,
    index: Register,
    scale: u32,
    displacement: u64,
    size: u32,
    access: u32,
}

fn references(instr: &Instruction, info: &mut InstructionInfoFactory) -> Vec<Reference> {
    info.info(instr)
        .used_memory()
        .iter()
        .filter_map(|m| {
            let access = match m.access() {
                OpAccess::Read | OpAccess::CondRead => 1,
                OpAccess::Write | OpAccess::CondWrite => 2,
                OpAccess::ReadWrite | OpAccess::ReadCondWrite => 3,
                _ => return None,
            };
            // Gathers and scatters (vector indices) are not traced.
            if m.vsib_size() != 0 {
                return None;
            }
            // A RIP-relative operand is reported as an absolute address:
            // mark it, it is an app address that moves with its module.
            let rip_relative = instr.is_ip_rel_memory_operand()
                && m.base() == Register::None
                && m.index() == Register::None
                && m.displacement() == instr.ip_rel_memory_address();
            Some(Reference {
                pc: instr.ip(),
                segment: m.segment(),
                base: if rip_relative { Register::RIP } else { m.base() },
                index: m.index(),
                scale: m.scale(),
                displacement: m.displacement(),
                size: m.memory_size().size() as u32,
                access,
            })
        })
        .collect()
}

/// Code storing one entry for `r` (of the app instruction at item `at`) at
/// the buffer pointer, which is advanced. Two scratch registers the
/// operand does not use: dead ones cost nothing, live ones are spilled.
fn record(block: &BlockIr, at: usize, r: &Reference, tls: usize) -> Vec<Item> {
    let slot = |s: usize| gs_slot(tls + 8 * s);
    let scratch = reserve_scratch(block, at, &[r.base, r.index], &[tls + 8 * SPILL_A, tls + 8 * SPILL_B]);
    let (a, b) = (scratch.regs[0], scratch.regs[1]);
    let mut code: Vec<Item> = scratch.save.into_iter().map(Item::meta).collect();
    // a = the address: RIP-relative ones are app addresses (valid at any
    // base in persisted code), absolute ones are just numbers.
    if matches!(r.base, Register::RIP | Register::EIP) {
        code.push(Item::app_address(a, r.displacement));
    } else if r.base == Register::None && r.index == Register::None {
        code.push(Item::meta(ins(Instruction::with2(Code::Mov_r64_imm64, a, r.displacement))));
    } else {
        let disp = r.displacement as i64;
        let mem = MemoryOperand::new(r.base, r.index, r.scale, disp, 1, false, Register::None);
        code.push(Item::meta(ins(Instruction::with2(Code::Lea_r64_m, a, mem))));
    }
    if r.segment == Register::FS {
        code.push(Item::meta(ins(Instruction::with1(Code::Rdfsbase_r64, b))));
        code.push(Item::meta(ins(Instruction::with2(Code::Lea_r64_m, a, MemoryOperand::with_base_index(a, b)))));
    }
    let store = |disp: i64, reg: Register| Item::meta(ins(Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base_displ(b, disp), reg)));
    let store32 = |disp: i64, v: u32| Item::meta(ins(Instruction::with2(Code::Mov_rm32_imm32, MemoryOperand::with_base_displ(b, disp), v)));
    code.extend([
        Item::meta(ins(Instruction::with2(Code::Mov_r64_rm64, b, slot(PTR)))),
        store(8, a),
        // a = the instruction's pc, an app address too.
        Item::app_address(a, r.pc),
        store(0, a),
        store32(16, r.size),
        store32(20, r.access),
        Item::meta(ins(Instruction::with2(Code::Lea_r64_m, b, MemoryOperand::with_base_displ(b, ENTRY_SIZE as i64)))),
        Item::meta(ins(Instruction::with2(Code::Mov_rm64_r64, slot(PTR), b))),
    ]);
    code.extend(scratch.restore.into_iter().map(Item::meta));
    code
}

impl Client for MemTrace {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "memtrace", version: 1, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, tls: usize, services: &dyn Services) -> EmitFlags {
        let mut info = InstructionInfoFactory::new();
        // (item index, references of that app instruction)
        let mut sites: Vec<(usize, Vec<Reference>)> = Vec::new();
        for (i, item) in block.items.iter().enumerate() {
            if item.kind == ItemKind::App {
                let refs = references(&item.instr, &mut info);
                if !refs.is_empty() {
                    sites.push((i, refs));
                }
            }
        }
        let total: usize = sites.iter().map(|(_, r)| r.len()).sum();
        if total == 0 {
            return EmitFlags::PERSISTABLE;
        }
        // Back to front, so earlier indices stay valid.
        for (i, refs) in sites.iter().rev() {
            let code: Vec<Item> = refs.iter().flat_map(|r| record(block, *i, r, tls)).collect();
            block.insert(*i, code);
        }
        trace_buffer::flush_if_full(block, tls, services, total * ENTRY_SIZE);
        EmitFlags::PERSISTABLE
    }

    fn thread_init(&self, tls: &mut [u64], services: &dyn Services) {
        trace_buffer::thread_init(tls, services, ENTRIES * ENTRY_SIZE);
    }

    fn thread_exit(&self, tls: &mut [u64], services: &dyn Services) {
        let tid = tls[TID] as u32;
        self.flush(tls, tid, services);
    }

    fn clean_call(&self, id: u32, _arg: u64, call: &mut CleanCallContext, services: &dyn Services) {
        if id == FLUSH {
            self.flush(call.tls, call.tid, services);
        }
    }
}
