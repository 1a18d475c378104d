//! Handing this process's new blocks to the directory's cache server
//! (`dbicached`, docs/server.md) instead of merging and writing files
//! before the process may exit: each module's delta file goes over the
//! server's socket as a memory file (SCM_RIGHTS, no copy through the
//! socket); the server answers once it has queued it, and merges later.
//! A server that is absent, refuses or does not answer within
//! [`ANSWER_WITHIN`] leaves the process to write its files itself.
//!
//! At a module's load the process asks the server for the module's file
//! ([`open_served`]): the server sends a descriptor of a version it has
//! checked whole, so the process skips the zone hashes; with no answer
//! within [`SERVE_WITHIN`] it opens and checks the file itself.

use alloc::format;
use alloc::vec::Vec;
use core::time::Duration;

use persist::server_protocol::{self as protocol, Kind};

use crate::os::startup_args::CStr;
use crate::os::sys;
use crate::os::unix_socket::{self, UnixStream};

/// How long a process waits for the server to take a hand-over.
const ANSWER_WITHIN: Duration = Duration::from_millis(200);

/// How long a module's load waits for the server to serve its file (a
/// first check of a big file takes the server a few milliseconds).
const SERVE_WITHIN: Duration = Duration::from_millis(100);

/// How long a process that ends waits for a server dbirun has just
/// started to listen (2-3 ms here, 10 ms with cold caches), and how
/// often it looks.
const STARTING_WITHIN: Duration = Duration::from_millis(250);
const STARTING_POLL: Duration = Duration::from_millis(1);

pub(crate) struct Server(UnixStream);

/// What the server said of a cache file.
pub(crate) enum Served {
    /// A descriptor of a version the server checked whole.
    File(sys::OwnedFd),
    Absent,
    /// No server, no answer in time, or a refusal: the process looks
    /// for itself.
    Unknown,
}

/// The server's answer for the cache file `name` of the directory `dir`.
pub(crate) fn open_served(dir: &CStr, name: &str) -> Served {
    let Ok(s) = UnixStream::connect(format!("{dir}/{}", protocol::SOCKET).as_bytes(), SERVE_WITHIN) else {
        return Served::Unknown;
    };
    if !s.peer_is_this_user() || s.send(&protocol::frame(Kind::Open, name.as_bytes()), None).is_err() {
        return Served::Unknown;
    }
    match reply(&s) {
        Ok((Kind::Ok, said, Some(fd))) if said == protocol::SERVED => Served::File(fd),
        Ok((Kind::Ok, said, None)) if said == protocol::ABSENT => Served::Absent,
        _ => Served::Unknown,
    }
}

/// The server's reply on `s`: its kind, its payload and the descriptor
/// that came with it.
fn reply(s: &UnixStream) -> Result<(Kind, Vec<u8>, Option<sys::OwnedFd>), &'static str> {
    let mut h = [0u8; protocol::HEADER];
    let fd = s.recv_exact_with_fd(&mut h).map_err(|e| if e == sys::Errno::AGAIN { "no answer in time" } else { "no answer" })?;
    let (kind, len) = protocol::parse_header(&h).map_err(|_| "a bad answer")?;
    let mut payload = alloc::vec![0u8; len as usize];
    s.recv_exact(&mut payload).map_err(|_| "no answer")?;
    Ok((kind, payload, fd))
}

/// The server of the cache directory `dir`, if one answers. dbirun runs
/// the app as soon as it has started a server, so a process may end
/// before its socket exists: then the server is still starting, and the
/// process waits for it (at most [`STARTING_WITHIN`]) rather than write
/// its files itself.
pub(crate) fn connect(dir: &CStr) -> Option<Server> {
    let path = format!("{dir}/{}", protocol::SOCKET);
    let mut waited = Duration::ZERO;
    loop {
        match UnixStream::connect(path.as_bytes(), ANSWER_WITHIN) {
            Ok(s) => return Some(Server(s)),
            Err(sys::Errno::NOENT) if waited < STARTING_WITHIN => {
                sys::sleep_ns(STARTING_POLL.as_nanos() as u64);
                waited += STARTING_POLL;
            }
            Err(e) => {
                crate::verbose!("persist: no cache server ({e}): writing files");
                return None;
            }
        }
    }
}

/// Asks the server of `dir` to record the runs left pending, without
/// waiting for its answer (the app's end is not delayed by a round trip;
/// a request lost with a dying server leaves the run pending for the next
/// recorder).
pub(crate) fn ask_to_record(dir: &CStr) {
    if let Some(server) = connect(dir) {
        let _ = server.0.send(&protocol::frame(Kind::Ingest, b""), None);
    }
}

impl Server {
    pub(crate) fn raw_fd(&self) -> i32 {
        self.0.raw_fd()
    }

    /// Hands `delta` (a whole `.dpc` file of new blocks) over for the
    /// cache file named `name`; Ok once the server has queued it.
    pub(crate) fn hand_over(&self, name: &str, delta: &persist::write::Layout) -> Result<(), &'static str> {
        let memory = unix_socket::memory_file(delta.pieces()).map_err(|_| "no memory file")?;
        self.0.send(&protocol::frame(Kind::HandOver, name.as_bytes()), Some(&memory)).map_err(|_| "sending failed")?;
        match reply(&self.0)? {
            (Kind::Ok, _, _) => Ok(()),
            _ => Err("refused"),
        }
    }
}
