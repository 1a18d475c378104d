//! Where an ELF file's functions are, for translating a module ahead of
//! time: its symbol tables (`.symtab`, and `.dynsym`, which stripping
//! keeps) and its unwind table (`.eh_frame_hdr`'s sorted list of the
//! functions with unwind information, which stripped binaries keep too;
//! a function there ends where the next begins); and other code entries
//! its sections name: PLT stubs, initialisers and finalisers, and the
//! targets of relative relocations (function pointer tables, vtables).
//! They are read from the file, and every offset is checked: a file that
//! lies yields fewer functions or none, never a fault.

use alloc::vec::Vec;

use crate::os::loader::{u16_at, u32_at, u64_at, EHDR_SIZE, PT_LOAD};
use crate::os::startup_args::CStr;

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const SHT_INIT_ARRAY: u32 = 14;
const SHT_FINI_ARRAY: u32 = 15;
const SHT_PREINIT_ARRAY: u32 = 16;
const SHF_EXECINSTR: u64 = 4;
const DT_INIT: u64 = 12;
const DT_FINI: u64 = 13;
const R_X86_64_RELATIVE: u64 = 8;
const RELA_SIZE: usize = 24;
const DYN_SIZE: usize = 16;
/// A PLT stub's size when the section does not say (`.plt`, `.plt.sec`).
const PLT_ENTRY: u64 = 16;
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
    /// Code entries besides functions (link-time addresses), with what
    /// names them.
    pub(crate) entries: Vec<(Entry, u64)>,
    /// The lowest PT_LOAD address: the module's base maps its page.
    pub(crate) first_vaddr: u64,
}

impl Entry {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Entry::Plt => "PLT",
            Entry::InitFini => "init/fini",
            Entry::Relocated => "relocated pointer",
        }
    }
}

/// Where a code entry that is not a function symbol comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A stub of `.plt`, `.plt.sec` or `.plt.got`.
    Plt,
    /// `DT_INIT`, `DT_FINI`, an element of an init, fini or preinit array.
    InitFini,
    /// The target of an `R_X86_64_RELATIVE` relocation.
    Relocated,
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
    let entries = code_entries(file, shdrs);
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
    Some(Functions { ranges, entries, first_vaddr })
}

/// The code entries the sections `shdrs` of `file` name besides function
/// symbols.
fn code_entries(file: &[u8], shdrs: &[u8]) -> Vec<(Entry, u64)> {
    let names = shdrs
        .chunks_exact(SHDR_SIZE)
        .nth(u16_at(file, 62) as usize)
        .and_then(|sh| at(file, u64_at(sh, 24), u64_at(sh, 32)))
        .unwrap_or(&[]);
    let name = |sh: &[u8]| names.get(u32_at(sh, 0) as usize..).map(|n| n.split(|&b| b == 0).next().unwrap_or(n));
    let mut out = Vec::new();
    for sh in shdrs.chunks_exact(SHDR_SIZE) {
        let (kind, flags, addr, size, entsize) = (u32_at(sh, 4), u64_at(sh, 8), u64_at(sh, 16), u64_at(sh, 32), u64_at(sh, 56));
        let words = || at(file, u64_at(sh, 24), size).unwrap_or(&[]).chunks_exact(8).map(|w| u64_at(w, 0));
        match kind {
            SHT_PROGBITS if flags & SHF_EXECINSTR != 0 && name(sh).is_some_and(|n| n.starts_with(b".plt")) => {
                let step = if (8..=PLT_ENTRY).contains(&entsize) { entsize } else { PLT_ENTRY };
                out.extend((0..size / step).map(|i| (Entry::Plt, addr + i * step)));
            }
            SHT_INIT_ARRAY | SHT_FINI_ARRAY | SHT_PREINIT_ARRAY => out.extend(words().map(|pc| (Entry::InitFini, pc))),
            SHT_DYNAMIC => {
                let Some(table) = at(file, u64_at(sh, 24), size) else { continue };
                let named = table.chunks_exact(DYN_SIZE).filter(|d| matches!(u64_at(d, 0), DT_INIT | DT_FINI));
                out.extend(named.map(|d| (Entry::InitFini, u64_at(d, 8))));
            }
            SHT_RELA if entsize == RELA_SIZE as u64 => {
                let Some(table) = at(file, u64_at(sh, 24), size) else { continue };
                let relative = table.chunks_exact(RELA_SIZE).filter(|r| u64_at(r, 8) & 0xffff_ffff == R_X86_64_RELATIVE);
                out.extend(relative.map(|r| (Entry::Relocated, u64_at(r, 16))));
            }
            _ => {}
        }
    }
    out
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
