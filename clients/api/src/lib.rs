//! The client API: what an instrumentation client sees and may do.
//!
//! A client implements [`Client`]. For every basic block the runtime builds,
//! each client's [`Client::basic_block`] sees the block as a [`BlockIr`]: the
//! application instructions, to which it adds *meta* instructions (inline
//! counters, stores to its buffers). Meta instructions are observational:
//! they must leave the application's registers, flags and memory as they
//! found them (the helpers in [`inline`] do the saving), and must not be
//! RIP-relative to application code. The runtime provides per-thread raw TLS
//! slots reached with one `gs:` operand, memory within reach of RIP-relative
//! operands from the code cache, output files and module lookups through
//! [`Services`].
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod client;
pub mod inline;
pub mod ir;
pub mod services;

pub use client::{CleanCallContext, Client, ClientIdentity, EmitFlags, PersistedBlock};
pub use ir::{BlockIr, Item, ItemKind};
pub use services::{ModuleRef, Services};

/// Raw TLS slots each client may use, per thread.
pub const TLS_SLOTS_PER_CLIENT: usize = 8;
