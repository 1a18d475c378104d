//! The catalog of test programs in `tests/programs/`: for each, its runs
//! (arguments, environment, stdin, expected native status) and its builds.
//!
//! Every program prints deterministic output (no addresses, no times; only
//! relationships such as "inside"/"equal" for ASLR-dependent facts) and is
//! built in every linking mode at -O0 and -O2, except the libc-free assembly
//! program, which is built static and static-pie.

use std::path::PathBuf;

use crate::compile::{compiled, Build};
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
}

const fn ok(args: &'static [&'static str]) -> Run {
    Run {
        args,
        expect: Status::Code(0),
        env: &[],
        stdin: None,
    }
}
const fn status(args: &'static [&'static str], expect: Status) -> Run {
    Run {
        args,
        expect,
        env: &[],
        stdin: None,
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
        name: "tail_calls",
        source: "tail_calls.c",
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

/// The program called `name`; panics if the catalog has none.
pub fn program(name: &str) -> &'static Program {
    PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no program {name:?} in the corpus catalog"))
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
    Ok(opts)
}

/// Builds `name` in every build of its catalog entry and compares every run
/// native vs translated. Panics with one paragraph per failing build/run.
/// After a translated run times out, the program's remaining runs are not
/// attempted (they would most likely time out too).
pub fn check_program(name: &str) {
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
                Ok(o) => o,
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
