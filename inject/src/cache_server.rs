//! dbirun and the cache server (`dbicached`, docs/server.md): with
//! `-persist`, the run's processes hand their new blocks to the server of
//! the cache directory and exit without merging or writing files; dbirun
//! starts one on demand (it exits after [`IDLE`] without requests), and
//! leaves the run's report for it to record. `-no_persist_server`, or a
//! server that cannot start, leaves everything to the run's processes
//! (file mode).

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use persist::server_protocol::{self as protocol, Kind};

/// A server dbirun starts exits after this long without a request.
pub const IDLE: Duration = Duration::from_secs(600);
/// How long dbirun waits for a server's answer.
const ANSWER_WITHIN: Duration = Duration::from_millis(200);

/// Whether the run's processes may hand over to a server of `dir`: one
/// listens, or one was just started (a process that finds none at its
/// end writes its files itself).
pub fn ensure(dir: &Path, verbose: bool) -> bool {
    let say = |what: std::fmt::Arguments<'_>| {
        if verbose {
            eprintln!("dbirun: persist: {what}");
        }
    };
    let Ok(mut s) = UnixStream::connect(protocol::socket_path(dir)) else {
        return match cachetool::server_start::spawn(dir, IDLE) {
            Ok(()) => {
                say(format_args!("started a cache server for {}", dir.display()));
                // The run starts at once: the server comes up beside it
                // (2-3 ms here), and a process that ends before it
                // listens waits for it then (`persistence/server.rs` in
                // the runtime), so only runs shorter than its start-up
                // wait at all. With a remote store the run waits here
                // instead: the server fetches the files its first
                // modules lack.
                if cachetool::server_start::reads_through_a_remote_store() {
                    wait_until_listening(dir, ANSWER_WITHIN);
                }
                true
            }
            Err(why) => {
                say(format_args!("no cache server ({why}): processes write their own files"));
                false
            }
        };
    };
    if noted_as_ours(dir, &s) {
        say(format_args!("using the cache server of {}", dir.display()));
        return true;
    }
    // A server of another dbirun version may merge differently, and one
    // that does not answer may be dying: file mode until it is gone.
    let _ = s.set_read_timeout(Some(ANSWER_WITHIN));
    let status = protocol::write(&mut s, Kind::Status, b"").ok().and_then(|()| protocol::read(&mut s).ok());
    let theirs = status
        .filter(|f| f.kind == Kind::Ok)
        .and_then(|f| serde_json::from_slice::<serde_json::Value>(&f.payload).ok())
        .and_then(|v| v["runtime_version"].as_str().map(String::from));
    let ours = format!("{:08x}", cachetool::RUNTIME_VERSION);
    match theirs {
        Some(theirs) if theirs == ours => {
            say(format_args!("using the cache server of {}", dir.display()));
            true
        }
        Some(theirs) => {
            // Every connection keeps a server from going idle: left alone,
            // it would outlive an upgrade for as long as runs of the new
            // version come, all of them in file mode. Asked to stop, it
            // finishes what its own runs handed over and exits; the next
            // run starts one of this version.
            let _ = protocol::write(&mut s, Kind::Stop, b"");
            say(format_args!(
                "the cache server of {} is of another version ({theirs}): asked it to stop; processes write their own files",
                dir.display()
            ));
            false
        }
        None => {
            say(format_args!("the cache server of {} is not answering: processes write their own files", dir.display()));
            false
        }
    }
}

/// Whether the server on the other end of `s` is the one whose lock note
/// names this dbirun's runtime version: then no status round trip (a
/// tenth of a millisecond of every run) is needed.
fn noted_as_ours(dir: &Path, s: &UnixStream) -> bool {
    let Ok(cred) = nix::sys::socket::getsockopt(s, nix::sys::socket::sockopt::PeerCredentials) else { return false };
    let Ok(note) = std::fs::read_to_string(dir.join(persist::server_protocol::LOCK)) else { return false };
    note == persist::server_protocol::lock_note(cred.pid() as u32, cachetool::RUNTIME_VERSION)
}

/// Returns once a server listens on `dir`'s socket, or after `wait`.
fn wait_until_listening(dir: &Path, wait: Duration) {
    let deadline = std::time::Instant::now() + wait;
    while UnixStream::connect(protocol::socket_path(dir)).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asks the server of `dir` to record the runs left pending (after the
/// hand-overs it received before); false if no server took the request.
pub fn ask_to_record(dir: &Path) -> bool {
    protocol::request_within(dir, Kind::Ingest, ANSWER_WITHIN).is_ok()
}
