//! The .dpc format: round trip, and rejection of every kind of bad file
//! (each byte of each zone flipped, truncations, hostile zone tables,
//! versions, keys) without a panic.

use persist::index::{BlockEntry, CountingStub, ExitEntry, ExitRef, Index, Mark, Segment, TraceEntry, TraceSpan};
use persist::{validate, CacheKey, ClientKey, KeyField, Reject, ZoneKind, FORMAT_VERSION};

/// A copy of `bytes` starting on a 16-byte boundary, as a mapping would.
struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl Aligned {
    fn new(bytes: &[u8]) -> Aligned {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        // SAFETY: words has at least bytes.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr() as *mut u8, bytes.len()) };
        Aligned { words, len: bytes.len() }
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: within the allocation.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }
}

fn key() -> CacheKey {
    CacheKey {
        module_hash: [7; 32],
        clients: vec![ClientKey { name: "bbcount".into(), version: 1, options_hash: 42 }],
        tls_layout_hash: 0x1234,
        options_hash: 0x5678,
        runtime_version: 3,
    }
}

fn sample() -> Vec<u8> {
    sample_with(sample_flags, |_| {})
}

/// Even blocks translated ahead of time, every third odd one a lookup target.
fn sample_flags(i: u32) -> u32 {
    match (i % 2, i % 3) {
        (0, _) => BlockEntry::AHEAD_OF_TIME,
        (_, 0) => BlockEntry::LOOKUP_TARGET,
        _ => 0,
    }
}

fn sample_with_flags(flags: impl Fn(u32) -> u32) -> Vec<u8> {
    sample_with(flags, |_| {})
}

/// A block entry with no translations and no client data.
fn block_entry(module_offset: u32, code_offset: u32, code_len: u32, exits: (u32, u32), flags: u32) -> BlockEntry {
    BlockEntry {
        module_offset,
        app_len: 16,
        segment: 0,
        code_offset,
        code_len,
        first_exit: exits.0,
        exit_count: exits.1,
        translation_offset: 0,
        translation_len: 0,
        first_data: 0,
        data_count: 0,
        flags,
    }
}

/// The sample file with each block's `flags`, its derived fields set and
/// then `tamper` applied to its index.
fn sample_with(flags: impl Fn(u32) -> u32, tamper: impl FnOnce(&mut Index)) -> Vec<u8> {
    let blocks = (0..50u32)
        .map(|i| block_entry(0x1000 + 16 * i, 40 * i, 40, (i % 3, 1), flags(i)))
        .collect();
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 3, code_len: 2000 }],
        blocks,
        exits: vec![ExitEntry { slot: 4096 - 16, stub: 8, target: 0x2000 }; 3],
        ..Index::default()
    };
    index.derive_from_blocks();
    tamper(&mut index);
    let code: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    let data = vec![0xabu8; 4096];
    persist::write::build(&key(), &index, &[(ZoneKind::Writable, &data), (ZoneKind::Exec, &code)])
}

/// A writer writes a layout a piece at a time: no piece crosses a
/// `WRITE_CHUNK` of the file (the page cache keeps a file in folios as
/// large as its writes, and a run mapping it gets whole folios).
#[test]
fn a_layouts_pieces_stay_within_write_chunks() {
    use persist::write::WRITE_CHUNK;
    let code: Vec<u8> = (0..3 * WRITE_CHUNK as u32 + 5000).map(|i| (i * 13) as u8).collect();
    let data = vec![7u8; 4096 * 3];
    let layout = persist::write::lay_out(&key(), &Index::default(), &[(ZoneKind::Writable, &data), (ZoneKind::Exec, &code)]);
    let mut at = 0;
    let mut whole = Vec::new();
    for p in layout.pieces() {
        assert!(!p.is_empty());
        assert_eq!(at / WRITE_CHUNK, (at + p.len() - 1) / WRITE_CHUNK, "the piece at {at:#x} ({} bytes) crosses a chunk", p.len());
        at += p.len();
        whole.extend_from_slice(p);
    }
    assert!(layout.pieces().count() > 4, "the code is cut");
    assert_eq!(whole, layout.to_vec());
    assert_eq!(at, layout.len());
}

#[test]
fn a_layout_is_written_from_its_zones_where_they_are() {
    let code: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let data = vec![0u8; 4096];
    let layout = persist::write::lay_out(&key(), &Index::default(), &[(ZoneKind::Writable, &data), (ZoneKind::Exec, &code)]);
    let pieces: Vec<&[u8]> = layout.pieces().collect();
    assert!(pieces.iter().any(|p| p.as_ptr() == code.as_ptr()), "the X zone is not copied");
    assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), layout.len());
    let file = Aligned::new(&layout.to_vec());
    let v = validate(file.bytes()).expect("valid: every zone's hash covers its padding");
    assert_eq!(&v.zone_bytes(2)[..5000], &code[..]);
    assert!(v.zone_bytes(2)[5000..].iter().all(|&b| b == 0), "padded with zeros to a page");
}

#[test]
fn round_trip() {
    let file = Aligned::new(&sample());
    let v = validate(file.bytes()).expect("valid");
    assert_eq!(v.key, key());
    assert_eq!(v.key.mismatch(&key()), None);
    assert_eq!(v.index.blocks.len(), 50);
    assert_eq!(v.index.blocks[3].module_offset, 0x1000 + 48);
    assert_eq!(v.index.exits.len(), 3);
    assert_eq!(v.zones.len(), 3);
    assert_eq!(v.zones[2].kind, ZoneKind::Exec);
    assert_eq!(v.zone_bytes(2)[7], 49);
    assert_eq!(v.zone_bytes(1)[0], 0xab);
    assert!(v.index.block_at(0x1000 + 48).is_some());
    assert!(v.index.block_at(0x1001).is_none());
    assert!(v.index.blocks[4].ahead_of_time() && !v.index.blocks[5].ahead_of_time(), "each block's origin kept");
    assert_eq!(v.index.ahead_of_time_blocks, 25);
    let targets: Vec<(u32, u32)> = v.index.lookup_targets.iter().map(|t| (t.module_offset.to_native(), t.code_offset.to_native())).collect();
    let expected: Vec<(u32, u32)> = (0..50).filter(|&i| sample_flags(i) == BlockEntry::LOOKUP_TARGET).map(|i| (0x1000 + 16 * i, 40 * i)).collect();
    assert_eq!(targets, expected, "the lookup targets are the flagged blocks, in order");
    for z in v.zones {
        assert_eq!(z.offset % 4096, 0, "page-aligned zones");
    }
}

#[test]
fn unknown_block_flags_are_rejected() {
    // The lowest bit no flag uses.
    let unknown = (BlockEntry::KNOWN_FLAGS + 1).next_power_of_two();
    let file = Aligned::new(&sample_with_flags(|i| if i == 7 { unknown } else { 0 }));
    assert_eq!(validate(file.bytes()).err(), Some(persist::Reject::BadIndex));
}

/// A loader enters a lookup target's code as it is, so each must name
/// exactly a flagged block's start.
#[test]
fn lookup_targets_must_be_flagged_block_starts() {
    let tampered: [(&str, fn(&mut Index)); 4] = [
        ("code offset inside the block", |ix| ix.lookup_targets[0].code_offset += 1),
        ("no block there", |ix| ix.lookup_targets[0].module_offset += 1),
        ("another segment", |ix| ix.lookup_targets[0].segment = 1),
        ("a block not flagged", |ix| {
            let b = &ix.blocks[1];
            ix.lookup_targets.push(persist::index::LookupTarget { module_offset: b.module_offset, segment: 0, code_offset: b.code_offset })
        }),
    ];
    assert!(validate(Aligned::new(&sample()).bytes()).is_ok());
    for (what, tamper) in tampered {
        let file = Aligned::new(&sample_with(sample_flags, tamper));
        assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "{what}");
    }
}

