//! Which versions of cache files the server vouches for: those it built
//! or checked whole since it started (by name and identity, which any
//! rewrite changes), and the memo beside a file that says a version
//! passed every check.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use persist::file_identity::{verified_memo, FileIdentity};

#[derive(Default)]
pub struct Vouched(Mutex<HashMap<String, FileIdentity>>);

impl Vouched {
    pub fn note(&self, name: &str, id: FileIdentity) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), id);
    }

    pub fn holds(&self, name: &str, id: FileIdentity) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(name) == Some(&id)
    }
}

/// Whether the lock file `lock` holds the memo of the version `id`.
pub fn memo_matches(lock: &File, id: FileIdentity) -> bool {
    let mut m = [0u8; 48];
    lock.read_exact_at(&mut m, 0).is_ok() && m == verified_memo(id)
}
