//! `stats`: hit rates from the recorded runs.

use std::path::Path;
use std::process::ExitCode;

use cachetool::units;

use crate::output::{bar, json, Table};
use crate::session::{entries, Fail, Result};

pub fn run(dir: &Path, zero: bool, as_json: bool) -> Result<ExitCode> {
    let (mut ix, _, _, _) = entries(dir, as_json)?;
    if zero {
        let n = ix.zero_stats().map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
        if !as_json {
            println!("forgot {n} recorded runs");
        }
    }
    let s = ix.stats().map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let (temps, temp_bytes) = cachetool::prune::temporaries(dir);
    if as_json {
        let mut v = serde_json::to_value(&s).map_err(|e| Fail(e.to_string()))?;
        v["temporary_files"] = temps.into();
        v["temporary_bytes"] = temp_bytes.into();
        json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
    println!("runs recorded:   {}", s.runs);
    println!("blocks loaded:   {}", s.blocks_loaded);
    println!("blocks built:    {}", s.blocks_built);
    println!("hit rate:        {:>6}  {}", pct(s.hit_rate), bar(s.hit_rate.unwrap_or(0.0), 30));
    println!("files loaded:    {} (rejected {}, written {})", s.files_loaded, s.files_rejected, s.files_written);
    println!("cache files:     {} ({})", s.cache_files, units::human_size(s.total_size));
    if temps > 0 {
        println!("temporary files: {temps} ({}; prune removes those of processes that are gone)", units::human_size(temp_bytes));
    }
    if !s.modules.is_empty() {
        println!();
        println!("per module (blocks in the files runs used, against blocks runs built afresh):");
        let mut t = Table::new(&["MODULE", "RUNS", "USED", "WRITTEN", "CACHED", "BUILT", "HIT RATE", ""]);
        for m in &s.modules {
            t.row(vec![
                m.module.clone(),
                m.runs.to_string(),
                m.uses.to_string(),
                m.writes.to_string(),
                m.blocks_cached.to_string(),
                m.blocks_built.to_string(),
                pct(m.hit_rate),
                bar(m.hit_rate.unwrap_or(0.0), 20),
            ]);
        }
        t.print();
    }
    Ok(ExitCode::SUCCESS)
}