/// The sample's index with a trace through blocks 2 and 1 (its code at
/// 1900..2000 of the segment, its exits the segment's last two).
fn with_trace(ix: &mut Index) {
    ix.trace_spans = vec![TraceSpan { module_offset: 0x1020, app_len: 16 }, TraceSpan { module_offset: 0x1010, app_len: 16 }];
    ix.traces = vec![TraceEntry {
        head: 0x1020,
        segment: 0,
        code_offset: 1900,
        code_len: 100,
        first_exit: 1,
        exit_count: 2,
        translation_offset: 0,
        translation_len: 0,
        first_span: 0,
        span_count: 2,
        budget_slot: 4096 - 24,
    }];
}

/// A loader enters a trace's code and rebases nothing of its own: each
/// range it names must lie in its segment, and its first block must be
/// its head.
#[test]
fn traces_must_lie_in_their_segment_and_start_at_their_head() {
    let tampered: [(&str, fn(&mut Index)); 9] = [
        ("code past the segment's code", |ix| ix.traces[0].code_len = 101),
        ("exits past the segment's", |ix| ix.traces[0].exit_count = 3),
        ("no such segment", |ix| ix.traces[0].segment = 1),
        ("spans past the table", |ix| ix.traces[0].span_count = 3),
        ("no spans", |ix| ix.traces[0].span_count = 0),
        ("first block not the head", |ix| ix.traces[0].head = 0x1010),
        ("budget slot past W", |ix| ix.traces[0].budget_slot = 4096),
        ("budget slot unaligned", |ix| ix.traces[0].budget_slot = 4096 - 20),
        ("heads not sorted", |ix| {
            let t = ix.traces[0].clone();
            ix.traces.insert(0, t);
        }),
    ];
    let file = Aligned::new(&sample_with(sample_flags, with_trace));
    let v = validate(file.bytes()).expect("a sound trace");
    assert_eq!(v.index.trace_at(0x1020).map(|t| t.code_offset.to_native()), Some(1900));
    assert!(v.index.trace_at(0x1010).is_none());
    for (what, tamper) in tampered {
        let file = Aligned::new(&sample_with(sample_flags, |ix| {
            with_trace(ix);
            tamper(ix)
        }));
        assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "{what}");
    }
    let no_budget = Aligned::new(&sample_with(sample_flags, |ix| {
        with_trace(ix);
        ix.traces[0].budget_slot = TraceEntry::NO_BUDGET;
    }));
    assert!(validate(no_budget.bytes()).is_ok(), "a trace kept for good counts no misses");
}

/// The exits a loader with traces relinks are derived from the blocks and
/// traces: those to a trace's head, and blocks' backward ones and traces'
/// others to anything but a head counted cold; each must be an exit of
/// the segment it names.
#[test]
fn exits_relinked_for_traces_are_derived_and_checked() {
    let file = Aligned::new(&sample_with(
        |i| if i == 1 { BlockEntry::COLD_HEAD } else { 0 },
        |ix| {
            // Block 5 goes back to the trace's head, block 6 to the cold
            // head (block 1), block 7 back to block 3.
            ix.exits = vec![
                ExitEntry { slot: 4096 - 16, stub: 8, target: 0x2000 },
                ExitEntry { slot: 4096 - 32, stub: 8, target: 0x1020 },
                ExitEntry { slot: 4096 - 40, stub: 8, target: 0x1010 },
                ExitEntry { slot: 4096 - 48, stub: 8, target: 0x1030 },
            ];
            ix.segments[0].exit_count = 4;
            for b in &mut ix.blocks {
                b.first_exit = 0;
            }
            for (block, exit) in [(5, 1), (6, 2), (7, 3)] {
                ix.blocks[block].first_exit = exit;
            }
            with_trace(ix);
            ix.derive_from_blocks();
        },
    ));
    let v = validate(file.bytes()).expect("valid");
    let exits = |refs: &rkyv::vec::ArchivedVec<persist::index::ArchivedExitRef>| refs.iter().map(|r| r.exit.to_native()).collect::<Vec<_>>();
    // The trace's own exits are 1 (to its head) and 2 (to the cold head):
    // any other of a trace's exits would be counted, backward or not.
    assert_eq!(exits(&v.index.exits_to_traces), [1, 1]);
    assert_eq!(exits(&v.index.counted_exits), [3]);
    let file = Aligned::new(&sample_with(sample_flags, |ix| ix.counted_exits.push(ExitRef { segment: 0, exit: 3 })));
    assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "an exit past its segment's");
    let file = Aligned::new(&sample_with(sample_flags, |ix| ix.exits_to_traces.push(ExitRef { segment: 1, exit: 0 })));
    assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "no such segment");
}

/// A block whose last exit is a call's jump to its callee
/// (`BlockEntry::CALLS_BACKWARD`) does not count that exit's target,
/// placed before it or not: a function is no loop's start. Its other
/// exits count as any block's do.
#[test]
fn a_backward_call_is_not_counted() {
    let counted = |flags_of_7: u32, exits_of_7: u32| {
        let file = Aligned::new(&sample_with(
            |i| if i == 7 { flags_of_7 } else { 0 },
            |ix| {
                // Block 7 (at 0x1070) jumps back to block 3 (exit 0), and
                // with two exits also calls block 2 (exit 1).
                ix.exits = vec![
                    ExitEntry { slot: 4096 - 16, stub: 8, target: 0x1030 },
                    ExitEntry { slot: 4096 - 24, stub: 8, target: 0x1020 },
                ];
                ix.segments[0].exit_count = exits_of_7;
                for b in &mut ix.blocks {
                    b.first_exit = 0;
                    b.exit_count = 0;
                }
                ix.blocks[7].exit_count = exits_of_7;
                ix.exits.truncate(exits_of_7 as usize);
                ix.derive_from_blocks();
            },
        ));
        let v = validate(file.bytes()).expect("valid");
        v.index.counted_exits.iter().map(|r| r.exit.to_native()).collect::<Vec<_>>()
    };
    assert_eq!(counted(0, 1), [0], "a backward jump counts");
    assert_eq!(counted(BlockEntry::CALLS_BACKWARD, 1), Vec::<u32>::new(), "a backward call does not");
    assert_eq!(counted(BlockEntry::CALLS_BACKWARD, 2), [0], "only the last exit is the call's");
}

/// A run that retires a trace unlinks the exits to its head, found by a
/// binary search: `exits_to_traces` is sorted by target, and a file whose
/// list is not is rejected.
#[test]
fn exits_to_traces_are_sorted_by_target() {
    let two_traces = |ix: &mut Index| {
        // Block 5 goes to 0x1040's trace, block 6 to 0x1020's: in block
        // order, the later head first.
        ix.exits = vec![
            ExitEntry { slot: 4096 - 16, stub: 8, target: 0x1040 },
            ExitEntry { slot: 4096 - 32, stub: 8, target: 0x1020 },
            ExitEntry { slot: 4096 - 40, stub: 8, target: 0x2000 },
        ];
        for b in &mut ix.blocks {
            b.first_exit = 2;
        }
        ix.blocks[5].first_exit = 0;
        ix.blocks[6].first_exit = 1;
        ix.trace_spans = vec![TraceSpan { module_offset: 0x1020, app_len: 16 }, TraceSpan { module_offset: 0x1040, app_len: 16 }];
        let trace = |head: u32, code_offset: u32, first_span: u32| TraceEntry {
            head,
            segment: 0,
            code_offset,
            code_len: 100,
            first_exit: 2,
            exit_count: 1,
            translation_offset: 0,
            translation_len: 0,
            first_span,
            span_count: 1,
            budget_slot: TraceEntry::NO_BUDGET,
        };
        ix.traces = vec![trace(0x1020, 1800, 0), trace(0x1040, 1900, 1)];
        ix.derive_from_blocks();
    };
    let file = Aligned::new(&sample_with(sample_flags, two_traces));
    let v = validate(file.bytes()).expect("valid");
    let targets: Vec<i64> = v.index.exits_to_traces.iter().map(|r| v.index.exits[r.exit.to_native() as usize].target.to_native()).collect();
    assert_eq!(targets, [0x1020, 0x1040]);
    let file = Aligned::new(&sample_with(sample_flags, |ix| {
        two_traces(ix);
        ix.exits_to_traces.reverse();
    }));
    assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "exits to traces out of order");
}

