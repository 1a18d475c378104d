//! The run report: every runtime process of a `-persist` run (forks and
//! exec'd children included) appends what it did with the persisted
//! caches to one file (`-persist_report`, named by
//! [`crate::cache_dir::report_name`]); `dbirun` reads it once the app has
//! exited and records it in the cache index. The runtime writes the lines
//! with [`Event::line`] and [`Counters::line`]; the tools read them with
//! [`parse`]: one grammar for both.
//!
//! Lines: `used FILE BLOCKS`, `built FILE BLOCKS`, `rejected FILE
//! REASON...`, `wrote FILE BLOCKS`, and `process PID.IMAGE key=value...`
//! with a process image's counters so far (an image may report more than
//! once, e.g. before an exec that fails: its last line counts). With
//! `-stats`, each image also appends `stats PID.IMAGE PROGRAM key=value...`
//! ([`StatsLine`], fields [`STATS_FIELDS`]), which dbirun sums into one
//! summary for the whole process tree; clients' lines for the user are
//! `summary PID PROGRAM CLIENT TEXT...` ([`SummaryLine`]).
//!
//! When dbirun cannot record the run promptly (the index is locked), it
//! appends the run's own facts with [`RunEnd::lines`] (`ended TIME
//! DURATION_MS STATUS...` and `command TEXT`) and leaves the report as a
//! pending one ([`crate::cache_dir::pending_report_name`]) for the next
//! writer of the index to record.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One thing a process did with a cache file (named by its file name).
pub enum Event<'a> {
    /// Taken into use, bringing `blocks` blocks.
    Used { file: &'a str, blocks: usize },
    /// `blocks` blocks of the file's module built afresh.
    Built { file: &'a str, blocks: usize },
    Rejected { file: &'a str, reason: &'a str },
    /// Written, holding `blocks` blocks.
    Wrote { file: &'a str, blocks: usize },
}

impl Event<'_> {
    pub fn line(&self) -> String {
        match self {
            Event::Used { file, blocks } => format!("used {file} {blocks}\n"),
            Event::Built { file, blocks } => format!("built {file} {blocks}\n"),
            Event::Rejected { file, reason } => format!("rejected {file} {reason}\n"),
            Event::Wrote { file, blocks } => format!("wrote {file} {blocks}\n"),
        }
    }
}

/// A process image's counters, reported with [`Counters::line`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub blocks_built: u64,
    pub blocks_loaded: u64,
    pub files_loaded: u64,
    pub files_rejected: u64,
    pub files_written: u64,
    pub blocks_persisted: u64,
}

impl Counters {
    /// The `process` line of image `image` of process `pid`.
    pub fn line(&self, pid: i64, image: u64) -> String {
        format!(
            "process {pid}.{image:016x} blocks_built={} blocks_loaded={} files_loaded={} files_rejected={} files_written={} blocks_persisted={}\n",
            self.blocks_built, self.blocks_loaded, self.files_loaded, self.files_rejected, self.files_written, self.blocks_persisted,
        )
    }
}

/// The `-stats` counters, in the order they are printed: the key a stats
/// line uses and the label dbirun prints. Keys ending in `_ns` are times,
/// printed in milliseconds. The persistence counters (from
/// `blocks_loaded` on) are there only with `-persist`.
pub const STATS_FIELDS: &[(&str, &str)] = &[
    ("blocks_built", "blocks built"),
    ("code_cache_bytes", "code cache bytes"),
    ("runtime_heap_peak_bytes", "runtime heap at most"),
    ("dispatcher_entries", "dispatcher entries"),
    ("indirect_lookups", "indirect lookups"),
    ("indirect_lookup_misses", "indirect lookup misses"),
    ("links_made", "links made"),
    ("predicted_calls", "predicted-return calls"),
    ("blocks_flushed", "blocks flushed"),
    ("retired_freed", "flushed blocks freed"),
    ("system_calls", "system calls"),
    ("translation_ns", "translation time"),
    ("traces_built", "traces built"),
    ("trace_blocks", "blocks in traces"),
    ("traces_stale", "traces recorded afresh"),
    ("traces_loaded", "traces loaded"),
    ("traces_adopted", "traces taken into use"),
    ("heads_counted", "loop heads counted"),
    ("blocks_loaded", "blocks loaded"),
    ("blocks_registered", "blocks registered"),
    ("lookup_targets_loaded", "lookup entries loaded"),
    ("file_lookups", "lookups in loaded files"),
    ("slot_pages_rebased", "slot pages rebased"),
    ("aot_blocks_loaded", "AOT blocks loaded"),
    ("aot_blocks_registered", "AOT blocks used"),
    ("cache_files_loaded", "cache files loaded"),
    ("cache_files_rejected", "cache files rejected"),
    ("modules_hashed", "modules hashed"),
    ("cache_bytes_mapped", "cache bytes mapped"),
    ("load_ns", "load time"),
    ("cache_files_written", "cache files written"),
    ("blocks_persisted", "blocks persisted"),
    ("persist_ns", "persist time"),
];

