//! Per-thread runtime state: the [`ThreadContext`] reached through the GS
//! base, which holds the application's registers while the runtime runs, the
//! spill slots mangled code uses, and the thread's runtime stack.

use core::mem::offset_of;

use crate::os::sys;

/// Threads alive in this process that share its memory, a vfork child not
/// counted (its parent waits while it runs): to tell a thread's `exit`
/// from the process's last one, and a thread that runs alone (nothing
/// else can write what it writes) from one that does not.
pub(crate) static LIVE_THREADS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(1);

/// Whether the calling thread is the process's only one: then nothing
/// else can take a lock it would take or write what it writes, so it may
/// skip the locked instructions the runtime's shared state otherwise
/// needs. A thread is counted before it is created and uncounted only
/// once it no longer touches that state (`emulation/syscalls.rs`, with
/// Release for this Acquire); a vfork child runs while its parent waits
/// in the kernel.
pub(crate) fn alone() -> bool {
    LIVE_THREADS.load(core::sync::atomic::Ordering::Acquire) == 1
}

/// Indices into [`ThreadContext::gpr`], in the hardware register order
/// (the same numbering as `iced_x86::Register::number()` for 64-bit GPRs).
pub(crate) mod reg {
    pub(crate) const RAX: usize = 0;
    pub(crate) const RCX: usize = 1;
    pub(crate) const RDX: usize = 2;
    pub(crate) const RBX: usize = 3;
    pub(crate) const RSP: usize = 4;
    pub(crate) const RBP: usize = 5;
    pub(crate) const RSI: usize = 6;
    pub(crate) const RDI: usize = 7;
    pub(crate) const R8: usize = 8;
    pub(crate) const R9: usize = 9;
    pub(crate) const R10: usize = 10;
    pub(crate) const R11: usize = 11;
    pub(crate) const R12: usize = 12;
    pub(crate) const R13: usize = 13;
    pub(crate) const R14: usize = 14;
    pub(crate) const R15: usize = 15;
}

/// Number of spill slots mangled code may use for scratch registers.
pub(crate) const SPILL_SLOTS: usize = 4;

#[repr(C)]
pub(crate) struct ThreadContext {
    pub(crate) self_ptr: *mut ThreadContext,
    /// Application GPRs while the runtime runs.
    pub(crate) gpr: [u64; 16],
    pub(crate) rflags: u64,
    /// Address of the exit data of the exit that left the cache.
    pub(crate) exit_data: u64,
    /// Application target of an indirect branch that missed the lookup table.
    pub(crate) next_pc: u64,
    /// Cache address `enter_cache` jumps to.
    pub(crate) enter_target: u64,
    pub(crate) runtime_stack_top: u64,
    /// 64-byte aligned XSAVE area for the application's FPU/SSE/AVX state.
    pub(crate) xsave_area: u64,
    /// Non-zero when the XSAVE area holds the whole of the app's extended
    /// state; zero when a cache exit saved only what runtime code uses
    /// (xmm0-15 and MXCSR) and the rest is still in the CPU
    /// ([`ThreadContext::save_whole_xstate`]).
    pub(crate) xstate_whole: u64,
    pub(crate) spill: [u64; SPILL_SLOTS],
    /// Scratch of the indirect-branch lookup: app rcx, app rax, saved flags,
    /// the looked-up cache target.
    pub(crate) ibl_rcx: u64,
    pub(crate) ibl_rax: u64,
    pub(crate) ibl_rdx: u64,
    pub(crate) ibl_flags: u64,
    pub(crate) ibl_target: u64,
    pub(crate) ibl_table: u64,
    pub(crate) ibl_mask: u64,
    pub(crate) ibl_lookups: u64,
    /// Where a lookup's miss path goes (`dbi_ibl_miss`).
    pub(crate) ibl_miss_handler: u64,
    /// Where a flag-free first probe that missed goes on (`dbi_ibl_slow`).
    pub(crate) ibl_slow_path: u64,
    /// `dbi_fcache_return`, for exit stubs that must not depend on where
    /// they are (persistable code jumps through this slot).
    pub(crate) fcache_return: u64,
    /// The application's GS base (GS itself belongs to the runtime).
    pub(crate) app_gs_base: u64,
    /// Raw TLS slots of the clients, `TLS_SLOTS_PER_CLIENT` each, in order.
    pub(crate) client_tls: [u64; crate::client_host::CLIENT_TLS_SLOTS],
    /// Where inline instrumentation spills rax while it saves the flags.
    pub(crate) client_flags_spill: u64,
    pub(crate) xsave_len: u64,
    /// Length of the mapping that holds this context, its XSAVE area and
    /// its runtime stack.
    pub(crate) mapping_len: u64,
    /// Set in a vfork child: it shares the parent's memory, and the parent
    /// frees this context once the child has exec'd or exited.
    pub(crate) is_vfork_child: u64,
    /// Non-zero while signals wait for delivery: the indirect-branch lookup
    /// then exits to the dispatcher, which delivers them.
    pub(crate) signal_pending: u64,
    pub(crate) pending: crate::signals::handling::PendingSignals,
    /// `dbi_ibl_miss`, for code that must reach the dispatcher without the
    /// miss handler's search of loaded files (a recording's copies).
    pub(crate) dispatcher_miss: u64,
    /// Registers the search of loaded files' tables borrows (rsi, rdi, r8,
    /// r9; rdx goes to `ibl_rdx`).
    pub(crate) file_lookup_scratch: [u64; 4],
    /// App pcs that search found, for the dispatcher to enter in the
    /// lookup table (`translate/file_lookup.rs`).
    pub(crate) file_hits: [u64; crate::translate::file_lookup::QUEUED_HITS],
    pub(crate) file_hit_count: u64,
    /// Selects a return's slot in `ret_cache` (`pext` of the app return
    /// address); 0 while a signal waits, so every return misses and goes
    /// the way that looks at pending signals (`translate/returns.rs`).
    pub(crate) ret_mask: u64,
    /// Predicted returns: per slot, the app return address of the call
    /// that last filled it and the cache address its `call` pushed.
    pub(crate) ret_cache: [[u64; 2]; crate::translate::returns::SLOTS],
    /// The epoch this thread last passed the dispatcher in
    /// (`quiescence.rs`), read by other threads' flushes.
    pub(crate) passage: core::sync::atomic::AtomicU64,
}