#[test]
fn segment_code_must_fit_its_zone() {
    let file = Aligned::new(&sample_with(sample_flags, |ix| ix.segments[0].code_len = 4097));
    assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex));
}

#[test]
fn every_flipped_byte_is_rejected() {
    let good = sample();
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let file = Aligned::new(&bad);
        assert!(validate(file.bytes()).is_err(), "byte {at} flipped was accepted");
    }
}

#[test]
fn truncated_and_empty_files_are_rejected() {
    let good = sample();
    for len in [0, 1, 7, 8, 63, 64, 100, 207, 208, 4095, 4096, 4097, 8191, 8192, good.len() - 1] {
        let file = Aligned::new(&good[..len]);
        assert!(validate(file.bytes()).is_err(), "length {len} accepted");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 4096]);
    assert_eq!(validate(Aligned::new(&longer).bytes()).err(), Some(Reject::BadZones));
}

#[test]
fn foreign_and_future_files_are_rejected() {
    let good = sample();
    let mut elf = good.clone();
    elf[..4].copy_from_slice(b"\x7fELF");
    assert_eq!(validate(Aligned::new(&elf).bytes()).err(), Some(Reject::BadMagic));
    let mut future = good.clone();
    future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(validate(Aligned::new(&future).bytes()).err(), Some(Reject::FutureVersion));
    assert_eq!(validate(Aligned::new(b"not a cache file at all, but long enough?!").bytes()).err(), Some(Reject::BadMagic));
}

/// Hostile zone tables: huge lengths, offsets past the end, overlaps. The
/// header hash is recomputed so only the zone checks can catch them.
#[test]
fn hostile_zone_tables_are_rejected() {
    let good = sample();
    let rehash = |f: &mut Vec<u8>| {
        let h = persist::header::header_hash(f, 3);
        f[32..64].copy_from_slice(&h);
    };
    for (entry, field, value) in [
        (1usize, 16usize, u64::MAX),
        (1, 8, u64::MAX - 10),
        (2, 8, 0),
        (1, 8, 4096 * 1000),
        (0, 16, 1),
        (2, 16, 1 << 40),
        (1, 0, 7),
        (0, 0, 1),
    ] {
        let mut bad = good.clone();
        let at = 64 + 56 * entry + field;
        bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
        rehash(&mut bad);
        let r = validate(Aligned::new(&bad).bytes()).err();
        assert!(matches!(r, Some(Reject::BadZones | Reject::Truncated | Reject::ZoneHash(_))), "zone {entry} field {field} = {value:#x}: {r:?}");
    }
}

#[test]
fn key_mismatches_name_the_field() {
    let file = Aligned::new(&sample());
    let v = validate(file.bytes()).unwrap();
    let mut other = key();
    other.module_hash[0] ^= 1;
    assert_eq!(v.key.mismatch(&other), Some(KeyField::ModuleHash));
    let mut other = key();
    other.clients[0].options_hash += 1;
    assert_eq!(v.key.mismatch(&other), Some(KeyField::Clients));
    let mut other = key();
    other.tls_layout_hash += 1;
    assert_eq!(v.key.mismatch(&other), Some(KeyField::TlsLayout));
    let mut other = key();
    other.options_hash += 1;
    assert_eq!(v.key.mismatch(&other), Some(KeyField::Options));
    let mut other = key();
    other.runtime_version += 1;
    assert_eq!(v.key.mismatch(&other), Some(KeyField::RuntimeVersion));
}

mod properties {
    //! Property tests: whatever is done to a valid file, `validate` never
    //! panics, and a file whose bytes differ from the original anywhere
    //! (or that is shorter or longer) is rejected.
    use super::*;
    use proptest::prelude::*;

    fn good() -> &'static [u8] {
        static FILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        FILE.get_or_init(sample)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Up to 8 bytes anywhere in the file overwritten with anything.
        #[test]
        fn overwritten_bytes_are_rejected(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bad = good().to_vec();
            for (at, value) in &edits {
                let i = at.index(bad.len());
                bad[i] = *value;
            }
            let changed = bad != good();
            let file = Aligned::new(&bad);
            let rejected = validate(file.bytes()).is_err();
            prop_assert!(!changed || rejected, "accepted a file changed at {edits:?}");
        }

        /// The header and zone table (the first page) filled with anything.
        #[test]
        fn random_headers_never_panic(header in proptest::collection::vec(any::<u8>(), 0..4096usize), keep_magic in any::<bool>()) {
            let mut bad = good().to_vec();
            bad[..header.len()].copy_from_slice(&header);
            if keep_magic {
                bad[..8].copy_from_slice(b"DBIPCACH");
            }
            let changed = bad != good();
            prop_assert!(!changed || validate(Aligned::new(&bad).bytes()).is_err());
        }

        /// Truncated, or with bytes appended.
        #[test]
        fn other_lengths_are_rejected(len in 0usize..20_000, tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bad = good()[..len.min(good().len())].to_vec();
            bad.extend_from_slice(&tail);
            prop_assert!(bad == good() || validate(Aligned::new(&bad).bytes()).is_err());
        }
    }
}

/// A delta whose only news is a trace is merged (a hot path is worth a
/// rewrite), its trace's segment, exits and spans moved with the tables
/// it is appended to. A trace of the same head again replaces it (a run
/// records a head's trace only when the file's went stale on its way),
/// with a budget of misses `TRACE_BUDGET_GROWTH` times the stale one's.
#[test]
fn merging_adds_new_traces_with_their_tables_moved() {
    let old = Aligned::new(&sample());
    let old = validate(old.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    // A warm run's delta: the trace alone (a delta holds no block of the
    // file the run loaded).
    let trace_alone = |ix: &mut Index| {
        with_trace(ix);
        ix.blocks.clear();
        ix.derive_from_blocks();
    };
    let delta_bytes = Aligned::new(&sample_with(sample_flags, trace_alone));
    let delta = validate(delta_bytes.bytes()).expect("valid");
    let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).expect("parts"), persist::merge::MIN_GROWTH_DIVISOR);
    assert_eq!(added, Some(1), "one trace, no block");
    let ix = &file.index;
    assert_eq!(ix.blocks.len(), 50);
    assert_eq!((ix.segments.len(), ix.traces.len()), (2, 1));
    let t = &ix.traces[0];
    assert_eq!((t.head, t.segment, t.first_exit, t.first_span), (0x1020, 1, 3 + 1, 0));
    assert_eq!(ix.segments[1].first_exit, 3, "the delta's exits follow the file's");
    let budget = |file: &persist::merge::Parts, t: &TraceEntry| {
        let w = &file.zones[file.index.segments[t.segment as usize].w_zone as usize - 1].1;
        u64::from_le_bytes(w[t.budget_slot as usize..t.budget_slot as usize + 8].try_into().unwrap())
    };
    // The budget a run gives a new trace (the sample's W is a fill).
    let t = file.index.traces[0].clone();
    let w_zone = file.index.segments[t.segment as usize].w_zone as usize - 1;
    file.zones[w_zone].1.to_mut()[t.budget_slot as usize..t.budget_slot as usize + 8].copy_from_slice(&1024u64.to_le_bytes());
    let stale = budget(&file, &file.index.traces[0]);
    assert_eq!(stale, 1024);
    let again = persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).expect("parts"), persist::merge::MIN_GROWTH_DIVISOR);
    assert_eq!(again, Some(1), "a trace of a head the file has one of replaces it");
    let ix = &file.index;
    assert_eq!((ix.segments.len(), ix.traces.len()), (3, 1));
    assert_eq!((ix.traces[0].head, ix.traces[0].segment), (0x1020, 2), "the new trace, in the segment appended");
    let grown = persist::merge::grown_budget(stale);
    assert_eq!(budget(&file, &file.index.traces[0]), grown, "the budget of the stale one ({stale}) grown");
    assert!(grown > stale, "a check that can fail");
    assert_eq!(persist::merge::grown_budget(1024), 16 * 1024);
    assert_eq!(persist::merge::grown_budget(1 << 21), persist::merge::MAX_TRACE_BUDGET);
    assert_eq!(persist::merge::grown_budget(persist::merge::MAX_TRACE_BUDGET), persist::merge::MAX_TRACE_BUDGET);
}

