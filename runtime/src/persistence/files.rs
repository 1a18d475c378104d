//! Where persisted files live and how they are read and published: one
//! file per module and configuration in the per-user directory `dbirun`
//! prepared; a lock file serialises writers; a new version is written to
//! a temporary file and renamed over the old one, so a reader sees the
//! old file or the new one, never half of one.

use alloc::format;
use alloc::vec::Vec;

use crate::os::startup_args::CStr;
use crate::os::sys::{self, nr};

const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_NOFOLLOW: u64 = 0o400000;
const LOCK_EX: u64 = 2;
const LOCK_UN: u64 = 8;

/// The cache file of the module at `path` for this run's clients
/// (NUL-terminated): `<dir>/<name>` (`persist::cache_dir`).
pub fn file_for(dir: &CStr, path: &CStr) -> Vec<u8> {
    let config = crate::persistence::key::variant_tag();
    let name = persist::cache_dir::cache_file_name(path.as_bytes(), config);
    let mut out = format!("{dir}/{name}").into_bytes();
    out.push(0);
    out
}

/// `path` (NUL-terminated) with `suffix` added.
fn with_suffix(path: &[u8], suffix: &str) -> Vec<u8> {
    let mut out = path[..path.len() - 1].to_vec();
    out.extend_from_slice(suffix.as_bytes());
    out.push(0);
    out
}

fn open(path: &[u8], flags: u64, mode: u64) -> i64 {
    // SAFETY: path is NUL-terminated.
    unsafe { sys::syscall6(nr::OPENAT, [sys::AT_FDCWD as u64, path.as_ptr() as u64, flags | sys::O_CLOEXEC, mode, 0, 0]) }
}

/// Owner and mode bits of the open file `fd`.
fn owner_and_mode(fd: i64) -> Option<(u32, u32)> {
    let mut st = [0u64; 18];
    // SAFETY: st is large enough for struct stat.
    let r = unsafe { sys::syscall(nr::FSTAT, fd as u64, st.as_mut_ptr() as u64, 0) };
    (r == 0).then(|| ((st[3] >> 32) as u32, st[3] as u32))
}

/// A cache file opened for reading, if it exists and is safe to use: a
/// regular file owned by this user that no one else may write.
pub fn open_trusted(path: &[u8]) -> Result<i64, &'static str> {
    let fd = open(path, sys::O_RDONLY | O_NOFOLLOW, 0);
    if fd < 0 {
        return Err(if fd == -sys::ENOENT { "absent" } else { "cannot open" });
    }
    // SAFETY: getuid has no arguments and cannot fail.
    let uid = unsafe { sys::syscall(nr::GETUID, 0, 0, 0) } as u32;
    match owner_and_mode(fd) {
        Some((owner, mode)) if owner == uid && mode & 0o170000 == 0o100000 && mode & 0o022 == 0 => Ok(fd),
        _ => {
            sys::close(fd);
            Err("not owned by this user or writable by others")
        }
    }
}

/// The exclusive lock of the cache file `path`, held until `unlock`.
pub fn lock(path: &[u8]) -> Option<i64> {
    let fd = open(&with_suffix(path, ".lock"), O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
    if fd < 0 {
        return None;
    }
    // SAFETY: flock on our own descriptor.
    let r = unsafe { sys::syscall(nr::FLOCK, fd as u64, LOCK_EX, 0) };
    if r < 0 {
        sys::close(fd);
        return None;
    }
    Some(fd)
}

pub fn unlock(fd: i64) {
    // SAFETY: flock on our own descriptor.
    unsafe { sys::syscall(nr::FLOCK, fd as u64, LOCK_UN, 0) };
    sys::close(fd);
}

/// Writes `bytes` to a new temporary file next to `path` and renames it
/// over `path`.
pub fn publish(path: &[u8], bytes: &[u8]) -> bool {
    let mut rand = [0u8; 8];
    sys::getrandom(&mut rand);
    // SAFETY: getpid has no arguments.
    let pid = unsafe { sys::syscall(nr::GETPID, 0, 0, 0) };
    let tmp = with_suffix(path, &persist::cache_dir::temp_suffix(pid as u32, u64::from_le_bytes(rand)));
    let fd = open(&tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    if fd < 0 {
        return false;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = sys::write(fd as i32, rest);
        if n <= 0 {
            sys::close(fd);
            // SAFETY: tmp is NUL-terminated.
            unsafe { sys::syscall(nr::UNLINK, tmp.as_ptr() as u64, 0, 0) };
            return false;
        }
        rest = &rest[n as usize..];
    }
    sys::close(fd);
    // SAFETY: both paths are NUL-terminated.
    let r = unsafe { sys::syscall(nr::RENAME, tmp.as_ptr() as u64, path.as_ptr() as u64, 0) };
    if r < 0 {
        // SAFETY: tmp is NUL-terminated.
        unsafe { sys::syscall(nr::UNLINK, tmp.as_ptr() as u64, 0, 0) };
    }
    r == 0
}

/// The memo of a verified file lives in its lock file: the identity of
/// the version whose zone hashes were checked, and a hash of that record.
fn memo(identity: crate::os::modules::FileIdentity) -> [u8; 48] {
    let mut m = [0u8; 48];
    let id = identity.to_array();
    for (i, v) in id.iter().enumerate() {
        m[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    let h = blake3::hash(&m[..40]);
    m[40..].copy_from_slice(&h.as_bytes()[..8]);
    m
}

/// Whether the file `path` with `identity` had all its zone hashes
/// checked by an earlier run.
pub fn verified_before(path: &[u8], identity: crate::os::modules::FileIdentity) -> bool {
    let fd = open(&with_suffix(path, ".lock"), sys::O_RDONLY | O_NOFOLLOW, 0);
    if fd < 0 {
        return false;
    }
    let mut buf = [0u8; 48];
    let n = sys::pread(fd, &mut buf, 0);
    sys::close(fd);
    n == 48 && buf == memo(identity)
}

/// Records that the file `path` with `identity` passed every check.
pub fn note_verified(path: &[u8], identity: crate::os::modules::FileIdentity) {
    let fd = open(&with_suffix(path, ".lock"), O_WRONLY | O_CREAT | O_NOFOLLOW, 0o600);
    if fd >= 0 {
        let m = memo(identity);
        // SAFETY: writing our own buffer to our own descriptor.
        unsafe { sys::syscall6(nr::PWRITE64, [fd as u64, m.as_ptr() as u64, 48, 0, 0, 0]) };
        sys::close(fd);
    }
}

/// A NUL-terminated path for messages.
pub fn display(path: &[u8]) -> &str {
    core::str::from_utf8(&path[..path.len().saturating_sub(1)]).unwrap_or("?")
}
