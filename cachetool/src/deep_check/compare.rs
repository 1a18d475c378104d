//! Comparing the blocks of a cache file with their re-translation, block
//! by block: every byte of code equal, but for the displacements of
//! RIP-relative operands and branches, which must lead to the same
//! [`Place`] in both (a file places blocks, slots and stubs where its
//! segments had room, so the numbers differ while the meaning may not);
//! a direct exit may be linked straight to its target block in one file
//! and go through its slot in the other. Exits, their stubs' code and
//! data, their slots' contents and the fault translations are compared
//! likewise. Clients' block data (counters a run left, notes) is not
//! code: only where code reaches it is compared.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};
use persist::exit_data::{self, StoredExit};
use persist::index::{ArchivedBlockData, ArchivedBlockEntry, ArchivedExitEntry, ArchivedTraceEntry, TraceEntry};
use persist::Validated;

const STUB_CODE_LEN: u64 = exit_data::STUB_CODE_LEN as u64;
const STUB_LEN: u64 = STUB_CODE_LEN + exit_data::LEN as u64;
/// Bytes of a conditional exit's slot trampoline
/// (`encoder::slot_trampoline`): `jmp [rip + slot]`, two `int3`. A
/// segment's lie together after its code, in no order the index names:
/// each is known by the slot it jumps through.
const TRAMPOLINE_LEN: u64 = 8;

/// Where an address in a file leads, in terms that do not depend on
/// where the file put things.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    /// The fragment's own code (or stub), this many bytes from its start.
    Own(u64),
    /// Exit `k`'s stub, this many bytes in.
    Stub(u32, u64),
    /// Exit `k`'s slot trampoline (a conditional exit's).
    Trampoline(u32),
    BaseSlot,
    /// A trace's budget of missed in-line checks.
    Budget,
    ExitSlot(u32),
    /// The counting stub (`persist::counting_stubs`) of the head at this
    /// module offset in the fragment's segment, its counter, its go slot.
    CountingStub(u32),
    Counter(u32),
    GoSlot(u32),
    /// The block's `j`th client data, this many bytes in.
    Data(u32, u64),
    /// The start of the code of the block at this module offset.
    Block(u32),
    /// The start of the code of the trace whose head is at this module
    /// offset.
    Trace(u32),
    /// Another block's client data: its module offset, the data's index,
    /// this many bytes in.
    BlockData(u32, u32, u64),
    ClientW(u64),
    ClientX(u64),
    Nowhere,
}

/// One file: its zones, and which block's code starts at which file
/// offset (for links, which may lead to another segment's block).
pub struct FileView<'a> {
    v: &'a Validated<'a>,
    block_at: HashMap<u64, u32>,
    /// Every trace's head by its code's file offset.
    trace_at: HashMap<u64, u32>,
    /// Every block's client data by file offset: (W zone, block's module
    /// offset, its data index). A trace's copy of a block counts with the
    /// block's own counter.
    data_at: BTreeMap<u64, (u32, u32, u32)>,
    /// Every slot trampoline's file offset by that of the slot it jumps
    /// through.
    trampoline_of: HashMap<u64, u64>,
    /// Every counting stub's and its counter's file offsets by its
    /// segment and head.
    counting_stub_of: HashMap<(u32, u32), (u64, u64)>,
}

