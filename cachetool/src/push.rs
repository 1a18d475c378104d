//! `push`: a directory's valid cache files into a remote store, in the
//! layout of `remote::layout`: for each file, its bytes under `cas/`
//! (skipped when the store has them: HEAD first), its key's manifest,
//! and its module's listing. A key whose manifest in the store names a
//! file with as many blocks is left alone, so the store keeps the
//! richest file pushed for each key. Files are pushed by several threads;
//! the first failure of the store stops the push (what was pushed stays
//! whole: a manifest is written only after its file, a listing after its
//! manifest).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use remote::layout::{self, Listed, Listing, Manifest, Subject};
use remote::signing::Signer;
use remote::{RemoteError, Store};
use serde::Serialize;

use crate::cache_file;

/// zstd's level for stored files: cc1's 313 MB file takes 1.2 s and
/// goes over the network as 72 MB.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Files sent (or whose manifest now names them): name, module.
    pub pushed: Vec<(String, String)>,
    /// Files the store already holds, or holds better: name, why.
    pub present: Vec<(String, String)>,
    /// Files not pushed (corrupt, another runtime's): name, why.
    pub skipped: Vec<(String, String)>,
    /// Bytes sent (compressed files).
    pub bytes: u64,
}

enum Outcome {
    Pushed { module: String, sent: u64 },
    Present(String),
    Skipped(String),
}

/// Pushes the files `names` of `dir` with `jobs` threads, their manifests
/// signed by `signer` if given, calling `tick` after each; gives what
/// happened, and the store's failure if one stopped it.
pub fn push(
    store: &dyn Store,
    dir: &Path,
    names: &[String],
    jobs: usize,
    signer: Option<&Signer>,
    tick: &(dyn Fn() + Sync),
) -> (Report, Option<RemoteError>) {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(Report::default());
    let failure: Mutex<Option<RemoteError>> = Mutex::new(None);
    // Listings are read, extended and written back: one at a time, so
    // this push's own threads never drop each other's keys.
    let listings = Mutex::new(());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, names.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= names.len() || failure.lock().unwrap().is_some() {
                    break;
                }
                let name = &names[i];
                let outcome = push_one(store, dir, name, signer, &listings);
                let mut r = report.lock().unwrap();
                match outcome {
                    Ok(Outcome::Pushed { module, sent }) => {
                        r.pushed.push((name.clone(), module));
                        r.bytes += sent;
                    }
                    Ok(Outcome::Present(why)) => r.present.push((name.clone(), why)),
                    Ok(Outcome::Skipped(why)) => r.skipped.push((name.clone(), why)),
                    Err(e) => {
                        failure.lock().unwrap().get_or_insert(e);
                    }
                }
                drop(r);
                tick();
            });
        }
    });
    let mut report = report.into_inner().unwrap();
    for list in [&mut report.pushed, &mut report.present, &mut report.skipped] {
        list.sort();
    }
    (report, failure.into_inner().unwrap())
}

