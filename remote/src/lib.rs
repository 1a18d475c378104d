//! Cache files shared across machines through stores users already run:
//! an S3-compatible bucket (AWS S3, MinIO, R2, GCS interop) or an HTTP
//! cache in bazel-remote's layout (`GET/PUT /cas/<sha256>`, `/ac/<hash>`).
//! Nothing here trusts what it reads back: callers check every file as an
//! import does before it is published (docs/remote.md).
//!
//! - [`location`]: which store a `--remote` URL (or `DBIRUN_REMOTE`) names.
//! - [`store`]: the one trait every backend implements, and its errors,
//!   each one line.
//! - [`object_store_backend`]: both backends, through the `object_store`
//!   crate (request signing, retries, timeouts are its job).
//! - [`signing`]: ed25519 signatures on manifests, and the keys a
//!   machine trusts.
//! - [`layout`]: the objects' names and the manifests and listings that
//!   lead from a module to its files.

pub mod layout;
pub mod location;
pub mod object_store_backend;
pub mod signing;
pub mod store;

pub use location::Location;
pub use store::{RemoteError, Store, Problem};

/// Opens the store `location` names, with `timeout` for each request.
pub fn open(location: &Location, timeout: std::time::Duration) -> Result<Box<dyn Store>, RemoteError> {
    open_with(location, timeout, &[])
}

/// [`open`], with S3 settings given as the `AWS_*` environment variables
/// they stand for (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...), over
/// the environment's: for a program (or a test) that names its store's
/// settings itself.
pub fn open_with(location: &Location, timeout: std::time::Duration, settings: &[(&str, String)]) -> Result<Box<dyn Store>, RemoteError> {
    Ok(Box::new(object_store_backend::Backend::open(location, timeout, settings)?))
}
