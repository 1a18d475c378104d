//! Loading ELF images into memory the way the kernel's `binfmt_elf` does:
//! the application itself, and its program interpreter (`ld.so`) when it has
//! one. Also resolves `#!` scripts to the interpreter that runs them.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::os::startup_args::CStr;
use crate::os::sys::{self, page_down, page_up, AsRawFd};

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
pub(crate) const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
pub(crate) const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
pub(crate) const EHDR_SIZE: usize = 64;
pub(crate) const PHDR_SIZE: usize = 56;
/// The most program headers an image may have.
pub(crate) const MAX_PHNUM: usize = 512;

/// The kernel's `ELF_ET_DYN_BASE` (two thirds of the address space), and the
/// page PIE programs load at below it.
pub(crate) const ELF_ET_DYN_BASE: u64 = 0x5555_5555_4aaa;
const ET_DYN_BASE: u64 = ELF_ET_DYN_BASE & !(sys::PAGE_SIZE - 1);
/// The kernel randomises that base by up to 2^28 pages (`mmap_rnd_bits`).
const ET_DYN_RANDOM_PAGES: u64 = 1 << 28;

pub(crate) enum LoadError {
    Open(sys::Errno),
    NotElf,
    Elf32,
    WrongMachine,
    WrongType,
    Truncated,
    BadLayout,
    Map(sys::Errno),
    ScriptTooDeep,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open(e) if *e == sys::Errno::NOENT => f.write_str("No such file or directory"),
            LoadError::Open(e) if *e == sys::Errno::ACCESS => f.write_str("Permission denied"),
            LoadError::Open(e) => write!(f, "cannot open (errno {})", e.raw_os_error()),
            LoadError::NotElf => f.write_str("cannot execute binary file: Exec format error"),
            LoadError::Elf32 => f.write_str("unsupported: 32-bit ELF (only x86-64 is supported)"),
            LoadError::WrongMachine => f.write_str("unsupported: not an x86-64 ELF"),
            LoadError::WrongType => f.write_str("unsupported: ELF file is not an executable"),
            LoadError::Truncated => f.write_str("truncated ELF file"),
            LoadError::BadLayout => f.write_str("malformed ELF program headers"),
            LoadError::Map(e) => write!(f, "cannot map ELF segment (errno {})", e.raw_os_error()),
            LoadError::ScriptTooDeep => f.write_str("too many levels of #! interpreters"),
        }
    }
}

/// How an image's load address is chosen.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Placement {
    /// The program itself: position-independent ones near `ELF_ET_DYN_BASE`.
    Program,
    /// The interpreter: wherever the kernel's mmap puts it.
    Interpreter,
}

/// A mapped ELF image.
pub(crate) struct Image {
    /// Difference between run-time and link-time addresses (0 for ET_EXEC).
    pub(crate) bias: u64,
    /// Lowest mapped address.
    pub(crate) start: u64,
    pub(crate) entry: u64,
    pub(crate) phdr: u64,
    pub(crate) phnum: u64,
    /// One past the highest mapped byte: the program break starts after it.
    pub(crate) end: u64,
    /// The executable segments `[lo, hi)`, page-rounded: the module's code.
    pub(crate) code: Vec<(u64, u64)>,
    pub(crate) interp: Option<Vec<u8>>,
    pub(crate) identity: Option<crate::os::modules::FileIdentity>,
    /// The file's canonical path (symlinks resolved), as modules are known.
    pub(crate) real_path: Option<CStr>,
    /// Position-independent (ET_DYN).
    pub(crate) is_pie: bool,
    /// PT_GNU_STACK asks for an executable stack.
    pub(crate) exec_stack: bool,
}

impl Image {
    /// Enters the image in the module list, one executable segment at a
    /// time, as ld.so's mappings of a library are, under its canonical
    /// path (as ld.so's libraries are known, through their fds), whatever
    /// name was typed or linked.
    pub(crate) fn note_as_module(&self, typed: CStr) {
        let path = self.real_path.unwrap_or(typed);
        for &(lo, hi) in &self.code {
            crate::os::modules::note_mapping(path, self.identity, self.start, lo, hi);
        }
    }
}