pub(crate) mod offsets {
    use super::*;
    pub(crate) const SELF: usize = offset_of!(ThreadContext, self_ptr);
    pub(crate) const GPR: usize = offset_of!(ThreadContext, gpr);
    pub(crate) const RFLAGS: usize = offset_of!(ThreadContext, rflags);
    pub(crate) const EXIT_DATA: usize = offset_of!(ThreadContext, exit_data);
    pub(crate) const NEXT_PC: usize = offset_of!(ThreadContext, next_pc);
    pub(crate) const ENTER_TARGET: usize = offset_of!(ThreadContext, enter_target);
    pub(crate) const STACK_TOP: usize = offset_of!(ThreadContext, runtime_stack_top);
    pub(crate) const XSAVE_AREA: usize = offset_of!(ThreadContext, xsave_area);
    pub(crate) const XSTATE_WHOLE: usize = offset_of!(ThreadContext, xstate_whole);
    pub(crate) const SPILL: usize = offset_of!(ThreadContext, spill);
    pub(crate) const IBL_RCX: usize = offset_of!(ThreadContext, ibl_rcx);
    pub(crate) const IBL_RAX: usize = offset_of!(ThreadContext, ibl_rax);
    pub(crate) const IBL_RDX: usize = offset_of!(ThreadContext, ibl_rdx);
    pub(crate) const IBL_MISS_HANDLER: usize = offset_of!(ThreadContext, ibl_miss_handler);
    pub(crate) const IBL_SLOW_PATH: usize = offset_of!(ThreadContext, ibl_slow_path);
    pub(crate) const FCACHE_RETURN: usize = offset_of!(ThreadContext, fcache_return);
    pub(crate) const IBL_FLAGS: usize = offset_of!(ThreadContext, ibl_flags);
    pub(crate) const IBL_TARGET: usize = offset_of!(ThreadContext, ibl_target);
    pub(crate) const IBL_TABLE: usize = offset_of!(ThreadContext, ibl_table);
    pub(crate) const IBL_MASK: usize = offset_of!(ThreadContext, ibl_mask);
    pub(crate) const IBL_LOOKUPS: usize = offset_of!(ThreadContext, ibl_lookups);
    pub(crate) const SIGNAL_PENDING: usize = offset_of!(ThreadContext, signal_pending);
    pub(crate) const CLIENT_TLS: usize = offset_of!(ThreadContext, client_tls);
    pub(crate) const CLIENT_FLAGS_SPILL: usize = offset_of!(ThreadContext, client_flags_spill);
    pub(crate) const DISPATCHER_MISS: usize = offset_of!(ThreadContext, dispatcher_miss);
    pub(crate) const FILE_LOOKUP_SCRATCH: usize = offset_of!(ThreadContext, file_lookup_scratch);
    pub(crate) const FILE_HITS: usize = offset_of!(ThreadContext, file_hits);
    pub(crate) const FILE_HIT_COUNT: usize = offset_of!(ThreadContext, file_hit_count);
    pub(crate) const RET_MASK: usize = offset_of!(ThreadContext, ret_mask);
    pub(crate) const RET_CACHE: usize = offset_of!(ThreadContext, ret_cache);
}

const RUNTIME_STACK_SIZE: u64 = 1 << 20;