/// A run that found a file's trace stale and recorded none in its place
/// marks its head: each such mark is worth a rewrite (each later run
/// would record the trace again) that grows the trace's budget of misses
/// `TRACE_BUDGET_GROWTH` times, until it is the largest: then the merge
/// flags the head's block, runs mark it no more, and the same mark again
/// brings nothing. (A flag set at the first mark stopped the growth at
/// 16,384: a trace that went stale in every run was recorded afresh in
/// every run.)
#[test]
fn merging_a_stale_trace_mark_grows_the_traces_budget() {
    let old = Aligned::new(&sample_with(sample_flags, with_trace));
    let old = validate(old.bytes()).expect("valid");
    let budget = |file: &persist::merge::Parts| {
        let t = &file.index.traces[0];
        let w = &file.zones[file.index.segments[t.segment as usize].w_zone as usize - 1].1;
        u64::from_le_bytes(w[t.budget_slot as usize..t.budget_slot as usize + 8].try_into().unwrap())
    };
    let stale_flag = |file: &persist::merge::Parts| file.index.blocks.iter().find(|b| b.module_offset == 0x1020).unwrap().flags & BlockEntry::STALE_TRACE != 0;
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    // The budget a run gives a new trace (the sample's W is a fill).
    let t = file.index.traces[0].clone();
    let w_zone = file.index.segments[t.segment as usize].w_zone as usize - 1;
    file.zones[w_zone].1.to_mut()[t.budget_slot as usize..t.budget_slot as usize + 8].copy_from_slice(&1024u64.to_le_bytes());
    let mark = Index { marks: vec![Mark { module_offset: 0x1020, flags: BlockEntry::STALE_TRACE }], ..Index::default() };
    let delta = Aligned::new(&persist::write::build(&key(), &mark, &[]));
    let delta = validate(delta.bytes()).expect("a delta of a mark alone is a valid file");
    let mut budgets = vec![budget(&file)];
    while !stale_flag(&file) {
        assert!(budgets.len() < 10, "the budget never became the largest: {budgets:?}");
        let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).expect("parts"), persist::merge::MIN_GROWTH_DIVISOR);
        assert_eq!(added, Some(1), "the mark grows the budget: {budgets:?}");
        // Through a file written and read back, as the next run loads it.
        let rebuilt: &'static Aligned = Box::leak(Box::new(Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()))));
        file = persist::merge::Parts::of(&validate(rebuilt.bytes()).expect("the merged file is valid")).unwrap();
        budgets.push(budget(&file));
    }
    assert_eq!(budgets, [1024, 16 * 1024, 256 * 1024, persist::merge::MAX_TRACE_BUDGET], "grown 16 times a mark, flagged at the largest");
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), persist::merge::MIN_GROWTH_DIVISOR), None);
}

/// A delta's lookup marks flag the file's blocks they name (and nothing
/// else: marks of blocks the file lacks or flags already are dropped);
/// a lookup target weighs `MARK_WEIGHT` blocks in the growth rule.
#[test]
fn merging_flags_the_lookup_targets_a_delta_marks() {
    let old = Aligned::new(&sample());
    let old = validate(old.bytes()).expect("valid");
    let unflagged: Vec<u32> = (0..50).filter(|&i| sample_flags(i) != BlockEntry::LOOKUP_TARGET).map(|i| 0x1000 + 16 * i).collect();
    let flagged = 0x1000 + 16 * 3;
    assert_eq!(sample_flags(3), BlockEntry::LOOKUP_TARGET);
    // Marks only: no block, no zone of code.
    let marks_only = |marks: Vec<u32>| {
        let marks = marks.into_iter().map(|module_offset| Mark { module_offset, flags: BlockEntry::LOOKUP_TARGET }).collect();
        let index = Index { marks, ..Index::default() };
        Aligned::new(&persist::write::build(&key(), &index, &[]))
    };
    assert_eq!(&unflagged[..3], &[0x1000, 0x1010, 0x1020]);
    let delta = marks_only(vec![unflagged[0], 0x1001, unflagged[1], unflagged[2], flagged]);
    let delta = validate(delta.bytes()).expect("a delta of marks alone is a valid file");
    let lacking = delta.index.marks.iter().filter(|m| old.index.lacks_flags(m.module_offset.to_native(), m.flags.to_native()) != 0);
    assert_eq!(lacking.count(), 3);
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).expect("parts"), persist::merge::MIN_GROWTH_DIVISOR);
    assert_eq!(added, Some(3), "three of the file's blocks were not flagged");
    let ix = &file.index;
    assert_eq!(ix.blocks.len(), 50);
    assert!(ix.marks.is_empty(), "marks are a delta's, never a file's");
    let targets: Vec<u32> = ix.lookup_targets.iter().map(|t| t.module_offset).collect();
    for m in &unflagged[..3] {
        assert!(targets.contains(m), "{m:#x} flagged and listed");
    }
    assert_eq!(targets.len(), old.index.lookup_targets.len() + 3);
    let rebuilt = Aligned::new(&persist::write::build(&key(), ix, &file.zone_refs()));
    validate(rebuilt.bytes()).expect("the merged file is valid");
    // Nothing new the second time.
    let mut again = persist::merge::Parts::of(&validate(rebuilt.bytes()).unwrap()).unwrap();
    assert_eq!(persist::merge::merge(&mut again, persist::merge::Parts::of(&delta).unwrap(), persist::merge::MIN_GROWTH_DIVISOR), None);

    // The growth rule: one mark in a file of MARK_WEIGHT * 64 blocks is
    // worth a rewrite, in one of more it is not.
    use persist::merge::{worth_rewriting, Fresh, MARK_WEIGHT, MIN_GROWTH_DIVISOR};
    let one_mark = Fresh { marks: 1, ..Fresh::default() };
    assert!(worth_rewriting(one_mark, MARK_WEIGHT * MIN_GROWTH_DIVISOR, MIN_GROWTH_DIVISOR));
    assert!(!worth_rewriting(one_mark, MARK_WEIGHT * MIN_GROWTH_DIVISOR + 1, MIN_GROWTH_DIVISOR));
    assert!(!worth_rewriting(Fresh::default(), 0, MIN_GROWTH_DIVISOR));

    // Marks out of order (or repeated) are refused: each is searched once.
    let unordered = marks_only(vec![unflagged[1], unflagged[0]]);
    assert_eq!(validate(unordered.bytes()).err(), Some(Reject::BadIndex));
    let repeated = marks_only(vec![unflagged[1], unflagged[1]]);
    assert_eq!(validate(repeated.bytes()).err(), Some(Reject::BadIndex));
    // A mark may set only what runs learn of a block.
    let index = Index { marks: vec![Mark { module_offset: unflagged[0], flags: BlockEntry::AHEAD_OF_TIME }], ..Index::default() };
    let unmarkable = Aligned::new(&persist::write::build(&key(), &index, &[]));
    assert_eq!(validate(unmarkable.bytes()).err(), Some(Reject::BadIndex));
}

