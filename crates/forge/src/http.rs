//! One HTTP attempt against a JSON API, through the client octocrab
//! already brings (hyper + rustls), with a per-attempt timeout.
//!
//! octocrab is used as a plain HTTP client here: no auth state of its own
//! (each request carries the header its caller chose), no retry layer (the
//! [`crate::retry`] loop decides what to retry, with the headers in hand),
//! and a base URI so that callers pass paths. The same client speaks to
//! Sentry and PagerDuty; octocrab's `User-Agent: octocrab` goes along.

use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ForgeError;

/// A client for one service.
pub(crate) struct Http {
    client: Octocrab,
    /// `github`, `sentry`, `pagerduty`: for errors and logs.
    pub(crate) service: &'static str,
    timeout: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An answer, body read in full.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`.
    pub(crate) fn json<T: DeserializeOwned>(
        &self,
        service: &'static str,
        operation: &str,
    ) -> Result<T, ForgeError> {
        serde_json::from_str(&self.body).map_err(|error| ForgeError::Protocol {
            service,
            operation: operation.to_string(),
            reason: format!("the {} body does not parse: {error}", self.status),
        })
    }

    /// The error message the service put in its body (GitHub `message`,
    /// Sentry `detail`, PagerDuty `error.message`), else the body's start.
    pub(crate) fn message(&self) -> String {
        let parsed: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        let message = parsed["message"]
            .as_str()
            .or_else(|| parsed["detail"].as_str())
            .or_else(|| parsed["error"]["message"].as_str());
        match message {
            Some(message) => message.to_string(),
            None => self.body.chars().take(200).collect(),
        }
    }

    /// The header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The error for an answer the caller cannot use.
    pub(crate) fn into_error(self, service: &'static str, operation: &str) -> ForgeError {
        ForgeError::Status {
            service,
            operation: operation.to_string(),
            status: self.status,
            message: self.message(),
        }
    }
}

impl Http {
    /// A client for `base_url` (scheme, host and an optional path prefix,
    /// e.g. `https://ghe.example.com/api/v3`).
    pub(crate) fn new(
        service: &'static str,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Http, ForgeError> {
        let client = Octocrab::builder()
            .base_uri(base_url.trim_end_matches('/'))
            .and_then(|builder| {
                builder
                    .add_retry_config(RetryConfig::None)
                    .set_connect_timeout(Some(timeout))
                    .build()
            })
            .map_err(|source| ForgeError::Client { service, source })?;
        Ok(Http {
            client,
            service,
            timeout,
        })
    }

    /// One attempt: the answer, or why there was none (a connection error
    /// or the timeout), as text for the retry loop.
    pub(crate) async fn once(
        &self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                body.to_string()
            }
            None => String::new(),
        };
        let request = request
            .body(body)
            .map_err(|error| format!("building the request: {error}"))?;
        let exchange = async {
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|error| format!("sending: {error}"))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = self
                .client
                .body_to_string(response)
                .await
                .map_err(|error| format!("reading the answer: {error}"))?;
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// A header value that is a secret: marked sensitive so that HTTP
/// libraries leave it out of their debug output.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ForgeError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ForgeError::invalid("credential", "it is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Percent-encodes one path segment or query value (everything but
/// RFC 3986's unreserved characters).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
