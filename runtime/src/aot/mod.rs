//! Ahead-of-time translation (`-aot`): the program starts as in a run,
//! its interpreter loading and relocating its libraries (and running
//! their initialisers); when control reaches the program's entry point,
//! the program is not run: every module mapped is translated from what
//! its files say is code, and the blocks persisted as a run's would be,
//! with the same key, into the same files.
//!
//! With `-aot_seeds FILE` (`seeds`), only the modules the file names are
//! translated (those the program did not load are mapped for it), each
//! also from the block offsets earlier runs built.
//!
//! Discovery: the program's entry and every function its symbols and
//! unwind table name (`os::elf_functions`) seed a walk over the blocks the translator builds
//! (the JIT's own builder, so a block is the one a run would build):
//! their direct branch targets and, inside the function a block lies in,
//! the code right after it (the return site of a call, the next case of
//! a switch). A guess that is not code costs file bytes only: a block is
//! used only when the dispatcher looks up its exact pc.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::os::elf_functions::Entry;
use crate::os::startup_args::CStr;
use crate::thread::ThreadContext;

mod seeds;
mod visited;

/// Whether the code after a jump or return inside a function is taken as
/// code too (the cases of a switch reached through a jump table are).
const GUESS_AFTER_JUMPS: bool = true;

/// Whether execution can go on at `end` after the block `[tag, end)`:
/// its last instruction is not an unconditional jump or a return (a
/// call returns there; a block also ends at a system call or its size
/// limit).
fn falls_through(tag: u64, end: u64) -> bool {
    use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction};
    let mut bytes = [0u8; 4096];
    let Some(bytes) = bytes.get_mut(..end.saturating_sub(tag) as usize) else { return true };
    if !crate::os::safe_read::copy_from_app(bytes, tag) {
        return false;
    }
    let mut decoder = Decoder::with_ip(64, bytes, tag, DecoderOptions::NONE);
    let mut last = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut last);
    }
    !matches!(last.flow_control(), FlowControl::UnconditionalBranch | FlowControl::IndirectBranch | FlowControl::Return)
}

/// The first address from `pc` (before `end`) that is not alignment
/// padding (no-ops, `int3`).
fn after_padding(pc: u64, end: u64) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let mut bytes = [0u8; 64];
    let len = (end.saturating_sub(pc) as usize).min(bytes.len());
    let bytes = &mut bytes[..len];
    if !crate::os::safe_read::copy_from_app(bytes, pc) {
        return pc;
    }
    let mut decoder = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
    while decoder.can_decode() {
        let i = decoder.decode();
        if i.is_invalid() || !matches!(i.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
            return i.ip();
        }
    }
    pc + len as u64
}

/// Blocks one ahead-of-time translation builds at most (a bound on its
/// time: about a minute and a half; memory is bounded by `BATCH`).
const MAX_BLOCKS: usize = 16_000_000;

/// Blocks built between checkpoints (`translator::aot_checkpoint`) unless
/// `-aot_batch` says: they are set aside in a file of their own (the
/// module's file is written once, at the end) and their memory reused,
/// so a libLLVM-sized module takes the memory of this many blocks (about
/// 1 KiB each while translated) and of writing its file.
const BATCH: usize = 262_144;

/// With `-aot_progress`, a line every this many blocks of a module:
/// `dbirun: aot: progress: PATH: N blocks` (cachetool's progress bar
/// reads them; a libLLVM-sized module takes tens of seconds).
const PROGRESS_EVERY: usize = 16_384;

/// The program's entry point, where translation replaces running; 0 when
/// not translating ahead of time.
static STOP_AT: AtomicU64 = AtomicU64::new(0);

/// Set while modules are translated instead of run (clients are told).
static TRANSLATING: AtomicBool = AtomicBool::new(false);

pub(crate) fn translating() -> bool {
    TRANSLATING.load(Relaxed)
}

pub(crate) fn stop_at(pc: u64) {
    STOP_AT.store(pc, Relaxed);
}

pub(crate) fn is_stop(pc: u64) -> bool {
    let s = STOP_AT.load(Relaxed);
    s != 0 && s == pc
}

struct Target {
    path: CStr,
    base: u64,
    ranges: Vec<(u64, u64)>,
    is_main: bool,
}

