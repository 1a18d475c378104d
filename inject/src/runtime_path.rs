//! Locates the `dbi-runtime` executable that dbirun starts.
//!
//! Order: `$DBI_RUNTIME`, then `dbi-runtime` beside the dbirun executable (an
//! installed tree), then the path the build script recorded (a cargo build
//! tree, where the runtime lives in its own target directory).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Overrides the runtime binary (tests, benchmarks, a runtime built elsewhere).
pub const ENV_VAR: &str = "DBI_RUNTIME";
/// File name looked for beside the dbirun executable.
pub const FILE_NAME: &str = "dbi-runtime";

/// Picks the runtime from the three sources; `Err` is the text after `dbirun: `.
///
/// An explicit `$DBI_RUNTIME` that does not exist is an error rather than a
/// reason to fall back: silently running another runtime than the one asked
/// for would make test results lie.
pub fn find(
    env_value: Option<OsString>,
    current_exe: Option<PathBuf>,
    built: &Path,
) -> Result<PathBuf, String> {
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "runtime '{}' (from ${ENV_VAR}) not found",
                path.display()
            ))
        };
    }
    if let Some(beside) = current_exe
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join(FILE_NAME))
    {
        if beside.is_file() {
            return Ok(beside);
        }
    }
    if built.is_file() {
        return Ok(built.to_path_buf());
    }
    Err(format!(
        "cannot find the runtime: set ${ENV_VAR}, or install {FILE_NAME} beside dbirun (not at {} either)",
        built.display()
    ))
}

/// `find` with this process's environment and the build script's path.
pub fn locate() -> Result<PathBuf, String> {
    find(
        std::env::var_os(ENV_VAR),
        std::env::current_exe().ok(),
        Path::new(env!("DBI_RUNTIME_PATH")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn precedence() {
        let dir = std::env::temp_dir().join(format!("dbirun-rtpath-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        let env_rt = dir.join("env-rt");
        let beside = dir.join("bin").join(FILE_NAME);
        let built = dir.join("built-rt");
        for f in [&env_rt, &beside, &built] {
            fs::write(f, "").unwrap();
        }
        let exe = Some(dir.join("bin").join("dbirun"));

        assert_eq!(
            find(Some(env_rt.clone().into()), exe.clone(), &built),
            Ok(env_rt.clone())
        );
        // An empty variable counts as unset.
        assert_eq!(
            find(Some("".into()), exe.clone(), &built),
            Ok(beside.clone())
        );
        assert_eq!(find(None, exe.clone(), &built), Ok(beside.clone()));
        fs::remove_file(&beside).unwrap();
        assert_eq!(find(None, exe.clone(), &built), Ok(built.clone()));
        fs::remove_file(&built).unwrap();
        assert!(find(None, exe.clone(), &built)
            .unwrap_err()
            .contains("cannot find the runtime"));

        let e = find(Some(dir.join("missing").into()), exe, &built).unwrap_err();
        assert!(e.contains("DBI_RUNTIME") && e.contains("not found"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
