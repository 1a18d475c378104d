//! When no thread can be running code the runtime retired: the
//! quiescent states of an epoch scheme (as RCU's), so that the records of
//! retired fragments (`translate/retired.rs`) and the lookup tables a
//! rebuilt one replaced (`translate/ibl.rs`) are freed instead of kept
//! for the whole run (a JIT flushes blocks all its life: a loop that
//! rewrites and calls a function 3,000 times retires 3,000). A thread
//! searches the table it was given when it last picked a fragment.
//!
//! Each flush starts by advancing the epoch, under the translator's lock,
//! when every fragment retired so far has been made unreachable (out of
//! the lookup table, exits to it unlinked: the lock holds that retired it
//! are over). A thread that leaves the cache for the runtime runs no
//! fragment; when it picks the next one, under the lock, it notes the
//! epoch: it can only enter fragments reachable then, so it may run a
//! fragment retired in that epoch or later, none retired before. A record
//! retired in epoch `e` goes once every thread in the cache noted an
//! epoch after `e`; threads in the runtime (a system call that blocks for
//! good included) hold nothing back.
//!
//! A thread in a clean call returns into its block, so that is no
//! leaving. A thread spinning in linked code holds back every record
//! retired since it last picked a fragment, which is what it may need.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use spin::Mutex;

use crate::thread::ThreadContext;

static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The contexts (addresses) of the threads that may run translated code.
pub(crate) static THREADS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// The current epoch: what a fragment retired now is marked with.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(SeqCst)
}

/// Starts a new epoch. Only under the translator's lock, with nothing
/// retired in this hold of it yet (the start of a flush).
pub(crate) fn advance() {
    EPOCH.fetch_add(1, SeqCst);
}

/// What a thread in the runtime notes: it runs no fragment.
const IN_RUNTIME: u64 = u64::MAX;

/// `ctx`'s thread left the cache for the runtime.
pub(crate) fn left_cache(ctx: &ThreadContext) {
    ctx.passage.store(IN_RUNTIME, SeqCst);
}

/// `ctx`'s thread, holding the translator's lock, is about to pick the
/// fragment it enters next.
pub(crate) fn picking(ctx: &ThreadContext) {
    ctx.passage.store(EPOCH.load(SeqCst), SeqCst);
}

/// Counts `ctx` (a new thread's, not running yet, or the first thread's)
/// among the threads that may run translated code.
pub(crate) fn register(ctx: &ThreadContext) {
    left_cache(ctx);
    THREADS.lock().push(ctx as *const ThreadContext as usize);
}

/// `ctx` runs no more translated code (its thread is leaving, or never
/// started); its mapping may go once this returns.
pub(crate) fn unregister(ctx: &ThreadContext) {
    let at = ctx as *const ThreadContext as usize;
    THREADS.lock().retain(|&c| c != at);
}

/// In a forked child, whose only thread is `ctx`.
pub(crate) fn only(ctx: &ThreadContext) {
    let mut threads = THREADS.lock();
    threads.clear();
    threads.push(ctx as *const ThreadContext as usize);
}

/// The oldest epoch a thread in the cache picked its fragment in:
/// fragments retired in an earlier epoch are run by no thread.
pub(crate) fn oldest_passage() -> u64 {
    THREADS
        .lock()
        .iter()
        // SAFETY: a registered context stays mapped until it is
        // unregistered, which takes this lock.
        .map(|&c| unsafe { &*(c as *const ThreadContext) }.passage.load(SeqCst))
        .min()
        .unwrap_or_else(epoch)
}
