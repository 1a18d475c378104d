//! System calls made by the application: every `syscall` in the cache exits
//! here. Most pass straight to the kernel; those that touch the runtime's
//! own state (GS, the break, process exit, new processes) and, under
//! `-no_native_exec`, those that would make memory executable are handled.

use core::sync::atomic::Ordering::{Relaxed, Release};

use crate::context_switch;
use crate::os::sys::{self, nr};
use crate::thread::{reg, ThreadContext};
use crate::stats::{self, STATS};

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const SIGCHLD: u64 = 17;
const EFAULT: i64 = 14;

/// Performs the system call whose registers are in `ctx` and returns the
/// app pc to continue at (`next`, the instruction after the `syscall`).
pub(crate) fn handle(ctx: &mut ThreadContext, next: u64) -> u64 {
    stats::add(&STATS.syscalls, 1);
    let g = &ctx.gpr;
    let number = g[reg::RAX];
    let mut args = [g[reg::RDI], g[reg::RSI], g[reg::RDX], g[reg::R10], g[reg::R8], g[reg::R9]];
    let result = match number {
        nr::EXIT_GROUP => exit_process(ctx, args[0] as i32),
        nr::EXIT => exit_thread(ctx, args[0]),
        nr::BRK => crate::emulation::brk::brk(args[0]) as i64,
        nr::ARCH_PRCTL => arch_prctl(ctx, args[0], args[1]),
        nr::MMAP => {
            let app_prot = args[2];
            let wants_exec = app_prot & sys::PROT_EXEC != 0;
            args[2] = executable_protection(args[2]);
            let r = raw(number, args);
            if r >= 0 {
                let (lo, hi) = (r as u64, r as u64 + sys::page_up(args[1]));
                // Fresh memory holds no module code and no translated
                // code: what an earlier mapping there left in the runtime's
                // tables (data mapped over an image's code, as ld.so does;
                // another thread's munmap in flight, or a fork in the
                // middle of one) must not be used for it.
                crate::os::modules::note_unmap(lo, hi);
                crate::translator::forget_range(lo, hi);
                crate::translate::smc::note_protection(lo, args[1], app_prot);
                crate::os::app_prot::note(lo, args[1], Some(app_prot));
            }
            if r >= 0 && wants_exec && args[4] as i64 >= 0 {
                crate::os::modules::note_file_mapping(args[4] as i32, r as u64, args[1], args[5]);
            }
            r
        }
        nr::MPROTECT => {
            let app_prot = args[2];
            args[2] = executable_protection(args[2]);
            let r = raw(number, args);
            if r == 0 {
                crate::translate::smc::note_protection(args[0], args[1], app_prot);
                crate::os::app_prot::note(args[0], args[1], Some(app_prot));
            }
            // Code that stops being executable, or becomes writable (to be
            // rewritten: JITs), must be translated afresh when run again.
            if r == 0 && app_prot & sys::PROT_WRITE != 0 {
                crate::translator::code_may_change(args[0], args[0] + sys::page_up(args[1]));
            }
            if r == 0 && (app_prot & sys::PROT_EXEC == 0 || app_prot & sys::PROT_WRITE != 0) {
                crate::translator::flush_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::MUNMAP => {
            let r = raw(number, args);
            if r == 0 {
                crate::translate::smc::note_protection(args[0], args[1], 0);
                crate::os::app_prot::note(args[0], args[1], None);
                crate::translator::persist_unloading(args[0], args[0] + sys::page_up(args[1]));
                crate::os::modules::note_unmap(args[0], args[0] + sys::page_up(args[1]));
                crate::translator::forget_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::MREMAP => {
            let prot = crate::os::app_prot::prot_of(args[0]);
            let r = raw(number, args);
            if r >= 0 {
                crate::os::app_prot::note(args[0], args[1], None);
                crate::os::app_prot::note(r as u64, args[2], prot);
                crate::translator::flush_range(args[0], args[0] + sys::page_up(args[1]));
            }
            r
        }
        nr::CLONE => clone(ctx, args, next),
        nr::EXECVE => crate::emulation::exec::execve(args[0], args[1], args[2]),
        nr::RT_SIGPROCMASK => {
            if let Some(set) = (args[1] != 0).then(|| crate::os::safe_read::read_app::<u64>(args[1])).flatten() {
                crate::signals::handling::before_app_mask(args[0], set);
            }
            raw(number, args)
        }
        nr::RT_SIGACTION => crate::signals::handling::rt_sigaction(args[0], args[1], args[2], args[3], ctx.is_vfork_child != 0),
        nr::SIGALTSTACK => crate::signals::handling::sigaltstack(ctx, args[0], args[1]),
        // Restores every register itself: nothing below applies.
        nr::RT_SIGRETURN => return crate::signals::handling::rt_sigreturn(ctx),
        nr::OPEN => {
            args[0] = crate::emulation::self_exe::redirect_open(sys::AT_FDCWD, args[0]).unwrap_or(args[0]);
            raw(number, args)
        }
        nr::OPENAT => {
            args[1] = crate::emulation::self_exe::redirect_open(args[0] as i64, args[1]).unwrap_or(args[1]);
            raw(number, args)
        }
        nr::READLINK => crate::emulation::self_exe::readlink(sys::AT_FDCWD, args[0], args[1], args[2])
            .unwrap_or_else(|| raw(number, args)),
        nr::READLINKAT => crate::emulation::self_exe::readlink(args[0] as i64, args[1], args[2], args[3])
            .unwrap_or_else(|| raw(number, args)),
        nr::CLONE3 => clone3(ctx, args[0], args[1], next),
        nr::EXECVEAT => crate::emulation::exec::execveat(args[0] as i64, args[1], args[2], args[3], args[4]),
        nr::FORK => {
            let r = crate::fork_locks::fork_safely(|| raw(nr::FORK, [0; 6]));
            after_fork(ctx, r, 0)
        }
        nr::VFORK => clone(ctx, [CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0], next),
        _ => raw(number, args),
    };
    // What the kernel's `syscall` leaves in rcx and r11.
    ctx.gpr[reg::RCX] = next;
    ctx.gpr[reg::R11] = ctx.rflags;
    if crate::signals::handling::should_restart(ctx, number, result) {
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
    crate::process_end::process_exit(ctx, crate::process_end::Reason::Exit(status));
    sys::exit_group(status)
}

fn arch_prctl(ctx: &mut ThreadContext, code: u64, addr: u64) -> i64 {
    match code {
        sys::ARCH_SET_GS => {
            ctx.app_gs_base = addr;
            0
        }
        sys::ARCH_GET_GS if crate::os::safe_read::write_app(addr, ctx.app_gs_base) => 0,
        sys::ARCH_GET_GS => -EFAULT,
        _ => raw(nr::ARCH_PRCTL, [code, addr, 0, 0, 0, 0]),
    }
}

/// clone: a child that shares memory (a thread, or a vfork child) gets a
/// context and runtime stack of its own and enters the cache at the
/// instruction after the `syscall`; a new process continues on its copy of
/// the runtime.
fn clone(ctx: &mut ThreadContext, args: [u64; 6], next: u64) -> i64 {
    let [flags, new_sp, ptid, ctid, tls, _] = args;
    if flags & CLONE_VM == 0 {
        // The child runs runtime code on (its copy of) this runtime stack;
        // the app's requested stack becomes the child's app rsp.
        let r = crate::fork_locks::fork_safely(|| raw(nr::CLONE, [flags, 0, ptid, ctid, tls, 0]));
        return after_fork(ctx, r, new_sp);
    }
    spawn_sharing_memory(ctx, flags, new_sp, next, |child| {
        context_switch::clone_with_context(flags, ptid, ctid, tls, child)
    })
}

/// `struct clone_args` fields clone3 reads (the app's size may be larger).
const CLONE3_FLAGS: usize = 0;
const CLONE3_STACK: usize = 5;
const CLONE3_STACK_SIZE: usize = 6;
const CLONE3_WORDS: usize = 11;

/// clone3: as clone, with the arguments in memory. The runtime passes the
/// kernel a copy with its own stack for the child.
fn clone3(ctx: &mut ThreadContext, args_ptr: u64, size: u64, next: u64) -> i64 {
    let words = (size as usize / 8).min(CLONE3_WORDS);
    if size < 64 || size % 8 != 0 {
        return raw(nr::CLONE3, [args_ptr, size, 0, 0, 0, 0]);
    }
    let mut bytes = [0u8; CLONE3_WORDS * 8];
    if !crate::os::safe_read::copy_from_app(&mut bytes[..words * 8], args_ptr) {
        return -EFAULT;
    }
    let mut args = [0u64; CLONE3_WORDS];
    for (word, b) in args.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_le_bytes(b.try_into().unwrap());
    }
    let flags = args[CLONE3_FLAGS];
    let app_sp = match args[CLONE3_STACK] {
        0 => 0,
        stack => stack + args[CLONE3_STACK_SIZE],
    };
    let kernel_size = (words * 8) as u64;
    if flags & CLONE_VM == 0 {
        args[CLONE3_STACK] = 0;
        args[CLONE3_STACK_SIZE] = 0;
        let r = crate::fork_locks::fork_safely(|| raw(nr::CLONE3, [args.as_ptr() as u64, kernel_size, 0, 0, 0, 0]));
        return after_fork(ctx, r, app_sp);
    }
    spawn_sharing_memory(ctx, flags, app_sp, next, |child| {
        const CHILD_STACK: u64 = 64 * 1024;
        args[CLONE3_STACK] = child.runtime_stack_top - CHILD_STACK;
        args[CLONE3_STACK_SIZE] = CHILD_STACK;
        context_switch::clone3_with_context(&args[..words], child)
    })
}

/// In a new process (no shared memory): the child is the only thread, on
/// the app stack it asked for.
fn after_fork(ctx: &mut ThreadContext, r: i64, app_sp: u64) -> i64 {
    if r == 0 {
        crate::thread::LIVE_THREADS.store(1, Relaxed);
        crate::quiescence::only(ctx);
        // The child's counts start from nothing, as its other counters do.
        ctx.ibl_lookups = 0;
        if app_sp != 0 {
            ctx.gpr[reg::RSP] = app_sp;
        }
    }
    r
}

/// Creates a child sharing memory with a context of its own (continuing the
/// app at `next` with rax = 0 on `app_sp`, or the parent's stack if 0);
/// `kernel_call` makes the clone system call for that context.
fn spawn_sharing_memory(
    ctx: &mut ThreadContext,
    flags: u64,
    app_sp: u64,
    next: u64,
    kernel_call: impl FnOnce(&mut ThreadContext) -> i64,
) -> i64 {
    let child = ctx.clone_for_child();
    child.gpr[reg::RAX] = 0;
    child.gpr[reg::RCX] = next;
    child.gpr[reg::R11] = ctx.rflags;
    if app_sp != 0 {
        child.gpr[reg::RSP] = app_sp;
    }
    child.next_pc = next;
    let vfork = flags & CLONE_VFORK != 0;
    child.is_vfork_child = vfork as u64;
    if !vfork {
        crate::thread::LIVE_THREADS.fetch_add(1, Relaxed);
    }
    let (mapping, len) = child.mapping();
    // No signal may reach the child before its GS points at its context: it
    // starts with everything blocked and restores the app's mask itself.
    let app_mask = crate::signals::handling::block_all();
    child.pending.start_mask = app_mask;
    crate::quiescence::register(child);
    let r = kernel_call(child);
    crate::signals::handling::set_mask(2, app_mask);
    if r < 0 && !vfork {
        crate::thread::LIVE_THREADS.fetch_sub(1, Relaxed);
    }
    if r < 0 || vfork {
        // A vfork parent resumes only once the child has exec'd or exited,
        // so nothing uses the child's context any more.
        crate::quiescence::unregister(child);
        // SAFETY: the mapping is the child's context, no longer in use.
        let _ = unsafe { sys::munmap(mapping, len) };
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
    crate::client_host::thread_exit(ctx);
    // Release: what this thread changed without locks is the last
    // thread's own once it reads the count (`thread::alone`).
    if crate::thread::LIVE_THREADS.fetch_sub(1, Release) == 1 {
        exit_process(ctx, status as i32);
    }
    // Every signal blocked for the rest of this thread's life, so no
    // handler runs on the stack about to be unmapped.
    crate::os::signal::sigprocmask(0, !0);
    crate::quiescence::unregister(ctx);
    // SAFETY: the thread is leaving; nothing else refers to its context.
    unsafe { context_switch::exit_thread(ctx, status) }
}
