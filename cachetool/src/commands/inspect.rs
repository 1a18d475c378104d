//! `inspect`: one file in detail: header, key, zones, client data, blocks, traces, a disassembled block.

use std::path::Path;
use std::process::ExitCode;

use cachetool::cache_file::{self, Status};
use cachetool::index::FileEntry;
use cachetool::inspect::Opened;
use cachetool::module_file::Modules;

use crate::output::json;
use crate::session::{entries, fail, Fail, Result};

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok() && &magic == b"\x7fELF"
}

pub fn run(dir: &Path, what: &str, blocks: bool, traces: bool, disasm: Option<u64>, as_json: bool) -> Result<ExitCode> {
    let (entries, mut modules) = if dir.is_dir() {
        let (_ix, entries, _, modules) = entries(dir, true)?;
        (entries, modules)
    } else {
        (Vec::new(), Modules::default())
    };
    let files = cachetool::inspect::resolve(dir, what, &entries);
    if files.is_empty() {
        let near = cachetool::inspect::near_matches(what, &entries);
        let hint = if near.is_empty() { String::new() } else { format!(" (modules with caches: {})", near.join(", ")) };
        return if is_elf(Path::new(what)) {
            fail(format_args!("{what}: no cache for this module in {}{hint}", dir.display()))
        } else if Path::new(what).is_file() {
            fail(format_args!("{what}: not a cache file, nor a module with a cache in {}", dir.display()))
        } else {
            fail(format_args!("{what}: no such cache file or module in {}{hint}", dir.display()))
        };
    }
    let mut out = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let opened = Opened::open(path).map_err(Fail)?;
        let ins = opened.inspection();
        let meta = std::fs::metadata(path).map_err(|e| Fail(format!("{}: {e}", path.display())))?;
        let mut entry = FileEntry::from_read(&path.file_name().unwrap_or_default().to_string_lossy(), cachetool::module_file::Identity::of(&meta), &Ok(ins.summary.clone()));
        entry.ownership = cache_file::ownership_problem(&meta);
        let mut status = entry.status(&mut modules);
        if !ins.checksums_ok {
            status = Status::Corrupt("zone checksum".into());
        }
        let block_list = blocks.then(|| opened.blocks());
        let trace_list = traces.then(|| opened.traces());
        let dis = match disasm {
            Some(off) => Some(opened.disasm(off).map_err(Fail)?),
            None => None,
        };
        if as_json {
            out.push(serde_json::json!({ "inspection": ins, "status": status.name(), "status_detail": status.describe(), "blocks": block_list, "traces": trace_list, "disasm": dis }));
            continue;
        }
        if i > 0 {
            println!();
        }
        crate::output::print_inspection(&ins, &status);
        if let Some(b) = &block_list {
            crate::output::print_blocks(b);
        }
        if let Some(t) = &trace_list {
            crate::output::print_traces(t);
        }
        if let Some(d) = &dis {
            crate::output::print_disasm(d);
        }
    }
    if as_json {
        json(&out);
    }
    Ok(ExitCode::SUCCESS)
}
