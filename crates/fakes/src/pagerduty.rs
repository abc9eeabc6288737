//! A fake PagerDuty REST API for the close step: get and update (resolve)
//! incidents, list and add notes.
//!
//! [`FakePagerDuty`] serves `GET`/`PUT /incidents/{id}` and `GET`/`POST
//! /incidents/{id}/notes` as described by
//! `shared/contracts/pagerduty-api-subset.json` (PagerDuty's own OpenAPI
//! description), checking requests and answers against it, plus the
//! headers the description declares: `Authorization: Token token=<key>`,
//! `Accept: application/vnd.pagerduty+json;version=2`, and `From: <email>`
//! on the writes. A missing `Accept` or `From` is a client mistake and is
//! recorded as an error; a wrong key gets PagerDuty's 401.
//!
//! [`incident_webhook`] and [`sign_pagerduty_webhook`] make the v3 webhook
//! deliveries PagerDuty sends suture, signed as PagerDuty signs them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::contract::{OpenApi, instance};
use crate::server::{Answer, Api, Call, Server, lock};
pub use crate::server::{Fault, RecordedRequest};

/// `GET` and `PUT` one incident.
pub const INCIDENT: &str = "/incidents/{id}";
/// `GET` (list) and `POST` (create) notes of an incident.
pub const NOTES: &str = "/incidents/{id}/notes";

const CONTRACT: &str = "pagerduty-api-subset.json";
const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// An incident as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIncident {
    /// Incident id, e.g. `PT4KHLK`.
    pub id: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// Note contents, in order.
    pub notes: Vec<String>,
    /// The `From` of the last update, when there was one.
    pub updated_by: Option<String>,
}

/// A running fake PagerDuty API; dropping it stops the server.
#[derive(Debug)]
pub struct FakePagerDuty {
    server: Server<PagerDutyApi>,
}

impl FakePagerDuty {
    /// Starts a fake that accepts API key `key` and holds these triggered
    /// incidents (ids).
    pub async fn start(key: &str, incident_ids: &[&str]) -> FakePagerDuty {
        OpenApi::load(CONTRACT);
        let incidents = incident_ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    FakeIncident {
                        id: id.to_string(),
                        status: "triggered".to_string(),
                        notes: Vec::new(),
                        updated_by: None,
                    },
                )
            })
            .collect();
        let server = Server::start(PagerDutyApi {
            key: key.to_string(),
            incidents: Mutex::new(incidents),
        })
        .await;
        FakePagerDuty { server }
    }

    /// The base URL to configure a client with, e.g. `http://127.0.0.1:4711`
    /// (like `https://api.pagerduty.com`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Contract violations and unexpected requests so far; a passing test
    /// asserts this is empty.
    pub fn errors(&self) -> Vec<String> {
        self.server.errors()
    }

    /// Queues `fault` for the next `method` request to `template`
    /// ([`INCIDENT`] or [`NOTES`]).
    pub fn inject(&self, method: &str, template: &str, fault: Fault) {
        self.server.inject(method, template, fault);
    }

    /// The incidents, by id.
    pub fn incidents(&self) -> Vec<FakeIncident> {
        lock(&self.server.api().incidents)
            .values()
            .cloned()
            .collect()
    }
}

struct PagerDutyApi {
    key: String,
    incidents: Mutex<BTreeMap<String, FakeIncident>>,
}

impl Api for PagerDutyApi {
    fn contract(&self) -> &'static OpenApi {
        OpenApi::load(CONTRACT)
    }

    fn error_body(&self, status: u16, message: &str) -> Value {
        let code = match status {
            401 => 2006,
            404 => 2100,
            429 => 2020,
            _ => 2001,
        };
        json!({ "error": { "code": code, "message": message, "errors": [] } })
    }

    fn handle(&self, call: &Call<'_>) -> Answer {
        let route = call.route;
        let mut problems = Vec::new();
        if call.header("accept") != Some(ACCEPT) {
            problems.push(format!(
                "accept is {:?}, not {ACCEPT}",
                call.header("accept")
            ));
        }
        let writes = route.method != "get";
        let from = call.header("from").map(str::to_string);
        if writes && !from.as_deref().is_some_and(|from| from.contains('@')) {
            problems.push(format!("a write needs from: <email>, got {from:?}"));
        }
        if !problems.is_empty() {
            return Answer {
                problems,
                ..Answer::empty(500)
            };
        }
        let expected = format!("Token token={}", self.key);
        if call.header("authorization") != Some(expected.as_str()) {
            return Answer::json(401, self.error_body(401, "Unauthorized"));
        }
        let mut incidents = lock(&self.incidents);
        let Some(incident) = incidents.get_mut(route.param("id")) else {
            return Answer::json(404, self.error_body(404, "Not Found"));
        };
        let body = call.body.cloned().unwrap_or(Value::Null);
        let schema = self
            .contract()
            .response_schema(route, 200)
            .expect("the contract documents every 200");
        match (route.method.as_str(), route.template.as_str()) {
            ("put", INCIDENT) => {
                if let Some(status) = body["incident"]["status"].as_str() {
                    incident.status = status.to_string();
                }
                incident.updated_by = from;
                Answer::json(200, self.incident_json(schema, incident))
            }
            ("get", INCIDENT) => Answer::json(200, self.incident_json(schema, incident)),
            ("post", NOTES) => {
                let content = body["note"]["content"].as_str().unwrap_or_default();
                incident.notes.push(content.to_string());
                let id = format!("PNOTE{}", incident.notes.len());
                Answer::json(200, note_json(schema, &id, content))
            }
            ("get", NOTES) => {
                let item_schema = schema
                    .pointer("/properties/notes/items")
                    .unwrap_or(&Value::Null);
                let notes: Vec<Value> = incident
                    .notes
                    .iter()
                    .enumerate()
                    .map(|(index, content)| {
                        instance(
                            item_schema,
                            json!({ "id": format!("PNOTE{}", index + 1), "content": content }),
                        )
                    })
                    .collect();
                Answer::json(200, instance(schema, json!({ "notes": notes })))
            }
            (method, template) => {
                Answer::problem(format!("the fake does not serve {method} {template}"))
            }
        }
    }
}

