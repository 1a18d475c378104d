//! `cachetool server start|status|stop` with the real dbicached (built
//! beside cachetool by `cargo build --release`).

mod common;

use common::*;

#[test]
fn server_start_status_stop() {
    let c = Cache::new();
    c.run_ok(&[], "/usr/bin/true", &[]);
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_cachetool")).with_file_name("dbicached");
    assert!(beside.is_file(), "{} is missing: run `cargo build --release` first", beside.display());
    assert!(c.tool_ok(&["server", "start", "--idle", "30"]).contains("server started"));
    let status = c.json(&["server", "status"]);
    let pid = status["pid"].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(c.tool_ok(&["server", "start"]).contains("already runs"), "one server per directory");
    assert_eq!(c.json(&["server", "status"])["pid"].as_u64(), Some(pid));
    assert!(c.tool_ok(&["server", "stop"]).contains("stopped"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while c.tool(&["server", "status"]).status.success() {
        assert!(std::time::Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = c.tool(&["server", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("cachetool: no server for "), "{}", text(&out.stderr));
}
