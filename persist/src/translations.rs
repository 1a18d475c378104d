//! Fault translation tables, packed into bytes: each entry is the cache
//! offset's increase, the app offset's change (zigzag) and the runtime's
//! fixup code, each as LEB128. A block's table is a few bytes per
//! instruction instead of sixteen.

use alloc::vec::Vec;

/// One translation: from `cache_offset` into the block's code on, the app
/// pc is the block's start plus `app_offset`, with machine state differing
/// as the runtime's `fixup` code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub cache_offset: u32,
    pub app_offset: u32,
    pub fixup: u64,
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends the packed form of `entries` (in cache order) to `out`.
pub fn pack(out: &mut Vec<u8>, entries: impl IntoIterator<Item = Entry>) {
    let (mut cache, mut app) = (0u32, 0u32);
    for e in entries {
        put(out, e.cache_offset.wrapping_sub(cache) as u64);
        let delta = e.app_offset.wrapping_sub(app) as i32;
        put(out, ((delta << 1) ^ (delta >> 31)) as u32 as u64);
        put(out, e.fixup);
        (cache, app) = (e.cache_offset, e.app_offset);
    }
}

/// The entries of a packed table; ends early at malformed bytes.
pub struct Unpack<'a> {
    bytes: &'a [u8],
    cache: u32,
    app: u32,
}

pub fn unpack(bytes: &[u8]) -> Unpack<'_> {
    Unpack { bytes, cache: 0, app: 0 }
}

impl Unpack<'_> {
    fn get(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

impl Iterator for Unpack<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let cache = self.get()?;
        let app = self.get()?;
        let fixup = self.get()?;
        self.cache = self.cache.wrapping_add(cache as u32);
        let z = app as u32;
        self.app = self.app.wrapping_add(((z >> 1) as i32 ^ -((z & 1) as i32)) as u32);
        Some(Entry { cache_offset: self.cache, app_offset: self.app, fixup })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let entries = [
            Entry { cache_offset: 0, app_offset: 0, fixup: 0 },
            Entry { cache_offset: 7, app_offset: 3, fixup: 0x1234_5601 },
            Entry { cache_offset: 300, app_offset: 1, fixup: 2 },
            Entry { cache_offset: 70_000, app_offset: 4096, fixup: u64::MAX },
        ];
        let mut bytes = Vec::new();
        pack(&mut bytes, entries);
        assert_eq!(unpack(&bytes).collect::<Vec<_>>(), entries);
        assert!(unpack(&bytes[..bytes.len() - 1]).count() < entries.len());
    }
}
