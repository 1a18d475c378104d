//! Building a file: the R zone (header, key, index), then the X and W
//! zones, each starting on a page boundary.

use alloc::vec::Vec;

use crate::header::*;
use crate::index::Index;
use crate::key::CacheKey;

fn page_up(x: usize) -> usize {
    (x + PAGE as usize - 1) & !(PAGE as usize - 1)
}

/// The bytes of a file for `key` with `index`, executable `code` and
/// writable `data`.
pub fn build(key: &CacheKey, index: &Index, code: &[u8], data: &[u8]) -> Vec<u8> {
    let key_bytes = key.encode();
    let index_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(index).expect("the index serialises");
    let index_at = (HEADER_LEN + key_bytes.len() + 15) & !15;
    let r_len = index_at + index_bytes.len();
    let x_at = page_up(r_len);
    let w_at = x_at + page_up(code.len());
    let total = w_at + page_up(data.len());
    let mut file = alloc::vec![0u8; total];
    file[..8].copy_from_slice(MAGIC);
    file[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    file[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    file[KEY_LEN_AT..KEY_LEN_AT + 4].copy_from_slice(&(key_bytes.len() as u32).to_le_bytes());
    file[KEY_LEN_AT + 4..KEY_LEN_AT + 8].copy_from_slice(&(index_at as u32).to_le_bytes());
    file[KEY_LEN_AT + 8..KEY_LEN_AT + 12].copy_from_slice(&(index_bytes.len() as u32).to_le_bytes());
    file[HEADER_LEN..HEADER_LEN + key_bytes.len()].copy_from_slice(&key_bytes);
    file[index_at..r_len].copy_from_slice(&index_bytes);
    file[x_at..x_at + code.len()].copy_from_slice(code);
    file[w_at..w_at + data.len()].copy_from_slice(data);

    let zones = [(0usize, x_at), (x_at, w_at - x_at), (w_at, total - w_at)];
    for (k, &(off, len)) in zones.iter().enumerate() {
        let at = ZONE_TABLE + ZONE_ENTRY * k;
        file[at..at + 8].copy_from_slice(&(off as u64).to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&(len as u64).to_le_bytes());
    }
    // X and W hashes, then the header hash, then R's (which covers both).
    for k in [1usize, 2] {
        let (off, len) = zones[k];
        let h = *blake3::hash(&file[off..off + len]).as_bytes();
        let at = ZONE_TABLE + ZONE_ENTRY * k + 16;
        file[at..at + 32].copy_from_slice(&h);
    }
    let header_hash = crate::header::header_hash(&file);
    file[HEADER_HASH_AT..HEADER_HASH_AT + 32].copy_from_slice(&header_hash);
    let r_hash = read_only_hash(&file[..x_at]);
    file[R_HASH_AT..R_HASH_AT + 32].copy_from_slice(&r_hash);
    file
}
