//! The runtime's global allocator, on its own anonymous mappings.
//!
//! Sizes up to a page come from size classes carved out of 64 KiB chunks
//! and recycled through per-class free lists; anything larger is a mapping
//! of its own. Never shares memory with the application's malloc.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spin::mutex::SpinMutex;

use crate::os::sys;

/// Multiples of 16 up to 128 bytes, then four classes per doubling
/// (160, 192, 224, 256, 320, ...) up to a page. Power-of-two classes
/// wasted a quarter of what the translator's records hold (a cold
/// python3 -c pass: its 38,000 112-byte fragments took 128 bytes each,
/// B-tree nodes of 192 and 288 bytes took 256 and 512).
const GRANULE: usize = 16;
const FINE_UP_TO: usize = 128;
const MAX_SMALL: usize = 4096;
const CLASSES: usize = FINE_UP_TO / GRANULE + 4 * (MAX_SMALL / FINE_UP_TO).trailing_zeros() as usize;
const CHUNK: usize = 64 * 1024;

struct Pools {
    free: [*mut u8; CLASSES],
    /// Each class carves its own chunks: blocks of one size packed back to
    /// back with no gaps between them.
    bump: [*mut u8; CLASSES],
    bump_end: [*mut u8; CLASSES],
}

// SAFETY: the raw pointers are only touched under the mutex, or by a
// process's only thread (`RuntimeAllocator::with_pools`).
unsafe impl Send for Pools {}

impl Pools {
    /// A block of `class` (of `size` bytes): the last one freed, else the
    /// next of the class's chunk (a new chunk when it is used up).
    fn take(&mut self, class: usize, size: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block stores the next free block in its first word.
            let next = unsafe { *(head as *mut *mut u8) };
            self.free[class] = next;
            // Blocks freed long ago (a batch of AOT's records) are out of
            // the caches: reading the next one's link missed on every pop
            // (8% of an AOT of cc1). Fetch it now, for the next pop.
            // SAFETY: a prefetch never faults, whatever the address.
            unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(next as *const i8) };
            return head;
        }
        // Chunks are page-aligned and hold whole blocks of one size class
        // back to back (see `class_of` for their alignment).
        let mut start = self.bump[class];
        if start.is_null() || start.wrapping_add(size) > self.bump_end[class] {
            let Some(chunk) = sys::map_anonymous(CHUNK as u64) else {
                return ptr::null_mut();
            };
            mapped(CHUNK);
            self.bump_end[class] = chunk.wrapping_add(CHUNK);
            start = chunk;
        }
        self.bump[class] = start.wrapping_add(size);
        start
    }
}

pub(crate) struct RuntimeAllocator {
    pools: SpinMutex<Pools>,
}

