//! The dispatcher: every exit from the code cache lands here. It finds or
//! builds the fragment for the next app pc, links the exit it came through,
//! and re-enters the cache.

use spin::Mutex;

use crate::code_cache::CodeCache;
use crate::context_switch::enter_cache;
use crate::emit::{self, EmitError, ExitData, ExitKind, Placement};
use crate::fragment::{Fragment, FragmentTable, Patch};
use crate::ibl::IblTable;
use crate::mangle::Addressing;
use crate::persist_load::LoadedFiles;
use crate::persist_units::{UnitBlock, Units};
use crate::stats::{self, STATS};
use crate::thread::ThreadContext;
use crate::{bb_builder, link, mangle};

/// Everything shared by the translation pipeline.
pub struct Translator {
    pub cache: CodeCache,
    pub fragments: FragmentTable,
    pub ibl: IblTable,
    /// Persistable code being built, per module (with `-persist`).
    pub units: Units,
    /// Persisted files in use.
    pub loaded: LoadedFiles,
}

static TRANSLATOR: Mutex<Option<Translator>> = Mutex::new(None);

impl Translator {
    /// The cache address of the fragment for `pc`, building it if needed.
    fn fragment_start(&mut self, pc: u64) -> u64 {
        if let Some(f) = self.fragments.get(pc) {
            return f.start;
        }
        let module = if crate::options::get().persist { file_module(pc) } else { None };
        if let Some(start) = module.and_then(|m| self.from_file(pc, m)) {
            return start;
        }
        let t0 = stats::ticks();
        let mut block = bb_builder::build(pc);
        let end = block.end_pc().max(pc + 1);
        // The module's base, and the unit and segment a persistable block
        // would go to.
        let target = module.filter(|m| end <= m.end).and_then(|m| {
            let unit = self.units.unit_for(m.base, m.end, m.path, m.identity);
            Some((m.base, unit, self.units.units[unit].current_segment(&mut self.cache)?))
        });
        let mut persistable = target.is_some();
        let mut data = alloc::vec::Vec::new();
        if crate::client_host::active() {
            let mut ir = clients::api::BlockIr::new(pc, []);
            ir.items = core::mem::take(&mut block.items);
            let segment = target.map(|(_, u, s)| &mut self.units.units[u].segments[s as usize]);
            let (flags, allocated) = crate::client_host::instrument(&mut ir, segment);
            persistable &= flags.persistable;
            data = allocated;
            block.items = ir.items;
        }
        let fragment = target
            .filter(|_| persistable)
            .and_then(|(base, u, s)| self.emit_persistable(pc, end, &block, base, u, s, data))
            .unwrap_or_else(|| {
                let ops = mangle::mangle(&block, Addressing::Absolute).expect("absolute addressing always works");
                match emit::emit(pc, end, &ops, Placement::Cache(&mut self.cache), &self.fragments) {
                    Ok(f) => f,
                    Err(_) => crate::log::fatal(70, format_args!("code cache full")),
                }
            });
        let start = fragment.start;
        stats::add(&STATS.blocks_built, 1);
        stats::add(&STATS.cache_bytes, fragment.size as u64);
        self.fragments.insert(fragment);
        stats::add(&STATS.translate_ticks, stats::ticks() - t0);
        start
    }

    /// Registers the block at `pc` from its module's persisted file (loaded
    /// on the first miss in the module).
    fn from_file(&mut self, pc: u64, m: FileModule) -> Option<u64> {
        self.loaded.load_once(&mut self.cache, &mut self.ibl, m.base, m.path, m.identity);
        let fragment = self.loaded.register(pc, m.base, m.identity)?;
        let start = fragment.start;
        crate::smc::protect(pc, fragment.app_end);
        self.fragments.insert(fragment);
        Some(start)
    }

    /// Emits the block of the module at `base` into segment `segment` of
    /// unit `unit`; None if it cannot be made module-relative.
    #[allow(clippy::too_many_arguments)]
    fn emit_persistable(
        &mut self,
        pc: u64,
        end: u64,
        block: &bb_builder::BasicBlock,
        base: u64,
        unit: usize,
        segment: u32,
        data: alloc::vec::Vec<crate::persist_units::BlockData>,
    ) -> Option<Fragment> {
        let ops = mangle::mangle(block, Addressing::ModuleRelative { base })?;
        let unit = &mut self.units.units[unit];
        let place = Placement::Segment { segment: &mut unit.segments[segment as usize], module_base: base };
        match emit::emit(pc, end, &ops, place, &self.fragments) {
            Ok(f) => {
                unit.blocks.push(UnitBlock { tag: pc, start: f.start, segment, data });
                Some(f)
            }
            Err(EmitError::Full | EmitError::NotRelative) => None,
        }
    }
}

/// A file-backed module, whose blocks can be persisted.
#[derive(Clone, Copy)]
struct FileModule {
    base: u64,
    end: u64,
    path: crate::startup_args::CStr,
    identity: crate::modules::FileIdentity,
}

