//! Where an ELF file's functions are, for translating a module ahead of
//! time: its symbol tables (`.symtab`, and `.dynsym`, which stripping
//! keeps) and its unwind table (`.eh_frame_hdr`'s sorted list of the
//! functions with unwind information, which stripped binaries keep too;
//! a function there ends where the next begins). They are read from the
//! file, and every offset is checked: a file that lies yields fewer
//! functions or none, never a fault.

use alloc::vec::Vec;

use crate::os::loader::{u16_at, u32_at, u64_at, EHDR_SIZE, PT_LOAD};
use crate::os::startup_args::CStr;

const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
const PHDR_SIZE: usize = 56;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
/// `.eh_frame_hdr` encodings read: udata4 counts, and a table of
/// (function, FDE) pairs as sdata4 offsets from the header's start.
const DW_EH_PE_UDATA4: u8 = 0x03;
const DW_EH_PE_DATAREL_SDATA4: u8 = 0x3b;

pub(crate) struct Functions {
    /// (link-time address, size) of every defined function symbol.
    pub(crate) ranges: Vec<(u64, u64)>,
    /// The lowest PT_LOAD address: the module's base maps its page.
    pub(crate) first_vaddr: u64,
}

/// The functions of the ELF file at `path`, if it is one.
pub(crate) fn functions(path: &CStr) -> Option<Functions> {
    crate::os::mapped_file::read_mapped(path, u64::MAX, |file| if file.len() < EHDR_SIZE { None } else { parse(file) })?
}

/// `len` bytes at `off` of `file`, if they are all there.
fn at(file: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let end = off.checked_add(len)?;
    file.get(usize::try_from(off).ok()?..usize::try_from(end).ok()?)
}

fn parse(file: &[u8]) -> Option<Functions> {
    if &file[..4] != b"\x7fELF" || file[4] != 2 || file[5] != 1 {
        return None;
    }
    let (phoff, phnum) = (u64_at(file, 32), u16_at(file, 56) as u64);
    let (shoff, shnum) = (u64_at(file, 40), u16_at(file, 60) as u64);
    if u16_at(file, 54) as usize != PHDR_SIZE || (shnum != 0 && u16_at(file, 58) as usize != SHDR_SIZE) {
        return None;
    }
    let phdrs = at(file, phoff, phnum * PHDR_SIZE as u64)?;
    let first_vaddr = phdrs.chunks_exact(PHDR_SIZE).filter(|p| u32_at(p, 0) == PT_LOAD).map(|p| u64_at(p, 16)).min()?;
    let mut ranges = Vec::new();
    if let Some(p) = phdrs.chunks_exact(PHDR_SIZE).find(|p| u32_at(p, 0) == PT_GNU_EH_FRAME) {
        unwind_table(file, u64_at(p, 8), u64_at(p, 16), u64_at(p, 32), &mut ranges);
    }
    let shdrs = at(file, shoff, shnum * SHDR_SIZE as u64).unwrap_or(&[]);
    for sh in shdrs.chunks_exact(SHDR_SIZE) {
        let kind = u32_at(sh, 4);
        if (kind != SHT_SYMTAB && kind != SHT_DYNSYM) || u64_at(sh, 56) != SYM_SIZE as u64 {
            continue;
        }
        let Some(symbols) = at(file, u64_at(sh, 24), u64_at(sh, 32)) else { continue };
        for sym in symbols.chunks_exact(SYM_SIZE) {
            let (info, section, value, size) = (sym[4], u16_at(sym, 6), u64_at(sym, 8), u64_at(sym, 16));
            if info & 0xf == STT_FUNC && section != 0 && value != 0 {
                ranges.push((value, size));
            }
        }
    }
    ranges.sort_unstable();
    // A symbol's size wins over an unwind table entry's guess at one.
    ranges.dedup_by(|later, first| {
        let same = later.0 == first.0;
        if same {
            first.1 = first.1.max(later.1);
        }
        same
    });
    Some(Functions { ranges, first_vaddr })
}

/// The functions `.eh_frame_hdr` lists (at file offset `off`, link-time
/// address `vaddr`, `len` bytes), each up to the next.
fn unwind_table(file: &[u8], off: u64, vaddr: u64, len: u64, out: &mut Vec<(u64, u64)>) {
    let Some(hdr) = at(file, off, len) else { return };
    if hdr.len() < 12 || hdr[0] != 1 || hdr[2] != DW_EH_PE_UDATA4 || hdr[3] != DW_EH_PE_DATAREL_SDATA4 {
        return;
    }
    // The .eh_frame pointer is 4 bytes in every encoding used with these.
    // A count past the table's end: the entries that are there.
    let count = u32_at(hdr, 8) as usize;
    let table = &hdr[12..];
    let table = &table[..count.saturating_mul(8).min(table.len())];
    let starts: Vec<u64> = table.chunks_exact(8).map(|e| vaddr.wrapping_add(u32_at(e, 0) as i32 as i64 as u64)).collect();
    for (i, &start) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(start + 1);
        out.push((start, next.saturating_sub(start).max(1)));
    }
}
