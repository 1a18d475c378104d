//! The one trait every remote backend implements: three blocking calls
//! on named objects, and errors that say in one line what went wrong.
//! Objects are immutable by convention of the layout ([`crate::layout`]):
//! only manifests and listings are ever written twice.

/// A remote store of named objects (names are `/`-separated, no leading `/`).
pub trait Store: Send + Sync {
    /// The object's size; None when there is no such object.
    fn head(&self, name: &str) -> Result<Option<u64>, RemoteError>;
    /// The object's bytes; None when there is no such object. An object
    /// larger than `limit` is an error (its bytes are not read).
    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        self.get_versioned(name, limit).map(|got| got.map(|(bytes, _)| bytes))
    }
    /// [`Store::get`], with the version of what was read (its ETag) when
    /// the store gives one, for a [`Store::put_if`] after.
    fn get_versioned(&self, name: &str, limit: u64) -> Result<Option<(Vec<u8>, Option<String>)>, RemoteError>;
    /// Writes the object whole (it appears at once or not at all).
    fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), RemoteError>;
    /// Writes the object only if it is still at `version` (still absent
    /// when None); Ok(false) when it changed meanwhile. A store without
    /// conditional writes (an HTTP cache) writes it anyway.
    fn put_if(&self, name: &str, bytes: Vec<u8>, version: Option<&str>) -> Result<bool, RemoteError>;
}

/// What kind of failure a remote call met, for callers that react to
/// some (a server retrying later) and for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Nothing answered (refused, no route, unknown host).
    Unreachable,
    /// The store did not answer in time.
    Timeout,
    /// Credentials missing, wrong or not allowed.
    Denied,
    /// The bucket does not exist.
    NoBucket,
    /// The store answered with a server error (5xx).
    ServerError,
    /// An object is larger than the caller accepts.
    TooLarge,
    Other,
}

/// A failed remote call: its kind and one line saying what happened.
#[derive(Clone, Debug)]
pub struct RemoteError {
    pub problem: Problem,
    pub message: String,
}

impl RemoteError {
    pub fn new(problem: Problem, message: impl Into<String>) -> RemoteError {
        RemoteError { problem, message: message.into() }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {}