impl ThreadContext {
    /// Allocates a context with its runtime stack and XSAVE area (one
    /// mapping, freed as a whole when the thread exits).
    pub(crate) fn allocate() -> &'static mut ThreadContext {
        let xsave_len = sys::page_up(crate::signals::frames::xsave_size().max(4096));
        let ctx_len = sys::page_up(core::mem::size_of::<ThreadContext>() as u64);
        let total = ctx_len + xsave_len + RUNTIME_STACK_SIZE;
        let mem = sys::map_anonymous(total)
            .unwrap_or_else(|| crate::log::fatal(70, format_args!("out of memory for a thread")))
            as u64;
        let xsave = mem + ctx_len;
        // The application starts in the FPU's initial state: XSTATE_BV = 0
        // (all components in init state), default control words.
        // SAFETY: fresh zeroed mapping; offsets per the XSAVE legacy layout.
        unsafe {
            *(xsave as *mut u16) = 0x037f;
            *((xsave + 24) as *mut u32) = 0x1f80;
        }
        let ctx = mem as *mut ThreadContext;
        // SAFETY: the mapping is zeroed and large enough; all fields are plain data.
        let ctx = unsafe { &mut *ctx };
        ctx.self_ptr = ctx;
        ctx.xsave_area = xsave;
        ctx.xstate_whole = 1;
        ctx.xsave_len = xsave_len;
        ctx.runtime_stack_top = mem + total;
        ctx.mapping_len = total;
        ctx.ibl_miss_handler = crate::translate::file_lookup::miss_handler_addr();
        ctx.dispatcher_miss = crate::translate::ibl::dispatcher_miss_addr();
        ctx.ibl_slow_path = crate::translate::ibl::slow_path_addr();
        ctx.fcache_return = crate::context_switch::fcache_return_addr();
        ctx.rflags = 0x202;
        ctx
    }

    /// Completes the XSAVE area with the parts of the app's extended state
    /// a cache exit left in the CPU (x87, the upper halves of the vector
    /// registers, AVX-512's, PKRU...): runtime code never touches them (it
    /// is built for SSE2 only, blake3 without AVX, which
    /// `tests/tests/runtime_binary.rs` checks), and a full XSAVE on every
    /// exit cost 150-250 ns of the ~1.6 us a cold block takes. Called
    /// before anything reads the area as a whole (a signal frame, a new
    /// thread's state), from the dispatcher, never from a signal handler
    /// (the kernel gives handlers a fresh FPU state).
    pub(crate) fn save_whole_xstate(&mut self) {
        if self.xstate_whole != 0 {
            return;
        }
        const SSE: u32 = 1 << 1;
        const MXCSR: u64 = 24;
        const XSTATE_BV: u64 = 512;
        let area = self.xsave_area;
        // SAFETY: the area is this thread's, 64-byte aligned and large
        // enough for every component XCR0 enables; XSAVE leaves the SSE
        // component's xmm registers (saved at the exit) as they are, and
        // writes MXCSR, which is put back as saved.
        unsafe {
            let mxcsr = *((area + MXCSR) as *const u32);
            core::arch::asm!(
                "xsave64 [{area}]",
                area = in(reg) area,
                in("eax") !SSE,
                in("edx") u32::MAX,
                options(nostack),
            );
            *((area + MXCSR) as *mut u32) = mxcsr;
            *((area + XSTATE_BV) as *mut u64) |= SSE as u64;
        }
        self.xstate_whole = 1;
    }

    /// Points this thread's GS base at `self`.
    pub(crate) fn activate(&mut self) {
        if sys::set_gs_base(self as *mut _ as u64) < 0 {
            crate::log::fatal(70, format_args!("cannot set the GS base"));
        }
    }

    /// A context for a new thread (or vfork child) that continues with the
    /// same application state as `self`.
    pub(crate) fn clone_for_child(&mut self) -> &'static mut ThreadContext {
        self.save_whole_xstate();
        let child = ThreadContext::allocate();
        child.gpr = self.gpr;
        child.rflags = self.rflags;
        child.app_gs_base = self.app_gs_base;
        child.ibl_table = self.ibl_table;
        child.ibl_mask = self.ibl_mask;
        child.ret_mask = self.ret_mask;
        // SAFETY: both areas are xsave_len bytes; the parent's holds the
        // whole app state now.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.xsave_area as *const u8,
                child.xsave_area as *mut u8,
                self.xsave_len as usize,
            )
        };
        child
    }

    /// Start and length of the mapping holding this context.
    pub(crate) fn mapping(&self) -> (u64, u64) {
        (self as *const _ as u64, self.mapping_len)
    }
}

/// The calling thread's context.
///
/// # Safety
/// Only on a thread the runtime created or started (GS is set), and the
/// caller must not create aliasing mutable references.
pub(crate) unsafe fn current() -> &'static mut ThreadContext {
    let ctx: u64;
    // SAFETY: GS points at this thread's ThreadContext, whose first field
    // is its own address.
    unsafe {
        core::arch::asm!("mov {}, qword ptr gs:[0]", out(reg) ctx, options(nostack, readonly, preserves_flags));
        &mut *(ctx as *mut ThreadContext)
    }
}
