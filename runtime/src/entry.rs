//! The process entry point: `_start` moves onto a bootstrap stack and calls
//! [`runtime_main`] with the kernel's initial stack pointer.

const BOOT_STACK_SIZE: usize = 512 * 1024;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

#[no_mangle]
static mut DBI_BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

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

/// # Safety
/// Called once, from `_start`, with the kernel's initial stack pointer.
unsafe extern "C" fn runtime_main(initial_sp: *const u64) -> ! {
    let _ = initial_sp;
    crate::sys::write_all(2, b"dbi-runtime: hello\n");
    crate::sys::exit_group(0)
}
