//! The catalog of test programs in `tests/programs/`: for each, its runs
//! (arguments, environment, stdin, expected native status) and its builds.
//!
//! Every program prints deterministic output (no addresses, no times; only
//! relationships such as "inside"/"equal" for ASLR-dependent facts) and is
//! built in every linking mode at -O0 and -O2, except the libc-free assembly
//! program, which is built static and static-pie, and programs that need a
//! dynamic loader (pie and no-pie only).
//!
//! The catalog is split in [`SUITES`], one per test file: [`PROGRAMS`] (the
//! basic corpus, `tests/corpus.rs`), [`PROCESS_PROGRAMS`] (threads and
//! processes, `tests/processes_threads.rs`), [`SIGNAL_PROGRAMS`]
//! (`tests/signals.rs`), [`PERSIST_PROGRAMS`] (`tests/persist.rs`) and
//! [`CODE_CHANGE_PROGRAMS`] (`tests/code_changes.rs`). Each
//! test file declares its tests with
//! [`catalog_tests!`](crate::catalog_tests), which checks that every entry of
//! its suite has a test there and that it tests nothing from another suite,
//! so every catalog entry is covered by exactly one test file.

use std::path::{Path, PathBuf};

use crate::compile::{compiled, Build, Opt, Variant};
use crate::run::{
    compare_observed, compare_with_native, run_native, Failure, Observed, RunOpts, Status,
};

/// One execution of a program.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub args: &'static [&'static str],
    /// The status of a correct native run.
    pub expect: Status,
    /// Extra environment variables.
    pub env: &'static [(&'static str, &'static str)],
    /// Generates the stdin contents (default: /dev/null).
    pub stdin: Option<fn() -> Vec<u8>>,
    /// Prepares the run's working directory (given as the argument) before
    /// the native and the translated run, which share it: e.g. builds a
    /// shared library that the program loads by a relative path in `args`.
    pub setup: Option<Setup>,
}

/// See [`Run::setup`]: called with the run's working directory.
pub type Setup = fn(&Path) -> Result<(), String>;

const fn ok(args: &'static [&'static str]) -> Run {
    Run {
        args,
        expect: Status::Code(0),
        env: &[],
        stdin: None,
        setup: None,
    }
}
const fn status(args: &'static [&'static str], expect: Status) -> Run {
    Run {
        args,
        expect,
        env: &[],
        stdin: None,
        setup: None,
    }
}

/// One program of the corpus.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    /// The name used by the tests (the source's stem).
    pub name: &'static str,
    /// File name in `tests/programs/`.
    pub source: &'static str,
    pub builds: &'static [Build],
    pub runs: &'static [Run],
}

impl Program {
    pub fn source_path(&self) -> PathBuf {
        crate::programs_dir().join(self.source)
    }
}

const ALL: &[Build] = &Build::ALL;

fn stdin_lines() -> Vec<u8> {
    let mut rng = crate::Rng::new(7);
    let mut v = Vec::new();
    for i in 0..5000 {
        let n = rng.below(1_000_000);
        v.extend_from_slice(format!("{i:05} {n} {}\n", "x".repeat((n % 40) as usize)).as_bytes());
    }
    v
}

