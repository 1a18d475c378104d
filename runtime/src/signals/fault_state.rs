//! Translating a fault in the code cache back to the application: the app
//! pc of the instruction that faulted and the app's registers, undoing what
//! mangling had changed at that point (a spilled register, a moved rsp).

use crate::translate::mangle::Fixup;
use crate::signals::frames::{frame_xstate_size, InterruptedContext};
use crate::thread::{reg, ThreadContext};

/// Fills `ctx` (registers, flags, extended state, `next_pc`) with the app
/// state at the fault; false if the faulting pc is not in a fragment.
pub(crate) fn fault_to_app_state(ctx: &mut ThreadContext, frame: &InterruptedContext) -> bool {
    let pc = frame.rip();
    let Some((app_pc, fixup)) = crate::translator::translation_at(pc) else {
        return false;
    };
    let mut gpr = frame.gprs();
    match fixup {
        Fixup::None => {}
        Fixup::Spilled { reg: r, slot } => {
            // SAFETY: slot is the offset of a u64 field of the ThreadContext.
            gpr[r as usize] = unsafe { *((ctx as *const ThreadContext as *const u8).add(slot as usize) as *const u64) };
        }
        Fixup::Spilled2 { reg: r, slot, reg2, slot2 } => {
            // SAFETY: both slots are offsets of u64 fields of the ThreadContext.
            unsafe {
                let base = ctx as *const ThreadContext as *const u8;
                gpr[r as usize] = *(base.add(slot as usize) as *const u64);
                gpr[reg2 as usize] = *(base.add(slot2 as usize) as *const u64);
            }
        }
        Fixup::RspMoved(delta) => gpr[reg::RSP] = gpr[reg::RSP].wrapping_sub(delta as i64 as u64),
    }
    ctx.gpr = gpr;
    ctx.rflags = frame.eflags();
    if let Some(fp) = frame.fpstate() {
        // SAFETY: the kernel's XSAVE image of the interrupted (app) state,
        // of the size it says it has.
        unsafe {
            let size = frame_xstate_size(fp);
            core::ptr::copy_nonoverlapping(fp as *const u8, ctx.xsave_area as *mut u8, size as usize)
        };
        ctx.xstate_whole = 1;
    }
    ctx.next_pc = app_pc;
    true
}
