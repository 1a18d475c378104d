//! `list`: one row per cache file.

use std::path::Path;
use std::process::ExitCode;

use cachetool::units;

use crate::output::{json, Table};
use crate::session::{entries, Result};

/// The default table's width budget, as a terminal's.
const NARROW: usize = 100;

pub fn run(dir: &Path, wide: bool, as_json: bool) -> Result<ExitCode> {
    let (_ix, entries, statuses, _) = entries(dir, as_json)?;
    let now = cachetool::now();
    if as_json {
        let rows: Vec<_> = entries
            .iter()
            .zip(&statuses)
            .map(|(e, s)| serde_json::json!({ "file": e, "status": s.name(), "status_detail": s.describe() }))
            .collect();
        json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        let uid = cachetool::cache_dir::uid().to_string();
        if dir.join(&uid).is_dir() {
            println!("no cache files in {} (its {uid}/ looks like the per-user directory: --dir {})", dir.display(), dir.join(&uid).display());
        } else {
            println!("no cache files in {}", dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if wide {
        let mut t = Table::new(&["MODULE", "KEY", "BLOCKS", "SIZE", "LAST USED", "STATUS", "FILE"]);
        for (e, s) in entries.iter().zip(&statuses) {
            t.row(vec![
                e.module().to_string(),
                e.key_summary(),
                e.blocks.to_string(),
                units::human_size(e.file_size),
                units::human_age(e.last_used, now),
                s.describe(),
                e.name.clone(),
            ]);
        }
        t.print();
    } else {
        let mut t = Table::new(&["MODULE", "BLOCKS", "SIZE", "LAST USED", "STATUS"]);
        for (e, s) in entries.iter().zip(&statuses) {
            t.row(vec![e.module().to_string(), e.blocks.to_string(), units::human_size(e.file_size), units::human_age(e.last_used, now), s.name().to_string()]);
        }
        t.fit_first_column(NARROW);
        t.print();
    }
    let total: u64 = entries.iter().map(|e| e.file_size).sum();
    let (temps, temp_bytes) = cachetool::prune::temporaries(dir);
    let mut line = format!("{} cache files, {}", entries.len(), units::human_size(total));
    if temps > 0 {
        line.push_str(&format!("; {temps} temporary files, {} (prune removes those left behind)", units::human_size(temp_bytes)));
    }
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}
