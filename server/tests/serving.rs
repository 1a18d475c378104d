//! Serving cache files at a module's load (`Open`): a file the server
//! checked is sent as a read-only descriptor; an absent file is said to
//! be absent; a bad name, a file that fails the checks or random payloads
//! are refused, and the server goes on serving.

use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

mod common;

use common::{empty_file, wait_ready, NAME};
use persist::server_protocol::{self as protocol, request, Kind};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

/// Asks for the file `name`: the reply and the descriptor that came with it.
fn open(dir: &Path, name: &[u8]) -> (protocol::Frame, Option<OwnedFd>) {
    let mut s = UnixStream::connect(protocol::socket_path(dir)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    protocol::write(&mut s, Kind::Open, name).unwrap();
    let mut h = [0u8; protocol::HEADER];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(&s, &mut [std::io::IoSliceMut::new(&mut h)], &mut control, RecvFlags::CMSG_CLOEXEC).unwrap().bytes;
    let fd = control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    s.read_exact(&mut h[got..]).unwrap();
    let (kind, len) = protocol::parse_header(&h).unwrap();
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).unwrap();
    (protocol::Frame { kind, payload }, fd)
}


#[test]
fn checked_files_are_served_and_others_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = common::start(dir.path(), "60");
    wait_ready(dir.path());

    let (reply, fd) = open(dir.path(), NAME.as_bytes());
    assert_eq!((reply.kind, reply.payload.as_slice(), fd.is_none()), (Kind::Ok, protocol::ABSENT, true));

    let bytes = empty_file();
    std::fs::write(dir.path().join(NAME), &bytes).unwrap();
    for _ in 0..2 {
        let (reply, fd) = open(dir.path(), NAME.as_bytes());
        assert_eq!((reply.kind, reply.payload.as_slice()), (Kind::Ok, protocol::SERVED));
        let mut served = Vec::new();
        std::fs::File::from(fd.expect("a descriptor")).read_to_end(&mut served).unwrap();
        assert_eq!(served, bytes, "the file itself");
    }
    // A rewrite is a new version: checked again, and refused.
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    std::fs::write(dir.path().join(NAME), &tampered).unwrap();
    let (reply, fd) = open(dir.path(), NAME.as_bytes());
    assert_eq!(reply.kind, Kind::Error, "{}", String::from_utf8_lossy(&reply.payload));
    assert!(fd.is_none());
    let truncated = &bytes[..bytes.len() / 2];
    std::fs::write(dir.path().join(NAME), truncated).unwrap();
    assert_eq!(open(dir.path(), NAME.as_bytes()).0.kind, Kind::Error);

    // Names that are not a cache file's, a directory, and a symlink.
    std::fs::create_dir(dir.path().join("dir-0123456789abcdef-0123456789abcdef.dpc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link-0123456789abcdef-0123456789abcdef.dpc")).unwrap();
    for bad in [&b"../../etc/passwd"[..], b"", b"\xff\xfe.dpc", b"dbicached.log", b"dir-0123456789abcdef-0123456789abcdef.dpc", b"link-0123456789abcdef-0123456789abcdef.dpc"] {
        let (reply, fd) = open(dir.path(), bad);
        assert_eq!(reply.kind, Kind::Error, "{}: {}", String::from_utf8_lossy(bad), String::from_utf8_lossy(&reply.payload));
        assert!(fd.is_none());
    }
    // Random payloads: refused or absent, never a descriptor or a crash.
    let mut seed = 5u64;
    for n in 0..200 {
        let payload: Vec<u8> = (0..n % 70)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        let (reply, fd) = open(dir.path(), &payload);
        assert!(fd.is_none() && (reply.kind == Kind::Error || reply.payload == protocol::ABSENT));
    }
    let status = wait_ready(dir.path());
    assert_eq!(status["served"].as_u64(), Some(2), "{status}");
    request(dir.path(), Kind::Stop).unwrap();
    assert!(server.wait().unwrap().success());
}
