//! The fixed header at offset 0 of the R zone.
//!
//! ```text
//! 0   magic "DBIPCACH" (8)
//! 8   format version u32, header length u32 (bytes used in the R zone before the key)
//! 16  zone table: 3 × { offset u64, length u64, blake3 [32] } (R, X, W)
//! 160 key length u32, index offset u32 (from the R zone start), index length u32, reserved u32
//! 176 header hash: blake3 of bytes 0..176, the R zone hash read as zeros [32]
//! 208 the key bytes, then padding to 16, then the index
//! ```
//! The R zone's hash covers the R zone with its own hash field (bytes
//! 16+32..16+64) read as zeros, since it cannot contain itself.

pub const MAGIC: &[u8; 8] = b"DBIPCACH";
pub const FORMAT_VERSION: u32 = 1;
pub const PAGE: u64 = 4096;
pub const HEADER_LEN: usize = 208;
pub const ZONE_TABLE: usize = 16;
pub const ZONE_ENTRY: usize = 48;
pub const KEY_LEN_AT: usize = 160;
pub const HEADER_HASH_AT: usize = 176;
/// Where the R zone's own hash sits (zeroed while it is computed).
pub const R_HASH_AT: usize = ZONE_TABLE + 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneKind {
    ReadOnly = 0,
    Exec = 1,
    Writable = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub offset: u64,
    pub len: u64,
    pub hash: [u8; 32],
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The zone table entry for `kind` of a header.
pub fn zone(header: &[u8], kind: ZoneKind) -> Zone {
    let at = ZONE_TABLE + ZONE_ENTRY * kind as usize;
    Zone { offset: u64_at(header, at), len: u64_at(header, at + 8), hash: header[at + 16..at + 48].try_into().unwrap() }
}

/// blake3 of the header's first 176 bytes with the R zone's hash field read
/// as zeros (that hash covers the header, so it is written last).
pub fn header_hash(file: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&file[..R_HASH_AT]);
    h.update(&[0u8; 32]);
    h.update(&file[R_HASH_AT + 32..HEADER_HASH_AT]);
    *h.finalize().as_bytes()
}

/// blake3 of the R zone with its own hash field read as zeros.
pub fn read_only_hash(r_zone: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&r_zone[..R_HASH_AT]);
    h.update(&[0u8; 32]);
    h.update(&r_zone[R_HASH_AT + 32..]);
    *h.finalize().as_bytes()
}
