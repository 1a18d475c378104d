//! The corpus of test programs, each compiled in every applicable variant
//! (static, static-pie, pie, no-pie × -O0/-O2; the assembly program static and
//! static-pie) and run natively and under `dbirun -no_native_exec`: status,
//! stdout and stderr must be identical.
//!
//! `corpus_native_sanity` needs no `dbirun`: it checks that the corpus
//! compiles everywhere and is deterministic natively.

use std::time::Instant;

use dbi_tests::catalog_tests;
use dbi_tests::corpus::{self, CORPUS_SUITE, SUPPORT_SOURCES};

catalog_tests!(CORPUS_SUITE;
    loops_recursion,
    func_pointers,
    tail_calls,
    trace_paths,
    setjmp_longjmp,
    predicted_returns,
    cxx_exceptions,
    qsort_callback,
    tls_vars,
    simd,
    vector_state,
    rip_relative,
    big_stack,
    cpuid_rdtsc,
    alignment_check,
    return_address,
    abort,
    exit_code,
    printf_float,
    string_funcs,
    malloc_churn,
    env_args_io,
    auxv_proc,
    signal_faults,
    signal_delivery,
    signal_death,
    threads,
    fork_wait,
    asm_basic,
);

/// Calls and returns in the predicted form (`-predicted_returns`,
/// `runtime/src/translate/returns.rs`), with traces (which keep calls and
/// returns paired inside them plain) and without (every call and return
/// of the program takes it).
#[test]
fn predicted_returns_with_traces() {
    corpus::check_program_with("predicted_returns", &["-predicted_returns"]);
}

#[test]
fn predicted_returns_without_traces() {
    corpus::check_program_with("predicted_returns", &["-predicted_returns", "-no_traces"]);
}

/// Blocks' calls take the predicted form with `-predicted_returns` and
/// not by default; a warm `-persist` run of code in that form (loaded
/// from its files, at other addresses) behaves as natively.
#[test]
fn calls_take_the_predicted_form_when_asked() {
    use dbi_tests::persist::{stats, total};
    use dbi_tests::{compiled, run_dbirun, run_native, temp_dir, Build, Opt, RunOpts, Variant};
    let exe = compiled(&corpus::program("predicted_returns").source_path(), Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let native = run_native(&exe, &[], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
    let dir = temp_dir("predicted-returns");
    let persist = ["-persist", "-no_persist_server", "-persist_dir", dir.path().to_str().unwrap(), "-stats"];
    let mut counts = Vec::new();
    for extra in [&["-predicted_returns"][..], &["-predicted_returns"][..], &[][..]] {
        let opts: Vec<&str> = persist.iter().chain(extra).copied().collect();
        let o = run_dbirun(&opts, &exe, &[], &RunOpts::new()).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!((&o.status, &o.stdout), (&native.status, &native.stdout), "{extra:?}");
        counts.push(total(&stats(&o.stderr), "predicted-return calls"));
    }
    // Cold, the 512 call sites of `leaf` and more; warm, all come from the
    // file; by default, none.
    assert!(counts[0] > 512 && counts[1] < counts[0] / 10 && counts[2] == 0, "{counts:?}");
}

/// Every source in tests/programs/ is in the catalog (of any suite, or a
/// support source), and vice versa; program names are unique across suites.
#[test]
fn catalog_matches_program_files() {
    let mut files: Vec<String> = std::fs::read_dir(dbi_tests::programs_dir())
        .expect("tests/programs")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c") || n.ends_with(".cc") || n.ends_with(".S"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = corpus::all_programs()
        .map(|p| p.source.to_owned())
        .chain(SUPPORT_SOURCES.iter().map(|s| s.to_string()))
        .collect();
    listed.sort();
    // Two entries may share a source (different runs of one program).
    listed.dedup();
    assert_eq!(
        files, listed,
        "tests/programs/ and the catalog in tests/src/corpus.rs disagree"
    );
    let mut names: Vec<&str> = corpus::all_programs().map(|p| p.name).collect();
    names.sort();
    for w in names.windows(2) {
        assert_ne!(w[0], w[1], "two catalog entries are called {}", w[0]);
    }
}

/// Native only: every program of every suite compiles in every build, exits
/// as the catalog expects, and prints the same in every build (-O0 vs -O2 and
/// across linking modes), which catches undefined behaviour and
/// address-dependent output.
#[test]
fn corpus_native_sanity() {
    let start = Instant::now();
    // Compile in parallel (the compile cache is shared with the other tests
    // of this binary).
    let programs: Vec<&corpus::Program> = corpus::all_programs().collect();
    in_parallel(&programs, |_, p| {
        for b in p.builds {
            let _ = dbi_tests::compiled(&p.source_path(), *b);
        }
    });
    let builds: usize = programs.iter().map(|p| p.builds.len()).sum();
    eprintln!(
        "corpus_native_sanity: {} programs, {} builds compiled in {:.1} s",
        programs.len(),
        builds,
        start.elapsed().as_secs_f64()
    );
    // Programs are checked in parallel too (several mostly wait: timers,
    // 10,000 thread creations); problems are reported in catalog order.
    let found = std::sync::Mutex::new(Vec::new());
    in_parallel(&programs, |i, p| {
        let mine: Vec<String> = corpus::native_sanity(p)
            .into_iter()
            .map(|e| format!("{}: {e}", p.name))
            .collect();
        found.lock().unwrap_or_else(|e| e.into_inner()).push((i, mine));
    });
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by_key(|(i, _)| *i);
    let problems: Vec<String> = found.into_iter().flat_map(|(_, v)| v).collect();
    eprintln!(
        "corpus_native_sanity: done in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Runs `f(index, item)` for every item on as many threads as the machine
/// has cores, each thread taking the next unclaimed item.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(usize, &T) + Sync) {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                f(i, item);
            });
        }
    });
}
