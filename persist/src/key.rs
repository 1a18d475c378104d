//! The key a file is valid for: every field must match the run that wants
//! to use it, or the file is not used.

use alloc::string::String;
use alloc::vec::Vec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKey {
    pub name: String,
    pub version: u32,
    pub options_hash: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// blake3 of the module file's contents.
    pub module_hash: [u8; 32],
    /// The clients, in command-line order.
    pub clients: Vec<ClientKey>,
    /// Hash of the thread-context layout cache code addresses through `gs:`.
    pub tls_layout_hash: u64,
    /// Hash of the runtime options that change generated code.
    pub options_hash: u64,
    pub runtime_version: u32,
}

/// The key field that differed, for `-v` and `cachetool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyField {
    ModuleHash,
    Clients,
    TlsLayout,
    Options,
    RuntimeVersion,
}

impl CacheKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.module_hash);
        out.extend_from_slice(&self.tls_layout_hash.to_le_bytes());
        out.extend_from_slice(&self.options_hash.to_le_bytes());
        out.extend_from_slice(&self.runtime_version.to_le_bytes());
        out.extend_from_slice(&(self.clients.len() as u32).to_le_bytes());
        for c in &self.clients {
            out.extend_from_slice(&(c.name.len() as u32).to_le_bytes());
            out.extend_from_slice(c.name.as_bytes());
            out.extend_from_slice(&c.version.to_le_bytes());
            out.extend_from_slice(&c.options_hash.to_le_bytes());
        }
        out
    }

    /// Decodes `bytes` entirely; None if they are not exactly one key.
    pub fn decode(bytes: &[u8]) -> Option<CacheKey> {
        let mut r = Reader { b: bytes };
        let module_hash = r.take(32)?.try_into().ok()?;
        let tls_layout_hash = r.u64()?;
        let options_hash = r.u64()?;
        let runtime_version = r.u32()?;
        let n = r.u32()? as usize;
        let mut clients = Vec::new();
        for _ in 0..n {
            let len = r.u32()? as usize;
            let name = String::from_utf8(r.take(len)?.to_vec()).ok()?;
            clients.push(ClientKey { name, version: r.u32()?, options_hash: r.u64()? });
        }
        r.b.is_empty().then_some(CacheKey { module_hash, clients, tls_layout_hash, options_hash, runtime_version })
    }

    /// The first field in which `self` (a file's key) differs from `want`.
    pub fn mismatch(&self, want: &CacheKey) -> Option<KeyField> {
        if self.module_hash != want.module_hash {
            Some(KeyField::ModuleHash)
        } else if self.clients != want.clients {
            Some(KeyField::Clients)
        } else if self.tls_layout_hash != want.tls_layout_hash {
            Some(KeyField::TlsLayout)
        } else if self.options_hash != want.options_hash {
            Some(KeyField::Options)
        } else if self.runtime_version != want.runtime_version {
            Some(KeyField::RuntimeVersion)
        } else {
            None
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}
