//! The dispatcher: every exit from the code cache lands here. It finds or
//! builds the fragment for the next app pc (through the translator),
//! links the exit it came through, and re-enters the cache.

use crate::context_switch::enter_cache;
use crate::monitor::{Arrival, Step};
use crate::stats::{self, STATS};
use crate::thread::ThreadContext;
use crate::translate::emit::{self, ExitData, ExitKind};
use crate::translate::fragment::Patch;
use crate::translate::link;

/// The direct exit a thread left the cache by, to link to where it goes.
#[derive(Clone, Copy)]
struct LinkFrom {
    patch: Patch,
    stub: u64,
    /// The exit's branch, in the code it leaves (its stub is elsewhere).
    branch: u64,
    counts_target: bool,
}

/// Continues the application at `pc`: delivers a pending signal first, then
/// finds or builds the fragment, links the direct exit the thread came
/// through (`linked_from`) and enters the cache.
fn continue_at(ctx: &mut ThreadContext, mut pc: u64, mut linked_from: Option<LinkFrom>, indirect: bool) -> ! {
    // Whether `pc` is still where the branch the thread left by went.
    let mut branched_here = true;
    let start = loop {
        if ctx.signal_pending != 0 {
            pc = crate::signals::handling::deliver_pending(ctx, pc);
            linked_from = None;
            branched_here = false;
        }
        if crate::emulation::vsyscall::contains(pc) {
            // Never a fragment: no link, no lookup-table entry.
            linked_from = None;
            branched_here = false;
            match crate::emulation::vsyscall::emulate(ctx, pc) {
                Ok(caller) => pc = caller,
                Err(fault) => crate::signals::handling::queue_code_fault(ctx, fault.addr, fault.si_code),
            }
            continue;
        }
        if crate::aot::is_stop(pc) {
            crate::aot::translate_all(ctx);
        }
        // The app pc an internal error names.
        ctx.next_pc = pc;
        let mut guard = crate::translator::lock();
        let tr = guard.as_mut().expect("translator");
        crate::quiescence::picking(ctx);
        if ctx.file_hit_count != 0 {
            let queued = ctx.file_hit_count as usize;
            ctx.file_hit_count = 0;
            tr.enter_file_hits(&ctx.file_hits[..queued.min(ctx.file_hits.len())]);
        }
        let mut step = Step::Normal;
        if crate::options::get().monitors() {
            let arrival = match linked_from {
                Some(from) => Arrival::Direct { branch: from.branch, counts_target: from.counts_target },
                None if indirect && branched_here => Arrival::Indirect,
                None => Arrival::Other,
            };
            let sp = ctx.gpr[crate::thread::reg::RSP];
            step = tr.monitor(ctx as *const ThreadContext as u64, pc, arrival, sp, ctx.is_vfork_child == 0);
            match step {
                Step::Enter(start) => {
                    tr.ibl.publish(ctx);
                    break start;
                }
                Step::Unlinked => linked_from = None,
                Step::ViaHeadStub | Step::Normal => {}
            }
        }
        if indirect && linked_from.is_none() && matches!(step, Step::Normal) {
            if let Some(start) = tr.file_block_for_lookup(pc) {
                stats::add(&STATS.ibl_misses, 1);
                tr.ibl.insert(pc, start);
                tr.ibl.publish(ctx);
                break start;
            }
        }
        let file_head = if matches!(step, Step::ViaHeadStub) { tr.file_head_start(pc) } else { None };
        let start = match file_head.map_or_else(|| tr.fragment_start(pc, ctx.gpr[crate::thread::reg::RSP]), Ok) {
            Ok(start) => start,
            Err(fault) => {
                drop(guard);
                crate::signals::handling::queue_code_fault(ctx, fault.addr, fault.si_code);
                linked_from = None;
                branched_here = false;
                continue;
            }
        };
        // A sandboxed block is entered through here only, to be checked.
        let sandboxed = tr.fragments.is_sandboxed(pc);
        if let Some(from) = linked_from.filter(|_| !sandboxed) {
            let retired = matches!(from.patch, Patch::Slot(slot) if tr.loaded.in_retired_file(slot));
            if retired {
                // Never relinked.
            } else if matches!(step, Step::ViaHeadStub) {
                tr.link_via_head_stub(pc, start, from.patch, from.stub);
            } else {
                link::link(from.patch, start);
                tr.note_link(pc, start, from.patch, from.stub);
            }
        }
        if indirect {
            stats::add(&STATS.ibl_misses, 1);
            if !sandboxed {
                tr.ibl.insert(pc, start);
                tr.note_lookup_target(pc);
            }
        }
        // Loading a file may have grown the table too.
        tr.ibl.publish(ctx);
        break start;
    };
    ctx.enter_target = start;
    enter_cache(ctx)
}

/// Continues at trace head `head`, whose counting stub found it hot: the
/// thread records the path from it, unless a signal waits (delivered
/// first, by the dispatcher's usual way) or it cannot.
fn continue_hot(ctx: &mut ThreadContext, head: u64) -> ! {
    if ctx.signal_pending == 0 {
        let mut guard = crate::translator::lock();
        let tr = guard.as_mut().expect("translator");
        crate::quiescence::picking(ctx);
        let sp = ctx.gpr[crate::thread::reg::RSP];
        if let Step::Enter(start) = tr.head_hot(ctx as *const ThreadContext as u64, head, sp, ctx.is_vfork_child == 0) {
            tr.ibl.publish(ctx);
            drop(guard);
            ctx.enter_target = start;
            enter_cache(ctx)
        }
    }
    continue_at(ctx, head, None, false)
}