impl<'a> FileView<'a> {
    pub fn new(v: &'a Validated<'a>) -> FileView<'a> {
        let x_at: Vec<u64> = v.index.segments.iter().map(|s| v.zones[s.x_zone.to_native() as usize].offset).collect();
        let block_at = v
            .index
            .blocks
            .iter()
            .map(|b| (x_at[b.segment.to_native() as usize] + b.code_offset.to_native() as u64, b.module_offset.to_native()))
            .collect();
        let trace_at = v
            .index
            .traces
            .iter()
            .map(|t| (x_at[t.segment.to_native() as usize] + t.code_offset.to_native() as u64, t.head.to_native()))
            .collect();
        let mut data_at = BTreeMap::new();
        for b in v.index.blocks.iter() {
            let w_zone = v.index.segments[b.segment.to_native() as usize].w_zone.to_native();
            let first = b.first_data.to_native() as usize;
            for (j, d) in v.index.block_data[first..first + b.data_count.to_native() as usize].iter().enumerate() {
                data_at.insert(v.zones[w_zone as usize].offset + d.w_offset.to_native() as u64, (w_zone, b.module_offset.to_native(), j as u32));
            }
        }
        let counting_stub_of = v
            .index
            .counting_stubs
            .iter()
            .map(|c| {
                let seg = &v.index.segments[c.segment.to_native() as usize];
                let (w, x) = (v.zones[seg.w_zone.to_native() as usize].offset, v.zones[seg.x_zone.to_native() as usize].offset);
                ((c.segment.to_native(), c.head.to_native()), (x + c.code.to_native() as u64, w + c.counter.to_native() as u64))
            })
            .collect();
        FileView { v, block_at, trace_at, data_at, trampoline_of: trampolines(v), counting_stub_of }
    }

    fn zone_at(&self, zone: u32) -> u64 {
        self.v.zones[zone as usize].offset
    }

    fn block(&self, b: &ArchivedBlockEntry) -> Fragment<'_> {
        let first_data = b.first_data.to_native() as usize;
        self.fragment(Piece {
            module_offset: b.module_offset.to_native(),
            segment: b.segment.to_native(),
            code: (b.code_offset.to_native(), b.code_len.to_native()),
            exits: (b.first_exit.to_native(), b.exit_count.to_native()),
            data: &self.v.index.block_data[first_data..first_data + b.data_count.to_native() as usize],
            budget_slot: None,
        })
    }

    fn trace(&self, t: &ArchivedTraceEntry) -> Fragment<'_> {
        self.fragment(Piece {
            module_offset: t.head.to_native(),
            segment: t.segment.to_native(),
            code: (t.code_offset.to_native(), t.code_len.to_native()),
            exits: (t.first_exit.to_native(), t.exit_count.to_native()),
            data: &[],
            budget_slot: Some(t.budget_slot.to_native()).filter(|&s| s != TraceEntry::NO_BUDGET),
        })
    }

    /// A block's or trace's view: its code, exits and data, addressed as
    /// file offsets (the zones of a file are mapped as they lie in it, so
    /// RIP-relative code reaches offsets).
    fn fragment(&self, p: Piece) -> Fragment<'_> {
        let seg = &self.v.index.segments[p.segment as usize];
        let (w_zone, x_zone) = (seg.w_zone.to_native(), seg.x_zone.to_native());
        let (first, count) = (p.exits.0 as usize, p.exits.1 as usize);
        let x = self.v.zone_bytes(x_zone as usize);
        let code_offset = p.code.0 as usize;
        let w_at = self.zone_at(w_zone);
        let mut f = Fragment {
            file: self,
            module_offset: p.module_offset,
            segment: p.segment,
            w_at,
            x_at: self.zone_at(x_zone),
            x,
            code_at: self.zone_at(x_zone) + code_offset as u64,
            code: &x[code_offset..code_offset + p.code.1 as usize],
            base_slot: w_at + seg.base_slot.to_native() as u64,
            budget_slot: p.budget_slot.map(|s| w_at + s as u64),
            exits: &self.v.index.exits[first..first + count],
            data: p.data.iter().map(|d| (d.client.to_native(), w_at + d.w_offset.to_native() as u64)).collect(),
            fields: HashMap::new(),
        };
        for (k, e) in f.exits.iter().enumerate() {
            let data_at = f.x_at + e.stub.to_native() as u64 + STUB_CODE_LEN;
            let Some(stored) = f.stub_data(e) else { continue };
            if let Some((branch, _)) = stored.branch_and_slot() {
                let field = exit_data::from_distance(data_at, branch as u32);
                f.fields.insert(field.wrapping_sub(f.code_at), k as u32);
            }
        }
        f
    }
}

