//! Code cache memory: one large reservation next to the runtime's own code,
//! so cache code reaches the runtime's assembly routines with rel32
//! branches. Fragments fill it from the bottom up; whole page-aligned
//! regions (persistable segments, mapped cache files, the regions exit
//! stubs fill) are taken from the top down, so every piece of code can
//! link to every other with rel32. Exit stubs live apart from the code:
//! linked exits never reach them, so the code that runs lies dense.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::os::sys;

/// The cache's bounds, readable from signal handlers without a lock.
static BOUNDS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Whether `pc` is in the code cache.
pub(crate) fn contains(pc: u64) -> bool {
    (BOUNDS[0].load(Relaxed)..BOUNDS[1].load(Relaxed)).contains(&pc)
}

/// The size of each region exit stubs fill.
const STUB_REGION: u64 = 256 << 10;

/// Where the cache starts relative to the runtime's fixed image base.
const OFFSET_FROM_IMAGE: u64 = 0x1000_0000;
/// Within +-2 GiB of every runtime routine.
const CACHE_SIZE: u64 = 1 << 30;
/// The top of the reservation holds client data that cache code reaches
/// with RIP-relative operands (counters and the like).
const NEAR_DATA_SIZE: u64 = 64 << 20;

/// Next free byte and end of the near-data area.
static NEAR_DATA: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// `len` zeroed bytes (8-byte aligned) within RIP-relative reach of all
/// cache code, or None when the area is used up.
pub(crate) fn alloc_near_data(len: u64) -> Option<u64> {
    let len = (len + 7) & !7;
    let start = NEAR_DATA[0].fetch_add(len, Relaxed);
    (start + len <= NEAR_DATA[1].load(Relaxed)).then_some(start)
}

extern "C" {
    static __ehdr_start: u8;
}

/// Where code starts: 4-byte aligned, so that the no-ops `emit` puts
/// before an exit branch to align its rel32 field do not depend on where
/// the code goes (the deep check translates again elsewhere and compares).
/// No more: a file's block runs on into the block after it through the
/// filler (16-byte alignment made python3's file 4% larger and its warm
/// runs no faster).
pub(crate) const CODE_ALIGN: u64 = 4;

/// Copies `code` to `*next` ([`CODE_ALIGN`] aligned, below `end`, in
/// unused writable cache memory), advances `*next` and returns where it
/// went.
pub(crate) fn append_code(next: &mut u64, end: u64, code: &[u8]) -> Option<u64> {
    let start = *next;
    let after = (start + code.len() as u64).next_multiple_of(CODE_ALIGN);
    if after > end {
        return None;
    }
    // SAFETY: [start, after) is unused cache memory, writable (callers own it).
    unsafe { copy_to_cache(start, code) };
    *next = after;
    Some(start)
}

/// Copies `bytes` to `at` in the cache.
///
/// # Safety
/// `[at, at + bytes.len())` is writable cache memory that no code runs yet.
pub(crate) unsafe fn copy_to_cache(at: u64, bytes: &[u8]) {
    // SAFETY: the caller's promise.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
}

pub(crate) struct CodeCache {
    next: u64,
    /// Regions are handed out below this address.
    end: u64,
    /// The free part of the region stubs fill now.
    stub_next: u64,
    stub_end: u64,
}

impl CodeCache {
    pub(crate) fn new() -> CodeCache {
        // SAFETY: the linker defines __ehdr_start at the image base.
        let image = unsafe { &__ehdr_start as *const u8 as u64 };
        let want = image + OFFSET_FROM_IMAGE;
        // SAFETY: a fresh reservation; MAP_FIXED_NOREPLACE never clobbers.
        let r = unsafe {
            sys::mmap(
                want,
                CACHE_SIZE,
                sys::PROT_READ | sys::PROT_WRITE | sys::PROT_EXEC,
                sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_NORESERVE | sys::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        let r = match r {
            Ok(r) => r,
            Err(e) => crate::log::fatal(70, format_args!("cannot reserve the code cache (errno {})", e.raw_os_error())),
        };
        let code_end = r + CACHE_SIZE - NEAR_DATA_SIZE;
        BOUNDS[0].store(r, Relaxed);
        BOUNDS[1].store(code_end, Relaxed);
        NEAR_DATA[0].store(code_end, Relaxed);
        NEAR_DATA[1].store(r + CACHE_SIZE, Relaxed);
        CodeCache { next: r as u64, end: code_end, stub_next: 0, stub_end: 0 }
    }

    /// Address the next committed code will start at.
    pub(crate) fn next_address(&self) -> u64 {
        self.next
    }

    /// A page-aligned region of `len` bytes of the reservation, still
    /// mapped read-write-execute; None when the cache is full.
    pub(crate) fn take_region(&mut self, len: u64) -> Option<u64> {
        let len = crate::os::sys::page_up(len);
        let start = self.end.checked_sub(len)?;
        if start < self.next {
            return None;
        }
        self.end = start;
        Some(start)
    }

    /// Region `[start, start + len)`, taken with `take_region`, is no
    /// longer used: its pages are freed, and its addresses taken again when
    /// it is the lowest region (regions given back in the reverse order of
    /// taking all are).
    ///
    /// # Safety
    /// No code in the region may run again, and nothing may write to it.
    pub(crate) unsafe fn give_back(&mut self, start: u64, len: u64) {
        let len = crate::os::sys::page_up(len);
        // SAFETY: the caller's promise; the range stays reserved.
        let _ = unsafe { sys::discard_pages(start, len) };
        if start == self.end {
            self.end = start + len;
        }
    }

    /// Copies `code` to the next free address; None when the cache is full.
    pub(crate) fn commit(&mut self, code: &[u8]) -> Option<u64> {
        append_code(&mut self.next, self.end, code)
    }

    /// Room for `len` bytes of exit stubs (8-byte aligned), in a region of
    /// their own; their address, or None when the cache is full.
    pub(crate) fn alloc_stubs(&mut self, len: u64) -> Option<u64> {
        let len = (len + 7) & !7;
        if self.stub_end - self.stub_next < len {
            let region = STUB_REGION.max(len);
            self.stub_next = self.take_region(region)?;
            self.stub_end = self.stub_next + region;
        }
        let at = self.stub_next;
        self.stub_next += len;
        Some(at)
    }

    /// Copies `stubs` to `at`, room [`CodeCache::alloc_stubs`] gave.
    pub(crate) fn commit_stubs(&mut self, at: u64, stubs: &[u8]) {
        // SAFETY: [at, at + len) is stub room, writable cache memory that
        // no code uses yet.
        unsafe { copy_to_cache(at, stubs) };
    }

}