fn file_module(pc: u64) -> Option<FileModule> {
    crate::modules::with_module(pc, |m| {
        let m = m?;
        Some(FileModule { base: m.base, end: m.end, path: m.path, identity: m.identity? })
    })
}

/// The application's code in `[lo, hi)` changed, or stopped being code:
/// forget every fragment built from it (and, if there were any, persist
/// nothing more of its modules).
pub fn flush_range(lo: u64, hi: u64) {
    flush(lo, hi, true);
}

/// `[lo, hi)` became writable: whatever code is there may be rewritten
/// (text relocations, self-modifying code), so its modules' blocks are not
/// persisted from now on.
pub fn code_may_change(lo: u64, hi: u64) {
    if let Some(tr) = TRANSLATOR.lock().as_mut() {
        tr.units.taint(lo, hi);
    }
}

/// The application's code in `[lo, hi)` went away: forget every fragment
/// built from it.
pub fn forget_range(lo: u64, hi: u64) {
    flush(lo, hi, false);
}

fn flush(lo: u64, hi: u64, changed: bool) {
    let mut guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_mut() else { return };
    let mut tags = tr.fragments.flush_range(lo, hi);
    for tag in tr.loaded.retire_overlapping(lo, hi, &mut tr.ibl) {
        if tr.fragments.remove(tag).is_some() {
            tags.push(tag);
        }
    }
    for &tag in &tags {
        tr.ibl.remove(tag);
    }
    if changed && !tags.is_empty() {
        tr.units.taint(lo, hi);
    }
    if !tags.is_empty() {
        stats::add(&STATS.fragments_flushed, tags.len() as u64);
        crate::verbose!("flushed {} blocks from {lo:#x}-{hi:#x}", tags.len());
    }
}

/// Writes the persistable blocks of every module to their files (at
/// process exit, exec, or a fatal signal).
pub fn persist_all() {
    if !crate::options::get().persist {
        return;
    }
    let guard = TRANSLATOR.lock();
    if let Some(tr) = guard.as_ref() {
        crate::persist_save::save_units(&tr.units.units, &tr.fragments, &tr.loaded);
    }
    crate::persist_report::append();
}

/// Writes the persistable blocks of modules based in `[lo, hi)`, which
/// are being unmapped.
pub fn persist_unloading(lo: u64, hi: u64) {
    if !crate::options::get().persist {
        return;
    }
    let guard = TRANSLATOR.lock();
    if let Some(tr) = guard.as_ref() {
        let units: alloc::vec::Vec<_> = tr.units.units.iter().filter(|u| (lo..hi).contains(&u.module_base)).collect();
        for u in units {
            crate::persist_save::save_units(core::slice::from_ref(u), &tr.fragments, &tr.loaded);
        }
    }
}

/// Runs `fork_call` (a system call creating a process, which must not
/// allocate) while no other thread can be inside the translator or the
/// allocator, so the child's copies of their locks are free.
pub fn fork_safely(fork_call: impl FnOnce() -> i64) -> i64 {
    let r = {
        let _translator = TRANSLATOR.lock();
        crate::ALLOCATOR.while_locked(fork_call)
    };
    if r == 0 {
        stats::reset_in_child();
        crate::persist_report::new_image_in_child();
        if let Some(tr) = TRANSLATOR.lock().as_ref() {
            crate::persist_save::note_forked(&tr.units.units);
        }
    }
    r
}

/// Sets up the shared translator state; called once before the first entry.
pub fn init(ctx: &mut ThreadContext) {
    stats::start_clock();
    let tr = Translator {
        cache: CodeCache::new(),
        fragments: FragmentTable::default(),
        ibl: IblTable::new(),
        units: Units::default(),
        loaded: LoadedFiles::default(),
    };
    tr.ibl.publish(ctx);
    *TRANSLATOR.lock() = Some(tr);
}

/// The direct exit a thread left the cache by, to link to where it goes.
#[derive(Clone, Copy)]
struct LinkFrom {
    patch: Patch,
    stub: u64,
}

/// Continues the application at `pc`: delivers a pending signal first, then
/// finds or builds the fragment, links the direct exit the thread came
/// through (`linked_from`) and enters the cache.
fn continue_at(ctx: &mut ThreadContext, mut pc: u64, mut linked_from: Option<LinkFrom>, indirect: bool) -> ! {
    if ctx.signal_pending != 0 {
        pc = crate::signal::deliver_pending(ctx, pc);
        linked_from = None;
    }
    let start = {
        let mut guard = TRANSLATOR.lock();
        let tr = guard.as_mut().expect("translator");
        ctx.decoding_tag = pc;
        ctx.decoding = 1;
        let start = tr.fragment_start(pc);
        ctx.decoding = 0;
        if let Some(from) = linked_from {
            let retired = matches!(from.patch, Patch::Slot(slot) if tr.loaded.in_retired_file(slot));
            if !retired {
                link::link(from.patch, start);
                tr.fragments.note_link(pc, from.patch, from.stub);
            }
        }
        if indirect {
            stats::add(&STATS.ibl_misses, 1);
            tr.ibl.insert(pc, start);
        }
        // Loading a file may have grown the table too.
        tr.ibl.publish(ctx);
        start
    };
    ctx.enter_target = start;
    enter_cache(ctx)
}

