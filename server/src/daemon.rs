//! The server's life: take the directory's lock (a second server started
//! at the same time fails to and exits, so exactly one runs), replace a
//! stale socket, accept connections from this uid only (SO_PEERCRED),
//! answer each request, and exit after `idle` without a request, or when
//! asked to stop.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::protocol::{self, Kind};

pub struct Config {
    /// The per-user cache directory the server owns.
    pub dir: PathBuf,
    /// Exit after this long without a request.
    pub idle: Duration,
}

/// Why the server did not start.
#[derive(Debug)]
pub enum StartError {
    /// Another server holds the directory.
    AlreadyRunning,
    Io(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::AlreadyRunning => write!(f, "a server already runs for this directory"),
            StartError::Io(e) => f.write_str(e),
        }
    }
}

/// The uid of the peer of `stream`.
pub fn peer_uid(stream: &UnixStream) -> Option<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len describe a ucred-sized buffer we own.
    let r = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len)
    };
    (r == 0).then_some(cred.uid)
}

struct State {
    started: Instant,
    requests: u64,
    refused: u64,
}

/// Runs the server until it is idle for `config.idle` or told to stop.
pub fn run(config: &Config) -> Result<(), StartError> {
    let io = |what: &str, e: std::io::Error| StartError::Io(format!("{what}: {e}"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(config.dir.join(crate::LOCK))
        .map_err(|e| io("lock", e))?;
    // SAFETY: flock on a file we hold open.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(StartError::AlreadyRunning);
    }
    let socket = config.dir.join(crate::SOCKET);
    // Holding the lock, any socket file left is a dead server's.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| io("bind", e))?;
    listener.set_nonblocking(true).map_err(|e| io("listen", e))?;
    let me = unsafe { libc::getuid() };
    let mut state = State { started: Instant::now(), requests: 0, refused: 0 };
    let mut last = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                last = Instant::now();
                if peer_uid(&stream) != Some(me) {
                    state.refused += 1;
                    continue;
                }
                if serve(stream, &mut state) == Flow::Stop {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if last.elapsed() >= config.idle {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io("accept", e)),
        }
    }
    let _ = std::fs::remove_file(&socket);
    drop(lock);
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// Answers one connection's requests until it closes or misbehaves.
fn serve(mut stream: UnixStream, state: &mut State) -> Flow {
    let _ = stream.set_nonblocking(false);
    // A peer that stops mid-frame cannot hold the server.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    loop {
        let frame = match protocol::read(&mut stream) {
            Ok(f) => f,
            Err(protocol::Bad::Truncated) => return Flow::Go,
            Err(bad) => {
                state.refused += 1;
                let _ = protocol::write(&mut stream, Kind::Error, bad.to_string().as_bytes());
                return Flow::Go;
            }
        };
        state.requests += 1;
        match frame.kind {
            Kind::Status => {
                let status = serde_json::json!({
                    "pid": std::process::id(),
                    "uptime_ms": state.started.elapsed().as_millis() as u64,
                    "protocol": protocol::VERSION,
                    "requests": state.requests,
                    "refused": state.refused,
                });
                let _ = protocol::write(&mut stream, Kind::Ok, status.to_string().as_bytes());
            }
            Kind::Stop => {
                let _ = protocol::write(&mut stream, Kind::Ok, b"stopping");
                return Flow::Stop;
            }
            Kind::Ok | Kind::Error => {
                state.refused += 1;
                let _ = protocol::write(&mut stream, Kind::Error, b"a reply is not a request");
                return Flow::Go;
            }
        }
    }
}

/// The socket of the server of `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(crate::SOCKET)
}
