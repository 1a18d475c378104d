//! The runtime's own system calls: one typed layer.
//!
//! The runtime links no libc. Its own calls go through the wrappers here:
//! errors are [`Errno`] in a [`Result`] (rustix's), descriptors it opens
//! are [`OwnedFd`]s that close on drop, `fstat` is decoded once into
//! [`Stat`], `getpid`/`gettid`/`getuid` have one wrapper each, and the
//! kernel's `siginfo_t` is `signal::SigInfo`.
//!
//! Served by rustix (1.x, linux_raw backend, `default-features = false`,
//! features `fs`, `mm`, `process`, `thread`, `rand`; no `std`, no libc):
//! open, read/write/pread/pwrite, close (on drop), fstat, flock, rename,
//! unlink, readlinkat, faccessat, fcntl(F_DUPFD_CLOEXEC), getrandom,
//! madvise, mremap (the vDSO move), getpid, gettid, getuid, getrlimit,
//! sched_yield, nanosleep, prctl(PR_SET_NAME) and prctl(PR_SET_MM_MAP).
//! Each is an inline `syscall` instruction returning the error as a value:
//! no allocation, no errno, no TLS, so they are safe in signal handlers and
//! around `fork`. None of them needs the auxiliary vector or the vDSO.
//! Rustix's `clock_gettime` (feature `time`) and `sched_getcpu` do: they
//! find the vDSO from the auxv, which rustix would read lazily from
//! /proc/self/auxv, and the runtime moves the vDSO (`vdso.rs`); so the
//! runtime does not enable `time` and calls neither. One trap: rustix
//! asserts (panics) when a descriptor of -1 is borrowed, so app descriptor
//! numbers go through [`borrow`], which checks.
//!
//! Hand-written ([`syscall`]/[`syscall6`]), with the reason:
//! - the calls `emulation/` forwards for the app by number (its arguments
//!   are the app's and its `-errno` result goes back to the app unchanged;
//!   `emulation/syscalls.rs`, `vsyscall.rs`, `exec.rs`), and the app's own
//!   `rt_sigaction`/`sigaltstack` forwarded by `signals/handling.rs`;
//! - `rt_sigaction`, `rt_sigprocmask`, `sigaltstack`, `rt_tgsigqueueinfo`
//!   (the runtime's own, typed, in `signal.rs` with the kernel's
//!   structures), `rt_sigreturn`, `tgkill`, `clone`/`clone3`,
//!   `execve`/`execveat`, `exit`/`exit_group`, `arch_prctl` (GS base,
//!   `ARCH_GET_XCOMP_PERM`): the kernel's own signal structures and
//!   process-control calls, which rustix offers only in its unstable,
//!   hidden `runtime` module or not at all;
//! - `brk`, `personality`: not in rustix; `getcwd`: rustix's allocates a
//!   `CString` (feature `alloc`), this one fills a caller's buffer;
//!   `clock_gettime`: rustix's goes through the vDSO (above);
//! - `mmap`/`munmap`/`mprotect` stay hand-written but typed
//!   (`Result<u64>`): the runtime's memory code computes addresses and
//!   protections as `u64` throughout, the same values it passes for the
//!   app's requests, and rustix's pointer/bitflags signatures would only
//!   add casts at every call.
//!
//! Descriptors that live for the whole process (stderr, the log's private
//! copy) and the app's descriptors are raw numbers; [`borrow`] lends one
//! to a typed call.

use core::arch::asm;

pub(crate) use rustix::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
pub(crate) use rustix::io::{Errno, Result};


