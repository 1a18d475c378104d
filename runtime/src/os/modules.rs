//! The module list: every executable file mapping of the application (the
//! program, its interpreter, shared libraries, the vDSO), with its path,
//! address range and file identity, and a blake3 content hash computed on
//! demand and memoised by identity. Persistence keys on this list.

use alloc::vec::Vec;
use core::fmt::Write;

use spin::Mutex;

use crate::log::StderrLine;
use crate::os::startup_args::CStr;
use crate::os::sys::{self, AsRawFd};

/// What identifies a file's contents without reading them (the order cache
/// files record it in is `persist`'s).
pub(crate) use persist::file_identity::FileIdentity;

/// The identity of the open file `fd`.
pub(crate) fn identity_of(fd: impl sys::AsFd) -> Option<FileIdentity> {
    sys::fstat(fd).ok().map(|st| identity_of_stat(&st))
}

pub(crate) fn identity_of_stat(st: &sys::Stat) -> FileIdentity {
    FileIdentity { dev: st.dev, ino: st.ino, size: st.size, mtime_ns: st.mtime_ns, ctime_ns: st.ctime_ns }
}

pub(crate) struct Module {
    pub(crate) path: CStr,
    /// Address of the image's lowest page (its first PT_LOAD): the same
    /// for every mapping of the image (`image_base.rs`). Module offsets,
    /// persisted ones included, are from here.
    pub(crate) base: u64,
    /// One past the highest executable byte mapped.
    pub(crate) end: u64,
    /// The executable mappings `[lo, hi)`. Only code in them is the
    /// module's: an image with several executable segments has its data,
    /// and holes where other mappings may land, between them.
    pub(crate) ranges: Vec<(u64, u64)>,
    /// None for what has no file (the vDSO has one made from its bytes:
    /// `persist::vdso`).
    pub(crate) identity: Option<FileIdentity>,
    /// The program itself (the first module recorded).
    pub(crate) is_main: bool,
}

pub(crate) static MODULES: Mutex<Vec<Module>> = Mutex::new(Vec::new());
/// Content hashes already computed, by file identity.
pub(crate) static HASHES: Mutex<Vec<(FileIdentity, [u8; 32])>> = Mutex::new(Vec::new());

fn log_event(what: &str, path: &CStr, base: u64) {
    if !crate::options::get().verbose {
        return;
    }
    let mut line = StderrLine::new();
    let _ = writeln!(line, "dbirun: module {what}: {path} at {base:#x}");
    line.flush();
}

impl Module {
    pub(crate) fn contains(&self, pc: u64) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..hi).contains(&pc))
    }

    /// One past the end of the executable mapping holding `pc`.
    pub(crate) fn code_end(&self, pc: u64) -> Option<u64> {
        self.ranges.iter().find(|&&(lo, hi)| (lo..hi).contains(&pc)).map(|&(_, hi)| hi)
    }
}

/// Removes `[lo, hi)` from `ranges`.
fn cut(ranges: &mut Vec<(u64, u64)>, lo: u64, hi: u64) {
    let mut kept = Vec::with_capacity(ranges.len() + 1);
    for &(a, b) in ranges.iter() {
        if b <= lo || hi <= a {
            kept.push((a, b));
            continue;
        }
        if a < lo {
            kept.push((a, lo));
        }
        if hi < b {
            kept.push((hi, b));
        }
    }
    *ranges = kept;
}

/// Records an executable mapping `[lo, hi)` of the image of the file
/// `path` based at `base`. Mappings of one image (its executable
/// segments, mapped one by one) join one module.
pub(crate) fn note_mapping(path: CStr, identity: Option<FileIdentity>, base: u64, lo: u64, hi: u64) {
    let mut modules = MODULES.lock();
    // What was mapped there before is gone (MAP_FIXED replaces it).
    for m in modules.iter_mut() {
        cut(&mut m.ranges, lo, hi);
    }
    drop_empty(&mut modules);
    if let Some(m) = modules.iter_mut().find(|m| m.base == base && m.identity == identity) {
        m.ranges.push((lo, hi));
        m.end = m.end.max(hi);
        return;
    }
    log_event("loaded", &path, base);
    let is_main = modules.is_empty();
    modules.push(Module { path, base, end: hi.max(lo), ranges: alloc::vec![(lo, hi)], identity, is_main });
}

fn drop_empty(modules: &mut Vec<Module>) {
    modules.retain(|m| {
        if m.ranges.is_empty() {
            log_event("unloaded", &m.path, m.base);
        }
        !m.ranges.is_empty()
    });
}

/// An executable mapping of the file open as `fd` was made at `addr`.
/// `fd` is the app's (the kernel reads the low 32 bits of the register).
pub(crate) fn note_file_mapping(fd: i32, addr: u64, len: u64, offset: u64) {
    let Some(fd) = sys::borrow(fd) else { return };
    let Some(path) = crate::os::fd_path::real_path(fd) else { return };
    let base = crate::os::image_base::image_base(fd, addr, offset).unwrap_or(addr.wrapping_sub(offset));
    note_mapping(path, identity_of(fd), base, addr, addr + sys::page_up(len));
}

/// `[lo, hi)` was unmapped, or mapped over by something not executable:
/// it holds no module's code any more, and modules left with none are
/// gone.
pub(crate) fn note_unmap(lo: u64, hi: u64) {
    let mut modules = MODULES.lock();
    for m in modules.iter_mut() {
        cut(&mut m.ranges, lo, hi);
    }
    drop_empty(&mut modules);
}

/// Runs `f` on the module whose code contains `pc` (None if no module's
/// does).
pub(crate) fn with_module<R>(pc: u64, f: impl FnOnce(Option<&Module>) -> R) -> R {
    let modules = MODULES.lock();
    f(modules.iter().find(|m| m.contains(pc)))
}

/// The blake3 hash of the file with `identity` at `path`, computed once per
/// identity (hashing libc on every lookup would cost more than it saves).
/// Persisted-cache keys are built from it.
pub(crate) fn content_hash(path: &CStr, identity: FileIdentity) -> Option<[u8; 32]> {
    if let Some(&(_, h)) = HASHES.lock().iter().find(|(id, _)| *id == identity) {
        return Some(h);
    }
    let fd = sys::open_read(path.as_bytes_with_nul()).ok()?;
    let same_file = identity_of(&fd) == Some(identity);
    let mut hasher = blake3::Hasher::new();
    let len = identity.size;
    crate::stats::add(&crate::stats::STATS.modules_hashed, u64::from(same_file));
    if same_file && len > 0 {
        // SAFETY: a fresh private read-only mapping of the whole file.
        if let Ok(map) = unsafe { sys::mmap(0, len, sys::PROT_READ, sys::MAP_PRIVATE, fd.as_raw_fd() as i64, 0) } {
            // SAFETY: the mapping is len bytes long and read-only.
            hasher.update(unsafe { core::slice::from_raw_parts(map as *const u8, len as usize) });
            // SAFETY: our own mapping.
            let _ = unsafe { sys::munmap(map, len) };
        }
    }
    drop(fd);
    if !same_file {
        return None;
    }
    let hash = *hasher.finalize().as_bytes();
    HASHES.lock().push((identity, hash));
    Some(hash)
}
