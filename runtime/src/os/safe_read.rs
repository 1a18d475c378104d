//! Reading and writing app memory that may not be accessible, without a
//! fault escaping: accesses at known pcs whose fault the signal handler
//! turns into a return value. The translator probes each page of app code this way before it
//! decodes from it, so a jump to unmapped memory becomes the app's fault,
//! with no runtime frame to abandon and no lock to force open; system
//! calls the runtime carries out itself read and write the app's buffers
//! this way, so a bad pointer gets EFAULT, as from the kernel.

core::arch::global_asm!(
    ".globl dbi_probe_byte",
    ".type dbi_probe_byte,@function",
    // rdi: the address. Returns eax = 1 if the byte could be read, else 0.
    "dbi_probe_byte:",
    "mov eax, 1",
    ".globl dbi_probe_load",
    "dbi_probe_load:",
    "movzx ecx, byte ptr [rdi]",
    "ret",
    ".globl dbi_probe_fault",
    // The signal handler resumes here when the load above faulted.
    "dbi_probe_fault:",
    "xor eax, eax",
    "ret",
    ".globl dbi_safe_copy",
    ".type dbi_safe_copy,@function",
    // rdi: destination, rsi: source, rdx: length. Returns eax = 1 if every
    // byte was copied, else 0 (a fault on either side).
    "dbi_safe_copy:",
    "mov rcx, rdx",
    "mov eax, 1",
    ".globl dbi_safe_copy_move",
    "dbi_safe_copy_move:",
    "rep movsb",
    "ret",
    ".globl dbi_safe_copy_fault",
    "dbi_safe_copy_fault:",
    "xor eax, eax",
    "ret",
);

extern "C" {
    fn dbi_probe_byte(addr: u64) -> u32;
    fn dbi_probe_load();
    fn dbi_probe_fault();
    fn dbi_safe_copy(dst: u64, src: u64, len: u64) -> u32;
    fn dbi_safe_copy_move();
    fn dbi_safe_copy_fault();
}

/// Whether the byte at `addr` can be read.
pub(crate) fn readable(addr: u64) -> bool {
    // SAFETY: the routine only loads from addr; a fault there is caught by
    // the runtime's handler (see `recovery_for`).
    unsafe { dbi_probe_byte(addr) != 0 }
}

/// Fills `dst` from app memory at `addr`, as the kernel's copy_from_user
/// would; false where the kernel answers EFAULT.
pub(crate) fn copy_from_app(dst: &mut [u8], addr: u64) -> bool {
    // SAFETY: the destination is the runtime's own slice of the length
    // copied; the source is only read, and a fault there is caught (see
    // `recovery_for`).
    unsafe { dbi_safe_copy(dst.as_mut_ptr() as u64, addr, dst.len() as u64) != 0 }
}

/// Reads a `T` the app passed by pointer: None where the kernel answers
/// EFAULT.
pub(crate) fn read_app<T: Copy + Default>(addr: u64) -> Option<T> {
    let mut value = T::default();
    // SAFETY: the destination is a local of the size copied; the source is
    // only read, and a fault there is caught (see `recovery_for`).
    let ok = unsafe { dbi_safe_copy(&mut value as *mut T as u64, addr, core::mem::size_of::<T>() as u64) };
    (ok != 0).then_some(value)
}

/// The NUL-terminated string at `addr` in app memory (at most `PATH_MAX`
/// bytes, as the kernel reads a path); None where the kernel answers
/// EFAULT (or ENAMETOOLONG).
pub(crate) fn read_app_path(addr: u64) -> Option<crate::os::startup_args::CStr> {
    const PATH_MAX: u64 = 4096;
    let mut bytes = alloc::vec::Vec::new();
    for i in 0..PATH_MAX {
        match read_app::<u8>(addr + i)? {
            0 => return Some(crate::os::startup_args::CStr::leak(&bytes)),
            b => bytes.push(b),
        }
    }
    None
}

/// Writes `value` where the app asked for it; false where the kernel
/// answers EFAULT.
pub(crate) fn write_app<T: Copy>(addr: u64, value: T) -> bool {
    // SAFETY: the source is a local of the size copied; the destination is
    // the app's, and a fault there is caught (see `recovery_for`).
    unsafe { dbi_safe_copy(addr, &value as *const T as u64, core::mem::size_of::<T>() as u64) != 0 }
}

/// Where a fault at runtime pc `pc` must resume, if `pc` is one of the
/// guarded accesses above.
pub(crate) fn recovery_for(pc: u64) -> Option<u64> {
    if pc == dbi_probe_load as *const () as u64 {
        return Some(dbi_probe_fault as *const () as u64);
    }
    (pc == dbi_safe_copy_move as *const () as u64).then(|| dbi_safe_copy_fault as *const () as u64)
}