pub(crate) mod nr {
    pub(crate) const READ: u64 = 0;
    pub(crate) const WRITE: u64 = 1;
    pub(crate) const FCNTL: u64 = 72;
    pub(crate) const GETCWD: u64 = 79;
    pub(crate) const READLINK: u64 = 89;
    pub(crate) const MMAP: u64 = 9;
    pub(crate) const MPROTECT: u64 = 10;
    pub(crate) const MUNMAP: u64 = 11;
    pub(crate) const BRK: u64 = 12;
    pub(crate) const RT_SIGACTION: u64 = 13;
    pub(crate) const RT_SIGPROCMASK: u64 = 14;
    pub(crate) const RT_SIGRETURN: u64 = 15;
    pub(crate) const IOCTL: u64 = 16;
    pub(crate) const PREAD64: u64 = 17;
    pub(crate) const PWRITE64: u64 = 18;
    pub(crate) const READV: u64 = 19;
    pub(crate) const WRITEV: u64 = 20;
    pub(crate) const OPEN: u64 = 2;
    pub(crate) const ACCEPT: u64 = 43;
    pub(crate) const SENDTO: u64 = 44;
    pub(crate) const RECVFROM: u64 = 45;
    pub(crate) const SENDMSG: u64 = 46;
    pub(crate) const RECVMSG: u64 = 47;
    pub(crate) const WAIT4: u64 = 61;
    pub(crate) const FLOCK: u64 = 73;
    pub(crate) const SIGALTSTACK: u64 = 131;
    pub(crate) const FUTEX: u64 = 202;
    pub(crate) const WAITID: u64 = 247;
    pub(crate) const RT_TGSIGQUEUEINFO: u64 = 297;
    pub(crate) const ACCEPT4: u64 = 288;
    pub(crate) const MREMAP: u64 = 25;
    pub(crate) const CLONE: u64 = 56;
    pub(crate) const FORK: u64 = 57;
    pub(crate) const VFORK: u64 = 58;
    pub(crate) const EXECVE: u64 = 59;
    pub(crate) const EXIT: u64 = 60;
    pub(crate) const PERSONALITY: u64 = 135;
    pub(crate) const ARCH_PRCTL: u64 = 158;
    pub(crate) const TGKILL: u64 = 234;
    pub(crate) const EXIT_GROUP: u64 = 231;
    pub(crate) const CLOCK_GETTIME: u64 = 228;
    pub(crate) const GETTIMEOFDAY: u64 = 96;
    pub(crate) const TIME: u64 = 201;
    pub(crate) const GETCPU: u64 = 309;
    pub(crate) const OPENAT: u64 = 257;
    pub(crate) const EXECVEAT: u64 = 322;
    pub(crate) const GETRANDOM: u64 = 318;
    pub(crate) const READLINKAT: u64 = 267;
    pub(crate) const CLONE3: u64 = 435;
}

pub(crate) const AT_FDCWD: i64 = -100;

pub(crate) const PROT_NONE: u64 = 0;
pub(crate) const PROT_READ: u64 = 1;
pub(crate) const PROT_WRITE: u64 = 2;
pub(crate) const PROT_EXEC: u64 = 4;
pub(crate) const MAP_PRIVATE: u64 = 0x02;
pub(crate) const MAP_FIXED: u64 = 0x10;
pub(crate) const MAP_ANONYMOUS: u64 = 0x20;
pub(crate) const MAP_NORESERVE: u64 = 0x4000;
pub(crate) const MAP_FIXED_NOREPLACE: u64 = 0x100000;

pub(crate) const ARCH_SET_GS: u64 = 0x1001;
pub(crate) const ARCH_GET_GS: u64 = 0x1004;

pub(crate) const PAGE_SIZE: u64 = 4096;

#[inline]
pub(crate) const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

#[inline]
pub(crate) const fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Issues system call `nr` with six arguments.
///
/// # Safety
/// The caller upholds whatever the particular system call requires of its
/// pointer arguments.
#[inline]
pub(crate) unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the kernel clobbers only rcx and r11 besides rax.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

/// # Safety
/// As for [`syscall6`].
#[inline]
pub(crate) unsafe fn syscall(nr: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    unsafe { syscall6(nr, [a0, a1, a2, 0, 0, 0]) }
}

/// Lends the raw descriptor `fd` (the app's, or one that lives for the
/// whole process) to a typed call; None for a negative number, which no
/// descriptor has (rustix asserts against -1, so this checks first).
#[inline]
pub(crate) fn borrow(fd: i32) -> Option<BorrowedFd<'static>> {
    // SAFETY: a BorrowedFd is only a number to rustix's calls: a closed or
    // foreign descriptor makes the call fail with EBADF (or act on whatever
    // the app has there, which is what it asked for), never undefined
    // behaviour in the runtime.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// A NUL-terminated path as a C string (an interior NUL ends it early).
fn c_path(path: &[u8]) -> &core::ffi::CStr {
    debug_assert_eq!(path.last(), Some(&0));
    core::ffi::CStr::from_bytes_until_nul(path).unwrap_or(c"")
}