pub const PROGRAMS: &[Program] = &[
    Program {
        name: "loops_recursion",
        source: "loops_recursion.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "func_pointers",
        source: "func_pointers.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "trace_paths",
        source: "trace_paths.c",
        builds: ALL,
        runs: &[ok(&["calls", "100000"]), ok(&["fault", "20000"]), ok(&["signal", "50"]), ok(&["smc", "3000"])],
    },
    Program {
        name: "tail_calls",
        source: "tail_calls.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "predicted_returns",
        source: "predicted_returns.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "setjmp_longjmp",
        source: "setjmp_longjmp.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "cxx_exceptions",
        source: "cxx_exceptions.cc",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "qsort_callback",
        source: "qsort_callback.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "tls_vars",
        source: "tls_vars.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "simd",
        source: "simd.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "vector_state",
        source: "vector_state.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "rip_relative",
        source: "rip_relative.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "big_stack",
        source: "big_stack.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "cpuid_rdtsc",
        source: "cpuid_rdtsc.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "alignment_check",
        source: "alignment_check.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "return_address",
        source: "return_address.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "abort",
        source: "abort.c",
        builds: ALL,
        runs: &[status(&[], Status::Signal(libc::SIGABRT))],
    },
    Program {
        name: "exit_code",
        source: "exit_code.c",
        builds: ALL,
        runs: &[
            status(&["0"], Status::Code(0)),
            status(&["3"], Status::Code(3)),
            status(&["42"], Status::Code(42)),
            status(&["255"], Status::Code(255)),
        ],
    },
    Program {
        name: "printf_float",
        source: "printf_float.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "string_funcs",
        source: "string_funcs.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "malloc_churn",
        source: "malloc_churn.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "env_args_io",
        source: "env_args_io.c",
        builds: ALL,
        runs: &[
            Run {
                args: &[
                    "first",
                    "two words",
                    "",
                    "\u{fc}n\u{ef}c\u{f6}d\u{e9}",
                    "--flag=value",
                ],
                expect: Status::Code(0),
                env: &[("DBI_TEST_GREETING", "hello from the harness")],
                stdin: Some(stdin_lines),
                setup: None,
            },
            ok(&[]),
        ],
    },
    Program {
        name: "auxv_proc",
        source: "auxv_proc.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "signal_faults",
        source: "signal_faults.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "signal_delivery",
        source: "signal_delivery.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "signal_death",
        source: "signal_death.c",
        builds: ALL,
        runs: &[
            status(&["segv"], Status::Signal(libc::SIGSEGV)),
            status(&["fpe"], Status::Signal(libc::SIGFPE)),
            status(&["ill"], Status::Signal(libc::SIGILL)),
            status(&["term"], Status::Signal(libc::SIGTERM)),
            status(&["kill"], Status::Signal(libc::SIGKILL)),
        ],
    },
    Program {
        name: "threads",
        source: "threads.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "fork_wait",
        source: "fork_wait.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    // Checksum computed by the program; its low byte is the exit status.
    Program {
        name: "asm_basic",
        source: "asm_basic.S",
        builds: &Build::ASM,
        runs: &[status(&[], Status::Code(53))],
    },
];

/// Dynamic builds only (the program calls dlopen), at -O0 and -O2.
const DYNAMIC: &[Build] = &[
    Build::new(Variant::Pie, Opt::O0),
    Build::new(Variant::Pie, Opt::O2),
    Build::new(Variant::NoPie, Opt::O0),
    Build::new(Variant::NoPie, Opt::O2),
];

/// Every linking mode at -O2 only: for programs whose run is long (10,000
/// threads), where -O0 adds time and no coverage.
const ALL_O2: &[Build] = &[
    Build::new(Variant::Static, Opt::O2),
    Build::new(Variant::StaticPie, Opt::O2),
    Build::new(Variant::Pie, Opt::O2),
    Build::new(Variant::NoPie, Opt::O2),
];

/// Builds the two variants of `dlopen_lib.c` that `dlopen_main` loads, in
/// the run's working directory.
fn build_dlopen_libs(cwd: &Path) -> Result<(), String> {
    let src = crate::programs_dir().join("dlopen_lib.c");
    crate::compile::compile_shared(&src, &cwd.join("libdlopen_v1.so"), &[])?;
    crate::compile::compile_shared(&src, &cwd.join("libdlopen_v2.so"), &["-DVARIANT=2"])
}

/// Builds `split_text_lib.c` as `libsplit_text.so` in `dir`: code in three
/// executable segments (`split_text.ld`), as rustc's libraries have it.
pub fn build_split_text_lib(dir: &Path) -> Result<(), String> {
    let programs = crate::programs_dir();
    let script = format!("-Wl,-T,{}", programs.join("split_text.ld").display());
    let extra = ["-fno-asynchronous-unwind-tables", "-Wl,-z,separate-code", &script];
    crate::compile::compile_shared(&programs.join("split_text_lib.c"), &dir.join("libsplit_text.so"), &extra)
}

/// Sources in `tests/programs/` that are not catalog programs: built by a
/// run's `setup` (dlopen_lib, split_text_lib), or by a test file of their
/// own that runs them in ways a catalog run cannot (proc_identity:
/// `tests/identity.rs`, watched from another process while it runs;
/// many_libs: `tests/persist_stress.rs`, hundreds of libraries in one
/// process; many_blocks: `tests/traces.rs`, more code than a persistable
/// segment holds).
pub const SUPPORT_SOURCES: &[&str] =
    &["dlopen_lib.c", "split_text_lib.c", "proc_identity.c", "many_libs_main.c", "many_libs_lib.c", "many_blocks.c"];

/// Threads and processes: tested by `tests/processes_threads.rs`.
pub const PROCESS_PROGRAMS: &[Program] = &[
    Program {
        name: "pthreads_sync",
        source: "pthreads_sync.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "many_threads",
        source: "many_threads.c",
        builds: ALL_O2,
        runs: &[ok(&[])],
    },
    Program {
        name: "fork_statuses",
        source: "fork_statuses.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "vfork_exec",
        source: "vfork_exec.c",
        builds: ALL,
        runs: &[ok(&["/bin/echo"])],
    },
    Program {
        name: "spawn_missing",
        source: "spawn_missing.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    // The same program twice: it execs the path that
    // readlink("/proc/self/exe") returns, or "/proc/self/exe" itself.
    Program {
        name: "exec_chain",
        source: "exec_chain.c",
        builds: ALL,
        runs: &[ok(&["5", "path"])],
    },
    Program {
        name: "exec_chain_proc_self_exe",
        source: "exec_chain.c",
        builds: ALL,
        runs: &[ok(&["5", "proc"])],
    },
    Program {
        name: "system_popen",
        source: "system_popen.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "dlopen_main",
        source: "dlopen_main.c",
        builds: DYNAMIC,
        runs: &[Run {
            args: &["./libdlopen_v1.so", "./libdlopen_v2.so"],
            expect: Status::Code(0),
            env: &[],
            stdin: None,
            setup: Some(build_dlopen_libs),
        }],
    },
    Program {
        name: "jit",
        source: "jit.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "bad_pointers",
        source: "bad_pointers.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "fork_race",
        source: "fork_race.c",
        builds: &[Build::new(Variant::Pie, Opt::O2), Build::new(Variant::Static, Opt::O2)],
        runs: &[ok(&[])],
    },
];

/// Signal handling: tested by `tests/signals.rs`.
pub const SIGNAL_PROGRAMS: &[Program] = &[
    Program {
        name: "sig_segv_longjmp",
        source: "sig_segv_longjmp.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_ucontext_rip",
        source: "sig_ucontext_rip.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_alarm_loop",
        source: "sig_alarm_loop.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_storm",
        source: "sig_storm.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_altstack",
        source: "sig_altstack.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_frame_xstate",
        source: "sig_frame_xstate.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_restart",
        source: "sig_restart.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_nested",
        source: "sig_nested.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_raise_all",
        source: "sig_raise_all.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "sig_mask",
        source: "sig_mask.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
];

/// For the persisted code cache tests (`tests/persist.rs`): a program
/// whose inputs each take their own path through hundreds of blocks (the
/// tests use its pie -O0 build, and rebuild it with `-DSALT=2`), one that
/// patches its own code, and one whose library has its code in three
/// executable segments (`tests/persist_layouts.rs`). Checked here without
/// `-persist` like every catalog program.
pub const PERSIST_PROGRAMS: &[Program] = &[
    Program {
        name: "persist_paths",
        source: "persist_paths.c",
        builds: &[
            Build::new(Variant::Pie, Opt::O0),
            Build::new(Variant::Pie, Opt::O2),
            Build::new(Variant::Static, Opt::O2),
        ],
        runs: &[ok(&["0"]), ok(&["7"]), ok(&["all"])],
    },
    Program {
        name: "persist_smc",
        source: "persist_smc.c",
        builds: &[
            Build::new(Variant::Pie, Opt::O2),
            Build::new(Variant::Static, Opt::O0),
        ],
        runs: &[ok(&[])],
    },
    Program {
        name: "persist_smc_loop",
        source: "persist_smc_loop.c",
        builds: &[Build::new(Variant::Pie, Opt::O2)],
        runs: &[ok(&[])],
    },
    Program {
        name: "split_text_main",
        source: "split_text_main.c",
        builds: &[Build::new(Variant::Pie, Opt::O2)],
        runs: &[Run {
            args: &["./libsplit_text.so"],
            expect: Status::Code(0),
            env: &[],
            stdin: None,
            setup: Some(build_split_text_lib),
        }],
    },
];

/// For `tests/code_changes.rs`: code that changes or cannot run, as
/// natively: a thread spinning in code another thread rewrites, GCC
/// nested-function trampolines rewritten on an executable stack, calls
/// into the legacy vsyscall page, jumps into memory that is not
/// executable, a fault in a block that flushed itself, and a function
/// rewritten 3,000 times.
pub const CODE_CHANGE_PROGRAMS: &[Program] = &[
    Program {
        name: "xmc_spin",
        source: "xmc_spin.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "nested_trampoline",
        source: "nested_trampoline.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "vsyscall",
        source: "vsyscall.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "nx_jump",
        source: "nx_jump.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "fault_after_flush",
        source: "fault_after_flush.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
    Program {
        name: "jit_rewrites",
        source: "jit_rewrites.c",
        builds: ALL,
        runs: &[ok(&[])],
    },
];

/// A part of the catalog and the one test file that tests it.
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    /// The test file, relative to `tests/` (as `file!()` names it there).
    pub test_file: &'static str,
    pub programs: &'static [Program],
}

pub const CORPUS_SUITE: Suite = Suite {
    test_file: "tests/corpus.rs",
    programs: PROGRAMS,
};
pub const PROCESS_SUITE: Suite = Suite {
    test_file: "tests/processes_threads.rs",
    programs: PROCESS_PROGRAMS,
};
pub const SIGNAL_SUITE: Suite = Suite {
    test_file: "tests/signals.rs",
    programs: SIGNAL_PROGRAMS,
};
pub const PERSIST_SUITE: Suite = Suite {
    test_file: "tests/persist.rs",
    programs: PERSIST_PROGRAMS,
};

pub const CODE_CHANGE_SUITE: Suite = Suite {
    test_file: "tests/code_changes.rs",
    programs: CODE_CHANGE_PROGRAMS,
};

/// The whole catalog, by test file.
pub const SUITES: &[Suite] = &[CORPUS_SUITE, PROCESS_SUITE, SIGNAL_SUITE, PERSIST_SUITE, CODE_CHANGE_SUITE];

/// Every program of every suite.
pub fn all_programs() -> impl Iterator<Item = &'static Program> {
    SUITES.iter().flat_map(|s| s.programs.iter())
}

/// The program called `name`; panics if the catalog has none.
pub fn program(name: &str) -> &'static Program {
    all_programs()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no program {name:?} in the corpus catalog"))
}

/// The check behind [`catalog_tests!`](crate::catalog_tests): `tested` (the
/// test names of `file`) covers every program of `suite`, names only
/// programs of `suite`, and has no duplicates; `file` is the suite's test
/// file.
pub fn check_suite_coverage(suite: Suite, file: &str, tested: &[&str]) {
    assert!(
        file.ends_with(suite.test_file),
        "{file} declares the tests of the suite that belongs to {}",
        suite.test_file
    );
    for p in suite.programs {
        assert!(
            tested.contains(&p.name),
            "program {} has no #[test] in {}",
            p.name,
            suite.test_file
        );
    }
    for (i, t) in tested.iter().enumerate() {
        assert!(
            !tested[..i].contains(t),
            "{t} is tested twice in {}",
            suite.test_file
        );
        if !suite.programs.iter().any(|p| p.name == *t) {
            match SUITES
                .iter()
                .find(|s| s.programs.iter().any(|p| p.name == *t))
            {
                Some(s) => panic!(
                    "{t} is tested in {} but its catalog entry belongs to {}",
                    suite.test_file, s.test_file
                ),
                None => panic!(
                    "{} has a test {t} but the catalog has no such program",
                    suite.test_file
                ),
            }
        }
    }
}

/// Declares one `#[test]` per catalog program of a suite (each runs
/// [`check_program`]), with optional attributes such as `#[ignore = "..."]`,
/// and `every_catalog_entry_has_a_test`, which fails when the list and the
/// suite disagree (see [`check_suite_coverage`]).
///
/// ```text
/// dbi_tests::catalog_tests!(dbi_tests::corpus::SIGNAL_SUITE;
///     #[ignore = "reason"]
///     sig_nested,
/// );
/// ```
#[macro_export]
macro_rules! catalog_tests {
    ($suite:expr; $($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                $crate::corpus::check_program(stringify!($name));
            }
        )*

        /// Every program of this file's suite has a test above, and only those.
        #[test]
        fn every_catalog_entry_has_a_test() {
            let tested: &[&str] = &[$(stringify!($name)),*];
            $crate::corpus::check_suite_coverage($suite, file!(), tested);
        }
    };
}

