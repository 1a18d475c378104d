//! Code that changes under a running thread, or that cannot run, native vs
//! `dbirun -no_native_exec`, byte for byte (issue 11): cross-modifying code
//! (200 rounds of a thread spinning in a loop another thread rewrites: a
//! stale copy hangs), GCC nested-function trampolines rewritten on an
//! executable stack, the legacy vsyscall page, jumps into memory that is
//! not executable (the fault at the target, with the kernel's siginfo),
//! and a fault in a block after it wrote to its own page (translated from
//! the block its write flushed: the app's handler gets it, as natively).

use dbi_tests::catalog_tests;
use dbi_tests::corpus::CODE_CHANGE_SUITE;

catalog_tests!(CODE_CHANGE_SUITE;
    xmc_spin,
    nested_trampoline,
    vsyscall,
    nx_jump,
    fault_after_flush,
);
