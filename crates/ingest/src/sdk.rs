//! The Sentry SDK protocol: `POST /api/{project_id}/envelope/` and the
//! legacy `/store/`, so `sentry_sdk.init(dsn=…)` can report to suture.
//!
//! Order of work, cheapest refusal first, and nothing read before the key
//! is known good: the DSN key from `X-Sentry-Auth` or `?sentry_key=` must
//! belong to the project in the path (403 otherwise, before a byte of the
//! body is read); when neither is sent, only the envelope's first line is
//! read (and decompressed) for its `dsn`. Then the body is read within the
//! limit and the memory budget (413, 503), and decompressed, framed within
//! the envelope caps and its event item parsed off the async runtime (400
//! when malformed, 413 past a cap). An envelope without an event item
//! (sessions, transactions, client reports) is acknowledged and not stored:
//! suture only acts on errors. An event past the project's rate limit is
//! 429 and not stored. The answer, `{"id": event_id}`, is sent after the
//! event is committed.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use domain::event::{ParsedEvent, parse_sdk_event};
use domain::fingerprint::Fingerprint;
use serde_json::json;
use store::{NewSignal, SignalOutcome};

use crate::app::AppState;
use crate::body::{Body as RequestBody, BodyPermit, Decoded};
use crate::envelope::{Envelope, EnvelopeError};
use crate::metrics::SignalResult;
use crate::{IngestError, fresh_id};

/// The `source` of signals from SDKs.
pub(crate) const SOURCE: &str = domain::config::SignalSource::SentrySdk.as_str();

/// What an SDK request came to.
#[derive(Debug)]
pub(crate) enum Ack {
    /// An event was committed (or was a repeat).
    Event {
        event_id: String,
        outcome: SignalOutcome,
    },
    /// Nothing to store: no event item.
    Ignored { event_id: Option<String> },
}

impl Ack {
    fn result(&self) -> SignalResult {
        match self {
            Ack::Event {
                outcome: SignalOutcome::Duplicate,
                ..
            } => SignalResult::Deduplicated,
            Ack::Event { .. } => SignalResult::Accepted,
            Ack::Ignored { .. } => SignalResult::Ignored,
        }
    }

    fn into_json(self) -> Json<serde_json::Value> {
        match self {
            Ack::Event { event_id, .. } => Json(json!({ "id": event_id })),
            Ack::Ignored { event_id } => Json(json!({ "id": event_id })),
        }
    }
}

