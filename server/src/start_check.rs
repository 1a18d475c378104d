//! The directory's files checked when the server starts. A directory
//! copied, restored from a CI cache or pulled in an image has new inodes,
//! so no memo vouches for its files: each program's first run would wait
//! while the server checks the files it asks for (python3's after
//! ahead-of-time translation: 76 MB), or, without a server, check them
//! itself. A thread of the lowest priority checks every file no memo
//! vouches for, as `cachetool verify` does, so that the runs after the
//! first find them vouched for.

use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use persist::file_identity::FileIdentity;

use crate::counters::Counters;
use crate::serving::vouch_for;
use crate::state::Shared;

/// Starts the check on a thread of its own.
pub fn start(shared: Arc<Shared>) {
    std::thread::spawn(move || {
        // SAFETY: setpriority on this thread's own id changes only its nice value.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
        check_all(&shared);
        Counters::add(&shared.counters.start_check_done, 1);
    });
}

fn check_all(shared: &Shared) {
    let Ok(names) = cachetool::cache_file::names_in(&shared.dir) else { return };
    let (mut checked, mut refused) = (0u64, 0u64);
    for name in names {
        if shared.stop.load(Relaxed) {
            return;
        }
        let open = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(shared.dir.join(&name));
        let Ok(file) = open else { continue };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        match vouch_for(shared, &name, &file, FileIdentity::of(&meta)) {
            Ok(()) => checked += 1,
            Err(why) => {
                refused += 1;
                shared.log.line(format_args!("start check: not vouching for {name}: {why}"));
            }
        }
        Counters::add(&shared.counters.start_checked, 1);
    }
    shared.log.line(format_args!("start check: {checked} files vouched for, {refused} refused"));
}
