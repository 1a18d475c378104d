//! Computes the runtime version the way `runtime/build.rs` does (the same
//! files, the same relative path names, the same FNV-1a), so `cachetool`
//! can tell files of this build from files of other versions without
//! asking the runtime. The hash covers the runtime's paths as seen from
//! `runtime/`, so it is computed from there.
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let runtime_dir = manifest_dir.join("../runtime");
    std::env::set_current_dir(&runtime_dir).expect("the runtime's sources are beside cachetool");
    println!("cargo::rustc-env=DBI_RUNTIME_VERSION={:08x}", source_hash(&runtime_dir));
    println!("cargo::rerun-if-changed=build.rs");
}

/// Must stay identical to `source_hash` in `runtime/build.rs`: the tests
/// in `tests/cachetool.rs` expect files the runtime just wrote to list as
/// valid, which they do only while the two agree.
fn source_hash(runtime_dir: &Path) -> u32 {
    let mut files = Vec::new();
    for dir in ["src", "../clients/src", "../clients/api/src", "../persist/src"] {
        println!("cargo::rerun-if-changed={}", runtime_dir.join(dir).display());
        collect(Path::new(dir), &mut files);
    }
    files.sort();
    let mut h: u32 = 0x811c_9dc5;
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for b in f.to_string_lossy().bytes().chain(bytes) {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
    }
    h
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
