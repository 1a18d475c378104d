//! The runtime's layering rule (docs/design.md, "The runtime's tree and its
//! layers"), checked on its sources: a module names only modules of its
//! own layer or below, apart from the exceptions the design lists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers from the top; a module may use its own layer and those after it.
const LAYERS: &[&[&str]] = &[
    &["entry", "dispatch"],
    &["monitor"],
    // fork_locks holds every layer's locks across the app's fork.
    &["emulation", "fork_locks"],
    &["signals"],
    &["translator", "client_host", "process_end", "aot"],
    &["persistence"],
    &["translate"],
    &["os"],
];

/// Reached from every layer, and free to use any (the assembly between the
/// cache and the runtime, per-thread state, counters, options, logging).
/// `verbose!` and `eprintln!` are log's macros, exported at the crate root.
const SHARED: &[&str] = &["context_switch", "thread", "quiescence", "stats", "options", "log", "fault_injection", "main", "verbose", "eprintln"];

/// (from, to) uses the design names as exceptions.
const EXCEPTIONS: &[(&str, &str)] = &[
    // The clients' identities for the key and their persisted data.
    ("persistence", "client_host"),
];

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src")
}

/// The top-level module a source file belongs to (`translate/emit.rs` ->
/// `translate`, `dispatch.rs` -> `dispatch`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(runtime_src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::NAME` a file's code mentions (comments and test modules
/// left out).
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        // `use crate::{a, b::c}` groups.
        if let Some(group) = line.trim_start().strip_prefix("use crate::{") {
            for part in group.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

#[test]
fn runtime_modules_use_only_their_layer_and_below() {
    let mut files = Vec::new();
    sources(&runtime_src(), &mut files);
    files.sort();
    assert!(files.len() > 30, "runtime sources not found at {}", runtime_src().display());
    let mut problems = Vec::new();
    for file in &files {
        let from = module_of(file);
        if SHARED.contains(&from.as_str()) {
            continue;
        }
        let Some(from_rank) = rank(&from) else {
            problems.push(format!("{}: module {from} has no layer in this test (add it to docs/design.md and LAYERS)", file.display()));
            continue;
        };
        for to in uses(&std::fs::read_to_string(file).unwrap()) {
            if SHARED.contains(&to.as_str()) || EXCEPTIONS.contains(&(from.as_str(), to.as_str())) {
                continue;
            }
            match rank(&to) {
                Some(to_rank) if to_rank < from_rank => problems.push(format!(
                    "{}: {from} (layer {from_rank}) uses {to} (layer {to_rank}), a higher layer",
                    file.strip_prefix(runtime_src()).unwrap().display()
                )),
                Some(_) => {}
                // Macros and items of main.rs (`crate::ALLOCATOR`).
                None if to.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => {}
                None => problems.push(format!("{}: uses crate::{to}, which has no layer", file.display())),
            }
        }
    }
    assert!(problems.is_empty(), "layering violations:\n{}", problems.join("\n"));
}
