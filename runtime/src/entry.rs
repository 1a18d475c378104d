//! The process entry point: `_start` moves onto a bootstrap stack and calls
//! [`runtime_main`], which loads the application and enters the code cache
//! at its first instruction.

use alloc::vec::Vec;

use crate::os::auxv::*;
use crate::os::initial_stack::{self, StackImage};
use crate::os::loader::{self, Placement};
use crate::os::startup_args::{CStr, StartupArgs};
use crate::thread::{reg, ThreadContext};
use crate::emulation::brk;
use crate::os::sys;
use crate::{dispatch, options};

const BOOT_STACK_SIZE: usize = 512 * 1024;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

#[no_mangle]
static mut DBI_BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

#[cfg(not(test))]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "    xor ebp, ebp",
    "    mov rdi, rsp",
    "    lea rsp, [rip + {stack} + {size}]",
    "    call {main}",
    "    ud2",
    stack = sym DBI_BOOT_STACK,
    size = const BOOT_STACK_SIZE,
    main = sym runtime_main,
);

/// Exit status for a program that cannot be executed, as a shell reports it.
const CANNOT_EXECUTE: i32 = 126;
const NOT_FOUND: i32 = 127;

fn cannot_load(path: &CStr, err: loader::LoadError) -> ! {
    let status = match err {
        loader::LoadError::Open(sys::Errno::NOENT) => NOT_FOUND,
        _ => CANNOT_EXECUTE,
    };
    crate::log::fatal(status, format_args!("{path}: {err}"))
}

/// The auxiliary vector the application sees: the kernel's, with the entries
/// that describe the loaded program replaced. Pointer-valued entries are
/// placed by `initial_stack`.
fn app_auxv(kernel: &StartupArgs, program: &loader::Image, interp_base: u64, vdso: Option<u64>) -> Vec<(u64, u64)> {
    let replaced = [AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_ENTRY, AT_EXECFN, AT_RANDOM, AT_PLATFORM, AT_NULL, AT_SYSINFO_EHDR];
    let mut auxv: Vec<(u64, u64)> =
        kernel.auxv.iter().copied().filter(|(k, _)| !replaced.contains(k)).collect();
    auxv.extend_from_slice(&[
        (AT_PHDR, program.phdr),
        (AT_PHENT, 56),
        (AT_PHNUM, program.phnum),
        (AT_BASE, interp_base),
        (AT_ENTRY, program.entry),
    ]);
    if let Some(v) = vdso {
        auxv.push((AT_SYSINFO_EHDR, v));
    }
    auxv
}

/// # Safety
/// Called once, from `_start`, with the kernel's initial stack pointer.
unsafe extern "C" fn runtime_main(initial_sp: *const u64) -> ! {
    // SAFETY: initial_sp is the kernel's initial stack.
    let kernel = unsafe { StartupArgs::read(initial_sp) };
    let command = options::parse(kernel.argv.get(1..).unwrap_or(&[]));
    if options::get().verbose || options::get().stats {
        crate::log::keep_private_stderr();
    }
    crate::emulation::exec::init();
    crate::fault_injection::arm_from_env(&kernel.envp);
    crate::client_host::init();
    crate::client_host::remember_logdir();
    let execfn = command.path;
    let (path, argv) = loader::resolve_scripts(command.path, command.argv)
        .unwrap_or_else(|e| cannot_load(&command.path, e));

    let parked_vdso = kernel.aux(AT_SYSINFO_EHDR).and_then(crate::os::vdso::Vdso::park);
    let program = loader::load(&path, Placement::Program).unwrap_or_else(|e| cannot_load(&path, e));
    program.note_as_module(path);
    if let Some(real) = program.real_path {
        crate::os::app_exe::set(real);
    }
    let mut entry = program.entry;
    if crate::options::get().aot {
        crate::aot::stop_at(program.entry);
    }
    let mut interp_base = 0;
    if let Some(interp) = &program.interp {
        let interp_path = CStr::leak(interp);
        let image = loader::load(&interp_path, Placement::Interpreter)
            .unwrap_or_else(|e| cannot_load(&interp_path, e));
        image.note_as_module(interp_path);
        interp_base = image.bias;
        entry = image.entry;
    }
    brk::init(&program);
    let vdso = match parked_vdso {
        Some(parked) => Some(parked.place()),
        None => kernel.aux(AT_SYSINFO_EHDR).map(|image| (image, 0)),
    };
    if let Some((image, len)) = vdso {
        crate::os::vdso::note_as_module(image, len);
    }
    let vdso = vdso.map(|(image, _)| image);

    let platform = kernel.aux(AT_PLATFORM).map(|p| {
        // SAFETY: the kernel's AT_PLATFORM string, still intact: the stack
        // image is built below.
        unsafe { CStr::leak(CStr::from_ptr(p as *const u8).as_bytes()) }
    });
    let mut random = [0u8; 16];
    if let Some(p) = kernel.aux(AT_RANDOM) {
        // SAFETY: AT_RANDOM points at 16 bytes.
        random.copy_from_slice(unsafe { core::slice::from_raw_parts(p as *const u8, 16) });
    }
    let image = StackImage {
        argv: &argv,
        envp: &kernel.envp,
        execfn,
        platform,
        auxv: app_auxv(&kernel, &program, interp_base, vdso),
    };
    // SAFETY: everything on the kernel's stack was copied to the heap, and
    // the runtime runs on its boot stack: the area is free for the app.
    let stack = unsafe { initial_stack::build(kernel.stack_top, &image, &random) };
    crate::os::proc_identity::become_app(&execfn, &stack);
    if program.exec_stack {
        if let Some((lo, hi)) = initial_stack::make_executable(stack.sp) {
            let rwx = sys::PROT_READ | sys::PROT_WRITE | sys::PROT_EXEC;
            crate::translate::smc::note_protection(lo, hi - lo, rwx);
        }
    }

    let ctx = ThreadContext::allocate();
    ctx.activate();
    crate::quiescence::register(ctx);
    ctx.gpr[reg::RSP] = stack.sp;
    crate::translator::init(ctx);
    crate::signals::handling::catch_fatal_signals();
    crate::client_host::thread_init(ctx);
    dispatch::start(ctx, entry)
}