/// A delta's cold-head marks flag the file's blocks as loops' starts a
/// run counted and never found hot: exits to them, which a file for runs
/// with traces led to their stubs to be counted, lead to the block again,
/// so later runs count them no more. A cold head counts as one block in
/// the growth rule.
#[test]
fn merging_flags_cold_heads_and_links_their_exits() {
    let every_block = u32::MAX as usize;
    let (x_old, x_new) = (4096i64, 3 * 4096i64);
    let old = Aligned::new(&sample_with(sample_flags, with_trace));
    let old = validate(old.bytes()).expect("valid");
    let with_traces: &[&str] = &[];
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    // Block 0x2000's backward exit to 0x1000: counted, to its stub.
    let delta = one_block_delta_with(0x2000, 0x1000, with_traces);
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&validate(delta.bytes()).unwrap()).unwrap(), every_block), Some(1));
    assert_eq!(slot_value(&file.zones[2].1, 0), 8, "a backward exit, to its stub");
    let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    let merged = validate(merged.bytes()).expect("valid");
    let stub = merged.index.exits[3].stub.to_native();
    assert!(merged.index.is_counted_exit(1, stub));
    let counted = merged.index.counted_exits.len();

    let mark = |flags: u32| {
        let index = Index { marks: vec![Mark { module_offset: 0x1000, flags }], ..Index::default() };
        Aligned::new(&persist::write::build(&key(), &index, &[]))
    };
    let cold = mark(BlockEntry::COLD_HEAD);
    let cold = validate(cold.bytes()).expect("a delta of a cold head alone is valid");
    let mut file = persist::merge::Parts::of(&merged).unwrap();
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&cold).unwrap(), every_block), Some(1));
    assert_ne!(file.index.blocks[0].flags & BlockEntry::COLD_HEAD, 0);
    assert_eq!(file.index.counted_exits.len(), counted - 1, "exits to a cold head are not counted");
    assert_eq!(slot_value(&file.zones[2].1, 0), x_old - x_new, "the exit leads to the block again");
    let flagged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    let flagged = validate(flagged.bytes()).expect("valid");
    assert!(!flagged.index.is_counted_exit(1, stub));
    // Nothing new the second time; both flags at once bring the one lacking.
    let mut again = persist::merge::Parts::of(&flagged).unwrap();
    assert_eq!(persist::merge::merge(&mut again, persist::merge::Parts::of(&cold).unwrap(), every_block), None);
    let both = mark(BlockEntry::COLD_HEAD | BlockEntry::LOOKUP_TARGET);
    let both = validate(both.bytes()).unwrap();
    assert_eq!(sample_flags(0), BlockEntry::AHEAD_OF_TIME);
    assert_eq!(flagged.index.lacks_flags(0x1000, BlockEntry::COLD_HEAD | BlockEntry::LOOKUP_TARGET), BlockEntry::LOOKUP_TARGET);
    let mut again = persist::merge::Parts::of(&flagged).unwrap();
    assert_eq!(persist::merge::merge(&mut again, persist::merge::Parts::of(&both).unwrap(), every_block), Some(1));
    assert_eq!(again.index.blocks[0].flags, BlockEntry::AHEAD_OF_TIME | BlockEntry::COLD_HEAD | BlockEntry::LOOKUP_TARGET);

    use persist::merge::{worth_rewriting, Fresh, MIN_GROWTH_DIVISOR};
    let one_cold = Fresh { cold_heads: 1, ..Fresh::default() };
    assert!(worth_rewriting(one_cold, MIN_GROWTH_DIVISOR, MIN_GROWTH_DIVISOR));
    assert!(!worth_rewriting(one_cold, MIN_GROWTH_DIVISOR + 1, MIN_GROWTH_DIVISOR));
}

/// A delta of one block at `offset` (its code 40 bytes in a segment of its
/// own) whose one exit goes to `target`, from a run without traces.
fn one_block_delta(offset: u32, target: i64) -> Aligned {
    one_block_delta_with(offset, target, &[persist::index::NO_TRACES])
}

/// [`one_block_delta`] from a run with `options`.
fn one_block_delta_with(offset: u32, target: i64, options: &[&str]) -> Aligned {
    let block = block_entry(offset, 0, 40, (0, 1), 0);
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 1, code_len: 40 }],
        blocks: vec![block],
        exits: vec![ExitEntry { slot: 0, stub: 8, target }],
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Index::default()
    };
    index.derive_from_blocks();
    Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &[0x90u8; 40])]))
}

/// The distance the slot at `slot` of W zone `zone` stores.
fn slot_value(zone: &[u8], slot: usize) -> i64 {
    persist::exit_slots::distance(u64::from_le_bytes(zone[slot..slot + 8].try_into().unwrap())).expect("a stored distance")
}

/// In a file for runs with traces (its options lack `-no_traces`), a
/// merge leads an exit to a trace's head to the trace, and a counted exit
/// (a block's backward one) to its own stub, so a loader writes nothing;
/// in a file for runs without, both go to their target blocks.
#[test]
fn merging_readies_exits_for_runs_with_traces() {
    let every_block = u32::MAX as usize;
    let (x_old, x_new) = (4096i64, 3 * 4096i64);
    let old = Aligned::new(&sample_with(sample_flags, with_trace));
    let old = validate(old.bytes()).expect("valid");
    let with_traces: &[&str] = &[];
    let without: &[&str] = &[persist::index::NO_TRACES];
    // The trace's head 0x1020 is block 2 (code at 80); block 0x1000's at 0.
    let cases = [
        (0x1020, with_traces, x_old + 1900 - x_new, "an exit to a head, to its trace"),
        (0x1000, with_traces, 8, "a backward exit, to its stub"),
        (0x1020, without, x_old + 80 - x_new, "an exit to a head, to its block"),
        (0x1000, without, x_old - x_new, "a backward exit, to its block"),
    ];
    for (target, options, expected, what) in cases {
        let mut file = persist::merge::Parts::of(&old).expect("parts");
        let delta = one_block_delta_with(0x2000, target, options);
        let delta = validate(delta.bytes()).expect("valid");
        assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), every_block), Some(1));
        assert_eq!(slot_value(&file.zones[2].1, 0), expected, "{what}");
        let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
        let merged = validate(merged.bytes()).expect("the merged file is valid");
        let stub = |ix: &persist::index::ArchivedIndex, exit: u32| ix.exits[exit as usize].stub.to_native();
        let counted = merged.index.is_counted_exit(1, stub(&merged.index, 3));
        assert_eq!(counted, target == 0x1000, "{what}: the dispatcher finds the counted exit by its stub");
    }
}

/// The counting stub of the head at `head` at X offset `code`, its
/// counter at W offset `counter`, going on to the code at `goes_to`.
fn counting_stub(head: u32, code: u32, counter: u32, goes_to: u32) -> CountingStub {
    CountingStub { segment: 0, head, code, counter, goes_to }
}

