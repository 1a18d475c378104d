//! The application's executable as the kernel names it: the real path of
//! the program being run (for a script, of its interpreter), recorded once
//! at start-up. `/proc/self/exe` answers, client file names and exec use it.

use crate::os::startup_args::CStr;

static mut APP_EXE: Option<CStr> = None;

/// Records the real path of the program being run (for a script, of its
/// interpreter, as the kernel reports it).
pub(crate) fn set(real_path: CStr) {
    // SAFETY: single-threaded start-up.
    unsafe { *core::ptr::addr_of_mut!(APP_EXE) = Some(real_path) };
}

/// The app's executable, if known.
pub(crate) fn get() -> Option<CStr> {
    // SAFETY: written once at start-up.
    unsafe { *core::ptr::addr_of!(APP_EXE) }
}