fn push_one(store: &dyn Store, dir: &Path, name: &str, signer: Option<&Signer>, listings: &Mutex<()>) -> Result<Outcome, RemoteError> {
    // The runtime replaces files by renaming: the mapping is one version.
    let (mapped, _) = match cache_file::map(&dir.join(name)) {
        Ok(x) => x,
        Err(e) => return Ok(Outcome::Skipped(e.to_string())),
    };
    let bytes = mapped.bytes();
    let v = match persist::validate(bytes) {
        Ok(v) => v,
        Err(r) => return Ok(Outcome::Skipped(format!("corrupt ({})", r.name()))),
    };
    if v.key.runtime_version != crate::RUNTIME_VERSION {
        return Ok(Outcome::Skipped(format!("other runtime version ({:08x})", v.key.runtime_version)));
    }
    let sha256 = layout::sha256_hex(bytes);
    let key_object = layout::key_object(&v.key);
    let blocks = v.index.blocks.len() as u64;
    if let Some(old) = store.get(&key_object, layout::MANIFEST_LIMIT)? {
        // A signing pusher replaces what it did not sign: machines that
        // trust its key take nothing else.
        let ours = |m: &Manifest| signer.is_none_or(|s| m.signature.as_ref().is_some_and(|g| g.public_key == s.public_hex()));
        if let Ok(old) = Manifest::parse(&old, &key_object).map_err(drop).and_then(|m| if ours(&m) { Ok(m) } else { Err(()) }) {
            if old.sha256 == sha256 {
                return Ok(Outcome::Present("already in the store".into()));
            }
            if old.blocks >= blocks {
                return Ok(Outcome::Present(format!("the store's file for this key has {} blocks, this one {blocks}", old.blocks)));
            }
        }
    }
    let stored = match zstd::bulk::compress(bytes, ZSTD_LEVEL) {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Skipped(format!("cannot compress: {e}"))),
    };
    let stored_sha256 = layout::sha256_hex(&stored);
    let stored_size = stored.len() as u64;
    let file_object = layout::file_object(&stored_sha256);
    let mut sent = 0;
    if store.head(&file_object)? != Some(stored_size) {
        store.put(&file_object, stored)?;
        sent = stored_size;
    }
    let module = v.index.module.path.as_str().to_string();
    let mut manifest = Manifest {
        layout: layout::LAYOUT_VERSION,
        format_version: crate::FORMAT_VERSION,
        runtime_version: format!("{:08x}", v.key.runtime_version),
        key: crate::hex(&v.key.encode()),
        name: name.to_string(),
        module_path: module.clone(),
        module_hash: crate::hex(&v.key.module_hash),
        size: bytes.len() as u64,
        sha256,
        encoding: layout::ENCODING.into(),
        stored_size,
        stored_sha256,
        blocks,
        pushed: crate::now(),
        signature: None,
    };
    if let Some(s) = signer {
        s.sign(&mut manifest);
    }
    store.put(&key_object, serde_json::to_vec_pretty(&manifest).expect("a manifest serialises"))?;
    let _one_at_a_time = listings.lock().unwrap();
    // The module's listing (for pulls) and the file name's (for a cache
    // server asked for the file by name).
    for subject in [Subject::Module(&v.key.module_hash), Subject::File(name)] {
        list(store, &subject, v.key.runtime_version, Listed { manifest: key_object.clone(), name: name.to_string() })?;
    }
    Ok(Outcome::Pushed { module, sent })
}

/// Rounds of reading, extending and writing back a listing before
/// giving up on a store other machines keep changing.
const LISTING_ROUNDS: usize = 8;

/// Adds `listed` to `subject`'s listing. The listing is written only if
/// no one changed it since it was read (where the store supports that:
/// S3 does, with If-Match), else read again: machines pushing new keys
/// of one module at once keep each other's.
fn list(store: &dyn Store, subject: &Subject<'_>, runtime_version: u32, listed: Listed) -> Result<(), RemoteError> {
    let object = layout::listing_object(subject, runtime_version);
    for _ in 0..LISTING_ROUNDS {
        let (read, version) = match store.get_versioned(&object, layout::LISTING_LIMIT)? {
            Some((bytes, version)) => (Listing::parse(&bytes, subject, runtime_version).ok(), version),
            None => (None, None),
        };
        // A listing that is not one of ours is replaced by a true one.
        let mut listing = read.unwrap_or_else(|| Listing::new(subject, runtime_version));
        if !listing.add(listed.clone()) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&listing).expect("a listing serialises");
        // Without a version (absent, or a store that gives none), it is
        // created only if still absent, or written plainly.
        if store.put_if(&object, bytes, version.as_deref())? {
            return Ok(());
        }
    }
    Err(RemoteError::new(remote::Problem::Other, format!("{object}: changed by others {LISTING_ROUNDS} times while this push extended it")))
}