/// Counting stubs lie whole in their segment's zones (code in X, counter
/// and go slot in W), going on to its code; by segment and head, a
/// segment's together in that order, their counters too.
#[test]
fn counting_stubs_must_lie_in_their_segment() {
    let good = Aligned::new(&sample_with(sample_flags, |ix| {
        ix.counting_stubs = vec![counting_stub(0x1000, 2008, 0, 0), counting_stub(0x1010, 2120, 16, 40)];
    }));
    assert!(validate(good.bytes()).is_ok());
    let cases: [(&str, Vec<CountingStub>); 10] = [
        ("no such segment", vec![CountingStub { segment: 1, ..counting_stub(0x1000, 2008, 0, 0) }]),
        ("code past the X zone", vec![counting_stub(0x1000, 4096 - 8, 0, 0)]),
        ("a go slot past the W zone", vec![counting_stub(0x1000, 2008, 4096 - 8, 0)]),
        ("a counter not 8-aligned", vec![counting_stub(0x1000, 2008, 4, 0)]),
        ("going on past the code", vec![counting_stub(0x1000, 2008, 0, 2000)]),
        ("out of head order", vec![counting_stub(0x1010, 2008, 0, 0), counting_stub(0x1000, 2120, 16, 0)]),
        ("one head twice", vec![counting_stub(0x1000, 2008, 0, 0), counting_stub(0x1000, 2120, 16, 0)]),
        ("counters not together", vec![counting_stub(0x1000, 2008, 0, 0), counting_stub(0x1010, 2120, 24, 0)]),
        ("code not together", vec![counting_stub(0x1000, 2008, 0, 0), counting_stub(0x1010, 2128, 16, 0)]),
        ("code overlapping", vec![counting_stub(0x1000, 2008, 0, 0), counting_stub(0x1010, 2008, 16, 0)]),
    ];
    for (what, stubs) in cases {
        let file = Aligned::new(&sample_with(sample_flags, |ix| ix.counting_stubs = stubs));
        assert_eq!(validate(file.bytes()).err(), Some(Reject::BadIndex), "{what}");
    }
}

/// In a file for runs with traces, a merge leads a counted exit to the
/// counting stub of its target in its segment while the block the stub
/// goes on to is the target's in the file, else to its own stub; the
/// delta's stubs come with their segments moved.
#[test]
fn merging_leads_counted_exits_to_their_counting_stubs() {
    let every_block = u32::MAX as usize;
    let old = Aligned::new(&sample_with(sample_flags, |_| {}));
    let old = validate(old.bytes()).expect("valid");
    // A block at 0x2000 looping to its own start (counted), its stub at 8.
    let delta_with = |goes_to: u32| {
        let mut index = Index {
            segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 1, code_len: 40 }],
            blocks: vec![block_entry(0x2000, 0, 40, (0, 1), 0)],
            exits: vec![ExitEntry { slot: 0, stub: 8, target: 0x2000 }],
            counting_stubs: vec![counting_stub(0x2000, 48, 16, goes_to)],
            ..Index::default()
        };
        index.derive_from_blocks();
        Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &[0x90u8; 48 + 112])]))
    };
    for (goes_to, expected, what) in [(0, 48, "to its counting stub"), (16, 8, "to its stub: the counting stub goes elsewhere")] {
        let mut file = persist::merge::Parts::of(&old).expect("parts");
        let delta = delta_with(goes_to);
        let delta = validate(delta.bytes()).expect("valid");
        assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), every_block), Some(1));
        assert_eq!(slot_value(&file.zones[2].1, 0), expected, "{what}");
        let c = file.index.counting_stubs[0];
        assert_eq!((c.segment, c.head), (1, 0x2000), "moved with its segment");
        let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
        assert!(validate(merged.bytes()).is_ok(), "the merged file is valid");
    }
}

/// A merge links the file's exits to the blocks it adds and the added
/// blocks' exits to the file's blocks (a slot holds the distance between
/// X zones), and copies no zone of the old file it does not change.
#[test]
fn merging_links_exits_to_and_from_the_blocks_it_adds_and_copies_nothing_else() {
    use std::borrow::Cow;
    let every_block = u32::MAX as usize;
    let old = Aligned::new(&sample());
    let old = validate(old.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    // The sample's exits all go to 0x2000, a block it lacks.
    let delta = one_block_delta(0x2000, 0x1000);
    let delta = validate(delta.bytes()).expect("valid");
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), every_block), Some(1));
    // Zones after R: the file's W and X (one page each), the delta's W and X.
    let (x_old, x_new) = (4096i64, 3 * 4096i64);
    assert_eq!(slot_value(&file.zones[0].1, 4096 - 16), x_new - x_old, "the file's exit to the added block");
    assert_eq!(slot_value(&file.zones[2].1, 0), x_old - x_new, "the added block's exit to the file's first block");
    let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    let merged = validate(merged.bytes()).expect("the merged file is valid");

    // Another block, which nothing links to or from: the old zones stay
    // where they are mapped.
    let mut file = persist::merge::Parts::of(&merged).unwrap();
    let unlinked = one_block_delta(0x3000, 0x5000);
    let unlinked = validate(unlinked.bytes()).unwrap();
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&unlinked).unwrap(), every_block), Some(1));
    assert!(file.zones[..4].iter().all(|(_, z)| matches!(z, Cow::Borrowed(_))), "no old zone copied");
    assert_eq!(slot_value(&file.zones[0].1, 4096 - 16), x_new - x_old, "links kept");

    // Lookup marks alone: no zone copied either.
    let mut file = persist::merge::Parts::of(&merged).unwrap();
    let marks = vec![Mark { module_offset: 0x1010, flags: BlockEntry::LOOKUP_TARGET }];
    let marks = Index { marks, options: vec![persist::index::NO_TRACES.into()], ..Index::default() };
    let marks = Aligned::new(&persist::write::build(&key(), &marks, &[]));
    let marks = validate(marks.bytes()).unwrap();
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&marks).unwrap(), every_block), Some(1));
    assert!(file.zones.iter().all(|(_, z)| matches!(z, Cow::Borrowed(_))), "no zone copied");
}

