//! One module per subcommand; each prints its results (a table, or JSON).

pub mod list;
pub mod inspect;
pub mod verify;
pub mod prune;
pub mod stats;
pub mod runs;
pub mod export;
pub mod import;
pub mod push;
pub mod pull;
pub mod keygen;
pub mod rebuild_index;
pub mod config;
pub mod server;
pub mod aot;
