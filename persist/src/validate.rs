//! Checking a file before anything in it is used: any length and any bytes
//! must give a clear rejection, never a panic or an out-of-bounds read.

use crate::header::*;
use crate::index::ArchivedIndex;
use crate::key::CacheKey;

/// Why a file was rejected (one reason, for `-v` and `cachetool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Truncated,
    BadMagic,
    FutureVersion,
    OldVersion,
    BadHeader,
    BadZones,
    ZoneHash(ZoneKind),
    BadKey,
    BadIndex,
}

/// A file that passed every check.
pub struct Validated<'a> {
    pub key: CacheKey,
    pub zones: [Zone; 3],
    pub index: &'a ArchivedIndex,
    file: &'a [u8],
}

impl<'a> Validated<'a> {
    pub fn zone_bytes(&self, kind: ZoneKind) -> &'a [u8] {
        let z = self.zones[kind as usize];
        &self.file[z.offset as usize..(z.offset + z.len) as usize]
    }
}

/// Checks the whole of `file` (its start must be 16-byte aligned, as a
/// mapping is).
pub fn validate(file: &[u8]) -> Result<Validated<'_>, Reject> {
    if file.len() < HEADER_LEN {
        return Err(if file.len() >= 8 && &file[..8] != MAGIC { Reject::BadMagic } else { Reject::Truncated });
    }
    if &file[..8] != MAGIC {
        return Err(Reject::BadMagic);
    }
    let version = u32_at(file, 8);
    if version > FORMAT_VERSION {
        return Err(Reject::FutureVersion);
    }
    if version < FORMAT_VERSION {
        return Err(Reject::OldVersion);
    }
    if u32_at(file, 12) as usize != HEADER_LEN || header_hash(file)[..] != file[HEADER_HASH_AT..HEADER_HASH_AT + 32] {
        return Err(Reject::BadHeader);
    }
    let zones = [zone(file, ZoneKind::ReadOnly), zone(file, ZoneKind::Exec), zone(file, ZoneKind::Writable)];
    // In order, page-aligned, back to back from offset 0 to the file's end.
    let mut expect = 0u64;
    for z in &zones {
        if z.offset != expect || z.offset % PAGE != 0 || z.len > file.len() as u64 {
            return Err(Reject::BadZones);
        }
        expect = z.offset.checked_add(z.len).ok_or(Reject::BadZones)?;
    }
    if expect != file.len() as u64 {
        return Err(if expect > file.len() as u64 { Reject::Truncated } else { Reject::BadZones });
    }
    let r = &file[..zones[0].len as usize];
    if read_only_hash(r) != zones[0].hash {
        return Err(Reject::ZoneHash(ZoneKind::ReadOnly));
    }
    for (k, kind) in [(1, ZoneKind::Exec), (2, ZoneKind::Writable)] {
        let z = zones[k];
        if blake3::hash(&file[z.offset as usize..(z.offset + z.len) as usize]).as_bytes() != &z.hash {
            return Err(Reject::ZoneHash(kind));
        }
    }
    let key_len = u32_at(file, KEY_LEN_AT) as usize;
    let index_at = u32_at(file, KEY_LEN_AT + 4) as usize;
    let index_len = u32_at(file, KEY_LEN_AT + 8) as usize;
    let key_end = HEADER_LEN.checked_add(key_len).ok_or(Reject::BadKey)?;
    if key_end > r.len() {
        return Err(Reject::BadKey);
    }
    let key = CacheKey::decode(&r[HEADER_LEN..key_end]).ok_or(Reject::BadKey)?;
    let index_end = index_at.checked_add(index_len).ok_or(Reject::BadIndex)?;
    if index_at < key_end || index_at % 16 != 0 || index_end > r.len() {
        return Err(Reject::BadIndex);
    }
    let index = rkyv::access::<ArchivedIndex, rkyv::rancor::Error>(&r[index_at..index_end]).map_err(|_| Reject::BadIndex)?;
    Ok(Validated { key, zones, index, file })
}
