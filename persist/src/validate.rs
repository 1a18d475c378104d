//! Checking a file before anything in it is used: any length and any bytes
//! must give a clear rejection, never a panic or an out-of-bounds read.
//! Beyond the hashes, the index's structure is checked against the zones
//! (a hostile file can carry correct hashes), so users of a [`Validated`]
//! file may index its zones with the index's offsets without more checks.

use alloc::vec::Vec;

use crate::header::*;
use crate::index::ArchivedIndex;
use crate::key::CacheKey;

/// Why a file was rejected (one reason, for `-v` and `cachetool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    Truncated,
    BadMagic,
    FutureVersion,
    OldVersion,
    BadHeader,
    BadZones,
    ZoneHash(ZoneKind),
    BadKey,
    BadIndex,
}

impl Reject {
    /// A short name, for counters and messages.
    pub fn name(self) -> &'static str {
        match self {
            Reject::Truncated => "truncated",
            Reject::BadMagic => "not a cache file",
            Reject::FutureVersion => "newer format",
            Reject::OldVersion => "older format",
            Reject::BadHeader => "bad header",
            Reject::BadZones => "bad zone table",
            Reject::ZoneHash(ZoneKind::ReadOnly) => "R zone checksum",
            Reject::ZoneHash(ZoneKind::Exec) => "X zone checksum",
            Reject::ZoneHash(ZoneKind::Writable) => "W zone checksum",
            Reject::BadKey => "bad key",
            Reject::BadIndex => "bad index",
        }
    }
}

/// A file that passed every check.
pub struct Validated<'a> {
    pub key: CacheKey,
    pub zones: Vec<Zone>,
    pub index: &'a ArchivedIndex,
    file: &'a [u8],
}

impl<'a> Validated<'a> {
    pub fn zone_bytes(&self, i: usize) -> &'a [u8] {
        let z = self.zones[i];
        &self.file[z.offset as usize..(z.offset + z.len) as usize]
    }
}

/// How much of the file to check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Structure and every zone's hash.
    Full,
    /// Structure and the R zone's hash only: for a caller that hashes the
    /// other zones itself (or trusts them, having checked them before).
    Structure,
    /// The header, zone table and key only, the index taken as it is: for
    /// exactly the bytes an earlier `Full` check accepted (the runtime's
    /// memo of the file's identity says so), to load in O(1).
    Trusted,
}

/// Checks the whole of `file` (its start must be 16-byte aligned, as a
/// mapping is).
pub fn validate(file: &[u8]) -> Result<Validated<'_>, Reject> {
    validate_with(file, Depth::Full)
}

pub fn validate_with(file: &[u8], depth: Depth) -> Result<Validated<'_>, Reject> {
    if file.len() < HEADER_LEN {
        return Err(if file.len() >= 8 && &file[..8] != MAGIC { Reject::BadMagic } else { Reject::Truncated });
    }
    if &file[..8] != MAGIC {
        return Err(Reject::BadMagic);
    }
    let version = u32_at(file, 8);
    if version > FORMAT_VERSION {
        return Err(Reject::FutureVersion);
    }
    if version < FORMAT_VERSION {
        return Err(Reject::OldVersion);
    }
    let count = u32_at(file, ZONE_COUNT_AT) as usize;
    if u32_at(file, 12) as usize != HEADER_LEN || count == 0 || count > MAX_ZONES {
        return Err(Reject::BadHeader);
    }
    if header_and_table_len(count) > file.len() {
        return Err(Reject::Truncated);
    }
    if header_hash(file, count)[..] != file[HEADER_HASH_AT..HEADER_HASH_AT + 32] {
        return Err(Reject::BadHeader);
    }
    let mut zones = Vec::with_capacity(count);
    // R first; all in order, page-aligned, back to back to the file's end.
    let mut expect = 0u64;
    for i in 0..count {
        let z = zone(file, i).ok_or(Reject::BadZones)?;
        if (i == 0) != (z.kind == ZoneKind::ReadOnly) || z.offset != expect || z.offset % PAGE != 0 || z.len % PAGE != 0 {
            return Err(Reject::BadZones);
        }
        if z.len > file.len() as u64 {
            return Err(Reject::Truncated);
        }
        expect = z.offset.checked_add(z.len).ok_or(Reject::BadZones)?;
        zones.push(z);
    }
    if expect != file.len() as u64 {
        return Err(if expect > file.len() as u64 { Reject::Truncated } else { Reject::BadZones });
    }
    let r = &file[..zones[0].len as usize];
    if r.len() < header_and_table_len(count) || (depth != Depth::Trusted && read_only_hash(r) != zones[0].hash) {
        return Err(Reject::ZoneHash(ZoneKind::ReadOnly));
    }
    if depth == Depth::Full {
        for z in &zones[1..] {
            if blake3::hash(&file[z.offset as usize..(z.offset + z.len) as usize]).as_bytes() != &z.hash {
                return Err(Reject::ZoneHash(z.kind));
            }
        }
    }
    let key_at = header_and_table_len(count);
    let key_len = u32_at(file, KEY_LEN_AT) as usize;
    let index_at = u32_at(file, INDEX_AT) as usize;
    let index_len = u32_at(file, INDEX_LEN_AT) as usize;
    let key_end = key_at.checked_add(key_len).ok_or(Reject::BadKey)?;
    if key_end > r.len() {
        return Err(Reject::BadKey);
    }
    let key = CacheKey::decode(&r[key_at..key_end]).ok_or(Reject::BadKey)?;
    let index_end = index_at.checked_add(index_len).ok_or(Reject::BadIndex)?;
    if index_at < key_end || index_at % 16 != 0 || index_end > r.len() {
        return Err(Reject::BadIndex);
    }
    let index_bytes = &r[index_at..index_end];
    let index = if depth == Depth::Trusted {
        if index_bytes.len() < core::mem::size_of::<ArchivedIndex>() {
            return Err(Reject::BadIndex);
        }
        // SAFETY: these bytes passed the full check (bytecheck and
        // check_index) before, per the caller's memo of this file version.
        unsafe { rkyv::access_unchecked::<ArchivedIndex>(index_bytes) }
    } else {
        let index = rkyv::access::<ArchivedIndex, rkyv::rancor::Error>(index_bytes).map_err(|_| Reject::BadIndex)?;
        check_index(index, &zones).ok_or(Reject::BadIndex)?;
        index
    };
    Ok(Validated { key, zones, index, file })
}

