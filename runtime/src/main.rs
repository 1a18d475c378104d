//! dbi-runtime: loads an application and runs every one of its instructions
//! from a code cache.
//!
//! One block's path through the pipeline: `dispatch` -> `bb_builder` ->
//! `mangle` -> `emit` -> `link`, with `context_switch` and `ibl` (assembly)
//! between the cache and the runtime, `syscall` at the kernel boundary, and
//! `loader` / `initial_stack` / `entry` to start the program.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod log;
mod app_prot;
mod auxv;
mod bb_builder;
mod client_host;
mod brk;
mod code_cache;
mod context_switch;
mod dispatch;
mod emit;
mod entry;
mod exec;
mod fault_injection;
mod fork_locks;
mod fragment;
mod heap;
mod ibl;
mod image_base;
mod initial_stack;
mod link;
mod loader;
mod mangle;
mod mem;
mod modules;
mod options;
mod persist_files;
mod persist_key;
mod persist_load;
mod persist_report;
mod persist_save;
mod persist_units;
mod proc_maps;
mod process_end;
mod proc_identity;
mod raw_x86;
mod safe_read;
mod self_exe;
mod sigframe;
mod signal;
mod smc;
mod startup_args;
mod stats;
mod sys;
mod syscall;
mod thread;
mod translate;
mod vdso;
mod vsyscall;

#[global_allocator]
pub static ALLOCATOR: heap::RuntimeAllocator = heap::RuntimeAllocator::new();

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log::fatal(70, format_args!("internal error: {info}"))
}

/// Referenced by landing pads in the precompiled `alloc`; never reached with
/// `panic = "abort"`.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    sys::exit_group(70)
}

#[no_mangle]
extern "C" fn rust_eh_personality() {}
