//! What the cache files of a directory say ran before, for translating
//! ahead of time again after an upgrade (`cachetool aot --from-index`):
//! for every configuration the files were built with (the options they
//! record, as dbirun takes them: `-stats`, `-c NAME OPTION...`), the
//! modules and the module offsets of their blocks. Files of any runtime
//! version are read (that is the point); files this build cannot read
//! (another format, damaged) give their module, when the index knows it,
//! with no offsets and the default configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use persist::Depth;

use crate::cache_file;

/// Modules by path, each with the block offsets its files held.
pub type Modules = BTreeMap<String, BTreeSet<u32>>;

#[derive(Default, Debug)]
pub struct History {
    /// By configuration (dbirun's words).
    pub configurations: BTreeMap<Vec<String>, Modules>,
    /// Files that gave nothing, and why.
    pub skipped: Vec<(String, String)>,
}

/// Reads every cache file of `dir`; `known_module` names the module of a
/// file this build cannot read, if the index knows it.
pub fn read(dir: &Path, known_module: &dyn Fn(&str) -> Option<String>) -> std::io::Result<History> {
    let mut h = History::default();
    for name in cache_file::names_in(dir)? {
        let mapped = cache_file::map(&dir.join(&name));
        let read = mapped.as_ref().map_err(|e| e.to_string()).and_then(|(m, _)| {
            persist::validate_with(m.bytes(), Depth::Structure).map_err(|r| r.name().to_string()).map(|v| {
                let offsets: BTreeSet<u32> = v.index.blocks.iter().map(|b| b.module_offset.to_native()).collect();
                let options: Vec<String> = v.index.options.iter().map(|o| o.as_str().to_string()).collect();
                (v.index.module.path.as_str().to_string(), options, offsets)
            })
        });
        match read {
            Ok((module, options, offsets)) => add(&mut h, module, options, offsets),
            Err(why) => match known_module(&name) {
                Some(module) => add(&mut h, module, Vec::new(), BTreeSet::new()),
                None => h.skipped.push((name, why)),
            },
        }
    }
    Ok(h)
}

fn add(h: &mut History, module: String, options: Vec<String>, offsets: BTreeSet<u32>) {
    h.configurations.entry(options).or_default().entry(module).or_default().extend(offsets);
}

/// The seed file for `modules` (`runtime/src/aot/seeds.rs` reads it):
/// a line per module, its path, a tab, its offsets in hex, comma-separated.
/// Paths with a tab or a line break cannot be written and are left out.
pub fn seed_file(modules: &Modules) -> String {
    let mut out = String::new();
    for (path, offsets) in modules.iter().filter(|(path, _)| writable_path(path)) {
        out.push_str(&format!("{path}\t{}\n", hex_list(offsets)));
    }
    out
}

/// Seed lines asking for the traces of `module` to be built again (the
/// runtime's `aot/seeds.rs` reads them): each its blocks' offsets, head
/// first, and whether it counts its missed in-line checks.
pub fn trace_seed_lines(module: &str, traces: &[(bool, Vec<u32>)]) -> String {
    let mut out = String::new();
    for (counts_misses, blocks) in traces.iter().filter(|_| writable_path(module)) {
        out.push_str(&format!("{module}\ttrace:{}:{}\n", u8::from(*counts_misses), hex_list(blocks)));
    }
    out
}

/// Whether a seed line can name the module at `path` (the vDSO's is
/// this machine's, which dbirun translates where it is mapped).
fn writable_path(path: &str) -> bool {
    (path.starts_with('/') || path == persist::vdso::PATH) && !path.contains(['\t', '\n'])
}

/// Offsets in hex, comma-separated.
fn hex_list<'a>(offsets: impl IntoIterator<Item = &'a u32>) -> String {
    offsets.into_iter().map(|o| format!("{o:x}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lines() {
        let mut m = Modules::new();
        m.insert("/lib/a.so".into(), [0x10, 0x2f].into_iter().collect());
        m.insert("/lib/b\tc.so".into(), [1].into_iter().collect());
        m.insert("/lib/d.so".into(), BTreeSet::new());
        assert_eq!(seed_file(&m), "/lib/a.so\t10,2f\n/lib/d.so\t\n");
    }
}
