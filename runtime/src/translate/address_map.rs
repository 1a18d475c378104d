//! An ordered map from addresses to small values for keys that rise
//! within a few regions, kept as sorted runs of at most a heap page each:
//! the fragment table's index by cache address.
//!
//! A B-tree's nodes of 11 entries, half to two-thirds full, took 40 bytes
//! an entry of 16 (a cold python3 -c pass keeps 38,000 fragments), and
//! every insert walked four or five nodes. Cache addresses are handed out
//! in rising order within each region (the cache's bottom, each
//! persistable segment), so an insert is an append to the run its region
//! ends in. One that lands inside a run (a region below another's
//! entries, or a loaded file's block, which come in the order a run
//! first reaches them) goes in place while the run has room; a full run
//! splits there, so a region's next inserts append. Splitting at every
//! such insert instead left a page-sized run per key in random order
//! (9.8 MB of heap and a `memmove` of the run list per insert in the
//! first run after ahead-of-time translation, which registers thousands
//! of a file's blocks).

use alloc::vec::Vec;

pub(crate) struct AddressMap<V> {
    /// Non-empty runs, each sorted, every key of one below every key of
    /// the next.
    runs: Vec<Vec<(u64, V)>>,
    /// Each run's first key: the search for a run reads this one array,
    /// not a cache line of every run it passes.
    firsts: Vec<u64>,
}

impl<V> Default for AddressMap<V> {
    fn default() -> Self {
        AddressMap { runs: Vec::new(), firsts: Vec::new() }
    }
}

impl<V: Copy> AddressMap<V> {
    /// Entries a run holds at most: a run's buffer is one block of the
    /// heap's largest size class.
    const RUN: usize = 4096 / core::mem::size_of::<(u64, V)>();

    /// The run `key` belongs in: the last one starting at or below it
    /// (the first one for a key below every run).
    fn run_for(&self, key: u64) -> usize {
        self.firsts.partition_point(|&first| first <= key).saturating_sub(1)
    }

    fn new_run_at(&mut self, i: usize, key: u64, value: V) {
        let mut run = Vec::with_capacity(Self::RUN);
        run.push((key, value));
        self.runs.insert(i, run);
        self.firsts.insert(i, key);
    }

    pub(crate) fn insert(&mut self, key: u64, value: V) {
        if self.runs.is_empty() {
            return self.new_run_at(0, key, value);
        }
        let i = self.run_for(key);
        let run = &mut self.runs[i];
        // Most keys come after every key of their run.
        let at = if run.last().is_some_and(|&(last, _)| last < key) {
            run.len()
        } else {
            match run.binary_search_by_key(&key, |e| e.0) {
                Ok(at) => {
                    run[at].1 = value;
                    return;
                }
                Err(at) => at,
            }
        };
        if run.len() < Self::RUN {
            run.insert(at, (key, value));
            if at == 0 {
                self.firsts[i] = key;
            }
        } else if at == run.len() {
            // Past a full run's end: a new run, leaving the full one full.
            self.new_run_at(i + 1, key, value);
        } else if at == 0 {
            // Below every key of a full first run: a run of its own.
            self.new_run_at(i, key, value);
        } else {
            // Inside a full run: the entries above go to a run of their
            // own, and this region's next keys append to this one.
            let mut upper = Vec::with_capacity(Self::RUN);
            upper.extend_from_slice(&run[at..]);
            run.truncate(at);
            run.push((key, value));
            self.firsts.insert(i + 1, upper[0].0);
            self.runs.insert(i + 1, upper);
        }
    }

    /// The entry with the greatest key at or below `key`.
    pub(crate) fn at_or_below(&self, key: u64) -> Option<(u64, V)> {
        let run = self.runs.get(self.run_for(key))?;
        let at = run.partition_point(|e| e.0 <= key);
        at.checked_sub(1).map(|at| run[at])
    }

    /// Removes the entry of `key`, if there is one.
    pub(crate) fn remove(&mut self, key: u64) {
        let i = self.run_for(key);
        let Some(run) = self.runs.get_mut(i) else { return };
        let Ok(at) = run.binary_search_by_key(&key, |e| e.0) else { return };
        run.remove(at);
        if run.is_empty() {
            self.runs.remove(i);
            self.firsts.remove(i);
        } else if at == 0 {
            self.firsts[i] = run[0].0;
        }
    }

