//! Reading a whole file through a private read-only mapping, unmapped
//! once the reader is done (ELF metadata for ahead-of-time discovery,
//! the seed file of `-aot_seeds`).

use crate::os::startup_args::CStr;
use crate::os::sys::{self, AsRawFd};

/// `read` applied to the bytes of the file at `path`, if it can be opened
/// and mapped and is at most `max_len` bytes long (an empty file is read
/// as no bytes).
pub(crate) fn read_mapped<R>(path: &CStr, max_len: u64, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let fd = sys::open_read(path.as_bytes_with_nul()).ok()?;
    let len = sys::fstat(&fd).ok()?.size;
    if len > max_len {
        return None;
    }
    if len == 0 {
        return Some(read(&[]));
    }
    // SAFETY: a fresh private read-only mapping of the whole file.
    let map = unsafe { sys::mmap(0, len, sys::PROT_READ, sys::MAP_PRIVATE, fd.as_raw_fd() as i64, 0) }.ok()?;
    // SAFETY: the mapping is len bytes long, read-only, ours until unmapped below.
    let bytes = unsafe { core::slice::from_raw_parts(map as *const u8, len as usize) };
    let result = read(bytes);
    // SAFETY: our own mapping, no longer borrowed.
    let _ = unsafe { sys::munmap(map, len) };
    Some(result)
}
