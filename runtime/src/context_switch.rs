//! The two context switches between the code cache and the runtime, in
//! assembly.
//!
//! Contract:
//! - `dbi_fcache_return` is reached by a jump from the code cache (an exit
//!   stub or the indirect-branch lookup) with the application's rax already
//!   stored in `gs:[GPR + 0]` and rax holding the address of the exit's
//!   [`ExitData`](crate::translate::emit::ExitData). It saves every application register,
//!   the flags and the part of the extended state runtime code uses (xmm0-15
//!   and MXCSR) into the ThreadContext, switches to the
//!   thread's runtime stack and calls `dispatch::from_cache(ctx)`, which never
//!   returns.
//! - `dbi_enter_cache(ctx)` restores all of that from `ctx` and jumps to
//!   `ctx.enter_target`. It never returns. A signal pending by then has
//!   the code it enters unlinked first, as one arriving in it would.
//! - `dbi_clone(flags, runtime_stack, ptid, ctid, tls, child_ctx)` performs
//!   `clone`; the child starts on `runtime_stack` and calls
//!   `dispatch::thread_start(child_ctx)`; the parent gets the kernel's result.
//! - `dbi_clone3(args, size, child_ctx)`: the same for `clone3`, whose
//!   arguments already name the child's runtime stack.
//! - `dbi_exit_thread(mapping, len, status)` unmaps the thread's context and
//!   runtime stack (it is running on that stack, hence assembly) and ends
//!   the thread.
//! The application's stack is never written: it may hold live red-zone data.

use crate::thread::{offsets as off, ThreadContext};

/// The flags runtime code runs with: IF (which `popfq` cannot change in
/// user mode anyway) and the always-one bit; DF and AC clear.
const RUNTIME_RFLAGS: u64 = 0x202;

