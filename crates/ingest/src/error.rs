//! Every way a request is refused, and the one place that turns it into an
//! HTTP answer.
//!
//! Handlers return `Result<_, IngestError>`; [`IntoResponse`] maps each
//! variant to a status and a short JSON body `{"error": "…"}` saying why,
//! logs 5xx at `error` and 4xx at `debug`, and never leaks internals (a store
//! failure says "store unavailable", the detail goes to the log). Statuses
//! follow Relay: 403 for a refused SDK key, 400 for a malformed request, 413
//! too large, 429 with `Retry-After` and `X-Sentry-Rate-Limits` past a
//! project's rate limit, 503 with `Retry-After` when the queue cannot take
//! more; plus 401 for a webhook signature that does not verify.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::envelope::EnvelopeError;
use crate::json_depth::TooDeep;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No DSN key anywhere: header, query string or envelope header.
    #[error("missing sentry_key: send X-Sentry-Auth or ?sentry_key=")]
    MissingKey,
    /// The DSN key given does not belong to the project in the path.
    #[error("unknown sentry_key for project {project}")]
    UnknownKey {
        /// The project id from the path.
        project: String,
    },
    /// The path names a project this server does not have.
    #[error("unknown project {project}")]
    UnknownProject {
        /// The project id from the path.
        project: String,
    },
    /// The header, query string and envelope named different keys.
    #[error("conflicting sentry_key values")]
    ConflictingKeys,
    /// A webhook whose secret is not configured: nothing can be verified.
    #[error("{source_name} webhook is not configured: set {variable}")]
    WebhookNotConfigured {
        /// `sentry`, `pagerduty` or `github`.
        source_name: &'static str,
        /// The environment variable holding the secret.
        variable: &'static str,
    },
    /// A webhook signature that is missing, malformed, stale or wrong.
    #[error("{0}")]
    BadSignature(&'static str),
    /// The body is larger than the endpoint's limit (before or after
    /// decompression).
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A `Content-Encoding` this server does not decode.
    #[error("unsupported content-encoding {0:?}: use br, gzip or deflate")]
    UnsupportedEncoding(String),
    /// The body does not decompress with its declared encoding.
    #[error("body is not valid {encoding}")]
    BadCompression {
        /// The declared encoding.
        encoding: &'static str,
        /// What the decoder said.
        #[source]
        source: std::io::Error,
    },
    /// The body could not be read off the connection.
    #[error("reading the request body failed")]
    BodyRead(#[source] axum::Error),
    /// The envelope framing is broken, or the envelope is past a cap.
    #[error("malformed envelope: {0}")]
    BadEnvelope(#[from] EnvelopeError),
    /// An envelope's first line, read to find its DSN, is longer than
    /// `limits.max_envelope_header_bytes`.
    #[error("envelope header line is longer than {limit} bytes (limits.max_envelope_header_bytes)")]
    HeaderTooLong {
        /// The cap.
        limit: usize,
    },
    /// A JSON body nests deeper than `limits.max_json_depth`.
    #[error("{0}")]
    TooDeep(#[from] TooDeep),
    /// The project sent more events this minute than
    /// `limits.events_per_minute_per_project`.
    #[error(
        "rate limited: project {project} is over its events per minute; retry after {retry_after} s"
    )]
    RateLimited {
        /// The project id.
        project: String,
        /// Seconds until the window ends.
        retry_after: u64,
    },
    /// A read API query string that is missing a parameter or holds a bad
    /// one; the message says which.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The JSON is not what the endpoint takes.
    #[error("malformed json: {0}")]
    BadJson(String),
    /// The ingest queue is full: try again shortly.
    #[error("ingest queue is full")]
    QueueFull,
    /// Request bodies in flight already use the memory budget.
    #[error("too many bytes in flight: retry shortly")]
    OverBudget,
    /// The server is shutting down and takes nothing new.
    #[error("shutting down")]
    ShuttingDown,
    /// The store failed; the signal was not accepted.
    #[error("store unavailable")]
    Store(#[source] std::sync::Arc<store::StoreError>),
    /// The request took longer than `server.request_timeout_seconds`.
    #[error("request timed out")]
    Timeout,
    /// Work moved off the runtime ended without an answer (a bug: it
    /// panicked).
    #[error("internal error")]
    Internal(#[source] tokio::task::JoinError),
    /// The read API needs `Authorization: Bearer <token>`.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl IngestError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::MissingKey
            | IngestError::UnknownKey { .. }
            | IngestError::UnknownProject { .. }
            | IngestError::ConflictingKeys
            | IngestError::WebhookNotConfigured { .. } => StatusCode::FORBIDDEN,
            IngestError::BadSignature(_) | IngestError::Unauthorized => StatusCode::UNAUTHORIZED,
            IngestError::TooLarge { .. }
            | IngestError::HeaderTooLong { .. }
            | IngestError::BadEnvelope(
                EnvelopeError::TooManyItems { .. } | EnvelopeError::HeaderTooLong { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BadCompression { .. }
            | IngestError::BodyRead(_)
            | IngestError::BadEnvelope(_)
            | IngestError::TooDeep(_)
            | IngestError::BadJson(_)
            | IngestError::BadQuery(_) => StatusCode::BAD_REQUEST,
            IngestError::QueueFull
            | IngestError::OverBudget
            | IngestError::ShuttingDown
            | IngestError::Store(_)
            | IngestError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// A short, bounded label for the rejection metric.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::MissingKey => "missing_key",
            IngestError::UnknownKey { .. } => "unknown_key",
            IngestError::UnknownProject { .. } => "unknown_project",
            IngestError::ConflictingKeys => "conflicting_keys",
            IngestError::WebhookNotConfigured { .. } => "not_configured",
            IngestError::BadSignature(_) => "bad_signature",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
            IngestError::BadCompression { .. } => "bad_compression",
            IngestError::BodyRead(_) => "body_read",
            IngestError::BadEnvelope(EnvelopeError::TooManyItems { .. }) => "too_many_items",
            IngestError::BadEnvelope(
                EnvelopeError::HeaderTooLong { .. } | EnvelopeError::HeaderTooDeep { .. },
            )
            | IngestError::HeaderTooLong { .. } => "header_too_large",
            IngestError::BadEnvelope(_) => "bad_envelope",
            IngestError::TooDeep(_) => "too_deep",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::BadJson(_) => "bad_json",
            IngestError::BadQuery(_) => "bad_query",
            IngestError::QueueFull => "queue_full",
            IngestError::OverBudget => "over_budget",
            IngestError::ShuttingDown => "shutting_down",
            IngestError::Store(_) => "store",
            IngestError::Timeout => "timeout",
            IngestError::Internal(_) => "internal",
            IngestError::Unauthorized => "unauthorized",
            IngestError::NotFound => "not_found",
            IngestError::MethodNotAllowed => "method_not_allowed",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %DisplayChain(&self), status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %DisplayChain(&self), status = status.as_u16(), "request rejected");
        }
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let IngestError::RateLimited { retry_after, .. } = self {
            // Relay's answer: integer seconds (sentry-python skips a float),
            // the categories limited (error events) and the scope.
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            if let Ok(limits) =
                HeaderValue::from_str(&format!("{retry_after}:{RATE_LIMITED_CATEGORIES}:project"))
            {
                headers.insert("x-sentry-rate-limits", limits);
            }
        }
        response
    }
}

/// The Sentry data categories a project rate limit applies to: error
/// events (suture stores nothing else from SDKs).
pub const RATE_LIMITED_CATEGORIES: &str = "error;default";

/// An error with its sources, `a: b: c`, for logs.
pub(crate) struct DisplayChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