impl RuntimeAllocator {
    pub(crate) const fn new() -> Self {
        RuntimeAllocator {
            pools: SpinMutex::new(Pools {
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

    /// Runs `f` on the pools: under their lock when the process has
    /// other threads, else without it ([`crate::thread::alone`]). A
    /// signal handler that allocated while its thread was in here would
    /// have spun on the lock forever before: none does.
    fn with_pools<R>(&self, f: impl FnOnce(&mut Pools) -> R) -> R {
        if crate::thread::alone() {
            // SAFETY: the only thread of the process, in no other call of
            // the allocator (see above), is the pools' only user.
            f(unsafe { &mut *self.pools.as_mut_ptr() })
        } else {
            f(&mut self.pools.lock())
        }
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

/// The size class of `layout`, if it is small. A block lies at a multiple
/// of its class's size from a page-aligned chunk, so it is aligned to the
/// largest power of two dividing that size (16 at least): a layout asking
/// more alignment than 16 takes a power-of-two class.
fn class_of(layout: &Layout) -> Option<usize> {
    let mut size = layout.size().max(1);
    if layout.align() > GRANULE {
        size = size.max(layout.align()).next_power_of_two();
    }
    if size <= FINE_UP_TO {
        return Some(size.div_ceil(GRANULE) - 1);
    }
    if size > MAX_SMALL {
        return None;
    }
    // size in (2^k, 2^(k+1)]: the classes 2^k + j * 2^(k-2), j = 1..=4.
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let j = (size - (1 << k)).div_ceil(1 << (k - 2));
    Some(FINE_UP_TO / GRANULE + 4 * (k - FINE_UP_TO.trailing_zeros() as usize) + j - 1)
}

/// The block size of `class`.
fn class_size(class: usize) -> usize {
    let fine = FINE_UP_TO / GRANULE;
    if class < fine {
        return (class + 1) * GRANULE;
    }
    let (doubling, j) = ((class - fine) / 4, (class - fine) % 4 + 1);
    let k = FINE_UP_TO.trailing_zeros() as usize + doubling;
    (1 << k) + j * (1 << (k - 2))
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
        let size = class_size(class);
        self.with_pools(|pools| pools.take(class, size))
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

    /// A large block grows by moving its pages (`mremap`), not by copying
    /// them: the lookup table and a file's zones grow to tens of MiB.
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's promise: new_size is valid with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(&layout), class_of(&new_layout)) {
            (Some(old), Some(new)) if old == new => return block,
            (None, None) => {
                let (old_len, new_len) = (sys::page_up(layout.size() as u64), sys::page_up(new_size as u64));
                if old_len == new_len {
                    return block;
                }
                // SAFETY: a large block is a whole mapping of old_len bytes,
                // which the caller gives up.
                if let Some(moved) = unsafe { sys::remap_private(block as u64, old_len, new_len) } {
                    if new_len > old_len {
                        mapped((new_len - old_len) as usize);
                    } else {
                        MAPPED.fetch_sub(old_len - new_len, Relaxed);
                    }
                    return moved as *mut u8;
                }
            }
            _ => {}
        }
        // SAFETY: the caller's promises, passed on; the copy covers what
        // both blocks hold.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                ptr::copy_nonoverlapping(block, new, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            new
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_of(&layout) {
            Some(class) => self.with_pools(|pools| {
                // SAFETY: the block is ours again and at least a word long.
                unsafe { *(block as *mut *mut u8) = pools.free[class] };
                pools.free[class] = block;
            }),
            None => {
                let len = sys::page_up(layout.size() as u64);
                // SAFETY: large blocks are whole mappings of this size.
                let _ = unsafe { sys::munmap(block as u64, len) };
                MAPPED.fetch_sub(len, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: *mut u8, len: usize) {
        // SAFETY: the test's own block of at least `len` bytes.
        (0..len).for_each(|i| unsafe { *p.add(i) = (i % 251) as u8 });
    }

    fn holds_fill(p: *const u8, len: usize) -> bool {
        // SAFETY: as for fill.
        (0..len).all(|i| unsafe { *p.add(i) } == (i % 251) as u8)
    }

    #[test]
    fn every_small_layout_gets_the_smallest_class_that_holds_and_aligns_it() {
        let sizes: Vec<usize> = (0..CLASSES).map(class_size).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        assert_eq!((sizes[0], sizes[7], sizes[8], sizes[CLASSES - 1]), (16, 128, 160, 4096));
        for align in (0..=12).map(|s| 1usize << s) {
            for size in 1..=MAX_SMALL {
                let layout = Layout::from_size_align(size, align).unwrap();
                let Some(class) = class_of(&layout) else {
                    panic!("size {size} align {align}: no class");
                };
                let got = class_size(class);
                // Blocks lie at multiples of their size from a page.
                assert!(got >= size && got % align == 0, "size {size} align {align}: class of {got}");
                if align <= GRANULE {
                    assert!(class == 0 || class_size(class - 1) < size, "size {size}: {got} is not the smallest");
                    // At most a quarter more than asked, past the first granule.
                    assert!(got <= size.max(GRANULE) * 5 / 4 + GRANULE, "size {size}: {got}");
                }
            }
        }
        assert_eq!(class_of(&Layout::from_size_align(MAX_SMALL + 1, 8).unwrap()), None);
        assert_eq!(class_of(&Layout::from_size_align(64, 8192).unwrap()), None);
    }

    #[test]
    fn blocks_keep_their_bytes_when_they_grow_and_shrink() {
        let heap = RuntimeAllocator::new();
        let layout = |size| Layout::from_size_align(size, 8).unwrap();
        // SAFETY: every block is used within its current size and given
        // back with the layout it has.
        unsafe {
            // A size class to a large block: copied.
            let p = heap.alloc(layout(1000));
            fill(p, 1000);
            let p = heap.realloc(p, layout(1000), 3 * 4096 + 5);
            assert!(holds_fill(p, 1000));
            fill(p, 3 * 4096 + 5);
            // A large block to a larger one: its pages moved.
            let big = 64 << 20;
            let q = heap.realloc(p, layout(3 * 4096 + 5), big);
            assert!(!q.is_null() && holds_fill(q, 3 * 4096 + 5));
            *q.add(big - 1) = 7;
            // Shrunk in place, then back to a size class.
            let r = heap.realloc(q, layout(big), 5 * 4096);
            assert_eq!(r, q);
            assert!(holds_fill(r, 3 * 4096 + 5));
            let s = heap.realloc(r, layout(5 * 4096), 100);
            assert!(holds_fill(s, 100));
            // The same class: the same block.
            assert_eq!(heap.realloc(s, layout(100), 110), s);
            heap.dealloc(s, layout(110));
        }
    }
}
