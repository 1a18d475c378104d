//! `instrace`: the pc and opcode of every instruction executed, per thread,
//! after DynamoRIO's instrace sample. Each thread has a buffer whose
//! current pointer lives in a raw TLS slot; every block stores one entry
//! per app instruction inline, and a clean call at block start flushes the
//! buffer to `instrace.<app>.<pid>.<tid>.log` when the block's entries would
//! not fit. Lines are `0x<pc>,<opcode>`; with `-binary`, 16-byte records
//! (u64 pc, u32 iced-x86 mnemonic number, u32 instruction length).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use iced_x86::{Code, ConditionCode, Instruction, MemoryOperand, Mnemonic, Register};

use crate::api::inline::gs_slot;
use crate::api::{BlockIr, CleanCallContext, Client, ClientIdentity, EmitFlags, Services};

/// Buffer entries per thread.
const ENTRIES: usize = 8192;
const ENTRY_SIZE: usize = 16;
/// TLS slots: current entry pointer, flush limit, buffer start, rdx spill,
/// the thread's id (names its file).
const PTR: usize = 0;
const LIMIT: usize = 1;
const BASE: usize = 2;
const RDX_SPILL: usize = 3;
const TID: usize = 4;
const FLUSH: u32 = 0;

pub struct InsTrace {
    binary: bool,
    options_hash: u64,
}

impl InsTrace {
    pub fn new(options: &[&str]) -> Result<InsTrace, String> {
        let mut binary = false;
        crate::options::parse("instrace", options, |o, _| match o {
            "-binary" => {
                binary = true;
                Ok(Some(1))
            }
            _ => Ok(None),
        })?;
        Ok(InsTrace { binary, options_hash: crate::options::hash(options) })
    }

    fn flush(&self, tls: &mut [u64], tid: u32, services: &dyn Services) {
        let (base, end) = (tls[BASE], tls[PTR]);
        if base == 0 || end <= base {
            return;
        }
        // SAFETY: [base, end) are entries this thread's inline code wrote.
        let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, (end - base) as usize) };
        let out: Vec<u8> = if self.binary {
            bytes.to_vec()
        } else {
            let mut text = String::with_capacity(bytes.len() * 2);
            for e in bytes.chunks_exact(ENTRY_SIZE) {
                let pc = u64::from_le_bytes(e[0..8].try_into().unwrap());
                let m = u32::from_le_bytes(e[8..12].try_into().unwrap());
                let name = mnemonic_names().get(m as usize).map_or("?", |n| n.as_str());
                let _ = writeln!(text, "{pc:#x},{name}");
            }
            text.into_bytes()
        };
        services.append_output("instrace", if self.binary { "bin" } else { "log" }, Some(tid), &out);
        tls[PTR] = base;
    }
}

/// Lower-case mnemonic names, indexed by iced-x86's mnemonic number.
fn mnemonic_names() -> &'static [String] {
    static NAMES: spin::Once<Vec<String>> = spin::Once::new();
    NAMES.call_once(|| Mnemonic::values().map(|m| format!("{m:?}").to_lowercase()).collect())
}

fn ins(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    r.expect("valid instruction")
}

/// `mov dword ptr [rdx + disp], imm`.
fn store32(disp: usize, imm: u32) -> Instruction {
    ins(Instruction::with2(Code::Mov_rm32_imm32, MemoryOperand::with_base_displ(Register::RDX, disp as i64), imm))
}

impl Client for InsTrace {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "instrace", version: 1, options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, tls: usize, services: &dyn Services) -> EmitFlags {
        let entries: Vec<(u64, u32, u32)> =
            block.app_instructions().map(|i| (i.ip(), i.mnemonic() as u32, i.len() as u32)).collect();
        if entries.is_empty() {
            return EmitFlags::PERSISTABLE;
        }
        let slot = |s: usize| gs_slot(tls + 8 * s);
        let spill = gs_slot(services.flags_spill_offset());
        let bytes = (entries.len() * ENTRY_SIZE) as i32;
        // Save rax (then holding the flags) and rdx; rdx = ptr + this block's
        // entries; flush first if that passes the limit.
        let head = vec![
            ins(Instruction::with2(Code::Mov_rm64_r64, spill, Register::RAX)),
            Instruction::with(Code::Lahf),
            ins(Instruction::with1(Code::Seto_rm8, Register::AL)),
            ins(Instruction::with2(Code::Mov_rm64_r64, slot(RDX_SPILL), Register::RDX)),
            ins(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(PTR))),
            ins(Instruction::with2(Code::Add_rm64_imm32, Register::RDX, bytes)),
            ins(Instruction::with2(Code::Cmp_r64_rm64, Register::RDX, slot(LIMIT))),
        ];
        let mut body = vec![ins(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(PTR)))];
        for (i, &(pc, mnemonic, len)) in entries.iter().enumerate() {
            let at = i * ENTRY_SIZE;
            body.push(store32(at, pc as u32));
            body.push(store32(at + 4, (pc >> 32) as u32));
            body.push(store32(at + 8, mnemonic));
            body.push(store32(at + 12, len));
        }
        body.extend([
            ins(Instruction::with2(Code::Add_rm64_imm32, Register::RDX, bytes)),
            ins(Instruction::with2(Code::Mov_rm64_r64, slot(PTR), Register::RDX)),
            ins(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(RDX_SPILL))),
            ins(Instruction::with2(Code::Add_rm8_imm8, Register::AL, 0x7f)),
            Instruction::with(Code::Sahf),
            ins(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, spill)),
        ]);
        block.insert_meta(0, body);
        block.insert_clean_call(0, FLUSH, 0, Some(ConditionCode::a));
        block.insert_meta(0, head);
        EmitFlags::PERSISTABLE
    }

    fn thread_init(&self, tls: &mut [u64], services: &dyn Services) {
        tls[TID] = services.thread_id() as u64;
        let buffer: &'static mut [u8] = vec![0u8; ENTRIES * ENTRY_SIZE].leak();
        let base = buffer.as_mut_ptr() as u64;
        tls[BASE] = base;
        tls[PTR] = base;
        // Room for the largest block's entries beyond the limit.
        tls[LIMIT] = base + (ENTRIES * ENTRY_SIZE) as u64;
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
