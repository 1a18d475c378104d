//! Helpers that make inline instrumentation correct: arithmetic-flags
//! liveness, so dead flags cost nothing, and counters that save and restore
//! the flags only when they are live.

use alloc::vec;
use alloc::vec::Vec;

use iced_x86::{Code, Instruction, InstructionInfoFactory, MemoryOperand, OpAccess, Register, RflagsBits};

use crate::ir::{BlockIr, ItemKind};

/// The six arithmetic flags; the helpers preserve exactly these (and DF,
/// which they never change).
const ARITH: u32 = RflagsBits::OF | RflagsBits::SF | RflagsBits::ZF | RflagsBits::AF | RflagsBits::CF | RflagsBits::PF;

/// Whether the arithmetic flags may be read before they are all written,
/// from item `at` on. Conservative: at the block's end they are live.
pub fn flags_live_at(block: &BlockIr, at: usize) -> bool {
    let mut written = 0u32;
    for item in block.items[at..].iter().filter(|i| i.kind == ItemKind::App) {
        let i = &item.instr;
        if i.rflags_read() & ARITH & !written != 0 {
            return true;
        }
        written |= (i.rflags_written() | i.rflags_cleared() | i.rflags_set() | i.rflags_undefined()) & ARITH;
        if written == ARITH {
            return false;
        }
    }
    true
}

/// Where in the block a per-block counter costs least: before the first
/// app instruction at which the arithmetic flags are dead (no save needed),
/// else at the start. Returns (item index, flags live there).
pub fn cheapest_counter_point(block: &BlockIr) -> (usize, bool) {
    // One backward pass: the flags live before each app instruction.
    let app: Vec<usize> = (0..block.items.len()).filter(|&k| block.items[k].kind == ItemKind::App).collect();
    let mut live_before = vec![true; app.len()];
    let mut live = ARITH;
    for (n, &k) in app.iter().enumerate().rev() {
        let i = &block.items[k].instr;
        let written = (i.rflags_written() | i.rflags_cleared() | i.rflags_set() | i.rflags_undefined()) & ARITH;
        live = (i.rflags_read() & ARITH) | (live & !written);
        live_before[n] = live != 0;
    }
    // Not at the final instruction: a counter must run on every path
    // through the block.
    let last = app.len().saturating_sub(1);
    (0..last)
        .find(|&n| !live_before[n])
        .map_or((0, live_before.first().copied().unwrap_or(true)), |n| (app[n], false))
}

/// `gs:[offset]` as a 64-bit memory operand.
pub fn gs_slot(offset: usize) -> MemoryOperand {
    MemoryOperand::new(Register::None, Register::None, 1, offset as i64, 4, false, Register::GS)
}

/// `[rip + addr]`: reaches `addr` from code in the cache (see
/// [`crate::Services::alloc_near_code`]).
pub fn near(addr: u64) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::RIP, addr as i64)
}

fn ins(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    r.expect("valid instruction")
}

/// Wraps `body` (which may change the arithmetic flags and nothing else of
/// the app's) so the flags survive when `live`: rax is spilled to the
/// runtime's spill slot and holds the flags meanwhile (`lahf`/`seto`), so
/// `body` must not use rax.
pub fn preserving_flags(live: bool, spill: usize, body: Vec<Instruction>) -> Vec<Instruction> {
    if !live {
        return body;
    }
    let mut out = vec![
        ins(Instruction::with2(Code::Mov_rm64_r64, gs_slot(spill), Register::RAX)),
        Instruction::with(Code::Lahf),
        ins(Instruction::with1(Code::Seto_rm8, Register::AL)),
    ];
    out.extend(body);
    out.push(ins(Instruction::with2(Code::Add_rm8_imm8, Register::AL, 0x7f)));
    out.push(Instruction::with(Code::Sahf));
    out.push(ins(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, gs_slot(spill))));
    out
}

/// `add qword ptr <mem>, n`.
pub fn add_to(mem: MemoryOperand, n: i32) -> Instruction {
    ins(Instruction::with2(Code::Add_rm64_imm32, mem, n))
}

