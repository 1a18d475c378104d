//! Where the remote store is: `s3://BUCKET[/PREFIX]` for an S3-compatible
//! bucket (endpoint, region and credentials from the standard `AWS_*`
//! environment), `http[s]://HOST[:PORT][/PREFIX]` for an HTTP cache in
//! bazel-remote's layout. From `--remote URL`, else `DBIRUN_REMOTE`.

/// The environment variable naming the remote store when no `--remote` is given.
pub const ENV: &str = "DBIRUN_REMOTE";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    /// The base URL, without a trailing slash nor credentials; those
    /// (`http://USER:PASSWORD@HOST/`) are sent as HTTP basic auth and
    /// never shown.
    Http { url: String, credentials: Option<(String, String)> },
}

impl Location {
    /// Parses a remote URL; the error is one line.
    pub fn parse(text: &str) -> Result<Location, String> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("remote '{text}': no bucket (s3://BUCKET/PREFIX)"));
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            let mut url = url::Url::parse(text).map_err(|e| format!("remote URL: {e}"))?;
            if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
                return Err(format!("remote {}: expected http[s]://HOST[:PORT][/PREFIX]", redacted(&url)));
            }
            let credentials = (!url.username().is_empty() || url.password().is_some())
                .then(|| (url.username().to_string(), url.password().unwrap_or("").to_string()));
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let url = url.as_str().trim_end_matches('/').to_string();
            return Ok(Location::Http { url, credentials });
        }
        let shown = url::Url::parse(text).map_or_else(|_| text.to_string(), |u| redacted(&u));
        Err(format!("remote '{shown}': not an s3:// or http(s):// URL"))
    }

    /// `--remote`'s value, else `DBIRUN_REMOTE`'s; None when neither is set.
    pub fn from_option_or_env(option: Option<&str>) -> Result<Option<Location>, String> {
        match option.map(String::from).or_else(|| std::env::var(ENV).ok().filter(|v| !v.is_empty())) {
            None => Ok(None),
            Some(text) => Location::parse(&text).map(Some),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Http { url, credentials: None } => f.write_str(url),
            Location::Http { url, credentials: Some((user, _)) } => match url.split_once("://") {
                Some((scheme, rest)) => write!(f, "{scheme}://{user}@{rest}"),
                None => f.write_str(url),
            },
        }
    }
}

/// `url` without its password, for messages.
fn redacted(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_store() {
        assert_eq!(Location::parse("s3://b/p/q/").unwrap(), Location::S3 { bucket: "b".into(), prefix: "p/q".into() });
        assert_eq!(Location::parse("s3://b").unwrap(), Location::S3 { bucket: "b".into(), prefix: String::new() });
        assert_eq!(Location::parse("http://h:8080/cache/").unwrap(), Location::Http { url: "http://h:8080/cache".into(), credentials: None });
        let with_password = Location::parse("https://ci:s3cret@h/c").unwrap();
        assert_eq!(with_password, Location::Http { url: "https://h/c".into(), credentials: Some(("ci".into(), "s3cret".into())) });
        assert_eq!(with_password.to_string(), "https://ci@h/c");
        assert!(!Location::parse("http://ci:s3cret@h/c?x").unwrap_err().contains("s3cret"));
        assert_eq!(Location::parse("s3://b/p").unwrap().to_string(), "s3://b/p");
        for bad in ["s3://", "s3:///x", "ftp://h/x", "/tmp/x", "http://", "http://h/x?y=1"] {
            let e = Location::parse(bad).unwrap_err();
            assert!(e.starts_with("remote ") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