/// Options for one run: a private working directory (shared by the native
/// and the translated run), the run's environment and stdin.
fn run_opts(run: &Run, dir: &std::path::Path) -> Result<RunOpts, String> {
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).map_err(|e| format!("{}: {e}", cwd.display()))?;
    let mut opts = RunOpts::new().cwd(&cwd);
    for (k, v) in run.env {
        opts = opts.env(*k, *v);
    }
    if let Some(gen) = run.stdin {
        let f = dir.join("stdin");
        std::fs::write(&f, gen()).map_err(|e| format!("{}: {e}", f.display()))?;
        opts = opts.stdin(f);
    }
    if let Some(setup) = run.setup {
        setup(&cwd)?;
    }
    Ok(opts)
}

/// Builds `name` in every build of its catalog entry and compares every run
/// native vs translated. Panics with one paragraph per failing build/run.
/// After a translated run times out, the program's remaining runs are not
/// attempted (they would most likely time out too).
pub fn check_program(name: &str) {
    check_program_with(name, &[]);
}

/// [`check_program`] with extra `dbirun` options on the translated runs
/// (a client, say): the app must still behave exactly as natively.
pub fn check_program_with(name: &str, dbirun_options: &[&str]) {
    let p = program(name);
    let src = p.source_path();
    let tmp = crate::temp_dir(p.name);
    // (build, run index, message with the build-specific path replaced)
    let mut failures: Vec<(Build, usize, String)> = Vec::new();
    let mut total = 0;
    let mut skipped = 0;
    let mut timed_out = false;
    for build in p.builds {
        for (i, run) in p.runs.iter().enumerate() {
            total += 1;
            if timed_out {
                skipped += 1;
                continue;
            }
            let exe = match compiled(&src, *build) {
                Ok(exe) => exe,
                Err(e) => {
                    failures.push((*build, i, e));
                    continue;
                }
            };
            let dir = tmp.path().join(format!("{build}-{i}"));
            let opts = match run_opts(run, &dir) {
                Ok(o) => dbirun_options.iter().fold(o, |o, d| o.dbirun_option(*d)),
                Err(e) => {
                    failures.push((*build, i, e));
                    continue;
                }
            };
            let args: Vec<&str> = run.args.to_vec();
            let msg = match compare_with_native(&exe, &args, &opts) {
                Ok(native) if native.status != run.expect => format!(
                    "the native run {} but the catalog expects it to have {} (corpus bug?)",
                    native.status, run.expect
                ),
                Ok(_) => continue,
                Err(f) => {
                    timed_out |= f.is_timeout();
                    f.message().to_owned()
                }
            };
            let exe_str = exe.display().to_string();
            failures.push((*build, i, msg.replace(&exe_str, p.name)));
        }
    }
    if failures.is_empty() {
        return;
    }
    let mut msg = format!("{}: {} of {} runs failed", p.name, failures.len(), total);
    if skipped > 0 {
        msg.push_str(&format!(" ({skipped} more not attempted after a timeout)"));
    }
    msg.push('\n');
    // Builds that failed the same way are reported together.
    let mut groups: Vec<(Vec<String>, &str)> = Vec::new();
    for (build, i, m) in &failures {
        let tag = if p.runs.len() > 1 {
            format!("{build} run {}", i + 1)
        } else {
            build.to_string()
        };
        match groups.iter_mut().find(|(_, gm)| *gm == m.as_str()) {
            Some((tags, _)) => tags.push(tag),
            None => groups.push((vec![tag], m)),
        }
    }
    for (tags, m) in groups {
        msg.push_str(&format!("[{}] {m}\n\n", tags.join(", ")));
    }
    panic!("{msg}");
}

