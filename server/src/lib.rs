//! `dbicached`, the cache server (docs/server.md). This first step is its
//! life cycle and protocol: one server per cache directory (an exclusive
//! lock on `dbicached.lock`), a unix socket `dbicached.sock` in the
//! directory that accepts only peers of its own uid, length-checked and
//! versioned frames, status and stop requests, and an idle timeout. The
//! hand-over of translated code and the serving of files come next.
//!
//! - [`protocol`]: the frames and requests.
//! - [`daemon`]: listening, checking peers, answering, exiting when idle.
//! - [`client`]: what `cachetool server` uses to talk to it.

pub mod client;
pub mod daemon;
pub mod protocol;

/// The socket's file name in the cache directory.
pub const SOCKET: &str = "dbicached.sock";
/// Held (flock) by the one server of a directory.
pub const LOCK: &str = "dbicached.lock";