/// Every slot trampoline of `v`'s segments (between a segment's code and
/// its first stub, 8 bytes apart: `ff 25` and a displacement) by the
/// file offset of the slot it jumps through; bytes of another form there
/// are filler.
fn trampolines(v: &Validated) -> HashMap<u64, u64> {
    let mut found = HashMap::new();
    for s in v.index.segments.iter() {
        let first = s.first_exit.to_native() as usize;
        let exits = &v.index.exits[first..first + s.exit_count.to_native() as usize];
        let x_zone = s.x_zone.to_native() as usize;
        let x = v.zone_bytes(x_zone);
        let x_at = v.zones[x_zone].offset;
        let stubs = exits.iter().map(|e| e.stub.to_native() as u64).min().unwrap_or(0);
        let mut t = s.code_len.to_native() as u64;
        while t + TRAMPOLINE_LEN <= stubs {
            if let Some(&[0xff, 0x25, a, b, c, d]) = x.get(t as usize..t as usize + 6).map(|b| <&[u8; 6]>::try_from(b).unwrap()) {
                let slot = (x_at + t + 6).wrapping_add(i32::from_le_bytes([a, b, c, d]) as i64 as u64);
                found.insert(slot, x_at + t);
            }
            t += TRAMPOLINE_LEN;
        }
    }
    found
}

/// Where a block's or trace's parts are in its file's index.
struct Piece<'a> {
    module_offset: u32,
    segment: u32,
    /// (offset in the segment's X zone, length).
    code: (u32, u32),
    /// (first, count) of the index's exits.
    exits: (u32, u32),
    data: &'a [ArchivedBlockData],
    /// A trace's budget of missed in-line checks, in its segment's W.
    budget_slot: Option<u32>,
}

struct Fragment<'a> {
    file: &'a FileView<'a>,
    module_offset: u32,
    segment: u32,
    w_at: u64,
    x_at: u64,
    x: &'a [u8],
    code_at: u64,
    code: &'a [u8],
    base_slot: u64,
    budget_slot: Option<u64>,
    exits: &'a [ArchivedExitEntry],
    /// (client, file offset) of each client data.
    data: Vec<(u32, u64)>,
    /// The exit whose branch's rel32 (or slot displacement) field is at
    /// this offset of the code, from its stub's data.
    fields: HashMap<u64, u32>,
}