pub(crate) fn write(fd: impl AsFd, buf: &[u8]) -> Result<usize> {
    rustix::io::write(fd, buf)
}

/// Writes all of `buf` to `fd`, retrying on short writes and EINTR.
pub(crate) fn write_fully(fd: impl AsFd, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(&fd, buf) {
            Err(Errno::INTR) => {}
            Ok(n) if n > 0 => buf = &buf[n..],
            Ok(_) => return Err(Errno::IO),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes the whole buffer to the raw descriptor `fd`, retrying on short
/// writes and EINTR; gives up on any other error.
pub(crate) fn write_all(fd: i32, buf: &[u8]) {
    if let Some(fd) = borrow(fd) {
        let _ = write_fully(fd, buf);
    }
}

pub(crate) fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe {
        syscall(nr::EXIT_GROUP, code as u64, 0, 0);
    }
    loop {}
}

/// A raw kernel result (`-errno` on failure) as a [`Result`].
#[inline]
pub(crate) fn check(r: i64) -> Result<u64> {
    if (-4095..0).contains(&r) { Err(Errno::from_raw_os_error(-r as i32)) } else { Ok(r as u64) }
}

/// The runtime's own mappings; `fd` is -1 for anonymous memory.
///
/// # Safety
/// Mapping with MAP_FIXED replaces whatever was at `addr`.
pub(crate) unsafe fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Result<u64> {
    check(unsafe { syscall6(nr::MMAP, [addr, len, prot, flags, fd as u64, off]) })
}

/// # Safety
/// Nothing may still use the unmapped range.
pub(crate) unsafe fn munmap(addr: u64, len: u64) -> Result<()> {
    check(unsafe { syscall(nr::MUNMAP, addr, len, 0) }).map(drop)
}

/// Gives the pages of `[addr, addr + len)` back to the kernel; the range
/// stays mapped and reads as zeros.
///
/// # Safety
/// Nothing may still use what the range holds.
pub(crate) unsafe fn discard_pages(addr: u64, len: u64) -> Result<()> {
    // SAFETY: the caller's promise.
    unsafe { rustix::mm::madvise(addr as *mut core::ffi::c_void, len as usize, rustix::mm::Advice::LinuxDontNeed) }
}

/// # Safety
/// Nothing may rely on the old protection of the range.
pub(crate) unsafe fn mprotect(addr: u64, len: u64, prot: u64) -> Result<()> {
    check(unsafe { syscall(nr::MPROTECT, addr, len, prot) }).map(drop)
}

/// Where the runtime's own memory goes: 2 GiB above its image, far from
/// the mmap area, so the app's mappings land where they would natively.
const PRIVATE_REGION: u64 = 0x7e00_8000_0000;
static NEXT_PRIVATE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(PRIVATE_REGION);

/// Anonymous private read-write memory for the runtime, or None.
pub(crate) fn map_anonymous(len: u64) -> Option<*mut u8> {
    map_private(len, PROT_READ | PROT_WRITE)
}

/// Fresh anonymous memory with `prot` in the runtime's private region (or
/// anywhere, if that region is exhausted).
pub(crate) fn map_private(len: u64, prot: u64) -> Option<*mut u8> {
    let len = page_up(len);
    for _ in 0..16 {
        let at = NEXT_PRIVATE.fetch_add(len, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        match unsafe { mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) } {
            Ok(r) => return Some(r as *mut u8),
            Err(Errno::EXIST) => continue,
            Err(_) => break,
        }
    }
    // SAFETY: a fresh anonymous mapping at a kernel-chosen address.
    let r = unsafe { mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) };
    r.ok().map(|r| r as *mut u8)
}

/// Moves the runtime's anonymous mapping `[addr, addr + old_len)` to a
/// fresh place of `new_len` bytes in its private region (or shrinks it
/// in place): the kernel moves the pages, nothing is copied. None, with
/// the mapping as it was, if that cannot be.
///
/// # Safety
/// `[addr, addr + old_len)` is a whole mapping of the runtime's own, and
/// nothing may use `addr` after a move.
pub(crate) unsafe fn remap_private(addr: u64, old_len: u64, new_len: u64) -> Option<u64> {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    let (old_len, new_len) = (page_up(old_len), page_up(new_len));
    if new_len <= old_len {
        // SAFETY: shrinking our own mapping in place; the caller's promise.
        return unsafe { check(syscall(nr::MREMAP, addr, old_len, new_len)) }.ok().map(|_| addr);
    }
    // The new place is claimed first (MAP_FIXED_NOREPLACE, as for any of
    // the runtime's memory), so the move replaces only our own placeholder.
    let to = map_private(new_len, PROT_NONE)? as u64;
    // SAFETY: `to` is the placeholder just mapped; the caller's promise for `addr`.
    match check(unsafe { syscall6(nr::MREMAP, [addr, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, to, 0]) }) {
        Ok(_) => Some(to),
        Err(_) => {
            // SAFETY: the placeholder is ours and unused.
            let _ = unsafe { munmap(to, new_len) };
            None
        }
    }
}

