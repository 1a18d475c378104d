//! System calls made by the application: every `syscall` in the cache exits
//! here. Most pass straight to the kernel; those that touch the runtime's
//! own state (GS, the break, process exit, new processes) and, under
//! `-no_native_exec`, those that would make memory executable are handled.

use crate::sys::{self, nr};
use crate::thread::{reg, ThreadContext};
use crate::stats::{self, STATS};

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;

/// Performs the system call whose registers are in `ctx` and returns the
/// app pc to continue at (`next`, the instruction after the `syscall`).
pub fn handle(ctx: &mut ThreadContext, next: u64) -> u64 {
    stats::add(&STATS.syscalls, 1);
    let g = &ctx.gpr;
    let number = g[reg::RAX];
    let mut args = [g[reg::RDI], g[reg::RSI], g[reg::RDX], g[reg::R10], g[reg::R8], g[reg::R9]];
    let result = match number {
        nr::EXIT | nr::EXIT_GROUP => exit_process(ctx, args[0] as i32),
        nr::BRK => crate::brk::brk(args[0]) as i64,
        nr::ARCH_PRCTL => arch_prctl(ctx, args[0], args[1]),
        nr::MMAP => {
            let wants_exec = args[2] & sys::PROT_EXEC != 0;
            args[2] = executable_protection(args[2]);
            let r = raw(number, args);
            if r >= 0 && wants_exec && args[4] as i64 >= 0 {
                crate::modules::note_file_mapping(args[4] as i64, r as u64, args[5]);
            }
            r
        }
        nr::MPROTECT => {
            args[2] = executable_protection(args[2]);
            raw(number, args)
        }
        nr::CLONE => clone(ctx, args),
        // glibc falls back to clone when clone3 is missing.
        nr::CLONE3 => -sys::ENOSYS,
        // The child gets its own copy of memory until threads (and a shared
        // runtime) arrive: vfork becomes fork.
        nr::VFORK => raw(nr::FORK, [0; 6]),
        _ => raw(number, args),
    };
    ctx.gpr[reg::RAX] = result as u64;
    // What the kernel's `syscall` leaves in rcx and r11.
    ctx.gpr[reg::RCX] = next;
    ctx.gpr[reg::R11] = ctx.rflags;
    next
}

fn raw(number: u64, args: [u64; 6]) -> i64 {
    // SAFETY: the application's own request, with its own pointers.
    unsafe { sys::syscall6(number, args) }
}

/// The protection the runtime actually gives app memory: code must stay
/// readable for the decoder, and under `-no_native_exec` is never executable.
fn executable_protection(prot: u64) -> u64 {
    if prot & sys::PROT_EXEC == 0 {
        return prot;
    }
    let prot = prot | sys::PROT_READ;
    if crate::options::get().no_native_exec { prot & !sys::PROT_EXEC } else { prot }
}

fn exit_process(ctx: &ThreadContext, status: i32) -> ! {
    crate::stats::report(ctx.ibl_lookups);
    sys::exit_group(status)
}

fn arch_prctl(ctx: &mut ThreadContext, code: u64, addr: u64) -> i64 {
    match code {
        sys::ARCH_SET_GS => {
            ctx.app_gs_base = addr;
            0
        }
        sys::ARCH_GET_GS => {
            // SAFETY: the app asked for its GS base to be stored at addr.
            unsafe { (addr as *mut u64).write_unaligned(ctx.app_gs_base) };
            0
        }
        _ => raw(nr::ARCH_PRCTL, [code, addr, 0, 0, 0, 0]),
    }
}

/// clone: new processes (no CLONE_VM) continue under translation on a copy
/// of the runtime. Threads arrive with the threads work; until then a
/// CLONE_VM|CLONE_VFORK spawn runs as a plain fork.
fn clone(ctx: &mut ThreadContext, args: [u64; 6]) -> i64 {
    let flags = args[0];
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        verbose!("threads are not supported yet: clone(CLONE_VM) refused");
        return -11; // EAGAIN, as for a process at its thread limit.
    }
    let flags = flags & !(CLONE_VM | CLONE_VFORK);
    // The child runs runtime code on (its copy of) this runtime stack; the
    // app's requested stack becomes the child's app rsp.
    let r = raw(nr::CLONE, [flags, 0, args[2], args[3], args[4], 0]);
    if r == 0 && args[1] != 0 {
        ctx.gpr[reg::RSP] = args[1];
    }
    r
}
