//! System calls made by the application: every `syscall` in the cache exits
//! here. Most pass straight to the kernel; those that touch the runtime's
//! own state (GS, the break, process exit, new processes) and, under
//! `-no_native_exec`, those that would make memory executable are handled.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::context_switch;
use crate::sys::{self, nr};
use crate::thread::{reg, ThreadContext};
use crate::stats::{self, STATS};

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const SIGCHLD: u64 = 17;

/// Performs the system call whose registers are in `ctx` and returns the
/// app pc to continue at (`next`, the instruction after the `syscall`).
pub fn handle(ctx: &mut ThreadContext, next: u64) -> u64 {
    stats::add(&STATS.syscalls, 1);
    let g = &ctx.gpr;
    let number = g[reg::RAX];
    let mut args = [g[reg::RDI], g[reg::RSI], g[reg::RDX], g[reg::R10], g[reg::R8], g[reg::R9]];
    let result = match number {
        nr::EXIT_GROUP => exit_process(ctx, args[0] as i32),
        nr::EXIT => exit_thread(ctx, args[0]),
        nr::BRK => crate::brk::brk(args[0]) as i64,
        nr::ARCH_PRCTL => arch_prctl(ctx, args[0], args[1]),
        nr::MMAP => {
            let app_prot = args[2];
            let wants_exec = app_prot & sys::PROT_EXEC != 0;
            args[2] = executable_protection(args[2]);
            let r = raw(number, args);
            if r >= 0 && wants_exec && args[4] as i64 >= 0 {
                crate::modules::note_file_mapping(args[4] as i64, r as u64, args[1], args[5]);
            }
            if r >= 0 {
                crate::smc::note_protection(r as u64, args[1], app_prot);
            }
            r
        }
        nr::MPROTECT => {
            let app_prot = args[2];
            args[2] = executable_protection(args[2]);
            let r = raw(number, args);
            if r == 0 {
                crate::smc::note_protection(args[0], args[1], app_prot);
            }
            // Code that stops being executable, or becomes writable (to be
            // rewritten: JITs), must be translated afresh when run again.
            if r == 0 && (app_prot & sys::PROT_EXEC == 0 || app_prot & sys::PROT_WRITE != 0) {
                crate::dispatch::flush_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::MUNMAP => {
            let r = raw(number, args);
            if r == 0 {
                crate::smc::note_protection(args[0], args[1], 0);
                crate::modules::note_unmap(args[0], args[0] + sys::page_up(args[1]));
                crate::dispatch::flush_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::MREMAP => {
            let r = raw(number, args);
            if r >= 0 {
                crate::dispatch::flush_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::CLONE => clone(ctx, args, next),
        nr::EXECVE => crate::exec::execve(args[0], args[1], args[2]),
        nr::RT_SIGACTION => crate::signal::rt_sigaction(args[0], args[1], args[2], args[3]),
        nr::SIGALTSTACK => crate::signal::sigaltstack(ctx, args[0], args[1]),
        // Restores every register itself: nothing below applies.
        nr::RT_SIGRETURN => return crate::signal::rt_sigreturn(ctx),
        nr::READLINK => crate::self_exe::readlink(sys::AT_FDCWD, args[0], args[1], args[2])
            .unwrap_or_else(|| raw(number, args)),
        nr::READLINKAT => crate::self_exe::readlink(args[0] as i64, args[1], args[2], args[3])
            .unwrap_or_else(|| raw(number, args)),
        // glibc falls back to clone when clone3 is missing.
        nr::CLONE3 => -sys::ENOSYS,
        nr::VFORK => clone(ctx, [CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0], next),
        _ => raw(number, args),
    };
    // What the kernel's `syscall` leaves in rcx and r11.
    ctx.gpr[reg::RCX] = next;
    ctx.gpr[reg::R11] = ctx.rflags;
    if crate::signal::should_restart(ctx, number, result) {
        // The handler runs first, then the call again, as with SA_RESTART natively.
        return next - 2;
    }
    ctx.gpr[reg::RAX] = result as u64;
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

/// Threads alive in this process, to tell a thread's `exit` from the
/// process's last one.
static LIVE_THREADS: AtomicUsize = AtomicUsize::new(1);

/// clone: a child that shares memory (a thread, or a vfork child) gets a
/// context and runtime stack of its own and enters the cache at the
/// instruction after the `syscall`; a new process continues on its copy of
/// the runtime.
fn clone(ctx: &mut ThreadContext, args: [u64; 6], next: u64) -> i64 {
    let [flags, new_sp, ptid, ctid, tls, _] = args;
    if flags & CLONE_VM == 0 {
        // The child runs runtime code on (its copy of) this runtime stack;
        // the app's requested stack becomes the child's app rsp.
        let r = raw(nr::CLONE, [flags, 0, ptid, ctid, tls, 0]);
        if r == 0 {
            LIVE_THREADS.store(1, Relaxed);
            if new_sp != 0 {
                ctx.gpr[reg::RSP] = new_sp;
            }
        }
        return r;
    }
    let child = ctx.clone_for_child();
    child.gpr[reg::RAX] = 0;
    child.gpr[reg::RCX] = next;
    child.gpr[reg::R11] = ctx.rflags;
    if new_sp != 0 {
        child.gpr[reg::RSP] = new_sp;
    }
    child.next_pc = next;
    let vfork = flags & CLONE_VFORK != 0;
    child.is_vfork_child = vfork as u64;
    if !vfork {
        LIVE_THREADS.fetch_add(1, Relaxed);
    }
    let (mapping, len) = child.mapping();
    // No signal may reach the child before its GS points at its context: it
    // starts with everything blocked and restores the app's mask itself.
    let app_mask = crate::signal::block_all();
    child.pending.start_mask = app_mask;
    let r = context_switch::clone_with_context(flags, ptid, ctid, tls, child);
    crate::signal::set_mask(2, app_mask);
    if r < 0 && !vfork {
        LIVE_THREADS.fetch_sub(1, Relaxed);
    }
    if r < 0 || vfork {
        // A vfork parent resumes only once the child has exec'd or exited,
        // so nothing uses the child's context any more.
        // SAFETY: the mapping is the child's context, no longer in use.
        unsafe { sys::munmap(mapping, len) };
    }
    r
}

/// `exit` of one thread: the process ends with its last thread.
fn exit_thread(ctx: &mut ThreadContext, status: u64) -> ! {
    if ctx.is_vfork_child != 0 {
        // The parent frees this context once this child is gone.
        raw(nr::EXIT, [status, 0, 0, 0, 0, 0]);
        unreachable!();
    }
    stats::add(&STATS.ibl_lookups_of_exited_threads, ctx.ibl_lookups);
    if LIVE_THREADS.fetch_sub(1, Relaxed) == 1 {
        exit_process(ctx, status as i32);
    }
    let all: u64 = !0;
    // SAFETY: blocking every signal for the rest of this thread's life, so
    // no handler runs on the stack about to be unmapped.
    unsafe { sys::syscall6(nr::RT_SIGPROCMASK, [0, &all as *const u64 as u64, 0, 8, 0, 0]) };
    // SAFETY: the thread is leaving; nothing else refers to its context.
    unsafe { context_switch::exit_thread(ctx, status) }
}
