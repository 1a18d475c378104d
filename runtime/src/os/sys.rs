//! Raw Linux system calls for the runtime itself.
//!
//! The runtime links no libc, so every kernel request goes through these
//! wrappers. They return the raw kernel result: negative values are `-errno`.

use core::arch::asm;

pub const ENOENT: i64 = 2;
pub const EINVAL: i64 = 22;
pub const EINTR: i64 = 4;
pub const EACCES: i64 = 13;
pub const EEXIST: i64 = 17;

pub mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const CLOSE: u64 = 3;
    pub const FSTAT: u64 = 5;
    pub const FCNTL: u64 = 72;
    pub const GETCWD: u64 = 79;
    pub const READLINK: u64 = 89;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MADVISE: u64 = 28;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const OPEN: u64 = 2;
    pub const ACCEPT: u64 = 43;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const WAIT4: u64 = 61;
    pub const FLOCK: u64 = 73;
    pub const RENAME: u64 = 82;
    pub const UNLINK: u64 = 87;
    pub const GETUID: u64 = 102;
    pub const SIGALTSTACK: u64 = 131;
    pub const FUTEX: u64 = 202;
    pub const WAITID: u64 = 247;
    pub const RT_TGSIGQUEUEINFO: u64 = 297;
    pub const ACCEPT4: u64 = 288;
    pub const MREMAP: u64 = 25;
    pub const GETPID: u64 = 39;
    pub const CLONE: u64 = 56;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXIT: u64 = 60;
    pub const PERSONALITY: u64 = 135;
    pub const ARCH_PRCTL: u64 = 158;
    pub const PRCTL: u64 = 157;
    pub const NANOSLEEP: u64 = 35;
    pub const GETTID: u64 = 186;
    pub const TGKILL: u64 = 234;
    pub const EXIT_GROUP: u64 = 231;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const SCHED_YIELD: u64 = 24;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const TIME: u64 = 201;
    pub const GETCPU: u64 = 309;
    pub const OPENAT: u64 = 257;
    pub const EXECVEAT: u64 = 322;
    pub const GETRANDOM: u64 = 318;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const CLONE3: u64 = 435;
}

pub const AT_FDCWD: i64 = -100;
pub const O_RDONLY: u64 = 0;
pub const O_CLOEXEC: u64 = 0o2000000;

pub const PROT_NONE: u64 = 0;
pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const PROT_EXEC: u64 = 4;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;

pub const ARCH_SET_GS: u64 = 0x1001;
pub const ARCH_GET_GS: u64 = 0x1004;

pub const PAGE_SIZE: u64 = 4096;

#[inline]
pub const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

#[inline]
pub const fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Issues system call `nr` with six arguments.
///
/// # Safety
/// The caller upholds whatever the particular system call requires of its
/// pointer arguments.
#[inline]
pub unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
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
pub unsafe fn syscall(nr: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    unsafe { syscall6(nr, [a0, a1, a2, 0, 0, 0]) }
}

pub fn write(fd: i32, buf: &[u8]) -> i64 {
    // SAFETY: buf is a valid readable slice.
    unsafe { syscall(nr::WRITE, fd as u64, buf.as_ptr() as u64, buf.len() as u64) }
}

/// Writes the whole buffer, retrying on short writes and EINTR.
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = write(fd, buf);
        if n == -EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        buf = &buf[n as usize..];
    }
}

pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe {
        syscall(nr::EXIT_GROUP, code as u64, 0, 0);
    }
    loop {}
}

/// # Safety
/// Mapping with MAP_FIXED replaces whatever was at `addr`.
pub unsafe fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> i64 {
    unsafe { syscall6(nr::MMAP, [addr, len, prot, flags, fd as u64, off]) }
}

/// # Safety
/// Nothing may still use the unmapped range.
pub unsafe fn munmap(addr: u64, len: u64) -> i64 {
    unsafe { syscall(nr::MUNMAP, addr, len, 0) }
}

/// # Safety
/// Nothing may rely on the old protection of the range.
pub unsafe fn mprotect(addr: u64, len: u64, prot: u64) -> i64 {
    unsafe { syscall(nr::MPROTECT, addr, len, prot) }
}

/// Where the runtime's own memory goes: 2 GiB above its image, far from
/// the mmap area, so the app's mappings land where they would natively.
const PRIVATE_REGION: u64 = 0x7e00_8000_0000;
static NEXT_PRIVATE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(PRIVATE_REGION);

