//! The per-thread trace buffer of the tracing clients (`instrace`,
//! `memtrace`), after DynamoRIO's sample: the current entry pointer lives in
//! a raw TLS slot, inline code stores entries and advances it, and a clean
//! call at block start flushes the buffer when the block's entries would not
//! fit.

use alloc::vec;
use alloc::vec::Vec;

use iced_x86::{Code, ConditionCode, Instruction, Register};

use crate::api::inline::gs_slot;
use crate::api::{BlockIr, Services};

/// The client's raw TLS slots: current entry pointer, flush limit, buffer
/// start, two scratch spills, the thread's id (names its file).
pub const PTR: usize = 0;
pub const LIMIT: usize = 1;
pub const BASE: usize = 2;
pub const SPILL_A: usize = 3;
pub const SPILL_B: usize = 4;
pub const TID: usize = 5;
/// The clean-call id of the flush.
pub const FLUSH: u32 = 0;

pub fn ins(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    r.expect("valid instruction")
}

/// Gives the calling thread a buffer of `bytes`.
pub fn thread_init(tls: &mut [u64], services: &dyn Services, bytes: usize) {
    tls[TID] = services.thread_id() as u64;
    let buffer: &'static mut [u8] = vec![0u8; bytes].leak();
    let base = buffer.as_mut_ptr() as u64;
    tls[BASE] = base;
    tls[PTR] = base;
    tls[LIMIT] = base + bytes as u64;
}

/// Inserts, at the block's start, a flush (clean call [`FLUSH`]) taken only
/// when `bytes` more would pass the buffer's end. Flags and registers are
/// preserved.
pub fn flush_if_full(block: &mut BlockIr, tls: usize, services: &dyn Services, bytes: usize) {
    let slot = |s: usize| gs_slot(tls + 8 * s);
    let spill = gs_slot(services.flags_spill_offset());
    let head = vec![
        ins(Instruction::with2(Code::Mov_rm64_r64, spill, Register::RAX)),
        Instruction::with(Code::Lahf),
        ins(Instruction::with1(Code::Seto_rm8, Register::AL)),
        ins(Instruction::with2(Code::Mov_rm64_r64, slot(SPILL_A), Register::RDX)),
        ins(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(PTR))),
        ins(Instruction::with2(Code::Add_rm64_imm32, Register::RDX, bytes as i32)),
        ins(Instruction::with2(Code::Cmp_r64_rm64, Register::RDX, slot(LIMIT))),
    ];
    let tail = vec![
        ins(Instruction::with2(Code::Mov_r64_rm64, Register::RDX, slot(SPILL_A))),
        ins(Instruction::with2(Code::Add_rm8_imm8, Register::AL, 0x7f)),
        Instruction::with(Code::Sahf),
        ins(Instruction::with2(Code::Mov_r64_rm64, Register::RAX, spill)),
    ];
    block.insert_meta(0, tail);
    block.insert_clean_call(0, FLUSH, 0, Some(ConditionCode::a));
    block.insert_meta(0, head);
}

/// The entries written since the last flush, emptying the buffer.
pub fn take(tls: &mut [u64]) -> Vec<u8> {
    let (base, end) = (tls[BASE], tls[PTR]);
    if base == 0 || end <= base {
        return Vec::new();
    }
    // SAFETY: [base, end) are entries this thread's inline code wrote into
    // its own buffer.
    let bytes = unsafe { core::slice::from_raw_parts(base as *const u8, (end - base) as usize) }.to_vec();
    tls[PTR] = base;
    bytes
}
