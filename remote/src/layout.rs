//! The objects a remote store holds, named the same in every backend and
//! in bazel-remote's two namespaces:
//!
//! - `cas/<sha256 of the bytes>`: a cache file compressed with zstd
//!   (a file is mostly code and tables: about a quarter of its size goes
//!   over the network), content-addressed, so immutable (bazel-remote
//!   checks the hash of what is put there);
//! - `ac/<sha256 of a full key>`: that key's [`Manifest`], naming the
//!   `cas/` object that holds the key's file. The one object ever
//!   replaced: by the manifest of a file with more blocks for the key;
//! - `ac/<sha256 of a module's content hash, runtime and format version>`:
//!   the module's [`Listing`], every key pushed for it, so a machine can
//!   pull a module's files without knowing which clients and options
//!   others ran with;
//! - `ac/<sha256 of a file name, runtime and format version>`: the keys
//!   pushed under that cache file name (one per module content seen at
//!   that path), for a cache server asked for a file by name.
//!
//! A full key is everything a cache file is valid for (module content
//! hash, clients, options, thread-context layout, runtime version) and
//! the format version. Nothing read back is trusted: a manifest must hash
//! to its own name, a file to its `cas/` name, and the caller checks the
//! file as an import does.

use persist::key::CacheKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How files are stored.
pub const ENCODING: &str = "zstd";

/// This layout's version, in every manifest and listing.
pub const LAYOUT_VERSION: u32 = 1;
/// A manifest larger than this is not one of ours.
pub const MANIFEST_LIMIT: u64 = 64 << 10;
/// Nor is a listing larger than this.
pub const LISTING_LIMIT: u64 = 4 << 20;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub use persist::hex;

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The object holding the file whose bytes hash to `sha256`.
pub fn file_object(sha256: &str) -> String {
    format!("cas/{sha256}")
}

/// The object holding the manifest of `key`.
pub fn key_object(key: &CacheKey) -> String {
    let mut h = Sha256::new();
    h.update(b"dbirun remote key\0");
    h.update(LAYOUT_VERSION.to_le_bytes());
    h.update(persist::FORMAT_VERSION.to_le_bytes());
    h.update(key.encode());
    format!("ac/{}", hex(&h.finalize()))
}

/// What a [`Listing`] lists the keys of.
pub enum Subject<'a> {
    /// The module whose contents hash (blake3) to this.
    Module(&'a [u8; 32]),
    /// The cache file name.
    File(&'a str),
}

impl Subject<'_> {
    fn words(&self) -> String {
        match self {
            Subject::Module(hash) => format!("module {}", hex(*hash)),
            Subject::File(name) => format!("file {name}"),
        }
    }
}

/// The object holding the listing of `subject`'s keys for files of
/// `runtime_version`.
pub fn listing_object(subject: &Subject<'_>, runtime_version: u32) -> String {
    let mut h = Sha256::new();
    h.update(b"dbirun remote listing\0");
    h.update(LAYOUT_VERSION.to_le_bytes());
    h.update(persist::FORMAT_VERSION.to_le_bytes());
    h.update(runtime_version.to_le_bytes());
    h.update(subject.words());
    format!("ac/{}", hex(&h.finalize()))
}

/// Which file holds a key's blocks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub layout: u32,
    pub format_version: u32,
    /// Hex, as cachetool prints it.
    pub runtime_version: String,
    /// The full key, encoded as files carry it, in hex.
    pub key: String,
    /// The file's name in a cache directory.
    pub name: String,
    pub module_path: String,
    /// Hex blake3 of the module's contents.
    pub module_hash: String,
    /// The file's size and hex sha256, as it is in a cache directory.
    pub size: u64,
    pub sha256: String,
    /// How the stored object is encoded (`zstd`), its size and hex sha256
    /// (its `cas/` name).
    pub encoding: String,
    pub stored_size: u64,
    pub stored_sha256: String,
    pub blocks: u64,
    /// Unix seconds.
    pub pushed: i64,
    /// Present when the pushing side signs (`crate::signing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signing::Signature>,
}

impl Manifest {
    pub fn file_object(&self) -> String {
        file_object(&self.stored_sha256)
    }

    pub fn cache_key(&self) -> Option<CacheKey> {
        CacheKey::decode(&unhex(&self.key)?)
    }

    /// The manifest in `bytes`, read from `object`: it must be one of this
    /// layout and format, and its key must hash to `object`.
    pub fn parse(bytes: &[u8], object: &str) -> Result<Manifest, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("manifest {object}: {e}"))?;
        if m.layout != LAYOUT_VERSION || m.format_version != persist::FORMAT_VERSION {
            return Err(format!("manifest {object}: layout {} format {} (this build: {LAYOUT_VERSION}, {})", m.layout, m.format_version, persist::FORMAT_VERSION));
        }
        let key = m.cache_key().ok_or_else(|| format!("manifest {object}: its key does not decode"))?;
        if key_object(&key) != object {
            return Err(format!("manifest {object}: its key belongs elsewhere"));
        }
        let sha_like = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !sha_like(&m.sha256) || !sha_like(&m.stored_sha256) || m.encoding != ENCODING || hex(&key.module_hash) != m.module_hash {
            return Err(format!("manifest {object}: inconsistent"));
        }
        Ok(m)
    }
}

/// One key of a module's listing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Listed {
    /// The key's manifest object (`ac/...`).
    pub manifest: String,
    /// The file's name, for messages.
    pub name: String,
}

