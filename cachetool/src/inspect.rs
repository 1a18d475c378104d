//! What `inspect` shows of one file: its header, key and zones (with each
//! zone's checksum checked), client data, blocks, and one block's code
//! disassembled next to the application code it was translated from.

use std::path::{Path, PathBuf};

use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
use persist::header::{read_only_hash, ZoneKind};
use persist::Depth;
use serde::Serialize;

use crate::cache_file::{self, Mapped, Summary};

/// The cache files `what` names: a file (a path, or a name in `dir`), or a
/// module (its path, or its file name) whose files are in `entries`.
pub fn resolve(dir: &Path, what: &str, entries: &[crate::index::FileEntry]) -> Vec<PathBuf> {
    let p = Path::new(what);
    if p.is_file() && starts_like_a_cache_file(p) {
        return vec![p.to_path_buf()];
    }
    if cache_file::is_cache_name(what) && dir.join(what).is_file() {
        return vec![dir.join(what)];
    }
    // A module by any name that leads to its file: as recorded, through
    // symlinks (`python3` -> `python3.11`), relative to here, or its base name.
    let canon = std::fs::canonicalize(p).ok();
    entries
        .iter()
        .filter(|e| {
            e.module_path.as_deref().is_some_and(|m| {
                m == what
                    || canon.as_deref().is_some_and(|c| Path::new(m) == c || std::fs::canonicalize(m).is_ok_and(|mc| mc == c))
                    || (!what.contains('/') && Path::new(m).file_name().is_some_and(|n| n == what))
            })
        })
        .map(|e| dir.join(&e.name))
        .collect()
}

/// Whether the file at `path` begins with a cache file's magic.
fn starts_like_a_cache_file(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == persist::header::MAGIC
}

/// Modules with cache files whose names resemble `what` (sharing its
/// base name's stem), for a hint when nothing matched.
pub fn near_matches(what: &str, entries: &[crate::index::FileEntry]) -> Vec<String> {
    let base = Path::new(what).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem: String = base.chars().take_while(|c| c.is_ascii_alphabetic() || *c == '_' || *c == '+').collect();
    let mut near: Vec<String> = entries
        .iter()
        .filter_map(|e| e.module_path.clone())
        .filter(|m| {
            let name = Path::new(m).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            stem.len() >= 2 && (name.starts_with(&stem) || base.starts_with(&name))
        })
        .collect();
    near.sort();
    near.dedup();
    near.truncate(5);
    near
}

#[derive(Clone, Debug, Serialize)]
pub struct ZoneCheck {
    pub index: usize,
    pub kind: &'static str,
    pub offset: u64,
    pub size: u64,
    pub protection: &'static str,
    /// "ok" or "BAD".
    pub checksum: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub file: String,
    pub size: u64,
    pub summary: Summary,
    pub zones: Vec<ZoneCheck>,
    pub checksums_ok: bool,
}

/// A file mapped and checked for structure: what inspect needs (the
/// pages of the code are read when a checksum or disassembly asks).
pub struct Opened {
    pub path: PathBuf,
    bytes: Mapped,
}

impl Opened {
    pub fn open(path: &Path) -> Result<Opened, String> {
        let (bytes, _) = cache_file::map(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Err(u) = cache_file::summarize(bytes.bytes(), Depth::Structure) {
            let why = match u {
                cache_file::Unreadable::OtherFormat(v) => format!("format version {v} (this build reads {})", crate::FORMAT_VERSION),
                cache_file::Unreadable::Corrupt(r) => r.name().to_string(),
            };
            return Err(format!("{}: {why}", path.display()));
        }
        Ok(Opened { path: path.to_path_buf(), bytes })
    }

    fn validated(&self) -> persist::Validated<'_> {
        persist::validate_with(self.bytes.bytes(), Depth::Structure).expect("checked when opened")
    }

