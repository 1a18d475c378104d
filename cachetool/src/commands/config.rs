//! `config [KEY [VALUE]]`: the cache directory's settings (`config.rs` in
//! the library): with no argument all of them, with a key its value, with
//! a value sets it (`none` clears it).

use std::path::Path;
use std::process::ExitCode;

use cachetool::config::Config;

use crate::output::json;
use crate::session::{existing_dir, fail, Fail, Result};

pub fn run(dir: &Path, key: Option<&str>, value: Option<&str>, as_json: bool) -> Result<ExitCode> {
    existing_dir(dir)?;
    let mut config = Config::load(dir);
    match (key, value) {
        (Some(k), Some(v)) => {
            config.set(k, v).map_err(Fail)?;
            config.save(dir).map_err(|e| Fail(format!("{}: {e}", dir.join(cachetool::config::FILE).display())))?;
        }
        (Some(k), None) if !cachetool::config::KEYS.contains(&k) => {
            return fail(format_args!("unknown setting '{k}' (settings: {})", cachetool::config::KEYS.join(", ")));
        }
        _ => {}
    }
    let max_size = config.max_size.map(cachetool::units::human_size_exact);
    if as_json {
        json(&serde_json::json!({ "max-size": max_size }));
    } else {
        println!("max-size = {}", max_size.as_deref().unwrap_or("none"));
    }
    Ok(ExitCode::SUCCESS)
}
