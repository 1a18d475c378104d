//! One cache file as the index knows it (what its R zone said when it was
//! last read, and its use), and what that means for this build.

use serde::Serialize;

use crate::cache_file::{Status, Summary, Unreadable};
use crate::module_file::{Identity, Modules};

#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    pub name: String,
    /// Why the file cannot be read (None when it can); key fields are None then.
    pub problem: Option<String>,
    pub format_version: Option<u32>,
    pub runtime_version: Option<u32>,
    pub module_path: Option<String>,
    pub module_hash: Option<String>,
    pub module_identity: Option<[u64; 5]>,
    pub tls_layout_hash: Option<String>,
    pub options_hash: Option<String>,
    pub clients: Option<String>,
    pub file_size: u64,
    pub r_size: u64,
    pub w_size: u64,
    pub x_size: u64,
    pub zones: u64,
    pub segments: u64,
    pub blocks: u64,
    /// Unix seconds.
    pub created: i64,
    pub last_used: Option<i64>,
    pub use_count: i64,
    /// Not owned by this user or writable by others (from the last stat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    #[serde(skip)]
    pub(crate) file_identity: Option<Identity>,
}

impl FileEntry {
    /// What reading the file `name` gave.
    pub fn from_read(name: &str, file: Identity, read: &Result<Summary, Unreadable>) -> FileEntry {
        let mut e = FileEntry {
            name: name.to_string(),
            problem: None,
            format_version: None,
            runtime_version: None,
            module_path: None,
            module_hash: None,
            module_identity: None,
            tls_layout_hash: None,
            options_hash: None,
            clients: None,
            file_size: file.size,
            r_size: 0,
            w_size: 0,
            x_size: 0,
            zones: 0,
            segments: 0,
            blocks: 0,
            created: (file.mtime_ns / 1_000_000_000) as i64,
            last_used: None,
            use_count: 0,
            ownership: None,
            file_identity: Some(file),
        };
        match read {
            Ok(s) => {
                e.format_version = Some(s.format_version);
                e.runtime_version = Some(s.runtime_version);
                e.module_path = Some(s.module_path.clone());
                e.module_hash = Some(s.module_hash.clone());
                e.module_identity = Some(s.module_identity);
                e.tls_layout_hash = Some(s.tls_layout_hash.clone());
                e.options_hash = Some(s.options_hash.clone());
                e.clients = Some(s.clients_summary());
                e.r_size = s.zone_bytes("R");
                e.w_size = s.zone_bytes("W");
                e.x_size = s.zone_bytes("X");
                e.zones = s.zones.len() as u64;
                e.segments = s.segments;
                e.blocks = s.blocks;
            }
            Err(Unreadable::OtherFormat(v)) => {
                e.format_version = Some(*v);
                e.problem = Some(format!("format version {v}"));
            }
            Err(Unreadable::Corrupt(r)) => e.problem = Some(r.name().to_string()),
        }
        e
    }

    /// The module's name for tables: its path, or `?` for an unreadable file.
    pub fn module(&self) -> &str {
        self.module_path.as_deref().unwrap_or("?")
    }

    /// The key, short: `rt 1a2b3c4d clients none opts 0123abcd`.
    pub fn key_summary(&self) -> String {
        match (&self.runtime_version, &self.clients, &self.options_hash) {
            (Some(rt), Some(c), Some(o)) => format!("rt {rt:08x} clients {c} opts {}", &o[..8.min(o.len())]),
            _ => match self.format_version {
                Some(v) => format!("format {v}"),
                None => "-".into(),
            },
        }
    }

    /// Whether this build could use the file (its clients, options and
    /// thread layout can only be compared by a run).
    pub fn status(&self, modules: &mut Modules) -> Status {
        if let Some(v) = self.format_version.filter(|&v| v != crate::FORMAT_VERSION) {
            return Status::OtherVersion(format!("format {v}, this build reads {}", crate::FORMAT_VERSION));
        }
        if let Some(p) = &self.problem {
            return Status::Corrupt(p.clone());
        }
        if let Some(o) = &self.ownership {
            return Status::Unsafe(o.clone());
        }
        let rt = self.runtime_version.unwrap_or(0);
        if rt != crate::RUNTIME_VERSION {
            return Status::OtherVersion(format!("runtime {rt:08x}, this build is {:08x}", crate::RUNTIME_VERSION));
        }
        let (Some(path), Some(id), Some(hash)) = (&self.module_path, self.module_identity, &self.module_hash) else {
            return Status::Corrupt("incomplete index row".into());
        };
        match modules.matches(path, id, hash) {
            None => Status::Orphan,
            Some(false) => Status::Stale,
            Some(true) => Status::Valid,
        }
    }
}

pub(crate) fn identity_text(id: [u64; 5]) -> String {
    id.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
}

pub(crate) fn identity_parse(text: &str) -> Option<[u64; 5]> {
    let v: Vec<u64> = text.split(',').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    v.try_into().ok()
}
