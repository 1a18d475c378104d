//! The one path every end of the process takes through the runtime, so
//! what it owes at the end (persisted caches, the clients' thread and
//! process exits, `-stats`) is done however the app goes: `exit_group`, its
//! last thread's `exit`, a signal whose default action kills it, or an
//! `execve` that replaces the image. The caller then ends the process
//! exactly as it would have natively.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::thread::ThreadContext;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `exit_group`, or the last thread's `exit`, with its status.
    Exit(i32),
    /// A signal with the default action that terminates (the caller
    /// raises it with that action afterwards), by number.
    FatalSignal(i32),
    /// `execve`: the image is replaced, unless the call fails.
    Exec,
}

/// Set by the first thread that ends the process: a second (another thread
/// faulting while the first writes files) must not run the clients' exits
/// again, nor die before the first has finished writing.
static ENDING: AtomicBool = AtomicBool::new(false);

/// Runs everything the runtime owes before the process ends for `reason`.
/// Returns only to the thread that is to end the process (or attempt the
/// exec); any other thread that arrives meanwhile waits here until the
/// first one ends the process.
pub(crate) fn process_exit(ctx: &ThreadContext, reason: Reason) {
    // A vfork child shares the parent's memory, caches, counters and client
    // state (its registry of threads too): the parent persists them and
    // gives the clients their exits itself, and the child's end must not
    // stop the parent's.
    let vfork_child = ctx.is_vfork_child != 0;
    // An exec may fail and the process go on: it does not claim the end.
    if !vfork_child && reason != Reason::Exec && ENDING.swap(true, Ordering::SeqCst) {
        wait_for_the_end();
    }
    if !vfork_child {
        // Not after a fatal signal: the runtime may have been interrupted
        // holding a lock its copy would need.
        crate::translator::persist_all(!matches!(reason, Reason::FatalSignal(_)));
        crate::client_host::process_exit();
    }
    if vfork_child {
        // The counters are the parent's, which reports them: only this
        // context's lookups are the child's to add.
        crate::stats::add(&crate::stats::STATS.ibl_lookups_of_exited_threads, ctx.ibl_lookups);
    } else {
        report_stats(ctx.ibl_lookups);
        // The run's own process ending is the run's end (`-record_run`).
        match reason {
            Reason::Exit(status) => crate::persistence::report::end_run(format_args!("exit {}", status & 0xff)),
            Reason::FatalSignal(sig) => crate::persistence::report::end_run(format_args!("signal {sig}")),
            Reason::Exec => {}
        }
    }
}

/// With `-stats`: this image's counters, into the run report for dbirun's
/// summary (or, without one, printed to stderr).
fn report_stats(ibl_lookups: u64) {
    if !crate::options::get().stats {
        return;
    }
    let values = crate::stats::snapshot(ibl_lookups);
    let program = crate::os::proc_identity::app_name();
    if !crate::persistence::report::append_stats(program, &values, &crate::stats::rejected()) {
        crate::stats::print(&values);
    }
}

/// Another thread is ending the process: its exit_group or fatal signal
/// takes this thread with it.
fn wait_for_the_end() -> ! {
    // Block every signal (SIG_BLOCK is 0).
    crate::os::signal::sigprocmask(0, !0);
    loop {
        crate::os::sys::sleep_ns(1_000_000_000);
    }
}
