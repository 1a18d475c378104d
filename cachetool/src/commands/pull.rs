//! `pull`: the remote store's files for programs and modules of this machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cachetool::{program_libraries, pull, units};

use crate::output::{json_report, print_taken_and_skipped};
use crate::session::{entries, fail, index_learns_new_files, progress, Fail, Result};

pub struct Wanted<'a> {
    pub what: &'a [PathBuf],
    pub all_known: bool,
    pub replace: bool,
    /// Public keys trusted besides `DBIRUN_TRUSTED_KEYS`'s.
    pub trust: &'a [String],
    /// Deep-check each file before it is published.
    pub deep: bool,
}

pub fn run(dir: &Path, store: &dyn remote::Store, remote: &str, wanted: &Wanted<'_>, as_json: bool) -> Result<ExitCode> {
    let Wanted { what, all_known, replace, .. } = *wanted;
    let trust = match remote::signing::Trust::from_keys_and_env(wanted.trust) {
        Ok(t) => t,
        Err(why) => return fail(why),
    };
    let mut modules: Vec<PathBuf> = Vec::new();
    for w in what {
        // A program brings the modules it loads, and the vDSO (the kernel
        // maps it into every process: this machine's); a library is itself.
        let found = match cachetool::module_file::is_library(w) {
            true => Ok(vec![w.clone()]),
            false => program_libraries::of(w).map(|found| found.into_iter().chain([PathBuf::from(persist::vdso::PATH)]).collect()),
        };
        match found {
            Ok(found) => modules.extend(found),
            Err(why) => return fail(why),
        }
    }
    if all_known && dir.is_dir() {
        let (_ix, entries, _, _) = entries(dir, as_json)?;
        modules.extend(entries.iter().filter_map(|e| e.module_path.as_ref()).map(PathBuf::from));
    }
    modules.sort();
    modules.dedup();
    let pb = progress(modules.len() as u64, "pulling", as_json);
    let dbirun = match wanted.deep {
        true => Some(cachetool::beside_this_program("dbirun").map_err(Fail)?),
        false => None,
    };
    let taking = pull::Taking { replace, trust: &trust, deep_check: dbirun.as_deref() };
    let (report, failure) = pull::pull(store, dir, &modules, &taking, &|| pb.inc(1));
    pb.finish_and_clear();
    if !report.taken.is_empty() {
        index_learns_new_files(dir);
    }
    if as_json {
        json_report(&report, failure.as_ref().map(|e| e as &dyn std::fmt::Display));
    } else {
        print_taken_and_skipped("took", &report.taken, &report.skipped);
        if failure.is_none() {
            println!("pulled {} files ({} fetched) from {remote}, skipped {}", report.taken.len(), units::human_size(report.bytes), report.skipped.len());
        }
    }
    match failure {
        Some(e) => fail(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
