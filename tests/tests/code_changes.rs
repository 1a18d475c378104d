//! Code that changes under a running thread, or that cannot run, native vs
//! `dbirun -no_native_exec`, byte for byte (issue 11): cross-modifying code
//! (200 rounds of a thread spinning in a loop another thread rewrites: a
//! stale copy hangs), GCC nested-function trampolines rewritten on an
//! executable stack, the legacy vsyscall page, jumps into memory that is
//! not executable (the fault at the target, with the kernel's siginfo),
//! a fault in a block after it wrote to its own page (translated from
//! the block its write flushed: the app's handler gets it, as natively),
//! and a function rewritten 3,000 times while another thread waits in a
//! system call (the records of flushed blocks are freed as it goes).

use dbi_tests::catalog_tests;
use dbi_tests::compile::{compiled, Build, Opt, Variant};
use dbi_tests::corpus::{program, CODE_CHANGE_SUITE};
use dbi_tests::{run_dbirun, run_native, RunOpts};

catalog_tests!(CODE_CHANGE_SUITE;
    xmc_spin,
    nested_trampoline,
    vsyscall,
    nx_jump,
    fault_after_flush,
    jit_rewrites,
);

/// `name: N` in a `-stats` summary.
fn stat(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}' in\n{summary}"))
}

/// A JIT flushes blocks all its life: a record of each flushed block is
/// kept while a thread may still be running its code, and freed once none
/// can be (the rewriting thread picks its next block after each flush,
/// and a thread blocked in a system call runs none), instead of piling up
/// for the whole run.
#[test]
fn records_of_flushed_blocks_are_freed_as_the_program_goes() {
    let exe = compiled(&program("jit_rewrites").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let native = run_native(&exe, &[], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let o = run_dbirun(&["-stats"], &exe, &[], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((o.status, &o.stdout), (native.status, &native.stdout), "{}", o.stderr_str());
    let summary = o.stderr_str();
    let (flushed, freed) = (stat(&summary, "blocks flushed"), stat(&summary, "flushed blocks freed"));
    assert!(flushed >= 3000 - 1, "every rewrite flushes the function's block:\n{summary}");
    assert!(freed + 10 >= flushed, "all but the last few flushed blocks' records freed:\n{summary}");
}
