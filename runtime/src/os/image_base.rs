//! Where the ELF image a file mapping belongs to starts. The module list
//! keys a module on its base, and persisted code addresses the module
//! relative to it, so every mapping of one image must give the same base,
//! whatever the image's segment layout.
//!
//! `addr - offset` is that base only when a segment's virtual address
//! equals its file offset. Linkers do not promise it: an executable
//! segment that follows the writable ones 2 MiB-aligned (the hot/cold
//! text layout of rustc's libraries, or any `-z separate-code` image
//! with text placed after `.data`) has `p_vaddr - p_offset` differing from
//! the first segment's. So the program headers are read, the mapping's
//! segment found, and the base taken from it: the address of the image's
//! lowest PT_LOAD page, which is also what `loader.rs` reports as `start`.

use alloc::vec;

use crate::os::sys::{self, page_down};

// The ELF layout is the loader's.
use crate::os::loader::{u16_at, u32_at, u64_at, EHDR_SIZE, MAX_PHNUM, PF_X, PHDR_SIZE, PT_LOAD};

/// Exactly `buf.len()` bytes of `fd` at `off`, or false.
fn read_exact(fd: sys::BorrowedFd<'_>, buf: &mut [u8], off: u64) -> bool {
    sys::pread_full(fd, buf, off) == buf.len()
}

/// The base of the image of the file open as `fd`, one of whose pages at
/// file offset `offset` (page-aligned, as mmap requires) is mapped at
/// `addr` executable. None if the file is not a 64-bit ELF file or no
/// PT_LOAD holds that offset (the caller then has nothing better than
/// `addr - offset`).
pub(crate) fn image_base(fd: sys::BorrowedFd<'_>, addr: u64, offset: u64) -> Option<u64> {
    let mut ehdr = [0u8; EHDR_SIZE];
    if !read_exact(fd, &mut ehdr, 0) || &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 {
        return None;
    }
    let phoff = u64_at(&ehdr, 32);
    let phnum = u16_at(&ehdr, 56) as usize;
    if u16_at(&ehdr, 54) as usize != PHDR_SIZE || phnum == 0 || phnum > MAX_PHNUM {
        return None;
    }
    let mut table = vec![0u8; phnum * PHDR_SIZE];
    if !read_exact(fd, &mut table, phoff) {
        return None;
    }
    let loads = table.chunks_exact(PHDR_SIZE).filter(|ph| u32_at(ph, 0) == PT_LOAD);
    let lowest = loads.clone().map(|ph| page_down(u64_at(ph, 16))).min()?;
    // The segment this mapping is of. The page at a segment's start often
    // also holds the end of the previous one (segments are packed in the
    // file), so an executable segment starting at exactly this page wins,
    // then any executable one holding it, then any at all.
    let (_, vaddr, seg_offset) = loads
        .filter_map(|ph| {
            let (flags, p_offset, p_vaddr, filesz) = (u32_at(ph, 4), u64_at(ph, 8), u64_at(ph, 16), u64_at(ph, 32));
            let holds = page_down(p_offset) <= offset && offset < p_offset.checked_add(filesz)?;
            let rank = (flags & PF_X != 0) as u8 * 2 + (page_down(p_offset) == offset) as u8;
            holds.then_some((rank, p_vaddr, p_offset))
        })
        .max_by_key(|&(rank, _, _)| rank)?;
    // p_vaddr and p_offset are congruent modulo the page size, so the
    // byte at `offset` has link-time address `offset + vaddr - seg_offset`.
    let bias = addr.wrapping_sub(offset).wrapping_sub(vaddr.wrapping_sub(seg_offset));
    Some(bias.wrapping_add(lowest))
}
