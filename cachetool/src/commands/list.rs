//! `list`: one row per cache file.

use std::path::Path;
use std::process::ExitCode;

use cachetool::units;

use crate::output::{json, Table};
use crate::session::{entries, Result};

pub fn run(dir: &Path, as_json: bool) -> Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}
