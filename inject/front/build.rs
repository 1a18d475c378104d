//! Links the front as a static executable with no C start files, and bakes
//! in what it must agree on with dbirun-full: where the build put the
//! runtime, and the runtime version the cache server notes.
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-link-arg-bins=-nostartfiles");
    println!("cargo::rustc-link-arg-bins=-nostdlib");
    println!("cargo::rustc-link-arg-bins=-static");
    println!("cargo::rustc-link-arg-bins=-no-pie");
    println!("cargo::rustc-link-arg-bins=-Wl,--build-id=none");
    // Set by inject's build script, which builds the runtime first.
    println!("cargo::rerun-if-env-changed=DBI_RUNTIME_PATH");
    println!("cargo::rustc-env=DBI_RUNTIME_PATH={}", std::env::var("DBI_RUNTIME_PATH").unwrap_or_default());
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let runtime_dir = manifest_dir.join("../../runtime").canonicalize().expect("the runtime's sources are beside inject");
    // The hashed paths are relative to runtime/, as in the runtime's own build.
    std::env::set_current_dir(&runtime_dir).unwrap();
    println!("cargo::rustc-env=DBI_RUNTIME_VERSION={:08x}", source_hash(&runtime_dir));
    println!("cargo::rerun-if-changed=build.rs");
}

include!("../../runtime/source_hash.rs");
