//! Signals. The runtime owns every kernel handler the application asks for
//! and keeps the application's actions in a table. A signal that arrives
//! while app code runs in the cache is queued in the thread's context and
//! delivered by the dispatcher at the next safe point (the interrupted
//! fragment is unlinked so that point comes soon); a synchronous fault in the
//! cache is translated to the exact app pc and registers first. Delivery
//! builds the kernel's own frame (`sigframe`) so the app's handler, run
//! under translation, sees what it would natively, and `rt_sigreturn` is
//! emulated from that frame.

use spin::Mutex;

use crate::signals::frames;
use crate::os::signal::{self, SigInfo};
use crate::os::sys::{self, nr};
use crate::thread::{reg, ThreadContext};

pub(crate) const SIGILL: u32 = 4;
pub(crate) const SIGTRAP: u32 = 5;
pub(crate) const SIGABRT: u32 = 6;
pub(crate) const SIGBUS: u32 = 7;
pub(crate) const SIGFPE: u32 = 8;
pub(crate) const SIGKILL: u32 = 9;
pub(crate) const SIGSEGV: u32 = 11;
pub(crate) const SIGSTOP: u32 = 19;
const NSIG: usize = 64;

pub(crate) const SA_SIGINFO: u64 = 0x4;
pub(crate) const SA_RESTORER: u64 = 0x0400_0000;
pub(crate) const SA_ONSTACK: u64 = 0x0800_0000;
pub(crate) const SA_RESTART: u64 = 0x1000_0000;
pub(crate) const SA_NODEFER: u64 = 0x4000_0000;
pub(crate) const SA_RESETHAND: u64 = 0x8000_0000;
const SIG_DFL: u64 = 0;

/// Whether the default action of `sig` ends the process (all but SIGCHLD,
/// SIGCONT, SIGURG, SIGWINCH, which are ignored, and the stop signals).
fn terminates_by_default(sig: u32) -> bool {
    !matches!(sig, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
}
const SIG_IGN: u64 = 1;
const SIG_BLOCK: u64 = 0;
const SIG_SETMASK: u64 = 2;
const SS_ONSTACK: u32 = 1;
const EINTR: i64 = 4;
const EFAULT: i64 = 14;

pub(crate) use crate::os::signal::KernelSigaction;

/// The application's actions; None until the app first touches a signal
/// (then the kernel's inherited disposition is the answer).
pub(crate) static ACTIONS: Mutex<[Option<KernelSigaction>; NSIG + 1]> = Mutex::new([None; NSIG + 1]);

const MAX_PENDING: usize = 16;

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PendingSignal {
    pub(crate) sig: u32,
    pub(crate) info: SigInfo,
}

/// Signals received by the runtime's handler and not yet delivered. Only
/// the owning thread touches it: its handler appends, its dispatcher takes
/// (with signals blocked).
#[repr(C)]
pub(crate) struct PendingSignals {
    count: usize,
    queue: [PendingSignal; MAX_PENDING],
    /// The signal mask a new thread restores once its context is active.
    pub(crate) start_mask: u64,
}

impl PendingSignals {
    fn push(&mut self, sig: u32, info: &SigInfo, front: bool) {
        let queued = &self.queue[..self.count];
        // Standard signals coalesce while pending, as in the kernel.
        if sig < 32 && !front && queued.iter().any(|p| p.sig == sig) {
            return;
        }
        if self.count == MAX_PENDING {
            return;
        }
        let entry = PendingSignal { sig, info: *info };
        if front {
            self.queue.copy_within(0..self.count, 1);
            self.queue[0] = entry;
        } else {
            self.queue[self.count] = entry;
        }
        self.count += 1;
    }

    fn pop(&mut self) -> Option<PendingSignal> {
        if self.count == 0 {
            return None;
        }
        let first = self.queue[0];
        self.queue.copy_within(1..self.count, 0);
        self.count -= 1;
        Some(first)
    }

    pub(crate) fn first(&self) -> Option<&PendingSignal> {
        self.queue[..self.count].first()
    }
}

fn sigmask(sig: u32) -> u64 {
    1 << (sig - 1)
}

pub(crate) fn set_mask(how: u64, mask: u64) -> u64 {
    signal::sigprocmask(how, mask)
}

/// Before the app's code runs under `mask` (or a mask `how` makes of it,
/// as `rt_sigprocmask` takes them): with SIGSEGV blocked, the faults the
/// runtime takes for itself in cache code would kill the process, so the
/// loaded files' exit slots are all rebased first.
pub(crate) fn before_app_mask(how: u64, mask: u64) {
    const SIG_UNBLOCK: u64 = 1;
    if how != SIG_UNBLOCK && mask & sigmask(SIGSEGV) != 0 {
        crate::persistence::slot_faults::rebase_all_now();
    }
}

/// Blocks every signal and returns the previous mask.
pub(crate) fn block_all() -> u64 {
    set_mask(SIG_BLOCK, !0)
}

fn app_action(sig: u32) -> KernelSigaction {
    let mut actions = ACTIONS.lock();
    if let Some(a) = actions[sig as usize] {
        return a;
    }
    let mut current = KernelSigaction::default();
    let _ = signal::sigaction(sig, None, Some(&mut current));
    actions[sig as usize] = Some(current);
    current
}

fn set_app_action(sig: u32, act: KernelSigaction) {
    ACTIONS.lock()[sig as usize] = Some(act);
}

/// The kernel action that makes signals come to the runtime first.
fn runtime_action(app: &KernelSigaction) -> KernelSigaction {
    KernelSigaction {
        handler: crate::context_switch::signal_entry_addr(),
        flags: SA_SIGINFO | SA_RESTORER | (app.flags & SA_ONSTACK),
        restorer: crate::context_switch::signal_restorer_addr(),
        mask: !0,
    }
}

/// Synchronous faults the runtime always sees first, whatever the app's
/// action: a fault in runtime code is reported as the runtime's own error,
/// never as the app's death, and a probe of app memory must come back.
const ALWAYS_CAUGHT: [u32; 4] = [SIGSEGV, SIGBUS, SIGILL, SIGFPE];

/// Faults (and SIGABRT, which abort() sends itself) kill the process even
/// when the app ignores them, so the runtime sees them first whatever the
/// app's action when it has work to do before the process dies.
const FATAL_FAULTS: [u32; 5] = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT];

