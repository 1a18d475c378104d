//! Cache files from elsewhere (a bundle, a remote store) on their way into
//! a cache directory: checked as the runtime would check them, then
//! written beside their destination and renamed over it under its lock,
//! so no reader sees half a file and a failure leaves the directory as it
//! was.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cache_file::{self, Aligned};
use crate::module_file::Modules;

/// What the source says a file was made from, to be confirmed by the file
/// itself and by this machine.
pub struct Claimed<'a> {
    pub module_path: &'a str,
    /// Hex blake3 of the module's contents.
    pub module_hash: &'a str,
}

/// Whether `bytes` is a whole valid file of this build, made from the
/// module `claimed` names, which this machine has with the same content.
/// Gives the file's key and its number of blocks.
pub fn check(bytes: &Aligned, claimed: &Claimed<'_>, modules: &mut Modules) -> Result<(persist::key::CacheKey, u64), String> {
    let v = persist::validate(bytes.bytes()).map_err(|r| format!("corrupt ({})", r.name()))?;
    if v.key.runtime_version != crate::RUNTIME_VERSION {
        return Err(format!("other runtime version ({:08x})", v.key.runtime_version));
    }
    let path = v.index.module.path.as_str();
    let hash = crate::hex(&v.key.module_hash);
    if path != claimed.module_path || hash != claimed.module_hash {
        return Err("corrupt (module differs from what its source says)".into());
    }
    match modules.hash(path) {
        None => Err(format!("module {path} is not on this machine")),
        Some(h) if h != hash => Err(format!("module {path} differs on this machine")),
        Some(_) => Ok((v.key, v.index.blocks.len() as u64)),
    }
}

/// The blocks of the valid file of this build at `dest`, if there is one.
pub fn local_blocks(dest: &Path) -> Option<u64> {
    let (local, _) = cache_file::map(dest).ok()?;
    let v = persist::validate(local.bytes()).ok()?;
    (v.key.runtime_version == crate::RUNTIME_VERSION).then_some(v.index.blocks.len() as u64)
}

/// Writes `bytes` to a temporary file (0600) beside `dir/name`, synced to
/// disk, to be renamed over it: Ok(Err(why)) when a valid local file is
/// kept instead (unless `replace`).
pub fn stage(dir: &Path, name: &str, bytes: &[u8], replace: bool) -> std::io::Result<Result<PathBuf, String>> {
    stage_with(dir, name, bytes, replace, true)
}

/// [`stage`], synced to disk only if `sync` (a cache server answering a
/// run does not wait for the disk, as its merges do not).
pub fn stage_with(dir: &Path, name: &str, bytes: &[u8], replace: bool, sync: bool) -> std::io::Result<Result<PathBuf, String>> {
    let dest = dir.join(name);
    if let Ok((local, _)) = cache_file::map(&dest) {
        if local.bytes() == bytes {
            return Ok(Err("already here".into()));
        }
        if !replace && persist::validate(local.bytes()).is_ok_and(|v| v.key.runtime_version == crate::RUNTIME_VERSION) {
            return Ok(Err("a valid local file is kept (--replace to overwrite)".into()));
        }
    }
    let tmp = crate::cache_dir::temp_beside(&dest);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        // Written as a run's file is (`persist::write::WRITE_CHUNK`: the
        // runs that map it get less of it in their resident set).
        bytes.chunks(persist::write::WRITE_CHUNK).try_for_each(|chunk| f.write_all(chunk))?;
        if sync {
            f.sync_all()?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => Ok(Ok(tmp)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Temporary copies waiting to be renamed over their destinations; those
/// never published are removed when this is dropped.
#[derive(Default)]
pub struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    pub fn add(&mut self, tmp: PathBuf, dest: PathBuf) {
        self.files.push((tmp, dest));
    }

    /// Renames every staged file over its destination, each under the
    /// destination's lock (so no reader sees half a file), and vouches for
    /// it there: its bytes were checked whole before they were staged, so
    /// runs need not hash them again.
    pub fn publish(&mut self, dir: &Path) -> Result<(), String> {
        for (tmp, dest) in std::mem::take(&mut self.files) {
            let done = crate::lock::lock(&dest).and_then(|_lock| {
                // The identity is the staged inode's, read after the rename
                // (which sets its ctime): never that of a file someone
                // else put at `dest` meanwhile.
                let staged = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
                std::fs::rename(&tmp, &dest)?;
                let _ = crate::lock::note_verified(&dest, crate::module_file::Identity::of(&staged.metadata()?));
                Ok(())
            });
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("{}: {e}", dir.join(dest.file_name().unwrap_or_default()).display()));
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
