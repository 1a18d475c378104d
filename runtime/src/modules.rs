//! Executable file mappings (modules). For now this reports loads at `-v`;
//! the module list that persistence keys on grows here.

use core::fmt::Write;

use crate::log::StderrLine;

pub fn note_load(path: &[u8], base: u64) {
    if !crate::options::get().verbose {
        return;
    }
    let mut line = StderrLine::new();
    let _ = write!(line, "dbirun: module loaded: ");
    for chunk in path.utf8_chunks() {
        let _ = line.write_str(chunk.valid());
    }
    let _ = writeln!(line, " at {base:#x}");
    line.flush();
}

/// An executable mapping of the file open as `fd` was made at `addr`;
/// `offset` is the file offset mapped there.
pub fn note_file_mapping(fd: i64, addr: u64, offset: u64) {
    if !crate::options::get().verbose {
        return;
    }
    let mut link = [0u8; 40];
    let link = crate::self_exe::format_fd_link(fd, &mut link);
    let mut target = [0u8; 512];
    let len = crate::sys::readlink(link, &mut target);
    if len > 0 {
        note_load(&target[..len as usize], addr.wrapping_sub(offset));
    }
}
