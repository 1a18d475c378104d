//! The front's allocator: bump allocation in anonymous mappings, never
//! freed (the process lives for a few system calls and ends in an exec,
//! which drops its memory whole).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

/// Mapped at a time, unless one allocation needs more.
const CHUNK: usize = 256 * 1024;

struct Bump {
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: the front is one thread from its first instruction to its exec.
unsafe impl Sync for Bump {}

#[global_allocator]
static HEAP: Bump = Bump { next: Cell::new(0), end: Cell::new(0) };

impl Bump {
    fn map(len: usize) -> Option<usize> {
        // SAFETY: a fresh private mapping, aliasing nothing.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE,
            )
        };
        p.ok().map(|p| p as usize)
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let mut start = (self.next.get() + align - 1) & !(align - 1);
        if self.next.get() == 0 || start + layout.size() > self.end.get() {
            let len = (layout.size() + align).max(CHUNK).next_multiple_of(4096);
            let Some(base) = Bump::map(len) else { return core::ptr::null_mut() };
            self.end.set(base + len);
            start = (base + align - 1) & !(align - 1);
        }
        self.next.set(start + layout.size());
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}
