//! Webhooks: Sentry's integration platform, PagerDuty v3 and GitHub.
//!
//! Each handler runs the same steps in the same order ([`receive`]): the
//! secret must be configured (403 otherwise), the body is read within the
//! limit and the memory budget; then, off the async runtime, the signature
//! is verified over the raw bytes (401, before any parsing, and nothing is
//! stored) and the JSON is read within the depth cap (400 when it is not
//! what the sender sends). The delivery is committed under the identity of
//! what it reports, read from the signed body ([`github_identity`],
//! [`sentry_identity`], PagerDuty's event id), so a redelivery, and a
//! replay of a signed body under a fresh delivery id or a fresh (unsigned)
//! timestamp, is a no-op. The 2xx goes out after the commit.
//!
//! Grouping: a delivery about an upstream issue or incident joins the
//! incident of that id (`sentry-issue:<id>`, `pagerduty:<id>`); a Sentry
//! error event without an issue id groups like an SDK event; GitHub
//! deliveries (and Sentry installation events) are kept for the forge work
//! and open no incident.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use domain::config::SignalSource;
use domain::event::parse_event;
use domain::fingerprint::Fingerprint;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use store::{NewSignal, SignalOutcome};

use crate::IngestError;
use crate::app::AppState;
use crate::body::{Body as RequestBody, Decoded};
use crate::metrics::SignalResult;
use crate::signature;

/// Reads a webhook body within `limits.max_webhook_bytes`, then runs
/// `build` (signature check and parsing) on it off the runtime, and commits
/// the signal it makes.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    build: impl FnOnce(&HeaderMap, &[u8], usize) -> Result<NewSignal, IngestError> + Send + 'static,
) -> Result<SignalOutcome, IngestError> {
    let mut body = RequestBody::new(
        headers,
        body,
        state.config.limits.max_webhook_bytes,
        &state.body_budget,
    )?;
    body.read_all().await?;
    let headers = headers.clone();
    let max_depth = state.config.limits.max_json_depth;
    let (signal, permit) = state
        .parse(body, move |body| {
            let Decoded { bytes, permit } = body.decode()?;
            Ok((build(&headers, &bytes, max_depth)?, permit))
        })
        .await?;
    let outcome = state.writer.submit(signal).await;
    drop(permit);
    outcome
}

/// `sha256:<hex>` of the body: the identity of a delivery that names none.
fn body_hash(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn outcome_result(outcome: &SignalOutcome) -> SignalResult {
    match outcome {
        SignalOutcome::Duplicate => SignalResult::Deduplicated,
        SignalOutcome::Accepted { .. } => SignalResult::Accepted,
    }
}

fn ack(outcome: SignalOutcome) -> Json<Value> {
    match outcome {
        SignalOutcome::Duplicate => Json(json!({"status": "duplicate"})),
        SignalOutcome::Accepted { incident_id, .. } => {
            Json(json!({"status": "accepted", "incident_id": incident_id}))
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn json_object(
    bytes: &[u8],
    max_depth: usize,
) -> Result<serde_json::Map<String, Value>, IngestError> {
    crate::json_depth::check(bytes, max_depth)?;
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(IngestError::BadJson("body is not a json object".into())),
        Err(error) => Err(IngestError::BadJson(error.to_string())),
    }
}

fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))?
        .as_str()
}

