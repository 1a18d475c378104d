//! The run report for `dbirun`'s cache index: with `-persist_report FILE`,
//! each process appends, in one write when it ends (or execs), what it
//! did with the cache: which files it used, rejected (and why) or wrote,
//! and its counters. The runtime never opens the index itself.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spin::Mutex;

use crate::stats::STATS;

pub(crate) static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// File name of a cache file path (NUL-terminated).
fn name(path: &[u8]) -> &str {
    let p = crate::persistence::files::display(path);
    p.rsplit('/').next().unwrap_or(p)
}

/// The file `path` was taken into use with `blocks` blocks.
pub fn used(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(format!("used {} {blocks}\n", name(path)));
    }
}

/// `blocks` blocks of the module whose cache file is `path` were built
/// (translated afresh) by this process image.
pub fn built(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() && blocks > 0 {
        EVENTS.lock().push(format!("built {} {blocks}\n", name(path)));
    }
}

pub fn rejected(path: &[u8], reason: &str) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(format!("rejected {} {reason}\n", name(path)));
    }
}

pub fn wrote(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(format!("wrote {} {blocks}\n", name(path)));
    }
}

/// Tells this runtime image from an earlier one of the same process
/// (before an `execve`), since a process may report more than once.
static IMAGE: AtomicU64 = AtomicU64::new(0);

/// A forked child is a new image: its own events and counters.
pub fn new_image_in_child() {
    IMAGE.store(0, Relaxed);
    EVENTS.lock().clear();
}

/// Appends this process's report: events since the last one, then its
/// counters so far as a `process PID.IMAGE ...` line (the last such line
/// of an image counts).
pub fn append() {
    let Some(file) = crate::options::get().persist_report else { return };
    let s = &STATS;
    // SAFETY: getpid takes no arguments.
    let pid = unsafe { crate::os::sys::syscall(crate::os::sys::nr::GETPID, 0, 0, 0) };
    if IMAGE.load(Relaxed) == 0 {
        let mut b = [0u8; 8];
        crate::os::sys::getrandom(&mut b);
        IMAGE.store(u64::from_le_bytes(b) | 1, Relaxed);
    }
    let image = IMAGE.load(Relaxed);
    let mut text: String = core::mem::take(&mut *EVENTS.lock()).concat();
    text.push_str(&format!(
        "process {pid}.{image:016x} blocks_built={} blocks_loaded={} files_loaded={} files_rejected={} files_written={} blocks_persisted={}\n",
        s.blocks_built.load(Relaxed),
        s.blocks_loaded.load(Relaxed),
        s.files_loaded.load(Relaxed),
        crate::stats::rejected_total(),
        s.files_written.load(Relaxed),
        s.blocks_persisted.load(Relaxed),
    ));
    crate::os::sys::write_file(file.as_bytes_with_nul(), text.as_bytes(), true);
}
