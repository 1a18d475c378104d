//! `export`: valid caches into a bundle.

use std::path::Path;
use std::process::ExitCode;

use cachetool::cache_file::Status;
use cachetool::{bundle, units};

use crate::output::json;
use crate::session::{entries, fail, module_filter, progress, Fail, Result};

pub fn run(dir: &Path, out: &Path, modules_wanted: &[String], as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let wanted = module_filter(modules_wanted);
    let mut names = Vec::new();
    let mut skipped = Vec::new();
    for (e, s) in entries.iter().zip(&statuses) {
        if !wanted(e) {
            continue;
        }
        if *s == Status::Valid {
            names.push(e.name.clone());
        } else {
            skipped.push((e.name.clone(), s.describe()));
        }
    }
    if names.is_empty() && !modules_wanted.is_empty() && skipped.is_empty() {
        return fail(format_args!("no cache files of {} in {}", modules_wanted.join(", "), dir.display()));
    }
    let pb = progress(names.len() as u64, "exporting", as_json);
    let mut report = bundle::export(dir, &names, out, &|| pb.inc(1)).map_err(Fail)?;
    pb.finish_and_clear();
    skipped.append(&mut report.skipped);
    report.skipped = skipped;
    if as_json {
        json(&report);
    } else {
        for (n, why) in &report.skipped {
            println!("skipped {n}: {why}");
        }
        println!("exported {} files ({}) to {}", report.taken.len(), units::human_size(report.bytes), out.display());
    }
    Ok(ExitCode::SUCCESS)
}