/// `POST /api/{project_id}/envelope/`.
pub(crate) async fn envelope(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, IngestError> {
    let result = envelope_inner(&state, &project_id, query.as_deref(), &headers, body).await;
    state.record(SOURCE, &result, Ack::result);
    result.map(Ack::into_json)
}

async fn envelope_inner(
    state: &AppState,
    project_id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Ack, IngestError> {
    let key = request_key(headers, query)?;
    match &key {
        Some(key) => check_key(state, project_id, key)?,
        None => project_key(state, project_id).map(drop)?,
    }
    let limits = state.config.limits.clone();
    let envelope_limits = state.envelope_limits();
    let mut body = RequestBody::new(headers, body, limits.max_envelope_bytes, &state.body_budget)?;
    if key.is_none() {
        let line = body.first_line(envelope_limits.max_header_bytes).await?;
        crate::json_depth::check(&line, envelope_limits.max_depth)?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&line).map_err(EnvelopeError::BadEnvelopeHeader)?;
        let dsn_key = header
            .get("dsn")
            .and_then(|dsn| dsn.as_str())
            .and_then(dsn_public_key)
            .ok_or(IngestError::MissingKey)?;
        check_key(state, project_id, &dsn_key)?;
    }
    body.read_all().await?;
    let prepared = state
        .parse(body, move |body| {
            let Decoded { bytes, mut permit } = body.decode()?;
            let envelope = Envelope::parse_limited(&bytes, &envelope_limits)?;
            // The items are a second copy of the body.
            permit.cover(permit.covered() + bytes.len())?;
            drop(bytes);
            let envelope_event_id = envelope.event_id().map(normalise_event_id);
            let Some(item) = envelope
                .items
                .iter()
                .find(|item| item.ty() == Some("event"))
            else {
                return Ok(Prepared::Ignored(envelope_event_id));
            };
            if item.payload.len() > limits.max_event_bytes {
                return Err(IngestError::TooLarge {
                    limit: limits.max_event_bytes,
                });
            }
            crate::json_depth::check(&item.payload, limits.max_json_depth)?;
            let payload = String::from_utf8_lossy(&item.payload).into_owned();
            let Some(parsed) = envelope.event() else {
                return Ok(Prepared::Ignored(envelope_event_id));
            };
            let parsed =
                parsed.map_err(|error| IngestError::BadJson(format!("event item: {error}")))?;
            Ok(Prepared::Event {
                parsed: Box::new(parsed),
                payload,
                permit,
            })
        })
        .await?;
    prepared.commit(state, project_id).await
}

/// What the blocking part of a request made of its body.
enum Prepared {
    /// No event item: acknowledged, not stored.
    Ignored(Option<String>),
    /// An event to commit, with its payload and the budget it holds.
    Event {
        parsed: Box<ParsedEvent>,
        payload: String,
        permit: BodyPermit,
    },
}

impl Prepared {
    /// Commits the event, if any; its body's share of the budget is held
    /// until then.
    async fn commit(self, state: &AppState, project_id: &str) -> Result<Ack, IngestError> {
        match self {
            Prepared::Ignored(event_id) => Ok(Ack::Ignored { event_id }),
            Prepared::Event {
                parsed,
                payload,
                permit,
            } => {
                let ack = commit_event(state, project_id, *parsed, payload).await;
                drop(permit);
                ack
            }
        }
    }
}

/// `POST /api/{project_id}/store/`: one event JSON.
pub(crate) async fn store(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, IngestError> {
    let result = async {
        let key = request_key(&headers, query.as_deref())?.ok_or(IngestError::MissingKey)?;
        check_key(&state, &project_id, &key)?;
        let limits = state.config.limits.clone();
        let mut body =
            RequestBody::new(&headers, body, limits.max_event_bytes, &state.body_budget)?;
        body.read_all().await?;
        let prepared = state
            .parse(body, move |body| {
                let Decoded { bytes, permit } = body.decode()?;
                crate::json_depth::check(&bytes, limits.max_json_depth)?;
                let parsed = parse_sdk_event(&bytes)
                    .map_err(|error| IngestError::BadJson(error.to_string()))?;
                let payload = String::from_utf8_lossy(&bytes).into_owned();
                Ok(Prepared::Event {
                    parsed: Box::new(parsed),
                    payload,
                    permit,
                })
            })
            .await?;
        prepared.commit(&state, &project_id).await
    }
    .await;
    state.record(SOURCE, &result, Ack::result);
    result.map(Ack::into_json)
}

/// Commits one SDK event and waits for it to be durable.
async fn commit_event(
    state: &AppState,
    project_id: &str,
    parsed: ParsedEvent,
    payload: String,
) -> Result<Ack, IngestError> {
    state.admit_event(project_id)?;
    let event = &parsed.event;
    let event_id = event
        .event_id
        .as_deref()
        .map_or_else(fresh_id, normalise_event_id);
    let signal = NewSignal {
        source: SOURCE.to_owned(),
        dedup_key: format!("{project_id}:{event_id}"),
        project: Some(project_id.to_owned()),
        kind: "event".to_owned(),
        title: event.title(),
        fingerprint: Some(Fingerprint::of_event(event).0),
        upstream_id: None,
        has_event: true,
        release: event.release.clone(),
        payload,
        received_at: chrono::Utc::now(),
    };
    let outcome = state.writer.submit(signal).await?;
    if !parsed.problems.is_empty() {
        tracing::debug!(
            count = parsed.problems.len(),
            event_id,
            "event read with problems"
        );
    }
    Ok(Ack::Event { event_id, outcome })
}

/// The project's public key, or 403 for an unknown project.
fn project_key<'a>(state: &'a AppState, project_id: &str) -> Result<&'a str, IngestError> {
    state
        .config
        .projects
        .get(project_id)
        .map(String::as_str)
        .ok_or_else(|| IngestError::UnknownProject {
            project: project_id.to_owned(),
        })
}