/// A process image's `-stats` counters, as it reports them.
pub struct StatsLine<'a> {
    pub pid: i64,
    pub image: u64,
    /// The program the image runs (its file name).
    pub program: &'a str,
    /// (key, value) for the [`STATS_FIELDS`] it has.
    pub values: &'a [(&'a str, u64)],
    /// Cache files not used, by reason.
    pub rejected: &'a [(&'a str, u64)],
}

impl StatsLine<'_> {
    pub fn line(&self) -> String {
        let program: String = self.program.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
        let mut out = format!("stats {}.{:016x} {}", self.pid, self.image, if program.is_empty() { "?" } else { &program });
        for (k, v) in self.values {
            out.push_str(&format!(" {k}={v}"));
        }
        for (reason, n) in self.rejected {
            out.push_str(&format!(" rejected:{}={n}", reason.replace(' ', "_")));
        }
        out.push('\n');
        out
    }
}

/// A client's line for the user (`summary PID PROGRAM CLIENT TEXT...`).
pub struct SummaryLine<'a> {
    pub pid: i64,
    pub program: &'a str,
    pub client: &'a str,
    pub text: &'a str,
}

fn one_word(s: &str) -> String {
    let w: String = s.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    if w.is_empty() { "?".into() } else { w }
}

impl SummaryLine<'_> {
    pub fn line(&self) -> String {
        let text: String = self.text.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
        format!("summary {} {} {} {text}\n", self.pid, one_word(self.program), one_word(self.client))
    }
}

/// A client's summary line, read back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub pid: i64,
    pub program: String,
    pub client: String,
    pub text: String,
}

/// One process image's `-stats` counters, read back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcessStats {
    pub pid: i64,
    pub program: String,
    pub values: BTreeMap<String, u64>,
    pub rejected: Vec<(String, u64)>,
}

/// What dbirun knows of a run beyond the runtime's lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// Unix seconds when it ended.
    pub time: i64,
    pub duration_ms: u64,
    /// `exit N` or `signal NAME`.
    pub exit_status: String,
    /// The command line, as a shell would need it.
    pub command: String,
}

impl RunEnd {
    pub fn lines(&self) -> String {
        format!("ended {} {} {}\n{}", self.time, self.duration_ms, self.exit_status, command_line(&self.command))
    }
}

