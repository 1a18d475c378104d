//! Built-in instrumentation clients.
//!
//! The client API and the clients arrive with the client issue; the runtime
//! currently runs every block uninstrumented, which is what the `null` client
//! will formalise.
#![no_std]

/// Names of the clients `dbirun -c NAME` will accept.
pub const BUILT_IN: &[&str] = &["null"];
