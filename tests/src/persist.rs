//! Helpers for the persisted code cache tests (`tests/persist.rs`): runs
//! with `-persist` in a test's own cache directory, the `-stats` counters
//! and `-v` lines they print, the app's own stderr without them, and the
//! `.dpc` files (found, parsed with the `persist` crate, rewritten).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::persist::{CacheKey, Reject, Validated};

use crate::run::{compare_observed, run_dbirun, Observed, RunOpts};

/// `dbirun -persist -persist_dir DIR OPTIONS -- program args`; panics (with
/// the command) if it cannot run or times out. `options` may end with a
/// client and its options.
pub fn run_persist(dir: &Path, options: &[&str], program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
    let dir = dir.to_str().expect("a UTF-8 cache directory");
    let mut all = vec!["-persist", "-persist_dir", dir];
    all.extend_from_slice(options);
    run_dbirun(&all, program, args, opts)
        .unwrap_or_else(|f| panic!("dbirun {} -- {} {}: {f}", all.join(" "), program.display(), args.join(" ")))
}

/// The stderr of a run without the runtime's own lines: the `dbirun stats:`
/// blocks (their indented lines) and `dbirun: ...` messages.
pub fn app_stderr(stderr: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_stats = false;
    for line in stderr.split_inclusive(|&c| c == b'\n') {
        if line.starts_with(b"dbirun stats:") {
            in_stats = true;
            continue;
        }
        if in_stats && line.starts_with(b"  ") {
            continue;
        }
        in_stats = false;
        if line.starts_with(b"dbirun: ") {
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// Compares a run under `dbirun` with the native one: status, stdout, and
/// stderr without the runtime's lines ([`app_stderr`]).
pub fn compare_app(what: &str, native: &Observed, translated: &Observed) -> Result<(), String> {
    let stripped = Observed { stderr: app_stderr(&translated.stderr), ..translated.clone() };
    compare_observed(what, native, &stripped)
}

/// [`compare_app`], panicking with the differences.
pub fn assert_app_same(what: &str, native: &Observed, translated: &Observed) {
    if let Err(e) = compare_app(what, native, translated) {
        panic!("{e}");
    }
}

/// The `-stats` counters of one process.
#[derive(Clone, Debug, Default)]
pub struct ProcessStats {
    /// `name: value` lines (times in ms are rounded down).
    pub counters: BTreeMap<String, u64>,
    /// The reasons listed under `cache files rejected`, with their counts.
    pub rejected: BTreeMap<String, u64>,
}

/// Every `dbirun stats:` block in `stderr`, one per process, in order.
pub fn stats(stderr: &[u8]) -> Vec<ProcessStats> {
    let text = String::from_utf8_lossy(stderr);
    let mut all = Vec::new();
    let mut cur: Option<ProcessStats> = None;
    for line in text.lines() {
        if line.starts_with("dbirun stats:") {
            all.extend(cur.take());
            cur = Some(ProcessStats::default());
            continue;
        }
        let Some(s) = cur.as_mut() else { continue };
        if !line.starts_with("  ") {
            all.extend(cur.take());
            continue;
        }
        let Some((name, value)) = line.trim().split_once(':') else { continue };
        let number = value.split_whitespace().next().and_then(|v| v.split('.').next()?.parse::<u64>().ok());
        let Some(number) = number else { continue };
        if line.starts_with("    ") {
            s.rejected.insert(name.to_owned(), number);
        } else {
            s.counters.insert(name.to_owned(), number);
        }
    }
    all.extend(cur);
    all
}

/// The sum over every process of the counter `name`; panics if a process
/// has no such counter or no process printed stats.
pub fn total(stats: &[ProcessStats], name: &str) -> u64 {
    assert!(!stats.is_empty(), "no `dbirun stats:` block in stderr (was -stats given?)");
    stats
        .iter()
        .map(|s| *s.counters.get(name).unwrap_or_else(|| panic!("no '{name}' counter in {:?}", s.counters)))
        .sum()
}

/// One `-v` line about modules and cache files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Log {
    /// `dbirun: persist: using FILE (N blocks)`
    Using { file: PathBuf, blocks: u64 },
    /// `dbirun: persist: not using FILE: REASON`
    NotUsing { file: PathBuf, reason: String },
    /// `dbirun: persist: wrote FILE (N blocks, M new)`
    Wrote { file: PathBuf, blocks: u64, new: u64 },
    /// `dbirun: module loaded: PATH at 0xBASE`
    Module { path: String, base: u64 },
}

/// The [`Log`] lines of `stderr`, in order.
pub fn log(stderr: &[u8]) -> Vec<Log> {
    let text = String::from_utf8_lossy(stderr);
    let mut out = Vec::new();
    let count = |s: &str| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("dbirun: persist: using ") {
            if let Some((file, n)) = rest.rsplit_once(" (") {
                if let Some(blocks) = count(n) {
                    out.push(Log::Using { file: file.into(), blocks });
                }
            }
        } else if let Some(rest) = line.strip_prefix("dbirun: persist: not using ") {
            if let Some((file, reason)) = rest.rsplit_once(": ") {
                out.push(Log::NotUsing { file: file.into(), reason: reason.to_owned() });
            }
        } else if let Some(rest) = line.strip_prefix("dbirun: persist: wrote ") {
            if let Some((file, n)) = rest.rsplit_once(" (") {
                let mut parts = n.split(", ");
                if let (Some(blocks), Some(new)) = (parts.next().and_then(count), parts.next().and_then(count)) {
                    out.push(Log::Wrote { file: file.into(), blocks, new });
                }
            }
        } else if let Some(rest) = line.strip_prefix("dbirun: module loaded: ") {
            if let Some((path, base)) = rest.rsplit_once(" at 0x") {
                if let Ok(base) = u64::from_str_radix(base.trim(), 16) {
                    out.push(Log::Module { path: path.to_owned(), base });
                }
            }
        }
    }
    out
}

/// Whether the cache file `file` is the one of a module called `module`
/// (`<module>-<path hash>-<clients hash>.dpc`).
pub fn is_file_of(file: &Path, module: &str) -> bool {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else { return false };
    let Some(rest) = name.strip_prefix(module).and_then(|r| r.strip_prefix('-')) else { return false };
    let Some(hashes) = rest.strip_suffix(".dpc") else { return false };
    let parts: Vec<&str> = hashes.split('-').collect();
    parts.len() == 2 && parts.iter().all(|p| p.len() == 16 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The files `log` says were used, of the module called `module`.
pub fn used(log: &[Log], module: &str) -> Vec<PathBuf> {
    log.iter()
        .filter_map(|l| match l {
            Log::Using { file, .. } if is_file_of(file, module) => Some(file.clone()),
            _ => None,
        })
        .collect()
}

/// The reasons `log` gives for not using the file of `module`.
pub fn not_used(log: &[Log], module: &str) -> Vec<String> {
    log.iter()
        .filter_map(|l| match l {
            Log::NotUsing { file, reason } if is_file_of(file, module) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The base address `log` gives for the module at `path` (compared as
/// given and canonicalised); the first one if it was loaded more than once.
pub fn module_base(log: &[Log], path: &Path) -> Option<u64> {
    let canon = path.canonicalize().ok();
    log.iter().find_map(|l| match l {
        Log::Module { path: p, base }
            if Path::new(p) == path
                || canon.as_deref().is_some_and(|c| Path::new(p).canonicalize().ok().as_deref() == Some(c)) =>
        {
            Some(*base)
        }
        _ => None,
    })
}

/// Every file under `dir` (recursively), sorted.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The `.dpc` files under `dir`, sorted.
pub fn dpc_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "dpc")).collect()
}

/// The one `.dpc` file of the module called `module` under `dir`; panics
/// (listing the directory) if there is none or more than one.
pub fn dpc_of(dir: &Path, module: &str) -> PathBuf {
    let found: Vec<PathBuf> = dpc_files(dir).into_iter().filter(|p| is_file_of(p, module)).collect();
    assert!(
        found.len() == 1,
        "expected one cache file of {module} in {}, found {}: {:?}\n  all files: {:?}",
        dir.display(),
        found.len(),
        found,
        all_files(dir)
    );
    found.into_iter().next().unwrap()
}

/// A copy of some bytes starting on a 16-byte boundary, as a mapping is
/// (`persist::validate` needs that alignment).
pub struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl Aligned {
    pub fn new(bytes: &[u8]) -> Aligned {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        // SAFETY: words has at least bytes.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, bytes.len()) };
        Aligned { words, len: bytes.len() }
    }

    /// The file at `path`, read whole; panics if it cannot be read.
    pub fn read(path: &Path) -> Aligned {
        Aligned::new(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: within the allocation.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }

    pub fn validate(&self) -> Result<Validated<'_>, Reject> {
        ::persist::validate(self.bytes())
    }
}

/// The exit data of the persisted exit stub at `stub` in the X zone
/// `x`: its offset in the zone and what it says. A stub points rax at its
/// data with `lea rax, [rip + disp32]` after a 9-byte store; panics if
/// the bytes at `stub` do not start as a stub does.
pub fn stub_exit_data(x: &[u8], stub: usize) -> (usize, ::persist::exit_data::StoredExit) {
    let lea = &x[stub + 9..stub + 16];
    assert_eq!(&lea[..3], &[0x48, 0x8d, 0x05], "the stub at {stub:#x} does not start as a stub does");
    let data = stub + 16 + i32::from_le_bytes(lea[3..7].try_into().unwrap()) as usize;
    (data, ::persist::exit_data::StoredExit::from_bytes(&x[data..]).expect("exit data inside the zone"))
}

/// Writes `bytes` to a temporary file next to `path` and renames it over
/// `path` (a new file, as the runtime publishes one).
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("dpc.test-tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), path.display()));
}

/// The bytes of a valid file with the index and zones of the valid file
/// `file` and the key `change` makes of its key: a cache file for another
/// configuration.
pub fn with_key(file: &[u8], change: impl FnOnce(&mut CacheKey)) -> Vec<u8> {
    let a = Aligned::new(file);
    let v = a.validate().unwrap_or_else(|r| panic!("the file to rewrite is not valid: {}", r.name()));
    let index = v.index.to_owned().expect("the index deserialises");
    let mut key = v.key.clone();
    change(&mut key);
    let zones: Vec<(::persist::ZoneKind, &[u8])> =
        (1..v.zones.len()).map(|i| (v.zones[i].kind, v.zone_bytes(i))).collect();
    let out = ::persist::write::build(&key, &index, &zones);
    let check = Aligned::new(&out);
    let v2 = check.validate().unwrap_or_else(|r| panic!("the rewritten file is not valid: {}", r.name()));
    assert_eq!(v2.key, key, "the rewritten file's key");
    out
}

/// The bytes of a valid file: the valid file `file` as if made from
/// another version of its module, whose identity (dev, inode, size,
/// mtime, ctime) and content hash `change` makes of the recorded ones.
pub fn with_module(file: &[u8], change: impl FnOnce(&mut [u64; 5], &mut [u8; 32])) -> Vec<u8> {
    let a = Aligned::new(file);
    let v = a.validate().unwrap_or_else(|r| panic!("the file to rewrite is not valid: {}", r.name()));
    let mut index = v.index.to_owned().expect("the index deserialises");
    let mut key = v.key.clone();
    change(&mut index.module.identity, &mut key.module_hash);
    let zones: Vec<(::persist::ZoneKind, &[u8])> = (1..v.zones.len()).map(|i| (v.zones[i].kind, v.zone_bytes(i))).collect();
    let out = ::persist::write::build(&key, &index, &zones);
    Aligned::new(&out).validate().unwrap_or_else(|r| panic!("the rewritten file is not valid: {}", r.name()));
    out
}

/// The bytes of a valid file: the valid file `file` with the zone bytes
/// `change` makes (zone `i` at `zones[i - 1]`), every hash recomputed, as
/// someone who can write to a shared store could plant it.
pub fn with_zones(file: &[u8], change: impl FnOnce(&Validated, &mut Vec<Vec<u8>>)) -> Vec<u8> {
    let a = Aligned::new(file);
    let v = a.validate().unwrap_or_else(|r| panic!("the file to rewrite is not valid: {}", r.name()));
    let index = v.index.to_owned().expect("the index deserialises");
    let mut zones: Vec<Vec<u8>> = (1..v.zones.len()).map(|i| v.zone_bytes(i).to_vec()).collect();
    change(&v, &mut zones);
    let kinds: Vec<(::persist::ZoneKind, &[u8])> = (1..v.zones.len()).map(|i| (v.zones[i].kind, zones[i - 1].as_slice())).collect();
    let out = ::persist::write::build(&v.key, &index, &kinds);
    Aligned::new(&out).validate().unwrap_or_else(|r| panic!("the rewritten file is not valid: {}", r.name()));
    out
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub inode: u64,
    pub path: String,
}

/// Parses `/proc/PID/maps` text (lines that do not parse are skipped).
pub fn parse_maps(text: &str) -> Vec<MapsLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(6, ' ');
            let (range, perms, offset, _dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let path = f.next().unwrap_or("").trim_start().to_owned();
            let (s, e) = range.split_once('-')?;
            Some(MapsLine {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms: perms.to_owned(),
                offset: u64::from_str_radix(offset, 16).ok()?,
                inode: inode.parse().ok()?,
                path,
            })
        })
        .collect()
}
