//! The cache directory's conventions, in one place for the three programs
//! that meet there: the runtime writes cache files and run reports, dbirun
//! names and reads the reports, cachetool manages everything. Cache files
//! are `<module>-<path hash>-<variant hash>.dpc`; beside each, its `.lock`
//! (writers hold an exclusive flock on it) and, while a writer publishes,
//! `<file>.tmp.<pid>.<hex>` (renamed over the file); run reports are
//! `.report.<pid>.<nanos>`, and those left for later recording
//! `.pending.<nanos>.<pid>` (claimed by a recorder as
//! `.pending.<nanos>.<pid>.claimed.<pid>`).

use alloc::format;
use alloc::string::String;

use crate::FILE_EXTENSION;

/// Appended to a cache file's name for its lock file.
pub const LOCK_SUFFIX: &str = ".lock";
const TEMP_INFIX: &str = ".tmp.";
const REPORT_PREFIX: &str = ".report.";
const PENDING_PREFIX: &str = ".pending.";
pub const CLAIMED_INFIX: &str = ".claimed.";

/// The cache file name for the module whose file is at `module_path` (as
/// mapped) and the run variant tagged `variant_tag` (clients and the
/// options that change emitted code): its file name (without the
/// brackets of a name like `[vdso]`; other characters a shell pattern
/// would take, and all but printable ASCII, become `_`), a hash of the
/// whole path (two modules of one name in different directories), the
/// variant's tag.
pub fn cache_file_name(module_path: &[u8], variant_tag: u64) -> String {
    let name = module_path.rsplit(|&b| b == b'/').next().unwrap_or(module_path);
    let name = String::from_utf8_lossy(name);
    let name: String = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .chars()
        .map(|c| if c.is_ascii_graphic() && !"[]*?".contains(c) { c } else { '_' })
        .collect();
    let path_hash = u64::from_le_bytes(blake3::hash(module_path).as_bytes()[..8].try_into().unwrap());
    format!("{name}-{path_hash:016x}-{variant_tag:016x}.{FILE_EXTENSION}")
}

/// Whether `name` is a cache file's name, as [`cache_file_name`] makes them.
pub fn is_cache_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".dpc") else { return false };
    let mut parts = stem.rsplitn(3, '-');
    let (Some(clients), Some(path), Some(module)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    !module.is_empty() && hex16(clients) && hex16(path) && !name.contains('/')
}

/// What a writer appends to a cache file's name for its temporary copy.
pub fn temp_suffix(pid: u32, nonce: u64) -> String {
    format!("{TEMP_INFIX}{pid}.{nonce:016x}")
}

/// A fresh run report's file name.
pub fn report_name(pid: u32, nanos: u128) -> String {
    format!("{REPORT_PREFIX}{pid}.{nanos}")
}

/// The pid and creation time (Unix nanoseconds) in the name of a run
/// report still being written, if `name` is one.
pub fn report_of(name: &str) -> Option<(i32, u128)> {
    let (pid, nanos) = name.strip_prefix(REPORT_PREFIX)?.split_once('.')?;
    Some((pid.parse().ok()?, nanos.parse().ok()?))
}

/// The name a run report gets when its run could not be recorded at once.
pub fn pending_report_name(nanos: u128, pid: u32) -> String {
    format!("{PENDING_PREFIX}{nanos:020}.{pid}")
}

/// Whether `name` is a pending run report not yet claimed by a recorder.
pub fn is_pending_report(name: &str) -> bool {
    name.strip_prefix(PENDING_PREFIX).is_some_and(|rest| !rest.contains(CLAIMED_INFIX) && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// The name a recorder renames a pending report to while it records it.
pub fn claimed_name(pending: &str, pid: u32) -> String {
    format!("{pending}{CLAIMED_INFIX}{pid}")
}

/// The pid in the name of a temporary copy of a cache file or of a run
/// report (what a process killed mid-write leaves behind), if `name` is
/// one of those.
pub fn leftover_pid(name: &str) -> Option<i32> {
    if name.starts_with(PENDING_PREFIX) {
        // Only a claim can be left over: by a recorder that died.
        let (_, pid) = name.split_once(CLAIMED_INFIX)?;
        return pid.parse().ok();
    }
    let rest = match name.strip_prefix(REPORT_PREFIX) {
        Some(rest) => rest,
        None => {
            let (file, rest) = name.split_once(TEMP_INFIX)?;
            if !is_cache_name(file) {
                return None;
            }
            rest
        }
    };
    rest.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = cache_file_name(b"/usr/lib/x86_64-linux-gnu/libc.so.6", 0x0123_4567_89ab_cdef);
        assert!(name.starts_with("libc.so.6-") && name.ends_with("-0123456789abcdef.dpc"), "{name}");
        assert!(is_cache_name(&name));
        assert_eq!(cache_file_name(b"/a/b c", 1).split('-').next(), Some("b_c"));
        assert_eq!(cache_file_name(b"[vdso]", 1).split('-').next(), Some("vdso"));
        assert_eq!(cache_file_name(b"/a/x[1]*?.so", 1).split('-').next(), Some("x_1___.so"));
        let tmp = format!("{name}{}", temp_suffix(77, 0xff));
        assert_eq!(leftover_pid(&tmp), Some(77));
        assert!(!is_cache_name(&tmp));
        assert!(!is_cache_name(&format!("{name}{LOCK_SUFFIX}")));
        assert_eq!(leftover_pid(&report_name(4242, 123456789)), Some(4242));
        assert_eq!(leftover_pid("notes.tmp.77.00ff"), None);
        let pending = pending_report_name(123, 55);
        assert!(is_pending_report(&pending));
        assert_eq!(leftover_pid(&pending), None, "a pending report is waiting, not left over");
        let claimed = claimed_name(&pending, 66);
        assert!(!is_pending_report(&claimed));
        assert_eq!(leftover_pid(&claimed), Some(66));
    }

    #[test]
    fn cache_names() {
        assert!(is_cache_name("libc.so.6-0123456789abcdef-fedcba9876543210.dpc"));
        assert!(is_cache_name("a-b-0123456789abcdef-fedcba9876543210.dpc"));
        assert!(!is_cache_name("-0123456789abcdef-fedcba9876543210.dpc"));
        assert!(!is_cache_name("x-0123-fedcba9876543210.dpc"));
        assert!(!is_cache_name("index.sqlite"));
        assert_eq!(leftover_pid("index.sqlite"), None);
    }
}
