//! APP's file, found as dbirun-full finds it (`inject/src/resolve.rs`,
//! bash's rules): a name with a slash is taken as it is, a bare name is
//! looked up in `$PATH` (default `/usr/local/bin:/usr/bin:/bin`, an empty
//! element meaning the working directory); the first executable
//! non-directory wins. Only a found file is the front's: every failure,
//! with bash's message and status, is dbirun-full's.

use alloc::vec::Vec;

const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/usr/bin:/bin";

/// Whether `path` (followed through symlinks) is a non-directory this
/// user may execute, by access(2) as dbirun-full asks.
fn executable(path: &[u8]) -> bool {
    let Ok(meta) = rustix::fs::stat(path) else { return false };
    rustix::fs::FileType::from_raw_mode(meta.st_mode) != rustix::fs::FileType::Directory
        && rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// The file to load for APP, as dbirun-full would pass it to the runtime.
pub fn resolve(app: &[u8], path_var: Option<&[u8]>) -> Option<Vec<u8>> {
    if app.contains(&b'/') {
        return executable(app).then(|| app.to_vec());
    }
    if app.is_empty() {
        return None;
    }
    path_var.unwrap_or(DEFAULT_PATH).split(|&b| b == b':').find_map(|dir| {
        // `Path::join`: one slash between, none added after a trailing one.
        let mut candidate = if dir.is_empty() { b".".to_vec() } else { dir.to_vec() };
        if !candidate.ends_with(b"/") {
            candidate.push(b'/');
        }
        candidate.extend_from_slice(app);
        executable(&candidate).then_some(candidate)
    })
}