core::arch::global_asm!(
    ".globl dbi_fcache_return",
    ".type dbi_fcache_return,@function",
    "dbi_fcache_return:",
    "    mov qword ptr gs:[{exit_data}], rax",
    "    mov qword ptr gs:[{gpr} + 8], rcx",
    "    mov qword ptr gs:[{gpr} + 16], rdx",
    "    mov qword ptr gs:[{gpr} + 24], rbx",
    "    mov qword ptr gs:[{gpr} + 32], rsp",
    "    mov qword ptr gs:[{gpr} + 40], rbp",
    "    mov qword ptr gs:[{gpr} + 48], rsi",
    "    mov qword ptr gs:[{gpr} + 56], rdi",
    "    mov qword ptr gs:[{gpr} + 64], r8",
    "    mov qword ptr gs:[{gpr} + 72], r9",
    "    mov qword ptr gs:[{gpr} + 80], r10",
    "    mov qword ptr gs:[{gpr} + 88], r11",
    "    mov qword ptr gs:[{gpr} + 96], r12",
    "    mov qword ptr gs:[{gpr} + 104], r13",
    "    mov qword ptr gs:[{gpr} + 112], r14",
    "    mov qword ptr gs:[{gpr} + 120], r15",
    "    mov rsp, qword ptr gs:[{stack_top}]",
    "    pushfq",
    "    pop qword ptr gs:[{rflags}]",
    // Only what runtime code uses: xmm0-15 and MXCSR, at their places in
    // the XSAVE layout. The rest stays in the CPU until something needs
    // the whole state (`ThreadContext::save_whole_xstate`).
    "    mov rdi, qword ptr gs:[{xsave}]",
    "    movdqa xmmword ptr [rdi + 160], xmm0",
    "    movdqa xmmword ptr [rdi + 176], xmm1",
    "    movdqa xmmword ptr [rdi + 192], xmm2",
    "    movdqa xmmword ptr [rdi + 208], xmm3",
    "    movdqa xmmword ptr [rdi + 224], xmm4",
    "    movdqa xmmword ptr [rdi + 240], xmm5",
    "    movdqa xmmword ptr [rdi + 256], xmm6",
    "    movdqa xmmword ptr [rdi + 272], xmm7",
    "    movdqa xmmword ptr [rdi + 288], xmm8",
    "    movdqa xmmword ptr [rdi + 304], xmm9",
    "    movdqa xmmword ptr [rdi + 320], xmm10",
    "    movdqa xmmword ptr [rdi + 336], xmm11",
    "    movdqa xmmword ptr [rdi + 352], xmm12",
    "    movdqa xmmword ptr [rdi + 368], xmm13",
    "    movdqa xmmword ptr [rdi + 384], xmm14",
    "    movdqa xmmword ptr [rdi + 400], xmm15",
    "    stmxcsr dword ptr [rdi + 24]",
    "    mov qword ptr gs:[{xstate_whole}], 0",
    "    mov rdi, qword ptr gs:[{self_}]",
    // The app's flags are saved; the runtime runs with its own: DF clear
    // (the ABI) and AC clear (an app may set it, as the JVM does to probe
    // the CPU, and the runtime's unaligned accesses would then fault).
    "    push {runtime_rflags}",
    "    popfq",
    "    call {dispatch}",
    "    ud2",
    "",
    ".globl dbi_enter_cache",
    ".type dbi_enter_cache,@function",
    "dbi_enter_cache:",
    // A signal that came after the dispatcher last looked: the code
    // entered must lead back to it soon (see `signal_before_entry`).
    "    cmp qword ptr [rdi + {pending}], 0",
    "    je 1f",
    "    push rdi",
    "    call {before_entry}",
    "    pop rdi",
    "1:",
    "    mov rsi, qword ptr [rdi + {xsave}]",
    "    cmp qword ptr [rdi + {xstate_whole}], 0",
    "    je 2f",
    "    mov eax, -1",
    "    mov edx, -1",
    "    xrstor64 [rsi]",
    "    jmp 3f",
    "2:",
    "    movdqa xmm0, xmmword ptr [rsi + 160]",
    "    movdqa xmm1, xmmword ptr [rsi + 176]",
    "    movdqa xmm2, xmmword ptr [rsi + 192]",
    "    movdqa xmm3, xmmword ptr [rsi + 208]",
    "    movdqa xmm4, xmmword ptr [rsi + 224]",
    "    movdqa xmm5, xmmword ptr [rsi + 240]",
    "    movdqa xmm6, xmmword ptr [rsi + 256]",
    "    movdqa xmm7, xmmword ptr [rsi + 272]",
    "    movdqa xmm8, xmmword ptr [rsi + 288]",
    "    movdqa xmm9, xmmword ptr [rsi + 304]",
    "    movdqa xmm10, xmmword ptr [rsi + 320]",
    "    movdqa xmm11, xmmword ptr [rsi + 336]",
    "    movdqa xmm12, xmmword ptr [rsi + 352]",
    "    movdqa xmm13, xmmword ptr [rsi + 368]",
    "    movdqa xmm14, xmmword ptr [rsi + 384]",
    "    movdqa xmm15, xmmword ptr [rsi + 400]",
    "    ldmxcsr dword ptr [rsi + 24]",
    "3:",
    "    push qword ptr [rdi + {rflags}]",
    "    popfq",
    "    mov rax, qword ptr [rdi + {gpr}]",
    "    mov rcx, qword ptr [rdi + {gpr} + 8]",
    "    mov rdx, qword ptr [rdi + {gpr} + 16]",
    "    mov rbx, qword ptr [rdi + {gpr} + 24]",
    "    mov rbp, qword ptr [rdi + {gpr} + 40]",
    "    mov rsi, qword ptr [rdi + {gpr} + 48]",
    "    mov r8, qword ptr [rdi + {gpr} + 64]",
    "    mov r9, qword ptr [rdi + {gpr} + 72]",
    "    mov r10, qword ptr [rdi + {gpr} + 80]",
    "    mov r11, qword ptr [rdi + {gpr} + 88]",
    "    mov r12, qword ptr [rdi + {gpr} + 96]",
    "    mov r13, qword ptr [rdi + {gpr} + 104]",
    "    mov r14, qword ptr [rdi + {gpr} + 112]",
    "    mov r15, qword ptr [rdi + {gpr} + 120]",
    "    mov rsp, qword ptr [rdi + {gpr} + 32]",
    "    mov rdi, qword ptr [rdi + {gpr} + 56]",
    "    jmp qword ptr gs:[{enter_target}]",
    ".globl dbi_enter_cache_end",
    "dbi_enter_cache_end:",
    "",
    ".globl dbi_clone",
    ".type dbi_clone,@function",
    "dbi_clone:",
    "    mov r10, rcx",
    // r9 (the child's context) is not a clone argument and survives in the child.
    "    mov eax, {sys_clone}",
    "    syscall",
    "    test rax, rax",
    "    jnz 2f",
    "    xor ebp, ebp",
    "    mov rdi, r9",
    "    call {thread_start}",
    "    ud2",
    "2:",
    "    ret",
    "",
    ".globl dbi_clone3",
    ".type dbi_clone3,@function",
    "dbi_clone3:",
    // r9 (the child's context) is not a clone3 argument and survives in the child.
    "    mov r9, rdx",
    "    mov eax, {sys_clone3}",
    "    syscall",
    "    test rax, rax",
    "    jnz 3f",
    "    xor ebp, ebp",
    "    mov rdi, r9",
    "    call {thread_start}",
    "    ud2",
    "3:",
    "    ret",
    "",
    ".globl dbi_exit_thread",
    ".type dbi_exit_thread,@function",
    "dbi_exit_thread:",
    "    mov r8, rdx",
    "    mov eax, {sys_munmap}",
    "    syscall",
    "    mov rdi, r8",
    "    mov eax, {sys_exit}",
    "    syscall",
    "    ud2",
    "",
    // The kernel handler for every signal the app handles. The kernel
    // enters it with the interrupted flags, DF and TF cleared but AC kept:
    // clear AC too before any Rust code runs (the frame's saved flags are
    // what the interrupted code gets back).
    ".globl dbi_signal_entry",
    ".type dbi_signal_entry,@function",
    "dbi_signal_entry:",
    "    push {runtime_rflags}",
    "    popfq",
    "    jmp {signal_handler}",
    "",
    // Returned to by the kernel after a runtime signal handler (sa_restorer).
    ".globl dbi_signal_restorer",
    ".type dbi_signal_restorer,@function",
    "dbi_signal_restorer:",
    "    mov eax, {sys_rt_sigreturn}",
    "    syscall",
    "    ud2",
    "",
    // A fault in the cache was translated into the ThreadContext: the
    // runtime handler's sigreturn lands here to deliver it to the app.
    ".globl dbi_deliver_signal",
    ".type dbi_deliver_signal,@function",
    "dbi_deliver_signal:",
    "    mov rsp, qword ptr gs:[{stack_top}]",
    "    mov rdi, qword ptr gs:[{self_}]",
    // The sigreturn restored the faulting app's flags.
    "    push {runtime_rflags}",
    "    popfq",
    "    call {resume}",
    "    ud2",
    sys_rt_sigreturn = const crate::os::sys::nr::RT_SIGRETURN,
    runtime_rflags = const RUNTIME_RFLAGS,
    signal_handler = sym crate::signals::handling::runtime_handler,
    resume = sym crate::dispatch::resume_after_signal,
    sys_clone = const crate::os::sys::nr::CLONE,
    sys_clone3 = const crate::os::sys::nr::CLONE3,
    sys_munmap = const crate::os::sys::nr::MUNMAP,
    sys_exit = const crate::os::sys::nr::EXIT,
    thread_start = sym crate::dispatch::thread_start,
    exit_data = const off::EXIT_DATA,
    gpr = const off::GPR,
    stack_top = const off::STACK_TOP,
    rflags = const off::RFLAGS,
    xsave = const off::XSAVE_AREA,
    xstate_whole = const off::XSTATE_WHOLE,
    self_ = const off::SELF,
    enter_target = const off::ENTER_TARGET,
    dispatch = sym crate::dispatch::from_cache,
    pending = const off::SIGNAL_PENDING,
    before_entry = sym crate::dispatch::signal_before_entry,
);