/// A command line as a shell would need it to run it again: each word
/// (bytes as the app got them, shown lossily as UTF-8) quoted where it
/// holds anything but plain characters. Both launchers (`dbirun` and
/// its libc-free front) name runs with it.
pub fn quoted_command<'a>(words: impl IntoIterator<Item = &'a [u8]>) -> String {
    let quoted: Vec<String> = words
        .into_iter()
        .map(|w| {
            let s = String::from_utf8_lossy(w);
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

/// The `command` line of a report: written when the run starts too, so
/// a run whose process was killed before it could write its end is still
/// recorded under its command.
pub fn command_line(command: &str) -> String {
    // One line: a command's newlines (inside quotes) are escaped.
    format!("command {}\n", command.replace('\\', "\\\\").replace('\n', "\\n"))
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The run's end as dbirun wrote it (pending reports only).
    pub ended: Option<RunEnd>,
    /// Each process image's `-stats` counters (its last line), in the order
    /// the images first reported.
    pub stats: Vec<ProcessStats>,
    /// The clients' lines for the user, in report order.
    pub summaries: Vec<Summary>,
    /// Runtime process images that reported.
    pub processes: u64,
    pub blocks_built: u64,
    pub blocks_loaded: u64,
    pub files_loaded: u64,
    pub files_rejected: u64,
    pub files_written: u64,
    pub blocks_persisted: u64,
    /// Cache file names used (with the blocks they brought), rejected
    /// (with the reason), written (with the blocks the file then held), and
    /// the blocks built afresh for each module (named by its cache file),
    /// in report order.
    pub used: Vec<String>,
    pub used_blocks: Vec<(String, u64)>,
    pub rejected: Vec<(String, String)>,
    pub wrote: Vec<(String, u64)>,
    pub built: Vec<(String, u64)>,
}

/// Parses a report; unknown or malformed lines are skipped.
pub fn parse(text: &str) -> RunReport {
    let mut r = RunReport::default();
    let mut images: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut stats_images: Vec<&str> = Vec::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("used"), Some(file)) => {
                r.used.push(file.to_string());
                if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                    r.used_blocks.push((file.to_string(), n));
                }
            }
            (Some("built"), Some(file)) => {
                r.built.push((file.to_string(), words.next().and_then(|n| n.parse().ok()).unwrap_or(0)))
            }
            (Some("rejected"), Some(file)) => r.rejected.push((file.to_string(), words.collect::<Vec<_>>().join(" "))),
            (Some("wrote"), Some(file)) => {
                r.wrote.push((file.to_string(), words.next().and_then(|n| n.parse().ok()).unwrap_or(0)))
            }
            (Some("ended"), Some(time)) => {
                let end = r.ended.get_or_insert_with(RunEnd::default);
                end.time = time.parse().unwrap_or(0);
                end.duration_ms = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                end.exit_status = words.collect::<Vec<_>>().join(" ");
            }
            (Some("command"), Some(_)) => {
                let end = r.ended.get_or_insert_with(RunEnd::default);
                end.command = unescape(&line["command ".len()..]);
            }
            (Some("summary"), Some(pid)) => {
                let (program, client) = (words.next().unwrap_or("?"), words.next().unwrap_or("?"));
                r.summaries.push(Summary {
                    pid: pid.parse().unwrap_or(0),
                    program: program.to_string(),
                    client: client.to_string(),
                    text: words.collect::<Vec<_>>().join(" "),
                });
            }
            (Some("stats"), Some(image)) => {
                let mut p = ProcessStats { pid: image.split('.').next().and_then(|p| p.parse().ok()).unwrap_or(0), ..Default::default() };
                p.program = words.next().unwrap_or("?").to_string();
                for (k, v) in words.filter_map(|kv| kv.split_once('=')) {
                    let Ok(v) = v.parse() else { continue };
                    match k.strip_prefix("rejected:") {
                        Some(reason) => p.rejected.push((reason.replace('_', " "), v)),
                        None => {
                            p.values.insert(k.to_string(), v);
                        }
                    }
                }
                match stats_images.iter().position(|i| *i == image) {
                    Some(at) => r.stats[at] = p,
                    None => {
                        stats_images.push(image);
                        r.stats.push(p);
                    }
                }
            }
            (Some("process"), Some(image)) => {
                let counters = words.filter_map(|kv| kv.split_once('=')).filter_map(|(k, v)| Some((k, v.parse().ok()?)));
                images.insert(image, counters.collect());
            }
            _ => {}
        }
    }
    r.processes = images.len() as u64;
    for counters in images.values() {
        let get = |k: &str| counters.get(k).copied().unwrap_or(0);
        r.blocks_built += get("blocks_built");
        r.blocks_loaded += get("blocks_loaded");
        r.files_loaded += get("files_loaded");
        r.files_rejected += get("files_rejected");
        r.files_written += get("files_written");
        r.blocks_persisted += get("blocks_persisted");
    }
    r
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_parse_back_and_the_last_of_an_image_counts() {
        let first = StatsLine { pid: 7, image: 0xa, program: "my prog", values: &[("blocks_built", 3)], rejected: &[] }.line();
        let last = StatsLine {
            pid: 7,
            image: 0xa,
            program: "my prog",
            values: &[("blocks_built", 5), ("indirect_lookups", 9)],
            rejected: &[("module changed", 2)],
        }
        .line();
        let other = StatsLine { pid: 8, image: 0xb, program: "ls", values: &[("blocks_built", 1)], rejected: &[] }.line();
        let r = parse(&[first, other, last].concat());
        assert_eq!(r.stats.len(), 2);
        assert_eq!((r.stats[0].pid, r.stats[0].program.as_str()), (7, "my_prog"));
        assert_eq!(r.stats[0].values.get("blocks_built"), Some(&5));
        assert_eq!(r.stats[0].values.get("indirect_lookups"), Some(&9));
        assert_eq!(r.stats[0].rejected, [("module changed".to_string(), 2)]);
        assert_eq!(r.stats[1].program, "ls");
        assert!(STATS_FIELDS.iter().all(|(k, _)| !k.contains(' ') && !k.contains('=')));
    }

    #[test]
    fn summaries_parse_back() {
        let text = [
            SummaryLine { pid: 5, program: "my prog", client: "inscount", text: "12 instructions executed" }.line(),
            SummaryLine { pid: 6, program: "ls", client: "inscount", text: "a\nb" }.line(),
        ]
        .concat();
        let r = parse(&text);
        assert_eq!(r.summaries.len(), 2);
        assert_eq!(r.summaries[0], Summary { pid: 5, program: "my_prog".into(), client: "inscount".into(), text: "12 instructions executed".into() });
        assert_eq!(r.summaries[1].text, "a b");
    }

    #[test]
    fn a_run_end_parses_back() {
        let end = RunEnd { time: 1_700_000_000, duration_ms: 42, exit_status: "signal SIGSEGV".into(), command: "sh -c 'echo a\\b\nc'".into() };
        let text = [Event::Used { file: "a.dpc", blocks: 4 }.line(), end.lines()].concat();
        assert_eq!(text.lines().count(), 3);
        let r = parse(&text);
        assert_eq!(r.ended, Some(end));
        assert_eq!(r.used, ["a.dpc"]);
        assert_eq!(parse("used a.dpc 1\n").ended, None);
    }

    #[test]
    fn written_lines_parse_back() {
        let counters = Counters { blocks_built: 3, blocks_loaded: 4, files_loaded: 1, files_rejected: 0, files_written: 2, blocks_persisted: 9 };
        let text = [
            Event::Used { file: "a.dpc", blocks: 4 }.line(),
            Event::Built { file: "a.dpc", blocks: 3 }.line(),
            Event::Rejected { file: "b.dpc", reason: "module changed" }.line(),
            Event::Wrote { file: "a.dpc", blocks: 7 }.line(),
            counters.line(12, 0xab),
        ]
        .concat();
        let r = parse(&text);
        assert_eq!(r.processes, 1);
        assert_eq!((r.blocks_built, r.blocks_loaded, r.files_written, r.blocks_persisted), (3, 4, 2, 9));
        assert_eq!(r.used_blocks, [("a.dpc".to_string(), 4)]);
        assert_eq!(r.rejected, [("b.dpc".to_string(), "module changed".to_string())]);
        assert_eq!(r.wrote, [("a.dpc".to_string(), 7)]);
    }

    #[test]
    fn last_line_of_each_image_counts() {
        let r = parse(
            "used a.dpc 12\n\
             process 10.aa blocks_built=5 blocks_loaded=1 files_loaded=1\n\
             built a.dpc 5\n\
             rejected b.dpc module changed\n\
             process 10.aa blocks_built=7 blocks_loaded=2 files_loaded=1 files_rejected=1\n\
             wrote b.dpc 40\n\
             process 10.bb blocks_built=3 files_written=1 blocks_persisted=40\n\
             garbage line\n",
        );
        assert_eq!(r.processes, 2);
        assert_eq!((r.blocks_built, r.blocks_loaded, r.files_loaded, r.files_rejected), (10, 2, 1, 1));
        assert_eq!((r.files_written, r.blocks_persisted), (1, 40));
        assert_eq!(r.used, ["a.dpc"]);
        assert_eq!(r.used_blocks, [("a.dpc".to_string(), 12)]);
        assert_eq!(r.built, [("a.dpc".to_string(), 5)]);
        assert_eq!(r.rejected, [("b.dpc".to_string(), "module changed".to_string())]);
        assert_eq!(r.wrote, [("b.dpc".to_string(), 40)]);
    }
}
