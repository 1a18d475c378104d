//! An installed dbirun works without the checkout (issue 13): the install
//! script puts dbirun (its front and dbirun-full), its runtime and cachetool in PREFIX/bin, and the
//! installed tools run with the build tree hidden (a tmpfs mounted over
//! `target/` in a private user and mount namespace), persisting caches the
//! installed cachetool reads.

use std::path::Path;
use std::process::Command;

use dbi_tests::temp_dir;

#[test]
fn installed_tools_run_without_the_build_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    let prefix = temp_dir("install");
    let out = Command::new("sh").arg(root.join("scripts/install.sh")).arg("--skip-build").arg(prefix.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bin = prefix.path().join("bin");
    for f in ["dbirun", "dbirun-full", "dbi-runtime", "cachetool", "dbicached"] {
        assert!(bin.join(f).is_file(), "{f} not installed");
    }
    for page in ["dbirun.1", "cachetool.1"] {
        let text = std::fs::read_to_string(prefix.path().join("share/man/man1").join(page)).unwrap();
        let name = page.trim_end_matches(".1");
        assert!(text.contains(&format!(".TH {name} 1")) && text.contains("persist"), "{page}:\n{text}");
    }
    let cache = prefix.path().join("cache");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let hidden = |args: &[&str]| {
        dbi_tests::with_private_tmpfs(&target, "", r#""$@""#)
            .args(args)
            .env_remove("DBI_RUNTIME")
            .output()
            .unwrap()
    };
    let dbirun = bin.join("dbirun");
    let cachetool = bin.join("cachetool");
    let (dbirun, cachetool, cache) = (dbirun.to_str().unwrap(), cachetool.to_str().unwrap(), cache.to_str().unwrap());
    let o = hidden(&[dbirun, "-persist", "-persist_dir", cache, "--", "/bin/echo", "hi"]);
    assert_ne!(o.status.code(), Some(99), "could not hide the build tree: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"hi\n");
    // The first run started the directory's server: the next is the
    // front's own, with the runtime found beside it.
    let o = hidden(&[dbirun, "-persist", "-persist_dir", cache, "--", "/bin/echo", "again"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"again\n");
    let o = hidden(&[cachetool, "--persist-dir", cache, "verify"]);
    assert!(o.status.success(), "the installed cachetool agrees with the installed runtime: {}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("all valid"));
}