impl Fragment<'_> {
    fn stub_at(&self, e: &ArchivedExitEntry) -> u64 {
        self.x_at + e.stub.to_native() as u64
    }

    /// The head exit `k` goes to, and where the counting stub of that
    /// head in this segment and its counter lie, if it has one.
    fn counting_stub(&self, k: usize) -> Option<(u32, u64, u64)> {
        let head = u32::try_from(self.exits[k].target.to_native()).ok()?;
        let &(code, counter) = self.file.counting_stub_of.get(&(self.segment, head))?;
        Some((head, code, counter))
    }

    /// Where the slot trampoline of exit `e` lies, if it has one.
    fn trampoline(&self, e: &ArchivedExitEntry) -> Option<u64> {
        self.file.trampoline_of.get(&(self.w_at + e.slot.to_native() as u64)).copied()
    }

    /// Whether exit `k`'s branch is conditional, by the form around its
    /// field: `jcc rel32` (0f 8x), or `j<not cc> +6` over a slot jump.
    fn exit_is_conditional(&self, k: u32) -> bool {
        let at = |i: u64| self.code.get(i as usize).copied();
        self.fields.iter().filter(|&(_, &e)| e == k).any(|(&field, _)| {
            field >= 2
                && match (at(field - 2), at(field - 1)) {
                    (Some(0x0f), Some(op)) => op & 0xf0 == 0x80,
                    (Some(op), Some(0x06)) => op & 0xf0 == 0x70,
                    _ => false,
                }
        })
    }

    fn stub_data(&self, e: &ArchivedExitEntry) -> Option<StoredExit> {
        let at = e.stub.to_native() as usize + STUB_CODE_LEN as usize;
        StoredExit::from_bytes(self.x.get(at..)?)
    }

    fn place(&self, t: u64) -> Place {
        if t >= self.code_at && t < self.code_at + self.code.len() as u64 {
            return Place::Own(t - self.code_at);
        }
        for (k, e) in self.exits.iter().enumerate() {
            let stub = self.stub_at(e);
            if self.trampoline(e) == Some(t) {
                return Place::Trampoline(k as u32);
            }
            if t >= stub && t < stub + STUB_LEN {
                return Place::Stub(k as u32, t - stub);
            }
            if t == self.w_at + e.slot.to_native() as u64 {
                return Place::ExitSlot(k as u32);
            }
            match self.counting_stub(k) {
                Some((head, code, _)) if t == code => return Place::CountingStub(head),
                Some((head, _, counter)) if t == counter => return Place::Counter(head),
                Some((head, _, counter)) if t == counter + persist::counting_stubs::GO_SLOT_AT as u64 => return Place::GoSlot(head),
                _ => {}
            }
        }
        if t == self.base_slot {
            return Place::BaseSlot;
        }
        if Some(t) == self.budget_slot {
            return Place::Budget;
        }
        if let Some(&m) = self.file.block_at.get(&t) {
            return Place::Block(m);
        }
        if let Some(&m) = self.file.trace_at.get(&t) {
            return Place::Trace(m);
        }
        let own_data = self.data.iter().enumerate().filter(|(_, &(_, at))| at <= t && t < self.x_at).max_by_key(|(_, &(_, at))| at);
        if let Some((j, &(_, at))) = own_data {
            return Place::Data(j as u32, t - at);
        }
        if let Some((&at, &(zone, m, j))) = self.file.data_at.range(..=t).next_back() {
            let z = self.file.v.zones[zone as usize];
            if t < z.offset + z.len {
                return Place::BlockData(m, j, t - at);
            }
        }
        if let Some(zones) = self.file.v.index.client_zones.as_ref() {
            let (w, x) = (zones.0.to_native() as usize, zones.1.to_native() as usize);
            let (w, x) = (self.file.v.zones[w], self.file.v.zones[x]);
            if t >= w.offset && t < w.offset + w.len {
                return Place::ClientW(t - w.offset);
            }
            if t >= x.offset && t < x.offset + x.len {
                return Place::ClientX(t - x.offset);
            }
        }
        Place::Nowhere
    }

    /// Whether a direct exit `k` may go to `place`: its stub, its slot,
    /// or the block its target is, or its target's trace (a file for runs
    /// with traces leads exits to them).
    fn exit_may_reach(&self, k: u32, place: Place) -> bool {
        match place {
            Place::Stub(j, 0) | Place::ExitSlot(j) => j == k,
            Place::CountingStub(m) => self.exits[k as usize].target.to_native() == m as i64,
            // Only a conditional exit has a slot trampoline.
            Place::Trampoline(j) => j == k && self.exit_is_conditional(k),
            Place::Block(m) | Place::Trace(m) => self.exits[k as usize].target.to_native() == m as i64,
            // A branch back to the block's own start (a loop).
            Place::Own(0) => self.exits[k as usize].target.to_native() == self.module_offset as i64,
            _ => false,
        }
    }
}

/// A direct exit's branch in its file form: `jmp`/`jcc rel32` (padded),
/// or `jmp [rip + slot]` (behind a `j<not cc>` over it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct ExitForm {
    exit: u32,
    /// The condition, as the low nibble of the `jcc rel32` opcode.
    cond: Option<u8>,
    len: u64,
}

