//! Whether the cache directory's server (`dbicached`, docs/server.md) is
//! running and is this version's: the server holds its lock file
//! exclusively for as long as it lives, and its note there names this
//! runtime version. Asked without connecting: a connection woke the
//! server and cost the run a context switch (a fifth of the front's time
//! in perf). Not listening yet, or going away, is harmless: the runtime
//! writes its files itself when the server does not take its blocks.
//! No server, or another version's: dbirun-full starts one, asks it, or
//! runs in file mode.

use alloc::vec::Vec;

use persist::server_protocol::{lock_note, LOCK};

/// Baked in by build.rs with the runtime's own hash function.
const RUNTIME_VERSION: u32 = match u32::from_str_radix(env!("DBI_RUNTIME_VERSION"), 16) {
    Ok(v) => v,
    Err(_) => panic!("DBI_RUNTIME_VERSION is not hex"),
};

fn in_dir(dir: &[u8], name: &str) -> Vec<u8> {
    let mut path = dir.to_vec();
    path.push(b'/');
    path.extend_from_slice(name.as_bytes());
    path
}

/// Whether a server of this version holds `dir`'s lock.
pub fn is_ours(dir: &[u8]) -> bool {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let Ok(fd) = rustix::fs::open(in_dir(dir, LOCK).as_slice(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else { return false };
    // A shared lock this process can take (released as the file closes)
    // means no server holds it.
    if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) != Err(rustix::io::Errno::WOULDBLOCK) {
        return false;
    }
    read_small(&fd).is_some_and(|text| notes_our_version(&text))
}

/// Whether `note` is the one a server of this runtime version writes
/// (`lock_note`), for whichever pid it names.
fn notes_our_version(note: &[u8]) -> bool {
    let pid = note.split(|&b| b == b' ').next().and_then(|p| core::str::from_utf8(p).ok()?.parse::<u32>().ok());
    pid.is_some_and(|pid| note == lock_note(pid, RUNTIME_VERSION).as_bytes())
}

/// An open file of at most a few hundred bytes, whole.
fn read_small(fd: &rustix::fd::OwnedFd) -> Option<Vec<u8>> {
    let mut buf = alloc::vec![0u8; 512];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    Some(buf)
}
