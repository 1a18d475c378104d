//! Predicted returns: a translated `ret` the CPU's return stack predicts.
//!
//! The app's stack keeps app return addresses (transparency), so a
//! translated `ret` cannot simply return to one. Instead a call runs a real
//! `call` over a landing pad (pushing the pad's cache address and, in the
//! CPU, a return-stack entry), moves that address into a per-thread slot
//! chosen by the low 12 bits of the app return address (the same in every
//! run: modules are mapped page-aligned), and puts the app return address
//! in its place. A `ret` reads the app address on the stack, finds its
//! slot, checks that the slot's call returns there, writes the pad's
//! address over the app's and runs a real `ret`: the return stack
//! predicts it, where the lookup's indirect jump is predicted per site
//! only (one `ret` returning to many callers mispredicts). The pad is a
//! direct exit to the block at the app return address.
//!
//! A slot another call filled since, or none filled (a call in a trace,
//! a call of another thread's making) fails the check: the `ret` goes on
//! through the lookup, as every `ret` did before. Pads stay valid code as
//! long as the runtime lives (cache code is never freed while it may run),
//! so a stale slot is only ever a miss. Calls whose return address ends in
//! 12 zero bits keep the plain form: slot 0 is never filled, and a thread
//! with a signal pending selects it (mask 0) so its returns go the way
//! that looks at pending signals.

use alloc::vec::Vec;

use crate::thread::{offsets as off, ThreadContext};
use crate::translate::encoder;

/// Slots per thread, one per value of the return address's low 12 bits.
pub(crate) const SLOTS: usize = 4096;
const MASK: u64 = SLOTS as u64 - 1;

/// Whether blocks' calls and returns take the predicted form: asked for
/// (`-predicted_returns`), and the CPU has BMI2 (`pext` selects the slot
/// without touching the flags). Code built so differs, so the cache key
/// says which (`persistence/key.rs`). Not the default: measured warm
/// (paired, ratio to native), make -j2 of 20 files runs 3-8% faster with
/// it, python3's loops 5-10% slower (their callers are few and predicted
/// as well by the lookup's jump; the call's extra work is not paid back),
/// gcc -c and python3 -c pass alike within noise.
pub(crate) fn enabled() -> bool {
    crate::options::get().predicted_returns && crate::translate::ibl::has_bmi2()
}

/// The slot of a call returning to `app_ret`; None for the plain form.
pub(crate) fn slot_of(app_ret: u64) -> Option<u16> {
    let slot = (app_ret & MASK) as u16;
    (slot != 0).then_some(slot)
}

/// Lets the thread's returns use their slots (the dispatcher does so each
/// time it enters the cache: a delivered signal had stopped them).
pub(crate) fn publish(ctx: &mut ThreadContext) {
    ctx.ret_mask = if enabled() { MASK } else { 0 };
}

/// Sends every return of the thread the way that looks at pending signals.
pub(crate) fn stop_predicting(ctx: &mut ThreadContext) {
    ctx.ret_mask = 0;
}

fn slot_offset(slot: u16) -> usize {
    off::RET_CACHE + slot as usize * 16
}

/// `call` over the landing pad that follows; returns the rel32 field, to
/// be pointed past the pad with [`encoder::patch_rel32`].
pub(crate) fn call_over_pad(out: &mut Vec<u8>) -> usize {
    out.push(0xe8);
    out.extend_from_slice(&[0; 4]);
    out.len() - 4
}

/// `pop qword gs:[slot's pad]`: the pad's address the `call` pushed, off
/// the app stack into the slot.
pub(crate) fn pad_to_slot(out: &mut Vec<u8>, slot: u16) {
    out.extend_from_slice(&[0x65, 0x8f, 0x04, 0x25]);
    out.extend_from_slice(&((slot_offset(slot) + 8) as u32).to_le_bytes());
}

/// `mov gs:[slot's return address], rax`.
pub(crate) fn return_address_to_slot(out: &mut Vec<u8>, slot: u16) {
    encoder::store_to_gs(out, slot_offset(slot), iced_x86::Register::RAX);
}

/// `mov qword gs:[slot's return address], imm32` (sign-extended) for a
/// return address below 2 GiB.
pub(crate) fn return_address_to_slot_imm(out: &mut Vec<u8>, slot: u16, app_ret: u64) {
    debug_assert!(app_ret < crate::translate::mangle::OUTRIGHT_BELOW);
    out.extend_from_slice(&[0x65, 0x48, 0xc7, 0x04, 0x25]);
    out.extend_from_slice(&(slot_offset(slot) as u32).to_le_bytes());
    out.extend_from_slice(&(app_ret as u32).to_le_bytes());
}

/// `mov rcx, [rsp]`: the app return address (the app's rcx is in
/// `gs:[IBL_RCX]`); the only instruction of a return that can fault (a
/// bad stack), before anything moved.
pub(crate) fn read_return_address(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x48, 0x8b, 0x0c, 0x24]);
}

/// The rest of a predicted `ret`, after [`read_return_address`].
pub(crate) fn predicted_return() -> &'static [u8] {
    extern "C" {
        static dbi_predicted_return_start: u8;
        static dbi_predicted_return_end: u8;
    }
    // SAFETY: both symbols bound the template in the runtime's text.
    unsafe {
        let start = core::ptr::addr_of!(dbi_predicted_return_start);
        let end = core::ptr::addr_of!(dbi_predicted_return_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    }
}

