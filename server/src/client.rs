//! Talking to the server of a cache directory: one request, one reply.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::protocol::{self, Kind};

/// Sends `kind` to the server of `dir`; its reply's payload, or why not.
pub fn request(dir: &Path, kind: Kind) -> Result<Vec<u8>, String> {
    let mut s = UnixStream::connect(crate::daemon::socket_path(dir)).map_err(|e| format!("no server for {} ({e})", dir.display()))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    protocol::write(&mut s, kind, b"").map_err(|e| e.to_string())?;
    match protocol::read(&mut s) {
        Ok(f) if f.kind == Kind::Ok => Ok(f.payload),
        Ok(f) => Err(String::from_utf8_lossy(&f.payload).into_owned()),
        Err(bad) => Err(bad.to_string()),
    }
}
