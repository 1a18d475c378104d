//! Where persisted files live and how they are read and published: one
//! file per module and configuration in the per-user directory `dbirun`
//! prepared; a lock file serialises writers; a new version is written to
//! a temporary file and renamed over the old one, so a reader sees the
//! old file or the new one, never half of one.

use alloc::format;
use alloc::vec::Vec;

use crate::os::startup_args::CStr;
use crate::os::sys::{self, FlockOperation, Mode, OFlags, OwnedFd};

/// The cache file of the module at `path` for this run's clients
/// (NUL-terminated): `<dir>/<name>` (`persist::cache_dir`).
pub(crate) fn file_for(dir: &CStr, path: &CStr) -> Vec<u8> {
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

fn open(path: &[u8], flags: OFlags, mode: u32) -> sys::Result<OwnedFd> {
    sys::open(path, flags | OFlags::NOFOLLOW, Mode::from_raw_mode(mode))
}

/// A cache file opened for reading, if it exists and is safe to use: a
/// regular file owned by this user that no one else may write.
pub(crate) fn open_trusted(path: &[u8]) -> Result<OwnedFd, &'static str> {
    let fd = match open(path, OFlags::RDONLY, 0) {
        Ok(fd) => fd,
        Err(sys::Errno::NOENT) => return Err("absent"),
        Err(_) => return Err("cannot open"),
    };
    trusted(fd)
}

/// `fd` if it is a regular file owned by this user that no one else may
/// write.
pub(crate) fn trusted(fd: OwnedFd) -> Result<OwnedFd, &'static str> {
    match sys::fstat(&fd) {
        Ok(st) if st.uid == sys::getuid() && st.mode & sys::S_IFMT == sys::S_IFREG && st.mode & 0o022 == 0 => Ok(fd),
        _ => Err("not owned by this user or writable by others"),
    }
}

/// The exclusive lock of a cache file, held until dropped (or `unlock`).
pub(crate) struct Lock(OwnedFd);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = sys::flock(&self.0, FlockOperation::Unlock);
    }
}

/// The exclusive lock of the cache file `path`, held until `unlock`.
pub(crate) fn lock(path: &[u8]) -> Option<Lock> {
    let fd = open(&with_suffix(path, ".lock"), OFlags::RDWR | OFlags::CREATE, 0o600).ok()?;
    sys::flock(&fd, FlockOperation::LockExclusive).ok()?;
    Some(Lock(fd))
}

pub(crate) fn unlock(lock: Lock) {
    drop(lock);
}

/// Writes `bytes` to a new temporary file next to `path` and renames it
/// over `path`; the identity of the version published (read from the
/// file itself after the rename, which changes its ctime).
pub(crate) fn publish(path: &[u8], file: &persist::write::Layout) -> sys::Result<Option<crate::os::modules::FileIdentity>> {
    let mut rand = [0u8; 8];
    sys::getrandom(&mut rand);
    let tmp = with_suffix(path, &persist::cache_dir::temp_suffix(sys::getpid(), u64::from_le_bytes(rand)));
    let fd = open(&tmp, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, 0o600)?;
    if let Err(e) = file.pieces().try_for_each(|piece| sys::write_fully(&fd, piece)) {
        drop(fd);
        let _ = sys::unlink(&tmp);
        return Err(e);
    }
    let published = sys::rename(&tmp, path);
    if published.is_err() {
        let _ = sys::unlink(&tmp);
    }
    published.map(|()| crate::os::modules::identity_of(&fd))
}

/// Whether the file `path` with `identity` had all its zone hashes
/// checked by an earlier run.
pub(crate) fn verified_before(path: &[u8], identity: crate::os::modules::FileIdentity) -> bool {
    memo_says(path, 0, &persist::file_identity::verified_memo(identity))
}

/// Records that the file `path` with `identity` passed every check.
pub(crate) fn note_verified(path: &[u8], identity: crate::os::modules::FileIdentity) {
    write_memo(path, 0, &persist::file_identity::verified_memo(identity));
}

