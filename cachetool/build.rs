//! Computes the runtime version with the runtime's own function
//! (`runtime/source_hash.rs`), so `cachetool` can tell files of this build
//! from files of other versions without asking the runtime. The hash covers
//! the runtime's paths as seen from `runtime/`, so it is computed from there.
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let runtime_dir = manifest_dir.join("../runtime");
    std::env::set_current_dir(&runtime_dir).expect("the runtime's sources are beside cachetool");
    println!("cargo::rustc-env=DBI_RUNTIME_VERSION={:08x}", source_hash(&runtime_dir));
    println!("cargo::rerun-if-changed=build.rs");
}

include!("../runtime/source_hash.rs");