impl PagerDutyApi {
    fn incident_json(&self, schema: &Value, incident: &FakeIncident) -> Value {
        instance(
            schema,
            json!({
                "incident": {
                    "id": incident.id,
                    "type": "incident",
                    "summary": format!("[#1] {}", incident.id),
                    "self": format!("https://api.pagerduty.com/incidents/{}", incident.id),
                    "html_url": format!("https://acme.pagerduty.com/incidents/{}", incident.id),
                    "incident_number": 1,
                    "title": "checkout failing",
                    "status": incident.status,
                    "urgency": "high",
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:05:00Z",
                },
            }),
        )
    }
}

fn note_json(schema: &Value, id: &str, content: &str) -> Value {
    instance(
        schema,
        json!({
            "note": {
                "id": id,
                "content": content,
                "created_at": "2026-01-01T00:05:00Z",
            },
        }),
    )
}

/// `X-PagerDuty-Signature` for `body` under subscription secret `secret`:
/// `v1=` and the hex HMAC-SHA256 of the raw body, as PagerDuty signs v3
/// webhooks.
pub fn sign_pagerduty_webhook(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("v1={hex}")
}

/// A v3 webhook body for `event_type` (`incident.triggered`, …) about
/// incident `incident_id` on service `service_id` titled `title`, shaped
/// like PagerDuty's own (`shared/fixtures/pagerduty`); `event_id` is the
/// event's unique id.
pub fn incident_webhook(
    event_type: &str,
    event_id: &str,
    incident_id: &str,
    service_id: &str,
    title: &str,
) -> Value {
    let status = match event_type {
        "incident.acknowledged" => "acknowledged",
        "incident.resolved" => "resolved",
        _ => "triggered",
    };
    json!({
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-01-02T03:04:05.678Z",
            "agent": null,
            "client": null,
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": format!("https://api.pagerduty.com/incidents/{incident_id}"),
                "html_url": format!("https://acme.pagerduty.com/incidents/{incident_id}"),
                "number": 1,
                "status": status,
                "incident_key": event_id,
                "created_at": "2026-01-02T03:04:05Z",
                "title": title,
                "service": {
                    "html_url": format!("https://acme.pagerduty.com/services/{service_id}"),
                    "id": service_id,
                    "self": format!("https://api.pagerduty.com/services/{service_id}"),
                    "summary": "checkout",
                    "type": "service_reference"
                },
                "assignees": [],
                "escalation_policy": null,
                "teams": [],
                "priority": null,
                "urgency": "high",
                "conference_bridge": null,
                "resolve_reason": null
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::raw;

    const HEADERS: [(&str, &str); 3] = [
        ("authorization", "Token token=pd_test"),
        ("accept", ACCEPT),
        ("from", "suture@example.com"),
    ];

    /// A resolve with the documented headers is accepted and answered with
    /// an incident that fits the response schema; the note is kept.
    #[tokio::test]
    async fn resolves_an_incident_per_the_contract() {
        let fake = FakePagerDuty::start("pd_test", &["PT4KHLK"]).await;
        let resolved = raw::send(
            &fake.base_url(),
            "PUT",
            "/incidents/PT4KHLK",
            &HEADERS,
            Some(r#"{"incident":{"type":"incident_reference","status":"resolved"}}"#),
        )
        .await;
        assert_eq!(resolved.status, 200);
        assert_eq!(resolved.body["incident"]["status"], "resolved");
        let noted = raw::send(
            &fake.base_url(),
            "POST",
            "/incidents/PT4KHLK/notes",
            &HEADERS,
            Some(r#"{"note":{"content":"fixed by suture"}}"#),
        )
        .await;
        assert_eq!(noted.status, 200);
        let incident = &fake.incidents()[0];
        assert_eq!(incident.status, "resolved");
        assert_eq!(incident.notes, vec!["fixed by suture"]);
        assert_eq!(incident.updated_by.as_deref(), Some("suture@example.com"));
        assert_eq!(fake.errors(), Vec::<String>::new());
    }

    /// A write without `From` is a client mistake: recorded, answered 500,
    /// and the incident stays triggered.
    #[tokio::test]
    async fn a_write_without_from_is_an_error() {
        let fake = FakePagerDuty::start("pd_test", &["PT4KHLK"]).await;
        let answer = raw::send(
            &fake.base_url(),
            "PUT",
            "/incidents/PT4KHLK",
            &HEADERS[..2],
            Some(r#"{"incident":{"type":"incident_reference","status":"resolved"}}"#),
        )
        .await;
        assert_eq!(answer.status, 500);
        assert_eq!(fake.errors().len(), 1, "{:?}", fake.errors());
        assert_eq!(fake.incidents()[0].status, "triggered");
    }
}