/// Starts running the application at `pc` with the registers in `ctx`.
pub fn start(ctx: &mut ThreadContext, pc: u64) -> ! {
    continue_at(ctx, pc, None, false)
}

/// First runtime code of a new thread or vfork child, on its own runtime
/// stack: it continues the application at `ctx.next_pc`.
pub extern "C" fn thread_start(ctx: &mut ThreadContext) -> ! {
    ctx.activate();
    if ctx.is_vfork_child == 0 {
        crate::client_host::thread_init(ctx);
    }
    crate::signal::set_mask(2, ctx.pending.start_mask);
    let pc = ctx.next_pc;
    start(ctx, pc)
}

/// Reached (on the runtime stack) after a fault in the cache was translated
/// into `ctx`: delivers it to the app.
pub extern "C" fn resume_after_signal(ctx: &mut ThreadContext) -> ! {
    if ctx.decoding != 0 {
        // The fault hit while this thread was building a block, holding the
        // translator: that build is abandoned.
        ctx.decoding = 0;
        // SAFETY: this thread holds the lock and its frames are gone.
        unsafe { TRANSLATOR.force_unlock() };
    }
    let pc = ctx.next_pc;
    continue_at(ctx, pc, None, false)
}

/// Entered from `dbi_fcache_return` on the thread's runtime stack.
pub extern "C" fn from_cache(ctx: &mut ThreadContext) -> ! {
    stats::add(&STATS.dispatches, 1);
    // SAFETY: the exit stub (or the lookup routine) put the address of its
    // ExitData, which lives as long as the cache, in ctx.exit_data.
    let at = ctx.exit_data;
    let exit = unsafe { &*(at as *const ExitData) };
    match exit.kind {
        ExitKind::Direct => {
            let from = LinkFrom { patch: Patch::Rel32(exit.patch_site), stub: at - emit::STUB_CODE_LEN as u64 };
            continue_at(ctx, exit.target, Some(from), false)
        }
        ExitKind::RelativeDirect => {
            let r = exit.decode_relative(at);
            let patch = if crate::persist_load::in_mapped_file(at) { Patch::Slot(r.slot) } else { Patch::Rel32(r.branch) };
            let from = LinkFrom { patch, stub: at - emit::RELATIVE_STUB_CODE_LEN as u64 };
            continue_at(ctx, r.target, Some(from), false)
        }
        ExitKind::RelativeSyscall if ctx.signal_pending != 0 => {
            continue_at(ctx, exit.decode_relative(at).target - SYSCALL_LEN, None, false)
        }
        ExitKind::RelativeSyscall => {
            let next = crate::syscall::handle(ctx, exit.decode_relative(at).target);
            continue_at(ctx, next, None, false)
        }
        ExitKind::RelativeCleanCall => {
            let (client, id, arg) = exit.clean_call();
            crate::client_host::clean_call(ctx, client, id, arg);
            ctx.enter_target = at + core::mem::size_of::<ExitData>() as u64;
            enter_cache(ctx)
        }
        ExitKind::IndirectMiss => continue_at(ctx, ctx.next_pc, None, true),
        ExitKind::Syscall if ctx.signal_pending != 0 => {
            // A signal arrived before the system call: natively its handler
            // runs first, and the call is made when the app gets back to it.
            continue_at(ctx, exit.target - SYSCALL_LEN, None, false)
        }
        ExitKind::Syscall => {
            let next = crate::syscall::handle(ctx, exit.target);
            continue_at(ctx, next, None, false)
        }
        ExitKind::CleanCall => {
            let (client, id, arg) = exit.clean_call();
            crate::client_host::clean_call(ctx, client, id, arg);
            // Back into the middle of the block: no signal delivery here
            // (that needs an app pc), no linking.
            ctx.enter_target = exit.target;
            enter_cache(ctx)
        }
    }
}

/// Length of the `syscall` instruction.
const SYSCALL_LEN: u64 = 2;

/// The app pc and state fixup for cache address `pc`, if it is in a fragment.
pub fn translation_at(pc: u64) -> Option<(u64, crate::mangle::Fixup)> {
    let guard = TRANSLATOR.lock();
    let tr = guard.as_ref()?;
    match tr.fragments.containing(pc) {
        Some(f) => f.translation_at(pc).map(|t| (t.app_pc, t.fixup)),
        None => tr.loaded.translation_at(pc),
    }
}

/// Points every direct exit of the fragment containing `pc` back at its
/// stub, so a thread running in it soon reaches the dispatcher. Skipped if
/// another thread holds the translator (it is called from signal handlers).
pub fn unlink_fragment_at(pc: u64) {
    let Some(guard) = TRANSLATOR.try_lock() else { return };
    let Some(tr) = guard.as_ref() else { return };
    if tr.loaded.unlink_file_at(pc) {
        return;
    }
    let Some(f) = tr.fragments.containing(pc) else { return };
    for exit in &f.exits {
        link::unlink(exit.patch, exit.stub);
    }
}
