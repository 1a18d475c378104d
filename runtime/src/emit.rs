//! Encoding a mangled block into the code cache: the body, then one exit
//! stub per direct exit. Each stub saves rax, points rax at its inline
//! [`ExitData`] and jumps to the runtime; linking later retargets the body's
//! branch from the stub straight to the target fragment.

use alloc::vec::Vec;

use iced_x86::Encoder;

use crate::code_cache::CodeCache;
use crate::context_switch;
use crate::fragment::{ExitRecord, Fragment, FragmentTable, Translation};
use crate::ibl;
use crate::mangle::{MangledOp, Op};
use crate::raw_x86;
use crate::thread::offsets as off;

#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// A direct branch; `target` is the app pc.
    Direct = 0,
    /// The indirect-branch lookup missed; the app pc is in `ctx.next_pc`.
    IndirectMiss = 1,
    /// A `syscall`; `target` is the app pc after it.
    Syscall = 2,
    /// A client's clean call; `target` is the cache address to resume at,
    /// `arg` the call's argument, `aux` the client index and call id.
    CleanCall = 3,
}

/// What the dispatcher learns about the exit a thread left the cache by.
/// Lives inline in the code cache right after the exit stub's code.
#[repr(C)]
pub struct ExitData {
    pub target: u64,
    /// Address of the body branch's rel32 field that linking patches, or 0;
    /// a clean call's argument.
    pub patch_site: u64,
    pub kind: ExitKind,
    /// A clean call's client index (high 8 bits) and id (low 24 bits).
    pub aux: u32,
}

impl ExitData {
    pub const fn new(target: u64, kind: ExitKind) -> ExitData {
        ExitData { target, patch_site: 0, kind, aux: 0 }
    }

    /// A clean call's (client index, id, argument).
    pub fn clean_call(&self) -> (usize, u32, u64) {
        ((self.aux >> 24) as usize, self.aux & 0xff_ffff, self.patch_site)
    }
}

/// Bytes of stub code before the inline ExitData:
/// `mov gs:[rax slot], rax` (9) + `lea rax, [rip + 5]` (7) + `jmp rel32` (5).
pub const STUB_CODE_LEN: usize = 21;
pub const STUB_LEN: usize = STUB_CODE_LEN + core::mem::size_of::<ExitData>();

const NOP: u8 = 0x90;

fn put_rel32(code: &mut [u8], at: usize, base: u64, target: u64) {
    let rel = raw_x86::rel32(base + at as u64, target);
    code[at..at + 4].copy_from_slice(&rel.to_le_bytes());
}

/// Appends an exit stub and returns its offset.
fn emit_stub(code: &mut Vec<u8>, base: u64, target: u64, patch_site: u64, kind: ExitKind) -> usize {
    emit_stub_with(code, base, ExitData { target, patch_site, kind, aux: 0 })
}

fn emit_stub_with(code: &mut Vec<u8>, base: u64, data: ExitData) -> usize {
    let start = code.len();
    raw_x86::store_to_gs(code, off::GPR, 0);
    code.extend_from_slice(&[0x48, 0x8d, 0x05, 5, 0, 0, 0]);
    let rel = raw_x86::jmp_rel32(code);
    put_rel32(code, rel, base, context_switch::fcache_return_addr());
    debug_assert_eq!(code.len() - start, STUB_CODE_LEN);
    // SAFETY: ExitData is plain repr(C) data.
    let bytes = unsafe {
        core::slice::from_raw_parts(&data as *const ExitData as *const u8, core::mem::size_of::<ExitData>())
    };
    code.extend_from_slice(bytes);
    start
}

/// Appends the body branch of a direct exit (`jcc` when `cond` is set),
/// to be pointed at its stub or target once those are placed.
fn direct_exit_branch(code: &mut Vec<u8>, base: u64, cond: Option<u8>, target: u64) -> PendingExit {
    // Linking rewrites the rel32 while other threads may run this code: keep
    // the field 4-byte aligned so the store is atomic.
    let opcode_len = if cond.is_some() { 2 } else { 1 };
    while (base as usize + code.len() + opcode_len) % 4 != 0 {
        code.push(NOP);
    }
    let rel_field = match cond {
        Some(cc) => raw_x86::jcc_rel32(code, cc),
        None => raw_x86::jmp_rel32(code),
    };
    PendingExit { rel_field, target }
}

