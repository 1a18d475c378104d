//! Every instruction the runtime encodes by hand: the fixed sequences the
//! mangler and emitter produce, the exit stubs, the forms a direct exit
//! takes in a persisted file, and the rel32/rel8 fields branches are
//! patched through. They are few, hot and must have exact, known lengths
//! (exit stubs are patched at fixed offsets, a persisted exit is rewritten
//! in place), so they are not left to iced's encoder; each one is checked
//! against iced's decoder in the tests below.
//!
//! Registers are 64-bit general-purpose `iced_x86::Register`s, conditions
//! `iced_x86::ConditionCode`s (never `ConditionCode::None`).

use alloc::vec::Vec;

use iced_x86::{ConditionCode, Register};

/// `mov qword ptr gs:[offset], reg` and `mov reg, qword ptr gs:[offset]`.
pub(crate) const GS_MOV_LEN: usize = 9;
/// `jmp qword ptr gs:[offset]`.
pub(crate) const JMP_GS_LEN: usize = 8;
/// `mov reg, imm64`.
pub(crate) const MOV_IMM64_LEN: usize = 10;
/// `lea reg, [rip + disp32]` and `mov reg, qword ptr [rip + disp32]`.
pub(crate) const RIP_REL_LEN: usize = 7;
/// `lea rsp, [rsp + disp32]`.
pub(crate) const LEA_RSP_LEN: usize = 8;
/// `jmp rel32`.
pub(crate) const JMP_REL32_LEN: usize = 5;
/// `jcc rel32`.
pub(crate) const JCC_REL32_LEN: usize = 6;
/// `jcc rel8`.
pub(crate) const JCC_REL8_LEN: usize = 2;
/// `jmp qword ptr [rip + disp32]`.
pub(crate) const JMP_RIP_LEN: usize = 6;
/// `push imm32` (sign-extended to 64 bits).
pub(crate) const PUSH_IMM32_LEN: usize = 5;
/// `push_imm64`'s form for values above `i32::MAX`: `lea rsp, [rsp - 8]`,
/// then two `mov dword ptr [rsp (+ 4)], imm32`.
pub(crate) const PUSH_IMM64_SPLIT_LEN: usize = LEA_RSP_LEN + 7 + 8;

/// Bytes of an exit stub's code before its inline exit data:
/// `mov gs:[rax slot], rax` (9) + `lea rax, [rip + 5]` (7) + `jmp rel32` (5).
pub(crate) const STUB_CODE_LEN: usize = GS_MOV_LEN + RIP_REL_LEN + JMP_REL32_LEN;
/// The position-independent stub: `jmp qword ptr gs:[fcache return slot]`
/// (8) instead of the rel32 jump.
pub(crate) const RELATIVE_STUB_CODE_LEN: usize = GS_MOV_LEN + RIP_REL_LEN + JMP_GS_LEN;
// Readers of a file find an exit's data this far into its stub.
const _: () = assert!(RELATIVE_STUB_CODE_LEN == persist::exit_data::STUB_CODE_LEN);

/// The hardware number (0-15) of a 64-bit general-purpose register.
#[inline]
pub(crate) fn hw(reg: Register) -> u8 {
    debug_assert!(reg.is_gpr64(), "{reg:?} is not a 64-bit GPR");
    reg.number() as u8
}

/// The low nibble of a `jcc`/`setcc` opcode for `cc`.
#[inline]
fn cc_bits(cc: ConditionCode) -> u8 {
    debug_assert!(cc != ConditionCode::None);
    cc as u8 - ConditionCode::o as u8
}

/// The condition that holds exactly when `cc` does not.
pub(crate) fn negate(cc: ConditionCode) -> ConditionCode {
    use ConditionCode::*;
    match cc {
        o => no,
        no => o,
        b => ae,
        ae => b,
        e => ne,
        ne => e,
        be => a,
        a => be,
        s => ns,
        ns => s,
        p => np,
        np => p,
        l => ge,
        ge => l,
        le => g,
        g => le,
        None => None,
    }
}

/// REX.W with `reg`'s high bit in REX.R.
#[inline]
fn rex_w_r(reg: u8) -> u8 {
    0x48 | (reg >> 3) << 2
}

