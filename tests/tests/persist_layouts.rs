//! `-persist` with modules of unusual segment layouts: several executable
//! segments, one after the writable ones (rustc's libraries, hot/cold
//! text), a module spanning more than 4 GiB. Every mapping of an image
//! must join one module with one base, or blocks persisted relative to one
//! base are loaded relative to another (rustc crashed so).
//!
//! Each test has its own cache and work directories, so they run in
//! parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dbi_tests::corpus::build_split_text_lib;
use dbi_tests::persist::{assert_app_same, dpc_of, log, run_persist, stats, total, used, Aligned, Log};
use dbi_tests::{compiled, run_native, temp_dir, tool, Build, Observed, Opt, RunOpts, Variant};

const LIB: &str = "libsplit_text.so";

fn native(program: &Path, args: &[&str], opts: &RunOpts) -> Observed {
    run_native(program, args, opts).unwrap_or_else(|f| panic!("native {} {}: {f}", program.display(), args.join(" ")))
}

/// The `dbirun: module loaded:` lines of `stderr` naming a file called `name`.
fn loads_of(stderr: &[u8], name: &str) -> Vec<u64> {
    log(stderr)
        .into_iter()
        .filter_map(|l| match l {
            Log::Module { path, base } if Path::new(&path).file_name().is_some_and(|n| n == name) => Some(base),
            _ => None,
        })
        .collect()
}

