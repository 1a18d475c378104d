//! Built-in instrumentation clients, chosen with `dbirun -c NAME [options]`.
//! Each is a module; [`create`] makes one from its name and options.
#![no_std]

extern crate alloc;

mod bbcount;
mod block_counters;
mod drcov;
mod inscount;
mod instrace;
mod memtrace;
mod null;
mod opcodes;
mod options;
mod report;
mod trace_buffer;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

pub use dbi_client_api as api;

/// Names `dbirun -c NAME` accepts.
pub const BUILT_IN: &[&str] = &["null", "inscount", "bbcount", "opcodes", "drcov", "instrace", "memtrace"];

/// The client `name` with `options`, or a one-line reason it cannot run.
pub fn create(name: &str, options: &[&str]) -> Result<Box<dyn api::Client>, String> {
    let client: Box<dyn api::Client> = match name {
        "null" => Box::new(null::Null::new(options)?),
        "inscount" => Box::new(inscount::InsCount::new(options)?),
        "bbcount" => Box::new(bbcount::BbCount::new(options)?),
        "opcodes" => Box::new(opcodes::Opcodes::new(options)?),
        "drcov" => Box::new(drcov::Drcov::new(options)?),
        "instrace" => Box::new(instrace::InsTrace::new(options)?),
        "memtrace" => Box::new(memtrace::MemTrace::new(options)?),
        _ => return Err(format!("unknown client '{name}' (available: {})", BUILT_IN.join(", "))),
    };
    Ok(client)
}
