//! Webhooks: Sentry's integration platform, PagerDuty v3 and GitHub.
//!
//! Each handler runs the same steps in the same order: the secret must be
//! configured (403 otherwise), the body is read within the limit, the
//! signature is verified over the raw bytes (401, before any parsing, and
//! nothing is stored), then the JSON is read (400 when it is not what the
//! sender sends) and the delivery committed under its delivery id, so a
//! redelivery is a no-op. The 2xx goes out after the commit.
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
use store::{NewSignal, SignalOutcome};

use crate::IngestError;
use crate::app::AppState;
use crate::body::read_body;
use crate::metrics::SignalResult;
use crate::signature;

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

/// The delivery id header, else a hash of the body: the same bytes
/// delivered twice are the same delivery.
fn delivery_key(headers: &HeaderMap, names: &[&str], body: &[u8]) -> String {
    names
        .iter()
        .find_map(|name| header(headers, name).filter(|value| !value.trim().is_empty()))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))))
}

fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, IngestError> {
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
        let secret = state.config.secrets.sentry_client_secret.as_deref().ok_or(
            IngestError::WebhookNotConfigured {
                source_name: "sentry",
                variable: "SUTURE_SENTRY_CLIENT_SECRET",
            },
        )?;
        let (bytes, _permit) = read_body(
            &headers,
            body,
            state.config.limits.max_webhook_bytes,
            &state.body_budget,
        )
        .await?;
        signature::verify_sentry(secret, &bytes, header(&headers, "sentry-hook-signature"))?;
        check_sentry_timestamp(&state, header(&headers, "sentry-hook-timestamp"))?;
        let body = json_object(&bytes)?;
        let body = Value::Object(body);
        let action = string_at(&body, &["action"])
            .unwrap_or("unknown")
            .to_owned();
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let mut resource = header(&headers, "sentry-hook-resource").map(str::to_owned);
        let dedup_key = delivery_key(&headers, &["request-id"], &bytes);
        let received_at = chrono::Utc::now();
        let payload = String::from_utf8_lossy(&bytes).into_owned();

        let signal = if data.get("error").is_some_and(Value::is_object)
            || data.get("event").is_some_and(Value::is_object)
        {
            let parsed =
                parse_event(&bytes).map_err(|error| IngestError::BadJson(error.to_string()))?;
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
            NewSignal {
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
            }
        } else {
            let issue_id = id_at(&data, &["issue", "id"]).or_else(|| id_at(&data, &["issue_id"]));
            let resource = resource.unwrap_or_else(|| {
                ["issue", "comment", "installation", "metric_alert", "seer"]
                    .into_iter()
                    .find(|key| data.get(key).is_some())
                    .unwrap_or("unknown")
                    .to_owned()
            });
            let title = string_at(&data, &["issue", "title"])
                .map(str::to_owned)
                .unwrap_or_else(|| format!("sentry {resource}.{action}"));
            NewSignal {
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
            }
        };
        state.writer.submit(signal).await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}

/// Sentry does not sign its timestamp, so this is our own replay window.
fn check_sentry_timestamp(state: &AppState, value: Option<&str>) -> Result<(), IngestError> {
    let value = value.ok_or(IngestError::BadSignature("missing Sentry-Hook-Timestamp"))?;
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| IngestError::BadSignature("malformed Sentry-Hook-Timestamp"))?;
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    if (now - seconds).abs() > state.config.sentry_webhook_tolerance.as_secs_f64() {
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
        let secrets = &state.config.secrets.pagerduty_webhook_secrets;
        if secrets.is_empty() {
            return Err(IngestError::WebhookNotConfigured {
                source_name: SOURCE,
                variable: "SUTURE_PAGERDUTY_WEBHOOK_SECRETS",
            });
        }
        let (bytes, _permit) = read_body(
            &headers,
            body,
            state.config.limits.max_webhook_bytes,
            &state.body_budget,
        )
        .await?;
        signature::verify_pagerduty(secrets, &bytes, header(&headers, "x-pagerduty-signature"))?;
        let body = Value::Object(json_object(&bytes)?);
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
        let mut dedup_key = delivery_key(&headers, &["x-webhook-id"], &bytes);
        if header(&headers, "x-webhook-id").is_none()
            && let Some(id) = id_at(event, &["id"])
        {
            dedup_key = id;
        }
        let title = string_at(&data, &["title"])
            .or_else(|| string_at(&data, &["incident", "summary"]))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("pagerduty {event_type}"));
        let signal = NewSignal {
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
            payload: String::from_utf8_lossy(&bytes).into_owned(),
            received_at: chrono::Utc::now(),
        };
        state.writer.submit(signal).await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}

/// `POST /webhooks/github`: stored for the forge work; no incident.
pub(crate) async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, IngestError> {
    const SOURCE: &str = SignalSource::Github.as_str();
    let result = async {
        let secret = state
            .config
            .secrets
            .github_webhook_secret
            .as_deref()
            .ok_or(IngestError::WebhookNotConfigured {
                source_name: SOURCE,
                variable: "SUTURE_GITHUB_WEBHOOK_SECRET",
            })?;
        let (bytes, _permit) = read_body(
            &headers,
            body,
            state.config.limits.max_webhook_bytes,
            &state.body_budget,
        )
        .await?;
        signature::verify_github(secret, &bytes, header(&headers, "x-hub-signature-256"))?;
        let body = Value::Object(json_object(&bytes)?);
        let event = header(&headers, "x-github-event").unwrap_or("unknown");
        let kind = match string_at(&body, &["action"]) {
            Some(action) => format!("{event}.{action}"),
            None => event.to_owned(),
        };
        let signal = NewSignal {
            source: SOURCE.into(),
            dedup_key: delivery_key(&headers, &["x-github-delivery"], &bytes),
            project: string_at(&body, &["repository", "full_name"]).map(str::to_owned),
            title: format!("github {kind}"),
            kind,
            fingerprint: None,
            upstream_id: None,
            has_event: false,
            release: None,
            payload: String::from_utf8_lossy(&bytes).into_owned(),
            received_at: chrono::Utc::now(),
        };
        state.writer.submit(signal).await
    }
    .await;
    state.record(SOURCE, &result, outcome_result);
    result.map(ack)
}
