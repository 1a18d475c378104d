//! Parsing client options: `-flag` and `-name VALUE`, with a stable hash of
//! those that change emitted code (part of the client's identity, see
//! `ClientIdentity::code_options_hash`).

use alloc::format;
use alloc::string::String;

/// FNV-1a over the options, separated by NULs: a client passes the ones
/// that change the code it emits.
pub fn hash(options: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for o in options {
        for b in o.bytes().chain(core::iter::once(0)) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Walks `options`, giving each to `accept(option, next)`; `accept` returns
/// how many it consumed (1, or 2 with a value) or None for an unknown one.
pub fn parse(
    client: &str,
    options: &[&str],
    mut accept: impl FnMut(&str, Option<&str>) -> Result<Option<usize>, String>,
) -> Result<(), String> {
    let mut i = 0;
    while i < options.len() {
        match accept(options[i], options.get(i + 1).copied())? {
            Some(n) => i += n,
            None => return Err(format!("client {client}: unknown option '{}'", options[i])),
        }
    }
    Ok(())
}

/// A decimal value for `option`.
pub fn number(client: &str, option: &str, value: Option<&str>) -> Result<u64, String> {
    value
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("client {client}: {option} needs a number"))
}