impl Target {
    /// Whether `pc` lies in one of the module's executable mappings.
    fn in_code(&self, pc: u64) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..hi).contains(&pc))
    }
}

/// Translates every file module, persists, and ends the process with
/// status 0.
pub(crate) fn translate_all(ctx: &mut ThreadContext) -> ! {
    let seeds = crate::options::get().aot_seeds.map(|file| {
        seeds::read(&file).unwrap_or_else(|| crate::log::fatal(2, format_args!("aot: cannot read the seed file {file}")))
    });
    if let Some(seeds) = &seeds {
        map_unloaded(seeds);
    }
    let targets: Vec<Target> = crate::os::modules::MODULES
        .lock()
        .iter()
        .filter(|m| m.identity.is_some() && seeds.as_ref().is_none_or(|s| s.offsets_of(&m.path).is_some()))
        .map(|m| Target { path: m.path, base: m.base, ranges: m.ranges.clone(), is_main: m.is_main })
        .collect();
    let sp = ctx.gpr[crate::thread::reg::RSP];
    let entry = STOP_AT.load(Relaxed);
    let mut total = 0;
    TRANSLATING.store(true, Relaxed);
    for t in &targets {
        let seeded = seeds.as_ref().and_then(|s| s.offsets_of(&t.path)).unwrap_or(&[]);
        let traces: Vec<&seeds::SeededTrace> = seeds.as_ref().map(|s| s.traces_of(&t.path).collect()).unwrap_or_default();
        let exact = seeds.as_ref().is_some_and(|s| s.exact);
        let built = translate_module(t, Seeded { blocks: seeded, traces: &traces, exact }, entry, sp, MAX_BLOCKS - total);
        crate::verbose!("aot: {}: {built} blocks", t.path);
        total += built;
    }
    TRANSLATING.store(false, Relaxed);
    crate::verbose!("aot: {total} blocks in {} modules", targets.len());
    crate::process_end::process_exit(ctx, crate::process_end::Reason::Exit(0));
    crate::os::sys::exit_group(0)
}

/// Maps the seeded modules the program did not load, as ld.so would
/// (anywhere, or at its address for a fixed-address program), so they
/// are translated too.
fn map_unloaded(seeds: &seeds::Seeds) {
    for (path, _) in &seeds.modules {
        let path = CStr::leak(path);
        let mapped = crate::os::modules::MODULES.lock().iter().any(|m| m.path.as_bytes() == path.as_bytes());
        if mapped {
            continue;
        }
        match crate::os::loader::load(&path, crate::os::loader::Placement::Interpreter) {
            Ok(image) => image.note_as_module(path),
            Err(e) => crate::verbose!("aot: {path}: not loaded ({e}): skipped"),
        }
    }
}

/// What static discovery starts from in module `t`: its functions (start,
/// end) from its symbol and unwind tables, and the entries to walk from
/// (those functions, its PLT stubs, init/fini entries, relocated
/// pointers, and the program's `entry`); None if its file is not an ELF
/// file we can read.
fn discovery_seeds(t: &Target, entry: u64) -> Option<(Vec<(u64, u64)>, Vec<u64>)> {
    let symbols = crate::os::elf_functions::functions(&t.path)?;
    // Symbols are link-time addresses: the base maps the first PT_LOAD's page.
    let bias = t.base.wrapping_sub(symbols.first_vaddr & !0xfff);
    let functions: Vec<(u64, u64)> = symbols
        .ranges
        .iter()
        .map(|&(at, size)| (bias.wrapping_add(at), bias.wrapping_add(at).saturating_add(size)))
        .filter(|&(lo, _)| t.in_code(lo))
        .collect();
    let mut work: Vec<u64> = functions.iter().map(|&(lo, _)| lo).collect();
    for kind in [Entry::Plt, Entry::InitFini, Entry::Relocated] {
        let before = work.len();
        let named = symbols.entries.iter().filter(|&&(k, _)| k == kind).map(|&(_, at)| bias.wrapping_add(at));
        work.extend(named.filter(|&pc| t.in_code(pc)));
        crate::verbose!("aot: {}: {} {} entries", t.path, work.len() - before, kind.name());
    }
    if t.is_main && t.in_code(entry) {
        work.push(entry);
    }
    Some((functions, work))
}

