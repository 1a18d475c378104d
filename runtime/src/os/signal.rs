//! The kernel's signal structures and the runtime's own signal calls.
//!
//! `siginfo_t` (128 bytes on x86-64) is kept whole, since the app's handler
//! gets exactly what the kernel sent; the fields the runtime reads or
//! writes are decoded here and nowhere else. `struct sigaction` as
//! `rt_sigaction` takes it, `stack_t`, and the 8-byte kernel signal set.
//!
//! Hand-written system calls: rustix has `rt_sigaction`, `rt_sigprocmask`,
//! `sigaltstack` and `rt_tgsigqueueinfo` only in its unstable `runtime`
//! module (or not at all), and the runtime needs the kernel's own layouts.

use crate::os::sys::{self, nr, syscall, syscall6};

/// `sizeof(siginfo_t)`.
pub(crate) const SIZE: usize = 128;

const SIGNO: usize = 0;
const CODE: usize = 8;
/// `si_addr` of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
const ADDR: usize = 16;

/// A `siginfo_t` as the kernel lays it out (no alignment asked of it, so a
/// kernel pointer may be read as one).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct SigInfo([u8; SIZE]);

impl SigInfo {
    /// The siginfo of a fault the runtime raises for the app: `si_signo`,
    /// `si_code` and `si_addr`, the rest zero, as the kernel's
    /// `force_sig_fault` fills it.
    pub(crate) fn fault(signo: u32, code: i32, addr: u64) -> SigInfo {
        let mut info = SigInfo([0; SIZE]);
        info.0[SIGNO..SIGNO + 4].copy_from_slice(&(signo as i32).to_le_bytes());
        info.0[CODE..CODE + 4].copy_from_slice(&code.to_le_bytes());
        info.set_addr(addr);
        info
    }

    /// # Safety
    /// `ptr` points to a siginfo the kernel passed, valid for the returned
    /// lifetime.
    pub(crate) unsafe fn from_kernel<'a>(ptr: *const u8) -> &'a SigInfo {
        // SAFETY: SigInfo is a byte array; the caller vouches for the memory.
        unsafe { &*(ptr as *const SigInfo) }
    }

    /// `si_code`: positive when the kernel raised the signal itself (a
    /// fault), zero or negative when a process sent it.
    pub(crate) fn code(&self) -> i32 {
        i32::from_le_bytes(self.0[CODE..CODE + 4].try_into().unwrap())
    }

    /// `si_addr` (meaningful for faults only).
    pub(crate) fn addr(&self) -> u64 {
        u64::from_le_bytes(self.0[ADDR..ADDR + 8].try_into().unwrap())
    }

    pub(crate) fn set_addr(&mut self, addr: u64) {
        self.0[ADDR..ADDR + 8].copy_from_slice(&addr.to_le_bytes());
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

/// `struct sigaction` as the kernel's `rt_sigaction` takes it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct KernelSigaction {
    pub(crate) handler: u64,
    pub(crate) flags: u64,
    pub(crate) restorer: u64,
    pub(crate) mask: u64,
}

/// `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct StackT {
    pub(crate) sp: u64,
    pub(crate) flags: u32,
    _pad: u32,
    pub(crate) size: u64,
}

const SS_DISABLE: u32 = 2;

impl StackT {
    pub(crate) fn enabled(&self) -> bool {
        self.flags & SS_DISABLE == 0 && self.size != 0
    }
    pub(crate) fn contains(&self, sp: u64) -> bool {
        self.enabled() && sp > self.sp && sp <= self.sp + self.size
    }
}

/// The runtime's own `rt_sigaction` (the app's request is forwarded raw by
/// `signals/handling.rs`).
pub(crate) fn sigaction(sig: u32, new: Option<&KernelSigaction>, old: Option<&mut KernelSigaction>) -> sys::Result<()> {
    let new_ptr = new.map_or(0, |n| n as *const _ as u64);
    let old_ptr = old.map_or(0, |o| o as *mut _ as u64);
    // SAFETY: valid sigaction pointers or null, sigsetsize 8.
    sys::check(unsafe { syscall6(nr::RT_SIGACTION, [sig as u64, new_ptr, old_ptr, 8, 0, 0]) }).map(drop)
}

/// The calling thread's alternate signal stack.
pub(crate) fn altstack() -> StackT {
    let mut st = StackT::default();
    // SAFETY: querying into a local stack_t.
    unsafe { syscall(nr::SIGALTSTACK, 0, &mut st as *mut _ as u64, 0) };
    st
}

/// Sets the calling thread's signal mask (`how`: SIG_BLOCK 0, SIG_UNBLOCK
/// 1, SIG_SETMASK 2) and returns the previous one.
pub(crate) fn sigprocmask(how: u64, mask: u64) -> u64 {
    let mut old = 0u64;
    // SAFETY: pointers to locals, sigsetsize 8.
    unsafe { syscall6(nr::RT_SIGPROCMASK, [how, &mask as *const u64 as u64, &mut old as *mut u64 as u64, 8, 0, 0]) };
    old
}

/// Makes `sig` pending again for the calling thread with the siginfo it
/// came with (`rt_tgsigqueueinfo`).
pub(crate) fn requeue_to_self(sig: u32, info: &SigInfo) {
    // SAFETY: info is a whole siginfo_t.
    unsafe {
        syscall6(nr::RT_TGSIGQUEUEINFO, [sys::getpid() as u64, sys::gettid() as u64, sig as u64, info.as_ptr() as u64, 0, 0])
    };
}
