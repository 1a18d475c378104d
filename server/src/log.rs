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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_rotated_past_its_size() {
        let dir = tempfile::TempDir::new().unwrap();
        let log = Log::new(dir.path());
        let line = "x".repeat(1000);
        for _ in 0..(2 * ROTATE_AT as usize / 1000 + 10) {
            log.line(format_args!("{line}"));
        }
        let now = std::fs::metadata(dir.path().join("dbicached.log")).unwrap().len();
        let old = std::fs::metadata(dir.path().join("dbicached.log.1")).unwrap().len();
        assert!(now < ROTATE_AT && old >= ROTATE_AT && old < ROTATE_AT + 2000, "{now} {old}");
    }
}
