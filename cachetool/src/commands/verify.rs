//! `verify`: checksums, structure and keys of every file against the modules on disk.

use std::path::Path;
use std::process::ExitCode;

use cachetool::cache_file::{self, Status};
use cachetool::module_file::Modules;

use crate::output::json;
use crate::session::{check_in_full, existing_dir, open_index, progress, Fail, Result};

pub fn run(dir: &Path, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let mut ix = open_index(dir)?;
    let mut modules = Modules::default();
    // Sync first: the index learns of new files and known module hashes.
    let _ = ix.sync(&mut modules, &|_| {});
    let names = cache_file::names_in(dir).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let pb = progress(names.len() as u64, "verifying", as_json);
    let mut rows = Vec::new();
    let mut problems = 0;
    for name in &names {
        pb.inc(1);
        let Some((module, s)) = check_in_full(dir, name, &mut modules) else { continue };
        if s != Status::Valid {
            problems += 1;
        }
        rows.push((name.clone(), module, s));
    }
    pb.finish_and_clear();
    let _ = ix.learn(&modules);
    if as_json {
        let files: Vec<_> = rows
            .iter()
            .map(|(n, m, s)| serde_json::json!({ "file": n, "module": m, "status": s.name(), "detail": s.describe() }))
            .collect();
        json(&serde_json::json!({ "files": files, "problems": problems }));
    } else {
        for (name, module, s) in &rows {
            let line = match s {
                Status::Valid => continue,
                Status::Stale => format!("stale: module {module} changed since the file was written"),
                Status::Orphan => format!("orphan: module {module} no longer exists"),
                other => other.describe(),
            };
            println!("{name}: {line}");
        }
        if problems == 0 {
            println!("verified {} cache files: all valid", rows.len());
        } else {
            println!("verified {} cache files: {problems} with problems", rows.len());
        }
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
