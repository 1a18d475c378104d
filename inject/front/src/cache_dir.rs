//! The per-user cache directory, found and checked as dbirun-full does
//! (`cachetool::cache_dir`): `<base>/<uid>`, base from `-persist_dir`
//! (made absolute) or `$XDG_CACHE_HOME/dbirun`, else `~/.cache/dbirun`;
//! an existing directory of this user's, no one else may write. A
//! directory still to be created, or one refused, is dbirun-full's.
//!
//! Paths are taken only in the plain form where joining strings gives
//! what `std::path::absolute` and `Path::join` give: no `.` or `..`
//! component, no doubled or trailing slash.

use alloc::vec::Vec;

use crate::startup::Startup;

/// Whether `path` is in the plain form above.
fn plain(path: &[u8]) -> bool {
    !path.is_empty()
        && !path.ends_with(b"/")
        && path.split(|&b| b == b'/').enumerate().all(|(i, part)| (i == 0 || !part.is_empty()) && part != b"." && part != b"..")
}

/// `dir` made absolute against the working directory, as
/// `std::path::absolute` makes it (None if not plain).
pub fn absolute(dir: &[u8]) -> Option<Vec<u8>> {
    if !plain(dir) {
        return None;
    }
    if dir.starts_with(b"/") {
        return Some(dir.to_vec());
    }
    let mut cwd = rustix::process::getcwd(Vec::new()).ok()?.into_bytes();
    if cwd != b"/" {
        cwd.push(b'/');
    }
    cwd.extend_from_slice(dir);
    Some(cwd)
}

/// The default base directory, from the environment (None where
/// dbirun-full would warn, or join differently).
pub fn default_base(start: &Startup) -> Option<Vec<u8>> {
    let (root, tail): (&[u8], &[u8]) = match start.var(b"XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(xdg) => (xdg, b"/dbirun"),
        None => (start.var(b"HOME")?, b"/.cache/dbirun"),
    };
    if !root.starts_with(b"/") || !plain(root) {
        return None;
    }
    let mut base = root.to_vec();
    base.extend_from_slice(tail);
    Some(base)
}

/// `<base>/<uid>` if it is a directory of this user's that no one else
/// may write.
pub fn user_dir(base: &[u8]) -> Option<Vec<u8>> {
    let uid = rustix::process::getuid().as_raw();
    let mut dir = base.to_vec();
    dir.extend_from_slice(alloc::format!("/{uid}").as_bytes());
    let meta = rustix::fs::lstat(dir.as_slice()).ok()?;
    let is_dir = rustix::fs::FileType::from_raw_mode(meta.st_mode) == rustix::fs::FileType::Directory;
    (is_dir && meta.st_uid == uid && meta.st_mode & 0o022 == 0).then_some(dir)
}
