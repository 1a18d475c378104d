//! Which versions of cache files the server vouches for: those it built
//! or checked whole since it started (by name and identity, which any
//! rewrite changes), and the memo beside a file that says a version
//! passed every check.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex};

use persist::file_identity::{verified_memo, FileIdentity};

#[derive(Default)]
pub struct Vouched {
    versions: Mutex<HashMap<String, FileIdentity>>,
    /// Names being checked whole now (a process's `Open` and the check at
    /// the server's start may want the same file at once): one thread
    /// checks, the others wait for it instead of hashing it too.
    checking: Mutex<HashSet<String>>,
    checked: Condvar,
}

impl Vouched {
    pub fn note(&self, name: &str, id: FileIdentity) {
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), id);
    }

    pub fn holds(&self, name: &str, id: FileIdentity) -> bool {
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(name) == Some(&id)
    }

    /// The right to check `name` now, once no other thread checks it;
    /// None if the version `id` is vouched for (already, or meanwhile).
    pub fn check_turn(&self, name: &str, id: FileIdentity) -> Option<CheckTurn<'_>> {
        let mut busy = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(name) {
            busy = self.checked.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        if self.holds(name, id) {
            return None;
        }
        busy.insert(name.to_string());
        Some(CheckTurn { vouched: self, name: name.to_string() })
    }
}

/// A thread's turn to check a file; the next waiting thread's comes when
/// it is dropped, checked or not.
pub struct CheckTurn<'a> {
    vouched: &'a Vouched,
    name: String,
}

impl Drop for CheckTurn<'_> {
    fn drop(&mut self) {
        self.vouched.checking.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
        self.vouched.checked.notify_all();
    }
}

/// Whether the lock file `lock` holds the memo of the version `id`.
pub fn memo_matches(lock: &File, id: FileIdentity) -> bool {
    let mut m = [0u8; 48];
    lock.read_exact_at(&mut m, 0).is_ok() && m == verified_memo(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second thread wanting the same file waits for the first one's
    /// check, and has none to make once that one vouched for the version.
    #[test]
    fn one_thread_checks_a_file_at_a_time() {
        let v = Vouched::default();
        let id = FileIdentity::from_array([1, 2, 3, 4, 5]);
        let first = v.check_turn("f.dpc", id).expect("nobody checks it yet");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| v.check_turn("f.dpc", id).is_none());
            // Another file is not held up.
            assert!(v.check_turn("g.dpc", id).is_some());
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "the second check waits for the first");
            v.note("f.dpc", id);
            drop(first);
            assert!(waiter.join().unwrap(), "vouched for meanwhile: nothing left to check");
        });
        // Another version of it gets a turn of its own.
        assert!(v.check_turn("f.dpc", FileIdentity::from_array([1, 2, 3, 4, 6])).is_some());
    }
}
