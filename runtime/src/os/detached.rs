//! A helper process of the runtime's own: a copy of this process that
//! finishes work the process must not wait for (writing persisted caches
//! after the app has exited) and is otherwise invisible to the app and
//! to whoever waits for it: it runs niced, every signal blocked, its own session (a ^C
//! or a kill of the app's process group does not reach it), its own name
//! (`ps`, `pgrep -x APP` do not find it), none of the app's descriptors
//! (a reader of the app's pipes sees their end when the app ends), and
//! no exit signal to its parent.

use crate::os::signal;
use crate::os::sys::{self, nr};

pub(crate) enum Forked {
    Parent,
    Child,
}

const CLOSE_RANGE: u64 = 436;
/// The helper's nice value.
const BACKGROUND_NICE: i32 = 10;

/// The number of threads of this process, from /proc/self/status.
pub(crate) fn thread_count() -> Option<u32> {
    let fd = sys::open_read(b"/proc/self/status\0").ok()?;
    let mut buf = [0u8; 2048];
    let n = sys::pread_full(&fd, &mut buf, 0);
    let text = core::str::from_utf8(&buf[..n]).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok())
}

/// Forks the calling thread into a detached helper named `name` that
/// keeps only the descriptors in `keep`. Only safe when the caller is the
/// process's one thread (no lock can be held by a thread the child lacks).
pub(crate) fn fork_detached(name: &core::ffi::CStr, keep: &[i32]) -> sys::Result<Forked> {
    // Blocked across the fork: no handler runs in the child, ever.
    let old = signal::sigprocmask(0, !0);
    // SAFETY: a plain fork (no CLONE_VM, no exit signal); the child
    // returns here on its own copy of this thread's stack.
    let r = unsafe { sys::syscall6(nr::CLONE, [0, 0, 0, 0, 0, 0]) };
    if r == 0 {
        let _ = rustix::process::setsid();
        let _ = rustix::thread::set_name(name);
        // Background work: the programs still running come first.
        let _ = rustix::process::setpriority_process(None, BACKGROUND_NICE);
        close_all_but(keep);
        return Ok(Forked::Child);
    }
    signal::sigprocmask(2, old);
    sys::check(r).map(|_| Forked::Parent)
}

/// Closes every descriptor not in `keep`.
fn close_all_but(keep: &[i32]) {
    let mut keep: alloc::vec::Vec<u32> = keep.iter().filter(|&&fd| fd >= 0).map(|&fd| fd as u32).collect();
    keep.sort_unstable();
    let mut from = 0u32;
    for fd in keep.into_iter().chain(core::iter::once(u32::MAX)) {
        if fd > from {
            // SAFETY: close_range takes no pointers.
            unsafe { sys::syscall(CLOSE_RANGE, from as u64, (fd - 1) as u64, 0) };
        }
        from = fd.saturating_add(1);
    }
}
