//! A real S3-compatible server for the remote-store tests: moto's server
//! mode with signatures checked (`tests/servers/s3_server.py`, run by the
//! Python of the virtual environment `scripts/setup.sh` makes), one
//! bucket, one user's access key. The server stops when this is dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct S3Server {
    pub port: u16,
    pub key: String,
    pub secret: String,
    pub bucket: String,
    child: Child,
}

/// The Python that has moto (`scripts/setup.sh` installs it there).
fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("target/test-tools/moto/bin/python");
    assert!(p.is_file(), "{} is missing: run scripts/setup.sh (it installs moto, the S3 test server)", p.display());
    p
}

impl S3Server {
    pub fn start(bucket: &str) -> S3Server {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("servers/s3_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(bucket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the S3 test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let said: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("S3 test server said {line:?}: {e}"));
        let field = |name: &str| said[name].as_str().map(String::from).unwrap_or_else(|| said[name].to_string());
        S3Server { port: field("port").parse().unwrap(), key: field("key"), secret: field("secret"), bucket: field("bucket"), child }
    }

    /// The environment a client of this server needs, with `secret`.
    pub fn env(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key.clone()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.port)),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