/// The exit branch at `pos` of `f`'s code, if one of `f`'s exits has its
/// field there; checked to lead where the exit may go. An exit's stub
/// data locates the rel32 field of its branch as emitted (`jmp rel32`,
/// `jcc rel32`), whichever form the file wrote it in.
fn exit_form(f: &Fragment, pos: u64) -> Result<Option<ExitForm>, String> {
    let c = f.code;
    let at = |i: u64| c.get((pos + i) as usize).copied();
    let rel32_end = |i: u64| -> Option<u64> {
        let b = c.get((pos + i) as usize..(pos + i + 4) as usize)?;
        Some((f.code_at + pos + i + 4).wrapping_add(i32::from_le_bytes(b.try_into().ok()?) as i64 as u64))
    };
    let (Some(first), Some(second)) = (at(0), at(1)) else { return Ok(None) };
    let unconditional = f.fields.get(&(pos + 1)).copied();
    let conditional = f.fields.get(&(pos + 2)).copied();
    let (form, target, padding) = match (first, second, unconditional, conditional) {
        (0xe9, _, Some(exit), _) => (ExitForm { exit, cond: None, len: 6 }, rel32_end(1), 5..6),
        (0xff, 0x25, Some(exit), _) => (ExitForm { exit, cond: None, len: 6 }, rel32_end(2), 0..0),
        (0x0f, op, _, Some(exit)) if op & 0xf0 == 0x80 => (ExitForm { exit, cond: Some(op & 0xf), len: 8 }, rel32_end(2), 6..8),
        // `j<not cc> +6` over the slot jump: the exit's condition is the
        // negation (the low bit flipped).
        (op, 0x06, _, Some(exit)) if op & 0xf0 == 0x70 && at(2) == Some(0xff) && at(3) == Some(0x25) => {
            (ExitForm { exit, cond: Some((op & 0xf) ^ 1), len: 8 }, rel32_end(4), 0..0)
        }
        _ => return falls_through(f, pos, unconditional),
    };
    let Some(target) = target else { return Err("an exit branch runs past the code".into()) };
    if !f.exit_may_reach(form.exit, f.place(target)) {
        return Err(format!("exit {} branches to {:?}, not to its target, slot or stub", form.exit, f.place(target)));
    }
    // The padding after a direct form must be no-ops.
    let pad = c.get((pos + padding.start) as usize..(pos + padding.end) as usize).unwrap_or(&[]);
    if !pad.is_empty() && !is_nops(pad) {
        return Err(format!("exit {}'s padding is not no-ops", form.exit));
    }
    Ok(Some(form))
}

/// The fragment's last exit at `pos` in the form that runs on into the
/// code after it (`encoder::exit_falls_through` in the runtime): no-ops
/// from there to the first block that starts at most 15 bytes after the
/// code (filler a runtime aligning code would leave), which must be the
/// exit's target.
fn falls_through(f: &Fragment, pos: u64, unconditional: Option<u32>) -> Result<Option<ExitForm>, String> {
    let len = f.code.len() as u64;
    let Some(exit) = unconditional.filter(|_| pos + 6 == len) else { return Ok(None) };
    let end = f.code_at + len;
    let Some(next) = (end..end + 16).find(|at| f.file.block_at.contains_key(at)) else { return Ok(None) };
    let filler = f.x.get((f.code_at + pos - f.x_at) as usize..(next - f.x_at) as usize);
    if !filler.is_some_and(is_nops) {
        return Ok(None);
    }
    if !f.exit_may_reach(exit, f.place(next)) {
        return Err(format!("exit {} runs on into {:?}, not its target", exit, f.place(next)));
    }
    Ok(Some(ExitForm { exit, cond: None, len: 6 }))
}

