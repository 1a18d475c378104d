//! Deltas too small for a rewrite of their own, kept until they are worth
//! one. A warm run that builds a few blocks of a big module (a path it
//! took once, a hash-randomised branch of python) hands them over; alone
//! they would never pass `persist::merge::MIN_GROWTH_DIVISOR`, and the
//! run after builds them again (and pays the decoder's set-up, which only
//! building costs). Kept here, they are merged with the next deltas of
//! the file when one of their blocks recurs (built by two runs: most runs
//! build it), as few of them as bring what recurs: each merged delta is a
//! segment more, which every later load maps. They live in the server's memory, a bounded number
//! per file: deltas gathered when the server stops are dropped (their
//! blocks come back with the runs that build them).

use std::collections::BTreeMap;

use persist::merge::{worth_rewriting, Fresh, MAX_ZONES_FOR_SMALL, MIN_GROWTH_DIVISOR};
use persist::index::BlockEntry;
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
    /// Files with waiting deltas that bring what recurs, to merge once
    /// no hand-over came for [`SETTLE_AFTER`] (or at a sync).
    due: std::collections::BTreeSet<String>,
}

/// How long the server waits without hand-overs before it merges small
/// deltas: a rewrite of a big file (cc1's is 37 MB) would compete with
/// the processes of a burst (`make -j2`) for the machine.
pub const SETTLE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

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

    pub fn mark_due(&mut self, name: &str) {
        self.due.insert(name.to_string());
    }

    /// The files whose waiting deltas are due to be merged (taken).
    pub fn take_due(&mut self) -> Vec<String> {
        std::mem::take(&mut self.due).into_iter().collect()
    }

    pub fn any_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// Deltas waiting, over every file.
    pub fn waiting(&self) -> usize {
        self.by_file.values().map(Vec::len).sum()
    }
}

/// What to do with each delta waiting for a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fate {
    Merge,
    /// Small, but it brings what recurs: merged once the server is idle.
    Recurs,
    Wait,
    /// It brings nothing the file lacks, or waited too long.
    Drop,
}

/// What becomes of `deltas` (checked, of the file's key, oldest first)
/// merged into `old`: each delta worth a rewrite of its own
/// (`persist::merge::worth_rewriting`) is merged; of the others, when
/// blocks or flags of the file's blocks (lookup targets, cold heads)
/// recur (brought by two of them: most runs build them), the fewest that
/// bring them all ([`Fate::Recurs`]), each one a segment more for every
/// later load to map; the others wait, the oldest dropped beyond [`MAX_WAITING`] or [`MAX_WAITING_BYTES`].
pub fn decide(old: &Validated, deltas: &[&Validated], sizes: &[usize]) -> Vec<Fate> {
    // What each delta brings that the file lacks: its blocks (flag 0)
    // and flags of the file's blocks, each (flag, module offset); and its
    // traces. A trace of a head the file has one of replaces it (the run
    // found the file's stale), and a stale mark grows the budget of the
    // file's trace (`persist::merge`): left out, both came back in every
    // run (a cc1 trace under drcov went stale and was recorded afresh in
    // each).
    let lacks = |v: &Validated| -> (Vec<(u32, u32)>, usize) {
        let blocks = v.index.blocks.iter().map(|b| b.module_offset.to_native()).filter(|&b| old.index.block_at(b).is_none()).map(|b| (0, b));
        let flags = v.index.marks.iter().flat_map(|m| {
            let (off, lacks) = (m.module_offset.to_native(), old.index.lacks_flags(m.module_offset.to_native(), m.flags.to_native()));
            [BlockEntry::LOOKUP_TARGET, BlockEntry::COLD_HEAD, BlockEntry::STALE_TRACE].into_iter().filter(move |f| lacks & f != 0).map(move |f| (f, off))
        });
        (blocks.chain(flags).collect(), v.index.traces.len())
    };
    let brought: Vec<(Vec<(u32, u32)>, usize)> = deltas.iter().map(|v| lacks(v)).collect();
    let held = old.index.blocks.len();
    let mut zones = old.zones.len();
    let mut fates: Vec<Fate> = brought
        .iter()
        .map(|(keys, traces)| {
            let blocks = keys.iter().filter(|&&(flag, _)| flag == 0).count();
            let fresh = Fresh::of(blocks, *traces, keys.iter().map(|&(flag, _)| flag).filter(|&flag| flag != 0));
            if worth_rewriting(fresh, held, MIN_GROWTH_DIVISOR) {
                Fate::Merge
            } else if keys.is_empty() {
                Fate::Drop
            } else {
                Fate::Wait
            }
        })
        .collect();
    // Each block and flag the file lacks that only waiting deltas bring,
    // with how many of them bring it.
    let merged: Vec<usize> = (0..deltas.len()).filter(|&i| fates[i] == Fate::Merge).collect();
    zones += merged.iter().map(|&i| deltas[i].zones.len() - 1).sum::<usize>();
    let merged_brings = |key: (u32, u32)| merged.iter().any(|&i| brought[i].0.contains(&key));
    let mut seen: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for i in (0..deltas.len()).filter(|&i| fates[i] == Fate::Wait) {
        for &key in &brought[i].0 {
            *seen.entry(key).or_default() += 1;
        }
    }
    let mut recurring: Vec<(u32, u32)> = seen.into_iter().filter(|&(k, n)| n >= 2 && !merged_brings(k)).map(|(k, _)| k).collect();
    // Greedily, the waiting delta that brings most of what recurs and is
    // not covered yet.
    while !recurring.is_empty() {
        let covers = |i: usize| recurring.iter().filter(|k| brought[i].0.contains(k)).count();
        let Some(best) = (0..deltas.len()).filter(|&i| fates[i] == Fate::Wait).max_by_key(|&i| (covers(i), i)) else { break };
        if covers(best) == 0 || zones + deltas[best].zones.len() - 1 > MAX_ZONES_FOR_SMALL {
            break;
        }
        zones += deltas[best].zones.len() - 1;
        fates[best] = Fate::Recurs;
        recurring.retain(|k| !brought[best].0.contains(k));
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
