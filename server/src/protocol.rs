//! Frames: `DBIC` magic, protocol version (u16), request kind (u16),
//! payload length (u32), then the payload; little-endian. A frame is read
//! whole or refused: a wrong magic or version, an unknown kind or a length
//! past [`MAX_PAYLOAD`] ends the connection with an error frame, never the
//! server.

use std::io::{Read, Write};

pub const MAGIC: &[u8; 4] = b"DBIC";
pub const VERSION: u16 = 1;
pub const MAX_PAYLOAD: u32 = 1 << 20;
const HEADER: usize = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    Status = 1,
    Stop = 2,
    /// A reply: the payload is its answer (JSON for status).
    Ok = 100,
    /// A reply: the payload is a one-line reason.
    Error = 101,
}

impl Kind {
    fn from_u16(v: u16) -> Option<Kind> {
        [Kind::Status, Kind::Stop, Kind::Ok, Kind::Error].into_iter().find(|k| *k as u16 == v)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
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

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Magic => write!(f, "not a dbicached frame"),
            Bad::Version(v) => write!(f, "protocol version {v} (this server speaks {VERSION})"),
            Bad::Kind(k) => write!(f, "unknown request {k}"),
            Bad::TooLong(n) => write!(f, "payload of {n} bytes (at most {MAX_PAYLOAD})"),
            Bad::Truncated => write!(f, "truncated frame"),
        }
    }
}

pub fn write(w: &mut impl Write, kind: Kind, payload: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_le_bytes());
    buf.extend_from_slice(&(kind as u16).to_le_bytes());
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

pub fn read(r: &mut impl Read) -> Result<Frame, Bad> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h).map_err(|_| Bad::Truncated)?;
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
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).map_err(|_| Bad::Truncated)?;
    Ok(Frame { kind, payload })
}

#[cfg(test)]
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
            let bytes: Vec<u8> = (0..n).map(|_| { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (seed >> 33) as u8 }).collect();
            let _ = read(&mut &bytes[..]);
        }
    }
}
