//! Building the application's initial stack exactly as the kernel's
//! `create_elf_tables` lays it out: strings at the top (exec file name,
//! environment, arguments), then platform string and AT_RANDOM bytes, then
//! argc, argv[], NULL, envp[], NULL and the auxiliary vector.

use alloc::vec::Vec;

use crate::os::auxv::*;
use crate::os::startup_args::CStr;
use crate::os::sys;

/// What goes on the stack besides argv and envp.
pub(crate) struct StackImage<'a> {
    pub(crate) argv: &'a [CStr],
    pub(crate) envp: &'a [CStr],
    pub(crate) execfn: CStr,
    pub(crate) platform: Option<CStr>,
    /// The auxiliary vector without the pointer-valued entries this module
    /// places itself (AT_EXECFN, AT_RANDOM, AT_PLATFORM) and without AT_NULL.
    pub(crate) auxv: Vec<(u64, u64)>,
}

/// Where `build` put things: what the kernel records in the process's
/// `mm` for a native exec (`proc_identity` tells it).
pub(crate) struct Built {
    /// The initial stack pointer (argc).
    pub(crate) sp: u64,
    /// The argument strings, NULs included, `[start, end)`.
    pub(crate) args: (u64, u64),
    /// The environment strings, `[start, end)` (starts where `args` ends).
    pub(crate) env: (u64, u64),
    /// The auxiliary vector's address and its size in bytes, AT_NULL included.
    pub(crate) auxv: (u64, u64),
}

struct Writer {
    p: u64,
}

impl Writer {
    fn push_bytes(&mut self, bytes: &[u8]) -> u64 {
        self.p -= bytes.len() as u64;
        // SAFETY: the area below the old stack top belongs to the stack.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.p as *mut u8, bytes.len()) };
        self.p
    }
}

/// Writes the stack image below `top`; returns where its parts are.
///
/// # Safety
/// `[top - size of the image, top)` is writable stack memory that nothing
/// else uses.
pub(crate) unsafe fn build(top: u64, image: &StackImage, random: &[u8; 16]) -> Built {
    // `top` is where the kernel ended the exec file name (8 bytes below the
    // stack top): the app's strings go exactly where the kernel would have
    // put them, so string and stack alignment match a native run.
    let mut w = Writer { p: top };
    let execfn = w.push_bytes(image.execfn.as_bytes_with_nul());
    // Strings in increasing order of index, as the kernel's copy_strings leaves them.
    let place_all = |strings: &[CStr], w: &mut Writer| -> Vec<u64> {
        let mut addrs: Vec<u64> = strings.iter().rev().map(|s| w.push_bytes(s.as_bytes_with_nul())).collect();
        addrs.reverse();
        addrs
    };
    let env_addrs = place_all(image.envp, &mut w);
    let arg_addrs = place_all(image.argv, &mut w);
    let env_start = env_addrs.first().copied().unwrap_or(execfn);
    let args = (arg_addrs.first().copied().unwrap_or(env_start), env_start);
    // arch_align_stack, then the platform string and the random bytes.
    w.p &= !15;
    let platform = image.platform.map(|s| w.push_bytes(s.as_bytes_with_nul()));
    let random_addr = w.push_bytes(random);

    let mut auxv = image.auxv.clone();
    auxv.push((AT_RANDOM, random_addr));
    auxv.push((AT_EXECFN, execfn));
    if let Some(addr) = platform {
        auxv.push((AT_PLATFORM, addr));
    }
    auxv.push((AT_NULL, 0));

    let auxv_words = 2 * auxv.len();
    let words = 1 + arg_addrs.len() + 1 + env_addrs.len() + 1 + auxv_words;
    let sp = (w.p - 8 * words as u64) & !15;
    let mut table: Vec<u64> = Vec::with_capacity(words);
    table.push(arg_addrs.len() as u64);
    table.extend_from_slice(&arg_addrs);
    table.push(0);
    table.extend_from_slice(&env_addrs);
    table.push(0);
    for (k, v) in auxv {
        table.push(k);
        table.push(v);
    }
    // SAFETY: the table fits between sp and the strings (sized above).
    unsafe { core::ptr::copy_nonoverlapping(table.as_ptr(), sp as *mut u64, table.len()) };
    let auxv_bytes = 8 * auxv_words as u64;
    Built {
        sp,
        args,
        env: (env_start, execfn),
        auxv: (sp + 8 * words as u64 - auxv_bytes, auxv_bytes),
    }
}

/// The program asked for an executable stack (PT_GNU_STACK with PF_X),
/// which the kernel gives it at exec: the runtime's own stack, now the
/// app's, becomes executable (never natively under `-no_native_exec`), and
/// the app's view of it says so, so code written there (GCC's nested
/// function trampolines) is translated. Returns the range the stack may
/// grow over, writable code the translator must keep in step with writes.
pub(crate) fn make_executable(sp: u64) -> Option<(u64, u64)> {
    const PROT_GROWSDOWN: u64 = 0x0100_0000;
    /// The most of the stack's future growth the app's view covers.
    const MAX_GROWTH: u64 = 1 << 30;
    let rw = sys::PROT_READ | sys::PROT_WRITE;
    let kernel = if crate::options::get().no_native_exec { rw } else { rw | sys::PROT_EXEC };
    // SAFETY: the stack's protection, as the kernel would have set it;
    // GROWSDOWN extends the change to the whole stack mapping below sp.
    let _ = unsafe { sys::mprotect(sys::page_down(sp), sys::PAGE_SIZE, kernel | PROT_GROWSDOWN) };
    let text = crate::os::proc_maps::read()?;
    let stack = crate::os::proc_maps::lines(&text).find(|l| (l.lo..l.hi).contains(&sp))?;
    // No limit (RLIM_INFINITY) is None.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Stack).current.unwrap_or(u64::MAX);
    let lo = stack.hi.saturating_sub(limit.min(MAX_GROWTH)).min(stack.lo);
    let rwx = rw | sys::PROT_EXEC;
    crate::os::app_prot::note(lo, stack.hi - lo, Some(rwx));
    Some((lo, stack.hi))
}