/// Faults in `[addr, addr + len)` in one call (for memory about to be
/// touched throughout: one system call instead of a fault per page);
/// `write` makes private pages writable copies. Best effort: older
/// kernels lack it, and then the pages fault in as usual.
pub(crate) fn populate(addr: u64, len: u64, write: bool) {
    use rustix::mm::Advice;
    let advice = if write { Advice::LinuxPopulateWrite } else { Advice::LinuxPopulateRead };
    let start = page_down(addr);
    // SAFETY: advice only; the range is the caller's mapping.
    let _ = unsafe { rustix::mm::madvise(start as *mut core::ffi::c_void, page_up(addr + len - start) as usize, advice) };
}

pub(crate) use rustix::fs::{FlockOperation, Mode, OFlags};

/// Opens `path` (NUL-terminated) with `flags` plus `O_CLOEXEC`.
pub(crate) fn open(path: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd> {
    rustix::fs::open(c_path(path), flags | OFlags::CLOEXEC, mode)
}

/// Opens `path` (NUL-terminated) read-only.
pub(crate) fn open_read(path: &[u8]) -> Result<OwnedFd> {
    open(path, OFlags::RDONLY, Mode::empty())
}

pub(crate) fn pread(fd: impl AsFd, buf: &mut [u8], off: u64) -> Result<usize> {
    rustix::io::pread(fd, buf, off)
}

pub(crate) fn pwrite(fd: impl AsFd, buf: &[u8], off: u64) -> Result<usize> {
    rustix::io::pwrite(fd, buf, off)
}

/// Fills `buf` from `off` as far as the file goes, retrying on EINTR and
/// short reads; the number of bytes read (fewer only at end of file or on
/// an error).
pub(crate) fn pread_full(fd: impl AsFd, buf: &mut [u8], off: u64) -> usize {
    let fd = fd.as_fd();
    let mut got = 0;
    while got < buf.len() {
        match pread(fd, &mut buf[got..], off + got as u64) {
            Err(Errno::INTR) => continue,
            Ok(n) if n > 0 => got += n,
            _ => break,
        }
    }
    got
}

/// What the runtime reads from `struct stat`, decoded here and nowhere else.
#[derive(Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
    pub(crate) ctime_ns: u64,
}

pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_ISUID: u32 = 0o4000;
pub(crate) const S_ISGID: u32 = 0o2000;

pub(crate) fn fstat(fd: impl AsFd) -> Result<Stat> {
    let st = rustix::fs::fstat(fd)?;
    let ns = |s: i64, n: u64| persist::file_identity::time_ns(s, n as i64);
    Ok(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        uid: st.st_uid,
        size: st.st_size as u64,
        mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
        ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
    })
}

pub(crate) fn flock(fd: impl AsFd, op: FlockOperation) -> Result<()> {
    rustix::fs::flock(fd, op)
}

pub(crate) fn rename(from: &[u8], to: &[u8]) -> Result<()> {
    rustix::fs::rename(c_path(from), c_path(to))
}

pub(crate) fn unlink(path: &[u8]) -> Result<()> {
    rustix::fs::unlink(c_path(path))
}

/// Whether this process may execute `path` (NUL-terminated).
pub(crate) fn may_execute(path: &[u8]) -> bool {
    rustix::fs::access(c_path(path), rustix::fs::Access::EXEC_OK).is_ok()
}

/// A descriptor for `fd`'s file at `min` or above, close-on-exec.
pub(crate) fn dup_at_least(fd: impl AsFd, min: i32) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, min)
}

