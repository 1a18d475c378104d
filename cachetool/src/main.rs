//! `cachetool`: the command line over the persisted-cache directory.
//!
//! The subcommands (inspect, verify, prune, export, import) arrive with the
//! cache-index issue; this shell only reports the format it understands.
use clap::Parser;

#[derive(Parser)]
#[command(name = "cachetool", version, about = "Manage dbirun's persisted code caches")]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!(
        "cachetool: no subcommands yet (.{} format version {})",
        persist::FILE_EXTENSION,
        persist::FORMAT_VERSION
    );
    std::process::exit(2);
}
