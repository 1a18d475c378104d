//! `rebuild-index`: the index recreated from the files.

use std::path::Path;
use std::process::ExitCode;

use cachetool::index::Index;

use crate::output::json;
use crate::session::{existing_dir, Fail, Result};

pub fn run(dir: &Path, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let (ix, why) = Index::rebuild(dir).map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let files = ix.entries().map_err(|e| Fail(e.to_string()))?.len();
    let runs = ix.run_count().unwrap_or(0);
    if as_json {
        json(&serde_json::json!({ "cache_files": files, "runs_kept": runs, "was_corrupt": why }));
    } else {
        if let Some(why) = why {
            println!("the old index was corrupt ({why}); set aside as index.sqlite.corrupt");
        }
        println!("rebuilt the index from {files} cache files ({runs} recorded runs kept)");
    }
    Ok(ExitCode::SUCCESS)
}
