//! One peer's connection: frames in, replies out. A hand-over's
//! descriptor comes with the frame's first bytes (SCM_RIGHTS) and must be
//! a memory file (anything else, a FIFO or a file on a hung mount, could
//! block the merger); it is queued and answered at once, before the
//! merge. An `Open` is answered with a checked cache file's descriptor
//! (`serving`). A peer that misbehaves loses its connection, never the
//! server.

use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::channel;
use std::time::Duration;

use persist::server_protocol::{self as protocol, Bad, Frame, Kind, HEADER};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::counters::Counters;
use crate::merger::{Job, MAX_DELTA};
use crate::serving;
use crate::state::Shared;

/// A peer that stops mid-frame is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a Sync or Stop waits for the merger.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// Answers `stream`'s requests until it closes or misbehaves.
pub fn serve(mut stream: UnixStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    loop {
        let (frame, fd) = match read_frame(&mut stream) {
            Ok(f) => f,
            Err(Bad::Truncated) => return,
            Err(bad) => {
                Counters::add(&shared.counters.refused, 1);
                let _ = protocol::write(&mut stream, Kind::Error, bad.to_string().as_bytes());
                return;
            }
        };
        Counters::add(&shared.counters.requests, 1);
        shared.touch();
        if frame.kind == Kind::Open {
            let sent = match serving::open(shared, &frame.payload) {
                Ok(Some(file)) => send_with_fd(&stream, protocol::SERVED, &file),
                Ok(None) => protocol::write(&mut stream, Kind::Ok, protocol::ABSENT),
                Err(why) => protocol::write(&mut stream, Kind::Error, why.as_bytes()),
            };
            if sent.is_err() {
                return;
            }
            continue;
        }
        let reply = match frame.kind {
            Kind::Open => unreachable!("answered above"),
            Kind::Status => Ok(shared.counters.json(shared.started).to_string()),
            Kind::HandOver => hand_over(shared, &frame.payload, fd).map(|()| String::new()),
            Kind::Ingest => shared.queue(Job::Ingest, 0).map(|()| String::new()).map_err(String::from),
            Kind::Sync | Kind::Stop => {
                // What runs that are still handing over send is queued
                // before this job: a Stop too merges it before the
                // server goes (rather than after its socket is gone).
                wait_for_other_connections(shared);
                let (done, wait) = channel();
                match shared.queue(Job::Sync(done), 0) {
                    Ok(()) => match wait.recv_timeout(SYNC_TIMEOUT) {
                        Ok(()) => Ok(String::from(if frame.kind == Kind::Sync { "synced" } else { "stopping" })),
                        Err(_) => Err(String::from("the merger did not finish in time")),
                    },
                    Err(why) => Err(String::from(why)),
                }
            }
            Kind::Ok | Kind::Error => {
                Counters::add(&shared.counters.refused, 1);
                let _ = protocol::write(&mut stream, Kind::Error, b"a reply is not a request");
                return;
            }
        };
        let reply_ok = reply.is_ok();
        let sent = match reply {
            Ok(text) => protocol::write(&mut stream, Kind::Ok, text.as_bytes()),
            Err(why) => protocol::write(&mut stream, Kind::Error, why.as_bytes()),
        };
        // The server stops once a Stop is answered (set before, the
        // acceptor could end the process before the answer went out).
        if frame.kind == Kind::Stop && reply_ok {
            shared.stop.store(true, Relaxed);
        }
        if sent.is_err() {
            return;
        }
    }
}

fn hand_over(shared: &Shared, payload: &[u8], fd: Option<OwnedFd>) -> Result<(), String> {
    Counters::add(&shared.counters.hand_overs, 1);
    let checked = (|| {
        let name = protocol::cache_name(payload)?;
        let fd = fd.ok_or("no memory file attached")?;
        rustix::fs::fcntl_get_seals(&fd).map_err(|_| "not a memory file")?;
        let file = File::from(fd);
        let len = file.metadata().map_err(|_| "cannot stat the memory file")?.len();
        if len > MAX_DELTA {
            return Err("delta too big");
        }
        Ok((name.to_string(), file, len))
    })();
    let (name, file, len) = checked.map_err(|why: &str| {
        Counters::add(&shared.counters.rejected, 1);
        shared.log.line(format_args!("refused a hand-over: {why}"));
        why.to_string()
    })?;
    shared.queue(Job::HandOver { name, file, len }, len).map_err(String::from)
}

/// An `Ok` frame with `payload`, `file`'s descriptor attached.
fn send_with_fd(stream: &UnixStream, payload: &[u8], file: &File) -> std::io::Result<()> {
    let frame = protocol::frame(Kind::Ok, payload);
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [file.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for the descriptor"));
    }
    let sent = rustix::net::sendmsg(stream, &[IoSlice::new(&frame)], &mut control, SendFlags::NOSIGNAL)?;
    (&*stream).write_all(&frame[sent..])
}

/// A frame, and the descriptor that came with its first bytes, if any
/// (more than one are closed).
fn read_frame(stream: &mut UnixStream) -> Result<(Frame, Option<OwnedFd>), Bad> {
    let mut h = [0u8; HEADER];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(&*stream, &mut [std::io::IoSliceMut::new(&mut h)], &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => break r.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return Err(Bad::Truncated),
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if got == 0 {
        return Err(Bad::Truncated);
    }
    stream.read_exact(&mut h[got..]).map_err(|_| Bad::Truncated)?;
    let (kind, len) = protocol::parse_header(&h)?;
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).map_err(|_| Bad::Truncated)?;
    Ok((Frame { kind, payload }, fds.into_iter().next()))
}

/// Serves a connection the acceptor counted, and uncounts it.
pub fn serve_counted(stream: UnixStream, shared: &Shared) {
    serve(stream, shared);
    shared.connections.fetch_sub(1, Relaxed);
    shared.touch();
}

/// A process hands over from a detached copy of itself, on a connection
/// it opened before its app ended: a Sync waits for every other
/// connection to close (at most [`SYNC_TIMEOUT`]), so what runs ended
/// before it is merged before it is answered.
fn wait_for_other_connections(shared: &Shared) {
    let deadline = std::time::Instant::now() + SYNC_TIMEOUT;
    while shared.connections.load(Relaxed) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
