//! The `.dpc` persisted-cache file format.
//!
//! Usable from the no_std runtime and from the std tools (the `std` feature
//! is only turned on by the tools). A file is three page-aligned zones, each
//! mapped with its own protection and checked by its own blake3 hash:
//!
//! - **R** (read-only): the [`header`] (magic, format version, the zone
//!   table with lengths and hashes, the [`key`]) and the rkyv-archived
//!   [`index`] of the blocks;
//! - **X** (read + execute): the blocks' code;
//! - **W** (read + write, private): exit slots and the address table the
//!   loader patches.
//!
//! [`validate`] checks a whole file (any length, any bytes) before anything
//! in it is used; [`write::build`] produces one. `docs/dpc-format.md`
//! documents the bytes.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod cache_dir;
pub mod counting_stubs;
pub mod exit_data;
pub mod exit_forms;
pub mod exit_slots;
pub mod file_identity;
pub mod header;
pub mod index;
pub mod key;
pub mod merge;
pub mod run_report;
pub mod server_protocol;
pub mod translations;
pub mod vdso;
pub mod validate;
pub mod write;

pub use header::{Zone, ZoneKind, FORMAT_VERSION, PAGE};
pub use key::{CacheKey, ClientKey, KeyField};
pub use validate::{validate, validate_with, Depth, Reject, Validated};

/// Lower-case hex of `bytes`: how the tools and the remote store's layout
/// spell hashes and keys.
pub fn hex(bytes: &[u8]) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// File name extension of persisted cache files.
pub const FILE_EXTENSION: &str = "dpc";
