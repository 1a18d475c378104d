//! Encoding a mangled block into the code cache: the body, and one exit
//! stub per direct exit in stub room apart from the code.
//! Each stub saves rax, points rax at its inline [`ExitData`] and jumps to
//! the runtime; linking later retargets the body's branch from the stub
//! straight to the target fragment.
//!
//! A block emitted into a persistable segment is position-independent:
//! its stubs jump to the runtime through `gs:`, their exit data hold
//! module offsets and distances instead of addresses, and each direct exit
//! is padded to the size of `jmp [rip + slot]` (with a W slot reserved for
//! it), the form the exit takes in a file.

use alloc::vec::Vec;

use iced_x86::{ConditionCode, Encoder};
use persist::exit_data::{self, StoredExit};

use crate::translate::code_cache::CodeCache;
use crate::translate::encoder;
use crate::context_switch;
use crate::translate::fragment::{self, pack_translations, ExitRecord, Fragment, Translation};
use crate::translate::ibl;
use crate::translate::mangle::{MangledOp, Op};
use crate::translate::returns;
use crate::translate::segment::LiveSegment;
use crate::thread::offsets as off;

#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// A direct branch; `target` is the app pc.
    Direct = 0,
    /// The indirect-branch lookup missed; the app pc is in `ctx.next_pc`.
    IndirectMiss = 1,
    /// A `syscall`; `target` is the app pc after it.
    Syscall = 2,
    /// A client's clean call; `target` is the cache address to resume at,
    /// `arg` the call's argument, `aux` the client index and call id.
    CleanCall = 3,
    /// A trace spent its budget of missed in-line checks (`target` is its
    /// head); the app pc the branch went to is in rcx, the app's rcx in
    /// `ctx.ibl_rcx`.
    TraceStale = 4,
    /// A head's counting stub counted down to zero (`target` is the head,
    /// where the thread goes on).
    HeadHot = 5,
    /// Position-independent forms, the ones files hold
    /// ([`persist::exit_data`]).
    RelativeDirect = persist::exit_data::KIND_DIRECT,
    RelativeSyscall = persist::exit_data::KIND_SYSCALL,
    /// Resumes right after its exit data.
    RelativeCleanCall = persist::exit_data::KIND_CLEAN_CALL,
    RelativeTraceStale = persist::exit_data::KIND_TRACE_STALE,
    /// A file's counting stub counted its exit's head to zero
    /// (`persist::counting_stubs`).
    RelativeHeadHot = persist::exit_data::KIND_HEAD_HOT,
}

impl ExitKind {
    /// The kind stored as `raw`, if it is one. Exit data lives in the cache
    /// and in mapped files: its bytes are read as an integer and checked,
    /// never taken for an enum as they are.
    pub(crate) fn from_raw(raw: u32) -> Option<ExitKind> {
        use ExitKind::*;
        let raw = raw & !exit_data::COUNTS_TARGET;
        [
            Direct,
            IndirectMiss,
            Syscall,
            CleanCall,
            TraceStale,
            HeadHot,
            RelativeDirect,
            RelativeSyscall,
            RelativeCleanCall,
            RelativeTraceStale,
            RelativeHeadHot,
        ]
            .into_iter()
            .find(|k| *k as u32 == raw)
    }
}

/// What the dispatcher learns about the exit a thread left the cache by.
/// Lives inline in the code cache right after the exit stub's code.
#[repr(C)]
pub(crate) struct ExitData {
    pub(crate) target: u64,
    /// Address of the body branch's rel32 field that linking patches, or 0;
    /// a clean call's argument.
    pub(crate) patch_site: u64,
    /// An [`ExitKind`] as u32 (see [`ExitData::kind`]).
    raw_kind: u32,
    /// A clean call's client index (high 8 bits) and id (low 24 bits).
    pub(crate) aux: u32,
}

// The bytes a file's stubs carry are this struct's.
const _: () = assert!(core::mem::size_of::<ExitData>() == exit_data::LEN);

impl From<StoredExit> for ExitData {
    fn from(e: StoredExit) -> ExitData {
        ExitData { target: e.target, patch_site: e.patch, raw_kind: e.kind, aux: e.aux }
    }
}

/// The decoded form of a position-independent exit.
pub(crate) struct RelativeExit {
    pub(crate) target: u64,
    /// The body branch's rel32 field (in a live segment).
    pub(crate) branch: u64,
    /// The exit's W slot (in a mapped file).
    pub(crate) slot: u64,
}

