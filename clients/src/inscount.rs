//! `inscount`: counts every application instruction executed, inline: one
//! `add gs:[slot], N` per block (flags saved only where live), summed over
//! threads at their exit. `-only_from_app` counts only the program's own
//! code, not its libraries.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::api::inline::{add_to, cheapest_counter_point, gs_slot, preserving_flags};
use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};

pub struct InsCount {
    only_from_app: bool,
    options_hash: u64,
    total: AtomicU64,
}

impl InsCount {
    pub fn new(options: &[&str]) -> Result<InsCount, String> {
        let mut only_from_app = false;
        crate::options::parse("inscount", options, |o, _| match o {
            "-only_from_app" => {
                only_from_app = true;
                Ok(Some(1))
            }
            _ => Ok(None),
        })?;
        // -only_from_app leaves libraries uninstrumented: other code.
        let code_options: &[&str] = if only_from_app { &["-only_from_app"] } else { &[] };
        Ok(InsCount { only_from_app, options_hash: crate::options::hash(code_options), total: AtomicU64::new(0) })
    }
}

impl Client for InsCount {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "inscount", version: 1, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, block: &mut BlockIr, tls: usize, services: &dyn Services) -> EmitFlags {
        if self.only_from_app {
            let mut in_app = false;
            services.with_module(block.tag, &mut |m| in_app = m.is_some_and(|m| m.is_main));
            if !in_app {
                return EmitFlags::PERSISTABLE;
            }
        }
        let n = block.app_count() as i32;
        if n == 0 {
            return EmitFlags::PERSISTABLE;
        }
        let (at, live) = cheapest_counter_point(block);
        let code = preserving_flags(live, services.flags_spill_offset(), vec![add_to(gs_slot(tls), n)]);
        block.insert_meta(at, code);
        EmitFlags::PERSISTABLE
    }

    fn thread_exit(&self, slots: &mut [u64], _services: &dyn Services) {
        self.total.fetch_add(slots[0], Relaxed);
        slots[0] = 0;
    }

    fn process_exit(&self, services: &dyn Services) {
        let text = format!(
            "Instrumentation results: {} instructions executed{}\n",
            self.total.load(Relaxed),
            if self.only_from_app { " in the application's own code" } else { "" }
        );
        services.write_output("inscount", "log", None, text.as_bytes());
        // And on the user's terminal, as DynamoRIO's sample prints it.
        services.summary("inscount", text.trim_end());
    }
}
