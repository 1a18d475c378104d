//! `verify`: checksums, structure and keys of every file against the
//! modules on disk; with `--deep`, each file's blocks translated again
//! and compared (`cachetool::deep_check`).

use std::path::Path;
use std::process::ExitCode;

use cachetool::cache_file::{self, Status};
use cachetool::module_file::Modules;

use crate::output::json;
use crate::session::{check_in_full, entries, existing_dir, open_index, progress, Fail, Result};

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

/// `verify --deep [WHAT...]`: the files named (all valid files without
/// names), each checked in full, then translated again and compared.
pub fn deep(dir: &Path, what: &[String], as_json: bool) -> Result<ExitCode> {
    let dbirun = cachetool::beside_this_program("dbirun").map_err(Fail)?;
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let files: Vec<std::path::PathBuf> = if what.is_empty() {
        entries.iter().zip(&statuses).filter(|(_, s)| **s == Status::Valid).map(|(e, _)| dir.join(&e.name)).collect()
    } else {
        let mut files = Vec::new();
        for w in what {
            let found = cachetool::inspect::resolve(dir, w, &entries);
            if found.is_empty() {
                return Err(Fail(format!("{w}: no such cache file or module with files in {}", dir.display())));
            }
            files.extend(found);
        }
        files
    };
    let pb = progress(files.len() as u64, "translating again", as_json);
    let mut rows = Vec::new();
    for path in &files {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        pb.set_message(name.clone());
        let outcome = cache_file::map(path).map_err(|e| e.to_string()).and_then(|(file, _)| cachetool::deep_check::check(file.bytes(), &dbirun));
        pb.inc(1);
        rows.push((name, outcome));
    }
    pb.finish_and_clear();
    let failed = rows.iter().filter(|(_, o)| o.is_err()).count();
    if as_json {
        let files: Vec<_> = rows
            .iter()
            .map(|(n, o)| match o {
                Ok(c) => serde_json::json!({ "file": n, "ok": true, "blocks": c.blocks, "traces": c.traces }),
                Err(why) => serde_json::json!({ "file": n, "ok": false, "detail": why }),
            })
            .collect();
        json(&serde_json::json!({ "files": files, "failed": failed }));
    } else {
        for (name, o) in &rows {
            match o {
                Ok(c) if c.traces == 0 => println!("{name}: {} blocks match their re-translation", c.blocks),
                Ok(c) => println!("{name}: {} blocks and {} traces match their re-translation", c.blocks, c.traces),
                Err(why) => println!("{name}: deep check failed: {why}"),
            }
        }
        match (rows.len(), failed) {
            (0, _) => println!("no valid cache files to deep-check in {}", dir.display()),
            (n, 0) => println!("deep-checked {n} cache files: all match"),
            (n, failed) => println!("deep-checked {n} cache files: {failed} failed"),
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