/// Whether the process has work to do at its end (`process_end`): caches
/// to persist or clients to give their exit events.
fn has_exit_work() -> bool {
    crate::options::get().persist || crate::client_host::active()
}

/// Whether the runtime must see `sig` first when the app's handler for it
/// is `handler`: the faults of [`ALWAYS_CAUGHT`]; and, when the process
/// has exit work, every signal whose default action would kill it without
/// that work done, whether a fault or sent by another process (`kill`,
/// ^C). The runtime's handler is installed without SA_RESTART, so a thread
/// blocked in a system call is interrupted and dies at once.
fn must_catch(sig: u32, handler: u64) -> bool {
    ALWAYS_CAUGHT.contains(&sig)
        || (has_exit_work() && (FATAL_FAULTS.contains(&sig) || (handler == SIG_DFL && terminates_by_default(sig))))
}

fn catchable(sig: u32) -> bool {
    sig != SIGKILL && sig != SIGSTOP
}

/// At start-up: the signals of [`must_catch`] with the dispositions the
/// process inherited come to the runtime from the start.
pub(crate) fn catch_fatal_signals() {
    // The mask the program inherited (blocking nothing more).
    before_app_mask(SIG_SETMASK, set_mask(SIG_BLOCK, 0));
    for sig in ALWAYS_CAUGHT {
        let _ = signal::sigaction(sig, Some(&runtime_action(&app_action(sig))), None);
    }
    // Without exit work nothing else is caught: no need to ask the kernel
    // about 64 signals.
    if !has_exit_work() {
        return;
    }
    // A signal the runtime would not catch at its default action it never
    // catches (must_catch). The others are caught with the call that
    // learns what the process inherited, one system call instead of two
    // (57 fewer per process start); blocked meanwhile, so none arrives
    // before its inherited action is known.
    let mask = block_all();
    for sig in (1..=NSIG as u32).filter(|&s| catchable(s) && !ALWAYS_CAUGHT.contains(&s) && must_catch(s, SIG_DFL)) {
        let mut inherited = KernelSigaction::default();
        let assumed = runtime_action(&KernelSigaction::default());
        if signal::sigaction(sig, Some(&assumed), Some(&mut inherited)).is_err() {
            continue;
        }
        set_app_action(sig, inherited);
        if !must_catch(sig, inherited.handler) {
            // Inherited as ignored (execve keeps SIG_IGN): stays so.
            let _ = signal::sigaction(sig, Some(&inherited), None);
        } else if inherited.flags & SA_ONSTACK != 0 {
            let _ = signal::sigaction(sig, Some(&runtime_action(&inherited)), None);
        }
    }
    set_mask(SIG_SETMASK, mask);
}