/// Every key pushed for one subject (a module's contents, a file name)
/// and runtime version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Listing {
    pub layout: u32,
    pub format_version: u32,
    pub runtime_version: String,
    /// `module <hash>` or `file <name>`.
    pub of: String,
    pub keys: Vec<Listed>,
}

impl Listing {
    pub fn new(subject: &Subject<'_>, runtime_version: u32) -> Listing {
        Listing {
            layout: LAYOUT_VERSION,
            format_version: persist::FORMAT_VERSION,
            runtime_version: format!("{runtime_version:08x}"),
            of: subject.words(),
            keys: Vec::new(),
        }
    }

    /// The listing in `bytes`: it must be the one of `subject` and
    /// `runtime_version` in this layout, and name only manifest objects.
    pub fn parse(bytes: &[u8], subject: &Subject<'_>, runtime_version: u32) -> Result<Listing, String> {
        let l: Listing = serde_json::from_slice(bytes).map_err(|e| format!("listing: {e}"))?;
        let want = Listing::new(subject, runtime_version);
        if (l.layout, l.format_version, &l.runtime_version, &l.of) != (want.layout, want.format_version, &want.runtime_version, &want.of) {
            return Err("listing: made for another module, file, runtime or layout".into());
        }
        let manifest_like = |m: &str| m.strip_prefix("ac/").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !l.keys.iter().all(|k| manifest_like(&k.manifest)) {
            return Err("listing: names something other than manifests".into());
        }
        Ok(l)
    }

    /// Adds `listed` unless its manifest is there; whether it was added.
    pub fn add(&mut self, listed: Listed) -> bool {
        if self.keys.iter().any(|k| k.manifest == listed.manifest) {
            return false;
        }
        self.keys.push(listed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use persist::key::ClientKey;

    fn key(runtime_version: u32) -> CacheKey {
        CacheKey {
            module_hash: [7; 32],
            clients: vec![ClientKey { name: "bbcount".into(), version: 1, options_hash: 9 }],
            tls_layout_hash: 1,
            options_hash: 2,
            runtime_version,
        }
    }

    fn manifest(k: &CacheKey) -> Manifest {
        Manifest {
            layout: LAYOUT_VERSION,
            format_version: persist::FORMAT_VERSION,
            runtime_version: format!("{:08x}", k.runtime_version),
            key: hex(&k.encode()),
            name: "libx.so-0000000000000001-0000000000000002.dpc".into(),
            module_path: "/usr/lib/libx.so".into(),
            module_hash: hex(&k.module_hash),
            size: 4096,
            sha256: sha256_hex(b"file"),
            encoding: ENCODING.into(),
            stored_size: 100,
            stored_sha256: sha256_hex(b"stored"),
            blocks: 3,
            pushed: 0,
            signature: None,
        }
    }

    #[test]
    fn names_follow_the_whole_key() {
        let (a, b) = (key(1), key(2));
        assert_ne!(key_object(&a), key_object(&b));
        assert_eq!(key_object(&a), key_object(&key(1)));
        let m = Subject::Module(&a.module_hash);
        assert_ne!(listing_object(&m, 1), listing_object(&m, 2));
        assert_ne!(listing_object(&m, 1), listing_object(&Subject::File("x.dpc"), 1));
        assert!(key_object(&a).starts_with("ac/") && key_object(&a).len() == 67);
        assert_eq!(file_object(&sha256_hex(b"")), "cas/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn a_manifest_must_belong_where_it_was_read() {
        let k = key(1);
        let m = manifest(&k);
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes, &key_object(&k)).unwrap(), m);
        assert!(Manifest::parse(&bytes, &key_object(&key(2))).unwrap_err().contains("belongs elsewhere"));
        let mut wrong_module = m.clone();
        wrong_module.module_hash = hex(&[8; 32]);
        assert!(Manifest::parse(&serde_json::to_vec(&wrong_module).unwrap(), &key_object(&k)).is_err());
        let mut bad_sha = m.clone();
        bad_sha.stored_sha256 = "../../etc/passwd".into();
        assert!(Manifest::parse(&serde_json::to_vec(&bad_sha).unwrap(), &key_object(&k)).is_err());
        let mut other_encoding = m.clone();
        other_encoding.encoding = "gzip".into();
        assert!(Manifest::parse(&serde_json::to_vec(&other_encoding).unwrap(), &key_object(&k)).is_err());
        assert!(Manifest::parse(b"{", &key_object(&k)).is_err());
    }

    #[test]
    fn a_listing_must_be_the_modules_and_name_manifests() {
        let m = Subject::Module(&[7; 32]);
        let mut l = Listing::new(&m, 1);
        assert!(l.add(Listed { manifest: key_object(&key(1)), name: "a".into() }));
        assert!(!l.add(Listed { manifest: key_object(&key(1)), name: "a".into() }));
        let bytes = serde_json::to_vec(&l).unwrap();
        assert_eq!(Listing::parse(&bytes, &m, 1).unwrap(), l);
        assert!(Listing::parse(&bytes, &Subject::Module(&[8; 32]), 1).is_err());
        assert!(Listing::parse(&bytes, &Subject::File("a"), 1).is_err());
        assert!(Listing::parse(&bytes, &m, 2).is_err());
        l.keys.push(Listed { manifest: "cas/x".into(), name: "b".into() });
        assert!(Listing::parse(&serde_json::to_vec(&l).unwrap(), &m, 1).is_err());
    }
}
