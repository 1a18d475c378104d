//! Persisted code caches (`.dpc` files): the code of each module in the
//! making (`units`), its key (`key`), file names, locks and publishing
//! (`files`), a module's new blocks as a file of their own (`delta`),
//! writing (`save`; an ahead-of-time translation's batches wait in
//! `aot_batches` until the module's file is written once), handing new blocks to the cache server
//! (`server`), mapping and checking (`load`; exit slots rebased when
//! first jumped through: `slot_faults`) and the per-run report
//! (`report`). Uses `translate` and `os`.

pub(crate) mod aot_batches;
pub(crate) mod delta;
pub(crate) mod files;
pub(crate) mod key;
pub(crate) mod load;
pub(crate) mod report;
pub(crate) mod save;
pub(crate) mod server;
pub(crate) mod slot_faults;
pub(crate) mod units;
