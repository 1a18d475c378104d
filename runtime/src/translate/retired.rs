//! Fragments taken out of the fragment and trace tables while a thread may
//! still be running them: a flush of the app bytes a block came from, a
//! trace gone stale. Their code stays where it is in the cache (which
//! never reuses it), exits linked to them were pointed back at their
//! stubs, and a thread inside one leaves it at its next exit; until then
//! a fault or a signal it takes there is translated and unlinked from the
//! fragment kept here. Without them a thread that wrote to the page its
//! own block came from and then faulted further on in that block died of
//! the fault, since nothing answered for its pc
//! (`tests/programs/fault_after_flush.c`; the JVM, a thread at its
//! safepoint poll while another patched code on the same page).

use alloc::collections::{BTreeMap, VecDeque};

use crate::translate::fragment::Fragment;

#[derive(Default)]
pub(crate) struct Retired {
    /// Each kept fragment, by its cache start, with the epoch it was
    /// retired in (`quiescence.rs`).
    by_start: BTreeMap<u64, (u64, Fragment)>,
    /// (epoch, start) of each, in the order kept: epochs never go down.
    kept: VecDeque<(u64, u64)>,
}

impl Retired {
    /// Keeps `fragment`, just taken out of its table with the exits linked
    /// to it unlinked.
    pub(crate) fn keep(&mut self, fragment: Fragment) {
        self.keep_in(crate::quiescence::epoch(), fragment);
    }

    fn keep_in(&mut self, epoch: u64, mut fragment: Fragment) {
        fragment.take_incoming();
        self.kept.push_back((epoch, fragment.start));
        self.by_start.insert(fragment.start, (epoch, fragment));
    }

    /// Frees the fragments retired before epoch `oldest`, which no thread
    /// runs any more ([`crate::quiescence::oldest_passage`]), except those
    /// `wanted` still (by cache start); returns how many went.
    pub(crate) fn free_before(&mut self, oldest: u64, wanted: impl Fn(u64) -> bool) -> u64 {
        let mut freed = 0;
        while let Some(&(epoch, start)) = self.kept.front().filter(|(epoch, _)| *epoch < oldest) {
            self.kept.pop_front();
            // Not one kept again at the same start since (the cache took
            // the addresses back and reused them), nor one still wanted.
            if self.by_start.get(&start).is_some_and(|(e, _)| *e == epoch) && !wanted(start) {
                self.by_start.remove(&start);
                freed += 1;
            }
        }
        freed
    }

    /// The kept fragment whose code contains cache address `pc`.
    pub(crate) fn containing(&self, pc: u64) -> Option<&Fragment> {
        fragment_at(&self.by_start, pc, |(_, f)| f)
    }

    /// [`Retired::containing`], for a fault's translation or a signal's
    /// unlinking: none with `DBI_TEST_FORGET_RETIRED` (`fault_injection.rs`).
    pub(crate) fn answering_for(&self, pc: u64) -> Option<&Fragment> {
        self.containing(pc).filter(|_| !crate::fault_injection::retired_forgotten())
    }

    /// The kept fragment whose code starts at `start`.
    pub(crate) fn get(&self, start: u64) -> Option<&Fragment> {
        self.by_start.get(&start).map(|(_, f)| f)
    }

    /// How many fragments it keeps.
    pub(crate) fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Forgets the fragments whose code starts in `[lo, hi)`: the cache
    /// takes those addresses back (ahead-of-time translation's batches).
    pub(crate) fn forget_code_in(&mut self, lo: u64, hi: u64) {
        let mut above = self.by_start.split_off(&lo);
        let mut rest = above.split_off(&hi);
        self.by_start.append(&mut rest);
    }
}

/// The fragment of `by_start` (fragments, or what holds them, by cache
/// start) whose code contains cache address `pc`.
pub(crate) fn fragment_at<V>(by_start: &BTreeMap<u64, V>, pc: u64, fragment: impl Fn(&V) -> &Fragment) -> Option<&Fragment> {
    let f = fragment(by_start.range(..=pc).next_back()?.1);
    (pc < f.start + f.size as u64).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(tag: u64, start: u64, size: u32) -> Fragment {
        crate::translate::fragment::tests::fragment(tag, 16, start, size)
    }

    #[test]
    fn a_kept_fragment_answers_for_its_code_only() {
        let mut r = Retired::default();
        r.keep(fragment(0x1000, 0x9000, 0x40));
        r.keep(fragment(0x2000, 0x9100, 0x20));
        assert_eq!(r.containing(0x9000).map(|f| f.tag), Some(0x1000));
        assert_eq!(r.containing(0x903f).map(|f| f.tag), Some(0x1000));
        assert!(r.containing(0x9040).is_none(), "past its end");
        assert!(r.containing(0x8fff).is_none(), "before the first");
        assert_eq!(r.containing(0x9110).map(|f| f.tag), Some(0x2000));
    }

    #[test]
    fn frees_what_was_retired_before_the_oldest_passage_and_is_not_wanted() {
        let mut r = Retired::default();
        r.keep_in(3, fragment(0x1000, 0x9000, 0x40));
        r.keep_in(3, fragment(0x2000, 0x9100, 0x20));
        r.keep_in(4, fragment(0x3000, 0x9200, 0x20));
        r.keep_in(6, fragment(0x4000, 0x9300, 0x20));
        assert_eq!(r.free_before(3, |_| false), 0, "a thread passed last in epoch 3");
        assert_eq!(r.free_before(5, |start| start == 0x9100), 2, "the wanted one stays");
        assert!(r.containing(0x9000).is_none() && r.containing(0x9200).is_none());
        assert!(r.containing(0x9110).is_some() && r.containing(0x9300).is_some());
        // Code given back and reused: the new one at the same start is
        // not freed for the old one's epoch.
        r.forget_code_in(0x9300, 0x9400);
        r.keep_in(9, fragment(0x5000, 0x9300, 0x20));
        assert_eq!(r.free_before(7, |_| false), 0);
        assert_eq!(r.containing(0x9300).map(|f| f.tag), Some(0x5000));
        assert_eq!(r.free_before(10, |_| false), 1);
        assert_eq!(r.len(), 1, "the wanted one, never offered again");
    }

    #[test]
    fn forgetting_a_range_of_code_keeps_the_rest() {
        let mut r = Retired::default();
        r.keep(fragment(0x1000, 0x9000, 0x40));
        r.keep(fragment(0x2000, 0x9100, 0x20));
        r.keep(fragment(0x3000, 0x9200, 0x20));
        r.forget_code_in(0x9100, 0x9200);
        assert!(r.containing(0x9110).is_none());
        assert!(r.containing(0x9000).is_some() && r.containing(0x9200).is_some());
    }
}
