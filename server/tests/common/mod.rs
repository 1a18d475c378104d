//! What the server's tests share: starting a real dbicached on a
//! directory and waiting for it to answer.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use persist::server_protocol::{request, Kind};

pub fn start(dir: &Path, idle: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dbicached")).arg("--dir").arg(dir).args(["--idle", idle]).spawn().unwrap()
}

/// Waits until the server of `dir` answers a status request; the status.
pub fn wait_ready(dir: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(reply) = request(dir, Kind::Status) {
            return serde_json::from_slice(&reply).unwrap();
        }
        assert!(Instant::now() < deadline, "the server did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A valid cache file: no blocks, so merging it publishes nothing either.
pub fn empty_file() -> Vec<u8> {
    let key = persist::CacheKey { module_hash: [7; 32], clients: vec![], tls_layout_hash: 1, options_hash: 2, runtime_version: 3 };
    persist::write::build(&key, &persist::index::Index::default(), &[])
}

/// A name a cache file may have.
pub const NAME: &str = "libfoo.so-0123456789abcdef-0123456789abcdef.dpc";
