//! Forking while other threads run: the child has only the forking thread,
//! so a runtime lock another thread held at the fork would stay held in the
//! child forever (a child spinning on the module list, say, because a
//! thread was mapping a library). The forking thread holds every runtime
//! lock across the fork instead.
//!
//! They are taken all-or-none with try-locks, so no order among them is
//! needed and no thread ever waits while holding one of them here; the
//! allocator's comes last (the others allocate while held).
//!
//! It sits with the app's system calls (the emulation layer): fork is one
//! of them, and holding every lock means naming every layer's.
//!
//! Locks inside clients (their own counters and buffers) are not covered:
//! a client's clean call running in another thread at the fork can leave
//! its lock held in the child.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;

type Held = Vec<Box<dyn Any>>;

fn hold<T: 'static>(held: &mut Held, guard: Option<spin::MutexGuard<'static, T>>) -> bool {
    match guard {
        Some(g) => {
            held.push(Box::new(g));
            true
        }
        None => false,
    }
}

/// Every runtime lock but the translator's and the allocator's, or None if
/// one of them is busy (then none is held).
fn try_hold_all() -> Option<Held> {
    let mut held: Held = Vec::with_capacity(16);
    let all = hold(&mut held, crate::os::modules::MODULES.try_lock())
        && hold(&mut held, crate::os::modules::HASHES.try_lock())
        && hold(&mut held, crate::os::app_prot::RANGES.try_lock())
        && hold(&mut held, crate::translate::smc::WRITABLE_CODE.try_lock())
        && hold(&mut held, crate::translate::smc::PROTECTED.try_lock())
        && hold(&mut held, crate::signals::handling::ACTIONS.try_lock())
        && hold(&mut held, crate::emulation::brk::BREAK.try_lock())
        && hold(&mut held, crate::client_host::THREADS.try_lock())
        && hold(&mut held, crate::quiescence::THREADS.try_lock())
        && hold(&mut held, crate::client_host::BLOCK_DATA.try_lock())
        && hold(&mut held, crate::persistence::report::EVENTS.try_lock())
        && hold(&mut held, crate::persistence::save::REPORTED.try_lock())
        && hold(&mut held, crate::persistence::save::WRITE_FAILURES.try_lock())
        && hold(&mut held, crate::stats::REJECTED.try_lock());
    all.then_some(held)
}

/// Runs `fork_call` (which must not allocate) while this thread holds
/// `outer` (already taken by the caller: the translator) and every other
/// runtime lock; they are released in the parent and in the child alike.
fn with_all_locks(fork_call: impl FnOnce() -> i64) -> i64 {
    let held = loop {
        if let Some(held) = try_hold_all() {
            break held;
        }
        core::hint::spin_loop();
        crate::os::sys::sched_yield();
    };
    let r = crate::ALLOCATOR.while_locked(fork_call);
    drop(held);
    r
}

/// Runs `fork_call` (a system call creating a process, which must not
/// allocate) while no other thread can hold a runtime lock, so the
/// child's copies of them are free (`fork_locks`).
pub(crate) fn fork_safely(fork_call: impl FnOnce() -> i64) -> i64 {
    let r = {
        let _translator = crate::translator::lock();
        with_all_locks(fork_call)
    };
    if r == 0 {
        crate::stats::reset_in_child();
        crate::persistence::report::new_image_in_child();
        if let Some(tr) = crate::translator::lock().as_ref() {
            crate::persistence::save::note_forked(&tr.units.units);
        }
    }
    r
}
