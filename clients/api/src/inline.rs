//! Helpers that make inline instrumentation correct: arithmetic-flags
//! liveness, so dead flags cost nothing, and counters that save and restore
//! the flags only when they are live.

use alloc::vec;
use alloc::vec::Vec;

use iced_x86::{Code, Instruction, MemoryOperand, Register, RflagsBits};

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
