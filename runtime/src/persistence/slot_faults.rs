//! Exit slots rebased when code first jumps through them. A file's exit
//! slots store distances that are non-canonical addresses
//! (`persist::exit_slots`), so the first `jmp qword ptr [rip + slot]`
//! through one faults (#GP, SIGSEGV); the signal handler asks
//! [`rebase_at`], which rebases every slot of the W zone's 64 KiB around
//! it and lets the jump run again. Loading then writes nothing per exit, and a W
//! page is copied (the zone is a private mapping) only when an exit on it
//! is taken: a file translated ahead of time is mostly exits that never
//! run (cc1's: 2 million slots, 15 MB of W zones).
//!
//! Only W zones that hold nothing but slots (exits' and counting stubs'
//! go slots), traces' miss budgets and counting stubs' counters (counts,
//! never non-canonical), words nothing reads, and block data of clients
//! that call theirs plain (`Client::block_data_is_plain`: counts and
//! flags, never non-canonical) are left to this; their base slot is
//! written at load. Rebasing a word is a compare-and-swap from the
//! stored distance, so a slot the runtime links or unlinks meanwhile (an
//! address) keeps what the runtime wrote, and two threads faulting on one
//! page both finish it; a thread that runs alone stores without the
//! compare.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::{Acquire, Relaxed, SeqCst}};

/// W zones this process leaves to be rebased by faults; a zone past these
/// is rebased at load.
const MAX_ZONES: usize = 1024;

struct Zone {
    w: AtomicU64,
    w_end: AtomicU64,
    /// Its segment's X zone: what a stored distance is from.
    x: AtomicU64,
}

static ZONES: [Zone; MAX_ZONES] = [const { Zone { w: AtomicU64::new(0), w_end: AtomicU64::new(0), x: AtomicU64::new(0) } }; MAX_ZONES];
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Set once the app has blocked SIGSEGV in some thread: from then on
/// every slot is rebased at load (see [`rebase_all_now`]).
static EAGER: AtomicBool = AtomicBool::new(false);

/// Leaves the slots of the W zone `[w, w + len)`, whose segment's X zone
/// is at `x`, to be rebased on first use, or rebases them now when that
/// cannot be left (no room left, or the app blocks SIGSEGV). The caller
/// holds the translator's lock (one writer at a time).
pub(crate) fn defer(w: u64, len: u64, x: u64) {
    let i = COUNT.load(Relaxed) as usize;
    let zone = ZONES.get(i).filter(|_| !EAGER.load(SeqCst));
    let Some(z) = zone else {
        rebase(w, w + len, x);
        return;
    };
    z.w.store(w, Relaxed);
    z.w_end.store(w + len, Relaxed);
    z.x.store(x, Relaxed);
    COUNT.store(i as u64 + 1, SeqCst);
    // A thread that blocked SIGSEGV meanwhile may have rebased the zones
    // it saw before this one.
    if EAGER.load(SeqCst) {
        rebase(w, w + len, x);
    }
}

/// The app is about to run code where a fault of the runtime's own would
/// hurt it: with SIGSEGV blocked, a jump through a slot not rebased yet
/// would not reach the runtime's handler (the kernel forces a blocked
/// synchronous fault to its default action and kills the process), and
/// on a signal handler's alternate stack the fault's frame could
/// overflow it. So every deferred slot is rebased now, and files loaded
/// from now on have their slots rebased at load. Programs do block every
/// signal for a moment: glibc's `pthread_create` and `posix_spawn`.
pub(crate) fn rebase_all_now() {
    if EAGER.swap(true, SeqCst) {
        return;
    }
    let count = (COUNT.load(SeqCst) as usize).min(MAX_ZONES);
    for z in &ZONES[..count] {
        rebase(z.w.load(Relaxed), z.w_end.load(Relaxed), z.x.load(Relaxed));
    }
}

/// Rebases every slot of `[lo, hi)`, part of a W zone whose segment's X
/// zone is at `x`, that still stores a distance.
fn rebase(lo: u64, hi: u64, x: u64) {
    // A thread that runs alone has no one to race with (the runtime's
    // handler runs with every signal blocked): a plain store, not a
    // compare-and-swap, a tenth of the time (perf: `rebase_at` was 1.1%
    // of a warm `python3 -c pass`, 26 windows).
    let alone = crate::thread::alone();
    for word in (lo..hi).step_by(8) {
        // SAFETY: an aligned word of a W zone of slots only, mapped
        // read-write for good.
        let cell = unsafe { AtomicU64::from_ptr(word as *mut u64) };
        let stored = cell.load(Relaxed);
        if persist::exit_slots::distance(stored).is_some() {
            let rebased = persist::exit_slots::resolve(stored, x);
            if alone {
                cell.store(rebased, Relaxed);
            } else {
                let _ = cell.compare_exchange(stored, rebased, Relaxed, Relaxed);
            }
        }
    }
}

/// `jmp qword ptr [rip + disp32]`: how every exit through a slot leaves.
const JMP_RIP: [u8; 2] = [0xff, 0x25];
const JMP_RIP_LEN: u64 = 6;

/// For a SIGSEGV at `pc` in the code cache: if the instruction there is a
/// jump through a slot of a deferred zone that still stores a distance,
/// rebases the slots around it and returns true (the jump runs again).
pub(crate) fn rebase_at(pc: u64) -> bool {
    // SAFETY: pc is the faulting instruction in the code cache: its
    // bytes were fetched, so they are mapped and readable (X zones are
    // r-x); the displacement is read only once the opcode says the
    // instruction is 6 bytes long.
    let slot = unsafe {
        if *(pc as *const [u8; 2]) != JMP_RIP {
            return false;
        }
        let disp = core::ptr::read_unaligned((pc + 2) as *const i32);
        (pc + JMP_RIP_LEN).wrapping_add(disp as i64 as u64)
    };
    let count = (COUNT.load(Acquire) as usize).min(MAX_ZONES);
    let Some(zone) = ZONES[..count].iter().find(|z| (z.w.load(Relaxed)..z.w_end.load(Relaxed)).contains(&slot)) else {
        return false;
    };
    // SAFETY: the slot is an aligned word of a deferred W zone, mapped
    // read-write for good.
    let value = unsafe { AtomicU64::from_ptr(slot as *mut u64) }.load(Relaxed);
    if persist::exit_slots::distance(value).is_none() {
        return false;
    }
    let x = zone.x.load(Relaxed);
    let window = slot & !(WINDOW - 1);
    let lo = window.max(zone.w.load(Relaxed));
    let hi = (window + WINDOW).min(zone.w_end.load(Relaxed));
    // Every page of the window is about to be written: copied in one
    // call rather than a fault each.
    crate::os::sys::populate(lo, hi - lo, true);
    rebase(lo, hi, x);
    crate::stats::add(&crate::stats::STATS.slot_pages_rebased, (hi - lo).div_ceil(crate::os::sys::PAGE_SIZE));
    true
}

/// What one fault rebases: the aligned 64 KiB of W around the slot. A
/// run takes exits on most pages of a file's slots, and a fault costs
/// about 6 us here, more than copying and rebasing a page it would not
/// have needed. python3 -c pass, page by page against 64 KiB: 121 faults
/// against 14 from the files of earlier runs (warm 21.5 -> 19.7 ms), 461
/// against 56 after `-aot`.
const WINDOW: u64 = 16 * crate::os::sys::PAGE_SIZE;
