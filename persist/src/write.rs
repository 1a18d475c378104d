//! Building a file: the R zone (header, zone table, key, index), then the
//! other zones in order, each starting on a page boundary.

use alloc::vec::Vec;

use crate::header::*;
use crate::index::Index;
use crate::key::CacheKey;

pub fn page_up(x: usize) -> usize {
    (x + PAGE as usize - 1) & !(PAGE as usize - 1)
}

/// Bytes to put before `len` bytes of W data so the zone ends on a page
/// boundary (W data ends where its X zone starts).
pub fn w_front_padding(len: usize) -> usize {
    page_up(len) - len
}

/// The bytes of a file for `key` with `index` and `zones` after R, in
/// order. X zones are padded at their end to a page; W zones must already
/// be a whole number of pages (see [`w_front_padding`]).
pub fn build(key: &CacheKey, index: &Index, zones: &[(ZoneKind, &[u8])]) -> Vec<u8> {
    assert!(zones.len() < MAX_ZONES, "too many zones");
    let key_bytes = key.encode();
    let index_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(index).expect("the index serialises");
    let count = zones.len() + 1;
    let key_at = header_and_table_len(count);
    let index_at = (key_at + key_bytes.len() + 15) & !15;
    let r_len = page_up(index_at + index_bytes.len());
    let mut table = Vec::with_capacity(count);
    table.push((ZoneKind::ReadOnly, 0usize, r_len));
    let mut at = r_len;
    for &(kind, bytes) in zones {
        assert!(kind != ZoneKind::Writable || bytes.len() % PAGE as usize == 0, "W zones are whole pages");
        table.push((kind, at, page_up(bytes.len())));
        at += page_up(bytes.len());
    }
    let mut file = alloc::vec![0u8; at];
    file[..8].copy_from_slice(MAGIC);
    let put32 = |file: &mut Vec<u8>, at: usize, v: u32| file[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(&mut file, 8, FORMAT_VERSION);
    put32(&mut file, 12, HEADER_LEN as u32);
    put32(&mut file, ZONE_COUNT_AT, count as u32);
    put32(&mut file, KEY_LEN_AT, key_bytes.len() as u32);
    put32(&mut file, INDEX_AT, index_at as u32);
    put32(&mut file, INDEX_LEN_AT, index_bytes.len() as u32);
    file[key_at..key_at + key_bytes.len()].copy_from_slice(&key_bytes);
    file[index_at..index_at + index_bytes.len()].copy_from_slice(&index_bytes);
    for (i, &(kind, bytes)) in zones.iter().enumerate() {
        let off = table[i + 1].1;
        file[off..off + bytes.len()].copy_from_slice(bytes);
        let _ = kind;
    }
    for (i, &(kind, off, len)) in table.iter().enumerate() {
        let e = ZONE_TABLE + ZONE_ENTRY * i;
        put32(&mut file, e, kind as u32);
        file[e + 8..e + 16].copy_from_slice(&(off as u64).to_le_bytes());
        file[e + 16..e + 24].copy_from_slice(&(len as u64).to_le_bytes());
        if i > 0 {
            let h = *blake3::hash(&file[off..off + len]).as_bytes();
            file[e + 24..e + 56].copy_from_slice(&h);
        }
    }
    let header_hash = header_hash(&file, count);
    file[HEADER_HASH_AT..HEADER_HASH_AT + 32].copy_from_slice(&header_hash);
    let r_hash = read_only_hash(&file[..r_len]);
    file[R_HASH_AT..R_HASH_AT + 32].copy_from_slice(&r_hash);
    file
}
