//! Deltas too small for a rewrite of their own, kept until they are worth
//! one. A warm run that builds a few blocks of a big module (a path it
//! took once, a hash-randomised branch of python) hands them over; alone
//! they would never pass `persist::merge::MIN_GROWTH_DIVISOR`, and the
//! run after builds them again (and pays the decoder's set-up, which only
//! building costs). Kept here, they are merged with the next deltas of
//! the file when together they grow it enough, or when one of their
//! blocks recurs (built by two runs: most runs build it), as few of them
//! as bring what recurs: each merged delta is a segment more, which every
//! later load maps. They live in the server's memory, a bounded number
//! per file: deltas gathered when the server stops are dropped (their
//! blocks come back with the runs that build them).

use std::collections::BTreeMap;

use persist::merge::{worth_rewriting, Fresh, MIN_GROWTH_DIVISOR};
use persist::Validated;
use rkyv::util::AlignedVec;

/// Deltas waiting for one file, at most (the oldest are dropped).
const MAX_WAITING: usize = 32;
/// Bytes of deltas waiting for one file, at most.
const MAX_WAITING_BYTES: usize = 16 << 20;
/// Bytes of deltas waiting for all files, at most: the server's memory
/// stays bounded however many modules runs use.
const MAX_ALL_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct Gathered {
    by_file: BTreeMap<String, Vec<AlignedVec<16>>>,
}

impl Gathered {
    /// The deltas waiting for the cache file `name`, oldest first (taken:
    /// those still not worth a rewrite come back through [`Self::keep`]).
    pub fn take(&mut self, name: &str) -> Vec<AlignedVec<16>> {
        self.by_file.remove(name).unwrap_or_default()
    }

    /// Keeps `deltas` for the file `name`, unless the deltas of every
    /// file would pass [`MAX_ALL_BYTES`] (then they are dropped).
    pub fn keep(&mut self, name: &str, deltas: Vec<AlignedVec<16>>) {
        let held: usize = self.by_file.values().flatten().map(|d| d.len()).sum();
        let more: usize = deltas.iter().map(|d| d.len()).sum();
        if !deltas.is_empty() && held + more <= MAX_ALL_BYTES {
            self.by_file.insert(name.to_string(), deltas);
        }
    }

    /// Deltas waiting, over every file.
    pub fn waiting(&self) -> usize {
        self.by_file.values().map(Vec::len).sum()
    }
}

/// Zones a file may reach through merges of small deltas: each brings a
/// (W, X) pair, which every later load protects on its own (a few
/// microseconds each, measured on /bin/true with libc's file at 61 zones
/// against 17), and a file that would pass `persist::header::MAX_ZONES`
/// starts over. Past this, a file takes only deltas worth a rewrite.
const MAX_ZONES_FOR_SMALL: usize = 32;

/// What to do with each delta waiting for a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    Merge,
    Wait,
    /// It brings nothing the file lacks, or waited too long.
    Drop,
}

/// What becomes of `deltas` (checked, of the file's key, oldest first)
/// merged into `old`: all of them when together they are worth a rewrite
/// (`persist::merge::worth_rewriting`); else, when blocks or lookup
/// targets recur (brought by two deltas: most runs build them), the
/// fewest deltas that bring them all, each one a segment more for every
/// later load to map; the others wait, the oldest dropped beyond
/// [`MAX_WAITING`] or [`MAX_WAITING_BYTES`].
pub fn decide(old: &Validated, deltas: &[&Validated], sizes: &[usize]) -> Vec<Fate> {
    let lacks = |v: &Validated| -> (Vec<u32>, Vec<u32>, usize) {
        let blocks = v.index.blocks.iter().map(|b| b.module_offset.to_native()).filter(|&b| old.index.block_at(b).is_none()).collect();
        let marks = v.index.lookup_marks.iter().map(|m| m.to_native()).filter(|&m| old.index.is_unmarked(m)).collect();
        let traces = v.index.traces.iter().filter(|t| old.index.trace_at(t.head.to_native()).is_none()).count();
        (blocks, marks, traces)
    };
    let brought: Vec<(Vec<u32>, Vec<u32>, usize)> = deltas.iter().map(|v| lacks(v)).collect();
    // Each offset the file lacks (marks apart from blocks), with how many
    // deltas bring it.
    let mut seen: BTreeMap<(bool, u32), usize> = BTreeMap::new();
    for (blocks, marks, _) in &brought {
        for &b in blocks {
            *seen.entry((false, b)).or_default() += 1;
        }
        for &m in marks {
            *seen.entry((true, m)).or_default() += 1;
        }
    }
    let fresh = Fresh {
        blocks: seen.keys().filter(|(mark, _)| !mark).count(),
        traces: brought.iter().map(|(_, _, t)| t).sum(),
        marks: seen.keys().filter(|(mark, _)| *mark).count(),
    };
    let brings = |i: usize| !brought[i].0.is_empty() || !brought[i].1.is_empty() || brought[i].2 > 0;
    let mut fates: Vec<Fate> = (0..deltas.len()).map(|i| if brings(i) { Fate::Wait } else { Fate::Drop }).collect();
    if worth_rewriting(fresh, old.index.blocks.len(), MIN_GROWTH_DIVISOR) {
        return fates.into_iter().map(|f| if f == Fate::Wait { Fate::Merge } else { f }).collect();
    }
    let mut recurring: Vec<(bool, u32)> = seen.into_iter().filter(|&(_, n)| n >= 2).map(|(k, _)| k).collect();
    let mut zones = old.zones.len();
    // Greedily, the delta that brings most of what recurs and is not
    // covered yet.
    while !recurring.is_empty() {
        let covers = |i: usize| {
            let (blocks, marks, _) = &brought[i];
            recurring.iter().filter(|&&(mark, o)| if mark { marks.contains(&o) } else { blocks.contains(&o) }).count()
        };
        let Some(best) = (0..deltas.len()).filter(|&i| fates[i] == Fate::Wait).max_by_key(|&i| (covers(i), i)) else { break };
        if covers(best) == 0 || zones + deltas[best].zones.len() - 1 > MAX_ZONES_FOR_SMALL {
            break;
        }
        zones += deltas[best].zones.len() - 1;
        fates[best] = Fate::Merge;
        let (blocks, marks, _) = &brought[best];
        recurring.retain(|&(mark, o)| !if mark { marks.contains(&o) } else { blocks.contains(&o) });
    }
    // The newest wait, within bounds.
    let (mut count, mut bytes) = (0, 0);
    for i in (0..deltas.len()).rev() {
        if fates[i] != Fate::Wait {
            continue;
        }
        count += 1;
        bytes += sizes[i];
        if count > MAX_WAITING || bytes > MAX_WAITING_BYTES {
            fates[i] = Fate::Drop;
        }
    }
    fates
}