/// Signals the app ignores that the runtime catches (faults): an ignored
/// signal stays ignored across `execve`, a caught one becomes SIG_DFL.
fn ignored_but_caught() -> impl Iterator<Item = u32> {
    let actions = *ACTIONS.lock();
    (1..=NSIG as u32).filter(move |&s| {
        catchable(s) && actions[s as usize].is_some_and(|a| a.handler == SIG_IGN) && must_catch(s, SIG_IGN)
    })
}

/// Right before the runtime re-execs itself for the app's `execve`: the
/// new program must inherit what the app ignores as ignored.
pub(crate) fn before_exec() {
    let ignore = KernelSigaction { handler: SIG_IGN, ..KernelSigaction::default() };
    for sig in ignored_but_caught() {
        let _ = signal::sigaction(sig, Some(&ignore), None);
    }
}

/// The exec failed and the app goes on: the runtime catches them again.
pub(crate) fn after_failed_exec() {
    for sig in ignored_but_caught() {
        let _ = signal::sigaction(sig, Some(&runtime_action(&app_action(sig))), None);
    }
}

/// `rt_sigaction(sig, act, oldact, sigsetsize)` from the application.
/// `private` is set in a vfork child: it shares the parent's memory, so the
/// action table too, but not the parent's kernel handlers (posix_spawn
/// resets the child's handlers before exec): only its kernel side changes.
pub(crate) fn rt_sigaction(sig: u64, act: u64, oldact: u64, setsize: u64, private: bool) -> i64 {
    let catchable = (1..=NSIG as u64).contains(&sig) && sig != SIGKILL as u64 && sig != SIGSTOP as u64;
    if !catchable || setsize != 8 {
        // The kernel gives the app its own error (or the answer for KILL/STOP).
        // SAFETY: the app's own request.
        return unsafe { sys::syscall6(nr::RT_SIGACTION, [sig, act, oldact, setsize, 0, 0]) };
    }
    let sig = sig as u32;
    let old = app_action(sig);
    if act != 0 {
        let Some(new) = crate::os::safe_read::read_app::<KernelSigaction>(act) else {
            return -EFAULT;
        };
        let native = (new.handler == SIG_DFL || new.handler == SIG_IGN) && !must_catch(sig, new.handler);
        let installed = if native { new } else { runtime_action(&new) };
        if let Err(e) = signal::sigaction(sig, Some(&installed), None) {
            return -(e.raw_os_error() as i64);
        }
        if !private {
            set_app_action(sig, new);
        }
    }
    if oldact != 0 && !crate::os::safe_read::write_app(oldact, old) {
        return -EFAULT;
    }
    0
}

/// `sigaltstack(ss, old)`: the alternate stack is the app's, kept by the
/// kernel; only "am I on it" needs the app's stack pointer, since the
/// runtime makes the call from its own stack.
pub(crate) fn sigaltstack(ctx: &ThreadContext, ss: u64, old: u64) -> i64 {
    // SAFETY: the app's own request.
    let r = unsafe { sys::syscall(nr::SIGALTSTACK, ss, old, 0) };
    if r == 0 && old != 0 {
        // SAFETY: the kernel just wrote a stack_t at old.
        let st = unsafe { (old as *const frames::StackT).read_unaligned() };
        if st.contains(ctx.gpr[reg::RSP]) {
            let flags = (old + 8) as *mut u32;
            // SAFETY: ss_flags of that stack_t.
            unsafe { flags.write_unaligned(st.flags | SS_ONSTACK) };
        }
    }
    r
}

fn current_altstack() -> frames::StackT {
    signal::altstack()
}

fn is_synchronous_fault(sig: u32, info: &SigInfo) -> bool {
    info.code() > 0 && matches!(sig, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP)
}

