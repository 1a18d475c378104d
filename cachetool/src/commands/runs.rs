//! `runs`: the recorded history, newest first: when, the command, how it
//! ended, how long it took and how much of its code came from the caches.

use std::path::Path;
use std::process::ExitCode;

use cachetool::units;

use crate::output::{json, Table};
use crate::session::{entries, Fail, Result};

pub fn run(dir: &Path, last: u32, as_json: bool) -> Result<ExitCode> {
    let (ix, _, _, _) = entries(dir, as_json)?;
    let runs = ix.runs(last).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    if as_json {
        json(&runs);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs recorded in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let now = cachetool::now();
    let mut t = Table::new(&["WHEN", "STATUS", "TIME", "PROCS", "HIT RATE", "COMMAND"]);
    for r in &runs {
        t.row(vec![
            units::human_age(Some(r.time), now),
            r.exit_status.clone(),
            format!("{:.2} s", r.duration_ms as f64 / 1000.0),
            r.processes.to_string(),
            r.hit_rate.map_or("-".to_string(), |h| format!("{:.1}%", h * 100.0)),
            r.command.clone(),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}
