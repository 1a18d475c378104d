//! `dbirun`, the command users type: a libc-free front that execs the
//! runtime at once when the command line is a plain run, and hands every
//! other command line to `dbirun-full` (the launcher with clap, help,
//! clients' summaries, `-stats`, file-mode recording and every error
//! message), which lies beside it.
//!
//! Why a front: any glibc program spends its start-up in `init_cpu_features`
//! and the cache-size probes (`intel_check_word`: dozens of `cpuid`
//! instructions, each a VM exit): 0.8 ms of the 1 ms a static `int main(){}`
//! takes on this VM, against 0.1 ms for a program without libc. dbirun-full
//! paid it before every warm run, a quarter of a warm `/bin/true`.
//!
//! A plain run is one dbirun-full would exec the runtime for without waiting
//! (`inject/src/main.rs`): no client that prints a summary, no `-stats`,
//! and with `-persist` a cache server of this version already listening. The front takes only the
//! options of such runs (`command.rs`) and only what it can check exactly as
//! dbirun-full does (the cache directory, the server, APP through `$PATH`,
//! the runtime's file); anything else, unusual or wrong, is handed over
//! with the argv and environment untouched, so dbirun-full is the one place
//! that reports a mistake. `inject/tests/launcher.rs` checks that both build the
//! same runtime command line.
#![no_std]
#![no_main]

extern crate alloc;

mod app_path;
mod cache_dir;
mod command;
mod heap;
// The memory routines compiled Rust code calls: the runtime's own (no libc
// provides them here either), one copy of the source for both binaries.
#[path = "../../../runtime/src/os/mem.rs"]
mod mem;
mod runtime_argv;
mod server;
mod startup;
mod sys;

use alloc::vec::Vec;

use startup::Startup;

/// The launcher that takes every command line, beside this file.
const FULL: &[u8] = b"dbirun-full";

#[cfg(not(test))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "    xor ebp, ebp",
    "    mov rdi, rsp",
    "    and rsp, -16",
    "    call {main}",
    "    ud2",
    main = sym front_main,
);

/// # Safety
/// Called once, from `_start`, with the kernel's initial stack pointer.
unsafe extern "C" fn front_main(initial_sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack. Leaked: the process ends in an exec.
    let start: &'static Startup = alloc::boxed::Box::leak(alloc::boxed::Box::new(unsafe { Startup::read(initial_sp) }));
    startup::keep_for_hand_over(start);
    if let Some(run) = runtime_argv::plan(start) {
        // Returns only if the runtime cannot be executed: dbirun-full says why.
        let _ = sys::execve(&run.argv, start.envp_raw);
        run.forget_report();
    }
    hand_over(start)
}

/// Execs dbirun-full with this process's own argv and environment.
fn hand_over(start: &Startup) -> ! {
    let mut full: Vec<u8> = sys::own_dir().unwrap_or_default();
    full.extend_from_slice(b"/");
    full.extend_from_slice(FULL);
    full.push(0);
    let errno = sys::execve_raw(&full, start.argv_raw, start.envp_raw);
    sys::fail(&full[..full.len() - 1], errno)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing is written before the runtime's exec but the run's report,
    // which dbirun-full writes again: handing over is always safe.
    match startup::kept() {
        Some(start) => hand_over(start),
        None => sys::exit(125),
    }
}

/// Referenced by landing pads in the precompiled `alloc`; never reached with
/// `panic = "abort"`.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    sys::exit(125)
}

#[no_mangle]
extern "C" fn rust_eh_personality() {}
