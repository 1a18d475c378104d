//! The server's log: `dbicached.log` in the cache directory, one line per
//! event with the Unix time, moved to `dbicached.log.1` when it passes
//! [`ROTATE_AT`] (so it never holds more than twice that).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub const ROTATE_AT: u64 = 1 << 20;

pub struct Log {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Log {
    pub fn new(dir: &std::path::Path) -> Log {
        Log { path: dir.join(persist::server_protocol::LOG), file: Mutex::new(None) }
    }

    pub fn line(&self, what: std::fmt::Arguments<'_>) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let too_big = std::fs::metadata(&self.path).map(|m| m.len() >= ROTATE_AT).unwrap_or(false);
        if too_big || file.is_none() {
            if too_big {
                let mut old = self.path.clone().into_os_string();
                old.push(".1");
                let _ = std::fs::rename(&self.path, old);
            }
            *file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        }
        if let Some(f) = file.as_mut() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let _ = writeln!(f, "{}.{:03} [{}] {what}", now.as_secs(), now.subsec_millis(), std::process::id());
        }
    }
}
