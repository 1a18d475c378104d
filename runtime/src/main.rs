//! dbi-runtime: loads an application and runs every one of its instructions
//! from a code cache.
//!
//! Pipeline, one module each: `dispatch` -> `bb_builder` -> `mangle` ->
//! `emit` -> `link`, with `loader`/`initial_stack` to start the program,
//! `syscall` for the kernel boundary and `context_switch` for the assembly.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod log;
mod heap;
mod entry;
mod mem;
mod sys;

#[global_allocator]
static ALLOCATOR: heap::RuntimeAllocator = heap::RuntimeAllocator::new();

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
