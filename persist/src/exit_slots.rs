//! Exit slots as a file holds them. A slot's value in the file is where
//! its exit goes, as a distance from its own segment's X zone (negative
//! for a block of an earlier segment), stored with its top bit flipped:
//! for any distance a file can hold that is a non-canonical address, so
//! a jump through a slot the loader has not rebased yet faults (#GP)
//! rather than going anywhere. The runtime rebases a W zone's slots a
//! page at a time, when a jump through one of them first faults (its
//! private pages are copied only as they are used), or all at once
//! (`docs/dpc-format.md`).

/// Flipped in every stored distance.
const FLIP: u64 = 1 << 63;

/// The value a file stores for a slot leading `distance` bytes past its
/// segment's X zone.
pub fn stored(distance: i64) -> u64 {
    distance as u64 ^ FLIP
}

/// The distance from its segment's X zone that the slot value `value`
/// stores, or None if it is an address (a canonical one: rebased, or
/// written by the runtime since).
pub fn distance(value: u64) -> Option<i64> {
    let top = value >> 47;
    (top != 0 && top != 0x1_ffff).then_some((value ^ FLIP) as i64)
}

/// The address the slot value `value` leads to in a segment whose X zone
/// is at `x`: rebased if the file still stores a distance.
pub fn resolve(value: u64, x: u64) -> u64 {
    match distance(value) {
        Some(d) => x.wrapping_add(d as u64),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_distances_are_never_canonical_addresses() {
        for d in [0i64, 8, 4096, 0x7fff_ffff, -8, -4096, -0x7fff_ffff, 1 << 40, -(1 << 40)] {
            let v = stored(d);
            let top = v >> 47;
            assert!(top != 0 && top != 0x1_ffff, "{d}: {v:#x} is canonical");
            assert_eq!(distance(v), Some(d));
            assert_eq!(resolve(v, 0x7e00_0000_0000), 0x7e00_0000_0000u64.wrapping_add(d as u64));
        }
    }

    #[test]
    fn addresses_are_left_as_they_are() {
        for a in [0u64, 0x40_1000, 0x7e00_1234_5678, 0x7fff_ffff_f000] {
            assert_eq!(distance(a), None);
            assert_eq!(resolve(a, 0x1000), a);
        }
    }
}