/// What the seed file asks of a module.
struct Seeded<'a> {
    /// Module offsets of blocks.
    blocks: &'a [u32],
    traces: &'a [&'a seeds::SeededTrace],
    /// Those alone, nothing discovered.
    exact: bool,
}

/// The blocks of module `t` its functions, the seeded offsets and the
/// program's `entry` lead to (the seeded ones alone when `exact`), at
/// most `budget` of them, the seeded traces first; how many blocks were
/// built or loaded.
fn translate_module(t: &Target, seeded: Seeded, entry: u64, sp: u64, budget: usize) -> usize {
    let (functions, mut work) = match seeded.exact {
        true => (Vec::new(), Vec::new()),
        false => match discovery_seeds(t, entry) {
            Some(found) => found,
            // The vDSO has no file to read: its seeds alone.
            None if !seeded.blocks.is_empty() => (Vec::new(), Vec::new()),
            None => {
                crate::verbose!("aot: {}: not an ELF file we can read: skipped", t.path);
                return 0;
            }
        },
    };
    let function_end = |pc: u64| {
        let i = functions.partition_point(|&(lo, _)| lo <= pc);
        i.checked_sub(1).map(|i| functions[i]).filter(|&(_, hi)| pc < hi).map(|(_, hi)| hi)
    };
    work.extend(seeded.blocks.iter().map(|&off| t.base + off as u64));
    let mut built = 0;
    let lo = t.ranges.iter().map(|r| r.0).min().unwrap_or(t.base);
    let hi = t.ranges.iter().map(|r| r.1).max().unwrap_or(t.base);
    let mut seen = visited::Visited::over(lo, hi);
    let batch = crate::options::get().aot_batch.unwrap_or(BATCH);
    build_seeded_traces(t, seeded.traces, sp);
    while let Some(pc) = work.pop() {
        if built >= budget {
            crate::verbose!("aot: {}: stopped at {budget} blocks", t.path);
            break;
        }
        if !t.in_code(pc) || !seen.first_visit(pc) {
            continue;
        }
        let mut guard = crate::translator::lock();
        let Some(tr) = guard.as_mut() else { break };
        if tr.fragment_start(pc, sp).is_err() {
            continue;
        }
        let Some(f) = tr.fragments.get(pc) else { continue };
        built += 1;
        if built % PROGRESS_EVERY == 0 && crate::options::get().aot_progress {
            crate::eprintln!("aot: progress: {}: {built} blocks", t.path);
        }
        if !seeded.exact {
            work.extend(f.exits().map(|e| e.target).filter(|&to| t.in_code(to)));
            if falls_through(pc, f.app_end()) {
                work.push(f.app_end());
            } else if let Some(end) = function_end(pc).filter(|&end| GUESS_AFTER_JUMPS && f.app_end() < end) {
                // Compilers align the next case or loop head with no-ops.
                work.push(after_padding(f.app_end(), end));
            }
        }
        drop(guard);
        if built % batch == 0 {
            crate::translator::aot_checkpoint(t.base, lo, hi, false);
        }
    }
    crate::translator::aot_checkpoint(t.base, lo, hi, true);
    built
}

/// Builds each seeded trace of module `t` right after its blocks, before
/// the module's other blocks: a trace's copies of its blocks count in the
/// blocks' client data, which must lie in the trace's segment, and the
/// segment the first blocks go to (the one code run at start-up began)
/// fills up long before a large module's last block.
fn build_seeded_traces(t: &Target, traces: &[&seeds::SeededTrace], sp: u64) {
    let mut guard = crate::translator::lock();
    let Some(tr) = guard.as_mut() else { return };
    for trace in traces {
        let blocks: Vec<u64> = trace.blocks.iter().map(|&off| t.base + off as u64).collect();
        for &pc in blocks.iter().filter(|&&pc| t.in_code(pc)) {
            let _ = tr.fragment_start(pc, sp);
        }
        if !tr.aot_trace(&blocks, sp, trace.counts_misses) {
            crate::verbose!("aot: {}: the trace at {:#x} cannot be built again", t.path, blocks[0]);
        }
    }
}
