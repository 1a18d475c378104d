// Links the runtime as a static, non-PIE executable at a fixed base far above
// where the kernel and ld.so put applications, with no C start files.
const IMAGE_BASE: &str = "0x7e0000000000";

fn main() {
    println!("cargo::rustc-link-arg-bins=-nostartfiles");
    println!("cargo::rustc-link-arg-bins=-nostdlib");
    println!("cargo::rustc-link-arg-bins=-static");
    println!("cargo::rustc-link-arg-bins=-no-pie");
    println!("cargo::rustc-link-arg-bins=-Wl,--image-base={IMAGE_BASE}");
    println!("cargo::rustc-link-arg-bins=-Wl,--build-id=none");
    println!("cargo::rustc-env=DBI_IMAGE_BASE={IMAGE_BASE}");
    println!("cargo::rustc-env=DBI_RUNTIME_VERSION={:08x}", source_hash());
    println!("cargo::rerun-if-changed=build.rs");
}

/// A hash of every source file that shapes generated code or the cache
/// format (FNV-1a over paths and contents, in a fixed order): persisted
/// files are keyed on it.
fn source_hash() -> u32 {
    let mut files = Vec::new();
    for dir in ["src", "../clients/src", "../clients/api/src", "../persist/src"] {
        println!("cargo::rerun-if-changed={dir}");
        collect(std::path::Path::new(dir), &mut files);
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

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
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