/// Native-only check of one program: every build compiles, every run has the
/// expected status, and every build prints exactly what the first build
/// prints (so -O0 and -O2 agree, which catches undefined behaviour in the
/// corpus, and so do the linking modes). Returns the problems found.
pub fn native_sanity(p: &Program) -> Vec<String> {
    let src = p.source_path();
    let tmp = crate::temp_dir(&format!("{}-native", p.name));
    let mut problems = Vec::new();
    for (i, run) in p.runs.iter().enumerate() {
        let mut reference: Option<(Build, Observed)> = None;
        for build in p.builds {
            let exe = match compiled(&src, *build) {
                Ok(exe) => exe,
                Err(e) => {
                    problems.push(format!("[{build}] {e}"));
                    continue;
                }
            };
            let dir = tmp.path().join(format!("{build}-{i}"));
            let opts = match run_opts(run, &dir) {
                Ok(o) => o,
                Err(e) => {
                    problems.push(format!("[{build}] {e}"));
                    continue;
                }
            };
            let args: Vec<&str> = run.args.to_vec();
            let obs = match run_native(&exe, &args, &opts) {
                Ok(o) => o,
                Err(Failure::TimedOut(m) | Failure::Error(m) | Failure::Mismatch(m)) => {
                    problems.push(format!("[{build}] {args:?}: {m}"));
                    continue;
                }
            };
            if obs.status != run.expect {
                problems.push(format!(
                    "[{build}] {args:?}: native run {}, expected {}\n  stdout tail: {:?}\n  stderr: {:?}",
                    obs.status,
                    run.expect,
                    obs.stdout_str().lines().rev().take(3).collect::<Vec<_>>(),
                    obs.stderr_str()
                ));
            }
            match &reference {
                None => reference = Some((*build, obs)),
                Some((rb, r)) => {
                    if let Err(e) = compare_observed(&format!("{} {args:?}", p.name), r, &obs) {
                        problems.push(format!(
                            "[{build} vs {rb}] native outputs differ between builds:\n{}",
                            e.replace("translated", &build.to_string())
                                .replace("native", &rb.to_string())
                        ));
                    }
                }
            }
        }
    }
    problems
}
