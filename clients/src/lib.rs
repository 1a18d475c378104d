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

/// The clients that also print a summary on dbirun's stderr once the app
/// has ended (`Services::summary`): dbirun waits for the app only when one
/// of them, or `-stats`, is in the run; the others write files, and dbirun
/// execs the runtime in its own process as for a run without clients.
pub const SUMMARIZING: &[&str] = &["inscount"];

/// What each built-in client does and the options it takes (option,
/// what it does), for `dbirun -help` and `dbirun -c NAME -help`.
pub const HELP: &[(&str, &str, &[(&str, &str)])] = &[
    ("null", "instruments nothing (the runtime's own cost)", &[]),
    ("inscount", "counts the instructions executed; writes the total to inscount.<app>.<pid>.log", &[("-only_from_app", "count only the program's own code, not its libraries")]),
    ("bbcount", "counts each basic block's executions; writes the most executed", &[("-top N", "how many blocks the report lists (default 20; the code is the same for any N)")]),
    ("opcodes", "counts executed instructions by opcode", &[]),
    ("drcov", "records which basic blocks ran, in DynamoRIO's drcov format", &[("-format_version N", "3 (DynamoRIO's current format, the default) or 2 (the older one)")]),
    ("instrace", "traces every executed instruction (pc, opcode) per thread", &[("-binary", "write 16-byte records instead of text lines")]),
    ("memtrace", "traces every memory access (pc, address, size, read/write) per thread", &[]),
];

/// The help text of client `name`, if there is one.
pub fn help(name: &str) -> Option<String> {
    let (_, what, options) = HELP.iter().find(|(n, _, _)| *n == name)?;
    let mut text = format!("client {name}: {what}\n");
    if options.is_empty() {
        text.push_str("options: none\n");
    } else {
        text.push_str("options:\n");
        for (option, does) in options.iter() {
            text.push_str(&format!("  {option:<16} {does}\n"));
        }
    }
    Some(text)
}

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