/// The value of the dynamic symbol `name` of `lib` (its module offset:
/// the library's lowest segment is at address 0).
fn symbol(lib: &Path, name: &str) -> u64 {
    let out = Command::new(tool("nm")).args(["-D", "--defined-only"]).arg(lib).output().expect("nm");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (value, _, sym) = (f.next()?, f.next()?, f.next()?);
            (sym == name).then(|| u64::from_str_radix(value, 16).ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no symbol {name} in {}:\n{text}", lib.display()))
}

/// split_text_main calls into each of its library's three executable
/// segments: cold and warm under `-persist`, it behaves natively, the
/// library is one module in both runs, the warm run uses the file and
/// builds almost nothing, and the file holds the blocks of the early and
/// the late segment at their real module offsets (nothing 2 GiB or more
/// past the base: that code is translated every run).
#[test]
fn split_text_library_persists_and_loads() {
    let src = dbi_tests::corpus::program("split_text_main").source_path();
    let program = compiled(&src, Build::new(Variant::Pie, Opt::O2)).unwrap_or_else(|e| panic!("{e}"));
    let work = temp_dir("layouts-work");
    build_split_text_lib(work.path()).unwrap_or_else(|e| panic!("{e}"));
    let lib = work.path().join(LIB);
    let cache = temp_dir("layouts-cache");
    let opts = RunOpts::new().cwd(work.path());
    let args = ["./libsplit_text.so"];

    let native = native(&program, &args, &opts);
    let cold = run_persist(cache.path(), &["-v", "-stats"], &program, &args, &opts);
    assert_app_same("split_text_main (cold)", &native, &cold);
    let warm = run_persist(cache.path(), &["-v", "-stats"], &program, &args, &opts);
    assert_app_same("split_text_main (warm)", &native, &warm);

    for (what, run) in [("cold", &cold), ("warm", &warm)] {
        let bases = loads_of(&run.stderr, LIB);
        assert!(bases.len() == 1, "{what}: {LIB} should be one module, was loaded as {bases:x?}");
    }
    assert!(!used(&log(&warm.stderr), LIB).is_empty(), "the warm run did not use the file of {LIB}:\n{}", warm.stderr_str());
    let (cs, ws) = (stats(&cold.stderr), stats(&warm.stderr));
    let (cold_built, warm_built) = (total(&cs, "blocks built"), total(&ws, "blocks built"));
    assert!(total(&ws, "blocks loaded") > 0, "the warm run loaded no block");
    assert!(
        warm_built * 50 <= cold_built,
        "the warm run built {warm_built} blocks, more than 2% of the cold run's {cold_built}"
    );

    let file = Aligned::read(&dpc_of(cache.path(), LIB));
    let v = file.validate().unwrap_or_else(|r| panic!("the file of {LIB} is invalid: {r:?}"));
    let offsets: Vec<u64> = v.index.blocks.iter().map(|b| b.module_offset.to_native() as u64).collect();
    for name in ["early_walk", "early_step", "late_mix", "late_walk"] {
        let at = symbol(&lib, name);
        assert!(offsets.contains(&at), "no block of {name} at module offset {at:#x} in the file: {offsets:x?}");
    }
    let far = symbol(&lib, "far_mix");
    assert!(far >= 1 << 32, "far_mix is at {far:#x}, not 4 GiB up: the linker script was not applied");
    assert!(
        offsets.iter().all(|&o| o < 1 << 31),
        "the file has blocks 2 GiB or more past the base: {offsets:x?}"
    );
}

/// The real rustc (not the rustup proxy): `<sysroot>/bin/rustc`.
fn rustc() -> PathBuf {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
    assert!(out.status.success(), "rustc --print sysroot failed: {}", String::from_utf8_lossy(&out.stderr));
    let path = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("bin/rustc");
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

const MAIN_RS: &str = "fn main() {\n    let v: Vec<u64> = (1..=10).collect();\n    println!(\"sum {}\", v.iter().sum::<u64>());\n}\n";

/// rustc's libraries (librustc_driver, libLLVM) have an executable segment
/// after their writable ones; its linker (rust-lld) loads libLLVM too.
/// `rustc -O` compiles and links a tiny program cold and warm under
/// `-persist` (rustc ran once warm and crashed, every run after a cold one
/// crashed): the binaries are byte-identical to native builds (checked
/// reproducible first) and run, and the warm run loads blocks.
#[test]
fn rustc_compiles_and_links_cold_and_warm() {
    let rustc = rustc();
    let args = ["-O", "-C", "codegen-units=1", "m.rs", "-o", "m"];
    let dirs = [temp_dir("rustc-native1"), temp_dir("rustc-native2"), temp_dir("rustc-cold"), temp_dir("rustc-warm")];
    for d in &dirs {
        std::fs::write(d.path().join("m.rs"), MAIN_RS).unwrap();
    }
    // Translated, rustc takes seconds; the machine may be busy.
    let opts = |d: &tempfile::TempDir| RunOpts::new().cwd(d.path()).timeout(Duration::from_secs(900));
    let cache = temp_dir("rustc-cache");
    let native1 = native(&rustc, &args, &opts(&dirs[0]));
    native(&rustc, &args, &opts(&dirs[1]));
    let binary = |d: &tempfile::TempDir| {
        std::fs::read(d.path().join("m")).unwrap_or_else(|e| panic!("m in {}: {e}", d.path().display()))
    };
    assert!(binary(&dirs[0]) == binary(&dirs[1]), "two native rustc builds differ: the comparison below means nothing");

    let cold = run_persist(cache.path(), &["-stats"], &rustc, &args, &opts(&dirs[2]));
    assert_app_same("rustc (cold)", &native1, &cold);
    assert!(binary(&dirs[2]) == binary(&dirs[0]), "the cold run's binary differs from the native one");
    let warm = run_persist(cache.path(), &["-stats"], &rustc, &args, &opts(&dirs[3]));
    assert_app_same("rustc (warm)", &native1, &warm);
    assert!(binary(&dirs[3]) == binary(&dirs[0]), "the warm run's binary differs from the native one");

    let ws = stats(&warm.stderr);
    assert!(total(&ws, "cache files loaded") > 0 && total(&ws, "blocks loaded") > 0, "the warm rustc loaded nothing");
    let rejected: Vec<_> = ws.iter().flat_map(|p| p.rejected.iter()).collect();
    assert!(rejected.is_empty(), "the warm run rejected files though nothing changed: {rejected:?}");
    let ran = native(&dirs[3].path().join("m"), &[], &RunOpts::new());
    assert_eq!(ran.stdout_str(), "sum 55\n", "the warm run's binary printed {:?}", ran.stdout_str());
}
