//! A small HTTP cache in bazel-remote's layout, for the remote-store
//! tests: `GET`, `HEAD` and `PUT` of `/<prefix>/cas/<sha256>` (a `PUT`
//! whose body does not hash to its name is refused, as bazel-remote
//! refuses it) and `/<prefix>/ac/<hash>`, kept as files under a directory
//! the test can read and tamper with. It can be told to fail: answer
//! every request with a status, answer late, or demand a password.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every request gets this status (e.g. 500) and no body.
    pub status: Option<u16>,
    /// Each answer waits this long first.
    pub delay: Option<Duration>,
    /// `user:password` a request must carry (HTTP basic auth), else 401.
    pub password: Option<String>,
}

pub struct HttpCache {
    pub port: u16,
    root: PathBuf,
    faults: Arc<Mutex<Faults>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HttpCache {
    /// Serves the objects under `root` on a free loopback port until the
    /// test process ends.
    pub fn start(root: &Path) -> HttpCache {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(Faults::default()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, f, q) = (root.to_path_buf(), faults.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, f, q) = (r.clone(), f.clone(), q.clone());
                std::thread::spawn(move || serve(stream, &r, &f, &q));
            }
        });
        HttpCache { port, root: root.to_path_buf(), faults, requests }
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}/{prefix}", self.port)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// The stored object `name` (`<prefix>/cas/<sha256>`, ...).
    pub fn object(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Every object stored, by name, sorted.
    pub fn objects(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(&self.root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// The requests served so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, root: &Path, faults: &Mutex<Faults>, requests: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    // Answers go out whole at once: a head and a body written apart would
    // wait for the client's delayed ACK (Nagle), 40 ms a request.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
        let mut length = 0usize;
        let mut authorization = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.lock().unwrap().push(format!("{method} {target}"));
        let f = faults.lock().unwrap().clone();
        if let Some(d) = f.delay {
            std::thread::sleep(d);
        }
        let (status, reply) = if let Some(s) = f.status {
            (s, Vec::new())
        } else if f.password.as_ref().is_some_and(|p| authorization.as_deref() != Some(&format!("Basic {}", base64(p.as_bytes())))) {
            (401, Vec::new())
        } else {
            answer(root, &method, &target, body)
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            _ => "Error",
        };
        let length = if method == "HEAD" && status == 200 { object_len(root, &target) } else { reply.len() };
        let mut answer = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\nConnection: keep-alive\r\n\r\n").into_bytes();
        if method != "HEAD" {
            answer.extend_from_slice(&reply);
        }
        if out.write_all(&answer).is_err() {
            return;
        }
    }
}

/// The object a request path names, if it is one of the layout's.
fn object_path(root: &Path, target: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = target.trim_start_matches('/').split('/').collect();
    let n = parts.len();
    let good = n >= 2
        && matches!(parts[n - 2], "cas" | "ac")
        && parts[n - 1].len() == 64
        && parts[n - 1].bytes().all(|b| b.is_ascii_hexdigit())
        && parts.iter().all(|p| !p.is_empty() && *p != "..");
    good.then(|| root.join(parts.join("/")))
}

fn object_len(root: &Path, target: &str) -> usize {
    object_path(root, target).and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len() as usize)
}

fn answer(root: &Path, method: &str, target: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let Some(path) = object_path(root, target) else { return (400, Vec::new()) };
    match method {
        "GET" | "HEAD" => match std::fs::read(&path) {
            Ok(b) => (200, if method == "GET" { b } else { Vec::new() }),
            Err(_) => (404, Vec::new()),
        },
        "PUT" => {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let is_cas = path.parent().unwrap().file_name().unwrap() == "cas";
            if is_cas && hex(&Sha256::digest(&body)) != name {
                return (400, Vec::new());
            }
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &body).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            (200, Vec::new())
        }
        _ => (400, Vec::new()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_as_rfc4648_says() {
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"a"), "YQ==");
    }
}
