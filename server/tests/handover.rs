//! Hand-overs a same-uid peer may send the server, hostile or buggy: no
//! descriptor, a file that is not a memory file, a name that is not a
//! cache file's, garbage, truncated and tampered delta files, extra
//! descriptors. Each is refused (answered, or counted when checked), the
//! server keeps serving, and nothing is published. Also: servers started
//! at once (exactly one runs) and a peer of another uid.

use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use common::{empty_file, wait_ready, NAME};
use persist::server_protocol::{self as protocol, request, Kind};
use rustix::io::IoSlice;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

fn memory_file(bytes: &[u8]) -> OwnedFd {
    let fd = rustix::fs::memfd_create("test-delta", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes).unwrap();
    f.into()
}

/// Sends a hand-over of `name` with `fds` attached; the server's reply.
fn hand_over(dir: &Path, name: &str, fds: &[BorrowedFd<'_>]) -> protocol::Frame {
    let mut s = UnixStream::connect(protocol::socket_path(dir)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut frame = protocol::header(Kind::HandOver, name.len()).to_vec();
    frame.extend_from_slice(name.as_bytes());
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(&s, &[IoSlice::new(&frame)], &mut control, SendFlags::empty()).unwrap();
    protocol::read(&mut s).unwrap()
}


#[test]
fn hostile_hand_overs_are_refused_and_nothing_is_published() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = common::start(dir.path(), "60");
    wait_ready(dir.path());
    // Refused at once, by name.
    let no_fd = hand_over(dir.path(), NAME, &[]);
    assert_eq!((no_fd.kind, String::from_utf8_lossy(&no_fd.payload).into_owned()), (Kind::Error, "no memory file attached".into()));
    let regular = tempfile::tempfile().unwrap();
    let not_memory = hand_over(dir.path(), NAME, &[regular.as_fd()]);
    assert_eq!(String::from_utf8_lossy(&not_memory.payload), "not a memory file");
    let good = memory_file(&empty_file());
    for bad_name in ["../../x.dpc", "x", "libfoo.so-0123-0123456789abcdef.dpc", "a/b-0123456789abcdef-0123456789abcdef.dpc", ""] {
        let r = hand_over(dir.path(), bad_name, &[good.as_fd()]);
        assert_eq!(String::from_utf8_lossy(&r.payload), "not a cache file name", "{bad_name:?}");
    }
    // Queued, then refused by the merger's checks: garbage of any length,
    // a truncated file, a tampered one, one with an extra descriptor.
    let mut seed = 5u64;
    let mut rand = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect()
    };
    let file = empty_file();
    let mut deltas: Vec<Vec<u8>> = [0, 1, 15, 4096, 10_000].iter().map(|&n| rand(n)).collect();
    deltas.push(file[..file.len() / 2].to_vec());
    let mut tampered = file.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    deltas.push(tampered);
    let mut magic_only = file.clone();
    magic_only[64..].iter_mut().for_each(|b| *b = 0);
    deltas.push(magic_only);
    for d in &deltas {
        let m = memory_file(d);
        let r = hand_over(dir.path(), NAME, &[m.as_fd()]);
        assert_eq!(r.kind, Kind::Ok, "queued: {}", String::from_utf8_lossy(&r.payload));
    }
    let (a, b) = (memory_file(&file), memory_file(b"second"));
    assert_eq!(hand_over(dir.path(), NAME, &[a.as_fd(), b.as_fd()]).kind, Kind::Ok);
    assert_eq!(request(dir.path(), Kind::Sync).unwrap(), b"synced");
    let status = wait_ready(dir.path());
    assert_eq!(status["rejected"].as_u64(), Some(2 + 5 + deltas.len() as u64), "{status}");
    assert_eq!(status["merges"].as_u64(), Some(0), "{status}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".dpc") && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "nothing published, nothing half-written: {left:?}");
    let log = std::fs::read_to_string(dir.path().join("dbicached.log")).unwrap();
    assert!(log.contains("refused a delta for libfoo.so") && log.contains("truncated"), "{log}");
    request(dir.path(), Kind::Stop).unwrap();
    assert!(server.wait().unwrap().success());
}

#[test]
fn servers_started_at_once_leave_exactly_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut servers: Vec<Child> = (0..8).map(|_| common::start(dir.path(), "60")).collect();
    let status = wait_ready(dir.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut exited = 0;
    while exited < 7 {
        assert!(Instant::now() < deadline, "the others did not exit");
        exited = 0;
        for s in servers.iter_mut() {
            if let Some(st) = s.try_wait().unwrap() {
                assert_eq!(st.code(), Some(3), "a losing server says another runs");
                exited += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let winner = servers.iter_mut().find_map(|s| s.try_wait().unwrap().is_none().then_some(s)).expect("one runs");
    assert_eq!(status["pid"].as_u64(), Some(winner.id() as u64));
    request(dir.path(), Kind::Stop).unwrap();
    assert!(winner.wait().unwrap().success());
}

/// Needs root (to become another uid); the directory is opened to all so
/// the other uid reaches the socket and only SO_PEERCRED stops it.
#[test]
fn a_peer_of_another_uid_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("a_peer_of_another_uid_is_refused: needs root to switch uid; not checked");
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut server = common::start(dir.path(), "60");
    wait_ready(dir.path());
    let socket = protocol::socket_path(dir.path());
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // A child that becomes uid 65534 and asks for the status.
    let ask = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b'DBIC\x01\x00\x01\x00\x00\x00\x00\x00')
    d = s.recv(4096)
except (ConnectionResetError, BrokenPipeError):
    d = b''
print(repr(d))
"#;
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/python3", "-c", ask])
        .arg(&socket)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("setpriv (util-linux) runs: {e}"),
    };
    let answer = String::from_utf8_lossy(&out.stdout);
    assert_eq!(answer.trim(), "b''", "another uid got an answer: {answer} {}", String::from_utf8_lossy(&out.stderr));
    let status = wait_ready(dir.path());
    assert!(status["refused"].as_u64().unwrap() >= 1, "{status}");
    request(dir.path(), Kind::Stop).unwrap();
    assert!(server.wait().unwrap().success());
}
