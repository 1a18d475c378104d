//! The dispatcher: every exit from the code cache lands here. It finds or
//! builds the fragment for the next app pc, links the exit it came through,
//! and re-enters the cache.

use spin::Mutex;

use crate::code_cache::CodeCache;
use crate::context_switch::enter_cache;
use crate::emit::{self, ExitData, ExitKind};
use crate::fragment::FragmentTable;
use crate::ibl::IblTable;
use crate::stats::{self, STATS};
use crate::thread::ThreadContext;
use crate::{bb_builder, link, mangle};

/// Everything shared by the translation pipeline.
struct Translator {
    cache: CodeCache,
    fragments: FragmentTable,
    ibl: IblTable,
}

static TRANSLATOR: Mutex<Option<Translator>> = Mutex::new(None);

impl Translator {
    /// The cache address of the fragment for `pc`, building it if needed.
    fn fragment_start(&mut self, pc: u64) -> u64 {
        if let Some(f) = self.fragments.get(pc) {
            return f.start;
        }
        let t0 = stats::ticks();
        let mut block = bb_builder::build(pc);
        if crate::client_host::active() {
            let mut ir = clients::api::BlockIr::new(pc, []);
            ir.items = core::mem::take(&mut block.items);
            crate::client_host::instrument(&mut ir);
            block.items = ir.items;
        }
        let ops = mangle::mangle(&block);
        let fragment = emit::emit(pc, block.end_pc().max(pc + 1), &ops, &mut self.cache, &self.fragments)
            .unwrap_or_else(|| crate::log::fatal(70, format_args!("code cache full")));
        let start = fragment.start;
        stats::add(&STATS.blocks_built, 1);
        stats::add(&STATS.cache_bytes, fragment.size as u64);
        self.fragments.insert(fragment);
        crate::smc::after_build(pc, block.end_pc());
        stats::add(&STATS.translate_ticks, stats::ticks() - t0);
        start
    }
}

/// The application's code in `[lo, hi)` changed or went away: forget every
/// fragment built from it.
pub fn flush_range(lo: u64, hi: u64) {
    let mut guard = TRANSLATOR.lock();
    let Some(tr) = guard.as_mut() else { return };
    let tags = tr.fragments.flush_range(lo, hi);
    for &tag in &tags {
        tr.ibl.remove(tag);
    }
    if !tags.is_empty() {
        stats::add(&STATS.fragments_flushed, tags.len() as u64);
        crate::verbose!("flushed {} blocks from {lo:#x}-{hi:#x}", tags.len());
    }
}

/// Runs `fork_call` (a system call creating a process, which must not
/// allocate) while no other thread can be inside the translator or the
/// allocator, so the child's copies of their locks are free.
pub fn fork_safely(fork_call: impl FnOnce() -> i64) -> i64 {
    let _translator = TRANSLATOR.lock();
    crate::ALLOCATOR.while_locked(fork_call)
}

/// Sets up the shared translator state; called once before the first entry.
pub fn init(ctx: &mut ThreadContext) {
    stats::start_clock();
    let tr = Translator { cache: CodeCache::new(), fragments: FragmentTable::default(), ibl: IblTable::new() };
    tr.ibl.publish(ctx);
    *TRANSLATOR.lock() = Some(tr);
}

/// Continues the application at `pc`: delivers a pending signal first, then
/// finds or builds the fragment, links the direct exit the thread came
/// through (`linked_from`, a patch site) and enters the cache.
fn continue_at(ctx: &mut ThreadContext, mut pc: u64, mut linked_from: Option<u64>, indirect: bool) -> ! {
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
        if let Some(patch_site) = linked_from {
            link::link(patch_site, start);
            let stub = ctx.exit_data - emit::STUB_CODE_LEN as u64;
            tr.fragments.note_link(pc, patch_site, stub);
        }
        if indirect {
            stats::add(&STATS.ibl_misses, 1);
            tr.ibl.insert(pc, start);
            tr.ibl.publish(ctx);
        }
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
    let exit = unsafe { &*(ctx.exit_data as *const ExitData) };
    match exit.kind {
        ExitKind::Direct => continue_at(ctx, exit.target, Some(exit.patch_site), false),
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
    let t = tr.fragments.containing(pc)?.translation_at(pc)?;
    Some((t.app_pc, t.fixup))
}

/// Points every direct exit of the fragment containing `pc` back at its
/// stub, so a thread running in it soon reaches the dispatcher. Skipped if
/// another thread holds the translator (it is called from signal handlers).
pub fn unlink_fragment_at(pc: u64) {
    let Some(guard) = TRANSLATOR.try_lock() else { return };
    let Some(f) = guard.as_ref().and_then(|tr| tr.fragments.containing(pc)) else { return };
    for exit in &f.exits {
        link::unlink(exit.patch_site, exit.stub);
    }
}