/// The kernel handler for every signal the application handles, reached
/// through `dbi_signal_entry` (`context_switch.rs`).
pub extern "C" fn runtime_handler(sig: i32, info: *const u8, uc: *mut u8) {
    let sig = sig as u32;
    // SAFETY: the kernel passes a siginfo and a ucontext.
    let info = unsafe { SigInfo::from_kernel(info) };
    // SAFETY: every thread that runs app code has its context in GS.
    let ctx = unsafe { crate::thread::current() };
    // SAFETY: uc is the kernel's ucontext for this signal.
    let mut frame = unsafe { frames::InterruptedContext::new(uc) };
    let pc = frame.rip();
    let in_cache = crate::translate::code_cache::contains(pc);
    if is_synchronous_fault(sig, info) {
        const SEGV_ACCERR: i32 = 2;
        let (si_code, addr) = (info.code(), info.addr());
        if sig == SIGSEGV && si_code == SEGV_ACCERR {
            use crate::translate::smc::{handle_write_fault, WriteFault};
            match handle_write_fault(addr) {
                WriteFault::NotOurs => {}
                WriteFault::Retry => return,
                WriteFault::FlushThenRetry { lo, hi } => {
                    crate::translator::flush_range(lo, hi);
                    return;
                }
            }
        }
        // A jump through a loaded file's exit slot that still stores a
        // distance: its page of slots is rebased, and the jump runs again.
        if sig == SIGSEGV && in_cache && crate::persistence::slot_faults::rebase_at(pc) {
            return;
        }
        if in_cache && crate::signals::fault_state::fault_to_app_state(ctx, &frame) {
            let mut info = *info;
            // An instruction address in siginfo (SIGILL, SIGFPE, SIGTRAP)
            // names the app's instruction, not its copy in the cache.
            if crate::translate::code_cache::contains(info.addr()) {
                info.set_addr(ctx.next_pc);
            }
            ctx.pending.push(sig, &info, true);
            mark_pending(ctx);
            // Return from this handler into the runtime, which delivers the
            // fault to the app from the translated state.
            frame.redirect(crate::context_switch::deliver_signal_addr(), ctx.runtime_stack_top);
            return;
        }
        if let Some(resume) = crate::os::safe_read::recovery_for(pc) {
            // A probe of app memory: the prober learns it is unreadable.
            frame.set_rip(resume);
            return;
        }
        // Outside the cache, the runtime's own code; in it, code no block
        // or trace answers for (the runtime's stubs, or a fragment it lost
        // track of): either is the runtime's bug. Dying of it as the app
        // would (as until the twenty-fifth session) hid one: the JVM, killed
        // by SIGSEGV without a word about one run in 600 under load
        // (`translate/retired.rs`).
        internal_error(sig, pc, addr, ctx.next_pc, in_cache);
    }
    ctx.pending.push(sig, info, false);
    mark_pending(ctx);
    if in_cache {
        crate::translator::unlink_fragment_at(pc);
    } else if crate::context_switch::in_enter_cache(pc) {
        // Past its look at signal_pending, on its way into the cache.
        crate::translator::unlink_fragment_at(ctx.enter_target);
    } else if crate::translate::file_lookup::leaving_at(pc) {
        // The same, on its way to a loaded file's block.
        crate::translator::unlink_fragment_at(ctx.ibl_target);
    }
}

/// A signal waits for delivery to `ctx`'s thread: the dispatcher delivers
/// it at the thread's next visit, and its lookups miss until then.
fn mark_pending(ctx: &mut ThreadContext) {
    ctx.signal_pending = 1;
    crate::translate::ibl::point_at_empty_table(ctx);
}

/// A synchronous fault in the runtime's own code, or in cache code that no
/// app instruction answers for, is a runtime bug: say so in one line and
/// end with the runtime's error status, rather than die as if the app had
/// crashed. `app_pc` is where the dispatcher last sent the thread.
fn internal_error(sig: u32, pc: u64, addr: u64, app_pc: u64, in_cache: bool) -> ! {
    let name = match sig {
        SIGSEGV => "SIGSEGV",
        SIGBUS => "SIGBUS",
        SIGILL => "SIGILL",
        SIGFPE => "SIGFPE",
        _ => "SIGTRAP",
    };
    crate::log::fatal(
        70,
        format_args!(
            "internal error: {name} at {} pc {pc:#x} address {addr:#x} (app pc {app_pc:#x})",
            if in_cache { "code cache" } else { "runtime" }
        ),
    )
}

/// The app cannot execute at the pc it is about to continue at: natively
/// the fetch faults there, so SIGSEGV (`si_code`, `si_addr = addr`) is
/// queued first, to be delivered at that pc.
pub(crate) fn queue_code_fault(ctx: &mut ThreadContext, addr: u64, si_code: i32) {
    ctx.pending.push(SIGSEGV, &SigInfo::fault(SIGSEGV, si_code, addr), true);
    mark_pending(ctx);
}