struct Segment {
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    flags: u32,
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

struct File(sys::OwnedFd);

impl File {
    fn open(path: &CStr) -> Result<File, LoadError> {
        sys::open_read(path.as_bytes_with_nul()).map(File).map_err(LoadError::Open)
    }

    fn raw(&self) -> i64 {
        self.0.as_raw_fd() as i64
    }

    fn size(&self) -> u64 {
        sys::fstat(&self.0).map_or(0, |st| st.size)
    }

    /// Reads up to `len` bytes at `off`; fewer only at end of file.
    fn read_at(&self, off: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        let got = sys::pread_full(&self.0, &mut buf, off);
        buf.truncate(got);
        buf
    }
}

/// Follows `#!` lines as the kernel's `binfmt_script` does: the interpreter
/// becomes the program, with its optional argument and the script's path in
/// front of the script's arguments.
pub(crate) fn resolve_scripts(mut path: CStr, mut argv: Vec<CStr>) -> Result<(CStr, Vec<CStr>), LoadError> {
    for _ in 0..5 {
        let head = File::open(&path)?.read_at(0, 256);
        if !head.starts_with(b"#!") {
            return Ok((path, argv));
        }
        let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let line = &head[2..line_end];
        let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = line.iter().position(|b| !is_blank(b)).unwrap_or(line.len());
        let line = &line[start..];
        let interp_len = line.iter().position(is_blank).unwrap_or(line.len());
        if interp_len == 0 {
            return Err(LoadError::NotElf);
        }
        let interp = CStr::leak(&line[..interp_len]);
        let rest = &line[interp_len..];
        let arg_start = rest.iter().position(|b| !is_blank(b)).unwrap_or(rest.len());
        let arg = rest[arg_start..].trim_ascii_end();
        let mut new_argv = vec![interp];
        if !arg.is_empty() {
            new_argv.push(CStr::leak(arg));
        }
        new_argv.push(path);
        new_argv.extend_from_slice(argv.get(1..).unwrap_or(&[]));
        path = interp;
        argv = new_argv;
    }
    Err(LoadError::ScriptTooDeep)
}

/// What the loader needs from the ELF header and program headers.
struct Headers {
    e_type: u16,
    entry: u64,
    phoff: u64,
    phnum: u64,
    /// PT_PHDR's address, when the file has one.
    phdr_vaddr: Option<u64>,
    segments: Vec<Segment>,
    interp: Option<Vec<u8>>,
    exec_stack: bool,
}

fn parse_headers(file: &File) -> Result<Headers, LoadError> {
    let ehdr = file.read_at(0, EHDR_SIZE);
    if ehdr.len() < 4 || &ehdr[..4] != b"\x7fELF" {
        return Err(if ehdr.len() < 4 && b"\x7fELF".starts_with(&ehdr) && !ehdr.is_empty() {
            LoadError::Truncated
        } else {
            LoadError::NotElf
        });
    }
    if ehdr.len() < 5 {
        return Err(LoadError::Truncated);
    }
    if ehdr[4] == 1 {
        return Err(LoadError::Elf32);
    }
    if ehdr.len() < EHDR_SIZE {
        return Err(LoadError::Truncated);
    }
    if ehdr[4] != 2 || ehdr[5] != 1 || u16_at(&ehdr, 18) != EM_X86_64 {
        return Err(LoadError::WrongMachine);
    }
    let phoff = u64_at(&ehdr, 32);
    let phentsize = u16_at(&ehdr, 54) as usize;
    let phnum = u16_at(&ehdr, 56) as usize;
    if phentsize != PHDR_SIZE || phnum == 0 || phnum > MAX_PHNUM {
        return Err(LoadError::BadLayout);
    }
    let table = file.read_at(phoff, phnum * PHDR_SIZE);
    if table.len() < phnum * PHDR_SIZE {
        return Err(LoadError::Truncated);
    }
    let file_size = file.size();
    let mut segments = Vec::new();
    let mut interp = None;
    let mut phdr_vaddr = None;
    let mut exec_stack = false;
    for ph in table.chunks_exact(PHDR_SIZE) {
        let kind = u32_at(ph, 0);
        let seg = Segment {
            flags: u32_at(ph, 4),
            offset: u64_at(ph, 8),
            vaddr: u64_at(ph, 16),
            filesz: u64_at(ph, 32),
            memsz: u64_at(ph, 40),
        };
        if seg.offset.checked_add(seg.filesz).is_none_or(|end| end > file_size) {
            if kind == PT_LOAD || kind == PT_INTERP {
                return Err(LoadError::Truncated);
            }
            continue;
        }
        match kind {
            PT_LOAD => {
                if seg.memsz < seg.filesz
                    || seg.vaddr % sys::PAGE_SIZE != seg.offset % sys::PAGE_SIZE
                    || seg.vaddr.checked_add(seg.memsz).is_none_or(|e| e > 0x7fff_ffff_f000)
                {
                    return Err(LoadError::BadLayout);
                }
                segments.push(seg);
            }
            PT_INTERP if seg.filesz > 1 && seg.filesz < 4096 => {
                let mut path = file.read_at(seg.offset, seg.filesz as usize);
                while path.last() == Some(&0) {
                    path.pop();
                }
                interp = Some(path);
            }
            PT_PHDR => phdr_vaddr = Some(seg.vaddr),
            // Without the header, x86-64 stacks are not executable.
            PT_GNU_STACK => exec_stack = seg.flags & PF_X != 0,
            _ => {}
        }
    }
    if segments.is_empty() || segments.windows(2).any(|w| w[1].vaddr < w[0].vaddr + w[0].memsz) {
        return Err(LoadError::BadLayout);
    }
    Ok(Headers {
        e_type: u16_at(&ehdr, 16),
        entry: u64_at(&ehdr, 24),
        phoff,
        phnum: phnum as u64,
        phdr_vaddr,
        segments,
        interp,
        exec_stack,
    })
}

fn random_pages(limit: u64) -> u64 {
    if sys::personality() & sys::ADDR_NO_RANDOMIZE != 0 {
        return 0;
    }
    let mut r = [0u8; 8];
    sys::getrandom(&mut r);
    u64::from_le_bytes(r) % limit
}

/// Maps the ELF file at `path` and returns where it landed.
pub(crate) fn load(path: &CStr, placement: Placement) -> Result<Image, LoadError> {
    let file = File::open(path)?;
    let headers = parse_headers(&file)?;
    let (e_type, segments) = (headers.e_type, &headers.segments);
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(LoadError::WrongType);
    }

