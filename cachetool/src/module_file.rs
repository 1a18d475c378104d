//! The module a cache file was made from: its file identity (what the
//! runtime compares before trusting a recorded content hash), its content
//! hash, and where a module offset lies in the file (ELF program headers).

use std::collections::HashMap;
use std::path::Path;

/// dev, inode, size, mtime ns, ctime ns, as cache files record them
/// (`persist::file_identity`).
pub use persist::file_identity::FileIdentity as Identity;

/// blake3 of a file's contents, in hex.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(crate::hex(h.finalize().as_bytes()))
}

/// A module file as it is now.
#[derive(Clone, Debug)]
pub struct Current {
    pub identity: Identity,
    /// Computed when first needed.
    pub hash: Option<String>,
}

/// The modules on disk, each looked at (and hashed) at most once.
#[derive(Default)]
pub struct Modules {
    seen: HashMap<String, Option<Current>>,
    /// Hashes known for an identity (from the index), to avoid rehashing.
    known: HashMap<(String, Identity), String>,
}

impl Modules {
    /// Teaches the cache a hash recorded earlier for `path` at `identity`.
    pub fn remember(&mut self, path: &str, identity: Identity, hash: String) {
        self.known.insert((path.to_string(), identity), hash);
    }

    /// The module at `path` now (None: it does not exist). The vDSO's is
    /// this machine's: this process's own.
    pub fn current(&mut self, path: &str) -> Option<&mut Current> {
        self.seen
            .entry(path.to_string())
            .or_insert_with(|| {
                if path == persist::vdso::PATH {
                    return this_vdso();
                }
                std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| Current { identity: Identity::of(&m), hash: None })
            })
            .as_mut()
    }

    /// The content hash of the module at `path` now.
    pub fn hash(&mut self, path: &str) -> Option<String> {
        let known = self.current(path).map(|c| c.identity).and_then(|id| self.known.get(&(path.to_string(), id)).cloned());
        let cur = self.current(path)?;
        if cur.hash.is_none() {
            cur.hash = known.or_else(|| content_hash(Path::new(path)).ok());
        }
        cur.hash.clone()
    }

    /// Whether a file made from `path` when it had `identity` and content
    /// `hash` still matches the module: as the runtime decides, the same
    /// identity means the same content, else the contents are compared.
    /// None when the module is gone.
    pub fn matches(&mut self, path: &str, identity: [u64; 5], hash: &str) -> Option<bool> {
        let cur = self.current(path)?;
        if cur.identity.to_array() == identity {
            return Some(true);
        }
        Some(self.hash(path).is_some_and(|h| h == hash))
    }
}

/// This process's vDSO (the kernel maps the same image into every
/// process), identified as the runtime identifies the app's.
fn this_vdso() -> Option<Current> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let range = maps.lines().find(|l| l.ends_with(persist::vdso::PATH))?.split_whitespace().next()?;
    let (lo, hi) = range.split_once('-')?;
    let (lo, hi) = (u64::from_str_radix(lo, 16).ok()?, u64::from_str_radix(hi, 16).ok()?);
    // SAFETY: the vDSO is mapped readable for the life of the process,
    // `hi - lo` bytes from `lo`.
    let image = unsafe { std::slice::from_raw_parts(lo as *const u8, hi.checked_sub(lo)? as usize) };
    let (identity, hash) = persist::vdso::identity_and_hash(image);
    Some(Current { identity, hash: Some(crate::hex(&hash)) })
}

/// Whether the ELF file at `path` is a shared library (position-
/// independent with a `DT_SONAME`), as opposed to a program.
pub fn is_library(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    goblin::elf::Elf::parse(&bytes).is_ok_and(|elf| elf.header.e_type == goblin::elf::header::ET_DYN && elf.soname.is_some())
}

/// Where the byte at `module_offset` (from the module's load base: the
/// address of the file's first byte) is in an ELF file, by its program
/// headers; None if no loaded segment holds it or the file is not ELF.
pub fn file_offset(elf_bytes: &[u8], module_offset: u64) -> Option<u64> {
    let elf = goblin::elf::Elf::parse(elf_bytes).ok()?;
    let loads: Vec<_> = elf.program_headers.iter().filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD).collect();
    let first = loads.iter().min_by_key(|p| p.p_vaddr)?;
    // The file's first byte is mapped where the first segment's page starts
    // less that segment's file offset.
    let base = first.p_vaddr.checked_sub(first.p_offset)?;
    let vaddr = base.checked_add(module_offset)?;
    loads
        .iter()
        .find(|p| vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz)
        .map(|p| vaddr - p.p_vaddr + p.p_offset)
}

impl Modules {
    /// The modules hashed so far: path, identity, content hash.
    pub fn computed(&self) -> Vec<(String, Identity, String)> {
        self.seen
            .iter()
            .filter_map(|(p, c)| c.as_ref().and_then(|c| Some((p.clone(), c.identity, c.hash.clone()?))))
            .collect()
    }
}
