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

/// This process ends the run `dbirun` left to it (`-record_run`), with
/// `status` (`exit N`, `signal N`): the report gets the run's end and is
/// renamed pending, at once whole, for the cache index; the directory's
/// cache server, if there is one, is asked to record it now, else the
/// next recorder (dbirun, any cachetool command) does. Nothing for any
/// other process of the run.
pub(crate) fn end_run(status: core::fmt::Arguments<'_>) {
    let options = crate::options::get();
    let (Some(run), Some(file), Some(dir)) = (options.record_run, options.persist_report, options.persist_dir) else { return };
    let pid = crate::os::sys::getpid();
    if run.pid != pid {
        return;
    }
    let now = crate::os::sys::unix_time_ns();
    let end = persist::run_report::RunEnd {
        time: (now / 1_000_000_000) as i64,
        duration_ms: now.saturating_sub(run.start_ns) / 1_000_000,
        exit_status: alloc::format!("{status}"),
        command: String::from_utf8_lossy(run.command.as_bytes()).into_owned(),
    };
    crate::os::sys::write_file(file.as_bytes_with_nul(), end.lines().as_bytes(), true);
    let pending = alloc::format!("{dir}/{}\0", persist::cache_dir::pending_report_name(now as u128, pid));
    if crate::os::sys::rename(file.as_bytes_with_nul(), pending.as_bytes()).is_ok() && options.persist_server {
        crate::persistence::server::ask_to_record(&dir);
    }
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