impl ExitData {
    pub(crate) const fn new(target: u64, kind: ExitKind) -> ExitData {
        ExitData { target, patch_site: 0, raw_kind: kind as u32, aux: 0 }
    }

    /// The exit's kind; None if its bytes hold none (a runtime bug, or a
    /// file damaged after it was checked).
    pub(crate) fn kind(&self) -> Option<ExitKind> {
        ExitKind::from_raw(self.raw_kind)
    }

    /// Whether the trace monitor counts entries to the target of a thread
    /// leaving by this exit ([`exit_data::COUNTS_TARGET`]).
    pub(crate) fn counts_target(&self) -> bool {
        self.raw_kind & exit_data::COUNTS_TARGET != 0
    }

    fn counting(mut self, counts: bool) -> ExitData {
        if counts {
            self.raw_kind |= exit_data::COUNTS_TARGET;
        }
        self
    }

    /// Position-independent exit data at `at` ([`StoredExit::relative`]).
    fn relative(at: u64, kind: ExitKind, module_offset: i64, base_slot: u64, branch: u64, slot: u64) -> ExitData {
        StoredExit::relative(at, kind as u32, module_offset as u64, base_slot, branch, slot).into()
    }

    /// Decodes position-independent exit data found at `at`.
    pub(crate) fn decode_relative(&self, at: u64) -> RelativeExit {
        let from = |d: u32| exit_data::from_distance(at, d);
        // SAFETY: the base slot is in the W zone of the code holding this data.
        let base = unsafe { *(from(self.aux) as *const u64) };
        RelativeExit {
            target: base.wrapping_add(self.target),
            branch: from(self.patch_site as u32),
            slot: from((self.patch_site >> 32) as u32),
        }
    }

    /// A clean call's (client index, id, argument).
    pub(crate) fn clean_call(&self) -> (usize, u32, u64) {
        ((self.aux >> 24) as usize, self.aux & 0xff_ffff, self.patch_site)
    }
}

/// Bytes of stub code before the inline ExitData (see
/// [`encoder::exit_stub`]).
pub(crate) const STUB_CODE_LEN: usize = encoder::STUB_CODE_LEN;
pub(crate) const STUB_LEN: usize = STUB_CODE_LEN + core::mem::size_of::<ExitData>();
/// The position-independent stub's code ([`encoder::relative_exit_stub`]).
pub(crate) const RELATIVE_STUB_CODE_LEN: usize = encoder::RELATIVE_STUB_CODE_LEN;
pub(crate) const RELATIVE_STUB_LEN: usize = RELATIVE_STUB_CODE_LEN + core::mem::size_of::<ExitData>();

/// Which direct exits of emitted code lead the trace monitor to count
/// their targets' entries: where loops close.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// A block's exits to its own start or before, but for calls: a
    /// function placed before its caller is no loop.
    BackwardExits,
    /// A trace's: leaving it anywhere may start the next hot path.
    EveryExit,
}

