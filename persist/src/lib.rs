//! The `.dpc` persisted-cache file format.
//!
//! Usable from the no_std runtime and from the std tools; the `std` feature is
//! only turned on by the tools. The format itself arrives with the persistence
//! issue; for now this crate only fixes the names every key is built from.
#![cfg_attr(not(feature = "std"), no_std)]

/// Version of the on-disk format; part of every file's key.
pub const FORMAT_VERSION: u32 = 0;

/// File name extension of persisted cache files.
pub const FILE_EXTENSION: &str = "dpc";
