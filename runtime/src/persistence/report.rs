//! The run report for `dbirun`: with `-persist_report FILE`, each process
//! appends, when it ends (or execs), what it did with the cache (which
//! files it used, rejected and why, or wrote, and its counters: for the
//! cache index) and, with `-stats`, its counters for dbirun's summary.
//! The runtime never opens the index itself.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use persist::run_report::{Counters, Event, StatsLine, SummaryLine};
use spin::Mutex;

use crate::stats::STATS;

pub(crate) static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

use crate::persistence::files::file_name as name;

/// The file `path` was taken into use with `blocks` blocks.
pub(crate) fn used(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(Event::Used { file: name(path), blocks }.line());
    }
}

/// `blocks` blocks of the module whose cache file is `path` were built
/// (translated afresh) by this process image.
pub(crate) fn built(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() && blocks > 0 {
        EVENTS.lock().push(Event::Built { file: name(path), blocks }.line());
    }
}

pub(crate) fn rejected(path: &[u8], reason: &str) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(Event::Rejected { file: name(path), reason }.line());
    }
}

pub(crate) fn wrote(path: &[u8], blocks: usize) {
    if crate::options::get().persist_report.is_some() {
        EVENTS.lock().push(Event::Wrote { file: name(path), blocks }.line());
    }
}

/// Tells this runtime image from an earlier one of the same process
/// (before an `execve`), since a process may report more than once.
static IMAGE: AtomicU64 = AtomicU64::new(0);

/// A forked child is a new image: its own events and counters.
pub(crate) fn new_image_in_child() {
    IMAGE.store(0, Relaxed);
    EVENTS.lock().clear();
}

/// This image's id, made on first use.
fn image_id() -> u64 {
    if IMAGE.load(Relaxed) == 0 {
        let mut b = [0u8; 8];
        crate::os::sys::getrandom(&mut b);
        IMAGE.store(u64::from_le_bytes(b) | 1, Relaxed);
    }
    IMAGE.load(Relaxed)
}

/// Appends this image's `-stats` counters (`values`, `rejected`) as a
/// `stats` line for dbirun's summary; false without a run report.
pub(crate) fn append_stats(program: &str, values: &[(&str, u64)], rejected: &[(&str, u64)]) -> bool {
    let Some(file) = crate::options::get().persist_report else { return false };
    let line = StatsLine { pid: crate::os::sys::getpid() as i64, image: image_id(), program, values, rejected }.line();
    crate::os::sys::write_file(file.as_bytes_with_nul(), line.as_bytes(), true);
    true
}

/// Appends a client's line for the user (`Services::summary`) for dbirun
/// to print at the end of the run; false without a run report.
pub(crate) fn append_summary(client: &str, text: &str) -> bool {
    let Some(file) = crate::options::get().persist_report else { return false };
    let line = SummaryLine { pid: crate::os::sys::getpid() as i64, program: crate::os::proc_identity::app_name(), client, text }.line();
    crate::os::sys::write_file(file.as_bytes_with_nul(), line.as_bytes(), true);
    true
}

/// Appends this process's report: events since the last one, then its
/// counters so far as a `process PID.IMAGE ...` line (the last such line
/// of an image counts).
pub(crate) fn append() {
    let Some(file) = crate::options::get().persist_report else { return };
    let s = &STATS;
    let pid = crate::os::sys::getpid() as i64;
    let image = image_id();
    let mut text: String = core::mem::take(&mut *EVENTS.lock()).concat();
    let counters = Counters {
        blocks_built: s.blocks_built.load(Relaxed),
        blocks_loaded: s.blocks_loaded.load(Relaxed),
        files_loaded: s.files_loaded.load(Relaxed),
        files_rejected: crate::stats::rejected_total(),
        files_written: s.files_written.load(Relaxed),
        blocks_persisted: s.blocks_persisted.load(Relaxed),
    };
    text.push_str(&counters.line(pid, image));
    crate::os::sys::write_file(file.as_bytes_with_nul(), text.as_bytes(), true);
}
