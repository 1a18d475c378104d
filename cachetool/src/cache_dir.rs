//! The per-user directory of persisted code caches: `<base>/<uid>`, where
//! base is `-persist_dir` or, by default, `$XDG_CACHE_HOME/dbirun` (else
//! `~/.cache/dbirun`). It is created with mode 0700; an existing one owned
//! by another user, writable by others, or not a plain directory is
//! refused: its files would be code someone else chose for us to run.
//! Shared by `dbirun` (which prepares it) and `cachetool` (which reads it,
//! and prepares it for `import`).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default base directory, from the environment.
pub fn default_base() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = xdg.or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(cache.join("dbirun"))
}

pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The per-user directory under `base`, without creating it.
pub fn user_dir(base: &Path) -> PathBuf {
    base.join(uid().to_string())
}

/// Creates (if needed) and checks the per-user directory under `base`.
pub fn prepare(base: &Path) -> Result<PathBuf, String> {
    // Every run of a warm cache finds it there: one lstat.
    let dir = user_dir(base);
    if check(&dir).is_ok() {
        return Ok(dir);
    }
    if base.exists() && !base.is_dir() {
        return Err(format!("{} is not a directory", base.display()));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(base)
        .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    create_private(&dir)?;
    Ok(dir)
}

/// Creates `dir` itself (mode 0700) if it is missing, its parents as
/// needed, and checks it.
pub fn create_private(dir: &Path) -> Result<(), String> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check(dir)
}

/// The directory is ours, a real directory, and no one else may write it.
pub fn check(dir: &Path) -> Result<(), String> {
    let uid = uid();
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != uid {
        return Err(format!("{} is owned by uid {}, not {uid}", dir.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{} is writable by others (mode {:o})", dir.display(), meta.mode() & 0o777));
    }
    Ok(())
}

/// A new temporary name beside `path` (`persist::cache_dir::temp_suffix`:
/// a writer killed mid-write leaves a name prune knows for a leftover).
pub fn temp_beside(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(persist::cache_dir::temp_suffix(std::process::id(), nanos));
    path.with_file_name(name)
}
