//! The front's system calls beyond rustix's typed ones: execve and exit
//! (only in rustix's unstable `runtime` module), the wall clock (rustix's
//! goes through the vDSO, found from an auxiliary vector the front does
//! not hand it), and the one message the front prints itself.

use alloc::vec::Vec;
use core::arch::asm;

/// # Safety
/// The arguments are valid for system call `nr`.
unsafe fn syscall3(nr: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    let ret: i64;
    // SAFETY: the kernel clobbers only rcx and r11 besides rax.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a0, in("rsi") a1, in("rdx") a2,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

const EXECVE: u64 = 59;
const EXIT_GROUP: u64 = 231;
const CLOCK_GETTIME: u64 = 228;
const CLOCK_REALTIME: u64 = 0;

/// Execs `path` (NUL-terminated) with raw argv and envp arrays; returns
/// the errno when the exec failed.
pub fn execve_raw(path: &[u8], argv: *const *const u8, envp: *const *const u8) -> i32 {
    assert_eq!(path.last(), Some(&0));
    // SAFETY: a NUL-terminated path; argv and envp are null-terminated
    // arrays of NUL-terminated strings (the kernel's own, or built by `execve`).
    -(unsafe { syscall3(EXECVE, path.as_ptr() as u64, argv as u64, envp as u64) }) as i32
}

/// Execs `argv[0]` with `argv` (each string NUL-terminated) and the raw
/// environment; returns the errno when the exec failed.
pub fn execve(argv: &[Vec<u8>], envp: *const *const u8) -> i32 {
    assert!(argv.iter().all(|a| a.last() == Some(&0)));
    let mut pointers: Vec<*const u8> = argv.iter().map(|a| a.as_ptr()).collect();
    pointers.push(core::ptr::null());
    execve_raw(&argv[0], pointers.as_ptr(), envp)
}

pub fn exit(status: i32) -> ! {
    // SAFETY: exit_group does not return.
    unsafe { syscall3(EXIT_GROUP, status as u64, 0, 0) };
    unreachable!()
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u128 {
    let mut ts = [0i64; 2];
    // SAFETY: a writable timespec.
    let r = unsafe { syscall3(CLOCK_GETTIME, CLOCK_REALTIME, ts.as_mut_ptr() as u64, 0) };
    if r < 0 {
        return 0;
    }
    ts[0] as u128 * 1_000_000_000 + ts[1] as u128
}

/// The directory of this executable (`/proc/self/exe`'s).
pub fn own_dir() -> Option<Vec<u8>> {
    let exe = rustix::fs::readlink("/proc/self/exe", Vec::new()).ok()?.into_bytes();
    let slash = exe.iter().rposition(|&b| b == b'/')?;
    Some(exe[..slash.max(1)].to_vec())
}

/// dbirun-full could not be executed: the one message the front prints
/// itself, with the shell's statuses (127 not found, 126 otherwise).
pub fn fail(full: &[u8], errno: i32) -> ! {
    let why = match rustix::io::Errno::from_raw_os_error(errno) {
        rustix::io::Errno::NOENT => "No such file or directory",
        rustix::io::Errno::ACCESS => "Permission denied",
        _ => "exec failed",
    };
    let mut line: Vec<u8> = b"dbirun: cannot execute ".to_vec();
    line.extend_from_slice(full);
    line.extend_from_slice(alloc::format!(": {why} (errno {errno})\n").as_bytes());
    // SAFETY: a descriptor number only; a closed stderr fails the write.
    let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
    let _ = rustix::io::write(stderr, &line);
    exit(if errno == rustix::io::Errno::NOENT.raw_os_error() { 127 } else { 126 })
}
