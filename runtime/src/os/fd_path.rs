//! The `/proc/self/fd/N` path of a descriptor, formatted without
//! allocating (the kernel's name for what an fd refers to), and the real
//! path of the file an fd has open.

use crate::os::startup_args::CStr;
use crate::os::sys::{self, AsRawFd};

/// The canonical path of the file open as `fd` (symlinks resolved, as
/// the kernel names it in `/proc/self/fd`), leaked for the process's life.
pub(crate) fn real_path(fd: impl sys::AsFd) -> Option<CStr> {
    let mut link = [0u8; 40];
    let link = format_fd_link(fd.as_fd().as_raw_fd() as i64, &mut link);
    let mut target = [0u8; 4096];
    match sys::readlink(link, &mut target) {
        Ok(n) if n > 0 && n < target.len() => Some(CStr::leak(&target[..n])),
        _ => None,
    }
}

/// Writes `/proc/self/fd/N\0` into `buf` and returns it.
pub(crate) fn format_fd_link(fd: i64, buf: &mut [u8; 40]) -> &[u8] {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = fd as u64;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = digits.len() - i;
    buf[prefix.len()..prefix.len() + n].copy_from_slice(&digits[i..]);
    buf[prefix.len() + n] = 0;
    &buf[..prefix.len() + n + 1]
}