/// Whether the lock file of the cache file `path` notes that the module
/// file with `module` holds the content `hash` names.
pub(crate) fn module_hash_noted(path: &[u8], module: crate::os::modules::FileIdentity, hash: &[u8; 32]) -> bool {
    memo_says(path, persist::file_identity::MODULE_MEMO_AT, &persist::file_identity::module_memo(module, hash))
}

/// Notes, in the lock file of the cache file `path`, that the module file
/// with `module` was hashed and holds the content `hash` names.
pub(crate) fn note_module_hash(path: &[u8], module: crate::os::modules::FileIdentity, hash: &[u8; 32]) {
    write_memo(path, persist::file_identity::MODULE_MEMO_AT, &persist::file_identity::module_memo(module, hash));
}

/// Whether the lock file of the cache file `path` holds `memo` at `at`.
fn memo_says(path: &[u8], at: u64, memo: &[u8]) -> bool {
    let Ok(fd) = open(&with_suffix(path, ".lock"), OFlags::RDONLY, 0) else {
        return false;
    };
    let mut buf = [0u8; 80];
    let buf = &mut buf[..memo.len()];
    sys::pread(&fd, buf, at) == Ok(memo.len()) && buf == memo
}

/// Writes `memo` at `at` in the lock file of the cache file `path`.
fn write_memo(path: &[u8], at: u64, memo: &[u8]) {
    if let Ok(fd) = open(&with_suffix(path, ".lock"), OFlags::WRONLY | OFlags::CREATE, 0o600) {
        let _ = sys::pwrite(&fd, memo, at);
    }
}

/// A NUL-terminated path for messages.
pub(crate) fn display(path: &[u8]) -> &str {
    core::str::from_utf8(&path[..path.len().saturating_sub(1)]).unwrap_or("?")
}

/// The file name of a cache file path (NUL-terminated).
pub(crate) fn file_name(path: &[u8]) -> &str {
    let p = display(path);
    p.rsplit('/').next().unwrap_or(p)
}

/// A file as it is on disk, mapped read-only while it is merged.
pub(crate) struct OnDisk {
    map: u64,
    len: u64,
    pub(crate) identity: Option<crate::os::modules::FileIdentity>,
}

impl OnDisk {
    /// The cache file `path`, if it is there and trusted.
    pub(crate) fn read(path: &[u8]) -> Option<OnDisk> {
        OnDisk::of(&open_trusted(path).ok()?)
    }

    /// The file open as `fd`, whole.
    pub(crate) fn of(fd: &OwnedFd) -> Option<OnDisk> {
        let identity = crate::os::modules::identity_of(fd);
        let len = identity.map_or(0, |id| id.size);
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private read-only mapping of the whole file.
        let map = unsafe { sys::mmap(0, len, sys::PROT_READ, sys::MAP_PRIVATE, sys::AsRawFd::as_raw_fd(fd) as i64, 0) }.ok()?;
        Some(OnDisk { map, len, identity })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is len bytes long and lives as long as self.
        unsafe { core::slice::from_raw_parts(self.map as *const u8, self.len as usize) }
    }
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        let _ = unsafe { sys::munmap(self.map, self.len) };
    }
}

/// Writes `file` to a file without a name in the directory `dir`
/// (`O_TMPFILE`) and maps it: what the process does not publish vanishes
/// with it, whether it ends or is killed.
pub(crate) fn write_unnamed(dir: &CStr, file: &persist::write::Layout) -> sys::Result<OnDisk> {
    let fd = open(dir.as_bytes_with_nul(), OFlags::RDWR | OFlags::TMPFILE, 0o600)?;
    file.pieces().try_for_each(|piece| sys::write_fully(&fd, piece))?;
    OnDisk::of(&fd).ok_or(sys::Errno::IO)
}
