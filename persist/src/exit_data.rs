//! The exit data a persisted exit stub carries right after its code: 24
//! bytes the runtime writes (its `ExitData`, position-independent form)
//! and reads when a thread leaves the cache through the stub, and that
//! `cachetool inspect --disasm` shows. Distances are from the data's own
//! first byte, so the bytes mean the same at any load address.

/// Bytes of exit data.
pub const LEN: usize = 24;

/// Bytes of a persisted stub's code, which its exit data follows
/// (`mov gs:[..], rax; lea rax, [rip + data]; jmp gs:[..]`).
pub const STUB_CODE_LEN: usize = 24;

/// The kinds a persisted stub may hold (the runtime's `ExitKind` values).
pub const KIND_DIRECT: u32 = 0x100;
pub const KIND_SYSCALL: u32 = 0x102;
/// A client's clean call: resumes right after the exit data.
pub const KIND_CLEAN_CALL: u32 = 0x103;
/// A trace spent its budget of missed in-line checks; the target is its
/// head's module offset.
pub const KIND_TRACE_STALE: u32 = 0x104;
/// A counting stub counted its head down to zero
/// ([`crate::counting_stubs`]): the target is the head's module offset,
/// `patch` the distance to the counter (the go slot follows it).
pub const KIND_HEAD_HOT: u32 = 0x105;
/// Set in a direct exit's kind when the trace monitor counts entries to
/// its target as a thread leaves by it: a block's backward exit (to its
/// own start or before) and every exit of a trace. Decided when the code
/// is emitted, so the monitor reads one bit rather than searching the
/// fragment that holds the branch, or a file's table of counted exits,
/// at every exit through the dispatcher.
pub const COUNTS_TARGET: u32 = 0x1000;

/// Exit data as stored: little-endian `target: u64`, `patch: u64`,
/// `kind: u32`, `aux: u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredExit {
    /// A direct exit's or system call's target as a module offset; 0 for a
    /// clean call.
    pub target: u64,
    /// Distances to the branch's rel32 field (low half) and to the exit's
    /// W slot (high half), 0 when there is no branch; a clean call's
    /// argument.
    pub patch: u64,
    pub kind: u32,
    /// Distance to the segment's module-base slot; a clean call's client
    /// index (high 8 bits) and id (low 24 bits).
    pub aux: u32,
}

/// The distance stored for `to` in data at `at`.
pub fn distance(at: u64, to: u64) -> u32 {
    to.wrapping_sub(at) as i32 as u32
}

/// The address a stored distance leads to from data at `at`.
pub fn from_distance(at: u64, distance: u32) -> u64 {
    at.wrapping_add(distance as i32 as i64 as u64)
}

impl StoredExit {
    /// A direct exit or system call at `at` to `module_offset`, whose
    /// branch's rel32 field and W slot are at `branch` and `slot` (0, 0:
    /// none), with the segment's module-base slot at `base_slot`.
    pub fn relative(at: u64, kind: u32, module_offset: u64, base_slot: u64, branch: u64, slot: u64) -> StoredExit {
        let patch = if branch == 0 { 0 } else { distance(at, branch) as u64 | (distance(at, slot) as u64) << 32 };
        StoredExit { target: module_offset, patch, kind, aux: distance(at, base_slot) }
    }

    /// A counting stub's way out at `at` when it counts its head (at
    /// `module_offset`) hot: its counter at `counter`, the module-base
    /// slot at `base_slot`.
    pub fn head_hot(at: u64, module_offset: u64, counter: u64, base_slot: u64) -> StoredExit {
        StoredExit { target: module_offset, patch: distance(at, counter) as u64, kind: KIND_HEAD_HOT, aux: distance(at, base_slot) }
    }

    /// A clean call of client `client`, call `id`, with argument `arg`.
    pub fn clean_call(client: u8, id: u32, arg: u64) -> StoredExit {
        StoredExit { target: 0, patch: arg, kind: KIND_CLEAN_CALL, aux: (client as u32) << 24 | (id & 0xff_ffff) }
    }

    pub fn to_bytes(self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(&self.target.to_le_bytes());
        b[8..16].copy_from_slice(&self.patch.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.to_le_bytes());
        b[20..].copy_from_slice(&self.aux.to_le_bytes());
        b
    }

    /// The exit data in `bytes` (at least [`LEN`] long).
    pub fn from_bytes(bytes: &[u8]) -> Option<StoredExit> {
        let b = bytes.get(..LEN)?;
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Some(StoredExit { target: u64_at(0), patch: u64_at(8), kind: u32_at(16), aux: u32_at(20) })
    }

    /// This data once moved `by` bytes, its distances still leading where
    /// they did (a file places a segment's stubs right after its code).
    pub fn moved(self, by: i64) -> StoredExit {
        let shift = |d: u32| (d as i32 as i64 - by) as i32 as u32;
        let patch = if self.patch == 0 { 0 } else { shift(self.patch as u32) as u64 | (shift((self.patch >> 32) as u32) as u64) << 32 };
        StoredExit { patch, aux: shift(self.aux), ..self }
    }

    /// Distances to the branch's rel32 field and the exit's W slot.
    pub fn branch_and_slot(&self) -> Option<(i32, i32)> {
        (self.kind != KIND_CLEAN_CALL && self.kind != KIND_HEAD_HOT && self.patch != 0).then_some((self.patch as u32 as i32, (self.patch >> 32) as u32 as i32))
    }

    /// A clean call's (client index, id, argument).
    pub fn clean_call_parts(&self) -> (u8, u32, u64) {
        ((self.aux >> 24) as u8, self.aux & 0xff_ffff, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_distances_reach_their_targets() {
        let at = 0x7000_1000;
        let e = StoredExit::relative(at, KIND_DIRECT, 0x1234, at - 0x800, at - 40, at - 0x900);
        assert_eq!(StoredExit::from_bytes(&e.to_bytes()), Some(e));
        let (branch, slot) = e.branch_and_slot().unwrap();
        assert_eq!((branch, slot), (-40, -0x900));
        assert_eq!(from_distance(at, e.aux), at - 0x800);
        assert_eq!(from_distance(at, e.patch as u32), at - 40);
        let call = StoredExit::clean_call(3, 0x12_3456, 0xdead_beef);
        assert_eq!(call.clean_call_parts(), (3, 0x12_3456, 0xdead_beef));
        assert_eq!(call.branch_and_slot(), None);
        assert!(StoredExit::from_bytes(&[0; LEN - 1]).is_none());
    }

    #[test]
    fn moved_data_still_reaches_its_branch_slot_and_base() {
        let (at, to) = (0x7000_9000u64, 0x7000_1000u64);
        let e = StoredExit::relative(at, KIND_DIRECT, 0x1234, at - 0x800, at - 40, at - 0x900);
        let m = e.moved(to as i64 - at as i64);
        assert_eq!((m.target, m.kind), (0x1234, KIND_DIRECT));
        assert_eq!(from_distance(to, m.aux), at - 0x800);
        let (branch, slot) = m.branch_and_slot().unwrap();
        assert_eq!((to.wrapping_add(branch as i64 as u64), to.wrapping_add(slot as i64 as u64)), (at - 40, at - 0x900));
        assert_eq!(StoredExit { patch: 0, ..e }.moved(-64).patch, 0, "no branch stays no branch");
    }
}