    /// Keeps only the entries `keep` holds to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, V) -> bool) {
        for run in &mut self.runs {
            run.retain(|&(k, v)| keep(k, v));
        }
        self.runs.retain(|run| !run.is_empty());
        self.firsts = self.runs.iter().map(|run| run[0].0).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    impl<V: Copy> AddressMap<V> {
        fn entries(&self) -> Vec<(u64, V)> {
            self.runs.iter().flatten().copied().collect()
        }

        fn check_shape(&self) {
            assert!(self.runs.iter().all(|r| !r.is_empty() && r.len() <= Self::RUN));
            assert!(self.runs.windows(2).all(|w| w[0].last().unwrap().0 < w[1][0].0));
            assert_eq!(self.firsts, self.runs.iter().map(|r| r[0].0).collect::<Vec<_>>());
        }
    }

    /// Keys rising in several interleaved regions (as cache addresses
    /// come), some anywhere and some again, checked against a B-tree
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
        // Regions handed out from the top down, each filled bottom up.
        let mut regions: Vec<u64> = (0..6u64).map(|r| 0x7e00_4000_0000 - r * 0x10_0000).collect();
        for step in 0..40_000u64 {
            let key = match next() % 8 {
                0..=5 => {
                    let r = (next() % regions.len() as u64) as usize;
                    regions[r] += 16 + next() % 64;
                    regions[r]
                }
                6 => next() % 20_000,
                _ => model.keys().nth((next() % (model.len() as u64 + 1)) as usize).copied().unwrap_or(0),
            };
            map.insert(key, step);
            model.insert(key, step);
            let probe = match next() % 2 {
                0 => next() % 20_000,
                _ => regions[(next() % regions.len() as u64) as usize] - next() % 256,
            };
            assert_eq!(map.at_or_below(probe), model.range(..=probe).next_back().map(|(&k, &v)| (k, v)), "step {step}");
            if step % 1000 == 0 {
                map.check_shape();
            }
        }
        map.check_shape();
        assert!(map.runs.len() > 6, "the test made several runs: {}", map.runs.len());
        assert_eq!(map.entries(), model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        map.retain(|k, _| k % 3 != 0);
        model.retain(|k, _| k % 3 != 0);
        map.check_shape();
        assert_eq!(map.entries(), model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
    }

    /// Keys in random order (a loaded file's blocks, as a run first
    /// reaches them) fill runs before splitting them: few runs, none
    /// less than a few entries on average.
    #[test]
    fn random_keys_fill_runs() {
        let mut map = AddressMap::<u64>::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let n = 20_000;
        for step in 0..n {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            map.insert(0x7e00_0000_0000 + seed % 0x1000_0000, step);
        }
        map.check_shape();
        let most = 3 * n as usize / AddressMap::<u64>::RUN;
        assert!(map.runs.len() <= most, "{} runs for {n} random keys (at most {most})", map.runs.len());
    }

    #[test]
    fn an_empty_map_answers_nothing() {
        let mut map = AddressMap::<()>::default();
        assert_eq!(map.at_or_below(u64::MAX), None);
        map.insert(7, ());
        assert_eq!(map.at_or_below(6), None);
        assert_eq!(map.at_or_below(7), Some((7, ())));
        map.retain(|_, _| false);
        assert!(map.runs.is_empty() && map.firsts.is_empty());
        assert_eq!(map.at_or_below(7), None);
    }

    #[test]
    fn removed_entries_are_gone_and_emptied_runs_with_them() {
        let mut m = AddressMap::default();
        let keys: Vec<u64> = (0..3 * AddressMap::<u64>::RUN as u64).map(|i| 0x1000 + i * 0x10).collect();
        keys.iter().for_each(|&k| m.insert(k, k + 1));
        let mut model: BTreeMap<u64, u64> = keys.iter().map(|&k| (k, k + 1)).collect();
        // Every other key, then a whole run's worth, then keys not there.
        for &k in keys.iter().step_by(2).chain(&keys[..AddressMap::<u64>::RUN * 2]).chain(&[0x10, 0xffff_ffff]) {
            m.remove(k);
            model.remove(&k);
            m.check_shape();
        }
        assert_eq!(m.entries(), model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        for probe in [0x1000, 0x1015, keys[AddressMap::<u64>::RUN * 2] + 0x18, u64::MAX] {
            assert_eq!(m.at_or_below(probe), model.range(..=probe).next_back().map(|(&k, &v)| (k, v)), "{probe:#x}");
        }
    }
}
