//! Printing for people: aligned tables, bar charts, and the inspect views;
//! and JSON for scripts.

use cachetool::cache_file::Status;
use cachetool::inspect::{BlockInfo, Disassembly, Inspection, Line, TraceInfo};
use cachetool::units::human_size;

pub fn json<T: serde::Serialize + ?Sized>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("plain data serialises"));
}

/// Columns padded to their widest cell (the last one is not padded).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|s| s.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Shortens the first column's cells (keeping their ends: a path's
    /// file name) so that rows fit `budget` characters.
    pub fn fit_first_column(&mut self, budget: usize) {
        let cols = self.rows[0].len();
        let width = |c: usize| self.rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
        let others: usize = (1..cols).map(|c| width(c) + 2).sum();
        let room = budget.saturating_sub(others).max(16);
        for r in self.rows.iter_mut().skip(1) {
            let n = r[0].chars().count();
            if n > room {
                r[0] = format!("…{}", r[0].chars().skip(n - room + 1).collect::<String>());
            }
        }
    }

    pub fn print(&self) {
        let cols = self.rows[0].len();
        let width: Vec<usize> = (0..cols).map(|c| self.rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == cols {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = width[c]));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// A bar `width` cells wide filled to `frac` (eighths of a cell).
pub fn bar(frac: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (frac.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut s: String = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    let used = s.chars().count();
    s.push_str(&"·".repeat(width - used));
    s
}

pub fn print_inspection(i: &Inspection, status: &Status) {
    let s = &i.summary;
    let id = s.module_identity;
    println!("file:             {}", i.file);
    println!("size:             {} ({})", i.size, human_size(i.size));
    println!("format version:   {}", s.format_version);
    println!("status:           {}", status.describe());
    println!("module:           {}", s.module_path);
    println!("  content hash:   {}", s.module_hash);
    println!(
        "  identity:       dev {} inode {} size {} mtime {}.{:09} ctime {}.{:09}",
        id[0],
        id[1],
        id[2],
        id[3] / 1_000_000_000,
        id[3] % 1_000_000_000,
        id[4] / 1_000_000_000,
        id[4] % 1_000_000_000
    );
    let same = if s.runtime_version == cachetool::RUNTIME_VERSION { "this build" } else { "not this build" };
    println!("runtime version:  {:08x} ({same}: {:08x})", s.runtime_version, cachetool::RUNTIME_VERSION);
    println!("tls layout hash:  {}", s.tls_layout_hash);
    println!("options hash:     {}", s.options_hash);
    if s.clients.is_empty() {
        println!("clients:          none");
    } else {
        println!("clients:");
        for c in &s.clients {
            println!(
                "  {} version {} options {}: data ro {} B, rw {} B, rx {} B; {} per-block data items",
                c.name, c.version, c.options_hash, c.ro_bytes, c.rw_bytes, c.rx_bytes, c.block_data_items
            );
        }
    }
    println!("zones:            {}", i.zones.len());
    let mut t = Table::new(&["  #", "KIND", "OFFSET", "SIZE", "PROTECTION", "CHECKSUM"]);
    for z in &i.zones {
        t.row(vec![
            format!("  {}", z.index),
            z.kind.to_string(),
            format!("{:#x}", z.offset),
            format!("{:#x}", z.size),
            z.protection.to_string(),
            z.checksum.to_string(),
        ]);
    }
    t.print();
    println!("segments:         {}", s.segments);
    println!("blocks:           {} ({} from runs, {} ahead of time)", s.blocks, s.blocks - s.ahead_of_time_blocks, s.ahead_of_time_blocks);
    println!("lookup targets:   {} (entered in the lookup table at load)", s.lookup_targets);
    println!("cold loop heads:  {} (not counted by runs with traces)", s.cold_heads);
    println!("traces:           {} (holding {} blocks)", s.traces, s.trace_blocks);
    println!("exits:            {}", s.exits);
    println!("counting stubs:   {} (loops' heads their exits count in the file)", s.counting_stubs);
    println!("translations:     {} bytes", s.translation_bytes);
}

pub fn print_blocks(blocks: &[BlockInfo]) {
    println!();
    let mut t = Table::new(&["MODULE OFFSET", "APP SIZE", "SEGMENT", "CODE OFFSET", "CODE SIZE", "FROM", "EXITS"]);
    for b in blocks {
        let exits = if b.exits.is_empty() {
            "-".to_string()
        } else {
            b.exits.iter().map(|e| format!("{e:#x}")).collect::<Vec<_>>().join(" ")
        };
        t.row(vec![
            format!("{:#x}", b.module_offset),
            b.app_size.to_string(),
            b.segment.to_string(),
            format!("{:#x}", b.code_offset),
            b.code_size.to_string(),
            if b.ahead_of_time { "aot" } else { "run" }.to_string(),
            exits,
        ]);
    }
    t.print();
}

pub fn print_traces(traces: &[TraceInfo]) {
    println!();
    let mut t = Table::new(&["HEAD", "SEGMENT", "CODE OFFSET", "CODE SIZE", "MISS BUDGET", "BLOCKS", "EXITS"]);
    let offsets = |o: &mut dyn Iterator<Item = String>| {
        let all: Vec<String> = o.collect();
        if all.is_empty() { "-".to_string() } else { all.join(" ") }
    };
    for tr in traces {
        t.row(vec![
            format!("{:#x}", tr.head),
            tr.segment.to_string(),
            format!("{:#x}", tr.code_offset),
            tr.code_size.to_string(),
            tr.budget.map_or_else(|| "-".to_string(), |b| b.to_string()),
            offsets(&mut tr.blocks.iter().map(|b| format!("{b:#x}"))),
            offsets(&mut tr.exits.iter().map(|e| format!("{e:#x}"))),
        ]);
    }
    t.print();
}

fn print_lines(lines: &[Line]) {
    for l in lines {
        println!("  {:>10x}  {:<24} {}", l.address, l.bytes, l.text);
    }
}

pub fn print_disasm(d: &Disassembly) {
    println!();
    match (d.app_file_offset, &d.app_error) {
        (Some(off), _) => println!(
            "app code: {} at module offset {:#x} (file offset {off:#x}), {} bytes",
            d.module, d.module_offset, d.app_size
        ),
        (None, Some(e)) => println!("app code: {e}"),
        (None, None) => {}
    }
    print_lines(&d.app_code);
    println!();
    println!("persisted code: zone {} at file offset {:#x}, {} instructions", d.cache_zone, d.cache_file_offset, d.cache_code.len());
    print_lines(&d.cache_code);
}

/// One line per file: `VERB NAME (MODULE)` for `taken`, `skipped NAME:
/// WHY` for `skipped`.
pub fn print_taken_and_skipped(verb: &str, taken: &[(String, String)], skipped: &[(String, String)]) {
    for (n, m) in taken {
        println!("{verb} {n} ({m})");
    }
    for (n, why) in skipped {
        println!("skipped {n}: {why}");
    }
}

/// A command's report as JSON, with its error if it stopped on one.
pub fn json_report(report: &impl serde::Serialize, error: Option<&dyn std::fmt::Display>) {
    json(&serde_json::json!({ "report": report, "error": error.map(|e| e.to_string()) }));
}
