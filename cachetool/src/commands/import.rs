//! `import`: the files of a bundle that fit this machine.

use std::path::Path;
use std::process::ExitCode;

use cachetool::{bundle, units};

use crate::output::{json_report, print_taken_and_skipped};
use crate::session::{fail, index_learns_new_files, progress, Result};

pub fn run(dir: &Path, path: &Path, replace: bool, as_json: bool) -> Result<ExitCode> {
    if path.is_dir() {
        return fail(format_args!("{} is a directory, not a bundle (export writes a .tar.zst file)", path.display()));
    }
    if !path.is_file() {
        return fail(format_args!("{}: no such bundle", path.display()));
    }
    let total = bundle::read_manifest(path).map(|m| m.files.len() as u64).unwrap_or(0);
    let pb = progress(total, "importing", as_json);
    let (report, err) = bundle::import(dir, path, replace, &|k| pb.inc(k));
    pb.finish_and_clear();
    if !report.taken.is_empty() {
        index_learns_new_files(dir);
    }
    if as_json {
        json_report(&report, err.as_ref().map(|e| e as &dyn std::fmt::Display));
    } else {
        print_taken_and_skipped("took", &report.taken, &report.skipped);
        if err.is_none() {
            println!("imported {} files ({}), skipped {}", report.taken.len(), units::human_size(report.bytes), report.skipped.len());
        }
    }
    match err {
        None => Ok(ExitCode::SUCCESS),
        Some(e @ bundle::ImportError::OtherVersion(_)) => fail(e),
        Some(e) => fail(format_args!("{e}; nothing imported")),
    }
}
