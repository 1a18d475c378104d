//! The legacy vsyscall page (`0xffffffffff600000`): old static binaries
//! call `time`, `gettimeofday` and `getcpu` at fixed addresses there. The
//! kernel maps it execute-only and emulates a call to each entry point
//! (`emulate_vsyscall`): it makes the matching system call and returns to
//! the caller. The runtime cannot read the page to translate it, so it does
//! the same.

use crate::os::app_prot::Access;
use crate::translate::bb_builder::CodeFault;
use crate::os::sys::{self, nr};
use crate::thread::{reg, ThreadContext};

const PAGE: u64 = 0xffff_ffff_ff60_0000;
/// Each entry point is 1 KiB apart.
const ENTRY_STRIDE: u64 = 0x400;
const EFAULT: i64 = 14;
const SEGV_MAPERR: i32 = 1;
/// `si_code` of a signal the kernel forces (`force_sig`).
const SI_KERNEL: i32 = 0x80;

pub(crate) fn contains(pc: u64) -> bool {
    pc & !0xfff == PAGE
}

/// Runs the vsyscall entry `pc` for the app's registers in `ctx` and
/// returns where the app continues (its caller), or the fault the kernel
/// would raise instead.
pub(crate) fn emulate(ctx: &mut ThreadContext, pc: u64) -> Result<u64, CodeFault> {
    if crate::os::app_prot::access(PAGE) != Access::Executable {
        // vsyscall=none: nothing is mapped there.
        return Err(CodeFault { addr: pc, si_code: SEGV_MAPERR });
    }
    let number = match (pc - PAGE) / ENTRY_STRIDE {
        _ if (pc - PAGE) % ENTRY_STRIDE != 0 => None,
        0 => Some(nr::GETTIMEOFDAY),
        1 => Some(nr::TIME),
        2 => Some(nr::GETCPU),
        _ => None,
    };
    // A misaligned entry: the kernel kills with a forced SIGSEGV.
    let number = number.ok_or(CodeFault { addr: 0, si_code: SI_KERNEL })?;
    let sp = ctx.gpr[reg::RSP];
    if !crate::os::safe_read::readable(sp) || !crate::os::safe_read::readable(sp + 7) {
        return Err(CodeFault { addr: sp, si_code: SEGV_MAPERR });
    }
    let g = &ctx.gpr;
    // SAFETY: the app's own request, with its own pointers.
    let r = unsafe { sys::syscall(number, g[reg::RDI], g[reg::RSI], g[reg::RDX]) };
    if r == -EFAULT {
        // The kernel checks the buffers first and faults instead.
        return Err(CodeFault { addr: 0, si_code: SI_KERNEL });
    }
    // SAFETY: checked readable just above.
    let caller = unsafe { (sp as *const u64).read_unaligned() };
    ctx.gpr[reg::RAX] = r as u64;
    ctx.gpr[reg::RSP] = sp + 8;
    Ok(caller)
}