fn check_key(state: &AppState, project_id: &str, key: &str) -> Result<(), IngestError> {
    if project_key(state, project_id)? == key {
        Ok(())
    } else {
        Err(IngestError::UnknownKey {
            project: project_id.to_owned(),
        })
    }
}

/// The DSN key from `X-Sentry-Auth` (or `Authorization: Sentry …`) and the
/// query string; they must agree when both are sent.
fn request_key(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, IngestError> {
    let from_header = ["x-sentry-auth", "authorization"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find_map(auth_header_key);
    let from_query = query.and_then(|query| {
        query.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "sentry_key" && !value.is_empty()).then(|| value.to_owned())
        })
    });
    match (from_header, from_query) {
        (Some(a), Some(b)) if a != b => Err(IngestError::ConflictingKeys),
        (a, b) => Ok(a.or(b)),
    }
}

/// `sentry_key` of `Sentry sentry_version=7, sentry_key=…, …`.
fn auth_header_key(value: &str) -> Option<String> {
    let value = value.trim();
    let rest = value
        .get(..7)
        .filter(|prefix| prefix.eq_ignore_ascii_case("sentry "))
        .map(|_| &value[7..])?;
    rest.split(',').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name.trim() == "sentry_key" && !value.trim().is_empty()).then(|| value.trim().to_owned())
    })
}

/// The public key of a DSN `scheme://key[:secret]@host/path/project`.
fn dsn_public_key(dsn: &str) -> Option<String> {
    let (_, rest) = dsn.split_once("://")?;
    let (userinfo, _) = rest.split_once('@')?;
    let key = userinfo.split(':').next()?;
    (!key.is_empty()).then(|| key.to_owned())
}

/// Event ids as 32 lowercase hex chars (SDKs may send dashed UUIDs).
fn normalise_event_id(id: &str) -> String {
    id.trim().replace('-', "").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The key comes from the header the Python SDK sends, or the query
    /// string the JS SDK uses; both at once must agree.
    #[test]
    fn keys() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-sentry-auth",
            HeaderValue::from_static(
                "Sentry sentry_key=abc, sentry_version=7, sentry_client=sentry.python/2.0",
            ),
        );
        assert_eq!(request_key(&headers, None).unwrap().as_deref(), Some("abc"));
        assert_eq!(
            request_key(&headers, Some("sentry_key=abc&sentry_version=7"))
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert!(matches!(
            request_key(&headers, Some("sentry_key=xyz")),
            Err(IngestError::ConflictingKeys)
        ));
        assert_eq!(
            request_key(&HeaderMap::new(), Some("sentry_version=7&sentry_key=q"))
                .unwrap()
                .as_deref(),
            Some("q")
        );
        assert_eq!(request_key(&HeaderMap::new(), None).unwrap(), None);
    }

    /// DSNs with and without the deprecated secret.
    #[test]
    fn dsn_keys() {
        assert_eq!(
            dsn_public_key("https://public@sentry.example.com/1").as_deref(),
            Some("public")
        );
        assert_eq!(
            dsn_public_key("http://pub:sec@localhost:9000/42").as_deref(),
            Some("pub")
        );
        assert_eq!(dsn_public_key("not a dsn"), None);
    }

    /// Dashed UUIDs and upper case name the same event.
    #[test]
    fn event_ids() {
        assert_eq!(
            normalise_event_id("9EC79C33-EC99-42AB-8353-589FCB2E04DC"),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
    }
}
