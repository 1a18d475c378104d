//! `pull`: the files a remote store holds for modules of this machine.
//! For each module: its listing (found by its content hash and this
//! build's runtime version), each listed key's manifest, then the file.
//! Nothing fetched is trusted: a manifest must hash to its name and name
//! a file of this runtime for a module this machine has, with the same
//! content, at the same path; the file must hash to the manifest's
//! sha256, and pass every check an import passes (`incoming::check`),
//! its key being the manifest's. Each file is then published on its own
//! (temporary file, renamed under its lock): a pull cut short leaves
//! whole files or none. A valid local file is kept unless `replace`.
//! With the deep check (`pull --deep`), a file is published only once
//! its blocks, translated again on this machine, match
//! (`crate::deep_check`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use remote::layout::{self, Listed, Listing, Manifest, Subject};
use remote::signing::Trust;
use remote::{Problem, RemoteError, Store};
use serde::Serialize;

use crate::cache_file::{self, Aligned};
use crate::incoming::{self, Claimed, Staged};
use crate::module_file::Modules;

/// The largest file a pull accepts.
const FILE_LIMIT: u64 = 4 << 30;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Files published: name, module.
    pub taken: Vec<(String, String)>,
    /// Modules or files left out: what, why.
    pub skipped: Vec<(String, String)>,
    /// Bytes fetched (compressed files, taken or not).
    pub bytes: u64,
}

/// Modules pulled at once: each costs a few round trips to the store.
const JOBS: usize = 4;

/// What a pull takes.
pub struct Taking<'a> {
    /// Overwrite valid local files too.
    pub replace: bool,
    /// With signing on, only manifests signed by a trusted key.
    pub trust: &'a Trust,
    /// With `Some(dbirun)`, only files that pass the deep check.
    pub deep_check: Option<&'a Path>,
}

/// Pulls into `dir` the files the store holds for `modules` (several
/// modules at once), calling `tick` after each module; gives what
/// happened, and the store's failure if one stopped the pull.
pub fn pull(store: &dyn Store, dir: &Path, modules: &[PathBuf], taking: &Taking, tick: &(dyn Fn() + Sync)) -> (Report, Option<RemoteError>) {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    let failure: Mutex<Option<RemoteError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..JOBS.min(modules.len()) {
            s.spawn(|| {
                let mut machine = Modules::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= modules.len() || failure.lock().unwrap().is_some() {
                        break;
                    }
                    let mut mine = Report::default();
                    let failed = pull_module(store, dir, &modules[i], taking, &mut machine, &mut mine).err();
                    let mut r = report.lock().unwrap();
                    r.taken.append(&mut mine.taken);
                    r.skipped.append(&mut mine.skipped);
                    r.bytes += mine.bytes;
                    drop(r);
                    if let Some(e) = failed {
                        failure.lock().unwrap().get_or_insert(e);
                    }
                    tick();
                }
            });
        }
    });
    let mut report = report.into_inner().unwrap();
    report.taken.sort();
    report.skipped.sort();
    (report, failure.into_inner().unwrap())
}

