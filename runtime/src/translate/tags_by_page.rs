//! The fragment table's index by app address: the tags of live blocks by
//! the page they start on, for flushing a range of app code.
//!
//! A B-tree set of the tags took 3-4% of a cold python3 -c pass: an insert
//! for every block built, four or five nodes deep, a cache miss a node.
//! Flushes, the only readers, are rare next to inserts and ask for a few
//! pages (a JIT's patch, a write to code) or a module (an unmap): the
//! pages of a small range are looked up one by one, and a range of more
//! pages than the index holds is answered by a pass over all of them.

use alloc::vec::Vec;

use hashbrown::HashMap;

const PAGE_SHIFT: u32 = 12;

#[derive(Default)]
pub(crate) struct TagsByPage {
    /// Each page's tags, in no order, never empty.
    pages: HashMap<u64, Vec<u64>>,
}

impl TagsByPage {
    pub(crate) fn insert(&mut self, tag: u64) {
        let tags = self.pages.entry(tag >> PAGE_SHIFT).or_default();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    pub(crate) fn remove(&mut self, tag: u64) {
        let page = tag >> PAGE_SHIFT;
        let Some(tags) = self.pages.get_mut(&page) else { return };
        if let Some(i) = tags.iter().position(|&t| t == tag) {
            tags.swap_remove(i);
        }
        if tags.is_empty() {
            self.pages.remove(&page);
        }
    }

    /// The tags in `[lo, hi)`, in no particular order.
    pub(crate) fn in_range(&self, lo: u64, hi: u64) -> Vec<u64> {
        let inside = |t: &u64| (lo..hi).contains(t);
        let mut found = Vec::new();
        match self.pages_of(lo, hi) {
            Some(pages) => pages.filter_map(|p| self.pages.get(&p)).for_each(|tags| found.extend(tags.iter().copied().filter(inside))),
            None => self.pages.values().for_each(|tags| found.extend(tags.iter().copied().filter(inside))),
        }
        found
    }

    /// Takes the tags in `[lo, hi)` out of the index and returns them, in
    /// no particular order.
    pub(crate) fn take_range(&mut self, lo: u64, hi: u64) -> Vec<u64> {
        let inside = |t: &u64| (lo..hi).contains(t);
        let mut taken = Vec::new();
        let mut take_from = |tags: &mut Vec<u64>| {
            taken.extend(tags.iter().copied().filter(inside));
            tags.retain(|t| !inside(t));
            !tags.is_empty()
        };
        match self.pages_of(lo, hi) {
            Some(pages) => {
                for p in pages {
                    if let Some(tags) = self.pages.get_mut(&p) {
                        if !take_from(tags) {
                            self.pages.remove(&p);
                        }
                    }
                }
            }
            None => self.pages.retain(|_, tags| take_from(tags)),
        }
        taken
    }

    /// The pages `[lo, hi)` touches, if there are fewer of them than pages
    /// in the index (else a pass over the index is shorter).
    fn pages_of(&self, lo: u64, hi: u64) -> Option<core::ops::RangeInclusive<u64>> {
        if hi <= lo {
            return Some(1..=0);
        }
        let (first, last) = (lo >> PAGE_SHIFT, (hi - 1) >> PAGE_SHIFT);
        (last - first < self.pages.len() as u64).then_some(first..=last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<u64>) -> Vec<u64> {
        v.sort();
        v
    }

    #[test]
    fn finds_the_tags_of_a_range_by_pages_or_by_a_pass_over_all() {
        let mut t = TagsByPage::default();
        let tags = [0x1000, 0x1ff8, 0x2000, 0x2010, 0x5000, 0x9_0000_0000];
        tags.iter().for_each(|&tag| t.insert(tag));
        t.insert(0x2000);
        // A few pages, looked up one by one.
        assert_eq!(sorted(t.in_range(0x1ff8, 0x2011)), [0x1ff8, 0x2000, 0x2010]);
        assert_eq!(sorted(t.in_range(0x1ff9, 0x2010)), [0x2000], "the ends: lo in, hi out");
        // More pages than the index holds: one pass.
        assert_eq!(sorted(t.in_range(0, u64::MAX)), tags);
        assert_eq!(sorted(t.in_range(0x1001, 0x9_0000_0000)), [0x1ff8, 0x2000, 0x2010, 0x5000]);
        assert!(t.in_range(0x3000, 0x3000).is_empty() && t.in_range(0x3000, 0x1000).is_empty());
    }

    #[test]
    fn removes_and_takes_out_what_it_is_asked_to() {
        let mut t = TagsByPage::default();
        [0x1000, 0x1010, 0x2000, 0x5000, 0x5008, 0x8000].iter().for_each(|&tag| t.insert(tag));
        t.remove(0x1010);
        t.remove(0x1010);
        t.remove(0x7777);
        assert_eq!(sorted(t.in_range(0x1000, 0x2001)), [0x1000, 0x2000]);
        assert_eq!(sorted(t.take_range(0x1000, 0x2001)), [0x1000, 0x2000], "by pages");
        assert_eq!(sorted(t.in_range(0, u64::MAX)), [0x5000, 0x5008, 0x8000]);
        assert_eq!(sorted(t.take_range(0x5004, u64::MAX)), [0x5008, 0x8000], "in one pass");
        assert_eq!(t.in_range(0, u64::MAX), [0x5000]);
        assert_eq!(t.pages.len(), 1, "emptied pages go");
    }
}
