//! Code written at run time into memory that is writable and executable at
//! once (JITs, self-modifying code): pages the runtime translated from are
//! write-protected, and the first write to one flushes the blocks built
//! from it and gives the page back its write permission.
//!
//! Memory that flips between writable and executable with `mprotect` needs
//! none of this: `syscall` flushes on those changes.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use spin::Mutex;

use crate::os::sys::{self, page_down, PAGE_SIZE};

/// App regions whose intended protection is both writable and executable.
pub(crate) static WRITABLE_CODE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
/// Pages of those regions the runtime has write-protected.
pub(crate) static PROTECTED: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());

/// The app's mapping or protection of `[addr, addr + len)` became `prot`.
pub(crate) fn note_protection(addr: u64, len: u64, prot: u64) {
    let (lo, hi) = (addr, addr + sys::page_up(len));
    let mut regions = WRITABLE_CODE.lock();
    // Parts of a region outside [lo, hi) keep their protection.
    let mut kept = Vec::with_capacity(regions.len() + 1);
    for &(a, b) in regions.iter() {
        if a < lo {
            kept.push((a, b.min(lo)));
        }
        if b > hi {
            kept.push((a.max(hi), b));
        }
    }
    *regions = kept;
    let wx = sys::PROT_WRITE | sys::PROT_EXEC;
    if prot & wx == wx {
        regions.push((lo, hi));
    }
    drop(regions);
    PROTECTED.lock().retain(|&p| p < lo || p >= hi);
}

/// What the kernel should give a page of writable code, with or without
/// write permission.
fn kernel_prot(writable: bool) -> u64 {
    let mut prot = sys::PROT_READ;
    if writable {
        prot |= sys::PROT_WRITE;
    }
    if !crate::options::get().no_native_exec {
        prot |= sys::PROT_EXEC;
    }
    prot
}

/// How a block built from a page is kept in step with the app's writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Guard {
    /// The app cannot write to the page: nothing to do.
    None,
    /// Write-protected: a write faults and flushes the page's blocks.
    Protected,
    /// On the writable code the thread's stack is in (GCC's nested-function
    /// trampolines): protecting it would fault on every push, and the
    /// kernel could not even write a signal frame there. The block's bytes
    /// are compared with the app's instead each time it is entered.
    Sandboxed,
}

/// The bytes of `page` are about to be read to build a block for a thread
/// whose app stack pointer is `sp`. Writable code is write-protected first,
/// so a write by another thread from now on faults and its flush (which
/// waits for the translator this thread holds) comes after the block is in
/// the table: protecting only after the block was built left a window in
/// which a write went unseen and a stale block ran forever.
pub(crate) fn protect_before_read(page: u64, sp: u64) -> Guard {
    let page = page_down(page);
    let region = WRITABLE_CODE.lock().iter().copied().find(|&(a, b)| (a..b).contains(&page));
    let Some((lo, hi)) = region else {
        return Guard::None;
    };
    if (lo..hi).contains(&sp) {
        return Guard::Sandboxed;
    }
    let mut protected = PROTECTED.lock();
    if protected.insert(page) {
        // Under the set's lock, so the set and the kernel's protection
        // never disagree (a write fault unprotects under the same lock).
        // SAFETY: an app page about to be translated; the app's view of
        // its protection is kept in WRITABLE_CODE.
        let _ = unsafe { sys::mprotect(page, PAGE_SIZE, kernel_prot(false)) };
    }
    Guard::Protected
}

/// A block was registered from app bytes `[tag, end)` without being
/// decoded (from a persisted file): protect those pages if the app can
/// write to them.
pub(crate) fn after_build(tag: u64, end: u64) {
    let mut page = page_down(tag);
    while page < end {
        // Files hold blocks of file-backed modules, never of a stack.
        protect_before_read(page, 0);
        page += PAGE_SIZE;
    }
}

/// What a write fault on writable code asks of the runtime.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WriteFault {
    /// Not a page the runtime protected: the app's own fault.
    NotOurs,
    /// Another thread gave the page its write permission back first: retry.
    Retry,
    /// The page `[lo, hi)` is writable again: flush its blocks (the
    /// translator's job, above this layer), then retry the write.
    FlushThenRetry { lo: u64, hi: u64 },
}

/// A write to `addr` faulted: if the runtime protected that page, make it
/// writable again and say that its blocks must be flushed. The write is
/// retried only after the flush, so a block built meanwhile from the old
/// bytes is flushed too.
pub(crate) fn handle_write_fault(addr: u64) -> WriteFault {
    let page = page_down(addr);
    let mut protected = PROTECTED.lock();
    if !protected.remove(&page) {
        drop(protected);
        // Another thread faulted on the same page at the same time and
        // gave the write permission back first (the set and the
        // protection change together under the lock): natively this
        // write succeeds, so it is retried.
        let writable_code = WRITABLE_CODE.lock().iter().any(|&(a, b)| (a..b).contains(&page));
        return if writable_code { WriteFault::Retry } else { WriteFault::NotOurs };
    }
    // SAFETY: restoring the app's intended protection of its page.
    let _ = unsafe { sys::mprotect(page, PAGE_SIZE, kernel_prot(true)) };
    // The set's lock is released before the caller flushes, which takes
    // the translator's: a thread building a block holds that one and then
    // takes this one.
    WriteFault::FlushThenRetry { lo: page, hi: page + PAGE_SIZE }
}