/// Delivers the first pending signal to the application, which was about to
/// continue at `pc` with the registers in `ctx`; returns where it continues
/// (the app handler, or `pc` when the signal's action needs no handler).
pub(crate) fn deliver_pending(ctx: &mut ThreadContext, pc: u64) -> u64 {
    let app_mask = block_all();
    // The first signal is delivered: it was unblocked when it arrived (a
    // system call like sigsuspend may have restored a mask that blocks it
    // since). The others go back to the kernel, which keeps them pending
    // under the handler's mask and hands them over as it does natively (a
    // handler's own signal stays blocked until it returns).
    let chosen = ctx.pending.pop();
    while let Some(p) = ctx.pending.pop() {
        requeue(&p);
    }
    ctx.signal_pending = 0;
    let Some(p) = chosen else {
        set_mask(SIG_SETMASK, app_mask);
        return pc;
    };
    let act = app_action(p.sig);
    match act.handler {
        SIG_IGN if !is_synchronous_fault(p.sig, &p.info) => {
            set_mask(SIG_SETMASK, app_mask);
            pc
        }
        SIG_DFL | SIG_IGN => {
            // The default action, by the kernel: terminate, dump core, stop or
            // ignore exactly as it would natively.
            // (An ignored synchronous fault kills too: the kernel forces it.)
            if terminates_by_default(p.sig) {
                crate::process_end::process_exit(ctx, crate::process_end::Reason::FatalSignal(p.sig as i32));
            }
            let _ = signal::sigaction(p.sig, Some(&KernelSigaction::default()), None);
            set_app_action(p.sig, KernelSigaction::default());
            set_mask(SIG_SETMASK, app_mask & !sigmask(p.sig));
            sys::tgkill_self(sys::gettid(), p.sig as i32);
            set_mask(SIG_SETMASK, app_mask);
            pc
        }
        handler => {
            let altstack = current_altstack();
            let on_altstack = act.flags & SA_ONSTACK != 0
                && altstack.enabled()
                && !altstack.contains(ctx.gpr[reg::RSP]);
            if on_altstack {
                // An alternate stack may be small (8 KiB holds the
                // kernel's frame and the handler's): a fault the runtime
                // takes for itself there (a jump through a slot not
                // rebased yet) would need another frame on it, which
                // natively is never pushed, and could overflow it.
                crate::persistence::slot_faults::rebase_all_now();
            }
            let frame = frames::push_frame(ctx, pc, &p, app_mask, &altstack, on_altstack, act.restorer);
            let mut mask = app_mask | act.mask;
            if act.flags & SA_NODEFER == 0 {
                mask |= sigmask(p.sig);
            }
            if act.flags & SA_RESETHAND != 0 {
                let _ = signal::sigaction(p.sig, Some(&KernelSigaction::default()), None);
                set_app_action(p.sig, KernelSigaction::default());
            }
            ctx.gpr[reg::RSP] = frame.sp;
            ctx.gpr[reg::RDI] = p.sig as u64;
            ctx.gpr[reg::RSI] = frame.info;
            ctx.gpr[reg::RDX] = frame.ucontext;
            ctx.gpr[reg::RAX] = 0;
            const DF_TF_RF: u64 = 0x400 | 0x100 | 0x10000;
            ctx.rflags &= !DF_TF_RF;
            before_app_mask(SIG_SETMASK, mask);
            set_mask(SIG_SETMASK, mask);
            handler
        }
    }
}

/// Makes `p` pending in the kernel again for this thread, with its siginfo.
fn requeue(p: &PendingSignal) {
    signal::requeue_to_self(p.sig, &p.info);
}

/// `rt_sigreturn`: restores the app state saved in the frame the app's
/// handler returns through; returns the app pc to continue at.
pub(crate) fn rt_sigreturn(ctx: &mut ThreadContext) -> u64 {
    // The handler's `ret` popped the return address: rsp is at the ucontext.
    let uc = ctx.gpr[reg::RSP];
    // SAFETY: the frame delivery built (or the app's own, as natively).
    let (pc, mask) = unsafe { frames::restore_frame(ctx, uc) };
    before_app_mask(SIG_SETMASK, mask);
    set_mask(SIG_SETMASK, mask);
    pc
}

/// System calls that SA_RESTART restarts after a handler ran (the kernel's
/// -ERESTARTSYS cases the app can meet here).
fn restartable(number: u64) -> bool {
    matches!(
        number,
        nr::READ | nr::WRITE | nr::READV | nr::WRITEV | nr::PREAD64 | nr::PWRITE64 | nr::OPENAT | nr::OPEN
            | nr::WAIT4 | nr::WAITID | nr::IOCTL | nr::FLOCK | nr::FCNTL | nr::ACCEPT | nr::ACCEPT4
            | nr::RECVFROM | nr::RECVMSG | nr::SENDTO | nr::SENDMSG | nr::FUTEX | nr::GETRANDOM
    )
}

/// After a system call the runtime made for the app returned `result`:
/// whether it must be restarted because a signal interrupted it and the
/// app's handler asked for SA_RESTART.
pub(crate) fn should_restart(ctx: &ThreadContext, number: u64, result: i64) -> bool {
    if result != -EINTR || ctx.signal_pending == 0 || !restartable(number) {
        return false;
    }
    ctx.pending.first().is_some_and(|p| app_action(p.sig).flags & SA_RESTART != 0)
}
