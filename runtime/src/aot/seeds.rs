//! Seeds for translating ahead of time from history (`-aot_seeds FILE`,
//! written by `cachetool aot --from-index`): the modules to translate and,
//! for each, the module offsets of the blocks earlier runs built (read
//! from its older cache files), so the new files cover exactly what ran
//! before, plus what static discovery finds.
//!
//! The file is text, one module per line: its path (absolute, or
//! `[vdso]` for the vDSO this process has), a tab, and the
//! offsets in hexadecimal separated by commas. A module's traces to build
//! again (for the deep check of a file holding them) follow on lines of
//! their own: its path, a tab, `trace:`, `1` if the trace counts its
//! missed in-line checks else `0`, `:`, and its blocks' offsets, head
//! first. A line `exact` asks for the seeded blocks and traces alone,
//! without discovery (the deep check needs those only). A line that does
//! not parse is skipped (the tool wrote it; a bad one costs blocks, not
//! correctness).

use alloc::vec::Vec;

use crate::os::startup_args::CStr;

pub(crate) struct Seeds {
    pub(crate) modules: Vec<(Vec<u8>, Vec<u32>)>,
    pub(crate) traces: Vec<(Vec<u8>, SeededTrace)>,
    /// Translate the seeded blocks alone, discovering nothing.
    pub(crate) exact: bool,
}

/// A trace to build again: its blocks' module offsets, head first, and
/// whether it counts its missed in-line checks.
pub(crate) struct SeededTrace {
    pub(crate) counts_misses: bool,
    pub(crate) blocks: Vec<u32>,
}

impl Seeds {
    /// The offsets seeded for the module at `path`, if it is one of them.
    pub(crate) fn offsets_of(&self, path: &CStr) -> Option<&[u32]> {
        self.modules.iter().find(|(p, _)| p.as_slice() == path.as_bytes()).map(|(_, o)| o.as_slice())
    }

    /// The traces seeded for the module at `path`.
    pub(crate) fn traces_of<'a>(&'a self, path: &'a CStr) -> impl Iterator<Item = &'a SeededTrace> {
        self.traces.iter().filter(move |(p, _)| p.as_slice() == path.as_bytes()).map(|(_, t)| t)
    }
}

/// The longest seed file read (a module of a million blocks is 9 MB).
const MAX_LEN: u64 = 256 << 20;

/// The seeds in the file `path`, or None if it cannot be read.
pub(crate) fn read(path: &CStr) -> Option<Seeds> {
    crate::os::mapped_file::read_mapped(path, MAX_LEN, parse)
}

fn parse(text: &[u8]) -> Seeds {
    let mut modules = Vec::new();
    let mut traces = Vec::new();
    let mut exact = false;
    for line in text.split(|&c| c == b'\n') {
        if line == b"exact" {
            exact = true;
            continue;
        }
        let Some(tab) = line.iter().position(|&c| c == b'\t') else { continue };
        let (path, list) = (&line[..tab], &line[tab + 1..]);
        // An absolute path, or the vDSO (mapped in every process).
        if (path.first() != Some(&b'/') && path != persist::vdso::PATH.as_bytes()) || path.contains(&0) {
            continue;
        }
        if let Some(trace) = list.strip_prefix(b"trace:") {
            let counts_misses = match trace.get(..2) {
                Some(b"1:") => true,
                Some(b"0:") => false,
                _ => continue,
            };
            match offsets(&trace[2..]) {
                Some(blocks) if !blocks.is_empty() => traces.push((path.to_vec(), SeededTrace { counts_misses, blocks })),
                _ => continue,
            }
        } else if let Some(offsets) = offsets(list) {
            modules.push((path.to_vec(), offsets));
        }
    }
    Seeds { modules, traces, exact }
}

fn offsets(list: &[u8]) -> Option<Vec<u32>> {
    list.split(|&c| c == b',').filter(|w| !w.is_empty()).map(hex).collect()
}

fn hex(word: &[u8]) -> Option<u32> {
    if word.len() > 8 {
        return None;
    }
    word.iter().try_fold(0u32, |v, &c| Some(v << 4 | (c as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_do_not_parse_are_skipped() {
        let s = parse(b"/lib/a.so\t10,2f,ffffffff\nnot a path\t1\n/lib/b.so\t1,zz\n/lib/c.so\t\n\n/lib/d\t123456789\n[vdso]\t1c\n[vvar]\t1\n");
        assert_eq!(s.modules.len(), 3);
        assert_eq!(s.modules[0], (b"/lib/a.so".to_vec(), alloc::vec![0x10, 0x2f, 0xffff_ffff]));
        assert_eq!(s.modules[1], (b"/lib/c.so".to_vec(), alloc::vec![]));
        assert_eq!(s.modules[2], (b"[vdso]".to_vec(), alloc::vec![0x1c]));
    }

    #[test]
    fn trace_lines() {
        let s = parse(b"/lib/a.so\t10\n/lib/a.so\ttrace:1:10,20,18\n/lib/a.so\ttrace:0:30\n/lib/a.so\ttrace:2:30\n/lib/a.so\ttrace:1:\n");
        assert_eq!(s.modules, alloc::vec![(b"/lib/a.so".to_vec(), alloc::vec![0x10])]);
        assert!(!s.exact && parse(b"exact\n/lib/a.so\t10\n").exact);
        assert_eq!(s.traces.len(), 2);
        assert!(s.traces[0].1.counts_misses && s.traces[0].1.blocks == alloc::vec![0x10, 0x20, 0x18]);
        assert!(!s.traces[1].1.counts_misses && s.traces[1].1.blocks == alloc::vec![0x30]);
    }
}