    let lo = page_down(segments[0].vaddr);
    let hi = page_up(segments.iter().map(|s| s.vaddr + s.memsz).max().unwrap());
    let span = hi - lo;
    // Reserve the whole span first so the segments land together.
    let (hint, fixed) = match (e_type, placement) {
        (ET_EXEC, _) => (lo, sys::MAP_FIXED_NOREPLACE),
        // A position-independent program with an interpreter goes near
        // ELF_ET_DYN_BASE; one without (static-pie, or ld.so run directly)
        // is placed by mmap like an interpreter, as the kernel does.
        (_, Placement::Program) if headers.interp.is_some() => {
            (ET_DYN_BASE + random_pages(ET_DYN_RANDOM_PAGES) * sys::PAGE_SIZE, 0)
        }
        (_, _) => (0, 0),
    };
    // SAFETY: a fresh PROT_NONE reservation; MAP_FIXED_NOREPLACE never clobbers.
    let reserved = unsafe {
        sys::mmap(hint, span, sys::PROT_NONE, sys::MAP_PRIVATE | sys::MAP_ANONYMOUS | fixed, -1, 0)
    }
    .map_err(LoadError::Map)?;
    let bias = reserved.wrapping_sub(lo);
    if e_type == ET_EXEC && bias != 0 {
        // SAFETY: our own reservation.
        let _ = unsafe { sys::munmap(reserved, span) };
        return Err(LoadError::Map(sys::Errno::EXIST));
    }