/// Anonymous private read-write memory for the runtime, or None.
pub fn map_anonymous(len: u64) -> Option<*mut u8> {
    map_private(len, PROT_READ | PROT_WRITE)
}

/// Fresh anonymous memory with `prot` in the runtime's private region (or
/// anywhere, if that region is exhausted).
pub fn map_private(len: u64, prot: u64) -> Option<*mut u8> {
    let len = page_up(len);
    for _ in 0..16 {
        let at = NEXT_PRIVATE.fetch_add(len, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        let r = unsafe { mmap(at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) };
        if r >= 0 {
            return Some(r as *mut u8);
        }
        if r != -EEXIST {
            break;
        }
    }
    // SAFETY: a fresh anonymous mapping at a kernel-chosen address.
    let r = unsafe { mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) };
    (r >= 0).then_some(r as *mut u8)
}

/// Faults in `[addr, addr + len)` in one call (for memory about to be
/// touched throughout: one system call instead of a fault per page);
/// `write` makes private pages writable copies. Best effort: older
/// kernels lack it, and then the pages fault in as usual.
pub fn populate(addr: u64, len: u64, write: bool) {
    const MADV_POPULATE_READ: u64 = 22;
    const MADV_POPULATE_WRITE: u64 = 23;
    let advice = if write { MADV_POPULATE_WRITE } else { MADV_POPULATE_READ };
    // SAFETY: advice only; the range is the caller's mapping.
    unsafe { syscall(nr::MADVISE, addr & !(PAGE_SIZE - 1), page_up(len + (addr & (PAGE_SIZE - 1))), advice) };
}

/// Opens `path` (NUL-terminated) read-only.
pub fn open_read(path: &[u8]) -> i64 {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: path is NUL-terminated.
    unsafe {
        syscall6(
            nr::OPENAT,
            [AT_FDCWD as u64, path.as_ptr() as u64, O_RDONLY | O_CLOEXEC, 0, 0, 0],
        )
    }
}

pub fn pread(fd: i64, buf: &mut [u8], off: u64) -> i64 {
    // SAFETY: buf is a valid writable slice.
    unsafe {
        syscall6(nr::PREAD64, [fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64, off, 0, 0])
    }
}

pub fn close(fd: i64) {
    // SAFETY: closing a descriptor the runtime owns.
    unsafe {
        syscall(nr::CLOSE, fd as u64, 0, 0);
    }
}

/// Creates the file `path` (NUL-terminated, mode 0644) and writes
/// `contents` to it, truncating it first or appending; false on failure.
pub fn write_file(path: &[u8], contents: &[u8], append: bool) -> bool {
    const O_WRONLY: u64 = 1;
    const O_CREAT: u64 = 0o100;
    const O_TRUNC: u64 = 0o1000;
    const O_APPEND: u64 = 0o2000;
    let mode = if append { O_APPEND } else { O_TRUNC };
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        syscall6(nr::OPENAT, [AT_FDCWD as u64, path.as_ptr() as u64, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0o644, 0, 0])
    };
    if fd < 0 {
        return false;
    }
    write_all(fd as i32, contents);
    close(fd);
    true
}

/// Reads the target of the symbolic link `path` (NUL-terminated) into `buf`.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> i64 {
    // SAFETY: path is NUL-terminated, buf is writable.
    unsafe {
        syscall6(
            nr::READLINKAT,
            [AT_FDCWD as u64, path.as_ptr() as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0],
        )
    }
}

/// Sets this thread's GS base: the runtime's per-thread context pointer.
pub fn set_gs_base(base: u64) -> i64 {
    // SAFETY: GS is reserved for the runtime; the app's view is emulated.
    unsafe { syscall(nr::ARCH_PRCTL, ARCH_SET_GS, base, 0) }
}

pub fn getrandom(buf: &mut [u8]) -> i64 {
    // SAFETY: buf is a valid writable slice.
    unsafe { syscall(nr::GETRANDOM, buf.as_mut_ptr() as u64, buf.len() as u64, 0) }
}

/// Monotonic clock in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: ts is a valid timespec.
    unsafe {
        syscall(nr::CLOCK_GETTIME, 1, ts.as_mut_ptr() as u64, 0);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// The current personality flags (ADDR_NO_RANDOMIZE tells whether ASLR is off).
pub fn personality() -> u64 {
    // SAFETY: 0xffffffff only queries.
    unsafe { syscall(nr::PERSONALITY, 0xffff_ffff, 0, 0) as u64 }
}

pub const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
