//! Following children across `execve`: a program the application starts is
//! started through the runtime again, with the same options, so it runs
//! under translation too. Anything the runtime would not run (a missing or
//! non-executable file, an unknown format, a setuid program) goes to the
//! kernel unchanged, so the caller sees the native result.

use alloc::vec::Vec;

use crate::os::startup_args::CStr;
use crate::os::sys::{self, nr};


/// The runtime's own executable, found at start-up.
static mut RUNTIME_PATH: Option<CStr> = None;

pub(crate) fn init() {
    let mut buf = [0u8; 4096];
    if let Ok(n @ 1..) = sys::readlink(b"/proc/self/exe\0", &mut buf) {
        // SAFETY: single-threaded start-up.
        unsafe { *core::ptr::addr_of_mut!(RUNTIME_PATH) = Some(CStr::leak(&buf[..n])) };
    }
}

fn runtime_path() -> Option<CStr> {
    // SAFETY: written once in init before the application runs.
    unsafe { *core::ptr::addr_of!(RUNTIME_PATH) }
}

/// Reads the NULL-terminated array of string pointers at `array` in app
/// memory; None if it cannot be read (the kernel answers EFAULT).
fn read_string_array(array: u64) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    if array == 0 {
        return Some(out);
    }
    loop {
        match crate::os::safe_read::read_app::<u64>(array + 8 * out.len() as u64)? {
            0 => return Some(out),
            p => out.push(p),
        }
    }
}

enum Verdict {
    Translate,
    Native,
}

fn judge(path: &CStr) -> Verdict {
    if !sys::may_execute(path.as_bytes_with_nul()) {
        return Verdict::Native;
    }
    let Ok(fd) = sys::open_read(path.as_bytes_with_nul()) else {
        return Verdict::Native;
    };
    let mut head = [0u8; 20];
    let got = sys::pread(&fd, &mut head, 0).unwrap_or(0);
    let stat = sys::fstat(&fd);
    drop(fd);
    if stat.is_ok_and(|st| st.mode & (sys::S_ISUID | sys::S_ISGID) != 0) {
        verbose!("{path}: setuid/setgid program runs natively");
        return Verdict::Native;
    }
    let is_script = got >= 2 && head.starts_with(b"#!");
    let is_elf64_x86 = got >= 20 && head.starts_with(b"\x7fELF\x02") && head[18] == 62;
    if is_script || is_elf64_x86 { Verdict::Translate } else { Verdict::Native }
}

/// `execve(path, argv, envp)` from the application. Returns only on failure.
pub(crate) fn execve(path: u64, argv: u64, envp: u64) -> i64 {
    let native = || {
        // SAFETY: the application's own request.
        unsafe { sys::syscall(nr::EXECVE, path, argv, envp) }
    };
    let Some(runtime) = runtime_path() else { return native() };
    if crate::options::get().no_follow_children || path == 0 {
        return native();
    }
    // A path or argv the runtime cannot read: the kernel gives the error.
    let Some(mut app_path) = crate::os::safe_read::read_app_path(path) else { return native() };
    // /proc/self/exe is the runtime itself: the app means its own program.
    if crate::emulation::self_exe::is_self_exe(app_path.as_bytes()) {
        match crate::os::app_exe::get() {
            Some(exe) => app_path = exe,
            None => return native(),
        }
    }
    if let Verdict::Native = judge(&app_path) {
        return native();
    }
    let Some(app_argv) = read_string_array(argv) else { return native() };
    let opts = &crate::options::get().as_given;
    let mut new_argv: Vec<u64> = Vec::with_capacity(opts.len() + app_argv.len() + 5);
    new_argv.push(runtime.as_bytes_with_nul().as_ptr() as u64);
    new_argv.extend(opts.iter().map(|o| o.as_bytes_with_nul().as_ptr() as u64));
    new_argv.push(b"--\0".as_ptr() as u64);
    new_argv.push(app_path.as_bytes_with_nul().as_ptr() as u64);
    if app_argv.is_empty() {
        // The kernel gives a program started with no arguments an empty argv[0].
        new_argv.push(b"\0".as_ptr() as u64);
    }
    new_argv.extend_from_slice(&app_argv);
    new_argv.push(0);
    // SAFETY: an app thread's context, only read here.
    crate::process_end::process_exit(unsafe { crate::thread::current() }, crate::process_end::Reason::Exec);
    crate::signals::handling::before_exec();
    // SAFETY: every pointer is a NUL-terminated string that lives until the
    // call returns (on failure) or the image is replaced.
    let r = unsafe {
        sys::syscall(nr::EXECVE, runtime.as_bytes_with_nul().as_ptr() as u64, new_argv.as_ptr() as u64, envp)
    };
    crate::signals::handling::after_failed_exec();
    r
}

const AT_EMPTY_PATH: u64 = 0x1000;

/// `execveat(dirfd, path, argv, envp, flags)`: resolved to an absolute path
/// (through /proc/self/fd for a directory or the file itself) and followed
/// like `execve`; what cannot be resolved goes to the kernel.
pub(crate) fn execveat(dirfd: i64, path: u64, argv: u64, envp: u64, flags: u64) -> i64 {
    let native = || {
        // SAFETY: the application's own request.
        unsafe { sys::syscall6(nr::EXECVEAT, [dirfd as u64, path, argv, envp, flags, 0]) }
    };
    if path == 0 || flags & !AT_EMPTY_PATH != 0 {
        return native();
    }
    let Some(rel) = crate::os::safe_read::read_app_path(path) else { return native() };
    if rel.as_bytes().first() == Some(&b'/') || dirfd == sys::AT_FDCWD {
        return execve(path, argv, envp);
    }
    let mut link = [0u8; 40];
    let link = crate::os::fd_path::format_fd_link(dirfd, &mut link);
    let mut dir = [0u8; 4096];
    let n = match sys::readlink(link, &mut dir) {
        Ok(n @ 1..) => n,
        _ => return native(),
    };
    let mut full: Vec<u8> = dir[..n].to_vec();
    if rel.as_bytes().is_empty() {
        // fexecve: the descriptor is the program itself.
        if flags & AT_EMPTY_PATH == 0 {
            return native();
        }
    } else {
        full.push(b'/');
        full.extend_from_slice(rel.as_bytes());
    }
    let full = CStr::leak(&full);
    execve(full.as_bytes_with_nul().as_ptr() as u64, argv, envp)
}
