//! The kernel's initial stack: argc, argv and envp, as slices the front
//! reads and as the raw arrays it passes on unchanged when it hands over.

use alloc::vec::Vec;
use core::cell::UnsafeCell;

pub struct Startup {
    /// The arguments without their NULs; `args[0]` is the front's own name.
    pub args: Vec<&'static [u8]>,
    /// `NAME=value` strings, without their NULs.
    pub env: Vec<&'static [u8]>,
    pub argv_raw: *const *const u8,
    pub envp_raw: *const *const u8,
}

/// # Safety
/// `p` points to a NUL-terminated string that lives for the whole process.
unsafe fn c_bytes(p: *const u8) -> &'static [u8] {
    let mut len = 0;
    // SAFETY: the caller guarantees a terminating NUL.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` bytes before the NUL, never freed.
    unsafe { core::slice::from_raw_parts(p, len) }
}

/// # Safety
/// `list` is a null-terminated array of pointers to strings as above.
unsafe fn strings(list: *const *const u8) -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    for i in 0.. {
        // SAFETY: the caller guarantees the terminating null pointer.
        let p = unsafe { *list.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: as above.
        out.push(unsafe { c_bytes(p) });
    }
    out
}

impl Startup {
    /// # Safety
    /// `sp` is the kernel's initial stack pointer: argc, then argv's
    /// pointers and a null, then envp's and a null.
    pub unsafe fn read(sp: *const usize) -> Startup {
        // SAFETY: the layout the kernel guarantees at process entry.
        unsafe {
            let argc = *sp;
            let argv_raw = sp.add(1) as *const *const u8;
            let envp_raw = argv_raw.add(argc + 1);
            Startup { args: strings(argv_raw), env: strings(envp_raw), argv_raw, envp_raw }
        }
    }

    /// The value of environment variable `name`, as exec would pass it.
    pub fn var(&self, name: &[u8]) -> Option<&'static [u8]> {
        self.env.iter().find_map(|e| e.strip_prefix(name).and_then(|rest| rest.strip_prefix(b"=")))
    }
}

/// The start-up the panic handler hands over with.
struct Kept(UnsafeCell<Option<&'static Startup>>);
// SAFETY: the front is one thread from its first instruction to its exec.
unsafe impl Sync for Kept {}
static KEPT: Kept = Kept(UnsafeCell::new(None));

/// Keeps `start` for [`kept`].
pub fn keep_for_hand_over(start: &'static Startup) {
    // SAFETY: one thread; written once, before anything can panic and read it.
    unsafe { *KEPT.0.get() = Some(start) };
}

pub fn kept() -> Option<&'static Startup> {
    // SAFETY: one thread.
    unsafe { *KEPT.0.get() }
}