extern "C" {
    fn dbi_enter_cache(ctx: *mut ThreadContext) -> !;
    fn dbi_enter_cache_end();
    fn dbi_fcache_return();
    fn dbi_clone(flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64, child: *mut ThreadContext) -> i64;
    fn dbi_clone3(args: *const u64, size: u64, child: *mut ThreadContext) -> i64;
    fn dbi_exit_thread(mapping: u64, len: u64, status: u64) -> !;
    fn dbi_signal_restorer();
    fn dbi_deliver_signal();
    fn dbi_signal_entry();
}

/// The kernel handler the runtime installs (it clears AC, then runs
/// `signal::runtime_handler`).
pub(crate) fn signal_entry_addr() -> u64 {
    dbi_signal_entry as *const () as u64
}

pub(crate) fn signal_restorer_addr() -> u64 {
    dbi_signal_restorer as *const () as u64
}

pub(crate) fn deliver_signal_addr() -> u64 {
    dbi_deliver_signal as *const () as u64
}

/// `clone` for a child that shares memory: it runs the runtime on `child`'s
/// own runtime stack and enters the cache from `dispatch::thread_start`.
pub(crate) fn clone_with_context(flags: u64, ptid: u64, ctid: u64, tls: u64, child: &mut ThreadContext) -> i64 {
    // SAFETY: the child's stack and context are fresh and owned by it.
    unsafe { dbi_clone(flags, child.runtime_stack_top, ptid, ctid, tls, child) }
}

/// `clone3` with `args` (a clone_args whose stack is the child's runtime
/// stack) for a child that shares memory, as [`clone_with_context`].
pub(crate) fn clone3_with_context(args: &[u64], child: &mut ThreadContext) -> i64 {
    // SAFETY: args is a clone_args of args.len() words; the child's stack
    // and context are fresh and owned by it.
    unsafe { dbi_clone3(args.as_ptr(), (args.len() * 8) as u64, child) }
}

/// Frees the calling thread's context and stack and ends the thread.
///
/// # Safety
/// `ctx` is the calling thread's context, nothing refers to it any more,
/// and signals are blocked.
pub(crate) unsafe fn exit_thread(ctx: &mut ThreadContext, status: u64) -> ! {
    let (mapping, len) = ctx.mapping();
    unsafe { dbi_exit_thread(mapping, len, status) }
}

/// Address cache exits jump to.
pub(crate) fn fcache_return_addr() -> u64 {
    dbi_fcache_return as *const () as u64
}

/// Whether `pc` is in `dbi_enter_cache`, where a thread holds no lock of
/// the runtime's and goes on to `enter_target`.
pub(crate) fn in_enter_cache(pc: u64) -> bool {
    (dbi_enter_cache as *const () as u64..dbi_enter_cache_end as *const () as u64).contains(&pc)
}

/// Runs the application from `ctx.enter_target` with the registers in `ctx`.
pub(crate) fn enter_cache(ctx: &mut ThreadContext) -> ! {
    // SAFETY: ctx is this thread's context (GS points at it) and
    // enter_target is the start of a fragment in the code cache.
    unsafe { dbi_enter_cache(ctx) }
}
