//! The x86-64 signal frame exactly as the kernel lays it out
//! (`arch/x86/kernel/signal_64.c`, `get_sigframe`): below the interrupted
//! stack pointer (and its 128-byte red zone), or at the top of the
//! alternate stack, the XSAVE image of the FPU state (64-byte aligned, with
//! its software-reserved bytes and trailing magic), then `struct
//! rt_sigframe` { return address, ucontext, siginfo } with the stack pointer
//! at 16n - 8, as after a call.

use crate::signals::handling::PendingSignal;
use crate::thread::{reg, ThreadContext};

pub(crate) const SIGINFO_SIZE: usize = crate::os::signal::SIZE;

// struct ucontext (kernel) offsets.
const UC_FLAGS: u64 = 0;
const UC_LINK: u64 = 8;
const UC_STACK: u64 = 16;
const UC_MCONTEXT: u64 = 40;
const UC_SIGMASK: u64 = 296;
const UC_SIZE: u64 = 304;
// struct sigcontext, within uc_mcontext: r8..r15, rdi, rsi, rbp, rbx, rdx,
// rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate.
const SC_RIP: u64 = 128;
const SC_EFLAGS: u64 = 136;
const SC_CSGSFS: u64 = 144;
const SC_CR2: u64 = 176;
const SC_FPSTATE: u64 = 184;
/// GPR index (hardware numbering) of each sigcontext register slot 0..16.
const SC_GPR_ORDER: [usize; 16] = [
    reg::R8, reg::R9, reg::R10, reg::R11, reg::R12, reg::R13, reg::R14, reg::R15,
    reg::RDI, reg::RSI, reg::RBP, reg::RBX, reg::RDX, reg::RAX, reg::RCX, reg::RSP,
];

const RT_SIGFRAME_SIZE: u64 = 8 + UC_SIZE + SIGINFO_SIZE as u64;
const RED_ZONE: u64 = 128;
/// UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS.
const UC_FLAGS_VALUE: u64 = 0x7;
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const XSAVE_SW_BYTES: u64 = 464;
const XSAVE_HEADER: u64 = 512;
/// The flags a handler may change through its ucontext (the kernel's FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;

pub(crate) use crate::os::signal::StackT;

/// Size of the standard-format XSAVE image for the features XCR0 enables.
///
/// CPUID leaf 0xd is read once per process, and only the sub-leaves of
/// enabled features: each CPUID is a VM exit under a hypervisor (7 us on
/// this project's VMs), and a signal's frame and its return each asked
/// several, which made a signal 50 times dearer than natively. The leaf
/// describes the CPU, fixed for the process.
pub(crate) fn xsave_size() -> u64 {
    static WHOLE: spin::Once<u64> = spin::Once::new();
    *WHOLE.call_once(|| core::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64)
}

/// For each user component XCR0 enables, where its part of the
/// standard-format image ends (0 for the others); made at the first signal.
fn xsave_component_ends() -> &'static [u64; 64] {
    static ENDS: spin::Once<[u64; 64]> = spin::Once::new();
    ENDS.call_once(|| {
        let enabled = xcr0();
        let mut ends = [0; 64];
        for (i, end) in ends.iter_mut().enumerate().take(63).skip(2) {
            if enabled & (1 << i) != 0 {
                let c = core::arch::x86_64::__cpuid_count(0xd, i as u32);
                *end = c.ebx as u64 + c.eax as u64;
            }
        }
        ends
    })
}

/// The XSAVE features the kernel writes in this process's signal frames:
/// those enabled in XCR0 that the process may use (AMX tile data, say, only
/// after `arch_prctl(ARCH_REQ_XCOMP_PERM)`), asked each time since the app
/// may get a permission at any point.
fn frame_features() -> u64 {
    match crate::os::sys::xcomp_permitted() {
        Ok(permitted) => xcr0() & permitted,
        Err(_) => xcr0(),
    }
}

/// The size of the standard-format XSAVE image of `features`: the end of
/// the last one, at least the legacy area and the header.
fn xsave_size_of(features: u64) -> u64 {
    let ends = xsave_component_ends();
    let mut size = XSAVE_HEADER + 64;
    for (i, &end) in ends.iter().enumerate().take(63).skip(2) {
        if features & (1 << i) != 0 {
            size = size.max(end);
        }
    }
    size.min(xsave_size())
}

