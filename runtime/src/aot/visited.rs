//! The addresses discovery has taken up once: one bit per byte of a
//! module's code span. A hash set of a libLLVM-sized module's millions of
//! addresses spent most of its time missing the caches; the bitmap is an
//! eighth of the code's size and its probes are a shift and a mask.

use alloc::vec;
use alloc::vec::Vec;

pub(super) struct Visited {
    lo: u64,
    bits: Vec<u64>,
}

impl Visited {
    /// Room for every address in `[lo, hi)`.
    pub(super) fn over(lo: u64, hi: u64) -> Self {
        let words = (hi.saturating_sub(lo) as usize).div_ceil(64);
        Visited { lo, bits: vec![0; words] }
    }

    /// Marks `pc`; true the first time, false if it was marked before or
    /// lies outside the span.
    pub(super) fn first_visit(&mut self, pc: u64) -> bool {
        let Some(at) = pc.checked_sub(self.lo) else { return false };
        let Some(word) = self.bits.get_mut((at / 64) as usize) else { return false };
        let bit = 1u64 << (at % 64);
        let first = *word & bit == 0;
        *word |= bit;
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_new_once_and_outside_the_span_never() {
        let mut v = Visited::over(0x1000, 0x1081);
        assert!(v.first_visit(0x1000));
        assert!(!v.first_visit(0x1000));
        assert!(v.first_visit(0x1001));
        assert!(v.first_visit(0x1080));
        assert!(!v.first_visit(0x1080));
        assert!(!v.first_visit(0xfff));
        assert!(!v.first_visit(0x10c0));
    }
}
