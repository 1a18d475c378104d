//! `/proc/self/maps`: the kernel's view of every mapping, for memory the
//! runtime did not map or see mapped itself (the vDSO, the initial stack).

use alloc::vec::Vec;

use crate::os::sys;

/// One line: a mapping's range, its protection (`PROT_*` bits) and its name.
pub(crate) struct MapsLine<'a> {
    pub(crate) lo: u64,
    pub(crate) hi: u64,
    pub(crate) prot: u64,
    pub(crate) name: &'a [u8],
}

/// The whole file, or None if it cannot be read.
pub(crate) fn read() -> Option<Vec<u8>> {
    let fd = sys::open_read(b"/proc/self/maps\0").ok()?;
    let mut buf = alloc::vec![0u8; 64 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match sys::pread(&fd, &mut buf[len..], len as u64) {
            Ok(n) if n > 0 => len += n,
            _ => break,
        }
    }
    buf.truncate(len);
    Some(buf)
}

/// The lines of `text` that parse (all of them, from the kernel).
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = MapsLine<'_>> {
    text.split(|&b| b == b'\n').filter_map(parse_line)
}

fn parse_line(line: &[u8]) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let (lo, hi) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    let flag = |i: usize, c: u8, bit: u64| if perms.get(i) == Some(&c) { bit } else { 0 };
    let prot = flag(0, b'r', sys::PROT_READ) | flag(1, b'w', sys::PROT_WRITE) | flag(2, b'x', sys::PROT_EXEC);
    // offset, device, inode, then the name after padding spaces.
    let name = fields.nth(3).map_or(&[][..], |rest| {
        let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        &rest[start..]
    });
    Some(MapsLine { lo, hi, prot, name })
}

pub(crate) fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d as u64)
    })
}
