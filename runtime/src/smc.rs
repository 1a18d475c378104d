//! Code written at run time into memory that is writable and executable at
//! once (JITs, self-modifying code): pages the runtime translated from are
//! write-protected, and the first write to one flushes the blocks built
//! from it and gives the page back its write permission.
//!
//! Memory that flips between writable and executable with `mprotect` needs
//! none of this: `syscall` flushes on those changes.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use spin::Mutex;

use crate::sys::{self, page_down, PAGE_SIZE};

/// App regions whose intended protection is both writable and executable.
static WRITABLE_CODE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
/// Pages of those regions the runtime has write-protected.
static PROTECTED: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
/// Set once a page was protected: the runtime must see every SIGSEGV.
pub static CATCH_WRITE_FAULTS: AtomicBool = AtomicBool::new(false);

/// The app's mapping or protection of `[addr, addr + len)` became `prot`.
pub fn note_protection(addr: u64, len: u64, prot: u64) {
    let (lo, hi) = (addr, addr + sys::page_up(len));
    let mut regions = WRITABLE_CODE.lock();
    regions.retain(|&(a, b)| b <= lo || a >= hi);
    let wx = sys::PROT_WRITE | sys::PROT_EXEC;
    if prot & wx == wx {
        regions.push((lo, hi));
    }
    drop(regions);
    PROTECTED.lock().retain(|&p| p < lo || p >= hi);
}

fn is_writable_code(page: u64) -> bool {
    WRITABLE_CODE.lock().iter().any(|&(a, b)| (a..b).contains(&page))
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

/// The translator is about to read app code on `page`: protect it first if
/// the app can write to it. Protecting before reading (not after the block
/// is built) means a write either lands before the read, and the block sees
/// it, or faults and flushes the block, which waits for the translator.
pub fn before_read(page: u64) {
    protect(page, page + PAGE_SIZE);
}

/// Protects the pages of `[start, end)` the app can write to (a persisted
/// block, which was not read from memory, now stands for those bytes).
pub fn protect(start: u64, end: u64) {
    let mut page = page_down(start);
    while page < end {
        if is_writable_code(page) {
            // The set and the kernel's protection change together under
            // the lock: a thread that faults on the page and finds it out
            // of the set knows the write permission is already back.
            let mut protected = PROTECTED.lock();
            if protected.insert(page) {
                if !CATCH_WRITE_FAULTS.swap(true, Relaxed) {
                    crate::signal::catch_write_faults();
                }
                // SAFETY: an app page the runtime translates; the app's view
                // of its protection is kept in WRITABLE_CODE.
                unsafe { sys::mprotect(page, PAGE_SIZE, kernel_prot(false)) };
            }
        }
        page += PAGE_SIZE;
    }
}

/// A write to `addr` faulted: if the runtime protected that page, flush its
/// blocks, make it writable again and return true (the write is retried).
pub fn handle_write_fault(addr: u64) -> bool {
    let page = page_down(addr);
    // The set's lock is released before flushing, which takes the
    // translator's: a thread building a block holds that one and then
    // takes this one.
    let mut protected = PROTECTED.lock();
    if !protected.remove(&page) {
        drop(protected);
        // Another thread faulted on the same page at the same time and gave
        // the write permission back first (or a build protected it again
        // since, and the retried write faults once more): the page is the
        // app's writable code, so natively this write succeeds. Retry it.
        return is_writable_code(page);
    }
    // SAFETY: restoring the app's intended protection of its page.
    unsafe { sys::mprotect(page, PAGE_SIZE, kernel_prot(true)) };
    drop(protected);
    crate::dispatch::flush_range(page, page + PAGE_SIZE);
    true
}
