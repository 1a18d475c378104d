//! The per-user directory of persisted code caches (`<base>/<uid>`, mode
//! 0700, refused when someone else could have put code there): shared with
//! `cachetool`, which reads the same directory.

pub use cachetool::cache_dir::{default_base, prepare};