/// Every offset and range in the index lies inside the zone it names.
fn check_index(ix: &ArchivedIndex, zones: &[Zone]) -> Option<()> {
    let zone_len = |i: u32, kind: ZoneKind| zones.get(i as usize).filter(|z| z.kind == kind).map(|z| z.len);
    let within = |off: u64, len: u64, limit: u64| off.checked_add(len).is_some_and(|end| end <= limit);
    let range_ok = |first: u32, count: u32, len: usize| within(first as u64, count as u64, len as u64);
    for s in ix.segments.iter() {
        let w = zone_len(s.w_zone.to_native(), ZoneKind::Writable)?;
        let x = zone_len(s.x_zone.to_native(), ZoneKind::Exec)?;
        if s.x_zone.to_native() != s.w_zone.to_native() + 1 || !within(s.base_slot.to_native() as u64, 8, w) || s.code_len.to_native() as u64 > x {
            return None;
        }
        if !range_ok(s.first_exit.to_native(), s.exit_count.to_native(), ix.exits.len()) {
            return None;
        }
        let first = s.first_exit.to_native() as usize;
        for e in &ix.exits[first..first + s.exit_count.to_native() as usize] {
            if !within(e.slot.to_native() as u64, 8, w) || e.slot.to_native() % 8 != 0 || e.stub.to_native() as u64 >= x {
                return None;
            }
        }
    }
    let mut last: Option<u32> = None;
    for b in ix.blocks.iter() {
        let off = b.module_offset.to_native();
        if last.is_some_and(|l| l >= off) {
            return None;
        }
        last = Some(off);
        let s = ix.segments.get(b.segment.to_native() as usize)?;
        let x = zones[s.x_zone.to_native() as usize].len;
        let w = zones[s.w_zone.to_native() as usize].len;
        if !within(b.code_offset.to_native() as u64, b.code_len.to_native() as u64, x)
            || !range_ok(b.first_exit.to_native(), b.exit_count.to_native(), ix.exits.len())
            || !range_ok(b.translation_offset.to_native(), b.translation_len.to_native(), ix.translations.len())
            || !range_ok(b.first_data.to_native(), b.data_count.to_native(), ix.block_data.len())
            || b.flags.to_native() & !crate::index::BlockEntry::KNOWN_FLAGS != 0
        {
            return None;
        }
        let first = b.first_data.to_native() as usize;
        for d in &ix.block_data[first..first + b.data_count.to_native() as usize] {
            if d.w_offset.to_native() as u64 >= w || d.client.to_native() as usize >= ix.clients.len() {
                return None;
            }
        }
    }
    // Exits `first..first + count` of segment `s` (a loader links them
    // through that segment's W zone).
    let in_segment = |s: &crate::index::ArchivedSegment, first: u32, count: u32| {
        let seg_first = s.first_exit.to_native();
        first >= seg_first && within(first as u64, count as u64, seg_first as u64 + s.exit_count.to_native() as u64)
    };
    let mut last: Option<u32> = None;
    for t in ix.traces.iter() {
        let head = t.head.to_native();
        if last.is_some_and(|l| l >= head) {
            return None;
        }
        last = Some(head);
        let s = ix.segments.get(t.segment.to_native() as usize)?;
        let w = zones[s.w_zone.to_native() as usize].len;
        let budget = t.budget_slot.to_native();
        if !within(t.code_offset.to_native() as u64, t.code_len.to_native() as u64, s.code_len.to_native() as u64)
            || !in_segment(s, t.first_exit.to_native(), t.exit_count.to_native())
            || !range_ok(t.translation_offset.to_native(), t.translation_len.to_native(), ix.translations.len())
            || !range_ok(t.first_span.to_native(), t.span_count.to_native(), ix.trace_spans.len())
            || (budget != crate::index::TraceEntry::NO_BUDGET && (!within(budget as u64, 8, w) || budget % 8 != 0))
        {
            return None;
        }
        // Its head is its first block.
        let first_span = ix.trace_spans.get(t.first_span.to_native() as usize)?;
        if t.span_count.to_native() == 0 || first_span.module_offset.to_native() != head {
            return None;
        }
    }
    for r in ix.exits_to_traces.iter().chain(ix.counted_exits.iter()) {
        if !in_segment(ix.segments.get(r.segment.to_native() as usize)?, r.exit.to_native(), 1) {
            return None;
        }
    }
    // Searched by segment and head; each lies whole in its segment's
    // zones and goes on to code of its segment; a segment's lie together
    // in the order of their heads, and so do their counters (a run's end
    // reads them without the entries).
    let mut last: Option<&crate::index::ArchivedCountingStub> = None;
    for c in ix.counting_stubs.iter() {
        let (segment, head, code, counter) = (c.segment.to_native(), c.head.to_native(), c.code.to_native(), c.counter.to_native());
        if let Some(l) = last {
            let (l_segment, l_head) = (l.segment.to_native(), l.head.to_native());
            let apart = l_segment == segment
                && (l.code.to_native().checked_add(crate::counting_stubs::LEN as u32) != Some(code)
                    || l.counter.to_native().checked_add(crate::counting_stubs::COUNTER_STRIDE as u32) != Some(counter));
            if (l_segment, l_head) >= (segment, head) || apart {
                return None;
            }
        }
        last = Some(c);
        let s = ix.segments.get(segment as usize)?;
        let (w, x) = (zones[s.w_zone.to_native() as usize].len, zones[s.x_zone.to_native() as usize].len);
        if !within(code as u64, crate::counting_stubs::LEN as u64, x)
            || !within(counter as u64, crate::counting_stubs::COUNTER_STRIDE as u64, w)
            || counter % 8 != 0
            || c.goes_to.to_native() >= s.code_len.to_native()
        {
            return None;
        }
    }
    // Searched by target (`Index::derive_trace_exits`).
    let target_of = |r: &crate::index::ArchivedExitRef| ix.exits[r.exit.to_native() as usize].target.to_native();
    if !ix.exits_to_traces.iter().map(target_of).is_sorted() {
        return None;
    }
    // A lookup target is entered as it is: it must be a block's start.
    for t in ix.lookup_targets.iter() {
        let b = ix.block_at(t.module_offset.to_native())?;
        if b.segment != t.segment || b.code_offset != t.code_offset || !b.lookup_target() {
            return None;
        }
    }
    // Marks are searched for in another file's blocks: kept increasing,
    // each is looked for once.
    if ix.marks.windows(2).any(|w| w[0].module_offset.to_native() >= w[1].module_offset.to_native()) {
        return None;
    }
    if ix.marks.iter().any(|m| m.flags.to_native() & !crate::index::BlockEntry::MARKABLE != 0) {
        return None;
    }
    if let Some(cz) = ix.client_zones.as_ref() {
        let w = zone_len(cz.0.to_native(), ZoneKind::Writable)?;
        let x = zone_len(cz.1.to_native(), ZoneKind::Exec)?;
        for c in ix.clients.iter() {
            if !within(c.rw_offset.to_native() as u64, c.rw_len.to_native() as u64, w)
                || !within(c.rx_offset.to_native() as u64, c.rx_len.to_native() as u64, x)
            {
                return None;
            }
        }
    } else if ix.clients.iter().any(|c| c.rw_len.to_native() != 0 || c.rx_len.to_native() != 0) {
        return None;
    }
    Some(())
}