/// A merge drops a delta's block the file holds (0x1000, whose copy lies
/// at 16 in the delta's code), but its code stays: the delta's exits that
/// branch (`jcc`, `jmp`) or run on into it are rewritten to jump through
/// their slots (which lead to the file's block), in the same bytes; an
/// exit to a block the merge adds keeps its direct branch.
#[test]
fn merging_routes_exits_into_a_dropped_block_through_their_slots() {
    use persist::exit_data::{StoredExit, KIND_DIRECT, STUB_CODE_LEN};
    let old = Aligned::new(&sample());
    let old = validate(old.bytes()).expect("valid");
    let rel32 = |from_end: i64, to: i64| ((to - from_end) as i32).to_le_bytes();
    // X: block 0x2000 at 0 (`je` to 16, then runs on into 16), the dropped
    // copy of 0x1000 at 16, block 0x2020 at 32 (`jmp` to 16), block 0x2030
    // at 40 (`jmp` to 0, the added 0x2000); stubs from 48.
    let mut x = vec![0xccu8; 48 + 4 * 48];
    x[..2].copy_from_slice(&[0x0f, 0x84]);
    x[2..6].copy_from_slice(&rel32(6, 16));
    x[6..8].copy_from_slice(&[0x66, 0x90]);
    x[8..16].copy_from_slice(&[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x66, 0x90]);
    x[16..32].fill(0x90);
    x[32] = 0xe9;
    x[33..37].copy_from_slice(&rel32(37, 16));
    x[37] = 0x90;
    x[40] = 0xe9;
    x[41..45].copy_from_slice(&rel32(45, 0));
    x[45] = 0x90;
    // (field of the branch, target) per exit; W slots 0, 8, 16, 24.
    let exits = [(2u64, 0x1000i64), (9, 0x1000), (33, 0x1000), (41, 0x2000)];
    let w_len = 4096i64;
    for (k, &(field, _)) in exits.iter().enumerate() {
        let data_at = 48 + 48 * k as u64 + STUB_CODE_LEN as u64;
        // Distances as mapped: W lies a page before X.
        let slot = (8 * k as i64 - w_len) as u64;
        let base_slot = (w_len - 8 - w_len) as u64;
        let data = StoredExit::relative(data_at, KIND_DIRECT, 0, base_slot, field, slot).to_bytes();
        x[data_at as usize..data_at as usize + data.len()].copy_from_slice(&data);
    }
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 4, code_len: 48 }],
        blocks: vec![
            block_entry(0x1000, 16, 16, (2, 0), 0),
            block_entry(0x2000, 0, 14, (0, 2), 0),
            block_entry(0x2020, 32, 6, (2, 1), 0),
            block_entry(0x2030, 40, 6, (3, 1), 0),
        ],
        exits: exits.iter().enumerate().map(|(k, &(_, target))| ExitEntry { slot: 8 * k as u32, stub: 48 + 48 * k as u32, target }).collect(),
        options: vec![persist::index::NO_TRACES.into()],
        ..Index::default()
    };
    index.derive_from_blocks();
    let delta = Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &x)]));
    let delta = validate(delta.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), u32::MAX as usize), Some(3));
    let x = &file.zones[3].1;
    let slot = |k: i64| 8 * k - w_len;
    let mut je = vec![0x75, 0x06, 0xff, 0x25];
    je.extend_from_slice(&rel32(8, slot(0)));
    assert_eq!(&x[..8], &je[..], "`je` into the dropped block: `jne +6; jmp [slot]`");
    let mut runs_on = vec![0xff, 0x25];
    runs_on.extend_from_slice(&rel32(14, slot(1)));
    assert_eq!(&x[8..14], &runs_on[..], "running on into it: `jmp [slot]`");
    let mut jmp = vec![0xff, 0x25];
    jmp.extend_from_slice(&rel32(38, slot(2)));
    assert_eq!(&x[32..38], &jmp[..], "`jmp` into it: `jmp [slot]`");
    assert_eq!(x[40], 0xe9, "`jmp` to an added block stays");
    assert_eq!(&x[41..45], &rel32(45, 0), "and leads where it did");
    // The slots lead to the file's block 0x1000, at 0 in the first X zone.
    let (x_old, x_new) = (4096i64, 3 * 4096i64);
    for k in 0..3 {
        assert_eq!(slot_value(&file.zones[2].1, 8 * k), x_old - x_new, "exit {k}'s slot");
    }
    let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    validate(merged.bytes()).expect("the merged file is valid");
}

/// A block's `jmp` written straight to the block after it, which a later
/// delta makes a trace's head: the merge rewrites the branch to go
/// through its slot, which leads to the trace, so runs enter the trace.
#[test]
fn merging_a_trace_routes_direct_branches_to_its_head_through_their_slots() {
    let old = file_with_a_jump_to_the_next_block();
    let old = validate(old.bytes()).expect("valid");
    let delta = trace_delta(0x2010, None, false);
    let delta = validate(delta.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), u32::MAX as usize), Some(1));
    let rel32 = |from_end: i64, to: i64| ((to - from_end) as i32).to_le_bytes();
    let mut through_slot = vec![0xff, 0x25];
    through_slot.extend_from_slice(&rel32(6, -4096));
    assert_eq!(&file.zones[1].1[..6], &through_slot[..], "the `jmp` to the head goes through its slot");
    let (x_old, x_new) = (4096i64, 3 * 4096i64);
    assert_eq!(slot_value(&file.zones[0].1, 0), x_new - x_old, "which leads to the trace");
    let merged = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    validate(merged.bytes()).expect("the merged file is valid");
}

/// A file of block 0x2000 (at 0 of X: `jmp` to 16) and block 0x2010 (at
/// 16), the jump's stub at 32; for runs with traces.
fn file_with_a_jump_to_the_next_block() -> Aligned {
    use persist::exit_data::{StoredExit, KIND_DIRECT, STUB_CODE_LEN};
    let mut x = vec![0x90u8; 32 + 48];
    x[0] = 0xe9;
    x[1..5].copy_from_slice(&11i32.to_le_bytes());
    let data_at = 32 + STUB_CODE_LEN as u64;
    let data = StoredExit::relative(data_at, KIND_DIRECT, 0, (-8i64) as u64, 1, (-4096i64) as u64).to_bytes();
    x[data_at as usize..data_at as usize + data.len()].copy_from_slice(&data);
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 1, code_len: 32 }],
        blocks: vec![block_entry(0x2000, 0, 6, (0, 1), 0), block_entry(0x2010, 16, 8, (1, 0), 0)],
        exits: vec![ExitEntry { slot: 0, stub: 32, target: 0x2010 }],
        ..Index::default()
    };
    index.derive_from_blocks();
    Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &x)]))
}

/// A delta of a trace at `head` alone (8 bytes of code, no exits), with
/// the block `block` (module offset) it copies at 8 when given, from a
/// run with a client when `clients`.
fn trace_delta(head: u32, block: Option<u32>, clients: bool) -> Aligned {
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 0, code_len: 16 }],
        blocks: block.map(|b| block_entry(b, 8, 8, (0, 0), 0)).into_iter().collect(),
        traces: vec![TraceEntry {
            head,
            segment: 0,
            code_offset: 0,
            code_len: 8,
            first_exit: 0,
            exit_count: 0,
            translation_offset: 0,
            translation_len: 0,
            first_span: 0,
            span_count: 1,
            budget_slot: TraceEntry::NO_BUDGET,
        }],
        trace_spans: vec![TraceSpan { module_offset: head, app_len: 16 }],
        clients: if clients { vec![persist::index::ClientData { ro: Vec::new(), rw_offset: 0, rw_len: 0, rx_offset: 0, rx_len: 0 }] } else { Vec::new() },
        ..Index::default()
    };
    index.derive_from_blocks();
    Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &[0x90u8; 16])]))
}

/// With clients, a trace's copies count in their blocks' client data: a
/// delta's trace is taken only if every block it copies comes with that
/// delta (the delta's copy of a block the file holds is dropped, and
/// with it the data the trace counts in). Without clients it is taken.
#[test]
fn merging_takes_a_trace_with_clients_only_with_the_blocks_it_copies() {
    let old = file_with_a_jump_to_the_next_block();
    let old = validate(old.bytes()).expect("valid");
    let merge = |delta: &Aligned| {
        let delta = validate(delta.bytes()).expect("valid");
        let mut file = persist::merge::Parts::of(&old).expect("parts");
        let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), u32::MAX as usize);
        (added, file.index.traces.iter().map(|t| t.head).collect::<Vec<u32>>())
    };
    // 0x2010 the file holds: its copy in the delta is dropped.
    assert_eq!(merge(&trace_delta(0x2010, Some(0x2010), true)), (None, vec![]), "with a client: left out");
    assert_eq!(merge(&trace_delta(0x2010, Some(0x2010), false)), (Some(1), vec![0x2010]), "without: taken");
    // 0x2020 comes with the delta.
    assert_eq!(merge(&trace_delta(0x2020, Some(0x2020), true)), (Some(2), vec![0x2020]), "its block comes with it");
    // A trace whose block the run left out of its delta (it was on disk).
    assert_eq!(merge(&trace_delta(0x2010, None, true)), (None, vec![]), "its block not in the delta");
}

