//! Settings of a cache directory, kept in `<dir>/config` as `key = value`
//! lines (written by `cachetool config`, read by every recorder): today the
//! size budget, `max-size`, which every `dbirun -persist` run enforces
//! after recording itself, as ccache's `max_size` is.

use std::path::Path;

pub const FILE: &str = "config";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The cache files' total size budget in bytes.
    pub max_size: Option<u64>,
}

/// The keys `cachetool config KEY VALUE` accepts.
pub const KEYS: &[&str] = &["max-size"];

impl Config {
    /// The configuration of `dir` (defaults when there is no file; lines
    /// this build does not know are ignored).
    pub fn load(dir: &Path) -> Config {
        let text = std::fs::read_to_string(dir.join(FILE)).unwrap_or_default();
        let mut c = Config::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else { continue };
            if k.trim() == "max-size" {
                c.max_size = crate::units::parse_size(v.trim()).ok();
            }
        }
        c
    }

    /// Sets `key` to `value` ("none" clears it); Err is the one-line reason.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "max-size" if value == "none" => self.max_size = None,
            "max-size" => self.max_size = Some(crate::units::parse_size(value)?),
            _ => return Err(format!("unknown setting '{key}' (settings: {})", KEYS.join(", "))),
        }
        Ok(())
    }

    pub fn text(&self) -> String {
        match self.max_size {
            Some(n) => format!("max-size = {}\n", crate::units::human_size_exact(n)),
            None => String::new(),
        }
    }

    /// Writes the configuration of `dir`: a temporary file renamed over
    /// the old one.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{FILE}.tmp.{}", std::process::id()));
        std::fs::write(&tmp, self.text())?;
        std::fs::rename(&tmp, dir.join(FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_save_load() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut c = Config::load(dir.path());
        assert_eq!(c, Config::default());
        c.set("max-size", "2G").unwrap();
        c.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).max_size, Some(2 << 30));
        assert!(c.set("max-size", "lots").is_err());
        assert!(c.set("colour", "red").unwrap_err().contains("unknown setting"));
        c.set("max-size", "none").unwrap();
        c.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).max_size, None);
    }
}