/// Whether general-purpose register `reg` (any width names it) may be read
/// from item `at` on before it is completely overwritten. Conservative: at
/// the block's end it is live; a write of 8 or 16 bits keeps it live.
pub fn register_live_at(block: &BlockIr, at: usize, reg: Register) -> bool {
    let full = reg.full_register();
    let mut info = InstructionInfoFactory::new();
    for item in block.items[at..].iter().filter(|i| i.kind == ItemKind::App) {
        let mut written = false;
        for used in info.info(&item.instr).used_registers() {
            if used.register().full_register() != full {
                continue;
            }
            match used.access() {
                OpAccess::Write if used.register().size() >= 4 => written = true,
                OpAccess::Write | OpAccess::CondWrite | OpAccess::NoMemAccess | OpAccess::None => {}
                _ => return true,
            }
        }
        if written {
            return false;
        }
    }
    true
}

/// Scratch registers reserved before item `at`: `save` goes before the
/// client's code, `restore` after it. Dead registers are preferred and cost
/// nothing; live ones are spilled to the given TLS slots.
pub struct Scratch {
    pub regs: Vec<Register>,
    pub save: Vec<Instruction>,
    pub restore: Vec<Instruction>,
}

/// Candidates, never rsp.
const GPRS: [Register; 15] = [
    Register::RAX, Register::RCX, Register::RDX, Register::RBX, Register::RBP, Register::RSI, Register::RDI,
    Register::R8, Register::R9, Register::R10, Register::R11, Register::R12, Register::R13, Register::R14,
    Register::R15,
];

/// Reserves `spill_slots.len()` scratch registers at item `at`, none of them
/// in `avoid` (registers the client's code must read with their app values,
/// such as an address operand's base and index).
pub fn reserve_scratch(block: &BlockIr, at: usize, avoid: &[Register], spill_slots: &[usize]) -> Scratch {
    let avoid: Vec<Register> = avoid.iter().map(|r| r.full_register()).collect();
    let candidates = GPRS.iter().copied().filter(|r| !avoid.contains(r));
    let (mut dead, mut live): (Vec<Register>, Vec<Register>) =
        candidates.partition(|&r| !register_live_at(block, at, r));
    dead.append(&mut live);
    let n = spill_slots.len();
    let regs: Vec<Register> = dead.into_iter().take(n).collect();
    let mut scratch = Scratch { regs: regs.clone(), save: Vec::new(), restore: Vec::new() };
    for (&r, &slot) in regs.iter().zip(spill_slots) {
        if register_live_at(block, at, r) {
            scratch.save.push(ins(Instruction::with2(Code::Mov_rm64_r64, gs_slot(slot), r)));
            scratch.restore.push(ins(Instruction::with2(Code::Mov_r64_rm64, r, gs_slot(slot))));
        }
    }
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn block(bytes: &[u8]) -> BlockIr {
        let mut d = Decoder::with_ip(64, bytes, 0x1000, DecoderOptions::NONE);
        let mut v = Vec::new();
        while d.can_decode() {
            v.push(d.decode());
        }
        BlockIr::new(0x1000, v)
    }

    #[test]
    fn liveness_of_registers_and_flags() {
        // mov eax, 1 ; add rcx, rax ; cmp rcx, 5 ; mov dl, 3 ; ret
        let b = block(&[0xb8, 1, 0, 0, 0, 0x48, 0x01, 0xc1, 0x48, 0x83, 0xf9, 0x05, 0xb2, 0x03, 0xc3]);
        assert!(!register_live_at(&b, 0, Register::RAX), "eax written (zero-extended) before read");
        assert!(register_live_at(&b, 0, Register::RCX), "rcx read by add");
        assert!(register_live_at(&b, 0, Register::RDX), "a byte write keeps rdx live");
        assert!(register_live_at(&b, 0, Register::RBX), "live at the block end");
        assert!(!flags_live_at(&b, 0), "add writes every arithmetic flag before any read");
        // jz after a cmp reads ZF: flags live before the jz.
        let j = block(&[0x48, 0x83, 0xf9, 0x05, 0x74, 0x00]);
        assert!(flags_live_at(&j, 1));
        assert!(!flags_live_at(&j, 0));
    }

    #[test]
    fn scratch_prefers_dead_registers_and_spills_live_ones() {
        let b = block(&[0xb8, 1, 0, 0, 0, 0x48, 0x01, 0xc1, 0xc3]);
        let s = reserve_scratch(&b, 0, &[Register::RCX], &[0x100, 0x108]);
        assert_eq!(s.regs[0], Register::RAX, "rax is dead: first choice");
        assert!(!s.regs.contains(&Register::RCX));
        assert_eq!(s.save.len(), 1, "only the live second register is spilled");
        assert_eq!(s.restore.len(), 1);
    }
}