struct PendingExit {
    /// Offset of the body branch's rel32 field.
    rel_field: usize,
    target: u64,
}

/// Encodes `ops` for the block at `tag` into the cache and returns its
/// fragment; exits whose target fragment already exists are linked at once.
pub fn emit(tag: u64, app_end: u64, ops: &[MangledOp], cache: &mut CodeCache, fragments: &FragmentTable) -> Option<Fragment> {
    let base = cache.next_address();
    let mut code: Vec<u8> = Vec::with_capacity(ops.len() * 8 + 64);
    let mut pending: Vec<PendingExit> = Vec::new();
    let mut translations: Vec<Translation> = Vec::with_capacity(ops.len());
    let mut encoder = Encoder::new(64);

    for m in ops {
        if translations.last().is_none_or(|t| t.app_pc != m.app_pc || t.fixup != m.fixup) {
            translations.push(Translation { cache_offset: code.len() as u32, app_pc: m.app_pc, fixup: m.fixup });
        }
        match &m.op {
            Op::Copy => {
                // SAFETY: the instruction was decoded from these app bytes.
                let bytes = unsafe { core::slice::from_raw_parts(m.app_pc as *const u8, m.app_len as usize) };
                code.extend_from_slice(bytes);
            }
            Op::Bytes(b) => code.extend_from_slice(b),
            Op::Encode(instr) => {
                encoder
                    .encode(instr, base + code.len() as u64)
                    .unwrap_or_else(|e| panic!("cannot encode {instr:?} at {:#x}: {e}", m.app_pc));
                code.extend_from_slice(&encoder.take_buffer());
            }
            Op::DirectExit { cond, target } => {
                pending.push(direct_exit_branch(&mut code, base, *cond, *target));
            }
            Op::ShortBranchExit { opcode, target, fall } => {
                code.extend_from_slice(opcode);
                let rel8 = code.len();
                code.push(0);
                pending.push(direct_exit_branch(&mut code, base, None, *fall));
                let taken = code.len();
                code[rel8] = u8::try_from(taken - (rel8 + 1)).expect("short branch in reach") ;
                pending.push(direct_exit_branch(&mut code, base, None, *target));
            }
            Op::IndirectExit => code.extend_from_slice(ibl::lookup_code()),
            Op::CleanCall { client, id, arg, only_if } => {
                // [j<not cc> over] stub-with-data; resume: right after it.
                let skip = only_if.map(|cc| {
                    code.extend_from_slice(&[0x70 | (cc ^ 1), 0]);
                    code.len() - 1
                });
                let stub = code.len();
                let aux = (*client as u32) << 24 | (id & 0xff_ffff);
                let resume = base + (stub + STUB_LEN) as u64;
                emit_stub_with(&mut code, base, ExitData { target: resume, patch_site: *arg, kind: ExitKind::CleanCall, aux });
                if let Some(at) = skip {
                    code[at] = STUB_LEN as u8;
                }
            }
            Op::SyscallExit { next } => {
                emit_stub(&mut code, base, *next, 0, ExitKind::Syscall);
            }
        }
    }

    let mut exits = Vec::with_capacity(pending.len());
    let mut links = 0;
    for p in &pending {
        let patch_site = base + p.rel_field as u64;
        let stub = emit_stub(&mut code, base, p.target, patch_site, ExitKind::Direct);
        let stub_addr = base + stub as u64;
        let linked_to = fragments.get(p.target).map(|f| f.start);
        put_rel32(&mut code, p.rel_field, base, linked_to.unwrap_or(stub_addr));
        links += linked_to.is_some() as u64;
        exits.push(ExitRecord { patch_site, stub: stub_addr, target: p.target, prelinked: linked_to.is_some() });
    }

    let start = cache.commit(&code)?;
    debug_assert_eq!(start, base);
    crate::stats::add(&crate::stats::STATS.links, links);
    Some(Fragment { tag, app_end, start, size: code.len() as u32, exits, incoming: Vec::new(), translations })
}
