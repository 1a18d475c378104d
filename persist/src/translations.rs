//! Fault translation tables, packed into bytes: each entry is the cache
//! offset's increase, the app offset's change (zigzag) and the state
//! [`Fixup`]'s code, each as LEB128. A block's table is a few bytes per
//! instruction instead of sixteen.

use alloc::vec::Vec;

/// How machine state differs from the app's at a point in translated code
/// (the app pc is that of the instruction being translated): what fault
/// translation undoes. Registers are hardware numbers (0 rax .. 15 r15);
/// slots are byte offsets into the runtime's per-thread context.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fixup {
    /// Machine registers are the app's.
    None,
    /// The app value of `reg` is in the thread context at `slot`.
    Spilled { reg: u8, slot: u16 },
    /// rsp has been moved by this much already.
    RspMoved(i8),
    /// Two registers are spilled (a module-relative return address being
    /// pushed by an indirect call).
    Spilled2 { reg: u8, slot: u16, reg2: u8, slot2: u16 },
}

impl Fixup {
    /// The code stored in a table: kind in the low byte, then the fields.
    pub fn encode(self) -> u64 {
        match self {
            Fixup::None => 0,
            Fixup::Spilled { reg, slot } => 1 | (reg as u64) << 8 | (slot as u64) << 16,
            Fixup::RspMoved(d) => 2 | (d as u8 as u64) << 8,
            Fixup::Spilled2 { reg, slot, reg2, slot2 } => {
                3 | (reg as u64) << 8 | (slot as u64) << 16 | (reg2 as u64) << 32 | (slot2 as u64) << 40
            }
        }
    }

    /// The inverse of [`Fixup::encode`]; None for a code no runtime writes:
    /// an unknown kind, a register past r15, or a slot that is not a u64
    /// inside a thread context of `context_size` bytes.
    pub fn decode(v: u64, context_size: usize) -> Option<Fixup> {
        let reg = (v >> 8) as u8;
        let slot = (v >> 16) as u16;
        let valid = |r: u8, s: u16| r < 16 && (s as usize) + 8 <= context_size;
        let f = match v & 0xff {
            0 => Fixup::None,
            1 => Fixup::Spilled { reg, slot },
            2 => Fixup::RspMoved(reg as i8),
            3 => Fixup::Spilled2 { reg, slot, reg2: (v >> 32) as u8, slot2: (v >> 40) as u16 },
            _ => return None,
        };
        match f {
            Fixup::Spilled { reg, slot } if !valid(reg, slot) => None,
            Fixup::Spilled2 { reg, slot, reg2, slot2 } if !valid(reg, slot) || !valid(reg2, slot2) => None,
            f => Some(f),
        }
    }
}

/// One translation: from `cache_offset` into the block's code on, the app
/// pc is the block's start plus `app_offset`, with machine state differing
/// as the [`Fixup`] coded `fixup` says.
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
    fn fixups_round_trip_and_bad_codes_are_refused() {
        let all = [
            Fixup::None,
            Fixup::Spilled { reg: 15, slot: 0x80 },
            Fixup::RspMoved(-8),
            Fixup::RspMoved(127),
            Fixup::Spilled2 { reg: 0, slot: 8, reg2: 7, slot2: 0x1f8 },
        ];
        for f in all {
            assert_eq!(Fixup::decode(f.encode(), 0x200), Some(f), "{f:?}");
        }
        assert_eq!(Fixup::decode(4, 0x200), None, "unknown kind");
        assert_eq!(Fixup::decode(Fixup::Spilled { reg: 16, slot: 0 }.encode(), 0x200), None, "no register 16");
        assert_eq!(Fixup::decode(Fixup::Spilled { reg: 1, slot: 0x1f9 }.encode(), 0x200), None, "slot past the context");
        assert_eq!(Fixup::decode(Fixup::Spilled2 { reg: 1, slot: 0, reg2: 2, slot2: 0x200 }.encode(), 0x200), None);
    }

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
