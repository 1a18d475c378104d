//! Reading the kernel's initial stack: argc, argv, envp and the auxiliary
//! vector the kernel gave the runtime.

use alloc::vec::Vec;
use core::fmt;

/// A NUL-terminated string that lives for the whole run (in the kernel's
/// initial stack area or leaked on the heap).
#[derive(Clone, Copy)]
pub(crate) struct CStr {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes a CStr points at are never changed or freed.
unsafe impl Send for CStr {}
// SAFETY: as above; shared reads only.
unsafe impl Sync for CStr {}

impl CStr {
    /// # Safety
    /// `ptr` points to a NUL-terminated string that is never freed or changed.
    pub(crate) unsafe fn from_ptr(ptr: *const u8) -> CStr {
        let mut len = 0;
        // SAFETY: the caller guarantees a terminating NUL.
        while unsafe { *ptr.add(len) } != 0 {
            len += 1;
        }
        CStr { ptr, len }
    }

    /// Copies `bytes` plus a NUL to a leaked heap buffer.
    pub(crate) fn leak(bytes: &[u8]) -> CStr {
        let mut v = Vec::with_capacity(bytes.len() + 1);
        v.extend_from_slice(bytes);
        v.push(0);
        let s = v.leak();
        CStr { ptr: s.as_ptr(), len: bytes.len() }
    }

    pub(crate) fn as_bytes(&self) -> &'static [u8] {
        // SAFETY: see the constructors.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes including the terminating NUL.
    pub(crate) fn as_bytes_with_nul(&self) -> &'static [u8] {
        // SAFETY: see the constructors.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len + 1) }
    }

    /// A decimal number of up to 20 digits that fits in a u64.
    pub(crate) fn parse_u64(&self) -> Option<u64> {
        let b = self.as_bytes();
        if b.is_empty() {
            return None;
        }
        b.iter().try_fold(0u64, |acc, &c| if c.is_ascii_digit() { acc.checked_mul(10)?.checked_add((c - b'0') as u64) } else { None })
    }

    pub(crate) fn parse_decimal(&self) -> Option<usize> {
        self.parse_u64().filter(|_| self.len <= 9).map(|n| n as usize)
    }
}

impl fmt::Display for CStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.as_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

pub(crate) struct StartupArgs {
    pub(crate) argv: Vec<CStr>,
    pub(crate) envp: Vec<CStr>,
    pub(crate) auxv: Vec<(u64, u64)>,
    /// One past the highest byte the kernel wrote for this process's
    /// arguments: the top of the initial stack's used area.
    pub(crate) stack_top: u64,
}

impl StartupArgs {
    /// # Safety
    /// `sp` is the stack pointer the kernel handed to `_start`.
    pub(crate) unsafe fn read(sp: *const u64) -> StartupArgs {
        // SAFETY: the kernel's initial stack layout: argc, argv..., 0,
        // envp..., 0, auxv pairs..., AT_NULL.
        unsafe {
            let argc = *sp as usize;
            let mut p = sp.add(1);
            let mut top = 0u64;
            // Copied to the heap: the app's initial stack is later built over
            // this very area.
            let take = |ptr: u64, top: &mut u64| {
                let s = CStr::from_ptr(ptr as *const u8);
                *top = (*top).max(ptr + s.len as u64 + 1);
                CStr::leak(s.as_bytes())
            };
            let argv = (0..argc).map(|k| take(*p.add(k), &mut top)).collect();
            p = p.add(argc + 1);
            let mut envp = Vec::new();
            while *p != 0 {
                envp.push(take(*p, &mut top));
                p = p.add(1);
            }
            p = p.add(1);
            let mut auxv = Vec::new();
            while *p != 0 {
                auxv.push((*p, *p.add(1)));
                p = p.add(2);
            }
            if let Some(&(_, execfn)) = auxv.iter().find(|(k, _)| *k == crate::os::auxv::AT_EXECFN) {
                take(execfn, &mut top);
            }
            StartupArgs { argv, envp, auxv, stack_top: top }
        }
    }

    pub(crate) fn aux(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }
}
