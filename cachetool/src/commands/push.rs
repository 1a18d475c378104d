//! `push`: valid cache files into the remote store.

use std::path::Path;
use std::process::ExitCode;

use cachetool::{push, units};

use crate::output::{json_report, print_taken_and_skipped};
use crate::session::{entries, fail, progress, valid_files, Result};

pub fn run(dir: &Path, store: &dyn remote::Store, remote: &str, modules_wanted: &[String], jobs: usize, as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let (names, mut not_valid) = valid_files(dir, &entries, &statuses, modules_wanted)?;
    let signer = match remote::signing::Signer::from_env() {
        Ok(s) => s,
        Err(why) => return fail(why),
    };
    let pb = progress(names.len() as u64, "pushing", as_json);
    let (mut report, failure) = push::push(store, dir, &names, jobs, signer.as_ref(), &|| pb.inc(1));
    pb.finish_and_clear();
    report.skipped.append(&mut not_valid);
    if as_json {
        json_report(&report, failure.as_ref().map(|e| e as &dyn std::fmt::Display));
    } else {
        for (n, why) in &report.present {
            println!("present {n}: {why}");
        }
        print_taken_and_skipped("pushed", &report.pushed, &report.skipped);
        if failure.is_none() {
            println!(
                "pushed {} files ({} sent) to {remote}, {} already there, skipped {}",
                report.pushed.len(),
                units::human_size(report.bytes),
                report.present.len(),
                report.skipped.len()
            );
        }
    }
    match failure {
        Some(e) => fail(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
