//! The kernel's `siginfo_t` (128 bytes on x86-64). The runtime keeps it
//! whole, since the app's handler gets exactly what the kernel sent, and
//! reads or writes only the fields below, decoded here and nowhere else.

/// `sizeof(siginfo_t)`.
pub const SIZE: usize = 128;

const SIGNO: usize = 0;
const CODE: usize = 8;
/// `si_addr` of a fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP).
const ADDR: usize = 16;

/// A `siginfo_t` as the kernel lays it out (no alignment asked of it, so a
/// kernel pointer may be read as one).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct SigInfo([u8; SIZE]);

impl SigInfo {
    /// The siginfo of a fault the runtime raises for the app: `si_signo`,
    /// `si_code` and `si_addr`, the rest zero, as the kernel's
    /// `force_sig_fault` fills it.
    pub fn fault(signo: u32, code: i32, addr: u64) -> SigInfo {
        let mut info = SigInfo([0; SIZE]);
        info.0[SIGNO..SIGNO + 4].copy_from_slice(&(signo as i32).to_le_bytes());
        info.0[CODE..CODE + 4].copy_from_slice(&code.to_le_bytes());
        info.set_addr(addr);
        info
    }

    /// # Safety
    /// `ptr` points to a siginfo the kernel passed, valid for the returned
    /// lifetime.
    pub unsafe fn from_kernel<'a>(ptr: *const u8) -> &'a SigInfo {
        // SAFETY: SigInfo is a byte array; the caller vouches for the memory.
        unsafe { &*(ptr as *const SigInfo) }
    }

    /// `si_code`: positive when the kernel raised the signal itself (a
    /// fault), zero or negative when a process sent it.
    pub fn code(&self) -> i32 {
        i32::from_le_bytes(self.0[CODE..CODE + 4].try_into().unwrap())
    }

    /// `si_addr` (meaningful for faults only).
    pub fn addr(&self) -> u64 {
        u64::from_le_bytes(self.0[ADDR..ADDR + 8].try_into().unwrap())
    }

    pub fn set_addr(&mut self, addr: u64) {
        self.0[ADDR..ADDR + 8].copy_from_slice(&addr.to_le_bytes());
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}
