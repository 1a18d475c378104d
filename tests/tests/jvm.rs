//! The JVM (OpenJDK 17, `/usr/bin/java`, installed by scripts/setup.sh)
//! under `dbirun`, with its default flags: a JIT writing and patching code
//! in writable+executable pages while other threads run it, SIGSEGV taken on
//! purpose (safepoint polls, implicit null checks) by handlers that edit
//! the ucontext, and CPU probes that toggle the AC flag. Each run is
//! compared with a native one: status, stdout, stderr.
//!
//! `tests/programs/JvmThreads.java` is compiled with `javac` once per test
//! process; its output is deterministic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use dbi_tests::persist::{assert_app_same, run_persist, stats, total};
use dbi_tests::{compare_observed, run_dbirun, run_native, temp_dir, Observed, RunOpts};

const JAVA: &str = "/usr/bin/java";
const JAVAC: &str = "/usr/bin/javac";

fn java() -> &'static Path {
    let java = Path::new(JAVA);
    assert!(java.is_file(), "{JAVA} not found: run scripts/setup.sh (openjdk-17-jdk-headless)");
    java
}

/// A JVM starts slowly under translation, the more so on a loaded machine.
fn opts() -> RunOpts {
    RunOpts::new().env("LC_ALL", "C").env("TZ", "UTC").timeout(Duration::from_secs(300))
}

/// The directory holding `JvmThreads.class`, compiled on first use.
fn threads_classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jvm-classes");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dbi_tests::programs_dir().join("JvmThreads.java");
        let out = std::process::Command::new(JAVAC)
            .arg("-d")
            .arg(&dir)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("{JAVAC}: {e} (run scripts/setup.sh)"));
        assert!(out.status.success(), "javac failed:\n{}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

fn native(args: &[&str]) -> Observed {
    run_native(java(), args, &opts()).unwrap_or_else(|f| panic!("native java {}: {f}", args.join(" ")))
}

/// Runs `java args` natively, then under `dbirun` with each set of options
/// in `variants`, and compares every translated run with the native one.
fn check_same_as_native(args: &[&str], variants: &[&[&str]]) -> Observed {
    let native = native(args);
    for options in variants {
        let what = format!("dbirun {} -- java {}", options.join(" "), args.join(" "));
        let translated = run_dbirun(options, java(), args, &opts()).unwrap_or_else(|f| panic!("{what}: {f}"));
        if let Err(e) = compare_observed(&what, &native, &translated) {
            panic!("{e}");
        }
    }
    native
}

/// Cold then warm `-persist` runs in a fresh cache directory: both behave
/// natively, and the warm one loads the files the cold one wrote.
fn check_persist_cold_warm(args: &[&str]) {
    let native = native(args);
    let cache = temp_dir("jvm-persist");
    let what = format!("java {}", args.join(" "));
    let cold = run_persist(cache.path(), &["-stats"], java(), args, &opts());
    assert_app_same(&format!("{what} (cold)"), &native, &cold);
    let warm = run_persist(cache.path(), &["-stats"], java(), args, &opts());
    assert_app_same(&format!("{what} (warm)"), &native, &warm);
    let (cs, ws) = (stats(&cold.stderr), stats(&warm.stderr));
    assert!(total(&cs, "cache files written") > 0, "{what}: the cold run wrote no cache file");
    assert!(total(&ws, "blocks loaded") > 0, "{what}: the warm run loaded no block");
}

#[test]
fn java_version() {
    let o = check_same_as_native(&["-version"], &[&[], &["-no_native_exec"]]);
    assert!(o.stderr_str().contains("OpenJDK"), "java -version printed: {}", o.stderr_str());
}

#[test]
fn java_interpreter_only_version() {
    check_same_as_native(&["-Xint", "-version"], &[&[]]);
}

#[test]
fn java_threads() {
    let dir = threads_classes().to_str().unwrap().to_owned();
    let o = check_same_as_native(&["-cp", &dir, "JvmThreads"], &[&[], &["-no_native_exec"]]);
    assert!(o.stdout_str().starts_with("total=2399976\n"), "JvmThreads printed: {}", o.stdout_str());
}

#[test]
fn java_version_persist_cold_warm() {
    check_persist_cold_warm(&["-version"]);
}

#[test]
fn java_threads_persist_cold_warm() {
    let dir = threads_classes().to_str().unwrap().to_owned();
    check_persist_cold_warm(&["-cp", &dir, "JvmThreads"]);
}
