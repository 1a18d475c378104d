//! The vDSO as a module of the cache: it has no file, so its path is
//! [`PATH`] and its identity is made from its bytes (the kernel maps the
//! same image into every process until the machine boots another kernel).
//! The runtime keys the vDSO's cache file on it; cachetool compares it
//! with its own vDSO's to tell whether the file is still this machine's.

use crate::file_identity::FileIdentity;

/// The path cache files record for the vDSO (as /proc/PID/maps names it).
pub const PATH: &str = "[vdso]";

/// The identity and content hash of the vDSO image `image`: device and
/// inode 0 (no file has them), its size, and its hash's first 16 bytes
/// where a file's times would be, so another kernel's vDSO never has
/// the identity of this one.
pub fn identity_and_hash(image: &[u8]) -> (FileIdentity, [u8; 32]) {
    let hash = *blake3::hash(image).as_bytes();
    let word = |i: usize| u64::from_le_bytes(hash[i * 8..i * 8 + 8].try_into().unwrap());
    (FileIdentity { dev: 0, ino: 0, size: image.len() as u64, mtime_ns: word(0), ctime_ns: word(1) }, hash)
}
