//! Whether the cache directory's server (`dbicached`, docs/server.md) is
//! listening and is this version's, by the check dbirun-full makes first
//! (`inject/src/cache_server.rs`, `noted_as_ours`): the socket's peer is
//! the pid the server's lock note names with this runtime version. No
//! server, another version, or a server without a note: dbirun-full
//! starts one, asks it, or runs in file mode.

use alloc::vec::Vec;

use persist::server_protocol::{lock_note, LOCK, SOCKET};

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

/// Whether a server of this version listens on `dir`'s socket.
pub fn is_ours(dir: &[u8]) -> bool {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let Ok(addr) = SocketAddrUnix::new(in_dir(dir, SOCKET).as_slice()) else { return false };
    let Ok(socket) = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None) else {
        return false;
    };
    if rustix::net::connect(&socket, &addr).is_err() {
        return false;
    }
    let Ok(peer) = rustix::net::sockopt::socket_peercred(&socket) else { return false };
    let note = lock_note(peer.pid.as_raw_nonzero().get() as u32, RUNTIME_VERSION);
    read_small(&in_dir(dir, LOCK)).is_some_and(|text| text == note.as_bytes())
}

/// A file of at most a few hundred bytes, whole.
fn read_small(path: &[u8]) -> Option<Vec<u8>> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = alloc::vec![0u8; 512];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    Some(buf)
}
