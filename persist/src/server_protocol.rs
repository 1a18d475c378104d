//! The cache server's protocol (docs/server.md), spoken by the server,
//! the runtime (no_std: [`header`], [`parse_header`]) and the tools
//! (std: [`read`], [`write`], [`request`]).
//!
//! Frames: `DBIC` magic, protocol version (u16), request kind (u16),
//! payload length (u32), then the payload; little-endian. A frame is read
//! whole or refused: a wrong magic or version, an unknown kind or a length
//! past [`MAX_PAYLOAD`] ends the connection with an error frame, never the
//! server. A hand-over carries one file descriptor (SCM_RIGHTS), as does
//! the answer to an `Open`.

pub const MAGIC: &[u8; 4] = b"DBIC";
pub const VERSION: u16 = 1;
pub const MAX_PAYLOAD: u32 = 1 << 20;
pub const HEADER: usize = 12;

/// The payloads of an `Open`'s `Ok` reply.
pub const SERVED: &[u8] = b"served";
pub const ABSENT: &[u8] = b"absent";

/// The socket's file name in the cache directory.
pub const SOCKET: &str = "dbicached.sock";
/// Held (flock) by the one server of a directory, which writes in it
/// who it is ([`lock_note`]).
pub const LOCK: &str = "dbicached.lock";

/// What the server holding a directory's lock writes in it: its pid and
/// the runtime version it merges for. A launcher that finds a server
/// listening whose pid (the socket's peer) is the one noted knows its
/// version without a round trip; another pid (a server that wrote no
/// note, or a note a dead server left) is asked.
pub fn lock_note(pid: u32, runtime_version: u32) -> alloc::string::String {
    alloc::format!("{pid} {runtime_version:08x}\n")
}
/// What the server says, in the cache directory (rotated to `.1`).
pub const LOG: &str = "dbicached.log";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    /// The server's counters (JSON).
    Status = 1,
    Stop = 2,
    /// The payload is a cache file's name; the attached fd holds a delta
    /// file (a whole `.dpc` file with this run's new blocks) to merge into
    /// it. Answered as soon as it is queued, before the merge.
    HandOver = 3,
    /// Answered once everything queued before it is merged and recorded.
    Sync = 4,
    /// Record the run reports left pending in the directory (queued after
    /// the hand-overs received before it).
    Ingest = 5,
    /// The payload is a cache file's name: answered `Ok` with a read-only
    /// descriptor of that file attached, a version the server checked
    /// whole (payload [`SERVED`]), or `Ok` with no descriptor if there is
    /// no such file (payload [`ABSENT`]); `Error` if it did not pass.
    Open = 6,
    /// A reply: the payload is its answer (JSON for status).
    Ok = 100,
    /// A reply: the payload is a one-line reason.
    Error = 101,
}

impl Kind {
    pub fn from_u16(v: u16) -> Option<Kind> {
        [Kind::Status, Kind::Stop, Kind::HandOver, Kind::Sync, Kind::Ingest, Kind::Open, Kind::Ok, Kind::Error]
            .into_iter()
            .find(|k| *k as u16 == v)
    }
}

/// Why a frame was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    Magic,
    Version(u16),
    Kind(u16),
    TooLong(u32),
    /// The peer closed or failed before a whole frame.
    Truncated,
}

impl core::fmt::Display for Bad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Bad::Magic => write!(f, "not a dbicached frame"),
            Bad::Version(v) => write!(f, "protocol version {v} (this server speaks {VERSION})"),
            Bad::Kind(k) => write!(f, "unknown request {k}"),
            Bad::TooLong(n) => write!(f, "payload of {n} bytes (at most {MAX_PAYLOAD})"),
            Bad::Truncated => write!(f, "truncated frame"),
        }
    }
}

