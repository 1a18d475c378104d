//! The application's executable as the kernel names it: the real path of
//! the program being run (for a script, of its interpreter), recorded once
//! at start-up. `/proc/self/exe` answers, client file names and exec use it.

use crate::os::startup_args::CStr;
use crate::os::sys::{self, AsRawFd};

static mut APP_EXE: Option<CStr> = None;

/// Records the real path of the program being run (for a script, of its
/// interpreter, as the kernel reports it).
pub(crate) fn init(program: &CStr) {
    let Ok(fd) = sys::open_read(program.as_bytes_with_nul()) else {
        return;
    };
    let mut link = [0u8; 40];
    let link = crate::os::fd_path::format_fd_link(fd.as_raw_fd() as i64, &mut link);
    let mut target = [0u8; 4096];
    let n = sys::readlink(link, &mut target);
    drop(fd);
    if let Ok(n @ 1..) = n {
        // SAFETY: single-threaded start-up.
        unsafe { *core::ptr::addr_of_mut!(APP_EXE) = Some(CStr::leak(&target[..n])) };
    }
}


/// The app's executable, if known.
pub(crate) fn get() -> Option<CStr> {
    // SAFETY: written once at start-up.
    unsafe { *core::ptr::addr_of!(APP_EXE) }
}