/// An id that may be sent as a string or a number.
fn id_at(value: &Value, path: &[&str]) -> Option<String> {
    match path.iter().try_fold(value, |value, key| value.get(key))? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `POST /webhooks/sentry`: integration-platform webhooks.
pub(crate) async fn sentry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    const SOURCE: &str = SignalSource::SentryWebhook.as_str();
    let result = async {
        let secret = state.config.secrets.sentry_client_secret.clone().ok_or(
            IngestError::WebhookNotConfigured {
                source_name: "sentry",
                variable: "SUTURE_SENTRY_CLIENT_SECRET",
            },
        )?;
        let tolerance = state.config.sentry_webhook_tolerance;
        receive(&state, &headers, body, move |headers, bytes, max_depth| {
            signature::verify_sentry(&secret, bytes, header(headers, "sentry-hook-signature"))?;
            check_sentry_timestamp(tolerance, header(headers, "sentry-hook-timestamp"))?;
            sentry_signal(headers, bytes, max_depth)
        })
        .await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}

/// The signal of a verified Sentry delivery.
fn sentry_signal(
    headers: &HeaderMap,
    bytes: &[u8],
    max_depth: usize,
) -> Result<NewSignal, IngestError> {
    const SOURCE: &str = SignalSource::SentryWebhook.as_str();
    let body = Value::Object(json_object(bytes, max_depth)?);
    let action = string_at(&body, &["action"])
        .unwrap_or("unknown")
        .to_owned();
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let mut resource = header(headers, "sentry-hook-resource").map(str::to_owned);
    let dedup_key = sentry_identity(&body).unwrap_or_else(|| body_hash(bytes));
    let received_at = chrono::Utc::now();
    let payload = String::from_utf8_lossy(bytes).into_owned();

    if data.get("error").is_some_and(Value::is_object)
        || data.get("event").is_some_and(Value::is_object)
    {
        let parsed = parse_event(bytes).map_err(|error| IngestError::BadJson(error.to_string()))?;
        let event = &parsed.event;
        if resource.is_none() {
            resource = Some(
                if data.get("error").is_some() {
                    "error"
                } else {
                    "event_alert"
                }
                .to_owned(),
            );
        }
        let fingerprint = match &event.upstream_issue_id {
            Some(issue) => Fingerprint::upstream("sentry-issue", issue),
            None => Fingerprint::of_event(event),
        };
        let project = event
            .other
            .get("project")
            .and_then(|project| id_at(project, &[]));
        return Ok(NewSignal {
            source: SOURCE.into(),
            dedup_key,
            project,
            kind: format!("{}.{action}", resource.as_deref().unwrap_or("error")),
            title: event.title(),
            fingerprint: Some(fingerprint.0),
            upstream_id: event.upstream_issue_id.clone(),
            has_event: true,
            release: event.release.clone(),
            payload,
            received_at,
        });
    }
    let issue_id = id_at(&data, &["issue", "id"]).or_else(|| id_at(&data, &["issue_id"]));
    let resource = resource.unwrap_or_else(|| {
        SENTRY_RESOURCES
            .into_iter()
            .find(|key| data.get(key).is_some())
            .unwrap_or("unknown")
            .to_owned()
    });
    let title = string_at(&data, &["issue", "title"])
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sentry {resource}.{action}"));
    Ok(NewSignal {
        source: SOURCE.into(),
        dedup_key,
        project: id_at(&data, &["issue", "project", "id"]),
        kind: format!("{resource}.{action}"),
        title,
        fingerprint: issue_id
            .as_deref()
            .map(|id| Fingerprint::upstream("sentry-issue", id).0),
        upstream_id: issue_id,
        has_event: false,
        release: None,
        payload,
        received_at,
    })
}

/// The resources of Sentry's integration webhooks that carry no event.
const SENTRY_RESOURCES: [&str; 5] = ["issue", "comment", "installation", "metric_alert", "seer"];

/// What a Sentry delivery reports, from its signed body: the resource, its
/// id and the action (`issue:123:lastSeen:resolved`, `error:<event
/// id>:created`). `Sentry-Hook-Timestamp` is not signed, so it cannot tell
/// a replay from a new delivery; this can. `None` when the body names no
/// resource id.
pub(crate) fn sentry_identity(body: &Value) -> Option<String> {
    let action = string_at(body, &["action"]).unwrap_or("");
    let data = body.get("data")?;
    let resource = [
        ("error", "event_id"),
        ("event", "event_id"),
        ("comment", "comment_id"),
        ("issue", "id"),
        ("metric_alert", "id"),
        ("installation", "uuid"),
    ]
    .into_iter()
    .find_map(|(resource, key)| id_at(data, &[resource, key]).map(|id| format!("{resource}:{id}")))
    .or_else(|| id_at(body, &["installation", "uuid"]).map(|id| format!("installation:{id}")))?;
    // An issue that regressed and is resolved again has new events.
    let last_seen = string_at(data, &["issue", "lastSeen"]).unwrap_or("");
    Some(format!("sentry:{resource}:{last_seen}:{action}"))
}

/// Sentry does not sign its timestamp, so this is our own replay window
/// (replays inside it are caught by [`sentry_identity`]).
fn check_sentry_timestamp(tolerance: Duration, value: Option<&str>) -> Result<(), IngestError> {
    let value = value.ok_or(IngestError::BadSignature("missing Sentry-Hook-Timestamp"))?;
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| IngestError::BadSignature("malformed Sentry-Hook-Timestamp"))?;
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    if (now - seconds).abs() > tolerance.as_secs_f64() {
        return Err(IngestError::BadSignature(
            "stale Sentry-Hook-Timestamp: outside the replay window",
        ));
    }
    Ok(())
}

