//! Fixed instruction sequences the mangler and emitter produce, encoded by
//! hand because they are few, hot and must have exact, known lengths (exit
//! stubs are patched at fixed offsets). Registers are hardware numbers 0-15.

use alloc::vec::Vec;

/// Appends `mov qword ptr gs:[offset], reg`.
pub fn store_to_gs(out: &mut Vec<u8>, offset: usize, reg: u8) {
    out.extend_from_slice(&[0x65, 0x48 | (reg >> 3) << 2, 0x89, 0x04 | (reg & 7) << 3, 0x25]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

/// Appends `mov reg, qword ptr gs:[offset]`.
pub fn load_from_gs(out: &mut Vec<u8>, reg: u8, offset: usize) {
    out.extend_from_slice(&[0x65, 0x48 | (reg >> 3) << 2, 0x8b, 0x04 | (reg & 7) << 3, 0x25]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
}

/// Appends `mov reg, imm64`.
pub fn mov_imm64(out: &mut Vec<u8>, reg: u8, imm: u64) {
    out.extend_from_slice(&[0x48 | (reg >> 3), 0xb8 + (reg & 7)]);
    out.extend_from_slice(&imm.to_le_bytes());
}

/// Appends `mov reg, qword ptr [reg]`.
pub fn load_indirect_self(out: &mut Vec<u8>, reg: u8) {
    let rex = 0x48 | (reg >> 3) << 2 | (reg >> 3);
    match reg & 7 {
        // rsp/r12 need a SIB byte, rbp/r13 a zero displacement.
        4 => out.extend_from_slice(&[rex, 0x8b, 0x04 | (reg & 7) << 3, 0x24]),
        5 => out.extend_from_slice(&[rex, 0x8b, 0x45 | (reg & 7) << 3, 0x00]),
        r => out.extend_from_slice(&[rex, 0x8b, r << 3 | r]),
    }
}

/// Appends instructions that push the 64-bit `value` without changing flags
/// or any register but rsp.
pub fn push_imm64(out: &mut Vec<u8>, value: u64) {
    if value <= 0x7fff_ffff {
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
}

/// Appends `lea rsp, [rsp + disp]`: moves rsp without touching flags.
pub fn lea_rsp(out: &mut Vec<u8>, disp: i32) {
    out.extend_from_slice(&[0x48, 0x8d, 0xa4, 0x24]);
    out.extend_from_slice(&disp.to_le_bytes());
}

/// `pop rcx`.
pub const POP_RCX: u8 = 0x59;


/// Appends `jmp rel32` (target fixed up later) and returns the offset of the
/// rel32 field.
pub fn jmp_rel32(out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[0xe9, 0, 0, 0, 0]);
    out.len() - 4
}

/// Appends `jcc rel32` for condition code `cc` (0-15) and returns the offset
/// of the rel32 field.
pub fn jcc_rel32(out: &mut Vec<u8>, cc: u8) -> usize {
    out.extend_from_slice(&[0x0f, 0x80 | cc, 0, 0, 0, 0]);
    out.len() - 4
}

/// Writes a rel32 at `field` (an address) so that the branch ending right
/// after it reaches `target`.
pub fn rel32(field: u64, target: u64) -> i32 {
    let delta = target.wrapping_sub(field + 4) as i64;
    i32::try_from(delta).expect("branch target out of rel32 range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel32_reaches_target() {
        assert_eq!(rel32(0x1000, 0x1004), 0);
        assert_eq!(rel32(0x1000, 0x1000), -4);
    }
}
