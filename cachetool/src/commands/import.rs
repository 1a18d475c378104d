//! `import`: the files of a bundle that fit this machine.

use std::path::Path;
use std::process::ExitCode;

use cachetool::index::Index;
use cachetool::module_file::Modules;
use cachetool::{bundle, units};

use crate::output::json;
use crate::session::{fail, progress, Result};

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
        // The index learns of the new files (the files stay the truth if it cannot).
        if let Ok((mut ix, _)) = Index::open_or_rebuild(dir) {
            let _ = ix.sync(&mut Modules::default(), &|_| {});
        }
    }
    if as_json {
        json(&serde_json::json!({ "report": report, "error": err.as_ref().map(|e| e.to_string()) }));
    } else {
        for (n, m) in &report.taken {
            println!("took {n} ({m})");
        }
        for (n, why) in &report.skipped {
            println!("skipped {n}: {why}");
        }
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