/// Creates the file `path` (NUL-terminated, mode 0644) and writes
/// `contents` to it, truncating it first or appending; false on failure.
pub(crate) fn write_file(path: &[u8], contents: &[u8], append: bool) -> bool {
    let mode = if append { OFlags::APPEND } else { OFlags::TRUNC };
    let Ok(fd) = open(path, OFlags::WRONLY | OFlags::CREATE | mode, Mode::from_raw_mode(0o644)) else {
        return false;
    };
    write_all(fd.as_raw_fd(), contents);
    true
}

/// Reads the target of the symbolic link `path` (NUL-terminated) into
/// `buf`: its length (truncated to `buf`'s, as the kernel does).
pub(crate) fn readlink(path: &[u8], buf: &mut [u8]) -> Result<usize> {
    rustix::fs::readlinkat_raw(rustix::fs::CWD, c_path(path), &mut *buf)
}

/// The current directory into `buf` (NUL-terminated): its length with the
/// NUL. Hand-written: rustix's `getcwd` allocates a `CString`.
pub(crate) fn getcwd(buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is a valid writable slice.
    let r = unsafe { syscall(nr::GETCWD, buf.as_mut_ptr() as u64, buf.len() as u64, 0) };
    if r < 0 { Err(Errno::from_raw_os_error(-r as i32)) } else { Ok(r as usize) }
}

/// This process's id (the thread group's).
#[inline]
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The calling thread's id.
#[inline]
pub(crate) fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

#[inline]
pub(crate) fn getuid() -> u32 {
    rustix::process::getuid().as_raw()
}

pub(crate) fn sched_yield() {
    rustix::thread::sched_yield();
}

/// Sleeps for `ns` nanoseconds (less if a signal interrupts).
pub(crate) fn sleep_ns(ns: u64) {
    let t = rustix::thread::Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
    let _ = rustix::thread::nanosleep(&t);
}

/// The XSAVE features this process may use (`arch_prctl(ARCH_GET_XCOMP_PERM)`:
/// rustix has no `arch_prctl`).
pub(crate) fn xcomp_permitted() -> Result<u64> {
    const ARCH_GET_XCOMP_PERM: u64 = 0x1022;
    let mut permitted = 0u64;
    // SAFETY: the kernel writes a u64 at the pointer.
    check(unsafe { syscall(nr::ARCH_PRCTL, ARCH_GET_XCOMP_PERM, &mut permitted as *mut u64 as u64, 0) })?;
    Ok(permitted)
}

/// The kernel's current program break (of the runtime's image: the app's
/// is emulated). `brk` is not in rustix.
pub(crate) fn current_brk() -> u64 {
    // SAFETY: brk(0) only reports the current break.
    unsafe { syscall(nr::BRK, 0, 0, 0) as u64 }
}

/// Sends `sig` to thread `tid` of this process. Hand-written: rustix has
/// `tgkill` only in its unstable `runtime` module.
pub(crate) fn tgkill_self(tid: u32, sig: i32) -> i64 {
    // SAFETY: no pointers.
    unsafe { syscall(nr::TGKILL, getpid() as u64, tid as u64, sig as u64) }
}

/// Sets this thread's GS base: the runtime's per-thread context pointer.
pub(crate) fn set_gs_base(base: u64) -> i64 {
    // SAFETY: GS is reserved for the runtime; the app's view is emulated.
    unsafe { syscall(nr::ARCH_PRCTL, ARCH_SET_GS, base, 0) }
}

/// Fills `buf` with random bytes (zeros left where the kernel gave none).
pub(crate) fn getrandom(buf: &mut [u8]) {
    let _ = rustix::rand::getrandom(buf, rustix::rand::GetRandomFlags::empty());
}

/// Wall-clock time: nanoseconds since the Unix epoch.
pub(crate) fn unix_time_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: ts is a valid timespec; 0 is CLOCK_REALTIME.
    unsafe {
        syscall(nr::CLOCK_GETTIME, 0, ts.as_mut_ptr() as u64, 0);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// Monotonic clock in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: ts is a valid timespec.
    unsafe {
        syscall(nr::CLOCK_GETTIME, 1, ts.as_mut_ptr() as u64, 0);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// The current personality flags (ADDR_NO_RANDOMIZE tells whether ASLR is off).
pub(crate) fn personality() -> u64 {
    // SAFETY: 0xffffffff only queries.
    unsafe { syscall(nr::PERSONALITY, 0xffff_ffff, 0, 0) as u64 }
}

pub(crate) const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
