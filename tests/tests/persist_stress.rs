//! `-persist` under load (issue 11): hundreds of cache files in use in one
//! process, with their blocks left and linked through their exit slots,
//! and a 1 kHz profiling timer interrupting warm code. Each run is
//! compared with a native one.

use std::path::{Path, PathBuf};

use dbi_tests::persist::{assert_app_same, log, run_persist, Log};
use dbi_tests::{compile_shared, compiled, run_native, temp_dir, Build, Observed, Opt, RunOpts, Variant};

fn native(program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
    run_native(program, args, opts).unwrap_or_else(|f| panic!("native {} {}: {f}", program.display(), args.join(" ")))
}

/// `count` libraries built from many_libs_lib.c in `dir`, two compilers at
/// a time.
fn build_libs(dir: &Path, count: usize) -> Vec<PathBuf> {
    let src = dbi_tests::programs_dir().join("many_libs_lib.c");
    let libs: Vec<PathBuf> = (0..count).map(|i| dir.join(format!("libmany{i:03}.so"))).collect();
    std::thread::scope(|s| {
        for half in libs.chunks(count.div_ceil(2)) {
            let src = &src;
            s.spawn(move || {
                for lib in half {
                    let id = lib.file_stem().unwrap().to_str().unwrap().trim_start_matches("libmany").trim_start_matches('0');
                    let define = format!("-DID={}", if id.is_empty() { "0" } else { id });
                    compile_shared(src, lib, &[&define]).unwrap_or_else(|e| panic!("{e}"));
                }
            });
        }
    });
    libs
}

/// 300 cache files in one process (the runtime once recorded only 256 and
/// then patched the read-execute code of the others when linking): a cold
/// run persists every library's blocks, warm runs in other modes use every
/// file and leave its code through exits the dispatcher links.
#[test]
fn three_hundred_cache_files_in_one_process() {
    const LIBS: usize = 300;
    let tmp = temp_dir("many-files");
    let libs = build_libs(tmp.path(), LIBS);
    let main_src = dbi_tests::programs_dir().join("many_libs_main.c");
    let main = compiled(&main_src, Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let cache = tmp.path().join("cache");
    let opts = RunOpts::new().cwd(tmp.path());
    let lib_args: Vec<String> = libs.iter().map(|l| l.display().to_string()).collect();
    for (round, mode) in ["0", "1", "2", "1"].iter().enumerate() {
        let mut args = vec![*mode];
        args.extend(lib_args.iter().map(String::as_str));
        let expected = native(&main, &args, &opts);
        let run = run_persist(&cache, &["-v"], &main, &args, &opts);
        assert_app_same(&format!("round {round}, mode {mode}"), &expected, &run);
        if round > 0 {
            let used = log(&run.stderr)
                .iter()
                .filter(|l| matches!(l, Log::Using { file, .. } if file.to_string_lossy().contains("libmany")))
                .count();
            assert_eq!(used, LIBS, "round {round}: the warm run used {used} of the {LIBS} libraries' files");
        }
    }
}

const PROFILED_LOOP: &str = "
import signal
ticks = [0]
def on_prof(sig, frame):
    ticks[0] += 1
signal.signal(signal.SIGPROF, on_prof)
signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)
total = 0
for i in range(2_000_000):
    total += i * i % 7
signal.setitimer(signal.ITIMER_PROF, 0, 0)
print(total, ticks[0] > 0)
";

/// A 1 kHz SIGPROF timer while python3 runs its loop from cache files: the
/// signals arrive in file code (unlinking only what they must) and the
/// output stays the native one, cold and warm.
#[test]
fn sigprof_1khz_on_warm_python3() {
    let tmp = temp_dir("sigprof");
    let cache = tmp.path().join("cache");
    let opts = RunOpts::new().env("LC_ALL", "C").env("PYTHONHASHSEED", "0").env("PYTHONDONTWRITEBYTECODE", "1");
    let python = Path::new("/usr/bin/python3");
    let args = ["-c", PROFILED_LOOP];
    let expected = native(python, &args, &opts);
    assert!(expected.stdout.ends_with(b"True\n"), "native: no SIGPROF seen: {}", expected.stdout_str());
    for round in ["cold", "warm", "warm again"] {
        let run = run_persist(&cache, &["-v"], python, &args, &opts);
        assert_app_same(round, &expected, &run);
        if round != "cold" {
            assert!(
                log(&run.stderr).iter().any(|l| matches!(l, Log::Using { .. })),
                "{round}: no cache file used"
            );
        }
    }
}
