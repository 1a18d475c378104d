//! Bundles of cache files for CI: a tar archive compressed with zstd whose
//! first member is `manifest.json` (runtime and format version, and per
//! file its name, module path, module content hash, size and blake3),
//! followed by the files. A job builds the caches once and exports them;
//! later jobs import what fits their machine: every file is checked
//! (blake3, the format's full check, runtime and format version, and its
//! module must be on this machine with the same content) and written
//! atomically (temporary file, then rename under the file's lock), mode
//! 0600.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cache_file::{self, Aligned};
use crate::incoming::{self, Claimed, Staged};
use crate::module_file::Modules;

pub const MANIFEST: &str = "manifest.json";
/// The bundle layout's version.
pub const BUNDLE_VERSION: u32 = 1;
/// A manifest larger than this is not one of ours.
const MANIFEST_LIMIT: u64 = 64 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub module_path: String,
    pub module_hash: String,
    pub size: u64,
    pub blake3: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub bundle_version: u32,
    /// Hex, as in keys.
    pub runtime_version: String,
    pub format_version: u32,
    /// Unix seconds.
    pub created: i64,
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Files exported or imported: name, module.
    pub taken: Vec<(String, String)>,
    /// Files left out: name, why.
    pub skipped: Vec<(String, String)>,
    pub bytes: u64,
}

/// Writes the cache files `names` of `dir` to the bundle `out` (through a
/// temporary file renamed at the end). The files are mapped first and
/// written from the same mappings: the runtime replaces files by renaming,
/// never in place, so each file's bytes are one version.
pub fn export(dir: &Path, names: &[String], out: &Path, tick: &dyn Fn()) -> Result<Report, String> {
    let mut report = Report::default();
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(name);
        let (mapped, _) = match cache_file::map(&path) {
            Ok(x) => x,
            Err(e) => {
                report.skipped.push((name.clone(), e.to_string()));
                continue;
            }
        };
        let bytes = mapped.bytes();
        let v = match persist::validate(bytes) {
            Ok(v) => v,
            Err(r) => {
                report.skipped.push((name.clone(), format!("corrupt ({})", r.name())));
                continue;
            }
        };
        let entry = ManifestFile {
            name: name.clone(),
            module_path: v.index.module.path.as_str().to_string(),
            module_hash: crate::hex(&v.key.module_hash),
            size: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        };
        files.push((entry, mapped));
        tick();
    }
    let manifest = Manifest {
        bundle_version: BUNDLE_VERSION,
        runtime_version: format!("{:08x}", crate::RUNTIME_VERSION),
        format_version: crate::FORMAT_VERSION,
        created: crate::now(),
        files: files.iter().map(|(m, _)| m.clone()).collect(),
    };
    let tmp = crate::cache_dir::temp_beside(out);
    let result = (|| -> std::io::Result<u64> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let enc = zstd::Encoder::new(file, 3)?;
        let mut tar = tar::Builder::new(enc);
        let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        append(&mut tar, MANIFEST, json.len() as u64, &mut &json[..], manifest.created)?;
        let mut total = 0;
        for (m, mapped) in &files {
            append(&mut tar, &m.name, m.size, &mut mapped.bytes(), manifest.created)?;
            total += m.size;
        }
        let enc = tar.into_inner()?;
        let file = enc.finish()?;
        file.sync_all()?;
        Ok(total)
    })();
    match result.and_then(|total| std::fs::rename(&tmp, out).map(|()| total)) {
        Ok(total) => report.bytes = total,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: {e}", out.display()));
        }
    }
    report.taken = manifest.files.into_iter().map(|m| (m.name, m.module_path)).collect();
    Ok(report)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, size: u64, data: &mut dyn Read, mtime: i64) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o600);
    h.set_mtime(mtime.max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
}

/// Why an import stopped before its end.
#[derive(Debug)]
pub enum ImportError {
    /// Not a bundle, or damaged.
    Corrupt(String),
    /// Made by another runtime or format version: nothing in it is usable.
    OtherVersion(String),
    Io(String),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Corrupt(w) => write!(f, "corrupt bundle: {w}"),
            ImportError::OtherVersion(w) | ImportError::Io(w) => f.write_str(w),
        }
    }
}

/// Reads the bundle at `path` and writes the files that fit this machine
/// into `dir`. A valid local file is kept unless `replace`. All or
/// nothing: every file is staged beside its destination while the whole
/// bundle is read and checked, and only then are they all published; an
/// error part way (a truncated or damaged bundle) publishes none.
pub fn import(dir: &Path, path: &Path, replace: bool, tick: &dyn Fn(u64)) -> (Report, Option<ImportError>) {
    let mut report = Report::default();
    let err = import_into(dir, path, replace, tick, &mut report).err();
    if err.is_some() {
        // Nothing was published.
        report.taken.clear();
        report.bytes = 0;
    }
    (report, err)
}

/// The manifest of the bundle at `path` (for the number of files).
pub fn read_manifest(path: &Path) -> Result<Manifest, ImportError> {
    let file = File::open(path).map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
    let dec = zstd::Decoder::new(file).map_err(|e| ImportError::Corrupt(e.to_string()))?;
    let mut tar = tar::Archive::new(dec);
    let mut entries = tar.entries().map_err(|e| ImportError::Corrupt(e.to_string()))?;
    manifest_of(&mut entries)
}