/// How many bytes of the XSAVE image at `fpstate` a frame holds: the
/// kernel's frame may be smaller than [`xsave_size`] (features enabled in
/// XCR0 that the process has no permission for, like AMX tile data, are
/// left out), and it can end at the top of a thread's stack, so reading
/// past it may fault. The size is in the image's software-reserved bytes;
/// without their magic word the image is the legacy 512-byte FXSAVE one.
///
/// # Safety
/// `fpstate` points to a signal frame's FPU image of at least 512 bytes.
pub(crate) unsafe fn frame_xstate_size(fpstate: u64) -> u64 {
    // SAFETY: the software-reserved bytes lie within the 512-byte image.
    let (magic1, size): (u32, u32) = unsafe { (get(fpstate + XSAVE_SW_BYTES), get(fpstate + XSAVE_SW_BYTES + 16)) };
    if magic1 == FP_XSTATE_MAGIC1 {
        (size as u64).clamp(XSAVE_HEADER, xsave_size())
    } else {
        XSAVE_HEADER
    }
}

fn xcr0() -> u64 {
    // SAFETY: XSAVE is present (the runtime uses it on every switch).
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

unsafe fn put<T>(addr: u64, v: T) {
    // SAFETY: the caller writes into a frame it owns.
    unsafe { (addr as *mut T).write_unaligned(v) }
}

unsafe fn get<T>(addr: u64) -> T {
    // SAFETY: the caller reads from a frame it owns.
    unsafe { (addr as *const T).read_unaligned() }
}

/// The ucontext the kernel gave a runtime signal handler.
pub(crate) struct InterruptedContext {
    uc: u64,
}

impl InterruptedContext {
    /// # Safety
    /// `uc` is the ucontext of the running signal handler.
    pub(crate) unsafe fn new(uc: *mut u8) -> InterruptedContext {
        InterruptedContext { uc: uc as u64 }
    }

    fn mc(&self, off: u64) -> u64 {
        // SAFETY: within the kernel's ucontext.
        unsafe { get(self.uc + UC_MCONTEXT + off) }
    }

    pub(crate) fn rip(&self) -> u64 {
        self.mc(SC_RIP)
    }

    pub(crate) fn eflags(&self) -> u64 {
        self.mc(SC_EFLAGS)
    }

    /// The interrupted general-purpose registers, in hardware order.
    pub(crate) fn gprs(&self) -> [u64; 16] {
        let mut g = [0u64; 16];
        for (slot, &r) in SC_GPR_ORDER.iter().enumerate() {
            g[r] = self.mc(8 * slot as u64);
        }
        g
    }

    /// The interrupted XSAVE image, if the kernel saved one.
    pub(crate) fn fpstate(&self) -> Option<u64> {
        let p = self.mc(SC_FPSTATE);
        (p != 0).then_some(p)
    }

    /// Makes the handler's return continue at `rip`.
    pub(crate) fn set_rip(&mut self, rip: u64) {
        // SAFETY: within the kernel's ucontext.
        unsafe { put(self.uc + UC_MCONTEXT + SC_RIP, rip) };
    }

    /// Makes the handler's return continue at `rip` on stack `rsp`.
    pub(crate) fn redirect(&mut self, rip: u64, rsp: u64) {
        // SAFETY: within the kernel's ucontext.
        unsafe {
            put(self.uc + UC_MCONTEXT + SC_RIP, rip);
            put(self.uc + UC_MCONTEXT + 8 * 15, rsp);
        }
    }
}

/// Where delivery put the frame.
pub(crate) struct Frame {
    pub(crate) sp: u64,
    pub(crate) info: u64,
    pub(crate) ucontext: u64,
}

/// Writes the signal frame for `signal` on the app stack (or the alternate
/// stack when `use_altstack`); the app continues at `pc` after the handler.
pub(crate) fn push_frame(
    ctx: &mut ThreadContext,
    pc: u64,
    signal: &PendingSignal,
    old_mask: u64,
    altstack: &StackT,
    use_altstack: bool,
    restorer: u64,
) -> Frame {
    // The frame holds the whole extended state, as the kernel writes it.
    ctx.save_whole_xstate();
    let app_sp = ctx.gpr[reg::RSP];
    let mut sp = if use_altstack { altstack.sp + altstack.size } else { app_sp - RED_ZONE };
    // The image has the kernel's size and features, not all of XCR0's:
    // the frame takes as much of the app's stack as natively (an 8 KiB
    // alternate stack fits it on a machine with AMX, as it does natively).
    let features = frame_features();
    let xsize = xsave_size_of(features);
    sp = (sp - xsize - 4) & !63;
    let fpstate = sp;
    let frame = ((sp - RT_SIGFRAME_SIZE) & !15) - 8;
    let uc = frame + 8;
    let info = uc + UC_SIZE;
    // SAFETY: these addresses are on the app's stack below its live data,
    // as the kernel would write them; a bad stack faults like natively.
    unsafe {
        core::ptr::copy_nonoverlapping(ctx.xsave_area as *const u8, fpstate as *mut u8, xsize as usize);
        put(fpstate + XSAVE_SW_BYTES, FP_XSTATE_MAGIC1);
        put(fpstate + XSAVE_SW_BYTES + 4, (xsize + 4) as u32);
        put(fpstate + XSAVE_SW_BYTES + 8, features);
        let xstate_bv: u64 = get(fpstate + XSAVE_HEADER);
        put(fpstate + XSAVE_HEADER, xstate_bv & features);
        put(fpstate + XSAVE_SW_BYTES + 16, xsize as u32);
        put(fpstate + xsize, FP_XSTATE_MAGIC2);

        put(frame, restorer);
        put(uc + UC_FLAGS, UC_FLAGS_VALUE);
        put(uc + UC_LINK, 0u64);
        let mut stack = *altstack;
        if altstack.contains(app_sp) {
            stack.flags |= 1; // SS_ONSTACK
        }
        put(uc + UC_STACK, stack);
        let mc = uc + UC_MCONTEXT;
        for (slot, &r) in SC_GPR_ORDER.iter().enumerate() {
            put(mc + 8 * slot as u64, ctx.gpr[r]);
        }
        put(mc + SC_RIP, pc);
        put(mc + SC_EFLAGS, ctx.rflags);
        put(mc + SC_CSGSFS, USER_CS | USER_SS << 48);
        for off in (SC_CSGSFS + 8..SC_FPSTATE).step_by(8) {
            put(mc + off, 0u64);
        }
        let fault_addr = signal.info.addr();
        if matches!(signal.sig, crate::signals::handling::SIGSEGV | crate::signals::handling::SIGBUS) {
            put(mc + SC_CR2, fault_addr);
        }
        put(mc + SC_FPSTATE, fpstate);
        for off in (SC_FPSTATE + 8..UC_SIGMASK - UC_MCONTEXT).step_by(8) {
            put(mc + off, 0u64);
        }
        put(uc + UC_SIGMASK, old_mask);
        core::ptr::copy_nonoverlapping(signal.info.as_ptr(), info as *mut u8, SIGINFO_SIZE);

        // The handler starts with the FPU in its initial state, as the
        // kernel gives it: XSTATE_BV = 0, default control words.
        let area = ctx.xsave_area;
        put(area, 0x037fu16);
        put(area + 24, 0x1f80u32);
        put(area + XSAVE_HEADER, 0u64);
        put(area + XSAVE_HEADER + 8, 0u64);
    }
    Frame { sp: frame, info, ucontext: uc }
}

/// Restores the app state from the ucontext at `uc`; returns the pc to
/// continue at and the signal mask to restore.
///
/// # Safety
/// `uc` is a ucontext the app handed to `rt_sigreturn`.
pub(crate) unsafe fn restore_frame(ctx: &mut ThreadContext, uc: u64) -> (u64, u64) {
    let mc = uc + UC_MCONTEXT;
    // SAFETY: per the function's contract.
    unsafe {
        for (slot, &r) in SC_GPR_ORDER.iter().enumerate() {
            ctx.gpr[r] = get(mc + 8 * slot as u64);
        }
        let eflags: u64 = get(mc + SC_EFLAGS);
        ctx.rflags = (ctx.rflags & !FIX_EFLAGS) | (eflags & FIX_EFLAGS) | 0x2;
        let fpstate: u64 = get(mc + SC_FPSTATE);
        if fpstate != 0 {
            let size = frame_xstate_size(fpstate);
            core::ptr::copy_nonoverlapping(fpstate as *const u8, ctx.xsave_area as *mut u8, size as usize);
            ctx.xstate_whole = 1;
            if size == XSAVE_HEADER {
                // A legacy image: only x87 and SSE state, which the header
                // must then say (XSTATE_BV = x87 | SSE, no compaction).
                put(ctx.xsave_area + XSAVE_HEADER, 3u64);
                put(ctx.xsave_area + XSAVE_HEADER + 8, 0u64);
            }
        }
        (get(mc + SC_RIP), get(uc + UC_SIGMASK))
    }
}
