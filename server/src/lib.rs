//! `dbicached`, the cache server (docs/server.md): the one writer of a
//! per-user cache directory. Processes hand over the blocks they built
//! (a delta file in a memory file) and exit; the server checks each delta
//! as it checks any file, merges it into the module's file and publishes
//! it (temp file + rename, under the file's lock, as file-mode processes
//! do), vouches for what it published (the file's verified memo) and
//! serves checked files to processes at their modules' loads, records
//! runs in the index and keeps the directory's size budget.
//!
//! - [`daemon`]: its life: the directory's lock, the socket, accepting
//!   peers of its own uid only, idle timeout, stop.
//! - [`connection`]: one peer's frames and replies, descriptors received.
//! - [`merger`]: the one thread that merges, publishes and records.
//! - [`gathering`]: deltas too small for a rewrite, kept until they are
//!   worth one.
//! - [`serving`]: cache files served at a module's load, checked once
//!   per version.
//! - [`start_check`]: the directory's files no memo vouches for, checked
//!   when it starts (a restored directory).
//! - [`remote_link`]: read-through from and write-behind to a remote
//!   store, on two threads of their own (docs/remote.md).
//! - [`counters`]: what `cachetool server status` shows.
//! - [`log`]: its log file, rotated.
//! - [`state`]: what the threads share, the merger's bounded queue.
//! - [`vouched`]: the file versions it checked or built.

pub mod connection;
pub mod counters;
pub mod daemon;
pub mod gathering;
pub mod log;
pub mod merger;
pub mod remote_link;
pub mod serving;
pub mod start_check;
pub mod state;
pub mod vouched;

pub use persist::server_protocol::{LOCK, LOG, SOCKET};
