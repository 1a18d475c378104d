//! `null`: no instrumentation; every block is persistable. The baseline
//! other clients' overhead is measured against.

use alloc::string::String;

use crate::api::{BlockIr, Client, ClientIdentity, EmitFlags, Services};

pub struct Null {
    options_hash: u64,
}

impl Null {
    pub fn new(options: &[&str]) -> Result<Null, String> {
        crate::options::parse("null", options, |_, _| Ok(None))?;
        Ok(Null { options_hash: crate::options::hash(options) })
    }
}

impl Client for Null {
    fn identity(&self) -> ClientIdentity {
        ClientIdentity { name: "null", version: 1, code_options_hash: self.options_hash }
    }

    fn basic_block(&self, _block: &mut BlockIr, _tls: usize, _services: &dyn Services) -> EmitFlags {
        EmitFlags::PERSISTABLE
    }
}
