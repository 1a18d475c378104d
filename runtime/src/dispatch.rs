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
        let block = bb_builder::build(pc);
        let ops = mangle::mangle(&block);
        let fragment = emit::emit(pc, &ops, &mut self.cache, &self.fragments)
            .unwrap_or_else(|| crate::log::fatal(70, format_args!("code cache full")));
        let start = fragment.start;
        stats::add(&STATS.blocks_built, 1);
        stats::add(&STATS.cache_bytes, fragment.size as u64);
        self.fragments.insert(fragment);
        stats::add(&STATS.translate_ticks, stats::ticks() - t0);
        start
    }
}

/// Sets up the shared translator state; called once before the first entry.
pub fn init(ctx: &mut ThreadContext) {
    stats::start_clock();
    let tr = Translator { cache: CodeCache::new(), fragments: FragmentTable::default(), ibl: IblTable::new() };
    tr.ibl.publish(ctx);
    *TRANSLATOR.lock() = Some(tr);
}

/// Starts running the application at `pc` with the registers in `ctx`.
pub fn start(ctx: &mut ThreadContext, pc: u64) -> ! {
    ctx.enter_target = TRANSLATOR.lock().as_mut().expect("translator").fragment_start(pc);
    enter_cache(ctx)
}

/// First runtime code of a new thread or vfork child, on its own runtime
/// stack: it continues the application at `ctx.next_pc`.
pub extern "C" fn thread_start(ctx: &mut ThreadContext) -> ! {
    ctx.activate();
    let pc = ctx.next_pc;
    start(ctx, pc)
}

/// Entered from `dbi_fcache_return` on the thread's runtime stack.
pub extern "C" fn from_cache(ctx: &mut ThreadContext) -> ! {
    stats::add(&STATS.dispatches, 1);
    // SAFETY: the exit stub (or the lookup routine) put the address of its
    // ExitData, which lives as long as the cache, in ctx.exit_data.
    let exit = unsafe { &*(ctx.exit_data as *const ExitData) };
    let next = match exit.kind {
        ExitKind::Direct => exit.target,
        ExitKind::IndirectMiss => ctx.next_pc,
        ExitKind::Syscall => crate::syscall::handle(ctx, exit.target),
    };
    let start = {
        let mut guard = TRANSLATOR.lock();
        let tr = guard.as_mut().expect("translator");
        let start = tr.fragment_start(next);
        match exit.kind {
            ExitKind::Direct => link::link(exit.patch_site, start),
            ExitKind::IndirectMiss => {
                stats::add(&STATS.ibl_misses, 1);
                tr.ibl.insert(next, start);
                tr.ibl.publish(ctx);
            }
            ExitKind::Syscall => {}
        }
        start
    };
    ctx.enter_target = start;
    enter_cache(ctx)
}