    pub fn inspection(&self) -> Inspection {
        let v = self.validated();
        let summary = Summary::of(&v);
        let zones: Vec<ZoneCheck> = v
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let bytes = v.zone_bytes(i);
                let ok = if z.kind == ZoneKind::ReadOnly { read_only_hash(bytes) == z.hash } else { *blake3::hash(bytes).as_bytes() == z.hash };
                let info = &summary.zones[i];
                ZoneCheck {
                    index: i,
                    kind: info.kind,
                    offset: z.offset,
                    size: z.len,
                    protection: info.protection,
                    checksum: if ok { "ok" } else { "BAD" },
                }
            })
            .collect();
        let checksums_ok = zones.iter().all(|z| z.checksum == "ok");
        Inspection { file: self.path.display().to_string(), size: self.bytes.bytes().len() as u64, summary, zones, checksums_ok }
    }

    pub fn blocks(&self) -> Vec<BlockInfo> {
        let v = self.validated();
        let ix = v.index;
        ix.blocks
            .iter()
            .map(|b| {
                let exits = exit_targets(ix, b.first_exit.to_native(), b.exit_count.to_native());
                BlockInfo {
                    module_offset: b.module_offset.to_native(),
                    app_size: b.app_len.to_native(),
                    segment: b.segment.to_native(),
                    code_offset: b.code_offset.to_native(),
                    code_size: b.code_len.to_native(),
                    ahead_of_time: b.ahead_of_time(),
                    exits,
                }
            })
            .collect()
    }

    pub fn traces(&self) -> Vec<TraceInfo> {
        let v = self.validated();
        let ix = v.index;
        ix.traces
            .iter()
            .map(|t| {
                let first = t.first_span.to_native() as usize;
                let spans = &ix.trace_spans[first..first + t.span_count.to_native() as usize];
                let exits = exit_targets(ix, t.first_exit.to_native(), t.exit_count.to_native());
                TraceInfo {
                    head: t.head.to_native(),
                    segment: t.segment.to_native(),
                    code_offset: t.code_offset.to_native(),
                    code_size: t.code_len.to_native(),
                    budget: miss_budget(&v, t),
                    blocks: spans.iter().map(|s| s.module_offset.to_native()).collect(),
                    exits,
                }
            })
            .collect()
    }

    /// The block starting at (or else holding) `module_offset`, its code
    /// and the application's, disassembled.
    pub fn disasm(&self, module_offset: u64) -> Result<Disassembly, String> {
        let v = self.validated();
        let ix = v.index;
        let block = ix
            .blocks
            .iter()
            .find(|b| b.module_offset.to_native() as u64 == module_offset)
            .or_else(|| {
                ix.blocks.iter().find(|b| {
                    let s = b.module_offset.to_native() as u64;
                    module_offset >= s && module_offset < s + b.app_len.to_native() as u64
                })
            })
            .ok_or_else(|| format!("no block at module offset {module_offset:#x} in {}", self.path.display()))?;
        let seg = &ix.segments[block.segment.to_native() as usize];
        let x_zone = seg.x_zone.to_native() as usize;
        let code_at = block.code_offset.to_native() as usize;
        let code = &v.zone_bytes(x_zone)[code_at..code_at + block.code_len.to_native() as usize];
        let code_file_offset = v.zones[x_zone].offset + code_at as u64;
        // Exit stubs, as offsets into the X zone (after the segment's
        // code): after each one's three instructions come 24 bytes of
        // exit data, not code.
        let first = block.first_exit.to_native() as usize;
        let stubs: Vec<usize> = ix.exits[first..first + block.exit_count.to_native() as usize].iter().map(|e| e.stub.to_native() as usize).collect();
        let stub_zone = (v.zone_bytes(x_zone), v.zones[x_zone].offset);
        let start = block.module_offset.to_native() as u64;
        let module_path = ix.module.path.as_str().to_string();
        let app = match std::fs::read(&module_path) {
            Err(e) => Err(format!("cannot read {module_path}: {e}")),
            Ok(bytes) => match crate::module_file::file_offset(&bytes, start) {
                None => Err(format!("module offset {start:#x} is in no loaded segment of {module_path}")),
                Some(off) => {
                    let end = (off as usize).saturating_add(block.app_len.to_native() as usize).min(bytes.len());
                    Ok((off, listing(&bytes[off as usize..end], start)))
                }
            },
        };
        let (app_file_offset, app_code, app_error) = match app {
            Ok((off, l)) => (Some(off), l, None),
            Err(e) => (None, Vec::new(), Some(e)),
        };
        Ok(Disassembly {
            module: module_path,
            module_offset: start,
            app_size: block.app_len.to_native() as u64,
            app_file_offset,
            app_code,
            app_error,
            cache_zone: x_zone,
            cache_file_offset: code_file_offset,
            cache_code: block_listing(code, code_file_offset, stub_zone, &stubs),
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BlockInfo {
    pub module_offset: u32,
    pub app_size: u32,
    pub segment: u32,
    pub code_offset: u32,
    pub code_size: u32,
    /// Translated ahead of time (`-aot`), not reached by a run.
    pub ahead_of_time: bool,
    /// Direct exits' targets, as module offsets.
    pub exits: Vec<i64>,
}

/// The misses of its in-line checks the file gives trace `t` before a run
/// records its head afresh; None for a trace kept for good.
fn miss_budget(v: &persist::Validated, t: &persist::index::ArchivedTraceEntry) -> Option<u64> {
    let slot = t.budget_slot.to_native();
    if slot == persist::index::TraceEntry::NO_BUDGET {
        return None;
    }
    let w = v.index.segments.get(t.segment.to_native() as usize)?.w_zone.to_native() as usize;
    let bytes = v.zone_bytes(w).get(slot as usize..slot as usize + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The targets (module offsets) of `exits[first..first + count]`.
fn exit_targets(ix: &persist::index::ArchivedIndex, first: u32, count: u32) -> Vec<i64> {
    ix.exits[first as usize..(first + count) as usize].iter().map(|e| e.target.to_native()).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct TraceInfo {
    /// Its head block's module offset.
    pub head: u32,
    pub segment: u32,
    pub code_offset: u32,
    pub code_size: u32,
    /// Misses of its in-line checks before a run records its head afresh
    /// (None: kept for good).
    pub budget: Option<u64>,
    /// The module offsets of the blocks it holds, in path order (a block
    /// may come twice: a loop's body unrolled).
    pub blocks: Vec<u32>,
    /// Its exits' targets, as module offsets.
    pub exits: Vec<i64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub address: u64,
    pub bytes: String,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Disassembly {
    pub module: String,
    pub module_offset: u64,
    pub app_size: u64,
    /// Where the block's first app byte is in the module file.
    pub app_file_offset: Option<u64>,
    /// Addressed by module offset.
    pub app_code: Vec<Line>,
    /// Why the module's code could not be shown.
    pub app_error: Option<String>,
    pub cache_zone: usize,
    pub cache_file_offset: u64,
    /// Addressed by offset in the cache file.
    pub cache_code: Vec<Line>,
}

/// `code` disassembled (64-bit, Intel syntax) as if at `address`.
pub fn listing(code: &[u8], address: u64) -> Vec<Line> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_first_operand_char_index(8);
    let mut out = Vec::new();
    let mut ins = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut ins);
        let mut text = String::new();
        formatter.format(&ins, &mut text);
        let at = (ins.ip() - address) as usize;
        let bytes = crate::hex(&code[at..(at + ins.len()).min(code.len())]);
        out.push(Line { address: ins.ip(), bytes, text });
    }
    out
}

use persist::exit_data::{self, StoredExit};

/// Bytes of exit data after an exit stub's code.
const EXIT_DATA: usize = exit_data::LEN;
/// Instructions in an exit stub: save rax, point rax at the exit data,
/// jump to the dispatcher.
const STUB_INSTRUCTIONS: usize = 3;

/// Exit data shown as what it says (the layout is `persist::exit_data`'s).
fn exit_data_lines(data: &[u8], at: u64) -> Vec<Line> {
    let Some(e) = StoredExit::from_bytes(data) else { return Vec::new() };
    let counted = if e.kind & exit_data::COUNTS_TARGET != 0 { " (its target's entries counted)" } else { "" };
    let first = match e.kind & !exit_data::COUNTS_TARGET {
        exit_data::KIND_DIRECT => format!("exit data: direct exit to module offset {:#x}{counted}", e.target),
        exit_data::KIND_SYSCALL => format!("exit data: system call, then module offset {:#x}", e.target),
        exit_data::KIND_CLEAN_CALL => {
            let (client, id, arg) = e.clean_call_parts();
            format!("exit data: clean call of client {client}, call {id}, argument {arg:#x}")
        }
        other => format!("exit data: unknown kind {other:#x}"),
    };
    let second = match e.branch_and_slot() {
        Some((branch, slot)) => format!("exit data: branch at {branch:+}, exit slot at {slot:+}, base slot at {:+}", e.aux as i32),
        None if e.kind == exit_data::KIND_CLEAN_CALL => "exit data: argument, client and call".to_string(),
        None => format!("exit data: no branch to link; base slot at {:+}", e.aux as i32),
    };
    vec![Line { address: at, bytes: crate::hex(&data[..8]), text: first }, Line { address: at + 8, bytes: crate::hex(&data[8..]), text: second }]
}

/// A persisted block's code: its body, then each exit stub (at `stubs`
/// in `zone`, the X zone at file offset `zone_at`) with its exit data
/// shown as data (the target's module offset first).
fn block_listing(code: &[u8], address: u64, (zone, zone_at): (&[u8], u64), stubs: &[usize]) -> Vec<Line> {
    /// More than a stub's three instructions.
    const STUB_CODE_MAX: usize = 32;
    let mut out = listing(code, address);
    for &stub in stubs.iter().filter(|&&s| s < zone.len()) {
        let end = (stub + STUB_CODE_MAX).min(zone.len());
        let taken: Vec<Line> = listing(&zone[stub..end], zone_at + stub as u64).into_iter().take(STUB_INSTRUCTIONS).collect();
        let data_at = taken.last().map_or(stub, |l| (l.address - zone_at) as usize + l.bytes.len() / 2);
        out.extend(taken);
        if let Some(data) = zone.get(data_at..data_at + EXIT_DATA) {
            out.extend(exit_data_lines(data, zone_at + data_at as u64));
        }
    }
    out
}
