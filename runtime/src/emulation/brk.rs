//! The application's program break. The kernel placed the real break after
//! the runtime's image; the application gets its own, after its own image
//! as natively, managed here with anonymous mappings.

use spin::Mutex;

use crate::os::sys::{self, page_up};

pub(crate) struct Break {
    start: u64,
    current: u64,
}

pub(crate) static BREAK: Mutex<Break> = Mutex::new(Break { start: 0, current: 0 });

/// The kernel randomises the break start within 32 MiB (`arch_randomize_brk`).
const RANDOM_RANGE_PAGES: u64 = 0x200_0000 / sys::PAGE_SIZE;

/// Places the break as the kernel does: after the program, or, for a
/// position-independent program without an interpreter (static-pie), at
/// `ELF_ET_DYN_BASE`, out of the mmap area it was loaded in; randomised
/// within 32 MiB unless randomisation is off.
pub(crate) fn init(program: &crate::os::loader::Image) {
    let base = if program.is_pie && program.interp.is_none() {
        crate::os::loader::ELF_ET_DYN_BASE
    } else {
        program.end
    };
    let mut start = page_up(base);
    if sys::personality() & sys::ADDR_NO_RANDOMIZE == 0 {
        let mut r = [0u8; 8];
        sys::getrandom(&mut r);
        start += (u64::from_le_bytes(r) % RANDOM_RANGE_PAGES) * sys::PAGE_SIZE;
    }
    *BREAK.lock() = Break { start, current: start };
}

/// The `brk` system call: returns the new break, or the old one on failure.
pub(crate) fn brk(request: u64) -> u64 {
    let mut b = BREAK.lock();
    if request < b.start {
        return b.current;
    }
    let (old_end, new_end) = (page_up(b.current), page_up(request));
    if new_end > old_end {
        // SAFETY: MAP_FIXED_NOREPLACE only takes free address space.
        let r = unsafe {
            sys::mmap(
                old_end,
                new_end - old_end,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if r.is_err() {
            return b.current;
        }
    } else if new_end < old_end {
        // SAFETY: the pages above the new break belong to the old heap.
        let _ = unsafe { sys::munmap(new_end, old_end - new_end) };
    }
    b.current = request;
    request
}
