//! Finds the application's file the way bash does, with bash's messages and its 126/127 statuses.
//!
//! The runtime opens the file itself (there is no execve of the application), so
//! every failure a shell would report from execve has to be found here first:
//! scripts and CI that test `$? -eq 127` must see the same status as natively.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{access, AccessFlags};

/// glibc's and the shells' fallback search path.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why APP cannot be run; `Display` gives the text after `dbirun: `.
#[derive(Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// A bare name not found in any PATH directory.
    CommandNotFound(OsString),
    /// Any other failure, reported as bash does: `NAME: strerror(errno)`.
    Os { shown: OsString, errno: Errno },
}

impl ResolveError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ResolveError::CommandNotFound(_) => 127,
            ResolveError::Os {
                errno: Errno::ENOENT,
                ..
            } => 127,
            ResolveError::Os { .. } => 126,
        }
    }
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::CommandNotFound(name) => {
                write!(f, "{}: command not found", name.to_string_lossy())
            }
            ResolveError::Os { shown, errno } => {
                write!(f, "{}: {}", shown.to_string_lossy(), errno.desc())
            }
        }
    }
}

/// What stat and access(2) say about one candidate file.
#[derive(Debug, PartialEq, Eq)]
enum Candidate {
    Executable,
    Directory,
    NotExecutable,
    Missing(Errno),
}

fn examine(path: &Path) -> Candidate {
    match std::fs::metadata(path) {
        Err(e) => Candidate::Missing(Errno::from_raw(
            e.raw_os_error().unwrap_or(Errno::ENOENT as i32),
        )),
        Ok(meta) if meta.is_dir() => Candidate::Directory,
        Ok(_) => {
            // access() rather than mode bits: it answers for this user, ACLs and
            // root's "at least one x bit" rule included.
            match access(path, AccessFlags::X_OK) {
                Ok(()) => Candidate::Executable,
                Err(_) => Candidate::NotExecutable,
            }
        }
    }
}

/// Resolves APP; `path_var` is `$PATH` (None when unset).
pub fn resolve(app: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, ResolveError> {
    if app.as_bytes().contains(&b'/') {
        let path = Path::new(app);
        let shown = app.to_os_string();
        return match examine(path) {
            Candidate::Executable => Ok(path.to_path_buf()),
            Candidate::Directory => Err(ResolveError::Os {
                shown,
                errno: Errno::EISDIR,
            }),
            Candidate::NotExecutable => Err(ResolveError::Os {
                shown,
                errno: Errno::EACCES,
            }),
            Candidate::Missing(errno) => Err(ResolveError::Os { shown, errno }),
        };
    }

    let search = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    // bash remembers the first existing non-directory that is not executable and
    // reports "Permission denied" for it when nothing executable turns up later.
    let mut not_executable: Option<PathBuf> = None;
    if !app.is_empty() {
        for dir in search.as_bytes().split(|&b| b == b':') {
            // An empty element means the current directory (POSIX).
            let dir = if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(OsStr::from_bytes(dir))
            };
            let candidate = dir.join(app);
            match examine(&candidate) {
                Candidate::Executable => return Ok(candidate),
                Candidate::NotExecutable if not_executable.is_none() => {
                    not_executable = Some(candidate)
                }
                _ => {}
            }
        }
    }
    match not_executable {
        Some(path) => Err(ResolveError::Os {
            shown: path.into_os_string(),
            errno: Errno::EACCES,
        }),
        None => Err(ResolveError::CommandNotFound(app.to_os_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("dbirun-resolve-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        fn file(&self, name: &str, mode: u32) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn explicit_paths() {
        let d = Dir::new("explicit");
        let exe = d.file("exe", 0o755);
        let plain = d.file("plain", 0o644);
        assert_eq!(resolve(exe.as_os_str(), None), Ok(exe.clone()));

        let e = resolve(plain.as_os_str(), None).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (format!("{}: Permission denied", plain.display()), 126)
        );

        let e = resolve(d.0.as_os_str(), None).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (format!("{}: Is a directory", d.0.display()), 126)
        );

        let missing = d.0.join("missing");
        let e = resolve(missing.as_os_str(), None).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (
                format!("{}: No such file or directory", missing.display()),
                127
            )
        );

        let through_file = exe.join("x");
        let e = resolve(through_file.as_os_str(), None).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (format!("{}: Not a directory", through_file.display()), 126)
        );
    }

    #[test]
    fn path_search() {
        let a = Dir::new("path-a");
        let b = Dir::new("path-b");
        a.file("tool", 0o644);
        let good = b.file("tool", 0o755);
        fs::create_dir(a.0.join("sub")).unwrap();
        b.file("sub", 0o755);
        let path = format!("{}:{}", a.0.display(), b.0.display());

        // A non-executable file earlier in PATH is skipped for a later executable one.
        assert_eq!(resolve(os("tool"), Some(os(&path))), Ok(good));
        // Directories are skipped too.
        assert_eq!(resolve(os("sub"), Some(os(&path))), Ok(b.0.join("sub")));

        let e = resolve(os("nope-xyz"), Some(os(&path))).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            ("nope-xyz: command not found".into(), 127)
        );

        // Only a non-executable candidate: bash names the file it found.
        let only_a = a.0.display().to_string();
        let e = resolve(os("tool"), Some(os(&only_a))).unwrap_err();
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (
                format!("{}: Permission denied", a.0.join("tool").display()),
                126
            )
        );

        let e = resolve(os(""), Some(os(&path))).unwrap_err();
        assert_eq!(e.exit_code(), 127);
    }

    #[test]
    fn unset_path_uses_the_default() {
        let found = resolve(os("sh"), None).unwrap();
        assert!(
            DEFAULT_PATH
                .split(':')
                .any(|d| found == Path::new(d).join("sh")),
            "{found:?}"
        );
    }
}