/// Appends `mov qword ptr gs:[offset], reg`.
pub(crate) fn store_to_gs(out: &mut Vec<u8>, offset: usize, reg: Register) {
    let r = hw(reg);
    out.extend_from_slice(&[0x65, rex_w_r(r), 0x89, 0x04 | (r & 7) << 3, 0x25]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

/// Appends `mov reg, qword ptr gs:[offset]`.
pub(crate) fn load_from_gs(out: &mut Vec<u8>, reg: Register, offset: usize) {
    let r = hw(reg);
    out.extend_from_slice(&[0x65, rex_w_r(r), 0x8b, 0x04 | (r & 7) << 3, 0x25]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

/// Appends `jmp qword ptr gs:[offset]`.
pub(crate) fn jmp_gs(out: &mut Vec<u8>, offset: usize) {
    out.extend_from_slice(&[0x65, 0xff, 0x24, 0x25]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

/// Appends `mov reg, imm64`.
pub(crate) fn mov_imm64(out: &mut Vec<u8>, reg: Register, imm: u64) {
    let r = hw(reg);
    let start = out.len();
    out.extend_from_slice(&[0x48 | (r >> 3), 0xb8 + (r & 7)]);
    out.extend_from_slice(&imm.to_le_bytes());
    debug_assert_eq!(out.len() - start, MOV_IMM64_LEN);
}

/// Appends `mov reg32, imm32` (the 32-bit half of `reg`, zero-extended).
pub(crate) fn mov_imm32(out: &mut Vec<u8>, reg: Register, imm: u32) {
    let r = hw(reg);
    if r >= 8 {
        out.push(0x41);
    }
    out.push(0xb8 + (r & 7));
    out.extend_from_slice(&imm.to_le_bytes());
}

/// Appends `mov reg, qword ptr [reg]`.
pub(crate) fn load_indirect_self(out: &mut Vec<u8>, reg: Register) {
    let r = hw(reg);
    let rex = rex_w_r(r) | (r >> 3);
    match r & 7 {
        // rsp/r12 need a SIB byte, rbp/r13 a zero displacement.
        4 => out.extend_from_slice(&[rex, 0x8b, 0x04 | (r & 7) << 3, 0x24]),
        5 => out.extend_from_slice(&[rex, 0x8b, 0x45 | (r & 7) << 3, 0x00]),
        low => out.extend_from_slice(&[rex, 0x8b, low << 3 | low]),
    }
}

/// Appends `lea reg, [rip + disp]`.
pub(crate) fn lea_rip(out: &mut Vec<u8>, reg: Register, disp: i32) {
    let r = hw(reg);
    out.extend_from_slice(&[rex_w_r(r), 0x8d, 0x05 | (r & 7) << 3]);
    out.extend_from_slice(&disp.to_le_bytes());
}

/// Appends `mov reg, qword ptr [rip + disp]`, the instruction placed at
/// address `at`, reading the qword at `target`.
pub(crate) fn load_rip(out: &mut Vec<u8>, reg: Register, at: u64, target: u64) {
    let r = hw(reg);
    out.extend_from_slice(&[rex_w_r(r), 0x8b, 0x05 | (r & 7) << 3]);
    out.extend_from_slice(&rel32(at + 3, target).to_le_bytes());
}

/// Appends `mov qword ptr [rip + disp], reg`, the instruction placed at
/// address `at`, writing the qword at `target`.
pub(crate) fn store_rip(out: &mut Vec<u8>, reg: Register, at: u64, target: u64) {
    let r = hw(reg);
    out.extend_from_slice(&[rex_w_r(r), 0x89, 0x05 | (r & 7) << 3]);
    out.extend_from_slice(&rel32(at + 3, target).to_le_bytes());
}

/// Appends `lea rsp, [rsp + disp]`: moves rsp without touching flags.
pub(crate) fn lea_rsp(out: &mut Vec<u8>, disp: i32) {
    out.extend_from_slice(&[0x48, 0x8d, 0xa4, 0x24]);
    out.extend_from_slice(&disp.to_le_bytes());
}

/// Appends `push reg`.
pub(crate) fn push(out: &mut Vec<u8>, reg: Register) {
    let r = hw(reg);
    if r >= 8 {
        out.push(0x41);
    }
    out.push(0x50 + (r & 7));
}

/// Appends `pop reg`.
pub(crate) fn pop(out: &mut Vec<u8>, reg: Register) {
    let r = hw(reg);
    if r >= 8 {
        out.push(0x41);
    }
    out.push(0x58 + (r & 7));
}

/// Whether `push_imm64(value)` is a single `push imm32`; otherwise it moves
/// rsp first, then writes the value (a fault in the writes sees rsp moved).
pub(crate) fn push_imm64_is_single(value: u64) -> bool {
    value <= 0x7fff_ffff
}

/// Appends instructions that push the 64-bit `value` without changing flags
/// or any register but rsp.
pub(crate) fn push_imm64(out: &mut Vec<u8>, value: u64) {
    let start = out.len();
    if push_imm64_is_single(value) {
        // push imm32 sign-extends: exact for values below 2^31.
        out.push(0x68);
        out.extend_from_slice(&(value as u32).to_le_bytes());
    } else {
        lea_rsp(out, -8);
        // mov dword ptr [rsp], lo ; mov dword ptr [rsp + 4], hi
        out.extend_from_slice(&[0xc7, 0x04, 0x24]);
        out.extend_from_slice(&(value as u32).to_le_bytes());
        out.extend_from_slice(&[0xc7, 0x44, 0x24, 0x04]);
        out.extend_from_slice(&((value >> 32) as u32).to_le_bytes());
    }
    debug_assert_eq!(out.len() - start, push_imm64_len(value));
}

/// The length of `push_imm64(value)`.
pub(crate) fn push_imm64_len(value: u64) -> usize {
    if push_imm64_is_single(value) { PUSH_IMM32_LEN } else { PUSH_IMM64_SPLIT_LEN }
}

/// Appends `ud2` (raises SIGILL).
pub(crate) fn ud2(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x0f, 0x0b]);
}

/// Appends one no-op instruction of `len` bytes (1 or 2).
pub(crate) fn nop(out: &mut Vec<u8>, len: usize) {
    match len {
        1 | 2 => out.extend_from_slice(LONG_NOPS[len - 1]),
        _ => panic!("no {len}-byte nop"),
    }
}

/// The recommended no-op of each length from 1 to 9 bytes (Intel SDM,
/// `NOP`): one instruction each, so filler decodes in few.
const LONG_NOPS: [&[u8]; 9] = [
    &[0x90],
    &[0x66, 0x90],
    &[0x0f, 0x1f, 0x00],
    &[0x0f, 0x1f, 0x40, 0x00],
    &[0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
    &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
    &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// Appends `len` bytes of no-ops, in as few instructions as the lengths
/// of [`LONG_NOPS`] allow.
pub(crate) fn nops(out: &mut Vec<u8>, len: usize) {
    let mut left = len;
    while left > 0 {
        let n = left.min(LONG_NOPS.len());
        out.extend_from_slice(LONG_NOPS[n - 1]);
        left -= n;
    }
}

/// Appends a flag-free decrement of the u64 at absolute address `addr`
/// through rax (`mov rax, [addr]; lea rax, [rax - 1]; mov [addr], rax`),
/// leaving the new value in rax.
pub(crate) fn decrement_at(out: &mut Vec<u8>, addr: u64) {
    out.extend_from_slice(&[0x48, 0xa1]);
    out.extend_from_slice(&addr.to_le_bytes());
    out.extend_from_slice(&[0x48, 0x8d, 0x40, 0xff]);
    out.extend_from_slice(&[0x48, 0xa3]);
    out.extend_from_slice(&addr.to_le_bytes());
}

/// [`decrement_at`] of the u64 at `slot`, reached RIP-relative from code
/// placed at `code_base` (`out` starts there).
pub(crate) fn decrement_rip(out: &mut Vec<u8>, code_base: u64, slot: u64) {
    load_rip(out, Register::RAX, code_base + out.len() as u64, slot);
    out.extend_from_slice(&[0x48, 0x8d, 0x40, 0xff]);
    let at = code_base + out.len() as u64;
    out.extend_from_slice(&[0x48, 0x89, 0x05]); // mov [rip + rel32], rax
    out.extend_from_slice(&rel32(at + 3, slot).to_le_bytes());
}

/// Appends `jmp rel32` (target fixed up later) and returns the offset of the
/// rel32 field.
pub(crate) fn jmp_rel32(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0xe9, 0, 0, 0, 0]);
    out.len() - 4
}

/// Appends `jcc rel32` (target fixed up later) and returns the offset of
/// the rel32 field.
pub(crate) fn jcc_rel32(out: &mut Vec<u8>, cc: ConditionCode) -> usize {
    out.extend_from_slice(&[0x0f, 0x80 | cc_bits(cc), 0, 0, 0, 0]);
    debug_assert_eq!(JCC_REL32_LEN, 6);
    out.len() - 4
}

/// Appends `jcc rel8` (target fixed up later) and returns the offset of
/// the rel8 field.
pub(crate) fn jcc_rel8(out: &mut Vec<u8>, cc: ConditionCode) -> usize {
    out.extend_from_slice(&[0x70 | cc_bits(cc), 0]);
    out.len() - 1
}

/// Appends a copied rel8 branch of the app (`loop`, `loopcc`, `jrcxz`):
/// its prefixes and opcode, `opcode`, with a zero rel8 (fixed up later);
/// returns the offset of the rel8 field.
pub(crate) fn short_branch(out: &mut Vec<u8>, opcode: &[u8]) -> usize {
    out.extend_from_slice(opcode);
    out.push(0);
    out.len() - 1
}

/// Appends `jmp qword ptr [rip + disp]`, the instruction placed at address
/// `at`, through the qword at `slot`.
pub(crate) fn jmp_rip(out: &mut Vec<u8>, at: u64, slot: u64) {
    out.extend_from_slice(&[0xff, 0x25]);
    out.extend_from_slice(&rel32(at + 2, slot).to_le_bytes());
}

/// The rel32 of a branch whose rel32 field is at address `field` (and ends
/// the instruction) so that it reaches `target`.
pub(crate) fn rel32(field: u64, target: u64) -> i32 {
    let delta = target.wrapping_sub(field + 4) as i64;
    i32::try_from(delta).expect("branch target out of rel32 range")
}

/// Writes the rel32 field at `code[field..]` (code placed at address
/// `base`) so that its branch reaches `target`.
pub(crate) fn patch_rel32(code: &mut [u8], field: usize, base: u64, target: u64) {
    let rel = rel32(base + field as u64, target);
    code[field..field + 4].copy_from_slice(&rel.to_le_bytes());
}

/// Writes the rel8 field at `code[field]` so that its branch reaches the
/// offset `target` of the same code.
pub(crate) fn patch_rel8(code: &mut [u8], field: usize, target: usize) {
    let rel = i8::try_from(target as i64 - (field as i64 + 1)).expect("branch target out of rel8 range");
    code[field] = rel as u8;
}

/// Appends an exit stub's code, placed at address `at`: saves rax in
/// `gs:[rax_slot]`, points rax at the exit data that follows the code
/// (at `at + STUB_CODE_LEN`) and jumps to `fcache_return`.
pub(crate) fn exit_stub(out: &mut Vec<u8>, at: u64, rax_slot: usize, fcache_return: u64) {
    let start = out.len();
    store_to_gs(out, rax_slot, Register::RAX);
    lea_rip(out, Register::RAX, JMP_REL32_LEN as i32);
    let field = jmp_rel32(out);
    patch_rel32(out, field, at - start as u64, fcache_return);
    debug_assert_eq!(out.len() - start, STUB_CODE_LEN);
}

/// Appends a position-independent exit stub's code: as [`exit_stub`], but
/// jumps through `gs:[fcache_return_slot]`.
pub(crate) fn relative_exit_stub(out: &mut Vec<u8>, rax_slot: usize, fcache_return_slot: usize) {
    let start = out.len();
    store_to_gs(out, rax_slot, Register::RAX);
    lea_rip(out, Register::RAX, JMP_GS_LEN as i32);
    jmp_gs(out, fcache_return_slot);
    debug_assert_eq!(out.len() - start, RELATIVE_STUB_CODE_LEN);
}

/// The offset of the rel32 field in a direct exit's body branch (`jcc`
/// when `cond` is set, else `jmp`).
pub(crate) const fn exit_branch_rel32_offset(cond: Option<ConditionCode>) -> usize {
    if cond.is_some() { 2 } else { 1 }
}

/// The length of a direct exit's body branch in a persistable segment: the
/// length of its file form (`exit_via_slot`), at least that of
/// `exit_direct`.
pub(crate) const fn persistable_exit_len(cond: Option<ConditionCode>) -> usize {
    if cond.is_some() { JCC_REL8_LEN + JMP_RIP_LEN } else { JMP_RIP_LEN }
}

/// Appends a direct exit's body branch (`jcc` when `cond` is set, else
/// `jmp`; rel32 fixed up later), padded with a nop to
/// `persistable_exit_len` when `padded`; returns the offset of the rel32.
pub(crate) fn exit_branch(out: &mut Vec<u8>, cond: Option<ConditionCode>, padded: bool) -> usize {
    let start = out.len();
    let field = match cond {
        Some(cc) => jcc_rel32(out, cc),
        None => jmp_rel32(out),
    };
    if padded {
        let len = out.len() - start;
        nop(out, persistable_exit_len(cond) - len);
    }
    field
}

/// Appends the file form of a direct exit whose body branch is at address
/// `at` and whose target, `target`, is reached directly: the padded
/// [`exit_branch`], pointed at `target`.
pub(crate) fn exit_direct(out: &mut Vec<u8>, at: u64, cond: Option<ConditionCode>, target: u64) {
    let start = out.len();
    let field = exit_branch(out, cond, true);
    patch_rel32(out, field, at - start as u64, target);
}

/// Appends the file form of an unconditional direct exit whose target's
/// code starts `to_target` bytes after the branch, with nothing but the
/// branch (and any filler) between: no-ops up to the target, so the block
/// runs on into it without a taken jump. Measured on this machine, a chain
/// of 200,000 small blocks: a `jmp` to the next costs 8 ns a block where
/// the branch predictor has not seen it (most code of a short run) against
/// 5 ns for no-ops, and 1.5 against 0.85 ns once it has.
pub(crate) fn exit_falls_through(out: &mut Vec<u8>, to_target: usize) {
    debug_assert!(to_target >= persistable_exit_len(None));
    nops(out, to_target);
}

/// Bytes of a slot trampoline ([`slot_trampoline`]).
pub(crate) const TRAMPOLINE_LEN: usize = 8;

/// Appends, at address `at` (just before a conditional exit's stub), the
/// exit's way through its W slot `slot` out of the code's line:
/// `jmp qword ptr [rip + slot]` and two `int3` (the stub after it stays
/// 8-byte aligned). A file's conditional exit that no run took jumps here
/// (`jcc rel32`), so the code runs on past it untaken instead of jumping
/// over an in-line slot jump every time.
pub(crate) fn slot_trampoline(out: &mut Vec<u8>, at: u64, slot: u64) {
    jmp_rip(out, at, slot);
    out.extend_from_slice(&[0xcc, 0xcc]);
}

/// Appends the file form of a direct exit whose body branch is at address
/// `at`, going through its W slot at `slot`: `jmp qword ptr [rip + slot]`,
/// behind a `j<not cond> over` for a conditional exit.
pub(crate) fn exit_via_slot(out: &mut Vec<u8>, at: u64, cond: Option<ConditionCode>, slot: u64) {
    let start = out.len();
    let mut at = at;
    if let Some(cc) = cond {
        let field = jcc_rel8(out, negate(cc));
        let over = out.len() + JMP_RIP_LEN;
        patch_rel8(out, field, over);
        at += (out.len() - start) as u64;
    }
    jmp_rip(out, at, slot);
    debug_assert_eq!(out.len() - start, persistable_exit_len(cond));
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

    const GPRS: [Register; 16] = [
        Register::RAX,
        Register::RCX,
        Register::RDX,
        Register::RBX,
        Register::RSP,
        Register::RBP,
        Register::RSI,
        Register::RDI,
        Register::R8,
        Register::R9,
        Register::R10,
        Register::R11,
        Register::R12,
        Register::R13,
        Register::R14,
        Register::R15,
    ];

    const CCS: [ConditionCode; 16] = {
        use ConditionCode::*;
        [o, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g]
    };

    /// An address in the runtime's code cache region.
    const IP: u64 = 0x7e00_1000_0000;

    const DISPS: [i32; 7] = [0, 5, 0x7f, -1, -0x80, i32::MIN, i32::MAX];
    const GS_OFFSETS: [usize; 5] = [0, 8, 0x7f, 0x1234, i32::MAX as usize];

    /// Decodes all of `bytes` at `ip`: every byte is part of a valid
    /// instruction, the last one ends exactly at the end.
    fn decode_all(bytes: &[u8], ip: u64) -> Vec<Instruction> {
        let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
        let mut out = Vec::new();
        let mut total = 0;
        while d.can_decode() {
            let i = d.decode();
            assert!(!i.is_invalid(), "invalid instruction in {bytes:02x?}");
            total += i.len();
            out.push(i);
        }
        assert_eq!(total, bytes.len(), "{bytes:02x?}");
        out
    }

    /// Decodes `bytes` at `ip` as exactly one instruction of `len` bytes.
    fn decode_one(bytes: &[u8], ip: u64, len: usize) -> Instruction {
        assert_eq!(bytes.len(), len, "{bytes:02x?}");
        let all = decode_all(bytes, ip);
        assert_eq!(all.len(), 1, "{bytes:02x?}: {all:?}");
        all[0]
    }

    fn emit(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    fn assert_gs_absolute(i: &Instruction, op: u32, offset: usize) {
        assert_eq!(i.op_kind(op), OpKind::Memory);
        assert_eq!(i.segment_prefix(), Register::GS);
        assert_eq!(i.memory_segment(), Register::GS);
        assert_eq!(i.memory_base(), Register::None);
        assert_eq!(i.memory_index(), Register::None);
        assert_eq!(i.memory_displacement64(), offset as u64);
    }

    #[test]
    fn hw_numbers_and_conditions() {
        for (n, r) in GPRS.iter().enumerate() {
            assert_eq!(hw(*r), n as u8);
        }
        for (n, cc) in CCS.iter().enumerate() {
            assert_eq!(cc_bits(*cc), n as u8);
        }
    }

    #[test]
    fn negate_matches_iced() {
        for cc in CCS {
            assert_ne!(negate(cc), cc);
            assert_eq!(negate(negate(cc)), cc);
            let mut i = decode_one(&emit(|b| { jcc_rel32(b, cc); }), IP, JCC_REL32_LEN);
            i.negate_condition_code();
            assert_eq!(i.condition_code(), negate(cc));
        }
    }

    #[test]
    fn store_to_gs_all_registers() {
        for reg in GPRS {
            for offset in GS_OFFSETS {
                let i = decode_one(&emit(|b| store_to_gs(b, offset, reg)), IP, GS_MOV_LEN);
                assert_eq!(i.code(), Code::Mov_rm64_r64);
                assert_gs_absolute(&i, 0, offset);
                assert_eq!(i.op1_register(), reg);
            }
        }
    }

    #[test]
    fn load_from_gs_all_registers() {
        for reg in GPRS {
            for offset in GS_OFFSETS {
                let i = decode_one(&emit(|b| load_from_gs(b, reg, offset)), IP, GS_MOV_LEN);
                assert_eq!(i.code(), Code::Mov_r64_rm64);
                assert_eq!(i.op0_register(), reg);
                assert_gs_absolute(&i, 1, offset);
            }
        }
    }

    #[test]
    fn jmp_gs_offsets() {
        for offset in GS_OFFSETS {
            let i = decode_one(&emit(|b| jmp_gs(b, offset)), IP, JMP_GS_LEN);
            assert_eq!(i.code(), Code::Jmp_rm64);
            assert_gs_absolute(&i, 0, offset);
        }
    }

    #[test]
    fn mov_imm64_all_registers() {
        let imms = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc_def0, u64::MAX];
        for reg in GPRS {
            for imm in imms {
                let i = decode_one(&emit(|b| mov_imm64(b, reg, imm)), IP, MOV_IMM64_LEN);
                assert_eq!(i.code(), Code::Mov_r64_imm64);
                assert_eq!(i.op0_register(), reg);
                assert_eq!(i.immediate64(), imm);
            }
        }
    }

    #[test]
    fn mov_imm32_all_registers() {
        for reg in GPRS {
            for imm in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
                let b = emit(|b| mov_imm32(b, reg, imm));
                let i = decode_one(&b, IP, if hw(reg) >= 8 { 6 } else { 5 });
                assert_eq!(i.code(), Code::Mov_r32_imm32);
                assert!(i.op0_register().is_gpr32());
                assert_eq!(i.op0_register().full_register(), reg);
                assert_eq!(i.immediate32(), imm);
            }
        }
        // The xbegin replacement: `mov eax, 0`.
        assert_eq!(emit(|b| mov_imm32(b, Register::RAX, 0)), [0xb8, 0, 0, 0, 0]);
    }

    #[test]
    fn load_indirect_self_all_registers() {
        for reg in GPRS {
            let b = emit(|b| load_indirect_self(b, reg));
            let long = matches!(hw(reg) & 7, 4 | 5);
            let i = decode_one(&b, IP, if long { 4 } else { 3 });
            assert_eq!(i.code(), Code::Mov_r64_rm64);
            assert_eq!(i.op0_register(), reg);
            assert_eq!(i.op1_kind(), OpKind::Memory);
            assert_eq!(i.memory_base(), reg);
            assert_eq!(i.memory_index(), Register::None);
            assert_eq!(i.memory_displacement64(), 0);
            assert_eq!(i.segment_prefix(), Register::None);
        }
    }

    #[test]
    fn lea_rip_all_registers() {
        for reg in GPRS {
            for disp in DISPS {
                let i = decode_one(&emit(|b| lea_rip(b, reg, disp)), IP, RIP_REL_LEN);
                assert_eq!(i.code(), Code::Lea_r64_m);
                assert_eq!(i.op0_register(), reg);
                assert_eq!(i.memory_base(), Register::RIP);
                assert!(i.is_ip_rel_memory_operand());
                let end = IP + RIP_REL_LEN as u64;
                assert_eq!(i.ip_rel_memory_address(), end.wrapping_add(disp as i64 as u64));
            }
        }
    }

    #[test]
    fn load_rip_all_registers() {
        let end = IP + RIP_REL_LEN as u64;
        let targets = [end, IP, IP + 0x10, end - 8, end + i32::MAX as u64, end - 0x8000_0000];
        for reg in GPRS {
            for target in targets {
                let i = decode_one(&emit(|b| load_rip(b, reg, IP, target)), IP, RIP_REL_LEN);
                assert_eq!(i.code(), Code::Mov_r64_rm64);
                assert_eq!(i.op0_register(), reg);
                assert_eq!(i.memory_base(), Register::RIP);
                assert_eq!(i.ip_rel_memory_address(), target);
            }
        }
    }

    #[test]
    fn decrement_rip_reads_and_writes_its_slot_without_flags() {
        let slot = IP - 0x4000;
        // Placed after some other code: the addresses count from the start.
        let mut b = vec![0x90; 3];
        decrement_rip(&mut b, IP, slot);
        let decoded: Vec<_> = iced_x86::Decoder::with_ip(64, &b, IP, iced_x86::DecoderOptions::NONE).into_iter().skip(3).collect();
        assert_eq!(decoded.iter().map(|i| i.code()).collect::<Vec<_>>(), [Code::Mov_r64_rm64, Code::Lea_r64_m, Code::Mov_rm64_r64]);
        assert_eq!((decoded[0].ip_rel_memory_address(), decoded[2].ip_rel_memory_address()), (slot, slot));
        assert_eq!(decoded[1].memory_displacement64() as i64, -1);
        assert!(decoded.iter().all(|i| i.rflags_modified() == 0));
    }

    #[test]
    #[should_panic(expected = "out of rel32 range")]
    fn load_rip_out_of_range() {
        load_rip(&mut Vec::new(), Register::RAX, IP, IP + RIP_REL_LEN as u64 + 0x8000_0000);
    }

    #[test]
    fn lea_rsp_displacements() {
        for disp in DISPS.into_iter().chain([-8, 8, 0xffff]) {
            let b = emit(|b| lea_rsp(b, disp));
            let i = decode_one(&b, IP, LEA_RSP_LEN);
            assert_eq!(i.code(), Code::Lea_r64_m);
            assert_eq!(i.op0_register(), Register::RSP);
            assert_eq!(i.memory_base(), Register::RSP);
            assert_eq!(i.memory_index(), Register::None);
            assert_eq!(i.memory_displacement64(), disp as i64 as u64);
        }
    }

    #[test]
    fn push_and_pop_all_registers() {
        for reg in GPRS {
            let len = if hw(reg) >= 8 { 2 } else { 1 };
            let i = decode_one(&emit(|b| push(b, reg)), IP, len);
            assert_eq!(i.code(), Code::Push_r64);
            assert_eq!(i.op0_register(), reg);
            let i = decode_one(&emit(|b| pop(b, reg)), IP, len);
            assert_eq!(i.code(), Code::Pop_r64);
            assert_eq!(i.op0_register(), reg);
        }
        assert_eq!(emit(|b| pop(b, Register::RCX)), [0x59]);
        assert_eq!(emit(|b| push(b, Register::RAX)), [0x50]);
    }

    #[test]
    fn push_imm64_values() {
        let values = [
            0,
            1,
            0x7f,
            0x80,
            0x7fff_fffe,
            0x7fff_ffff,
            0x8000_0000,
            0x8000_0001,
            0xffff_ffff,
            0x1_0000_0000,
            0x5555_5555_5555_5555,
            0xffff_ffff_8000_0000,
            0x7fff_ffff_ffff_ffff,
            u64::MAX,
        ];
        for value in values {
            let b = emit(|b| push_imm64(b, value));
            assert_eq!(b.len(), push_imm64_len(value));
            if push_imm64_is_single(value) {
                let i = decode_one(&b, IP, PUSH_IMM32_LEN);
                assert_eq!(i.code(), Code::Pushq_imm32);
                assert_eq!(i.immediate64(), value);
                continue;
            }
            assert!(value > 0x7fff_ffff);
            assert_eq!(b.len(), PUSH_IMM64_SPLIT_LEN);
            let is = decode_all(&b, IP);
            assert_eq!(is.len(), 3);
            assert_eq!(is[0].code(), Code::Lea_r64_m);
            assert_eq!((is[0].op0_register(), is[0].memory_base()), (Register::RSP, Register::RSP));
            assert_eq!(is[0].memory_displacement64(), -8i64 as u64);
            // The two dword stores, at [rsp] and [rsp + 4], make the value.
            let mut stored = 0u64;
            for (k, i) in is[1..].iter().enumerate() {
                assert_eq!(i.code(), Code::Mov_rm32_imm32);
                assert_eq!(i.memory_base(), Register::RSP);
                assert_eq!(i.memory_index(), Register::None);
                assert_eq!(i.memory_displacement64(), 4 * k as u64);
                stored |= (i.immediate32() as u64) << (32 * k);
            }
            assert_eq!(stored, value);
        }
    }

    #[test]
    fn ud2_and_nops() {
        let i = decode_one(&emit(ud2), IP, 2);
        assert_eq!(i.code(), Code::Ud2);
        for len in [1, 2] {
            let i = decode_one(&emit(|b| nop(b, len)), IP, len);
            assert_eq!(i.mnemonic(), Mnemonic::Nop);
        }
    }

    #[test]
    #[should_panic(expected = "no 3-byte nop")]
    fn no_three_byte_nop() {
        nop(&mut Vec::new(), 3);
    }

    /// Branch targets around `IP`: near, far, both edges of rel32.
    fn targets(end: u64) -> [u64; 6] {
        [end, IP, IP + 0x40, IP - 0x1000, end + i32::MAX as u64, end - 0x8000_0000]
    }

    #[test]
    fn jmp_rel32_patched() {
        for target in targets(IP + JMP_REL32_LEN as u64) {
            let mut b = Vec::new();
            let field = jmp_rel32(&mut b);
            assert_eq!(field, 1);
            patch_rel32(&mut b, field, IP, target);
            let i = decode_one(&b, IP, JMP_REL32_LEN);
            assert_eq!(i.code(), Code::Jmp_rel32_64);
            assert_eq!(i.near_branch_target(), target);
        }
    }

    #[test]
    fn jcc_rel32_all_conditions() {
        for cc in CCS {
            for target in targets(IP + JCC_REL32_LEN as u64) {
                let mut b = vec![0x90, 0x90, 0x90];
                let field = jcc_rel32(&mut b, cc);
                assert_eq!(field, 3 + 2);
                patch_rel32(&mut b, field, IP - 3, target);
                let i = decode_one(&b[3..], IP, JCC_REL32_LEN);
                assert!(i.is_jcc_near());
                assert_eq!(i.condition_code(), cc);
                assert_eq!(i.near_branch_target(), target);
            }
        }
    }

    #[test]
    fn jcc_rel8_all_conditions() {
        for cc in CCS {
            for skip in [0usize, 1, 45, 127] {
                let mut b = Vec::new();
                let field = jcc_rel8(&mut b, cc);
                assert_eq!(field, 1);
                b.resize(JCC_REL8_LEN + skip, 0x90);
                patch_rel8(&mut b, field, JCC_REL8_LEN + skip);
                let i = decode_one(&b[..2], IP, JCC_REL8_LEN);
                assert!(i.is_jcc_short());
                assert_eq!(i.condition_code(), cc);
                assert_eq!(i.near_branch_target(), IP + (JCC_REL8_LEN + skip) as u64);
            }
        }
    }

    #[test]
    fn patch_rel8_backward() {
        let mut b = vec![0x90; 10];
        let field = jcc_rel8(&mut b, ConditionCode::e);
        patch_rel8(&mut b, field, 0);
        let i = decode_one(&b[10..], IP + 10, JCC_REL8_LEN);
        assert_eq!(i.near_branch_target(), IP);
    }

    #[test]
    #[should_panic(expected = "out of rel8 range")]
    fn patch_rel8_out_of_range() {
        let mut b = Vec::new();
        let field = jcc_rel8(&mut b, ConditionCode::e);
        patch_rel8(&mut b, field, JCC_REL8_LEN + 128);
    }

    #[test]
    fn short_branch_copies_app_opcode() {
        // loop, jrcxz, jecxz (address-size prefix), loopne.
        for (opcode, code) in [
            (&[0xe2][..], Code::Loop_rel8_64_RCX),
            (&[0xe3][..], Code::Jrcxz_rel8_64),
            (&[0x67, 0xe3][..], Code::Jecxz_rel8_64),
            (&[0xe0][..], Code::Loopne_rel8_64_RCX),
        ] {
            let mut b = Vec::new();
            let field = short_branch(&mut b, opcode);
            assert_eq!(field, opcode.len());
            b.extend_from_slice(&[0x90; 9]);
            patch_rel8(&mut b, field, field + 1 + 9);
            let i = decode_one(&b[..field + 1], IP, opcode.len() + 1);
            assert_eq!(i.code(), code);
            assert_eq!(i.near_branch_target(), IP + b.len() as u64);
        }
    }

    #[test]
    fn jmp_rip_through_slot() {
        for slot in targets(IP + JMP_RIP_LEN as u64) {
            let i = decode_one(&emit(|b| jmp_rip(b, IP, slot)), IP, JMP_RIP_LEN);
            assert_eq!(i.code(), Code::Jmp_rm64);
            assert!(i.is_ip_rel_memory_operand());
            assert_eq!(i.ip_rel_memory_address(), slot);
        }
    }

    #[test]
    fn rel32_edges() {
        assert_eq!(rel32(0x1000, 0x1004), 0);
        assert_eq!(rel32(0x1000, 0x1000), -4);
        assert_eq!(rel32(0x1000, 0x1004 + i32::MAX as u64), i32::MAX);
        assert_eq!(rel32(0x1_0000_1000, 0x1_0000_1004 - 0x8000_0000), i32::MIN);
        // Wrapping around the top of the address space.
        assert_eq!(rel32(u64::MAX - 3, 0), 0);
        assert_eq!(rel32(4, u64::MAX), -9);
    }

    #[test]
    #[should_panic(expected = "out of rel32 range")]
    fn rel32_too_far_forward() {
        rel32(0x1000, 0x1004 + i32::MAX as u64 + 1);
    }

    #[test]
    #[should_panic(expected = "out of rel32 range")]
    fn rel32_too_far_backward() {
        rel32(0x1_0000_1000, 0x1_0000_1004 - 0x8000_0001);
    }

    #[test]
    fn exit_stub_layout() {
        let fcache_return = 0x7e00_0000_4000;
        for rax_slot in [0, 0x18, 0x400] {
            let mut b = vec![0xcc; 3];
            exit_stub(&mut b, IP, rax_slot, fcache_return);
            let is = decode_all(&b[3..], IP);
            assert_eq!(b.len() - 3, STUB_CODE_LEN);
            assert_eq!(STUB_CODE_LEN, 21);
            assert_eq!(is.len(), 3);
            assert_eq!(is[0].code(), Code::Mov_rm64_r64);
            assert_gs_absolute(&is[0], 0, rax_slot);
            assert_eq!(is[0].op1_register(), Register::RAX);
            assert_eq!(is[1].code(), Code::Lea_r64_m);
            assert_eq!(is[1].op0_register(), Register::RAX);
            // rax points at the exit data, right after the stub's code.
            assert_eq!(is[1].ip_rel_memory_address(), IP + STUB_CODE_LEN as u64);
            assert_eq!(is[2].code(), Code::Jmp_rel32_64);
            assert_eq!(is[2].near_branch_target(), fcache_return);
        }
    }

    #[test]
    fn relative_exit_stub_layout() {
        for (rax_slot, return_slot) in [(0, 8), (0x18, 0x200)] {
            let b = emit(|b| relative_exit_stub(b, rax_slot, return_slot));
            assert_eq!(b.len(), RELATIVE_STUB_CODE_LEN);
            assert_eq!(RELATIVE_STUB_CODE_LEN, 24);
            let is = decode_all(&b, IP);
            assert_eq!(is.len(), 3);
            assert_eq!(is[0].code(), Code::Mov_rm64_r64);
            assert_gs_absolute(&is[0], 0, rax_slot);
            assert_eq!(is[0].op1_register(), Register::RAX);
            assert_eq!(is[1].code(), Code::Lea_r64_m);
            assert_eq!(is[1].ip_rel_memory_address(), IP + RELATIVE_STUB_CODE_LEN as u64);
            assert_eq!(is[2].code(), Code::Jmp_rm64);
            assert_gs_absolute(&is[2], 0, return_slot);
        }
    }

    fn conds() -> impl Iterator<Item = Option<ConditionCode>> {
        core::iter::once(None).chain(CCS.into_iter().map(Some))
    }

    #[test]
    fn exit_branch_forms() {
        for cond in conds() {
            for padded in [false, true] {
                let mut b = Vec::new();
                let field = exit_branch(&mut b, cond, padded);
                assert_eq!(field, exit_branch_rel32_offset(cond));
                let branch_len = if cond.is_some() { JCC_REL32_LEN } else { JMP_REL32_LEN };
                assert_eq!(b.len(), if padded { persistable_exit_len(cond) } else { branch_len });
                let target = IP + 0x100;
                patch_rel32(&mut b, field, IP, target);
                let is = decode_all(&b, IP);
                assert_eq!(is[0].len(), branch_len);
                assert_eq!(is[0].near_branch_target(), target);
                assert_eq!(is[0].condition_code(), cond.unwrap_or(ConditionCode::None));
                assert_eq!(is.len(), 1 + padded as usize);
                if padded {
                    assert_eq!(is[1].mnemonic(), Mnemonic::Nop);
                }
            }
        }
    }

    #[test]
    fn a_trampoline_jumps_through_its_slot() {
        for slot in targets(IP + JMP_RIP_LEN as u64) {
            let b = emit(|b| slot_trampoline(b, IP, slot));
            assert_eq!(b.len(), TRAMPOLINE_LEN);
            let i = decode_one(&b[..JMP_RIP_LEN], IP, JMP_RIP_LEN);
            assert_eq!(i.code(), Code::Jmp_rm64);
            assert_eq!(i.ip_rel_memory_address(), slot);
            assert_eq!(&b[JMP_RIP_LEN..], [0xcc, 0xcc]);
        }
    }

    #[test]
    fn fall_through_forms_are_few_no_ops() {
        for len in persistable_exit_len(None)..=persistable_exit_len(None) + 15 {
            let b = emit(|b| exit_falls_through(b, len));
            assert_eq!(b.len(), len);
            let is = decode_all(&b, IP);
            assert!(is.iter().all(|i| i.mnemonic() == Mnemonic::Nop), "{len} bytes: {is:?}");
            assert_eq!(is.len(), len.div_ceil(LONG_NOPS.len()));
        }
    }

    #[test]
    fn persisted_exit_direct() {
        for cond in conds() {
            let branch_end = IP + exit_branch_rel32_offset(cond) as u64 + 4;
            for target in targets(branch_end) {
                let b = emit(|b| exit_direct(b, IP, cond, target));
                assert_eq!(b.len(), persistable_exit_len(cond));
                let is = decode_all(&b, IP);
                assert_eq!(is.len(), 2);
                assert_eq!(is[0].near_branch_target(), target);
                match cond {
                    Some(cc) => {
                        assert!(is[0].is_jcc_near());
                        assert_eq!(is[0].condition_code(), cc);
                    }
                    None => assert_eq!(is[0].code(), Code::Jmp_rel32_64),
                }
                assert_eq!(is[1].mnemonic(), Mnemonic::Nop);
            }
        }
    }

    #[test]
    fn persisted_exit_via_slot() {
        for cond in conds() {
            for slot in targets(IP + persistable_exit_len(cond) as u64) {
                let mut b = vec![0xcc; 5];
                exit_via_slot(&mut b, IP, cond, slot);
                let b = &b[5..];
                assert_eq!(b.len(), persistable_exit_len(cond));
                let is = decode_all(b, IP);
                let jmp = is.last().unwrap();
                assert_eq!(jmp.code(), Code::Jmp_rm64);
                assert_eq!(jmp.ip_rel_memory_address(), slot);
                match cond {
                    Some(cc) => {
                        assert_eq!(is.len(), 2);
                        assert!(is[0].is_jcc_short());
                        // Taken when the exit is not: over the jump.
                        assert_eq!(is[0].condition_code(), negate(cc));
                        assert_eq!(is[0].near_branch_target(), IP + b.len() as u64);
                    }
                    None => assert_eq!(is.len(), 1),
                }
            }
        }
    }

    /// The bytes the runtime emitted before this module existed, for a few
    /// cases: the encodings did not change.
    #[test]
    fn known_bytes() {
        assert_eq!(emit(|b| store_to_gs(b, 0x10, Register::R9)), [0x65, 0x4c, 0x89, 0x0c, 0x25, 0x10, 0, 0, 0]);
        assert_eq!(emit(|b| load_from_gs(b, Register::RCX, 0x20)), [0x65, 0x48, 0x8b, 0x0c, 0x25, 0x20, 0, 0, 0]);
        assert_eq!(emit(|b| lea_rip(b, Register::RAX, 5)), [0x48, 0x8d, 0x05, 5, 0, 0, 0]);
        assert_eq!(emit(|b| jmp_gs(b, 0x30)), [0x65, 0xff, 0x24, 0x25, 0x30, 0, 0, 0]);
        assert_eq!(emit(|b| load_rip(b, Register::R12, 0x1000, 0x1007)), [0x4c, 0x8b, 0x25, 0, 0, 0, 0]);
        assert_eq!(emit(|b| exit_via_slot(b, 0x1000, Some(ConditionCode::e), 0x1008)), [0x75, 6, 0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(emit(|b| exit_direct(b, 0x1000, Some(ConditionCode::b), 0x1008)), [0x0f, 0x82, 2, 0, 0, 0, 0x66, 0x90]);
        assert_eq!(emit(|b| exit_direct(b, 0x1000, None, 0x1006)), [0xe9, 1, 0, 0, 0, 0x90]);
        assert_eq!(emit(|b| load_indirect_self(b, Register::R13)), [0x4d, 0x8b, 0x6d, 0x00]);
    }
}
