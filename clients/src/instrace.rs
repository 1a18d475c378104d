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

use iced_x86::{Code, Instruction, MemoryOperand, Mnemonic, Register};

use crate::api::inline::gs_slot;
use crate::api::{BlockIr, CleanCallContext, Client, ClientIdentity, EmitFlags, Item, Services};
use crate::trace_buffer::{self, ins, FLUSH, PTR, SPILL_A, SPILL_B, TID};

/// Buffer entries per thread.
const ENTRIES: usize = 8192;
const ENTRY_SIZE: usize = 16;

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
        // -binary only changes how the buffer is written out, not the code
        // that fills it.
        Ok(InsTrace { binary, options_hash: crate::options::hash(&[]) })
    }

    fn flush(&self, tls: &mut [u64], tid: u32, services: &dyn Services) {
        let bytes = trace_buffer::take(tls);
        if bytes.is_empty() {
            return;
        }
        let out: Vec<u8> = if self.binary {
            bytes
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
    }
}

/// Lower-case mnemonic names, indexed by iced-x86's mnemonic number.
fn mnemonic_names() -> &'static [String] {
    static NAMES: spin::Once<Vec<String>> = spin::Once::new();
    NAMES.call_once(|| Mnemonic::values().map(|m| format!("{m:?}").to_lowercase()).collect())
}

/// `mov dword ptr [rdx + disp], imm`.
fn store32(disp: usize, imm: u32) -> Instruction {
    ins(Instruction::with2(Code::Mov_rm32_imm32, MemoryOperand::with_base_displ(Register::RDX, disp as i64), imm))
}

impl Client for InsTrace {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "instrace", version: 1, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, tls: usize, services: &dyn Services) -> EmitFlags {
        let entries: Vec<(u64, u32, u32)> =
            block.app_instructions().map(|i| (i.ip(), i.mnemonic() as u32, i.len() as u32)).collect();
        if entries.is_empty() {
            return EmitFlags::PERSISTABLE;
        }
        let slot = |s: usize| gs_slot(tls + 8 * s);
        let bytes = entries.len() * ENTRY_SIZE;
        let meta = |r| Item::meta(ins(r));
        // rdx = the entry pointer, rax = each entry's pc (an app address,
        // so persisted code stays valid at another base); no flag changes.
        let mut body = vec![
            meta(Instruction::with2(Code::Mov_rm64_r64, slot(SPILL_B), Register::RDX)),
            meta(Instruction::with2(Code::Mov_rm64_r64, slot(SPILL_A), Register::RAX)),
            meta(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(PTR))),
            Item::app_address(Register::RAX, entries[0].0),
        ];
        let mut prev = entries[0].0;
        for (i, &(pc, mnemonic, len)) in entries.iter().enumerate() {
            let at = i * ENTRY_SIZE;
            if pc != prev {
                let step = MemoryOperand::with_base_displ(Register::RAX, pc.wrapping_sub(prev) as i64);
                body.push(meta(Instruction::with2(Code::Lea_r64_m, Register::RAX, step)));
                prev = pc;
            }
            let entry = MemoryOperand::with_base_displ(Register::RDX, at as i64);
            body.push(meta(Instruction::with2(Code::Mov_rm64_r64, entry, Register::RAX)));
            body.push(Item::meta(store32(at + 8, mnemonic)));
            body.push(Item::meta(store32(at + 12, len)));
        }
        body.extend([
            meta(Instruction::with2(Code::Lea_r64_m, Register::RDX, MemoryOperand::with_base_displ(Register::RDX, bytes as i64))),
            meta(Instruction::with2(Code::Mov_rm64_r64, slot(PTR), Register::RDX)),
            meta(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, slot(SPILL_A))),
            meta(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(SPILL_B))),
        ]);
        block.insert(0, body);
        trace_buffer::flush_if_full(block, tls, services, bytes);
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