fn manifest_of<R: Read>(entries: &mut tar::Entries<'_, R>) -> Result<Manifest, ImportError> {
    let corrupt = |e: &dyn std::fmt::Display| ImportError::Corrupt(e.to_string());
    let mut first = entries.next().ok_or_else(|| ImportError::Corrupt("empty".into()))?.map_err(|e| corrupt(&e))?;
    let name = first.path().map_err(|e| corrupt(&e))?.to_string_lossy().into_owned();
    if name != MANIFEST {
        return Err(ImportError::Corrupt(format!("first member is '{name}', not {MANIFEST}")));
    }
    if first.size() > MANIFEST_LIMIT {
        return Err(ImportError::Corrupt("manifest too large".into()));
    }
    let mut json = Vec::new();
    first.read_to_end(&mut json).map_err(|e| corrupt(&e))?;
    serde_json::from_slice(&json).map_err(|e| ImportError::Corrupt(format!("manifest: {e}")))
}

fn import_into(dir: &Path, path: &Path, replace: bool, tick: &dyn Fn(u64), report: &mut Report) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|e| ImportError::Io(format!("{}: {e}", path.display())))?;
    let dec = zstd::Decoder::new(file).map_err(|e| ImportError::Corrupt(e.to_string()))?;
    let mut tar = tar::Archive::new(dec);
    let mut entries = tar.entries().map_err(|e| ImportError::Corrupt(e.to_string()))?;
    let manifest = manifest_of(&mut entries)?;
    if manifest.bundle_version != BUNDLE_VERSION {
        return Err(ImportError::Corrupt(format!("bundle layout version {} (this build reads {BUNDLE_VERSION})", manifest.bundle_version)));
    }
    let ours = format!("{:08x}", crate::RUNTIME_VERSION);
    if manifest.runtime_version != ours || manifest.format_version != crate::FORMAT_VERSION {
        return Err(ImportError::OtherVersion(format!(
            "{} was made by runtime {} (format {}), this build is runtime {ours} (format {}): nothing imported",
            path.display(),
            manifest.runtime_version,
            manifest.format_version,
            crate::FORMAT_VERSION
        )));
    }
    crate::cache_dir::create_private(dir).map_err(ImportError::Io)?;
    let mut staged = Staged::default();
    read_entries(dir, entries, &manifest, replace, tick, report, &mut staged)?;
    staged.publish(dir).map_err(ImportError::Io)?;
    Ok(())
}

/// Checks every member of the bundle and stages the files to take.
fn read_entries<R: Read>(
    dir: &Path,
    entries: tar::Entries<'_, R>,
    manifest: &Manifest,
    replace: bool,
    tick: &dyn Fn(u64),
    report: &mut Report,
    staged: &mut Staged,
) -> Result<(), ImportError> {
    let mut pending: Vec<&ManifestFile> = manifest.files.iter().collect();
    let mut modules = Modules::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| ImportError::Corrupt(e.to_string()))?;
        let name = entry.path().map_err(|e| ImportError::Corrupt(e.to_string()))?.to_string_lossy().into_owned();
        let Some(at) = pending.iter().position(|m| m.name == name) else {
            report.skipped.push((name, "not in the manifest".into()));
            continue;
        };
        let m = pending.remove(at);
        tick(1);
        if !cache_file::is_cache_name(&name) {
            report.skipped.push((name, "not a cache file name".into()));
            continue;
        }
        if entry.size() != m.size {
            report.skipped.push((name, "size differs from the manifest".into()));
            continue;
        }
        let mut bytes = Aligned::zeroed(m.size as usize);
        entry.read_exact(bytes.bytes_mut()).map_err(|e| ImportError::Corrupt(format!("{name}: {e}")))?;
        match check(&bytes, m, &mut modules) {
            Err(why) => report.skipped.push((name, why)),
            Ok(()) => match incoming::stage(dir, &name, bytes.bytes(), replace) {
                Ok(Ok(tmp)) => {
                    staged.add(tmp, dir.join(&name));
                    report.bytes += m.size;
                    report.taken.push((name, m.module_path.clone()));
                }
                Ok(Err(why)) => report.skipped.push((name, why)),
                Err(e) => return Err(ImportError::Io(format!("{}: {e}", dir.join(&name).display()))),
            },
        }
    }
    for m in pending {
        report.skipped.push((m.name.clone(), "missing from the bundle".into()));
    }
    Ok(())
}

/// Whether a bundled file is whole (the manifest's blake3) and passes
/// the checks every incoming file passes.
fn check(bytes: &Aligned, m: &ManifestFile, modules: &mut Modules) -> Result<(), String> {
    if blake3::hash(bytes.bytes()).to_hex().as_str() != m.blake3 {
        return Err("corrupt (blake3 differs from the manifest)".into());
    }
    incoming::check(bytes, &Claimed { module_path: &m.module_path, module_hash: &m.module_hash }, modules).map(|_| ())
}
