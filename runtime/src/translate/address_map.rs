//! An ordered map from addresses to small values for keys that rise
//! within a few regions, kept as sorted runs of at most a heap page each:
//! the fragment table's index by cache address.
//!
//! A B-tree's nodes of 11 entries, half to two-thirds full, took 40 bytes
//! an entry of 16 (a cold python3 -c pass keeps 38,000 fragments), and
//! every insert walked four or five nodes. Cache addresses are handed out
//! in rising order within each region (the cache's bottom, each
//! persistable segment), so an insert is an append to the run its region
//! ends in; one that lands inside a run (a region below another's
//! entries) splits the run there, so the region's next inserts append.
//! Keys in random order would split runs into tiny ones: a B-tree suits
//! those.

use alloc::vec::Vec;

pub(crate) struct AddressMap<V> {
    /// Non-empty runs, each sorted, every key of one below every key of
    /// the next.
    runs: Vec<Vec<(u64, V)>>,
}

impl<V> Default for AddressMap<V> {
    fn default() -> Self {
        AddressMap { runs: Vec::new() }
    }
}

impl<V: Copy> AddressMap<V> {
    /// Entries a run holds at most: a run's buffer is one block of the
    /// heap's largest size class.
    const RUN: usize = 4096 / core::mem::size_of::<(u64, V)>();

    /// The run `key` belongs in: the last one starting at or below it
    /// (the first one for a key below every run).
    fn run_for(&self, key: u64) -> usize {
        self.runs.partition_point(|r| r[0].0 <= key).saturating_sub(1)
    }

    pub(crate) fn insert(&mut self, key: u64, value: V) {
        if self.runs.is_empty() {
            self.runs.push(Self::new_run(key, value));
            return;
        }
        let i = self.run_for(key);
        let run = &mut self.runs[i];
        let at = match run.binary_search_by_key(&key, |e| e.0) {
            Ok(at) => {
                run[at].1 = value;
                return;
            }
            Err(at) => at,
        };
        if at == run.len() {
            if run.len() < Self::RUN {
                run.push((key, value));
            } else {
                // Past a full run's end: a new run, leaving the full one full.
                self.runs.insert(i + 1, Self::new_run(key, value));
            }
        } else if at == 0 {
            // Below every key (the run is the first): a run of its own.
            self.runs.insert(i, Self::new_run(key, value));
        } else {
            // Inside the run: the entries above go to a run of their own,
            // and this region's next keys append to this one.
            let mut upper = Vec::with_capacity(Self::RUN);
            upper.extend_from_slice(&run[at..]);
            run.truncate(at);
            run.push((key, value));
            self.runs.insert(i + 1, upper);
        }
    }

    fn new_run(key: u64, value: V) -> Vec<(u64, V)> {
        let mut run = Vec::with_capacity(Self::RUN);
        run.push((key, value));
        run
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        let i = self.run_for(key);
        let run = self.runs.get_mut(i)?;
        let at = run.binary_search_by_key(&key, |e| e.0).ok()?;
        let (_, value) = run.remove(at);
        if run.is_empty() {
            self.runs.remove(i);
        }
        Some(value)
    }

    /// The entry with the greatest key at or below `key`.
    pub(crate) fn at_or_below(&self, key: u64) -> Option<(u64, V)> {
        let run = self.runs.get(self.run_for(key))?;
        let at = run.partition_point(|e| e.0 <= key);
        at.checked_sub(1).map(|at| run[at])
    }

    /// The entries with keys in `[lo, hi)`, in order.
    pub(crate) fn range(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, V)> + '_ {
        let first = self.run_for(lo);
        self.runs
            .get(first..)
            .unwrap_or_default()
            .iter()
            .flat_map(|run| run.iter().copied())
            .skip_while(move |e| e.0 < lo)
            .take_while(move |e| e.0 < hi)
    }

    /// Keeps only the entries `keep` holds to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, V) -> bool) {
        for run in &mut self.runs {
            run.retain(|&(k, v)| keep(k, v));
        }
        self.runs.retain(|run| !run.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// Random inserts, appends and removals, checked against a B-tree
    /// after every step.
    #[test]
    fn behaves_as_an_ordered_map() {
        let mut map = AddressMap::<u64>::default();
        let mut model = BTreeMap::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut rising = 0x7e00_1000_0000u64;
        for step in 0..40_000u64 {
            let key = match next() % 8 {
                // Rising addresses, as a cache region hands them out.
                0..=3 => {
                    rising += 16 + next() % 64;
                    rising
                }
                // Anywhere, on a narrow range so keys repeat.
                4..=5 => next() % 20_000,
                // An existing key, or a near miss.
                _ => model.keys().nth((next() % (model.len() as u64 + 1)) as usize).copied().unwrap_or(0) + next() % 2,
            };
            if next() % 4 == 0 {
                assert_eq!(map.remove(key), model.remove(&key), "step {step}: remove {key:#x}");
            } else {
                map.insert(key, step);
                model.insert(key, step);
            }
            let probe = next() % 20_000;
            assert_eq!(map.at_or_below(probe), model.range(..=probe).next_back().map(|(&k, &v)| (k, v)), "step {step}");
        }
        assert!(map.runs.len() > 2, "the test made several runs");
        assert!(map.runs.iter().all(|r| !r.is_empty() && r.len() <= AddressMap::<u64>::RUN));
        assert!(map.runs.windows(2).all(|w| w[0].last().unwrap().0 < w[1][0].0));
        let all: Vec<(u64, u64)> = map.range(0, u64::MAX).collect();
        assert_eq!(all, model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        let (lo, hi) = (5_000, rising - 1_000);
        assert!(map.range(lo, hi).eq(model.range(lo..hi).map(|(&k, &v)| (k, v))));
        assert_eq!(map.at_or_below(rising + 1), Some((rising, model[&rising])));
        map.retain(|k, _| k % 3 != 0);
        model.retain(|k, _| k % 3 != 0);
        assert!(map.range(0, u64::MAX).eq(model.iter().map(|(&k, &v)| (k, v))));
    }

    #[test]
    fn an_empty_map_answers_nothing() {
        let mut map = AddressMap::<()>::default();
        assert_eq!(map.at_or_below(u64::MAX), None);
        assert_eq!(map.range(0, u64::MAX).count(), 0);
        assert_eq!(map.remove(7), None);
        map.insert(7, ());
        assert_eq!(map.at_or_below(6), None);
        assert_eq!(map.at_or_below(7), Some((7, ())));
        assert_eq!(map.remove(7), Some(()));
        assert!(map.runs.is_empty());
    }
}