    let no_exec = crate::options::get().no_native_exec;
    let mut mapped_end = lo.wrapping_add(bias);
    let mut code = Vec::new();
    for seg in segments {
        let mut prot = 0;
        if seg.flags & PF_R != 0 {
            prot |= sys::PROT_READ;
        }
        if seg.flags & PF_W != 0 {
            prot |= sys::PROT_WRITE;
        }
        if seg.flags & PF_X != 0 && !no_exec {
            prot |= sys::PROT_EXEC;
        }
        if seg.flags & PF_X != 0 {
            // The runtime decodes code from these pages.
            prot |= sys::PROT_READ;
        }
        let start = page_down(seg.vaddr) + bias;
        // Unmap the hole between the previous segment and this one, as the
        // kernel leaves it.
        if start > mapped_end {
            // SAFETY: part of our own reservation.
            let _ = unsafe { sys::munmap(mapped_end, start - mapped_end) };
        }
        let file_end = seg.vaddr + seg.filesz + bias;
        let mem_end = page_up(seg.vaddr + seg.memsz + bias);
        if seg.filesz > 0 {
            let len = page_up(file_end) - start;
            // SAFETY: replaces part of our reservation with the file's pages.
            unsafe {
                sys::mmap(start, len, prot | sys::PROT_WRITE * (seg.memsz > seg.filesz) as u64,
                    sys::MAP_PRIVATE | sys::MAP_FIXED, file.raw(), page_down(seg.offset))
            }
            .map_err(LoadError::Map)?;
            if seg.memsz > seg.filesz {
                let tail = page_up(file_end) - file_end;
                // SAFETY: zeroing the bss part of the last file page, mapped
                // writable just above.
                unsafe {
                    core::ptr::write_bytes(file_end as *mut u8, 0, tail as usize);
                    let _ = sys::mprotect(start, len, prot);
                }
            }
        }
        let anon_start = if seg.filesz > 0 { page_up(file_end) } else { start };
        if mem_end > anon_start {
            // SAFETY: replaces part of our reservation with zero pages.
            unsafe {
                sys::mmap(anon_start, mem_end - anon_start, prot,
                    sys::MAP_PRIVATE | sys::MAP_FIXED | sys::MAP_ANONYMOUS, -1, 0)
            }
            .map_err(LoadError::Map)?;
        }
        let app_prot = prot & !sys::PROT_EXEC | if seg.flags & PF_X != 0 { sys::PROT_EXEC } else { 0 };
        crate::os::app_prot::note(start, mem_end - start, Some(app_prot));
        if seg.flags & PF_X != 0 {
            code.push((start, mem_end));
        }
        mapped_end = mapped_end.max(mem_end);
    }

    let phoff = headers.phoff;
    let phdr = headers
        .phdr_vaddr
        .or_else(|| {
            segments
                .iter()
                .find(|s| s.offset <= phoff && phoff < s.offset + s.filesz)
                .map(|s| s.vaddr + (phoff - s.offset))
        })
        .unwrap_or(0);

    Ok(Image {
        bias,
        start: lo.wrapping_add(bias),
        entry: headers.entry.wrapping_add(bias),
        phdr: phdr.wrapping_add(bias),
        phnum: headers.phnum,
        end: mapped_end,
        code,
        is_pie: e_type == ET_DYN,
        exec_stack: headers.exec_stack,
        interp: headers.interp,
        identity: crate::os::modules::identity_of(&file.0),
        real_path: crate::os::fd_path::real_path(&file.0),
    })
}