/// Where a block's code goes.
pub(crate) enum Placement<'a> {
    Cache(&'a mut CodeCache),
    /// A persistable segment of the module at `module_base`.
    Segment { segment: &'a mut LiveSegment, module_base: u64 },
}

/// Why a block could not be emitted.
pub(crate) enum EmitError {
    Full,
    /// Some instruction refers to memory outside the segment.
    NotRelative,
}

/// Appends an exit stub and returns its offset.
fn emit_stub(code: &mut Vec<u8>, base: u64, target: u64, kind: ExitKind) -> usize {
    emit_stub_with(code, base, ExitData::new(target, kind))
}

fn emit_stub_with(code: &mut Vec<u8>, base: u64, data: ExitData) -> usize {
    let start = code.len();
    encoder::exit_stub(code, base + start as u64, off::GPR, context_switch::fcache_return_addr());
    push_exit_data(code, &data);
    start
}

/// Appends a position-independent stub whose exit data `data` builds from
/// the data's own address; returns the stub's offset.
fn emit_relative_stub(code: &mut Vec<u8>, base: u64, data: impl FnOnce(u64) -> ExitData) -> usize {
    let start = code.len();
    encoder::relative_exit_stub(code, off::GPR, off::FCACHE_RETURN);
    let data = data(base + code.len() as u64);
    push_exit_data(code, &data);
    start
}

fn push_exit_data(code: &mut Vec<u8>, data: &ExitData) {
    // SAFETY: ExitData is plain repr(C) data.
    let bytes = unsafe {
        core::slice::from_raw_parts(data as *const ExitData as *const u8, core::mem::size_of::<ExitData>())
    };
    code.extend_from_slice(bytes);
}

/// Appends the body branch of a direct exit (`jcc` when `cond` is set),
/// to be pointed at its stub or target once those are placed. In a
/// segment it is padded to the length of its file form (6 or 8 bytes).
fn direct_exit_branch(code: &mut Vec<u8>, base: u64, cond: Option<ConditionCode>, target: u64, slot: u64) -> PendingExit {
    // Linking rewrites the rel32 while other threads may run this code: keep
    // the field 4-byte aligned so the store is atomic.
    let opcode_len = encoder::exit_branch_rel32_offset(cond);
    while (base as usize + code.len() + opcode_len) % 4 != 0 {
        encoder::nop(code, 1);
    }
    let branch = code.len();
    let rel_field = encoder::exit_branch(code, cond, slot != 0);
    PendingExit { branch, rel_field, target, cond, slot, call: false }
}

/// A W slot for a direct exit of a block emitted into a segment, else 0.
fn exit_slot(segment: &mut Option<(&mut LiveSegment, u64)>) -> Result<u64, EmitError> {
    match segment {
        Some((seg, _)) => seg.alloc_w(8).ok_or(EmitError::Full),
        None => Ok(0),
    }
}

struct PendingExit {
    /// Offset of the body branch and of its rel32 field.
    branch: usize,
    rel_field: usize,
    target: u64,
    cond: Option<ConditionCode>,
    /// Its W slot (in a segment), else 0.
    slot: u64,
    /// A direct call's jump to its callee ([`Op::CallExit`]).
    call: bool,
}

/// How an in-line check names the target it expects: as an address, or
/// in a segment as an offset from the module base its slot holds.
fn check_form(segment: &Option<(&mut LiveSegment, u64)>, base: u64, expected: u64) -> ibl::Expected {
    match segment {
        Some((seg, module_base)) => {
            ibl::Expected::ModuleOffset { offset: expected.wrapping_sub(*module_base) as i32, base_slot: seg.base_slot, code_base: base }
        }
        None => ibl::Expected::Address(expected),
    }
}

/// Emits a trace head's counting stub into the cache: exits linked to the
/// head jump here, take one from the i64 at `counter` and go on to the
/// head's block at `block_start`; the entry that brings it to zero leaves
/// for the dispatcher instead (`ExitKind::HeadHot`). Flag free (`lea`,
/// `jrcxz`); rax and rcx pass through the lookup's `gs:` slots, free at a
/// direct exit. Returns the stub's address and length; None if the cache
/// is full.
pub(crate) fn head_counter(cache: &mut CodeCache, head: u64, counter: u64, block_start: u64) -> Option<(u64, u64)> {
    let base = cache.next_address();
    let mut code = Vec::with_capacity(96);
    encoder::store_to_gs(&mut code, off::IBL_RAX, iced_x86::Register::RAX);
    encoder::decrement_at(&mut code, counter);
    encoder::store_to_gs(&mut code, off::IBL_RCX, iced_x86::Register::RCX);
    code.extend_from_slice(&[0x48, 0x89, 0xc1]); // mov rcx, rax
    encoder::load_from_gs(&mut code, iced_x86::Register::RAX, off::IBL_RAX);
    code.extend_from_slice(&[0xe3, (encoder::GS_MOV_LEN + encoder::JMP_REL32_LEN) as u8]); // jrcxz hot
    encoder::load_from_gs(&mut code, iced_x86::Register::RCX, off::IBL_RCX);
    let field = encoder::jmp_rel32(&mut code);
    encoder::patch_rel32(&mut code, field, base, block_start);
    // hot:
    encoder::load_from_gs(&mut code, iced_x86::Register::RCX, off::IBL_RCX);
    emit_stub(&mut code, base, head, ExitKind::HeadHot);
    let start = cache.commit(&code)?;
    debug_assert_eq!(start, base);
    Some((start, code.len() as u64))
}

/// Where a file's counting stub lies and what it reaches
/// ([`persist::counting_stubs`]), as addresses of one frame (a segment's
/// W and X as the file lays them out).
pub(crate) struct CountingStubPlace {
    /// Its first byte.
    pub(crate) at: u64,
    /// Its counter, in W; its go slot is the word after it.
    pub(crate) counter: u64,
    /// The code of the head's block.
    pub(crate) goes_to: u64,
    /// The segment's module-base slot.
    pub(crate) base_slot: u64,
}

/// Appends a file's counting stub for the head at module offset
/// `head_offset`: a jump through its go slot (to the counting code that
/// follows, or to the head's trace once the runtime built one), then the
/// file's form of [`head_counter`], reaching its counter RIP-relative and
/// leaving by a position-independent stub (`ExitKind::RelativeHeadHot`),
/// with rcx alone passing through `gs:`.
pub(crate) fn counting_stub(out: &mut Vec<u8>, p: &CountingStubPlace, head_offset: u64) {
    use persist::counting_stubs::{COUNT_AT, HOT_STUB_AT, JUMP_AT, LEN};
    use iced_x86::Register::RCX;
    let start = out.len();
    let here = |out: &Vec<u8>| p.at + (out.len() - start) as u64;
    encoder::jmp_rip(out, p.at, p.counter + persist::counting_stubs::GO_SLOT_AT as u64);
    debug_assert_eq!(out.len() - start, COUNT_AT);
    encoder::store_to_gs(out, off::IBL_RCX, RCX);
    encoder::load_rip(out, RCX, here(out), p.counter);
    out.extend_from_slice(&[0x48, 0x8d, 0x49, 0xff]); // lea rcx, [rcx - 1]
    encoder::store_rip(out, RCX, here(out), p.counter);
    out.extend_from_slice(&[0xe3, (encoder::GS_MOV_LEN + encoder::JMP_REL32_LEN) as u8]); // jrcxz hot
    encoder::load_from_gs(out, RCX, off::IBL_RCX);
    debug_assert_eq!(out.len() - start, JUMP_AT);
    let field = encoder::jmp_rel32(out);
    let jump_end = here(out);
    out[field..field + 4].copy_from_slice(&(p.goes_to.wrapping_sub(jump_end) as i32).to_le_bytes());
    // hot:
    encoder::load_from_gs(out, RCX, off::IBL_RCX);
    debug_assert_eq!(out.len() - start, HOT_STUB_AT);
    emit_relative_stub(out, p.at - start as u64, |data_at| StoredExit::head_hot(data_at, head_offset, p.counter, p.base_slot).into());
    debug_assert!(out.len() - start <= LEN);
    out.resize(start + LEN, 0xcc);
}

/// Encodes `ops` for the block at `tag` into `place` and returns its
/// fragment; exits to a target `link_target` gives a cache address for
/// (asked with whether the exit counts its target's entries) are linked
/// at once.
pub(crate) fn emit(
    tag: u64,
    app_end: u64,
    ops: &[MangledOp],
    place: Placement,
    counted: Counted,
    link_target: impl Fn(u64, bool) -> Option<u64>,
) -> Result<Fragment, EmitError> {
    let (mut cache, mut segment) = match place {
        Placement::Cache(cache) => (Some(cache), None),
        Placement::Segment { segment, module_base } => (None, Some((segment, module_base))),
    };
    let base = match (&cache, &segment) {
        (Some(cache), _) => cache.next_address(),
        (_, Some((seg, _))) => seg.x_next,
        _ => unreachable!(),
    };
    let mut code: Vec<u8> = Vec::with_capacity(ops.len() * 8 + 64);
    let mut pending: Vec<PendingExit> = Vec::new();
    // The rel32 fields of in-line target checks' jumps to their lookups.
    let mut inline_misses: Vec<(usize, ibl::Expected, u64)> = Vec::new();
    // The rel32 field of a `call` over a landing pad not yet ended.
    let mut call_over_pad: Option<usize> = None;
    let mut predicted_calls = 0;
    let mut translations: Vec<Translation> = Vec::with_capacity(ops.len());
    // Made at the first instruction iced encodes: making one builds
    // iced's encoder tables (0.5 ms, once per process), which a warm run's
    // few new blocks often do not need.
    let mut iced: Option<Encoder> = None;
    let relative = segment.is_some();

    for m in ops {
        if translations.last().is_none_or(|t| t.app_pc != m.app_pc || t.fixup != m.fixup) {
            translations.push(Translation { cache_offset: code.len() as u32, app_pc: m.app_pc, fixup: m.fixup });
        }
        let here = base + code.len() as u64;
        match &m.op {
            Op::Copy(bytes) => code.extend_from_slice(&bytes[..m.app_len as usize]),
            Op::Bytes(b) => code.extend_from_slice(b),
            Op::Encode(instr) => {
                if let Some((seg, _)) = &segment {
                    if instr.is_ip_rel_memory_operand() && !seg.contains(instr.ip_rel_memory_address()) {
                        return Err(EmitError::NotRelative);
                    }
                }
                let iced = iced.get_or_insert_with(|| Encoder::new(64));
                iced
                    .encode(instr, here)
                    .unwrap_or_else(|e| panic!("cannot encode {instr:?} at {:#x}: {e}", m.app_pc));
                code.extend_from_slice(&iced.take_buffer());
            }
            Op::LoadModuleBase { reg } => {
                let Some((seg, _)) = &segment else { unreachable!("module-relative code outside a segment") };
                encoder::load_rip(&mut code, *reg, here, seg.base_slot);
            }
            Op::DirectExit { cond, target } => {
                let slot = exit_slot(&mut segment)?;
                pending.push(direct_exit_branch(&mut code, base, *cond, *target, slot));
            }
            Op::CallExit { target } => {
                let slot = exit_slot(&mut segment)?;
                pending.push(PendingExit { call: true, ..direct_exit_branch(&mut code, base, None, *target, slot) });
            }
            Op::ShortBranchExit { opcode, target, fall } => {
                let rel8 = encoder::short_branch(&mut code, opcode);
                let slot = exit_slot(&mut segment)?;
                pending.push(direct_exit_branch(&mut code, base, None, *fall, slot));
                let taken = code.len();
                encoder::patch_rel8(&mut code, rel8, taken);
                let slot = exit_slot(&mut segment)?;
                pending.push(direct_exit_branch(&mut code, base, None, *target, slot));
            }
            Op::IndirectExit => code.extend_from_slice(ibl::lookup_code()),
            Op::CallOverPad => call_over_pad = Some(returns::call_over_pad(&mut code)),
            Op::PadEnd { slot } => {
                let field = call_over_pad.take().expect("a landing pad follows its call");
                let here = base + code.len() as u64;
                encoder::patch_rel32(&mut code, field, base, here);
                returns::pad_to_slot(&mut code, *slot);
                predicted_calls += 1;
            }
            Op::PredictedReturn => code.extend_from_slice(returns::predicted_return()),
            Op::InlineTarget { expected, misses_left } => {
                let form = check_form(&segment, base, *expected);
                inline_misses.push((ibl::inline_target_check(&mut code, form), form, *misses_left))
            }
            Op::IndirectToDispatcher => ibl::to_dispatcher(&mut code),
            Op::CleanCall { client, id, arg, only_if } => {
                // [j<not cc> over] stub-with-data; resume: right after it.
                let skip = only_if.map(|cc| encoder::jcc_rel8(&mut code, encoder::negate(cc)));
                let stub = code.len();
                let aux = (*client as u32) << 24 | (id & 0xff_ffff);
                let len = if relative {
                    emit_relative_stub(&mut code, base, |_| StoredExit::clean_call(*client as u8, *id, *arg).into());
                    RELATIVE_STUB_LEN
                } else {
                    let resume = base + (stub + STUB_LEN) as u64;
                    emit_stub_with(&mut code, base, ExitData { target: resume, patch_site: *arg, raw_kind: ExitKind::CleanCall as u32, aux });
                    STUB_LEN
                };
                if let Some(at) = skip {
                    encoder::patch_rel8(&mut code, at, stub + len);
                }
            }
            Op::SyscallExit { next } => match &segment {
                Some((seg, module_base)) => {
                    let (slot, off) = (seg.base_slot, next.wrapping_sub(*module_base) as i64);
                    emit_relative_stub(&mut code, base, |at| ExitData::relative(at, ExitKind::RelativeSyscall, off, slot, 0, 0));
                }
                None => {
                    emit_stub(&mut code, base, *next, ExitKind::Syscall);
                }
            },
        }
    }

    // A missed in-line check looks its target up, out of the trace's line.
    for (field, form, misses_left) in inline_misses {
        let here = code.len();
        encoder::patch_rel32(&mut code, field, base, base + here as u64);
        ibl::inline_target_miss(&mut code, form);
        if misses_left != 0 {
            // The stub the spending miss leaves by sits in line (never
            // linked); other misses jump over it to the lookup. In a
            // segment the budget is a W slot, reached RIP-relative.
            let over = ibl::count_miss(&mut code, misses_left, relative.then_some(base));
            match &segment {
                Some((seg, module_base)) => {
                    let (slot, off) = (seg.base_slot, tag.wrapping_sub(*module_base) as i64);
                    emit_relative_stub(&mut code, base, |at| ExitData::relative(at, ExitKind::RelativeTraceStale, off, slot, 0, 0));
                }
                None => {
                    emit_stub(&mut code, base, tag, ExitKind::TraceStale);
                }
            }
            let lookup = code.len();
            encoder::patch_rel8(&mut code, over, lookup);
        }
        code.extend_from_slice(ibl::lookup_code());
    }

    let mut exits = Vec::with_capacity(pending.len());
    let mut links = 0;
    // The stubs go to stub room, out of the code's way. In a segment a
    // conditional exit's stub has its slot trampoline before it.
    let stub_len = |p: &PendingExit| match (relative, p.cond) {
        (true, Some(_)) => encoder::TRAMPOLINE_LEN + RELATIVE_STUB_LEN,
        (true, None) => RELATIVE_STUB_LEN,
        (false, _) => STUB_LEN,
    };
    let stubs_len = pending.iter().map(stub_len).sum::<usize>();
    let mut stubs: Vec<u8> = Vec::with_capacity(stubs_len);
    let stub_base = match (&mut cache, &mut segment) {
        _ if pending.is_empty() => Some(0),
        (Some(cache), _) => cache.alloc_stubs(stubs_len as u64),
        (_, Some((seg, _))) => seg.alloc_stubs(stubs_len as u64),
        _ => None,
    }
    .ok_or(EmitError::Full)?;
    for p in &pending {
        let patch_site = base + p.rel_field as u64;
        let counts = counted == Counted::EveryExit || (p.target <= tag && !p.call);
        let stub_addr = match &segment {
            Some((seg, module_base)) => {
                let (slot, off) = (seg.base_slot, p.target.wrapping_sub(*module_base) as i64);
                if p.cond.is_some() {
                    let at = stub_base + stubs.len() as u64;
                    encoder::slot_trampoline(&mut stubs, at, p.slot);
                }
                stub_base
                    + emit_relative_stub(&mut stubs, stub_base, |at| {
                        ExitData::relative(at, ExitKind::RelativeDirect, off, slot, patch_site, p.slot).counting(counts)
                    }) as u64
            }
            None => {
                let data = ExitData { patch_site, ..ExitData::new(p.target, ExitKind::Direct) }.counting(counts);
                stub_base + emit_stub_with(&mut stubs, stub_base, data) as u64
            }
        };
        let linked_to = link_target(p.target, counts);
        encoder::patch_rel32(&mut code, p.rel_field, base, linked_to.unwrap_or(stub_addr));
        links += linked_to.is_some() as u64;
        exits.push(ExitRecord::emitted(patch_site, stub_addr, p.target, linked_to.is_some(), base + p.branch as u64, p.cond, p.slot));
    }

    let start = match (&mut cache, &mut segment) {
        (Some(cache), _) => cache.commit(&code),
        (_, Some((seg, _))) => seg.commit(&code),
        _ => None,
    }
    .ok_or(EmitError::Full)?;
    debug_assert_eq!(start, base);
    if !stubs.is_empty() {
        match (&mut cache, &mut segment) {
            (Some(cache), _) => cache.commit_stubs(stub_base, &stubs),
            (_, Some((seg, _))) => seg.commit_stubs(stub_base, &stubs),
            _ => {}
        }
    }
    crate::stats::add(&crate::stats::STATS.links, links);
    crate::stats::add(&crate::stats::STATS.predicted_calls, predicted_calls);
    let translations = pack_translations(tag, &translations);
    Ok(Fragment::new(tag, fragment::app_len(tag, app_end), start, code.len() as u32, exits.into_iter(), &translations, false))
}
