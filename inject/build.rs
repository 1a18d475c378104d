//! Builds the no_std runtime (its own cargo workspace, see
//! `runtime/Cargo.toml`) and tells the launcher where the binary is; then
//! builds dbirun's libc-free front (`front/`, its own workspace too) and
//! places it as `target/<profile>/dbirun`, beside this package's
//! `dbirun-full`.
//!
//! Neither can share this workspace's feature resolution: std crates here
//! would switch `std` on in their dependencies. So each is built by a
//! nested cargo invocation with a clean environment.
use std::{env, path::{Path, PathBuf}, process::Command};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let runtime_dir = manifest_dir.join("../runtime").canonicalize().unwrap();
    let front_dir = manifest_dir.join("front");
    let profile = env::var("PROFILE").unwrap();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // target/<profile>: where cargo puts this workspace's binaries.
    let profile_dir = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir.clone());
    // A stable place under target/ so the runtime's incremental state survives
    // across launcher rebuilds; the front shares it (and the runtime's
    // compiled dependencies).
    let target_dir = profile_dir.join("runtime-target");

    build_no_std(&runtime_dir, &target_dir, &profile, &[]);
    let binary = target_dir.join(&profile).join("dbi-runtime");
    println!("cargo::rustc-env=DBI_RUNTIME_PATH={}", binary.display());
    println!("cargo::rerun-if-changed={}", runtime_dir.join("src").display());
    println!("cargo::rerun-if-changed={}", runtime_dir.join("Cargo.toml").display());
    println!("cargo::rerun-if-changed={}", runtime_dir.join("Cargo.lock").display());
    println!("cargo::rerun-if-changed={}", runtime_dir.join("build.rs").display());
    println!("cargo::rerun-if-changed={}", runtime_dir.join("source_hash.rs").display());
    // The runtime links the clients in: their sources are its sources.
    let persist_dir = manifest_dir.join("../persist").canonicalize().unwrap();
    for path in ["src", "Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", persist_dir.join(path).display());
    }
    let clients_dir = manifest_dir.join("../clients").canonicalize().unwrap();
    for path in ["src", "Cargo.toml", "api/src", "api/Cargo.toml"] {
        println!("cargo::rerun-if-changed={}", clients_dir.join(path).display());
    }

    // The front (front/src/main.rs) is the `dbirun` users type: placed in
    // target/<profile> beside dbirun-full, which it hands over to.
    build_no_std(&front_dir, &target_dir, &profile, &[("DBI_RUNTIME_PATH", &binary)]);
    let front = profile_dir.join("dbirun");
    place(&target_dir.join(&profile).join("dbirun"), &front);
    println!("cargo::rustc-env=DBIRUN_FRONT_PATH={}", front.display());
    for path in ["src", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo::rerun-if-changed={}", front_dir.join(path).display());
    }
    link_dbirun_statically(&out_dir);
}

/// Builds the no_std package at `dir` (its own workspace) by a nested
/// cargo invocation with a clean environment: the runtime and the front
/// cannot share this workspace's feature resolution (std crates here
/// would switch `std` on in their dependencies).
fn build_no_std(dir: &Path, target_dir: &Path, profile: &str, env_set: &[(&str, &Path)]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if profile == "release" {
        cmd.arg("--release");
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_FEATURE_") {
            cmd.env_remove(key);
        }
    }
    for (key, value) in env_set {
        cmd.env(key, value);
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("failed to run cargo for {}: {e}", dir.display()));
    assert!(status.success(), "building {} failed", dir.display());
}

/// Copies `from` to `to` under a temporary name, then renames it: a
/// test or run executing the old `to` keeps its file.
fn place(from: &Path, to: &Path) {
    let temp = to.with_extension("placing");
    std::fs::copy(from, &temp).unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), temp.display()));
    std::fs::rename(&temp, to).unwrap_or_else(|e| panic!("placing {}: {e}", to.display()));
}

/// The libraries rustc asks for dynamically on this target (std's and
/// libc's), each answered from its static archive(s).
const DYNAMIC_LIBS: [(&str, &[&str]); 7] = [
    ("c", &["libc.a"]),
    ("m", &["libm.a"]),
    ("pthread", &["libpthread.a"]),
    ("dl", &["libdl.a"]),
    ("rt", &["librt.a"]),
    ("util", &["libutil.a"]),
    ("gcc_s", &["libgcc_eh.a", "libgcc.a"]),
];

/// Links dbirun as a static PIE: every short run under dbirun pays its
/// start-up, and a dynamically linked dbirun spent ~0.6 ms of it in ld.so
/// (loading libc, libm and libgcc_s, and binding their symbols). Stable
/// cargo cannot set `crt-static` for one binary without `--target` (it
/// would reach the workspace's proc macros), so the link is made static
/// by hand: `-static-pie`, and a directory searched first whose
/// `lib<name>.so` files are linker scripts naming the static archives
/// (rustc asks for these libraries with `-Bdynamic`). Where an archive is
/// missing (no libc6-dev), dbirun stays dynamic: only slower.
fn link_dbirun_statically(out_dir: &std::path::Path) {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let archive = |name: &str| -> Option<PathBuf> {
        let out = Command::new(&cc).arg(format!("-print-file-name={name}")).output().ok()?;
        let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        // Not found, cc prints the bare name back.
        path.is_absolute().then(|| path.canonicalize().ok()).flatten()
    };
    let shims = out_dir.join("static-libs");
    let _ = std::fs::create_dir_all(&shims);
    for (lib, archives) in DYNAMIC_LIBS {
        let Some(paths) = archives.iter().map(|a| archive(a)).collect::<Option<Vec<_>>>() else {
            println!("cargo::warning=dbirun is linked dynamically: no static {archives:?} (install libc6-dev)");
            return;
        };
        let inputs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let script = format!("INPUT({})\n", inputs.join(" "));
        if std::fs::write(shims.join(format!("lib{lib}.so")), script).is_err() {
            return;
        }
    }
    println!("cargo::rustc-link-arg-bin=dbirun-full=-static-pie");
    println!("cargo::rustc-link-arg-bin=dbirun-full=-L{}", shims.display());
}
