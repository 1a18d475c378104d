//! The deep check of a cache file (`cachetool verify --deep`, and the
//! cache server's check of the files it fetches from a remote store
//! before it offers them): the local checks prove a file is intact and
//! meant for its module, this re-translates every block it holds from
//! the module's bytes, with the options the file records, and compares
//! the code (`compare`). Translation is deterministic for a key, so a
//! faithful file matches its re-translation and planted code does not.
//!
//! Traces (`-traces`) are stitched again from the blocks each holds (the
//! path a run recorded, which the file keeps) and compared the same way.

mod compare;

use std::path::Path;

use indicatif::ProgressBar;
use persist::Depth;

use crate::cache_file;
use crate::history;

use compare::FileView;

/// What a deep check found in a file that passed it.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub blocks: usize,
    pub traces: usize,
}

/// Deep-checks the file `bytes` (a whole `.dpc` file, 16-byte aligned as
/// a mapping is) by translating its blocks again with `dbirun` into a
/// scratch directory. Err says, in one line, why the file fails or could
/// not be checked.
pub fn check(bytes: &[u8], dbirun: &Path) -> Result<Checked, String> {
    let v = persist::validate_with(bytes, Depth::Full).map_err(|r| format!("not a valid cache file ({})", r.name()))?;
    let module = v.index.module.path.as_str().to_string();
    let options: Vec<String> = v.index.options.iter().map(|o| o.as_str().to_string()).collect();
    runnable(&options)?;
    // Hashed only if a regular file (not a device or a pipe a hostile
    // file names), or the vDSO (this machine's).
    match crate::module_file::Modules::default().hash(&module) {
        None => return Err(format!("its module {module} is not a readable file on this machine")),
        Some(hash) if hash == crate::hex(&v.key.module_hash) => {}
        Some(_) => return Err(format!("its module {module} differs from the one the file was built from")),
    }
    let scratch = tempfile::Builder::new().prefix("cachetool-deep-check").tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
    // SAFETY: getuid has no preconditions.
    let dir = scratch.path().join(unsafe { libc::getuid() }.to_string());
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut modules = history::Modules::new();
    modules.insert(module.clone(), v.index.blocks.iter().map(|b| b.module_offset.to_native()).collect());
    let traces: Vec<(bool, Vec<u32>)> = v
        .index
        .traces
        .iter()
        .map(|t| {
            let first = t.first_span.to_native() as usize;
            let spans = &v.index.trace_spans[first..first + t.span_count.to_native() as usize];
            (t.budget_slot.to_native() != persist::index::TraceEntry::NO_BUDGET, spans.iter().map(|s| s.module_offset.to_native()).collect())
        })
        .collect();
    // Exactly the file's blocks and traces, nothing discovered beside them.
    let seeds = String::from("exact\n") + &history::seed_file(&modules) + &history::trace_seed_lines(&module, &traces);
    let out = crate::aot_runner::translate_seeded(dbirun, &dir, &seeds, &options, Some(scratch.path()), &ProgressBar::hidden())?;
    if !out.ok {
        return Err(format!("translating it again failed: {}", out.why()));
    }
    let reference = reference_file(&dir, &v.key).ok_or("translating it again gave no file for its key (another runtime?)")?;
    let r = persist::validate_with(reference.bytes(), Depth::Structure).map_err(|r| format!("its re-translation is not valid ({})", r.name()))?;
    compare_files(&v, &r)
}

/// Whether the options a file records (`-stats`, then `-c NAME
/// OPTION...` per client) may be given to dbirun for its re-translation:
/// they come from a file not trusted yet, so nothing else, and no path
/// (a client's output goes to the scratch directory it runs in).
fn runnable(options: &[String]) -> Result<(), String> {
    let first_client = options.iter().position(|o| o == "-c").unwrap_or(options.len());
    let odd = options[..first_client].iter().find(|o| *o != "-stats").or_else(|| options[first_client..].iter().find(|o| o.contains('/')));
    match odd {
        Some(o) => Err(format!("it records an option the deep check does not run with ({o})")),
        None => Ok(()),
    }
}

/// The file in `dir` whose key is `key`, mapped.
fn reference_file(dir: &Path, key: &persist::CacheKey) -> Option<cache_file::Mapped> {
    cache_file::names_in(dir).ok()?.into_iter().find_map(|name| {
        let (mapped, _) = cache_file::map(&dir.join(name)).ok()?;
        let same_key = persist::validate_with(mapped.bytes(), Depth::Structure).is_ok_and(|r| &r.key == key);
        same_key.then_some(mapped)
    })
}

/// Compares every block of `v` with the block at its module offset in
/// `reference`.
fn compare_files(v: &persist::Validated, reference: &persist::Validated) -> Result<Checked, String> {
    // Code may run in the clients' executable zone: it must be the one
    // the clients write again (their writable zone is data).
    let client_code = |v: &persist::Validated| v.index.client_zones.as_ref().map(|z| v.zone_bytes(z.1.to_native() as usize).to_vec());
    if client_code(v) != client_code(reference) {
        return Err("its clients' executable zone differs from its re-translation's".into());
    }
    let (fa, fb) = (FileView::new(v), FileView::new(reference));
    let theirs = &reference.index.blocks;
    for a in v.index.blocks.iter() {
        let m = a.module_offset.to_native();
        let found = theirs.binary_search_by_key(&m, |b| b.module_offset.to_native());
        let Ok(i) = found else { return Err(format!("block at +{m:#x}: not translated again from the module's bytes")) };
        compare::compare_blocks(&fa, a, &fb, &theirs[i]).map_err(|e| format!("block at +{m:#x}: {e}"))?;
    }
    let theirs = &reference.index.traces;
    for a in v.index.traces.iter() {
        let head = a.head.to_native();
        let found = theirs.binary_search_by_key(&head, |t| t.head.to_native());
        let Ok(i) = found else { return Err(format!("trace at +{head:#x}: not built again from its blocks")) };
        compare::compare_traces(&fa, a, &fb, &theirs[i]).map_err(|e| format!("trace at +{head:#x}: {e}"))?;
    }
    Ok(Checked { blocks: v.index.blocks.len(), traces: v.index.traces.len() })
}

#[cfg(test)]
mod tests {
    use super::runnable;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn only_recorded_options_without_paths_are_run() {
        assert!(runnable(&words("")).is_ok());
        assert!(runnable(&words("-stats -c drcov -format text -c bbcount")).is_ok());
        assert!(runnable(&words("-persist_dir /tmp/x -c null")).is_err());
        assert!(runnable(&words("-aot_seeds x")).is_err());
        assert!(runnable(&words("-c drcov -logdir /etc")).is_err());
    }
}