/// `POST /webhooks/pagerduty`: v3 webhooks.
pub(crate) async fn pagerduty(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    const SOURCE: &str = SignalSource::Pagerduty.as_str();
    let result = async {
        let secrets = state.config.secrets.pagerduty_webhook_secrets.clone();
        if secrets.is_empty() {
            return Err(IngestError::WebhookNotConfigured {
                source_name: SOURCE,
                variable: "SUTURE_PAGERDUTY_WEBHOOK_SECRETS",
            });
        }
        receive(&state, &headers, body, move |headers, bytes, max_depth| {
            signature::verify_pagerduty(&secrets, bytes, header(headers, "x-pagerduty-signature"))?;
            pagerduty_signal(headers, bytes, max_depth)
        })
        .await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}

/// The signal of a verified PagerDuty delivery, keyed by its event's id
/// (unique per event, the same on every retry), else `X-Webhook-Id`, else
/// the body's hash.
fn pagerduty_signal(
    headers: &HeaderMap,
    bytes: &[u8],
    max_depth: usize,
) -> Result<NewSignal, IngestError> {
    const SOURCE: &str = SignalSource::Pagerduty.as_str();
    let body = Value::Object(json_object(bytes, max_depth)?);
    let event = body
        .get("event")
        .filter(|event| event.is_object())
        .ok_or_else(|| IngestError::BadJson("expected {\"event\": {…}}".into()))?;
    let event_type = string_at(event, &["event_type"])
        .unwrap_or("unknown")
        .to_owned();
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let incident_id = match string_at(&data, &["type"]) {
        Some("incident") => id_at(&data, &["id"]),
        _ => id_at(&data, &["incident", "id"]),
    };
    let dedup_key = id_at(event, &["id"])
        .or_else(|| {
            header(headers, "x-webhook-id")
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| format!("webhook:{id}"))
        })
        .unwrap_or_else(|| body_hash(bytes));
    let title = string_at(&data, &["title"])
        .or_else(|| string_at(&data, &["incident", "summary"]))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("pagerduty {event_type}"));
    Ok(NewSignal {
        source: SOURCE.into(),
        dedup_key,
        project: id_at(&data, &["service", "id"]),
        kind: event_type,
        title,
        fingerprint: incident_id
            .as_deref()
            .map(|id| Fingerprint::upstream("pagerduty", id).0),
        upstream_id: incident_id,
        has_event: false,
        release: None,
        payload: String::from_utf8_lossy(bytes).into_owned(),
        received_at: chrono::Utc::now(),
    })
}

/// `POST /webhooks/github`: stored for the forge work; no incident.
pub(crate) async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    const SOURCE: &str = SignalSource::Github.as_str();
    let result = async {
        let secret = state.config.secrets.github_webhook_secret.clone().ok_or(
            IngestError::WebhookNotConfigured {
                source_name: SOURCE,
                variable: "SUTURE_GITHUB_WEBHOOK_SECRET",
            },
        )?;
        receive(&state, &headers, body, move |headers, bytes, max_depth| {
            signature::verify_github(&secret, bytes, header(headers, "x-hub-signature-256"))?;
            github_signal(headers, bytes, max_depth)
        })
        .await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}

