//! The cache report of a `-persist` run: every runtime process of the run
//! (forks and exec'd children included) appends what it did with the
//! persisted caches to one file (`-persist_report`); `dbirun` reads it
//! once the app has exited and records it in the cache index
//! (`cache_index`), or leaves it pending when the index is busy. The grammar is `persist::run_report`'s.
//!
//! Lines: `used FILE`, `rejected FILE REASON...`, `wrote FILE BLOCKS`, and
//! `process PID.IMAGE key=value...` with a process image's counters so far
//! (an image may report more than once, e.g. before an exec that fails:
//! its last line counts).

use std::path::{Path, PathBuf};

pub use cachetool::run_report::parse;

/// A fresh report file of this user's own, in the temporary directory
/// (for -stats without -persist).
pub fn temporary() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = std::env::temp_dir().join(format!("dbirun-report.{}.{nanos}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    Ok(path)
}

/// A fresh report file name in the cache directory `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    dir.join(persist::cache_dir::report_name(std::process::id(), nanos))
}
