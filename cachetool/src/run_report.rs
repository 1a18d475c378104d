//! The run report's grammar lives with the format, in
//! `persist::run_report` (the runtime writes what the tools read).

pub use persist::run_report::{parse, RunReport};
