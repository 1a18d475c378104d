//! The key of this run's persisted files: everything besides the module
//! that changes the code a block becomes (clients, thread-context layout,
//! code-affecting options, the runtime build).

use alloc::string::String;
use alloc::vec::Vec;

use persist::{CacheKey, ClientKey};

use crate::thread::offsets as off;

/// The runtime's version for cache keys: a hash of the sources it was
/// built from (runtime, clients, format), so any change of the code
/// generator makes old files unused.
pub(crate) fn runtime_version() -> u32 {
    u32::from_str_radix(env!("DBI_RUNTIME_VERSION"), 16).unwrap_or(0)
}

/// The first 8 bytes of what `h` has hashed, as the key's u64 fields
/// take them.
fn first_u64(h: &blake3::Hasher) -> u64 {
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap())
}

fn tls_layout_hash() -> u64 {
    let layout = [
        core::mem::size_of::<crate::thread::ThreadContext>(),
        off::GPR,
        off::SPILL,
        off::IBL_RCX,
        off::IBL_RAX,
        off::IBL_RDX,
        off::IBL_FLAGS,
        off::IBL_TARGET,
        off::IBL_TABLE,
        off::IBL_MASK,
        off::IBL_LOOKUPS,
        off::IBL_MISS_HANDLER,
        off::IBL_SLOW_PATH,
        off::DISPATCHER_MISS,
        off::FCACHE_RETURN,
        off::SIGNAL_PENDING,
        off::RET_MASK,
        off::RET_CACHE,
        off::CLIENT_TLS,
        off::CLIENT_FLAGS_SPILL,
        clients::api::TLS_SLOTS_PER_CLIENT,
    ];
    let mut h = blake3::Hasher::new();
    for v in layout {
        h.update(&(v as u64).to_le_bytes());
    }
    first_u64(&h)
}

/// Options that change generated code: `-stats` counts indirect lookups
/// in the lookup code itself; without it, the lookup code probes first
/// with BMI2's `pext` where the CPU has it (a file shared with a machine
/// without BMI2 must not hold that code). `-traces`: a file for runs with
/// traces holds them, and its exits are readied for them
/// (`persist::merge::ready_for_traces`). `-predicted_returns` (on a CPU
/// with BMI2): calls and returns in another form (`translate/returns.rs`).
fn options_hash() -> u64 {
    let stats = crate::options::get().stats as u64;
    let mut h = blake3::Hasher::new();
    h.update(&stats.to_le_bytes());
    if crate::options::get().traces {
        h.update(b"traces");
    }
    if crate::translate::ibl::flag_free_probe() {
        h.update(b"flag-free first probe");
    }
    if crate::translate::returns::enabled() {
        h.update(b"predicted returns");
    }
    first_u64(&h)
}

/// The options this run's code was built with, as dbirun takes them
/// (recorded in each file for `cachetool aot --from-index`).
pub(crate) fn dbirun_options() -> Vec<String> {
    let o = crate::options::get();
    let mut out = Vec::new();
    if o.stats {
        out.push(String::from("-stats"));
    }
    if !o.traces {
        out.push(String::from(persist::index::NO_TRACES));
    }
    if o.predicted_returns {
        out.push(String::from("-predicted_returns"));
    }
    for (name, options) in &o.clients {
        out.push(String::from("-c"));
        out.push(String::from_utf8_lossy(name.as_bytes()).into_owned());
        out.extend(options.iter().map(|w| String::from_utf8_lossy(w.as_bytes()).into_owned()));
    }
    out
}

/// The key's options hash for a module at `base`: code that names the
/// module's addresses outright (`mangle::names_addresses_outright`) is
/// valid only at this base, which the hash then includes, so a file made
/// there is never used elsewhere.
fn options_hash_at(base: u64) -> u64 {
    let options = options_hash();
    if !crate::translate::mangle::names_addresses_outright(base) {
        return options;
    }
    let mut h = blake3::Hasher::new();
    h.update(&options.to_le_bytes());
    h.update(&base.to_le_bytes());
    first_u64(&h)
}

/// The key of a file for the module at `base` with content hash
/// `module_hash`.
pub(crate) fn key_for(module_hash: [u8; 32], base: u64) -> CacheKey {
    let clients = crate::client_host::identities()
        .into_iter()
        .map(|c| ClientKey { name: String::from(c.name), version: c.version, options_hash: c.code_options_hash })
        .collect::<Vec<_>>();
    CacheKey {
        module_hash,
        clients,
        tls_layout_hash: tls_layout_hash(),
        options_hash: options_hash_at(base),
        runtime_version: runtime_version(),
    }
}

/// A short hash of this run's variant, for file names: the clients (name,
/// version, code-affecting options, order) and the runtime's code-affecting
/// options. Runs that emit different code keep different files side by
/// side; a changed module, runtime build or thread layout finds the old
/// file, reports which key field differs and replaces it.
pub(crate) fn variant_tag() -> u64 {
    let mut h = blake3::Hasher::new();
    for c in crate::client_host::identities() {
        h.update(c.name.as_bytes());
        h.update(&[0]);
        h.update(&c.version.to_le_bytes());
        h.update(&c.code_options_hash.to_le_bytes());
    }
    h.update(&options_hash().to_le_bytes());
    first_u64(&h)
}
