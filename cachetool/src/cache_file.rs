//! One `.dpc` file: its name (`<module>-<16 hex>-<16 hex>.dpc`), mapping
//! it (only the pages a check touches are read), what it
//! says ([`Summary`]) and whether this build could use it ([`Status`]).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use persist::header::u32_at;
use persist::{ClientKey, Depth, Reject, Zone, ZoneKind};
use serde::Serialize;

use crate::module_file::Identity;

pub use persist::cache_dir::is_cache_name;

/// The cache file names in `dir`, sorted (other files are not ours to judge).
pub fn names_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if let Some(name) = e.file_name().to_str() {
            if is_cache_name(name) && e.file_type().is_ok_and(|t| t.is_file()) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Bytes built in memory (a file taken from a bundle, a test's copy),
/// starting on a 16-byte boundary as a mapping's do: `persist::validate`
/// needs that alignment.
pub struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl Aligned {
    pub fn zeroed(len: usize) -> Aligned {
        Aligned { words: vec![0u128; len.div_ceil(16)], len }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: words holds at least len initialised bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: words holds at least len bytes, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }

    pub fn from_bytes(bytes: &[u8]) -> Aligned {
        let mut a = Aligned::zeroed(bytes.len());
        a.bytes_mut().copy_from_slice(bytes);
        a
    }
}

/// A cache file mapped read-only: reading it costs only the pages looked
/// at (a structure check reads the header and R zone, not the code), and
/// the mapping is page-aligned, which `persist::validate` needs.
pub struct Mapped {
    /// None for an empty file, which cannot be mapped.
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// The file's bytes (none for an empty file, which the format's checks
    /// then call truncated, as they would any file too short).
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Maps the file at `path`, and gives the identity of the version mapped.
pub fn map(path: &Path) -> std::io::Result<(Mapped, Identity)> {
    map_file(&std::fs::File::open(path)?)
}

/// Maps the open file `f`, to the length its metadata gives, and gives the
/// identity from that same metadata: both are of the one version `f` is.
fn map_file(f: &std::fs::File) -> std::io::Result<(Mapped, Identity)> {
    let meta = f.metadata()?;
    let len = usize::try_from(meta.len()).map_err(std::io::Error::other)?;
    if len == 0 {
        return Ok((Mapped { map: None }, Identity::of(&meta)));
    }
    // SAFETY: a mapping's bytes change under us if the file is written, and
    // touching a page past its end after a truncation raises SIGBUS. Cache
    // files are published whole by renaming a temporary file over the name
    // (by the runtime, and by `import`), and no one writes or truncates a
    // published file in place: a newer version is another inode, and the
    // one we opened keeps its bytes while mapped, even once unlinked. Only
    // someone truncating the file by hand meanwhile could make us fault.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(f)? };
    Ok((Mapped { map: Some(map) }, Identity::of(&meta)))
}

/// The format version a file claims (None if it is too short or not a
/// cache file at all).
pub fn claimed_format(bytes: &[u8]) -> Option<u32> {
    (bytes.len() >= 12 && &bytes[..8] == persist::header::MAGIC).then(|| u32_at(bytes, 8))
}

/// What a client keeps with the file.
#[derive(Clone, Debug, Serialize)]
pub struct ClientInfo {
    pub name: String,
    pub version: u32,
    pub options_hash: String,
    pub ro_bytes: u64,
    pub rw_bytes: u64,
    pub rx_bytes: u64,
    /// Per-block data items it allocated (`Services::alloc_block_data`).
    pub block_data_items: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ZoneInfo {
    pub kind: &'static str,
    pub offset: u64,
    pub size: u64,
    pub protection: &'static str,
}

/// What a file that passed the structure check says about itself.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub format_version: u32,
    pub module_path: String,
    /// dev, inode, size, mtime ns, ctime ns of the module when written.
    pub module_identity: [u64; 5],
    pub module_hash: String,
    pub runtime_version: u32,
    pub tls_layout_hash: String,
    pub options_hash: String,
    pub clients: Vec<ClientInfo>,
    pub zones: Vec<ZoneInfo>,
    pub segments: u64,
    pub blocks: u64,
    /// Of those, translated ahead of time (`-aot`) rather than reached by
    /// a run.
    pub ahead_of_time_blocks: u64,
    /// Of those, entered in the lookup table at load (an indirect branch
    /// reached them in the run that built them).
    pub lookup_targets: u64,
    /// Of those, loops' starts runs counted and never found hot: runs with
    /// traces do not count them.
    pub cold_heads: u64,
    /// Hot paths a run stitched from the blocks, and the blocks they hold.
    pub traces: u64,
    pub trace_blocks: u64,
    pub exits: u64,
    /// Loops' heads the counted exits of a segment count through a stub
    /// of the file rather than through the dispatcher.
    pub counting_stubs: u64,
    pub translation_bytes: u64,
}

impl Summary {
    pub fn of(v: &persist::Validated<'_>) -> Summary {
        let ix = v.index;
        let clients = v
            .key
            .clients
            .iter()
            .enumerate()
            .map(|(i, c): (usize, &ClientKey)| {
                let data = ix.clients.get(i);
                ClientInfo {
                    name: c.name.clone(),
                    version: c.version,
                    options_hash: format!("{:016x}", c.options_hash),
                    ro_bytes: data.map_or(0, |d| d.ro.len() as u64),
                    rw_bytes: data.map_or(0, |d| d.rw_len.to_native() as u64),
                    rx_bytes: data.map_or(0, |d| d.rx_len.to_native() as u64),
                    block_data_items: ix.block_data.iter().filter(|d| d.client.to_native() as usize == i).count() as u64,
                }
            })
            .collect();
        let id = &ix.module.identity;
        Summary {
            format_version: crate::FORMAT_VERSION,
            module_path: ix.module.path.as_str().to_string(),
            module_identity: [id[0].to_native(), id[1].to_native(), id[2].to_native(), id[3].to_native(), id[4].to_native()],
            module_hash: crate::hex(&v.key.module_hash),
            runtime_version: v.key.runtime_version,
            tls_layout_hash: format!("{:016x}", v.key.tls_layout_hash),
            options_hash: format!("{:016x}", v.key.options_hash),
            clients,
            zones: v.zones.iter().map(zone_info).collect(),
            segments: ix.segments.len() as u64,
            blocks: ix.blocks.len() as u64,
            ahead_of_time_blocks: ix.blocks.iter().filter(|b| b.ahead_of_time()).count() as u64,
            lookup_targets: ix.lookup_targets.len() as u64,
            cold_heads: ix.blocks.iter().filter(|b| b.flags.to_native() & persist::index::BlockEntry::COLD_HEAD != 0).count() as u64,
            traces: ix.traces.len() as u64,
            trace_blocks: ix.traces.iter().map(|t| t.span_count.to_native() as u64).sum(),
            exits: ix.exits.len() as u64,
            counting_stubs: ix.counting_stubs.len() as u64,
            translation_bytes: ix.translations.len() as u64,
        }
    }

    /// Bytes in zones of `kind`.
    pub fn zone_bytes(&self, kind: &str) -> u64 {
        self.zones.iter().filter(|z| z.kind == kind).map(|z| z.size).sum()
    }

    /// The clients, short: `none` or `drcov@3,memtrace@1`.
    pub fn clients_summary(&self) -> String {
        if self.clients.is_empty() {
            "none".into()
        } else {
            self.clients.iter().map(|c| format!("{}@{}", c.name, c.version)).collect::<Vec<_>>().join(",")
        }
    }

    /// The key, short, for a table: `rt 1a2b3c4d clients none opts 0123abcd`.
    pub fn key_summary(&self) -> String {
        format!("rt {:08x} clients {} opts {}", self.runtime_version, self.clients_summary(), &self.options_hash[..8])
    }
}

pub fn kind_name(kind: ZoneKind) -> &'static str {
    match kind {
        ZoneKind::ReadOnly => "R",
        ZoneKind::Exec => "X",
        ZoneKind::Writable => "W",
    }
}

fn zone_info(z: &Zone) -> ZoneInfo {
    let protection = match z.kind {
        ZoneKind::ReadOnly => "r--",
        ZoneKind::Exec => "r-x",
        ZoneKind::Writable => "rw- (private)",
    };
    ZoneInfo { kind: kind_name(z.kind), offset: z.offset, size: z.len, protection }
}

/// Why a file cannot be read as a cache file of this format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// A cache file of another format version.
    OtherFormat(u32),
    /// Not a cache file, or a damaged one.
    Corrupt(Reject),
}

/// Checks `bytes` to `depth` and summarises them.
pub fn summarize(bytes: &[u8], depth: Depth) -> Result<Summary, Unreadable> {
    match persist::validate_with(bytes, depth) {
        Ok(v) => Ok(Summary::of(&v)),
        Err(r @ (Reject::OldVersion | Reject::FutureVersion)) => {
            Err(claimed_format(bytes).map_or(Unreadable::Corrupt(r), Unreadable::OtherFormat))
        }
        Err(r) => Err(Unreadable::Corrupt(r)),
    }
}

/// Whether this build can use a file, as far as can be told without the
/// runtime's configuration (clients, options and thread layout are in the
/// key too, and are only compared by a run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "detail")]
pub enum Status {
    Valid,
    /// The module file changed (other identity and other content).
    Stale,
    /// The module file is gone.
    Orphan,
    /// Written by another format or runtime version.
    OtherVersion(String),
    /// Fails the format's checks (or is not a cache file).
    Corrupt(String),
    /// Not owned by this user, or writable by others: the runtime refuses it.
    Unsafe(String),
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Stale => "stale",
            Status::Orphan => "orphan",
            Status::OtherVersion(_) => "other version",
            Status::Corrupt(_) => "corrupt",
            Status::Unsafe(_) => "unsafe",
        }
    }

    /// The name and, where there is one, the detail.
    pub fn describe(&self) -> String {
        match self {
            Status::OtherVersion(d) | Status::Corrupt(d) | Status::Unsafe(d) => format!("{} ({d})", self.name()),
            _ => self.name().to_string(),
        }
    }
}

/// Whether the runtime would open the file at all: a regular file owned by
/// this user that no one else may write.
pub fn ownership_problem(meta: &std::fs::Metadata) -> Option<String> {
    if !meta.file_type().is_file() {
        Some("not a regular file".into())
    } else if meta.uid() != crate::cache_dir::uid() {
        Some(format!("owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!("writable by others (mode {:o})", meta.mode() & 0o777))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_maps_to_no_bytes() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let (mapped, id) = map(f.path()).unwrap();
        assert!(mapped.bytes().is_empty());
        assert_eq!(id, Identity::of(&f.as_file().metadata().unwrap()));
        assert_eq!(summarize(mapped.bytes(), Depth::Structure).unwrap_err(), Unreadable::Corrupt(Reject::Truncated));
    }

    #[test]
    fn mapping_is_aligned_and_whole() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        let (mapped, _) = map(f.path()).unwrap();
        assert_eq!(mapped.bytes(), &bytes[..]);
        assert_eq!(mapped.bytes().as_ptr() as usize % 16, 0);
    }
}
