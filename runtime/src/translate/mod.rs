//! The translation pipeline, in DynamoRIO's stage names: decode a block
//! (`bb_builder`), rewrite it (`mangle`), encode it into the code cache
//! (`emit`, `encoder`, `code_cache`, `segment`), link its exits (`link`),
//! let the CPU predict returns (`returns`), look up indirect targets in
//! the cache (`ibl`, and in loaded cache files' block tables:
//! `file_lookup`), remember every block
//! (`fragment`, by app page: `tags_by_page`, and those removed while a
//! thread may still run them: `retired`), join hot paths of blocks into traces (`trace`,
//! `trace_table`), and keep blocks of writable code in step with the app's
//! writes (`smc`). Uses `os` only, besides the shared thread context and
//! counters.

pub(crate) mod address_map;
pub(crate) mod bb_builder;
pub(crate) mod code_cache;
pub(crate) mod emit;
pub(crate) mod encoder;
pub(crate) mod file_lookup;
pub(crate) mod fragment;
pub(crate) mod ibl;
pub(crate) mod link;
pub(crate) mod mangle;
pub(crate) mod retired;
pub(crate) mod returns;
pub(crate) mod segment;
pub(crate) mod smc;
pub(crate) mod tags_by_page;
pub(crate) mod trace;
pub(crate) mod trace_table;
