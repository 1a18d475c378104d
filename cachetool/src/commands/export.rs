//! `export`: valid caches into a bundle.

use std::path::Path;
use std::process::ExitCode;

use cachetool::{bundle, units};

use crate::output::json;
use crate::session::{entries, progress, valid_files, Fail, Result};

pub fn run(dir: &Path, out: &Path, modules_wanted: &[String], as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let (names, mut skipped) = valid_files(dir, &entries, &statuses, modules_wanted)?;
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
