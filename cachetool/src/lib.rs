//! The persisted-cache tools: the SQLite index of a cache directory
//! (`index.sqlite`, recorded by `dbirun` after each `-persist` run and
//! read by `cachetool`), and what `cachetool`'s commands do with the
//! `.dpc` files. The files are the truth: the index only remembers what
//! they cannot say (when each was used, the runs' hit counts) and is
//! rebuilt from them when missing or corrupt. The runtime never opens it.
//!
//! - [`cache_dir`]: where the files live (`<base>/<uid>`), shared with `dbirun`.
//! - [`cache_file`]: naming, reading and judging one `.dpc` file.
//! - [`module_file`]: the module a file was made from (identity, content
//!   hash, ELF file offsets).
//! - [`lock`]: the `.lock` beside each file, taken without waiting.
//! - [`index`]: the SQLite index (schema and migrations, syncing it with
//!   the files, recording runs, reading it back).
//! - [`run_report`]: the report the runtime processes of a run append.
//! - [`inspect`], [`prune`], [`bundle`]: the commands' work, without output.
//! - [`history`]: what the files say ran before, by configuration, for
//!   `aot --from-index`.
//! - [`units`]: sizes and ages as people write them.

pub mod aot_runner;
pub mod bundle;
pub mod cache_dir;
pub mod cache_file;
pub mod config;
pub mod deep_check;
pub mod history;
pub mod incoming;
pub mod index;
pub mod inspect;
pub mod lock;
pub mod module_file;
pub mod program_libraries;
pub mod prune;
pub mod pull;
pub mod push;
pub mod run_report;
pub mod server_start;
pub mod units;

/// The runtime version this build writes into keys (the same hash of the
/// runtime's sources `runtime/build.rs` computes).
pub const RUNTIME_VERSION: u32 = match u32::from_str_radix(env!("DBI_RUNTIME_VERSION"), 16) {
    Ok(v) => v,
    Err(_) => 0,
};

/// The `.dpc` format version this build reads and writes.
pub const FORMAT_VERSION: u32 = persist::FORMAT_VERSION;

/// The index's file name in the per-user directory.
pub const INDEX_FILE: &str = "index.sqlite";

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub use persist::hex;

/// The program `name` installed (and built) beside the running one:
/// dbirun, cachetool and dbicached find each other this way.
pub fn beside_this_program(name: &str) -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let beside = exe.with_file_name(name);
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!("{name} not found beside {}", exe.display()))
    }
}