fn is_nops(bytes: &[u8]) -> bool {
    let mut d = Decoder::new(64, bytes, DecoderOptions::NONE);
    let mut i = Instruction::default();
    while d.can_decode() {
        d.decode_out(&mut i);
        if i.is_invalid() || i.mnemonic() != Mnemonic::Nop {
            return false;
        }
    }
    true
}

/// Compares `len` bytes of code of `a` at file offset `a_start` with
/// those of `b` at `b_start`: instruction by instruction, exit branches
/// and exit data by meaning.
fn compare_code(a: &Fragment, a_start: u64, b: &Fragment, b_start: u64, len: u64) -> Result<(), String> {
    let bytes = |f: &Fragment, start: u64| -> Result<Vec<u8>, String> {
        let from = (start - f.x_at) as usize;
        f.x.get(from..from + len as usize).map(<[u8]>::to_vec).ok_or_else(|| "code past its zone".to_string())
    };
    let (ca, cb) = (bytes(a, a_start)?, bytes(b, b_start)?);
    // Where exit data lies in this code (a stub's or an in-line one's):
    // the target of a `lea rax, [rip + data]` before the jump out.
    let mut exit_data_at = BTreeSet::new();
    let mut pos = 0u64;
    while pos < len {
        let (ia_at, ib_at) = (a_start + pos, b_start + pos);
        if exit_data_at.contains(&pos) {
            compare_exit_data(a, ia_at, b, ib_at)?;
            pos += exit_data::LEN as u64;
            continue;
        }
        if a_start == a.code_at {
            let (ea, eb) = (exit_form(a, pos)?, exit_form(b, pos)?);
            match (ea, eb) {
                (None, None) => {}
                (Some(x), Some(y)) if x == y => {
                    pos += x.len;
                    continue;
                }
                (x, y) => return Err(format!("at +{pos:#x}: exit branch {x:?}, re-translated {y:?}")),
            }
        }
        let (ia, ib) = (decode(&ca[pos as usize..], ia_at), decode(&cb[pos as usize..], ib_at));
        let n = ia.len() as u64;
        if ia.is_invalid() || ib.is_invalid() || n != ib.len() as u64 {
            return Err(format!("at +{pos:#x}: instructions differ in length or do not decode"));
        }
        let (ta, tb) = (relative_target(&ia), relative_target(&ib));
        let field = |at: &[u8], i: &Instruction| -> Option<std::ops::Range<usize>> {
            let mut d = Decoder::new(64, at, DecoderOptions::NONE);
            let mut decoded = Instruction::default();
            d.decode_out(&mut decoded);
            let offsets = d.get_constant_offsets(&decoded);
            if i.is_ip_rel_memory_operand() {
                Some(offsets.displacement_offset()..offsets.displacement_offset() + offsets.displacement_size())
            } else if relative_target(i).is_some() {
                Some(offsets.immediate_offset()..offsets.immediate_offset() + offsets.immediate_size())
            } else {
                None
            }
        };
        let (sa, sb) = (&ca[pos as usize..(pos + n) as usize], &cb[pos as usize..(pos + n) as usize]);
        let masked = field(sa, &ia);
        if masked != field(sb, &ib) {
            return Err(format!("at +{pos:#x}: instructions differ"));
        }
        let same_bytes = sa.iter().zip(sb).enumerate().all(|(i, (x, y))| x == y || masked.as_ref().is_some_and(|m| m.contains(&i)));
        if !same_bytes {
            return Err(format!("at +{pos:#x}: instructions differ"));
        }
        if let (Some(ta), Some(tb)) = (ta, tb) {
            let (pa, pb) = (place_in(a, a_start, len, ta), place_in(b, b_start, len, tb));
            if pa != pb || pa == Place::Nowhere {
                return Err(format!("at +{pos:#x}: operand leads to {pa:?}, re-translated to {pb:?}"));
            }
            if ib.mnemonic() == Mnemonic::Lea {
                if let Place::Own(t) = pb {
                    if t > pos && t < len {
                        exit_data_at.insert(t);
                    }
                }
            }
        }
        pos += n;
    }
    Ok(())
}

