//! dbi-runtime: loads an application and runs every one of its instructions
//! from a code cache.
//!
//! Layers, each importing only the ones below it (docs/design.md):
//! `entry` and `dispatch` (the loop) -> `monitor` (trace heads and
//! recording) -> `emulation` (the app's system calls), `signals` ->
//! `translator` (shared state, flush and persist API),
//! `client_host`, `process_end` -> `persistence`, `translate` (the pipeline:
//! `bb_builder` -> `mangle` -> `emit` -> `link`) -> `os`. `context_switch`
//! (the assembly between the cache and the runtime), `thread`, `stats`,
//! `options` and `log` are shared by all.
//!
//! Under `cargo test` (feature `host-tests`) the same modules build as a
//! host program with std's harness, which runs the unit tests of the pure
//! parts; the entry point, allocator and libc symbols are left out.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// Nothing calls the runtime's entry under the harness: most code is unused.
#![cfg_attr(test, allow(dead_code, unused_imports, unused_variables))]

extern crate alloc;

#[macro_use]
mod log;
mod monitor;
mod emulation;
mod os;
mod persistence;
mod signals;
mod translate;
mod aot;
mod client_host;
mod context_switch;
mod dispatch;
mod entry;
mod fault_injection;
mod fork_locks;
mod options;
mod process_end;
mod quiescence;
mod stats;
mod thread;
mod translator;

// Under the test harness std's allocator serves; this one stays for the
// code that locks it around fork.
#[cfg_attr(not(test), global_allocator)]
pub(crate) static ALLOCATOR: os::heap::RuntimeAllocator = os::heap::RuntimeAllocator::new();

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log::fatal(70, format_args!("internal error: {info}"))
}

/// Referenced by landing pads in the precompiled `alloc`; never reached with
/// `panic = "abort"`.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    os::sys::exit_group(70)
}

#[cfg(not(test))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}
