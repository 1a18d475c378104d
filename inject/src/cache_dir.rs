//! The per-user directory of persisted code caches: `<base>/<uid>`, where
//! base is `-persist_dir` or, by default, `$XDG_CACHE_HOME/dbirun` (else
//! `~/.cache/dbirun`). It is created with mode 0700; an existing one owned
//! by another user, writable by others, or not a plain directory is
//! refused: its files would be code someone else chose for us to run.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The default base directory, from the environment.
pub fn default_base() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = xdg.or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(cache.join("dbirun"))
}

/// Creates (if needed) and checks the per-user directory under `base`.
pub fn prepare(base: &Path) -> Result<PathBuf, String> {
    let uid = nix::unistd::getuid().as_raw();
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(base)
        .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    let dir = base.join(uid.to_string());
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check(&dir, uid)?;
    Ok(dir)
}

fn check(dir: &Path, uid: u32) -> Result<(), String> {
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
