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
    lay_out(key, index, zones).to_vec()
}

/// A file laid out: its R zone built (header, zone table with every
/// zone's hash, key, index), the other zones left where they are and
/// written from there, so that writing a file holds no copy of it.
pub struct Layout<'a> {
    r_zone: Vec<u8>,
    zones: Vec<&'a [u8]>,
}

/// What pads a zone to its page.
static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];

/// The most a writer writes of a file at once, and where it cuts: the
/// page cache keeps a file in folios as large as the writes that filled
/// it (ext4: up to 2 MiB), and a process mapping the file gets the whole
/// folio around any byte it touches in its resident set, where a file
/// written page by page gets the 64 KiB the kernel maps around a fault.
/// A warm run reads its files sparsely (the index's entries it looks up,
/// code but not stubs): written at once, python3's file of 7.7 MB cost a
/// warm `python3 -c pass` 1.9 MB more peak RSS (13.4 against 15.3 MB).
pub const WRITE_CHUNK: usize = 64 * 1024;

/// A piece of a file that starts at file offset `at`, cut at every
/// [`WRITE_CHUNK`] of the file.
struct Chunks<'a> {
    piece: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.piece.is_empty() {
            return None;
        }
        let room = WRITE_CHUNK - self.at % WRITE_CHUNK;
        let (chunk, rest) = self.piece.split_at(room.min(self.piece.len()));
        self.piece = rest;
        self.at += chunk.len();
        Some(chunk)
    }
}

impl<'a> Layout<'a> {
    /// The file's length.
    pub fn len(&self) -> usize {
        self.r_zone.len() + self.zones.iter().map(|z| page_up(z.len())).sum::<usize>()
    }

    /// The file's bytes in order, in pieces: R, then each zone and the
    /// zeros that pad it to a page, cut at every [`WRITE_CHUNK`] of the
    /// file, for writers to write one piece at a time.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut at = 0;
        core::iter::once(&self.r_zone[..])
            .chain(self.zones.iter().flat_map(|z| [*z, &ZEROS[..page_up(z.len()) - z.len()]]))
            .filter(|p| !p.is_empty())
            .flat_map(move |piece| {
                let chunks = Chunks { piece, at };
                at += piece.len();
                chunks
            })
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut file = Vec::with_capacity(self.len());
        for p in self.pieces() {
            file.extend_from_slice(p);
        }
        file
    }
}

/// Lays out a file for `key` with `index` and `zones` after R (as
/// [`build`] does, without copying the zones).
pub fn lay_out<'a>(key: &CacheKey, index: &Index, zones: &[(ZoneKind, &'a [u8])]) -> Layout<'a> {
    assert!(zones.len() < MAX_ZONES, "too many zones");
    let key_bytes = key.encode();
    let index_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(index).expect("the index serialises");
    let count = zones.len() + 1;
    let key_at = header_and_table_len(count);
    let index_at = (key_at + key_bytes.len() + 15) & !15;
    let r_len = page_up(index_at + index_bytes.len());
    let mut r = alloc::vec![0u8; r_len];
    r[..8].copy_from_slice(MAGIC);
    let put32 = |r: &mut Vec<u8>, at: usize, v: u32| r[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(&mut r, 8, FORMAT_VERSION);
    put32(&mut r, 12, HEADER_LEN as u32);
    put32(&mut r, ZONE_COUNT_AT, count as u32);
    put32(&mut r, KEY_LEN_AT, key_bytes.len() as u32);
    put32(&mut r, INDEX_AT, index_at as u32);
    put32(&mut r, INDEX_LEN_AT, index_bytes.len() as u32);
    r[key_at..key_at + key_bytes.len()].copy_from_slice(&key_bytes);
    r[index_at..index_at + index_bytes.len()].copy_from_slice(&index_bytes);
    let entry = |r: &mut Vec<u8>, i: usize, kind: ZoneKind, off: usize, len: usize, hash: Option<[u8; 32]>| {
        let e = ZONE_TABLE + ZONE_ENTRY * i;
        put32(r, e, kind as u32);
        r[e + 8..e + 16].copy_from_slice(&(off as u64).to_le_bytes());
        r[e + 16..e + 24].copy_from_slice(&(len as u64).to_le_bytes());
        if let Some(h) = hash {
            r[e + 24..e + 56].copy_from_slice(&h);
        }
    };
    entry(&mut r, 0, ZoneKind::ReadOnly, 0, r_len, None);
    let mut at = r_len;
    for (i, &(kind, bytes)) in zones.iter().enumerate() {
        assert!(kind != ZoneKind::Writable || bytes.len() % PAGE as usize == 0, "W zones are whole pages");
        let len = page_up(bytes.len());
        let mut h = blake3::Hasher::new();
        h.update(bytes);
        h.update(&ZEROS[..len - bytes.len()]);
        entry(&mut r, i + 1, kind, at, len, Some(*h.finalize().as_bytes()));
        at += len;
    }
    let header_hash = header_hash(&r, count);
    r[HEADER_HASH_AT..HEADER_HASH_AT + 32].copy_from_slice(&header_hash);
    let r_hash = read_only_hash(&r);
    r[R_HASH_AT..R_HASH_AT + 32].copy_from_slice(&r_hash);
    Layout { r_zone: r, zones: zones.iter().map(|&(_, z)| z).collect() }
}