/// Continues at `head`, whose count a file's counting stub (its counter
/// at `counter`, its go slot right after) brought to zero: the thread
/// records from the head if it can, as from a counting stub of the cache.
fn continue_file_hot(ctx: &mut ThreadContext, head: u64, counter: u64) -> ! {
    // Counted afresh, whatever comes of this one.
    // SAFETY: a counter in a loaded file's W zone, mapped writable for as
    // long as the process runs.
    unsafe { core::ptr::write_volatile(counter as *mut u64, crate::translate::trace_table::HOT as u64) };
    if ctx.signal_pending == 0 {
        let mut guard = crate::translator::lock();
        let tr = guard.as_mut().expect("translator");
        crate::quiescence::picking(ctx);
        let sp = ctx.gpr[crate::thread::reg::RSP];
        let go_slot = counter + persist::counting_stubs::GO_SLOT_AT as u64;
        if let Some(start) = tr.file_head_hot(ctx as *const ThreadContext as u64, head, sp, ctx.is_vfork_child == 0, go_slot) {
            tr.ibl.publish(ctx);
            drop(guard);
            ctx.enter_target = start;
            enter_cache(ctx)
        }
    }
    continue_at(ctx, head, None, false)
}

/// Called by `dbi_enter_cache` when a signal came after the dispatcher last
/// looked (while it linked or built, or in a clean call): the code about
/// to run is unlinked, as for a signal arriving in it, so the thread is
/// soon back and the signal delivered (a loop of linked code would
/// otherwise never come back).
pub extern "C" fn signal_before_entry(ctx: &mut ThreadContext) {
    crate::translator::unlink_fragment_at(ctx.enter_target);
}

/// Starts running the application at `pc` with the registers in `ctx`.
pub(crate) fn start(ctx: &mut ThreadContext, pc: u64) -> ! {
    continue_at(ctx, pc, None, false)
}

/// First runtime code of a new thread or vfork child, on its own runtime
/// stack: it continues the application at `ctx.next_pc`.
pub extern "C" fn thread_start(ctx: &mut ThreadContext) -> ! {
    ctx.activate();
    if ctx.is_vfork_child == 0 {
        crate::client_host::thread_init(ctx);
    }
    crate::signals::handling::set_mask(2, ctx.pending.start_mask);
    let pc = ctx.next_pc;
    start(ctx, pc)
}

/// Reached (on the runtime stack) after a fault in the cache was translated
/// into `ctx`: delivers it to the app.
pub extern "C" fn resume_after_signal(ctx: &mut ThreadContext) -> ! {
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
    let Some(kind) = exit.kind() else {
        crate::log::fatal(70, format_args!("internal error: no exit kind in the exit data at {at:#x} (app pc {:#x})", ctx.next_pc))
    };
    // A clean call returns into its block; every other exit has left it.
    if !matches!(kind, ExitKind::CleanCall | ExitKind::RelativeCleanCall) {
        crate::quiescence::left_cache(ctx);
    }
    match kind {
        ExitKind::Direct => {
            let stub = at - emit::STUB_CODE_LEN as u64;
            let from = LinkFrom { patch: Patch::Rel32(exit.patch_site), stub, branch: exit.patch_site, counts_target: exit.counts_target() };
            continue_at(ctx, exit.target, Some(from), false)
        }
        ExitKind::RelativeDirect => {
            let r = exit.decode_relative(at);
            let patch = if crate::persistence::load::in_mapped_file(at) { Patch::Slot(r.slot) } else { Patch::Rel32(r.branch) };
            let stub = at - emit::RELATIVE_STUB_CODE_LEN as u64;
            let from = LinkFrom { patch, stub, branch: r.branch, counts_target: exit.counts_target() };
            continue_at(ctx, r.target, Some(from), false)
        }
        ExitKind::RelativeSyscall if ctx.signal_pending != 0 => {
            continue_at(ctx, exit.decode_relative(at).target - SYSCALL_LEN, None, false)
        }
        ExitKind::RelativeSyscall => {
            let next = crate::emulation::syscalls::handle(ctx, exit.decode_relative(at).target);
            continue_at(ctx, next, None, false)
        }
        ExitKind::RelativeCleanCall => {
            let (client, id, arg) = exit.clean_call();
            crate::client_host::clean_call(ctx, client, id, arg);
            ctx.enter_target = at + core::mem::size_of::<ExitData>() as u64;
            enter_cache(ctx)
        }
        ExitKind::IndirectMiss => continue_at(ctx, ctx.next_pc, None, true),
        ExitKind::HeadHot => continue_hot(ctx, exit.target),
        ExitKind::RelativeHeadHot => {
            // The head, and its counter.
            let r = exit.decode_relative(at);
            continue_file_hot(ctx, r.target, r.branch)
        }
        ExitKind::TraceStale | ExitKind::RelativeTraceStale => {
            // Left from a missed in-line check: the branch's target in rcx.
            let head = if kind == ExitKind::TraceStale { exit.target } else { exit.decode_relative(at).target };
            let pc = ctx.gpr[crate::thread::reg::RCX];
            ctx.gpr[crate::thread::reg::RCX] = ctx.ibl_rcx;
            crate::translator::retire_stale_trace(head);
            continue_at(ctx, pc, None, true)
        }
        ExitKind::Syscall if ctx.signal_pending != 0 => {
            // A signal arrived before the system call: natively its handler
            // runs first, and the call is made when the app gets back to it.
            continue_at(ctx, exit.target - SYSCALL_LEN, None, false)
        }
        ExitKind::Syscall => {
            let next = crate::emulation::syscalls::handle(ctx, exit.target);
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

