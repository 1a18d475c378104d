//! Small formatting helpers for client reports.

use alloc::string::String;
use core::fmt::Write;

/// Appends `module+0xoffset` for `pc`, or the bare address.
pub fn location(out: &mut String, services: &dyn crate::api::Services, pc: u64) {
    let mut done = false;
    services.with_module(pc, &mut |m| {
        if let Some(m) = m {
            let _ = write!(out, "{}+{:#x}", m.path, pc - m.base);
            done = true;
        }
    });
    if !done {
        let _ = write!(out, "{pc:#x}");
    }
}