/// The header of a frame of `kind` with `len` payload bytes.
pub fn header(kind: Kind, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_le_bytes());
    h[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
    h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// A whole frame: the header of `kind` and `payload`.
pub fn frame(kind: Kind, payload: &[u8]) -> alloc::vec::Vec<u8> {
    let mut f = alloc::vec::Vec::with_capacity(HEADER + payload.len());
    f.extend_from_slice(&header(kind, payload.len()));
    f.extend_from_slice(payload);
    f
}

/// The cache file a request's payload names, if it is a cache file's name
/// (which names no other file: no directory, no `..`).
pub fn cache_name(payload: &[u8]) -> Result<&str, &'static str> {
    core::str::from_utf8(payload).ok().filter(|n| crate::cache_dir::is_cache_name(n)).ok_or("not a cache file name")
}

/// The kind and payload length a header announces.
pub fn parse_header(h: &[u8; HEADER]) -> Result<(Kind, u32), Bad> {
    if &h[..4] != MAGIC {
        return Err(Bad::Magic);
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != VERSION {
        return Err(Bad::Version(version));
    }
    let raw = u16::from_le_bytes([h[6], h[7]]);
    let kind = Kind::from_u16(raw).ok_or(Bad::Kind(raw))?;
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if len > MAX_PAYLOAD {
        return Err(Bad::TooLong(len));
    }
    Ok((kind, len))
}

#[cfg(feature = "std")]
pub use with_std::*;

#[cfg(feature = "std")]
mod with_std {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    pub struct Frame {
        pub kind: Kind,
        pub payload: Vec<u8>,
    }

    pub fn write(w: &mut impl Write, kind: Kind, payload: &[u8]) -> std::io::Result<()> {
        w.write_all(&frame(kind, payload))
    }

    pub fn read(r: &mut impl Read) -> Result<Frame, Bad> {
        let mut h = [0u8; HEADER];
        r.read_exact(&mut h).map_err(|_| Bad::Truncated)?;
        let (kind, len) = parse_header(&h)?;
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).map_err(|_| Bad::Truncated)?;
        Ok(Frame { kind, payload })
    }

    /// The socket of the server of `dir`.
    pub fn socket_path(dir: &Path) -> PathBuf {
        dir.join(SOCKET)
    }

    /// Sends `kind` to the server of `dir`, waiting at most `wait` for its
    /// reply; the reply's payload, or why not.
    pub fn request_within(dir: &Path, kind: Kind, wait: Duration) -> Result<Vec<u8>, String> {
        let mut s = UnixStream::connect(socket_path(dir)).map_err(|e| format!("no server for {} ({e})", dir.display()))?;
        let _ = s.set_read_timeout(Some(wait));
        write(&mut s, kind, b"").map_err(|e| e.to_string())?;
        match read(&mut s) {
            Ok(f) if f.kind == Kind::Ok => Ok(f.payload),
            Ok(f) => Err(String::from_utf8_lossy(&f.payload).into_owned()),
            Err(bad) => Err(bad.to_string()),
        }
    }

    /// [`request_within`] five seconds.
    pub fn request(dir: &Path, kind: Kind) -> Result<Vec<u8>, String> {
        request_within(dir, kind, Duration::from_secs(5))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_named() {
        let mut buf = Vec::new();
        write(&mut buf, Kind::Status, b"x").unwrap();
        assert_eq!(read(&mut &buf[..]), Ok(Frame { kind: Kind::Status, payload: b"x".to_vec() }));
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert_eq!(read(&mut &bad[..]), Err(Bad::Magic));
        let mut bad = buf.clone();
        bad[4] = 9;
        assert_eq!(read(&mut &bad[..]), Err(Bad::Version(9)));
        let mut bad = buf.clone();
        bad[6] = 77;
        assert_eq!(read(&mut &bad[..]), Err(Bad::Kind(77)));
        let mut bad = buf.clone();
        bad[8..12].copy_from_slice(&(MAX_PAYLOAD + 1).to_le_bytes());
        assert_eq!(read(&mut &bad[..]), Err(Bad::TooLong(MAX_PAYLOAD + 1)));
        assert_eq!(read(&mut &buf[..buf.len() - 1]), Err(Bad::Truncated));
        // Any bytes at all: a refusal or a frame, never a panic.
        let mut seed = 7u64;
        for _ in 0..2000 {
            let n = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = read(&mut &bytes[..]);
        }
    }
}
