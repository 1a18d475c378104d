//! The fixed header at offset 0 of the R zone, and the zone table after it.
//!
//! ```text
//! 0   magic "DBIPCACH" (8)
//! 8   format version u32
//! 12  header length u32 (64: the fixed part)
//! 16  zone count u32 (1..=MAX_ZONES)
//! 20  key length u32
//! 24  index offset u32 (from the file start, a multiple of 16)
//! 28  index length u32
//! 32  header hash [32]: blake3 of bytes 0..32 and the zone table, with the
//!     R zone's hash read as zeros
//! 64  zone table: zone count × { kind u32, reserved u32, offset u64,
//!     length u64, blake3 [32] } (56 bytes each); zone 0 is R
//! ..  the key, padding to 16, the index
//! ```
//! The R zone's hash covers the whole R zone with its own hash field read
//! as zeros, since it cannot contain itself.

pub const MAGIC: &[u8; 8] = b"DBIPCACH";
pub const FORMAT_VERSION: u32 = 13;
pub const PAGE: u64 = 4096;
pub const HEADER_LEN: usize = 64;
pub const ZONE_COUNT_AT: usize = 16;
pub const KEY_LEN_AT: usize = 20;
pub const INDEX_AT: usize = 24;
pub const INDEX_LEN_AT: usize = 28;
pub const HEADER_HASH_AT: usize = 32;
pub const ZONE_TABLE: usize = HEADER_LEN;
pub const ZONE_ENTRY: usize = 56;
/// Zones a file may have: R, then (W, X) pairs.
pub const MAX_ZONES: usize = 257;
/// Where the R zone's own hash sits (zeroed while it is computed).
pub const R_HASH_AT: usize = ZONE_TABLE + 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneKind {
    ReadOnly = 0,
    Exec = 1,
    Writable = 2,
}

impl ZoneKind {
    pub fn from_u32(v: u32) -> Option<ZoneKind> {
        match v {
            0 => Some(ZoneKind::ReadOnly),
            1 => Some(ZoneKind::Exec),
            2 => Some(ZoneKind::Writable),
            _ => None,
        }
    }

    /// The protection string `/proc/PID/maps` shows for a mapped zone.
    pub fn maps_perms(self) -> &'static str {
        match self {
            ZoneKind::ReadOnly => "r--p",
            ZoneKind::Exec => "r-xp",
            ZoneKind::Writable => "rw-p",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub kind: ZoneKind,
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

/// Bytes of the header plus a zone table of `zones` entries.
pub fn header_and_table_len(zones: usize) -> usize {
    HEADER_LEN + ZONE_ENTRY * zones
}

/// Zone table entry `i` (the caller checked the table is in bounds); None
/// for an unknown kind.
pub fn zone(file: &[u8], i: usize) -> Option<Zone> {
    let at = ZONE_TABLE + ZONE_ENTRY * i;
    Some(Zone {
        kind: ZoneKind::from_u32(u32_at(file, at))?,
        offset: u64_at(file, at + 8),
        len: u64_at(file, at + 16),
        hash: file[at + 24..at + 56].try_into().unwrap(),
    })
}

/// blake3 of the header's first 32 bytes and its zone table of `zones`
/// entries, the R zone's hash read as zeros (that hash covers the header,
/// so it is written last).
pub fn header_hash(file: &[u8], zones: usize) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&file[..HEADER_HASH_AT]);
    h.update(&file[ZONE_TABLE..R_HASH_AT]);
    h.update(&[0u8; 32]);
    h.update(&file[R_HASH_AT + 32..header_and_table_len(zones)]);
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
