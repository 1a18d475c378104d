//! Signed manifests. Local checks prove a fetched file is intact and made
//! for this module, not that its code is a faithful translation: whoever
//! can write to the store could plant code a later process runs. With
//! signing on, a machine takes a file only if its manifest (which names
//! the file by its sha256, and its key) carries an ed25519 signature by a
//! key the user trusts. Keys come from the environment (or the command
//! line), never from a file the tools write: `DBIRUN_SIGNING_KEY` holds
//! the pushing side's secret key, `DBIRUN_TRUSTED_KEYS` the public keys a
//! pulling side trusts (comma-separated), all in hex.

use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use crate::layout::{hex, unhex, Manifest};

/// The environment variable holding the secret key manifests are signed with.
pub const SIGNING_KEY_ENV: &str = "DBIRUN_SIGNING_KEY";
/// The environment variable listing the public keys whose signatures are trusted.
pub const TRUSTED_KEYS_ENV: &str = "DBIRUN_TRUSTED_KEYS";

/// A manifest's signature, and the public key that made it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signature {
    pub public_key: String,
    pub signature: String,
}

/// The key manifests are signed with.
pub struct Signer {
    key: ed25519_dalek::SigningKey,
}

impl Signer {
    /// From 32 bytes of secret key in hex.
    pub fn parse(text: &str) -> Result<Signer, String> {
        let seed: [u8; 32] = unhex(text.trim()).and_then(|b| b.try_into().ok()).ok_or("a signing key is 64 hex digits")?;
        Ok(Signer { key: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }

    /// `DBIRUN_SIGNING_KEY`'s key; None when it is not set.
    pub fn from_env() -> Result<Option<Signer>, String> {
        match std::env::var(SIGNING_KEY_ENV) {
            Ok(v) if !v.is_empty() => Signer::parse(&v).map(Some).map_err(|e| format!("{SIGNING_KEY_ENV}: {e}")),
            _ => Ok(None),
        }
    }

    /// A new key from the system's random source.
    pub fn generate() -> Result<Signer, String> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("no random bytes: {e}"))?;
        Ok(Signer { key: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }

    pub fn secret_hex(&self) -> String {
        hex(&self.key.to_bytes())
    }

    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// Signs `m` (replacing any signature it had).
    pub fn sign(&self, m: &mut Manifest) {
        let sig = self.key.sign(&signed_bytes(m));
        m.signature = Some(Signature { public_key: self.public_hex(), signature: hex(&sig.to_bytes()) });
    }
}

/// The public keys whose signatures a machine accepts; signing is on
/// when there is at least one.
#[derive(Default)]
pub struct Trust {
    keys: Vec<ed25519_dalek::VerifyingKey>,
}

impl Trust {
    /// From public keys in hex (each 64 digits), plus `DBIRUN_TRUSTED_KEYS`.
    pub fn from_keys_and_env(keys: &[String]) -> Result<Trust, String> {
        let env = std::env::var(TRUSTED_KEYS_ENV).unwrap_or_default();
        let mut trust = Trust::default();
        for text in keys.iter().map(String::as_str).chain(env.split(',')).map(str::trim).filter(|t| !t.is_empty()) {
            let bytes: [u8; 32] = unhex(text).and_then(|b| b.try_into().ok()).ok_or_else(|| format!("trusted key '{text}': not 64 hex digits"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| format!("trusted key '{text}': not an ed25519 public key"))?;
            trust.keys.push(key);
        }
        Ok(trust)
    }

    pub fn is_on(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether `m` may be taken: always when signing is off; else only
    /// with a valid signature by a trusted key. Err says why not.
    pub fn admits(&self, m: &Manifest) -> Result<(), String> {
        if !self.is_on() {
            return Ok(());
        }
        let Some(s) = &m.signature else { return Err("unsigned (signing is on)".into()) };
        let Some(key) = self.keys.iter().find(|k| hex(k.as_bytes()) == s.public_key) else {
            return Err(format!("signed by a key not trusted here ({})", short(&s.public_key)));
        };
        let sig: [u8; 64] = unhex(&s.signature).and_then(|b| b.try_into().ok()).ok_or("bad signature (malformed)")?;
        key.verify(&signed_bytes(m), &ed25519_dalek::Signature::from_bytes(&sig)).map_err(|_| "bad signature (the manifest was changed after signing)".to_string())
    }
}

fn short(hex_key: &str) -> &str {
    hex_key.get(..16).unwrap_or(hex_key)
}

/// What a signature covers: every field of the manifest but the
/// signature, each length-prefixed.
fn signed_bytes(m: &Manifest) -> Vec<u8> {
    let mut out = b"dbirun manifest signature v1\0".to_vec();
    let numbers = [m.layout as u64, m.format_version as u64, m.size, m.stored_size, m.blocks, m.pushed as u64];
    for n in numbers {
        out.extend_from_slice(&n.to_le_bytes());
    }
    for s in [&m.runtime_version, &m.key, &m.name, &m.module_path, &m.module_hash, &m.sha256, &m.encoding, &m.stored_sha256] {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{sha256_hex, LAYOUT_VERSION};

    fn manifest() -> Manifest {
        Manifest {
            layout: LAYOUT_VERSION,
            format_version: persist::FORMAT_VERSION,
            runtime_version: "01234567".into(),
            key: "00".into(),
            name: "x.dpc".into(),
            module_path: "/x".into(),
            module_hash: "11".into(),
            size: 1,
            sha256: sha256_hex(b"x"),
            encoding: "zstd".into(),
            stored_size: 1,
            stored_sha256: sha256_hex(b"y"),
            blocks: 1,
            pushed: 5,
            signature: None,
        }
    }

    #[test]
    fn only_trusted_untouched_signatures_are_admitted() {
        let ours = Signer::generate().unwrap();
        let theirs = Signer::generate().unwrap();
        let trust = Trust::from_keys_and_env(&[ours.public_hex()]).unwrap();
        let mut m = manifest();
        assert!(Trust::default().admits(&m).is_ok(), "signing off: anything");
        assert!(trust.admits(&m).unwrap_err().contains("unsigned"));
        ours.sign(&mut m);
        assert!(trust.admits(&m).is_ok());
        let mut changed = m.clone();
        changed.sha256 = sha256_hex(b"planted");
        assert!(trust.admits(&changed).unwrap_err().contains("bad signature"));
        let mut other = manifest();
        theirs.sign(&mut other);
        assert!(trust.admits(&other).unwrap_err().contains("not trusted"));
        assert_eq!(Signer::parse(&ours.secret_hex()).unwrap().public_hex(), ours.public_hex());
        assert!(Signer::parse("zz").is_err());
        assert!(Trust::from_keys_and_env(&["12".into()]).is_err());
    }
}