/// `f.place(t)`, but for code that is not the block's own (a stub), its
/// own bytes are `Own` too.
fn place_in(f: &Fragment, start: u64, len: u64, t: u64) -> Place {
    if start != f.code_at && t >= start && t < start + len {
        return Place::Own(t - start);
    }
    f.place(t)
}

fn decode(bytes: &[u8], ip: u64) -> Instruction {
    Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE).decode()
}

/// The address a RIP-relative operand or a relative branch leads to.
fn relative_target(i: &Instruction) -> Option<u64> {
    if i.is_ip_rel_memory_operand() {
        return Some(i.ip_rel_memory_address());
    }
    (0..i.op_count()).find_map(|k| match i.op_kind(k) {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => Some(i.near_branch_target()),
        _ => None,
    })
}

/// Two exit data records (24 bytes at file offsets `a_at`, `b_at`):
/// the same kind and target, their distances leading to the same places.
fn compare_exit_data(a: &Fragment, a_at: u64, b: &Fragment, b_at: u64) -> Result<(), String> {
    let read = |f: &Fragment, at: u64| StoredExit::from_bytes(f.x.get((at - f.x_at) as usize..).unwrap_or(&[]));
    let (Some(sa), Some(sb)) = (read(a, a_at), read(b, b_at)) else { return Err("exit data past its zone".into()) };
    if sa.kind != sb.kind || sa.target != sb.target {
        return Err(format!("exit data: kind {:#x} to {:#x}, re-translated kind {:#x} to {:#x}", sa.kind, sa.target, sb.kind, sb.target));
    }
    if sa.kind == exit_data::KIND_CLEAN_CALL {
        return if sa == sb { Ok(()) } else { Err("a clean call's data differs".into()) };
    }
    let leads = |f: &Fragment, at: u64, d: u32| f.place(exit_data::from_distance(at, d));
    if leads(a, a_at, sa.aux) != leads(b, b_at, sb.aux) {
        return Err("exit data: its base slot differs".into());
    }
    if sa.kind == exit_data::KIND_HEAD_HOT {
        let same = leads(a, a_at, sa.patch as u32) == leads(b, b_at, sb.patch as u32) && sa.patch >> 32 == 0 && sb.patch >> 32 == 0;
        return if same { Ok(()) } else { Err("a counting stub's exit data: its counter differs".into()) };
    }
    match (sa.branch_and_slot(), sb.branch_and_slot()) {
        (None, None) => Ok(()),
        (Some((ba, wa)), Some((bb, wb)))
            if leads(a, a_at, ba as u32) == leads(b, b_at, bb as u32) && leads(a, a_at, wa as u32) == leads(b, b_at, wb as u32) =>
        {
            Ok(())
        }
        _ => Err("exit data: its branch or slot differs".into()),
    }
}

/// Compares block `a` of one file with `b`, its re-translation.
pub fn compare_blocks(fa: &FileView, a: &ArchivedBlockEntry, fb: &FileView, b: &ArchivedBlockEntry) -> Result<(), String> {
    if a.app_len != b.app_len || a.code_len != b.code_len || a.exit_count != b.exit_count || a.data_count != b.data_count {
        return Err(format!(
            "{} app bytes, {} of code, {} exits, {} data; re-translated {}, {}, {}, {}",
            a.app_len, a.code_len, a.exit_count, a.data_count, b.app_len, b.code_len, b.exit_count, b.data_count
        ));
    }
    let (x, y) = (fa.block(a), fb.block(b));
    if x.data.iter().map(|d| d.0).ne(y.data.iter().map(|d| d.0)) {
        return Err("its client data belongs to other clients".into());
    }
    if translations(fa.v, a.translation_offset.to_native(), a.translation_len.to_native())
        != translations(fb.v, b.translation_offset.to_native(), b.translation_len.to_native())
    {
        return Err("its fault translations differ".into());
    }
    compare_fragments(&x, &y)
}

