//! `prune`: deleting cache files by policy.

use std::path::Path;
use std::process::ExitCode;

use cachetool::{prune, units};

use crate::output::json;
use cachetool::cache_file::Status;

use crate::session::{check_in_full, entries, Fail, Result};

pub fn run(dir: &Path, a: &crate::PruneArgs, as_json: bool) -> Result<ExitCode> {
    let policy = prune::Policy {
        older_than: a.older_than,
        max_size: a.max_size,
        stale: a.stale,
        corrupt: a.corrupt,
        other_versions: a.other_versions,
        modules: a.module.clone(),
        all: a.all,
    };
    if policy.is_empty() {
        eprintln!("cachetool: prune: say what to prune (--older-than, --max-size, --stale, --corrupt, --other-versions, --module or --all)");
        return Ok(ExitCode::from(2));
    }
    let (mut ix, entries, mut statuses, mut modules) = entries(dir, as_json)?;
    if policy.stale || policy.corrupt {
        // The index's quick check reads headers; a damaged code zone shows
        // only when every checksum is read, as verify does.
        for (e, s) in entries.iter().zip(statuses.iter_mut()) {
            if *s == Status::Valid {
                if let Some((_, full)) = check_in_full(dir, &e.name, &mut modules) {
                    *s = full;
                }
            }
        }
    }
    // Temporary files and run reports of processes that died mid-write.
    for want in &policy.modules {
        if !entries.iter().any(|e| e.module_path.as_deref().is_some_and(|m| prune::names_module(want, m))) {
            eprintln!("cachetool: prune: no cache file of a module named {want}");
        }
    }
    let leftovers = prune::leftovers(dir);
    let choices = prune::select(&entries, &statuses, &policy, cachetool::now());
    let kept_size: u64 = entries.iter().map(|e| e.file_size).sum::<u64>() - choices.iter().map(|c| c.size).sum::<u64>();
    if a.dry_run {
        if as_json {
            json(&serde_json::json!({ "dry_run": true, "would_remove": choices, "would_keep_bytes": kept_size, "leftovers": leftovers }));
        } else {
            for c in &choices {
                println!("would remove {} ({}, {}): {}", c.name, c.module, units::human_size(c.size), c.reason);
            }
            for name in &leftovers {
                println!("would remove {name}: left by a process that is gone");
            }
            println!(
                "would remove {} files ({}), keeping {}",
                choices.len(),
                units::human_size(choices.iter().map(|c| c.size).sum()),
                units::human_size(kept_size)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let done = prune::remove(&mut ix, &choices).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let leftovers: Vec<&String> = leftovers.iter().filter(|n| std::fs::remove_file(dir.join(n)).is_ok()).collect();
    let removed: Vec<_> = done.iter().filter(|(_, o)| *o == prune::Outcome::Removed).collect();
    let freed: u64 = removed.iter().map(|(c, _)| c.size).sum();
    let failed = done.iter().any(|(_, o)| matches!(o, prune::Outcome::Failed(_)));
    if as_json {
        let rows: Vec<_> = done.iter().map(|(c, o)| serde_json::json!({ "file": c, "outcome": o })).collect();
        json(&serde_json::json!({ "results": rows, "removed": removed.len(), "freed_bytes": freed, "leftovers_removed": leftovers }));
    } else {
        for (c, o) in &done {
            match o {
                prune::Outcome::Removed => println!("removed {} ({}, {}): {}", c.name, c.module, units::human_size(c.size), c.reason),
                prune::Outcome::Busy => println!("skipped {}: being written by another process", c.name),
                prune::Outcome::Changed => println!("skipped {}: changed since it was chosen", c.name),
                prune::Outcome::Failed(e) => println!("failed {}: {e}", c.name),
            }
        }
        for name in &leftovers {
            println!("removed {name}: left by a process that is gone");
        }
        println!("removed {} files ({})", removed.len(), units::human_size(freed));
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