// rcx holds the app return address, still on the stack; the app's rcx is
// in gs:[IBL_RCX]. The check is flag free (`not`, `lea`, `jrcxz`): the
// flags may be live at the return target. A miss is counted as a lookup
// and leaves as one whose first probe missed: the return popped, rcx the
// target, rax and rdx saved.
core::arch::global_asm!(
    ".globl dbi_predicted_return_start",
    ".globl dbi_predicted_return_end",
    "dbi_predicted_return_start:",
    "    mov qword ptr gs:[{ibl_rax}], rax",
    "    mov qword ptr gs:[{ibl_rdx}], rdx",
    "    pext rax, rcx, qword ptr gs:[{mask}]",
    "    lea rax, [rax + rax]",
    "    mov rdx, qword ptr gs:[rax*8 + {cache}]",
    "    not rdx",
    "    lea rdx, [rdx + rcx + 1]",
    "    mov rax, qword ptr gs:[rax*8 + {cache} + 8]",
    "    mov rcx, rdx",
    "    mov rdx, qword ptr gs:[{ibl_rdx}]",
    "    jrcxz 2f",
    // Counted with the lookups (-stats' "indirect lookups"), flag free.
    "    mov rcx, qword ptr gs:[{lookups}]",
    "    lea rcx, [rcx + 1]",
    "    mov qword ptr gs:[{lookups}], rcx",
    "    mov rcx, qword ptr [rsp]",
    "    lea rsp, [rsp + 8]",
    "    jmp qword ptr gs:[{slow_path}]",
    "2:",
    "    mov qword ptr [rsp], rax",
    "    mov rax, qword ptr gs:[{ibl_rax}]",
    "    mov rcx, qword ptr gs:[{ibl_rcx}]",
    "    ret",
    "dbi_predicted_return_end:",
    ibl_rax = const off::IBL_RAX,
    ibl_rcx = const off::IBL_RCX,
    ibl_rdx = const off::IBL_RDX,
    mask = const off::RET_MASK,
    cache = const off::RET_CACHE,
    slow_path = const off::IBL_SLOW_PATH,
    lookups = const off::IBL_LOOKUPS,
);

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};

    fn decoded(code: &[u8]) -> Vec<iced_x86::Instruction> {
        Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE).into_iter().collect()
    }

    #[test]
    fn a_predicted_return_writes_no_flag_and_only_registers_it_restores() {
        let instrs = decoded(predicted_return());
        assert!(instrs.iter().all(|i| !i.is_invalid()));
        let mut info = iced_x86::InstructionInfoFactory::new();
        let mut written = Vec::new();
        for i in &instrs {
            assert_eq!(i.rflags_modified(), 0, "{i} writes flags");
            for r in info.info(i).used_registers() {
                if matches!(r.access(), iced_x86::OpAccess::Write | iced_x86::OpAccess::ReadWrite | iced_x86::OpAccess::CondWrite) {
                    written.push(r.register().full_register());
                }
            }
        }
        // rax, rcx and rdx come back from their gs: slots on both ways out
        // (the lookup's way on restores them too); rsp moves as `ret` does.
        written.sort();
        written.dedup();
        assert_eq!(written, [Register::RAX, Register::RCX, Register::RDX, Register::RSP]);
        let loads = |reg: Register, slot: usize| {
            instrs.iter().any(|i| i.mnemonic() == Mnemonic::Mov && i.op0_register() == reg && i.memory_segment() == Register::GS && i.memory_displacement64() == slot as u64)
        };
        assert!(loads(Register::RAX, off::IBL_RAX) && loads(Register::RCX, off::IBL_RCX) && loads(Register::RDX, off::IBL_RDX));
        assert_eq!(instrs.last().unwrap().mnemonic(), Mnemonic::Ret);
        // The slot is selected with gs-relative operands only.
        let pext = instrs.iter().find(|i| i.mnemonic() == Mnemonic::Pext).expect("pext");
        assert_eq!(pext.memory_segment(), Register::GS);
        assert_eq!(pext.memory_displacement64(), off::RET_MASK as u64);
    }

    #[test]
    fn call_side_stores_name_the_slot() {
        let mut code = Vec::new();
        pad_to_slot(&mut code, 5);
        return_address_to_slot(&mut code, 5);
        return_address_to_slot_imm(&mut code, 5, 0x40_1234);
        let i = decoded(&code);
        assert_eq!(i[0].mnemonic(), Mnemonic::Pop);
        assert_eq!(i[0].memory_segment(), Register::GS);
        assert_eq!(i[0].memory_displacement64(), (off::RET_CACHE + 5 * 16 + 8) as u64);
        assert_eq!(i[1].mnemonic(), Mnemonic::Mov);
        assert_eq!(i[1].memory_displacement64(), (off::RET_CACHE + 5 * 16) as u64);
        assert_eq!(i[2].memory_displacement64(), (off::RET_CACHE + 5 * 16) as u64);
        assert_eq!(i[2].immediate32(), 0x40_1234);
        assert_eq!(slot_of(0x7f00_0000_1000), None);
        assert_eq!(slot_of(0x7f00_0000_1fff), Some(0xfff));
    }
}
