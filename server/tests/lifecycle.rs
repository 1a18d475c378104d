//! The server's life cycle and protocol on a real socket: one server per
//! directory, status and stop, a stale socket file, hostile and truncated
//! frames, and the idle timeout.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use common::{start, wait_ready};
use persist::server_protocol::{self as protocol, request, Kind};

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_server_answers_status_and_stops() {
    let dir = tempfile::TempDir::new().unwrap();
    // A socket file left by a server that died: replaced.
    std::fs::write(dir.path().join(dbicached::SOCKET), b"stale").unwrap();
    let mut server = start(dir.path(), "60");
    let status = wait_ready(dir.path());
    assert_eq!(status["pid"], server.id());
    assert_eq!(status["protocol"], 1);
    // A second server for the same directory: exactly one runs.
    let second = Command::new(env!("CARGO_BIN_EXE_dbicached")).arg("--dir").arg(dir.path()).output().unwrap();
    assert_eq!(second.status.code(), Some(3), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(wait_ready(dir.path())["pid"], server.id());
    assert_eq!(request(dir.path(), Kind::Stop).unwrap(), b"stopping");
    assert!(wait_exit(&mut server, Duration::from_secs(5)).success());
    assert!(!dir.path().join(dbicached::SOCKET).exists(), "the socket goes with the server");
    assert!(request(dir.path(), Kind::Status).unwrap_err().contains("no server"));
}

#[test]
fn hostile_and_truncated_frames_never_stop_the_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = start(dir.path(), "60");
    wait_ready(dir.path());
    let socket = dir.path().join(dbicached::SOCKET);
    let mut seed = 11u64;
    for round in 0..50 {
        let mut s = UnixStream::connect(&socket).unwrap();
        let n = 1 + round % 30;
        let mut bytes: Vec<u8> = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        if round % 3 == 0 {
            // Right magic and version, a bad kind or length.
            bytes.splice(0..0, b"DBIC\x01\x00".iter().copied());
        }
        let _ = s.write_all(&bytes);
        // Half the time the peer goes away mid-frame.
        if round % 2 == 0 {
            drop(s);
        } else {
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = protocol::read(&mut s);
        }
    }
    let status = wait_ready(dir.path());
    assert!(status["refused"].as_u64().unwrap() > 0, "{status}");
    // A reply sent as a request is refused, by name.
    let mut s = UnixStream::connect(&socket).unwrap();
    protocol::write(&mut s, Kind::Ok, b"").unwrap();
    let reply = protocol::read(&mut s).unwrap();
    assert_eq!(reply.kind, Kind::Error);
    request(dir.path(), Kind::Stop).unwrap();
    assert!(wait_exit(&mut server, Duration::from_secs(5)).success());
}

#[test]
fn an_idle_server_exits_by_itself() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = start(dir.path(), "0.5");
    wait_ready(dir.path());
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success());
    assert!(!dir.path().join(dbicached::SOCKET).exists());
}

#[test]
fn bad_arguments_are_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_dbicached")).args(["--idle", "soon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
