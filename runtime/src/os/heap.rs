//! The runtime's global allocator, on its own anonymous mappings.
//!
//! Sizes up to a page come from power-of-two size classes carved out of
//! 64 KiB chunks and recycled through per-class free lists; anything larger is
//! a mapping of its own. Never shares memory with the application's malloc.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spin::Mutex;

use crate::os::sys;

const MIN_CLASS_SHIFT: usize = 4;
const MAX_CLASS_SHIFT: usize = 12;
const CLASSES: usize = MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1;
const CHUNK: usize = 64 * 1024;

struct Pools {
    free: [*mut u8; CLASSES],
    /// Each class carves its own chunks: blocks of one size packed back to
    /// back are aligned to their size with no gaps between them.
    bump: [*mut u8; CLASSES],
    bump_end: [*mut u8; CLASSES],
}

// SAFETY: the raw pointers are only touched under the mutex.
unsafe impl Send for Pools {}

pub(crate) struct RuntimeAllocator {
    pools: Mutex<Pools>,
}

impl RuntimeAllocator {
    pub(crate) const fn new() -> Self {
        RuntimeAllocator {
            pools: Mutex::new(Pools {
                free: [ptr::null_mut(); CLASSES],
                bump: [ptr::null_mut(); CLASSES],
                bump_end: [ptr::null_mut(); CLASSES],
            }),
        }
    }
}

impl RuntimeAllocator {
    /// Runs `f` (which must not allocate) with the allocator locked, so a
    /// fork inside it copies the allocator in a consistent state.
    pub(crate) fn while_locked<R>(&self, f: impl FnOnce() -> R) -> R {
        let _pools = self.pools.lock();
        f()
    }
}

/// Bytes the allocator has mapped now, and at most so far (`-stats`: the
/// runtime's own share of a process's memory).
static MAPPED: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn mapped(bytes: usize) {
    let now = MAPPED.fetch_add(bytes as u64, Relaxed) + bytes as u64;
    PEAK.fetch_max(now, Relaxed);
}

/// The most bytes the runtime's heap had mapped at once.
pub(crate) fn peak_bytes() -> u64 {
    PEAK.load(Relaxed)
}

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS_SHIFT);
    let shift = size.next_power_of_two().trailing_zeros() as usize;
    (shift <= MAX_CLASS_SHIFT).then(|| shift - MIN_CLASS_SHIFT)
}

unsafe impl GlobalAlloc for RuntimeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            if layout.align() > sys::PAGE_SIZE as usize {
                return ptr::null_mut();
            }
            let len = sys::page_up(layout.size() as u64);
            let block = sys::map_anonymous(len).unwrap_or(ptr::null_mut());
            if !block.is_null() {
                mapped(len as usize);
            }
            return block;
        };
        let size = 1usize << (class + MIN_CLASS_SHIFT);
        let mut pools = self.pools.lock();
        let head = pools.free[class];
        if !head.is_null() {
            // SAFETY: a free block stores the next free block in its first word.
            pools.free[class] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        // Chunks are page-aligned and hold whole blocks of one size class,
        // so every block is aligned to its size.
        let mut start = pools.bump[class];
        if start.is_null() || start.wrapping_add(size) > pools.bump_end[class] {
            let Some(chunk) = sys::map_anonymous(CHUNK as u64) else {
                return ptr::null_mut();
            };
            mapped(CHUNK);
            pools.bump_end[class] = chunk.wrapping_add(CHUNK);
            start = chunk;
        }
        pools.bump[class] = start.wrapping_add(size);
        start
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(&layout).is_none() {
            // A fresh mapping is already zero.
            // SAFETY: same contract as alloc.
            return unsafe { self.alloc(layout) };
        }
        // SAFETY: same contract as alloc; the block is ours to clear.
        unsafe {
            let p = self.alloc(layout);
            if !p.is_null() {
                core::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(class) => {
                let mut pools = self.pools.lock();
                // SAFETY: the block is ours again and at least a word long.
                unsafe { *(block as *mut *mut u8) = pools.free[class] };
                pools.free[class] = block;
            }
            None => {
                let len = sys::page_up(layout.size() as u64);
                // SAFETY: large blocks are whole mappings of this size.
                let _ = unsafe { sys::munmap(block as u64, len) };
                MAPPED.fetch_sub(len, Relaxed);
            }
        }
    }
}