/// A delta whose exit branch's last byte is its zone's last (its stub's
/// data says so; a damaged or planted file): the merge leaves it as it is
/// rather than write past the zone.
#[test]
fn merging_leaves_a_branch_at_the_end_of_its_zone_as_it_is() {
    use persist::exit_data::{StoredExit, KIND_DIRECT, STUB_CODE_LEN};
    let old = file_with_a_jump_to_the_next_block();
    let old = validate(old.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    let trace = trace_delta(0x2010, None, false);
    assert!(persist::merge::merge(&mut file, persist::merge::Parts::of(&validate(trace.bytes()).unwrap()).unwrap(), u32::MAX as usize).is_some());
    let with_trace = Aligned::new(&persist::write::build(&key(), &file.index, &file.zone_refs()));
    let with_trace = validate(with_trace.bytes()).expect("valid");
    // X (a page): the stub at 0, block 0x2020's `jmp` (to 0x2010's head,
    // at 8) in its last 5 bytes.
    let mut x = vec![0x90u8; 4096];
    x[4091] = 0xe9;
    x[4092..4096].copy_from_slice(&(8i32 - 4096).to_le_bytes());
    let data_at = STUB_CODE_LEN as u64;
    let data = StoredExit::relative(data_at, KIND_DIRECT, 0, (-8i64) as u64, 4092, (-4096i64) as u64).to_bytes();
    x[data_at as usize..data_at as usize + data.len()].copy_from_slice(&data);
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 1, code_len: 4096 }],
        blocks: vec![block_entry(0x2020, 4088, 8, (0, 1), 0)],
        exits: vec![ExitEntry { slot: 0, stub: 0, target: 0x2010 }],
        ..Index::default()
    };
    index.derive_from_blocks();
    let delta = Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &x)]));
    let delta = validate(delta.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&with_trace).expect("parts");
    assert_eq!(persist::merge::merge(&mut file, persist::merge::Parts::of(&delta).unwrap(), u32::MAX as usize), Some(1));
    let last = file.zones.last().unwrap();
    assert_eq!(last.1.len(), 4096);
    assert_eq!(last.1[4091], 0xe9, "the branch is left as it was");
}

/// A file of `n` blocks 16 bytes apart, each with 8 bytes of code and no
/// exit, with `tamper` applied to its index after its derived fields.
fn many_blocks(n: u32, tamper: impl FnOnce(&mut Index)) -> Aligned {
    let blocks = (0..n)
        .map(|i| block_entry(0x1000 + 16 * i, 8 * i, 8, (0, 0), 0))
        .collect();
    let mut index = Index {
        segments: vec![Segment { w_zone: 1, x_zone: 2, base_slot: 4096 - 8, first_exit: 0, exit_count: 0, code_len: 8 * n }],
        blocks,
        ..Index::default()
    };
    index.derive_from_blocks();
    tamper(&mut index);
    let code = vec![0x90u8; 8 * n as usize];
    Aligned::new(&persist::write::build(&key(), &index, &[(ZoneKind::Writable, &[0u8; 4096]), (ZoneKind::Exec, &code)]))
}

/// A large file's blocks are found through its directory of spans,
/// exactly where a binary search finds them; a directory that lies hides
/// blocks at worst, never names a wrong one.
#[test]
fn blocks_of_a_large_file_are_found_through_its_directory() {
    use persist::index::{BUCKET, BUCKETED_FROM};
    let n = BUCKETED_FROM as u32 + 1000;
    let file = many_blocks(n, |_| {});
    let v = validate(file.bytes()).expect("valid");
    let last = 0x1000 + 16 * (n - 1);
    assert_eq!(v.index.block_buckets.len(), (last / BUCKET) as usize + 2);
    for i in 0..n {
        let off = 0x1000 + 16 * i;
        assert_eq!(v.index.block_at(off).map(|b| b.code_offset.to_native()), Some(8 * i), "block {i}");
        assert!(v.index.block_at(off + 1).is_none() && v.index.block_at(off + 8).is_none());
    }
    assert!(v.index.block_at(0).is_none() && v.index.block_at(last + 16).is_none() && v.index.block_at(u32::MAX).is_none());
    let small = many_blocks(100, |_| {});
    assert!(validate(small.bytes()).unwrap().index.block_buckets.is_empty(), "small files are binary searched");

    // Spans that lie: shifted by one span, reversed, out of bounds.
    let shifted = many_blocks(n, |ix| {
        ix.block_buckets.remove(0);
    });
    let v = validate(shifted.bytes()).expect("a wrong directory is only wrong");
    assert!(v.index.block_at(0x1000 + 16 * 5).is_none(), "hidden");
    for i in 0..n {
        let off = 0x1000 + 16 * i;
        assert!(v.index.block_at(off).is_none_or(|b| b.module_offset.to_native() == off));
    }
    for lie in [|ix: &mut Index| ix.block_buckets.reverse(), |ix: &mut Index| ix.block_buckets.iter_mut().for_each(|e| *e = u32::MAX)] {
        let f = many_blocks(n, lie);
        let v = validate(f.bytes()).expect("valid");
        for i in (0..n).step_by(7) {
            let off = 0x1000 + 16 * i;
            assert!(v.index.block_at(off).is_none_or(|b| b.module_offset.to_native() == off));
        }
    }
}

/// A delta most of whose code the file holds already is a run's that
/// did not see the file as it is (a cold run racing another): its
/// segments would add a second copy of that code and its traces would
/// displace the file's. Only its marks are taken, and no zone; a delta
/// that brings more than a fifth of its code is taken as before.
#[test]
fn merging_a_delta_mostly_of_the_files_code_takes_only_its_marks() {
    let old = Aligned::new(&sample());
    let old = validate(old.bytes()).expect("valid");
    // Blocks `from..50` moved to module offsets the file lacks, a trace,
    // and a lookup mark of a block the file holds unflagged.
    let delta = |from: u32| {
        Aligned::new(&sample_with(sample_flags, move |ix| {
            with_trace(ix);
            for b in ix.blocks.iter_mut().filter(|b| b.module_offset >= 0x1000 + 16 * from) {
                b.module_offset += 0x10000;
            }
            ix.marks = vec![Mark { module_offset: 0x1010, flags: BlockEntry::LOOKUP_TARGET }];
            ix.derive_from_blocks();
        }))
    };
    assert_eq!(old.index.lacks_flags(0x1010, BlockEntry::LOOKUP_TARGET), BlockEntry::LOOKUP_TARGET, "a mark that brings a flag");
    let racer = delta(48);
    let racer = validate(racer.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&racer).expect("parts"), persist::merge::EVERY_BLOCK);
    assert_eq!(added, Some(1), "the mark alone");
    let ix = &file.index;
    assert_eq!((ix.segments.len(), ix.blocks.len(), ix.traces.len(), file.zones.len()), (1, 50, 0, 2), "no code of the racer");
    let flagged = ix.blocks.iter().find(|b| b.module_offset == 0x1010).expect("block");
    assert_ne!(flagged.flags & BlockEntry::LOOKUP_TARGET, 0, "the mark is taken");
    // Two fifths of its blocks new: taken whole, trace included.
    let grower = delta(30);
    let grower = validate(grower.bytes()).expect("valid");
    let mut file = persist::merge::Parts::of(&old).expect("parts");
    let added = persist::merge::merge(&mut file, persist::merge::Parts::of(&grower).expect("parts"), persist::merge::EVERY_BLOCK);
    assert_eq!(added, Some(20 + 1 + 1), "its new blocks, its trace and the mark");
    let ix = &file.index;
    assert_eq!((ix.segments.len(), ix.blocks.len(), ix.traces.len(), file.zones.len()), (2, 70, 1, 4));
}