/// The signal of a verified GitHub delivery.
fn github_signal(
    headers: &HeaderMap,
    bytes: &[u8],
    max_depth: usize,
) -> Result<NewSignal, IngestError> {
    const SOURCE: &str = SignalSource::Github.as_str();
    let body = Value::Object(json_object(bytes, max_depth)?);
    let event = header(headers, "x-github-event").unwrap_or("unknown");
    let kind = match string_at(&body, &["action"]) {
        Some(action) => format!("{event}.{action}"),
        None => event.to_owned(),
    };
    Ok(NewSignal {
        source: SOURCE.into(),
        dedup_key: github_identity(&body).unwrap_or_else(|| body_hash(bytes)),
        project: string_at(&body, &["repository", "full_name"]).map(str::to_owned),
        title: format!("github {kind}"),
        kind,
        fingerprint: None,
        upstream_id: None,
        has_event: false,
        release: None,
        payload: String::from_utf8_lossy(bytes).into_owned(),
        received_at: chrono::Utc::now(),
    })
}

/// The objects a GitHub delivery can be about, most specific first: an
/// `issue_comment` has an `issue` and a `comment` and is about the comment.
const GITHUB_OBJECTS: [&str; 9] = [
    "comment",
    "review",
    "pull_request",
    "issue",
    "check_run",
    "check_suite",
    "workflow_run",
    "release",
    "installation",
];

/// What a GitHub delivery reports, from its signed body: the object acted
/// on, its id, the action and the state it left the object in (merged, the
/// head commit, when it last changed), e.g.
/// `github:pull_request:1:closed:merged:<sha>:<updated_at>`; a push is its
/// ref and new head. `X-GitHub-Delivery` is not signed, so a replay under a
/// fresh one is caught by this instead. `None` when the body names no
/// object.
pub(crate) fn github_identity(body: &Value) -> Option<String> {
    let action = string_at(body, &["action"]).unwrap_or("");
    if let Some((object, id)) = GITHUB_OBJECTS
        .into_iter()
        .find_map(|object| id_at(body, &[object, "id"]).map(|id| (object, id)))
    {
        let state = &body[object];
        let merged = match state.get("merged").and_then(Value::as_bool) {
            Some(true) => "merged",
            Some(false) => "unmerged",
            None => "",
        };
        let head = string_at(state, &["head", "sha"]).unwrap_or("");
        let changed = string_at(state, &["updated_at"])
            .or_else(|| string_at(state, &["submitted_at"]))
            .unwrap_or("");
        return Some(format!(
            "github:{object}:{id}:{action}:{merged}:{head}:{changed}"
        ));
    }
    let (reference, after) = (string_at(body, &["ref"])?, string_at(body, &["after"])?);
    Some(format!("github:push:{reference}:{after}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A GitHub identity names the object, the action and the state it
    /// left; the same body always gives the same one.
    #[test]
    fn github_identities() {
        let comment = json!({"action": "created", "issue": {"id": 1}, "comment": {"id": 7, "updated_at": "t"}});
        assert_eq!(
            github_identity(&comment).as_deref(),
            Some("github:comment:7:created:::t")
        );
        let merged = json!({"action": "closed", "pull_request": {"id": 3, "merged": true, "head": {"sha": "abc"}}});
        let closed = json!({"action": "closed", "pull_request": {"id": 3, "merged": false, "head": {"sha": "abc"}}});
        assert_ne!(github_identity(&merged), github_identity(&closed));
        assert_eq!(
            github_identity(&json!({"ref": "refs/heads/main", "after": "f00"})).as_deref(),
            Some("github:push:refs/heads/main:f00")
        );
        assert_eq!(github_identity(&json!({"zen": "hi"})), None);
    }

    /// A Sentry identity is the resource, its id and the action.
    #[test]
    fn sentry_identities() {
        let resolved =
            json!({"action": "resolved", "data": {"issue": {"id": "9", "lastSeen": "t"}}});
        assert_eq!(
            sentry_identity(&resolved).as_deref(),
            Some("sentry:issue:9:t:resolved")
        );
        let error =
            json!({"action": "created", "data": {"error": {"event_id": "e1", "issue_id": "9"}}});
        assert_eq!(
            sentry_identity(&error).as_deref(),
            Some("sentry:error:e1::created")
        );
        assert_eq!(sentry_identity(&json!({"action": "x", "data": {}})), None);
    }
}
