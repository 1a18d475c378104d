//! Serving cache files at a module's load: a process asks for a file by
//! name and gets a read-only descriptor of a version this server checked
//! whole (once per version: its identity changes with any rewrite), so
//! the process maps it without hashing its zones; the file the merger
//! published a moment ago is what a process started after gets.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;

use persist::file_identity::FileIdentity;

use crate::counters::Counters;
use crate::state::Shared;
use crate::vouched::memo_matches;

/// The cache file named by `payload`, opened read-only, if it exists and
/// passes every check; Ok(None) if there is none.
pub fn open(shared: &Shared, payload: &[u8]) -> Result<Option<File>, String> {
    let name = persist::server_protocol::cache_name(payload)?;
    let open = || std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(shared.dir.join(name));
    let file = match open() {
        Ok(f) => f,
        // A file this directory lacks may be in the remote store.
        Err(e) if e.kind() == ErrorKind::NotFound && shared.found_remotely(name) => match open() {
            Ok(f) => f,
            Err(_) => return Ok(None),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {name}: {e}")),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    let id = FileIdentity::of(&meta);
    if let Err(why) = vouch_for(shared, name, &file, id) {
        shared.log.line(format_args!("not serving {name}: {why}"));
        return Err(format!("{name}: {why}"));
    }
    Counters::add(&shared.counters.served, 1);
    Ok(Some(file))
}

/// Vouches for the version `id` of the cache file `name`, open as `file`,
/// once it has passed every check (the reason it did not, otherwise):
/// noted for this server, and its memo written so that processes open
/// it themselves. Nothing to do for a version vouched for already.
pub fn vouch_for(shared: &Shared, name: &str, file: &File, id: FileIdentity) -> Result<(), &'static str> {
    let Some(_turn) = shared.vouched.check_turn(name, id) else { return Ok(()) };
    // A version whose memo is there was checked whole before (by this
    // server before a restart, or by a process): trusted, as a process
    // trusts it (`Depth::Trusted`: the header and zone table only).
    // Checking its index's structure again would make the first run
    // after a server start wait for it (python3.11's AOT file: 19 MB
    // of index).
    let lock_path = shared.dir.join(format!("{name}.lock"));
    let memo = File::open(&lock_path).is_ok_and(|l| memo_matches(&l, id));
    let depth = if memo { persist::Depth::Trusted } else { persist::Depth::Full };
    // SAFETY: cache files are replaced by rename, never written in place.
    let map = unsafe { memmap2::Mmap::map(file) }.map_err(|_| "cannot be mapped")?;
    persist::validate_with(&map, depth).map_err(|r| r.name())?;
    shared.vouched.note(name, id);
    if !memo {
        let _ = cachetool::lock::note_verified(&shared.dir.join(name), id);
    }
    Ok(())
}
