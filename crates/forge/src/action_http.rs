//! The HTTP request of a recovery action (`[[actions]]` with `http` or
//! `check_http`): one attempt, with the operator's method, URL and headers
//! and a JSON body the service filled from the action's template.
//!
//! It goes through the same client as the forge's own calls (`http`), so
//! suture has one HTTP stack. Header values may hold secrets (expanded
//! from `SUTURE_*` variables by the caller): they are marked sensitive and
//! never appear in an error; the URL is the operator's fixed text. There is
//! no retry: an action that did not answer is a failed run, and whether to
//! run it again is its limits' decision, not a transport's.

use std::time::Duration;

use http::Method;
use http::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::error::ForgeError;
use crate::http::Http;

/// The service name of action requests in errors and logs.
const SERVICE: &str = "recovery action";

/// Most characters of an answer's body kept.
const MAX_BODY_CHARS: usize = 4_000;

/// One request to send.
pub struct ActionRequest<'a> {
    /// `GET`, `POST`, ….
    pub method: &'a str,
    /// The absolute `http(s)://` URL.
    pub url: &'a str,
    /// Header names and values, secrets already expanded.
    pub headers: &'a [(String, String)],
    /// The JSON body, sent with `Content-Type: application/json`.
    pub body: Option<&'a Value>,
    /// How long the whole exchange may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for ActionRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReply {
    /// The HTTP status.
    pub status: u16,
    /// The start of the body.
    pub body: String,
}

impl ActionReply {
    /// A 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `request` once.
///
/// # Errors
///
/// [`ForgeError::Invalid`] for a URL, method or header that cannot be
/// sent; [`ForgeError::GaveUp`] when no answer came (refused, timed out).
pub async fn send(request: &ActionRequest<'_>) -> Result<ActionReply, ForgeError> {
    let (origin, path) = split_url(request.url)
        .ok_or_else(|| ForgeError::invalid("action url", "not an absolute http(s) URL"))?;
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| ForgeError::invalid("action method", "not an HTTP method"))?;
    let mut headers = Vec::with_capacity(request.headers.len());
    for (name, value) in request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ForgeError::invalid("action header", "not a header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| ForgeError::invalid("action header", "not a header value"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    let http = Http::new(SERVICE, origin, request.timeout)?;
    let reply = http
        .once(method, path, &headers, request.body)
        .await
        .map_err(|last| ForgeError::GaveUp {
            operation: format!("{} {}", request.method, request.url),
            attempts: 1,
            last,
        })?;
    Ok(ActionReply {
        status: reply.status,
        body: reply.body.chars().take(MAX_BODY_CHARS).collect(),
    })
}

/// `(scheme://host[:port], /path?query)` of an absolute http(s) URL; the
/// path is `/` when the URL has none. `None` without a host, or with a
/// query but no path.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    if host_end == 0 || rest[host_end..].starts_with('?') {
        return None;
    }
    let cut = url.len() - rest.len() + host_end;
    match &url[cut..] {
        "" => Some((url, "/")),
        path => Some((&url[..cut], path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The origin and the path are cut where the path begins.
    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/flags/x?y=1"),
            Some(("http://127.0.0.1:8080", "/flags/x?y=1"))
        );
        assert_eq!(
            split_url("https://flags.example"),
            Some(("https://flags.example", "/"))
        );
        assert_eq!(split_url("ftp://x/y"), None);
        assert_eq!(split_url("http://"), None);
        assert_eq!(split_url("http://host?q"), None);
    }
}
