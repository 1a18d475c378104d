//! Seeds for translating ahead of time from history (`-aot_seeds FILE`,
//! written by `cachetool aot --from-index`): the modules to translate and,
//! for each, the module offsets of the blocks earlier runs built (read
//! from its older cache files), so the new files cover exactly what ran
//! before, plus what static discovery finds.
//!
//! The file is text, one module per line: its path, a tab, and the
//! offsets in hexadecimal separated by commas. A line that does not parse
//! is skipped (the tool wrote it; a bad one costs blocks, not
//! correctness).

use alloc::vec::Vec;

use crate::os::startup_args::CStr;

pub(crate) struct Seeds {
    pub(crate) modules: Vec<(Vec<u8>, Vec<u32>)>,
}

impl Seeds {
    /// The offsets seeded for the module at `path`, if it is one of them.
    pub(crate) fn offsets_of(&self, path: &CStr) -> Option<&[u32]> {
        self.modules.iter().find(|(p, _)| p.as_slice() == path.as_bytes()).map(|(_, o)| o.as_slice())
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
    for line in text.split(|&c| c == b'\n') {
        let Some(tab) = line.iter().position(|&c| c == b'\t') else { continue };
        let (path, list) = (&line[..tab], &line[tab + 1..]);
        if path.first() != Some(&b'/') || path.contains(&0) {
            continue;
        }
        let offsets: Option<Vec<u32>> = list.split(|&c| c == b',').filter(|w| !w.is_empty()).map(hex).collect();
        if let Some(offsets) = offsets {
            modules.push((path.to_vec(), offsets));
        }
    }
    Seeds { modules }
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
        let s = parse(b"/lib/a.so\t10,2f,ffffffff\nnot a path\t1\n/lib/b.so\t1,zz\n/lib/c.so\t\n\n/lib/d\t123456789\n");
        assert_eq!(s.modules.len(), 2);
        assert_eq!(s.modules[0], (b"/lib/a.so".to_vec(), alloc::vec![0x10, 0x2f, 0xffff_ffff]));
        assert_eq!(s.modules[1], (b"/lib/c.so".to_vec(), alloc::vec![]));
    }
}