fn pull_module(
    store: &dyn Store,
    dir: &Path,
    module: &Path,
    taking: &Taking,
    machine: &mut Modules,
    report: &mut Report,
) -> Result<(), RemoteError> {
    let shown = module.display().to_string();
    let path = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let Some(hash) = machine.hash(&path.to_string_lossy()).and_then(|h| layout::unhex(&h)?.try_into().ok()) else {
        report.skipped.push((shown, "not on this machine".into()));
        return Ok(());
    };
    let subject = Subject::Module(&hash);
    let listing = match store.get(&layout::listing_object(&subject, crate::RUNTIME_VERSION), layout::LISTING_LIMIT) {
        Ok(Some(bytes)) => match Listing::parse(&bytes, &subject, crate::RUNTIME_VERSION) {
            Ok(l) => l,
            Err(why) => {
                report.skipped.push((shown, why));
                return Ok(());
            }
        },
        Ok(None) => {
            report.skipped.push((shown, "nothing in the store for this module and runtime".into()));
            return Ok(());
        }
        Err(e) if e.problem == Problem::TooLarge => {
            report.skipped.push((shown, "its listing is too large to be one of ours".into()));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for listed in &listing.keys {
        match pull_file(store, dir, listed, taking, machine, &mut report.bytes)? {
            Ok((name, module)) => report.taken.push((name, module)),
            Err(why) => report.skipped.push((listed.name.clone(), why)),
        }
    }
    Ok(())
}

/// One listed key's file: Ok(Ok(name, module)) when published, Ok(Err(why))
/// when left out.
fn pull_file(
    store: &dyn Store,
    dir: &Path,
    listed: &Listed,
    taking: &Taking,
    machine: &mut Modules,
    fetched: &mut u64,
) -> Result<Result<(String, String), String>, RemoteError> {
    let replace = taking.replace;
    let keep_local = |m: &Manifest| {
        (!replace && incoming::local_blocks(&dir.join(&m.name)).is_some()).then(|| "a valid local file is kept (--replace to overwrite)".to_string())
    };
    let f = match fetch(store, &listed.manifest, taking.trust, machine, fetched, &keep_local)? {
        Ok(f) => f,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(dbirun) = taking.deep_check {
        if let Err(why) = crate::deep_check::check(f.file.bytes(), dbirun) {
            return Ok(Err(format!("deep check failed: {why}")));
        }
    }
    let dest = dir.join(&f.name);
    crate::cache_dir::create_private(dir).map_err(|e| RemoteError::new(Problem::Other, e))?;
    let local = |e: std::io::Error| RemoteError::new(Problem::Other, format!("{}: {e}", dest.display()));
    let mut staged = Staged::default();
    // Not synced to disk, as the runtime's and the server's own writes are
    // not: a file a crash leaves torn fails its checks and is rebuilt.
    match incoming::stage_with(dir, &f.name, f.file.bytes(), replace, false).map_err(local)? {
        Ok(tmp) => staged.add(tmp, dest.clone()),
        Err(why) => return Ok(Err(why)),
    }
    staged.publish(dir).map_err(|e| RemoteError::new(Problem::Other, e))?;
    Ok(Ok((f.name, f.module_path)))
}

/// A file fetched from a remote store and checked.
pub struct Fetched {
    /// Its name in a cache directory.
    pub name: String,
    pub module_path: String,
    pub file: Aligned,
}

/// The file the manifest `manifest_object` names, fetched and checked in
/// full (see the module's docs; with signing on, its manifest signed by a
/// key of `trust`); Ok(Err(why)) when there is none fit for
/// this machine, or `skip` gives a reason not to fetch it (said before the
/// file's bytes are read). `fetched` counts the file bytes read.
pub fn fetch(
    store: &dyn Store,
    manifest_object: &str,
    trust: &Trust,
    machine: &mut Modules,
    fetched: &mut u64,
    skip: &dyn Fn(&Manifest) -> Option<String>,
) -> Result<Result<Fetched, String>, RemoteError> {
    let too_large_is_bad = |r: Result<Option<Vec<u8>>, RemoteError>| match r {
        Err(e) if e.problem == Problem::TooLarge => Ok(Err("larger than its manifest says (tampered?)".to_string())),
        Err(e) => Err(e),
        Ok(None) => Ok(Err("missing from the store".to_string())),
        Ok(Some(b)) => Ok(Ok(b)),
    };
    let bytes = match too_large_is_bad(store.get(manifest_object, layout::MANIFEST_LIMIT))? {
        Ok(b) => b,
        Err(why) => return Ok(Err(format!("manifest {why}"))),
    };
    let m = match Manifest::parse(&bytes, manifest_object) {
        Ok(m) => m,
        Err(why) => return Ok(Err(why)),
    };
    if let Err(why) = trust.admits(&m) {
        return Ok(Err(why));
    }
    if m.runtime_version != format!("{:08x}", crate::RUNTIME_VERSION) {
        return Ok(Err(format!("made by runtime {}", m.runtime_version)));
    }
    if !named_for(&m.name, &m.module_path) {
        return Ok(Err(format!("manifest names '{}', not a cache file of {}", m.name, m.module_path)));
    }
    match machine.hash(&m.module_path) {
        None => return Ok(Err(format!("module {} is not on this machine", m.module_path))),
        Some(h) if h != m.module_hash => return Ok(Err(format!("module {} differs on this machine", m.module_path))),
        Some(_) => {}
    }
    if let Some(why) = skip(&m) {
        return Ok(Err(why));
    }
    if m.size > FILE_LIMIT || m.stored_size > FILE_LIMIT {
        return Ok(Err(format!("{} bytes, more than a pull takes", m.size.max(m.stored_size))));
    }
    let stored = match too_large_is_bad(store.get(&m.file_object(), m.stored_size))? {
        Ok(b) => b,
        Err(why) => return Ok(Err(format!("file {why}"))),
    };
    *fetched += stored.len() as u64;
    if stored.len() as u64 != m.stored_size || layout::sha256_hex(&stored) != m.stored_sha256 {
        return Ok(Err("corrupt (sha256 differs from its manifest: truncated or tampered)".into()));
    }
    // Decompressed into exactly the size the manifest says: more is an error.
    let mut file = Aligned::zeroed(m.size as usize);
    match zstd::bulk::Decompressor::new().and_then(|mut d| d.decompress_to_buffer(&stored, file.bytes_mut())) {
        Ok(n) if n as u64 == m.size => {}
        _ => return Ok(Err("corrupt (does not decompress to its manifest's size)".into())),
    }
    if layout::sha256_hex(file.bytes()) != m.sha256 {
        return Ok(Err("corrupt (its contents' sha256 differs from its manifest)".into()));
    }
    let claimed = Claimed { module_path: &m.module_path, module_hash: &m.module_hash };
    let key = match incoming::check(&file, &claimed, machine) {
        Ok((key, _)) => key,
        Err(why) => return Ok(Err(why)),
    };
    if crate::hex(&key.encode()) != m.key {
        return Ok(Err("corrupt (its key differs from its manifest's)".into()));
    }
    Ok(Ok(Fetched { name: m.name, module_path: m.module_path, file }))
}

/// Whether `name` is the cache file name the runtime gives a file of the
/// module at `module_path` (whatever its variant).
fn named_for(name: &str, module_path: &str) -> bool {
    let tag = name.strip_suffix(".dpc").and_then(|s| s.rsplit('-').next()).and_then(|t| u64::from_str_radix(t, 16).ok());
    cache_file::is_cache_name(name) && tag.is_some_and(|t| persist::cache_dir::cache_file_name(module_path.as_bytes(), t) == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_must_be_named_for_its_module() {
        let name = persist::cache_dir::cache_file_name(b"/usr/lib/libx.so", 0xabc);
        assert!(super::named_for(&name, "/usr/lib/libx.so"));
        assert!(!super::named_for(&name, "/usr/lib/liby.so"));
        assert!(!super::named_for("../../etc/passwd", "/usr/lib/libx.so"));
        assert!(!super::named_for("x.dpc", "/usr/lib/libx.so"));
    }
}