/// Compares trace `a` of one file with `b`, built again from the same
/// blocks.
pub fn compare_traces(fa: &FileView, a: &ArchivedTraceEntry, fb: &FileView, b: &ArchivedTraceEntry) -> Result<(), String> {
    let spans = |v: &Validated, t: &ArchivedTraceEntry| -> Vec<(u32, u32)> {
        let first = t.first_span.to_native() as usize;
        v.index.trace_spans[first..first + t.span_count.to_native() as usize].iter().map(|s| (s.module_offset.to_native(), s.app_len.to_native())).collect()
    };
    if spans(fa.v, a) != spans(fb.v, b) {
        return Err("it holds other blocks than built again".into());
    }
    if a.code_len != b.code_len || a.exit_count != b.exit_count {
        return Err(format!("{} bytes of code, {} exits; built again {}, {}", a.code_len, a.exit_count, b.code_len, b.exit_count));
    }
    if translations(fa.v, a.translation_offset.to_native(), a.translation_len.to_native())
        != translations(fb.v, b.translation_offset.to_native(), b.translation_len.to_native())
    {
        return Err("its fault translations differ".into());
    }
    let (x, y) = (fa.trace(a), fb.trace(b));
    if x.budget_slot.is_some() != y.budget_slot.is_some() {
        return Err("it counts its missed checks where built again it does not, or the reverse".into());
    }
    compare_fragments(&x, &y)
}

/// A fragment's packed fault translations.
fn translations<'v>(v: &'v Validated, at: u32, len: u32) -> Option<&'v [u8]> {
    v.index.translations.get(at as usize..at as usize + len as usize)
}

/// The code, exits, stubs and slots of `x` against `y`'s.
fn compare_fragments(x: &Fragment, y: &Fragment) -> Result<(), String> {
    compare_code(x, x.code_at, y, y.code_at, x.code.len() as u64)?;
    let w = x.file.v.zone_bytes(x.file.v.index.segments[x.segment as usize].w_zone.to_native() as usize);
    for (k, (ea, eb)) in x.exits.iter().zip(y.exits).enumerate() {
        if ea.target != eb.target {
            return Err(format!("exit {k} goes to {:#x}, re-translated {:#x}", ea.target, eb.target));
        }
        compare_code(x, x.stub_at(ea), y, y.stub_at(eb), STUB_LEN).map_err(|e| format!("exit {k}'s stub: {e}"))?;
        if y.exit_is_conditional(k as u32) {
            let (Some(ta), Some(tb)) = (x.trampoline(ea), y.trampoline(eb)) else {
                return Err(format!("exit {k} is conditional, but has no slot trampoline"));
            };
            compare_code(x, ta, y, tb, TRAMPOLINE_LEN).map_err(|e| format!("exit {k}'s trampoline: {e}"))?;
        }
        // A run may write a segment without one for the exit's target (it
        // was cold, or elsewhere): compared where both have one.
        if let (Some((_, ca, _)), Some((_, cb, _))) = (x.counting_stub(k), y.counting_stub(k)) {
            compare_code(x, ca, y, cb, persist::counting_stubs::LEN as u64).map_err(|e| format!("exit {k}'s counting stub: {e}"))?;
        }
        let slot = ea.slot.to_native() as usize;
        let holds = w.get(slot..slot + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap()));
        let Some(holds) = holds else { return Err(format!("exit {k}'s slot lies outside its zone")) };
        if !x.exit_may_reach(k as u32, x.place(persist::exit_slots::resolve(holds, x.x_at))) {
            return Err(format!("exit {k}'s slot leads to neither its stub nor its target"));
        }
    }
    Ok(())
}
