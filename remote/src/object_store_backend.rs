//! Both backends through the `object_store` crate: `AmazonS3` for
//! S3-compatible buckets (it signs requests and reads the standard `AWS_*`
//! environment: keys, region, endpoint), `HttpStore` for HTTP caches in
//! bazel-remote's layout (plain GET, HEAD and PUT under the base URL;
//! credentials, if any, in the URL as `http://USER:PASSWORD@HOST/`). Its
//! async calls run on a small runtime of our own, so callers stay
//! blocking and may call from several threads at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion};

use crate::location::Location;
use crate::store::{Problem, RemoteError, Store};

pub struct Backend {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    location: String,
}

impl Backend {
    /// The store at `location`; each request gives up after `timeout`
    /// (retried twice on errors worth retrying, as object_store decides).
    /// `settings` (S3 only) override the `AWS_*` environment, by name.
    pub fn open(location: &Location, timeout: Duration, settings: &[(&str, String)]) -> Result<Backend, RemoteError> {
        let options = ClientOptions::new().with_timeout(timeout).with_connect_timeout(timeout.min(Duration::from_secs(5)));
        let retry = RetryConfig { backoff: BackoffConfig::default(), max_retries: 2, retry_timeout: timeout * 2 };
        let broken = |e: &dyn std::error::Error| RemoteError::new(Problem::Other, format!("remote {location}: {}", chain(e)));
        let store: Arc<dyn ObjectStore> = match location {
            Location::S3 { bucket, prefix } => {
                // An endpoint the user set to plain http (MinIO on a LAN,
                // a local test server) is meant to be used as such.
                let setting = |name: &str| settings.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok());
                let http_endpoint =
                    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"].iter().any(|v| setting(v).is_some_and(|e| e.starts_with("http://")));
                let mut builder = AmazonS3Builder::from_env();
                for (name, value) in settings {
                    let key = name.to_ascii_lowercase().parse().map_err(|e| broken(&e))?;
                    builder = builder.with_config(key, value);
                }
                let s3 = builder
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_client_options(options.with_allow_http(http_endpoint))
                    .build()
                    .map_err(|e| broken(&e))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
            Location::Http { url, credentials } => {
                let mut options = options.with_allow_http(true);
                if let Some((user, password)) = credentials {
                    options = options.with_default_headers(basic_auth(user, password).map_err(|e| broken(&*e))?);
                }
                Arc::new(HttpBuilder::new().with_url(url).with_retry(retry).with_client_options(options).build().map_err(|e| broken(&e))?)
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dbi-remote")
            .enable_all()
            .build()
            .map_err(|e| broken(&e))?;
        Ok(Backend { store, runtime, location: location.to_string() })
    }

    fn error(&self, what: &str, name: &str, e: &object_store::Error) -> RemoteError {
        let text = chain(e);
        let problem = classify(e, &text);
        let said = match problem {
            Problem::Unreachable => "unreachable",
            Problem::Timeout => "timed out",
            Problem::Denied => "access denied (check the AWS_* credentials or the URL's user and password)",
            Problem::NoBucket => "no such bucket",
            Problem::ServerError => "server error",
            Problem::TooLarge | Problem::Other => "failed",
        };
        RemoteError::new(problem, format!("remote {}: {what} {name}: {said} ({})", self.location, cause(&text)))
    }

    /// A 404 is an absent object, unless S3 says the whole bucket is.
    fn absent_or_error<T>(&self, what: &str, name: &str, e: object_store::Error) -> Result<Option<T>, RemoteError> {
        match e {
            object_store::Error::NotFound { .. } if !chain(&e).contains("NoSuchBucket") => Ok(None),
            e => Err(self.error(what, name, &e)),
        }
    }
}

impl Store for Backend {
    fn head(&self, name: &str) -> Result<Option<u64>, RemoteError> {
        self.runtime.block_on(async {
            match self.store.head(&Path::from(name)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(e) => self.absent_or_error("HEAD", name, e),
            }
        })
    }

    fn get_versioned(&self, name: &str, limit: u64) -> Result<Option<(Vec<u8>, Option<String>)>, RemoteError> {
        self.runtime.block_on(async {
            let got = match self.store.get(&Path::from(name)).await {
                Ok(got) => got,
                Err(e) => return self.absent_or_error("GET", name, e),
            };
            let too_large = |size: u64| {
                RemoteError::new(Problem::TooLarge, format!("remote {}: GET {name}: {size} bytes, more than the {limit} expected", self.location))
            };
            if got.meta.size > limit {
                return Err(too_large(got.meta.size));
            }
            let version = got.meta.e_tag.clone();
            let mut bytes = Vec::with_capacity(got.meta.size as usize);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.error("GET", name, &e))?;
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(too_large((bytes.len() + chunk.len()) as u64));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some((bytes, version)))
        })
    }

    fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        self.runtime.block_on(async {
            self.store.put(&Path::from(name), PutPayload::from(bytes)).await.map(|_| ()).map_err(|e| self.error("PUT", name, &e))
        })
    }

    fn put_if(&self, name: &str, bytes: Vec<u8>, version: Option<&str>) -> Result<bool, RemoteError> {
        let mode = match version {
            Some(v) => PutMode::Update(UpdateVersion { e_tag: Some(v.to_string()), version: None }),
            None => PutMode::Create,
        };
        let payload = PutPayload::from(bytes);
        self.runtime.block_on(async {
            match self.store.put_opts(&Path::from(name), payload.clone(), PutOptions { mode, ..PutOptions::default() }).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                    self.store.put(&Path::from(name), payload).await.map(|_| true).map_err(|e| self.error("PUT", name, &e))
                }
                Err(e) => Err(self.error("PUT", name, &e)),
            }
        })
    }
}

/// The `Authorization` header of HTTP basic auth, marked sensitive.
fn basic_auth(user: &str, password: &str) -> Result<http::HeaderMap, Box<dyn std::error::Error>> {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut value = http::HeaderValue::from_str(&format!("Basic {token}"))?;
    value.set_sensitive(true);
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    Ok(headers)
}

/// An error and its sources, joined on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let said = s.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// What a failure was, from its variant or, for the generic ones
/// object_store wraps its HTTP errors in, from what it says.
fn classify(e: &object_store::Error, text: &str) -> Problem {
    if matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }) {
        return Problem::Denied;
    }
    let has = |needle: &str| text.contains(needle);
    if has("NoSuchBucket") || has("bucket does not exist") {
        Problem::NoBucket
    } else if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") || has("AccessDenied") || has("401 Unauthorized") || has("403 Forbidden") {
        Problem::Denied
    } else if has("timed out") || has("TimedOut") || has("deadline has elapsed") {
        Problem::Timeout
    } else if has("Connection refused") || has("dns error") || has("No route to host") || has("error trying to connect") {
        Problem::Unreachable
    } else if has("500 Internal Server Error") || has("502 ") || has("503 ") || has("504 ") || has("status code: 5") {
        Problem::ServerError
    } else {
        Problem::Other
    }
}

/// The part of an error chain that says why: an S3 error document's
/// code and message when there is one, else the chain's end, bounded so
/// the message stays one readable line.
fn cause(text: &str) -> String {
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{tag}>"))?;
        Some(text[start..end].to_string())
    };
    if let Some(code) = element("Code") {
        return match element("Message") {
            Some(m) => format!("{code}: {m}"),
            None => code,
        };
    }
    const MAX: usize = 160;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut start = text.len() - MAX;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_s3_error_document_says_why() {
        let said = "Generic S3 error: Error performing GET http://h/b/x in 2ms - Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><RequestId>abc</RequestId></Error>";
        assert_eq!(super::cause(said), "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.");
        assert_eq!(super::cause("short"), "short");
        assert!(super::cause(&"x".repeat(1000)).len() < 200);
    }
}
