// The runtime version persisted files are keyed on: a hash of every source
// file that shapes generated code or the cache format (FNV-1a over paths
// and contents, in a fixed order). Included by `runtime/build.rs`, which
// bakes it into the runtime, and by `cachetool/build.rs`, which must agree
// with it to tell this build's files from others'; both call it with the
// current directory set to `runtime/`, so the hashed paths are the same.

/// The hash of the runtime's, clients' and format's sources, as seen from
/// `runtime_dir` (also the current directory).
fn source_hash(runtime_dir: &std::path::Path) -> u32 {
    let mut files = Vec::new();
    for dir in ["src", "../clients/src", "../clients/api/src", "../persist/src"] {
        println!("cargo::rerun-if-changed={}", runtime_dir.join(dir).display());
        collect_sources(std::path::Path::new(dir), &mut files);
    }
    println!("cargo::rerun-if-changed={}", runtime_dir.join("source_hash.rs").display());
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

fn collect_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
