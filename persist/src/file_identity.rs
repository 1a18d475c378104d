//! What identifies a file's contents without reading them: device, inode,
//! size, mtime and ctime (nanoseconds). If any changed, the contents may
//! have. Every cache file records its module's identity in this order; the
//! runtime and cachetool compare it before trusting a recorded content
//! hash, and cachetool keys its index rows on the cache files' own.

/// dev, inode, size, mtime, ctime.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: u64,
    pub ctime_ns: u64,
}

/// A stat time (seconds, nanoseconds) in nanoseconds since the epoch.
pub fn time_ns(sec: i64, nsec: i64) -> u64 {
    (sec as u64).wrapping_mul(1_000_000_000).wrapping_add(nsec as u64)
}

impl FileIdentity {
    /// The order cache files record it in.
    pub fn to_array(self) -> [u64; 5] {
        [self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns]
    }

    pub fn from_array(a: [u64; 5]) -> FileIdentity {
        FileIdentity { dev: a[0], ino: a[1], size: a[2], mtime_ns: a[3], ctime_ns: a[4] }
    }

    /// The identity of the file `meta` describes.
    #[cfg(feature = "std")]
    pub fn of(meta: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: time_ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: time_ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// What a cache file's lock file holds once that version of the file (by
/// its identity) passed every check: the identity and a hash of it, so a
/// later reader may skip the zone hashes. Written by whoever checked or
/// built the version (a runtime, the cache server).
pub fn verified_memo(identity: FileIdentity) -> [u8; 48] {
    let mut m = [0u8; 48];
    m[..40].copy_from_slice(&identity_bytes(identity));
    let h = blake3::hash(&m[..40]);
    m[40..].copy_from_slice(&h.as_bytes()[..8]);
    m
}

/// `identity`'s fields, little-endian, in the recorded order: how both
/// memos begin.
fn identity_bytes(identity: FileIdentity) -> [u8; 40] {
    let mut b = [0u8; 40];
    for (i, v) in identity.to_array().iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// Where a cache file's lock file holds its module memo (after the
/// verified memo).
pub const MODULE_MEMO_AT: u64 = 48;

/// What a cache file's lock file holds at [`MODULE_MEMO_AT`] once a
/// process hashed the module file with `identity` and found `hash` (its
/// file's key's): a module whose identity changed but whose bytes did not
/// (a copy in a fresh container, a new hard link, a `chmod`) is hashed by
/// one run, not by every run until a merge records its new identity.
pub fn module_memo(identity: FileIdentity, hash: &[u8; 32]) -> [u8; 80] {
    let mut m = [0u8; 80];
    m[..40].copy_from_slice(&identity_bytes(identity));
    m[40..72].copy_from_slice(hash);
    let h = blake3::hash(&m[..72]);
    m[72..].copy_from_slice(&h.as_bytes()[..8]);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_order_is_the_recorded_one() {
        let id = FileIdentity { dev: 1, ino: 2, size: 3, mtime_ns: 4, ctime_ns: 5 };
        assert_eq!(id.to_array(), [1, 2, 3, 4, 5]);
        assert_eq!(FileIdentity::from_array(id.to_array()), id);
        assert_eq!(time_ns(2, 5), 2_000_000_005);
    }

    #[cfg(feature = "std")]
    #[test]
    fn of_a_real_file() {
        let meta = std::fs::metadata("/bin/sh").unwrap();
        let id = FileIdentity::of(&meta);
        assert_eq!(id.size, meta.len());
        assert!(id.ino != 0 && id.mtime_ns > 1_000_000_000 * 1_000_000_000);
    }
}
