//! `/proc/self/exe` as the application expects it: the kernel's link names
//! the runtime (the program it exec'd), so `readlink` of that path is
//! answered with the application's own executable (`os::app_exe`).

use crate::os::startup_args::CStr;
use crate::os::sys;

pub(crate) fn is_self_exe(path: &[u8]) -> bool {
    if path == b"/proc/self/exe" || path == b"/proc/thread-self/exe" {
        return true;
    }
    // /proc/<our pid>/exe
    let Some(rest) = path.strip_prefix(b"/proc/").and_then(|r| r.strip_suffix(b"/exe")) else {
        return false;
    };
    let pid = sys::getpid() as u64;
    let mut v = 0u64;
    !rest.is_empty() && rest.iter().all(|c| c.is_ascii_digit()) && {
        for &c in rest {
            v = v.wrapping_mul(10).wrapping_add((c - b'0') as u64);
        }
        v == pid
    }
}

/// `readlink(path, buf, size)` (with `dirfd` for readlinkat): answers for
/// the app's own executable, or None to let the kernel answer.
pub(crate) fn readlink(dirfd: i64, path: u64, buf: u64, size: u64) -> Option<i64> {
    let exe = crate::os::app_exe::get()?;
    if path == 0 {
        return None;
    }
    // SAFETY: the app passed a NUL-terminated path.
    let p = unsafe { CStr::from_ptr(path as *const u8) };
    let absolute = p.as_bytes().first() == Some(&b'/');
    if !(absolute || dirfd == sys::AT_FDCWD) || !is_self_exe(p.as_bytes()) {
        return None;
    }
    let n = exe.as_bytes().len().min(size as usize);
    // SAFETY: the app gave a buffer of `size` bytes.
    unsafe { core::ptr::copy_nonoverlapping(exe.as_bytes().as_ptr(), buf as *mut u8, n) };
    Some(n as i64)
}

/// For `open`/`openat` of `path`: the app's executable instead when the app
/// names `/proc/self/exe` (the kernel would open the runtime).
pub(crate) fn redirect_open(dirfd: i64, path: u64) -> Option<u64> {
    let exe = crate::os::app_exe::get()?;
    if path == 0 {
        return None;
    }
    // SAFETY: the app passed a NUL-terminated path.
    let p = unsafe { CStr::from_ptr(path as *const u8) };
    let absolute = p.as_bytes().first() == Some(&b'/');
    ((absolute || dirfd == sys::AT_FDCWD) && is_self_exe(p.as_bytes()))
        .then(|| exe.as_bytes_with_nul().as_ptr() as u64)
}
