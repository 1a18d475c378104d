//! The server's life: take the directory's lock (a second server started
//! at the same time fails to and exits, so exactly one runs), replace a
//! stale socket, accept connections from this uid only (SO_PEERCRED),
//! serve each on its own thread, and exit after `idle` with nothing
//! queued and no one connected, when asked to stop, or when its socket
//! or directory is gone; the merger finishes what was queued first.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::counters::Counters;
use crate::merger::Merger;
use crate::state::Shared;

/// How long one request to the remote store may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Config {
    /// The per-user cache directory the server owns.
    pub dir: PathBuf,
    /// Exit after this long without a request.
    pub idle: Duration,
    /// The remote store to read through and write behind, if any.
    pub remote: Option<remote::Location>,
    /// How long a process's request for a file the directory lacks waits
    /// for the remote store.
    pub remote_wait: Duration,
    /// Offer files fetched from the remote store only after their deep
    /// check (`cachetool::deep_check`).
    pub deep_check: bool,
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

/// Whether `listener` has a connection waiting, within `wait`.
fn wait_for_connection(listener: &UnixListener, wait: Duration) -> bool {
    let mut p = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd we own.
    unsafe { libc::poll(&mut p, 1, wait.as_millis() as libc::c_int) > 0 }
}

/// The socket file is still the one this server bound.
fn still_ours(socket: &Path, ino: u64) -> bool {
    std::fs::symlink_metadata(socket).is_ok_and(|m| m.ino() == ino)
}

/// Runs the server until it is idle for `config.idle`, told to stop, or
/// its socket is gone.
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
    // Before the socket exists: a launcher that connects finds the note.
    let note = persist::server_protocol::lock_note(std::process::id(), cachetool::RUNTIME_VERSION);
    lock.set_len(0).and_then(|()| std::os::unix::fs::FileExt::write_all_at(&lock, note.as_bytes(), 0)).map_err(|e| io("lock", e))?;
    let socket = persist::server_protocol::socket_path(&config.dir);
    // Holding the lock, any socket file left is a dead server's.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| io("bind", e))?;
    let ino = std::fs::symlink_metadata(&socket).map_err(|e| io("bind", e))?.ino();
    let me = unsafe { libc::getuid() };
    let (jobs, queue) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared::new(config.dir.clone(), jobs, config.remote_wait));
    shared.log.line(format_args!(
        "started for {} (runtime {:08x}, protocol {})",
        config.dir.display(),
        cachetool::RUNTIME_VERSION,
        persist::server_protocol::VERSION
    ));
    let remote = config.remote.as_ref().and_then(|location| {
        let started = remote::open(location, REMOTE_TIMEOUT)
            .map_err(|e| e.to_string())
            .and_then(|store| crate::remote_link::start(Arc::clone(&shared), store, config.deep_check));
        match started {
            Ok(link) => {
                shared.log.line(format_args!("remote store {location}: read-through and write-behind"));
                let _ = shared.remote.set(link.clone());
                Some(link)
            }
            Err(e) => {
                shared.log.line(format_args!("no remote store: {e}"));
                None
            }
        }
    });
    crate::start_check::start(Arc::clone(&shared));
    let merger = {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || Merger { dir: &s.dir, counters: &s.counters, log: &s.log, vouched: &s.vouched, remote }.run(queue))
    };
    let why = loop {
        if shared.stop.load(Relaxed) {
            break "asked to stop";
        }
        if wait_for_connection(&listener, Duration::from_millis(100)) {
            let Ok((stream, _)) = listener.accept() else { continue };
            shared.touch();
            if peer_uid(&stream) != Some(me) {
                Counters::add(&shared.counters.refused, 1);
                continue;
            }
            Counters::add(&shared.counters.clients, 1);
            shared.connections.fetch_add(1, Relaxed);
            let s = Arc::clone(&shared);
            std::thread::spawn(move || crate::connection::serve_counted(stream, &s));
            continue;
        }
        if shared.idle_for() >= config.idle && shared.quiet() {
            break "idle";
        }
        if !still_ours(&socket, ino) {
            break "its socket is gone";
        }
    };
    shared.log.line(format_args!("stopping: {why}"));
    if still_ours(&socket, ino) {
        let _ = std::fs::remove_file(&socket);
    }
    drop(listener);
    shared.close_queue();
    let _ = merger.join();
    shared.log.line(format_args!("stopped"));
    drop(lock);
    Ok(())
}
