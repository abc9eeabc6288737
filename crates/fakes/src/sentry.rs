//! A fake Sentry Web API for the close step: retrieve and update (resolve)
//! issues of one organisation, and look up which issue an event was
//! grouped into.
//!
//! [`FakeSentry`] serves `GET` and `PUT
//! /api/0/organizations/{org}/issues/{issue_id}/` and `GET
//! /api/0/projects/{org}/{project}/events/{event_id}/` as described by
//! `shared/contracts/sentry-api-subset.json` (Sentry's own OpenAPI
//! description), checking requests and answers against it. One quirk of the
//! published text is handled as `shared/contracts/SOURCES.md` says: the
//! update's request schema lists every field as required although Sentry
//! changes only the fields sent, so `{"status":"resolved"}` is checked
//! without `required` (at the top level and in `statusDetails`).
//!
//! Authentication is `Authorization: Bearer <token>`; an unknown token gets
//! a 401, an unknown issue or event a 404, as Sentry answers. Events are
//! known only once added with [`FakeSentry::add_event`]; the contract's
//! event id pattern (32 lowercase hex digits) is enforced on the path.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::contract::{OpenApi, Route, instance, without_required};
use crate::server::{Answer, Api, Call, Server, lock};
pub use crate::server::{Fault, RecordedRequest};

/// `GET` and `PUT` one issue.
pub const ISSUE: &str = "/api/0/organizations/{organization_id_or_slug}/issues/{issue_id}/";
/// `GET` one event of a project (its `groupID` is its issue).
pub const PROJECT_EVENT: &str =
    "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/events/{event_id}/";

const CONTRACT: &str = "sentry-api-subset.json";

/// An issue as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSentryIssue {
    /// Issue id.
    pub id: String,
    /// `unresolved`, `resolved`, `ignored`, …
    pub status: String,
    /// The last `statusDetails` sent, `{}` when none.
    pub status_details: Value,
}

/// A running fake Sentry API; dropping it stops the server.
#[derive(Debug)]
pub struct FakeSentry {
    server: Server<SentryApi>,
}

impl FakeSentry {
    /// Starts a fake for organisation `org` that accepts `token` and holds
    /// these unresolved issues (ids).
    pub async fn start(org: &str, token: &str, issue_ids: &[&str]) -> FakeSentry {
        OpenApi::load(CONTRACT);
        let issues = issue_ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    FakeSentryIssue {
                        id: id.to_string(),
                        status: "unresolved".to_string(),
                        status_details: json!({}),
                    },
                )
            })
            .collect();
        let server = Server::start(SentryApi {
            org: org.to_string(),
            token: token.to_string(),
            issues: Mutex::new(issues),
            events: Mutex::new(BTreeMap::new()),
        })
        .await;
        FakeSentry { server }
    }

    /// The base URL to configure a client with, e.g. `http://127.0.0.1:4711`
    /// (like `https://sentry.io`).
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

    /// Queues `fault` for the next `method` request to [`ISSUE`].
    pub fn inject(&self, method: &str, fault: Fault) {
        self.server.inject(method, ISSUE, fault);
    }

    /// Queues `fault` for the next `method` request to `template` ([`ISSUE`]
    /// or [`PROJECT_EVENT`]).
    pub fn inject_on(&self, method: &str, template: &str, fault: Fault) {
        self.server.inject(method, template, fault);
    }

    /// Makes event `event_id` of `project` (as the request names it: id or
    /// slug) known, grouped into issue `issue_id` (which need not be one of
    /// the fake's issues, as an issue may exist without being resolvable
    /// by this token).
    pub fn add_event(&self, project: &str, event_id: &str, issue_id: &str) {
        lock(&self.server.api().events).insert(
            (project.to_string(), event_id.to_string()),
            issue_id.to_string(),
        );
    }

    /// The issues, by id.
    pub fn issues(&self) -> Vec<FakeSentryIssue> {
        lock(&self.server.api().issues).values().cloned().collect()
    }
}

struct SentryApi {
    org: String,
    token: String,
    issues: Mutex<BTreeMap<String, FakeSentryIssue>>,
    /// `(project, event id)` → issue id.
    events: Mutex<BTreeMap<(String, String), String>>,
}

impl Api for SentryApi {
    fn contract(&self) -> &'static OpenApi {
        OpenApi::load(CONTRACT)
    }

    fn check_request(
        &self,
        route: &Route,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let contract = self.contract();
        if route.method != "put" {
            return contract.check_request(route, query, body);
        }
        let Some(body) = body else {
            return vec!["the request body is required".to_string()];
        };
        let schema = contract
            .normalised_request_schema(route)
            .expect("the update has a request body");
        let key = format!(
            "{} {} request without required",
            route.method, route.template
        );
        contract.check_with(&key, || without_required(schema, 1), body)
    }

    fn error_body(&self, _status: u16, message: &str) -> Value {
        json!({ "detail": message })
    }

    fn handle(&self, call: &Call<'_>) -> Answer {
        let expected = format!("Bearer {}", self.token);
        if call.header("authorization") != Some(expected.as_str()) {
            return Answer::json(401, self.error_body(401, "Invalid token"));
        }
        let route = call.route;
        if route.template == PROJECT_EVENT {
            return self.event(call);
        }
        let mut issues = lock(&self.issues);
        let issue = match issues.get_mut(route.param("issue_id")) {
            Some(issue) if route.param("organization_id_or_slug") == self.org => issue,
            _ => return self.not_found(),
        };
        if route.method == "put" {
            let body = call.body.cloned().unwrap_or(Value::Null);
            if let Some(status) = body["status"].as_str() {
                issue.status = match status {
                    "resolvedInNextRelease" => "resolved",
                    "muted" => "ignored",
                    other => other,
                }
                .to_string();
            }
            if let Some(details) = body.get("statusDetails") {
                issue.status_details = details.clone();
            }
        }
        let schema = self
            .contract()
            .response_schema(route, 200)
            .expect("the contract documents the issue");
        Answer::json(
            200,
            instance(
                schema,
                json!({
                    "id": issue.id,
                    "shortId": format!("SHOP-{}", issue.id),
                    "title": "ZeroDivisionError: division by zero",
                    "status": issue.status,
                    "statusDetails": response_details(&issue.status_details),
                    "level": "error",
                    "type": "error",
                    "issueCategory": "error",
                    "issueType": "error",
                    "permalink": format!("https://sentry.io/organizations/{}/issues/{}/", self.org, issue.id),
                    "project": { "id": "1", "name": "shop", "slug": "shop", "platform": "python" },
                }),
            ),
        )
    }
}

impl SentryApi {
    fn not_found(&self) -> Answer {
        Answer::json(
            404,
            self.error_body(404, "The requested resource does not exist"),
        )
    }

    fn event(&self, call: &Call<'_>) -> Answer {
        let route = call.route;
        let event_id = route.param("event_id");
        let well_formed = event_id.len() == 32
            && event_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Answer::problem(format!(
                "event id {event_id:?} does not match the contract's ^[0-9a-f]{{32}}$"
            ));
        }
        let project = route.param("project_id_or_slug");
        let issue = lock(&self.events)
            .get(&(project.to_string(), event_id.to_string()))
            .cloned();
        let Some(issue) = issue.filter(|_| route.param("organization_id_or_slug") == self.org)
        else {
            return self.not_found();
        };
        let schema = self
            .contract()
            .response_schema(route, 200)
            .expect("the contract documents the event");
        Answer::json(
            200,
            instance(
                schema,
                json!({
                    "id": event_id,
                    "eventID": event_id,
                    "groupID": issue,
                    "projectID": "1",
                    "title": "ZeroDivisionError: division by zero",
                    "message": "",
                    "platform": "python",
                    "type": "error",
                    "dateCreated": "2026-01-01T00:00:00Z",
                    "dateReceived": "2026-01-01T00:00:01Z",
                }),
            ),
        )
    }
}

/// `statusDetails` as Sentry answers it: a resolving commit, sent as
/// `{repository, commit}`, comes back as the commit's id.
fn response_details(sent: &Value) -> Value {
    let mut details = sent.clone();
    if let Some(commit) = sent["inCommit"]["commit"].as_str() {
        details["inCommit"] = json!(commit);
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::raw;

    const PATH: &str = "/api/0/organizations/acme/issues/42/";

    /// A resolve sent the way the Sentry docs show it is accepted (without
    /// the contract's every-field `required`) and answered with an issue
    /// that fits the response schema; a bad token is refused.
    #[tokio::test]
    async fn resolves_an_issue_per_the_contract() {
        let fake = FakeSentry::start("acme", "sntrys_test", &["42"]).await;
        let body = Some(r#"{"status":"resolved"}"#);
        let ok = raw::send(
            &fake.base_url(),
            "PUT",
            PATH,
            &[("authorization", "Bearer sntrys_test")],
            body,
        )
        .await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body["status"], "resolved");
        let refused = raw::send(
            &fake.base_url(),
            "PUT",
            PATH,
            &[("authorization", "Bearer wrong")],
            body,
        )
        .await;
        assert_eq!(refused.status, 401);
        assert_eq!(fake.issues()[0].status, "resolved");
        assert_eq!(fake.errors(), Vec::<String>::new());
    }

    /// A body that breaks the contract (an unknown status) is recorded as
    /// an error and answered with a 500; the issue is left alone.
    #[tokio::test]
    async fn records_a_contract_violation() {
        let fake = FakeSentry::start("acme", "t", &["42"]).await;
        let answer = raw::send(
            &fake.base_url(),
            "PUT",
            PATH,
            &[("authorization", "Bearer t")],
            Some(r#"{"status":"fixed"}"#),
        )
        .await;
        assert_eq!(answer.status, 500);
        assert_eq!(fake.errors().len(), 1, "{:?}", fake.errors());
        assert_eq!(fake.issues()[0].status, "unresolved");
    }

    /// A known event answers with its issue as `groupID`, in the shape the
    /// contract documents; an unknown one (or another organisation's) is a
    /// 404; an id that is not 32 hex digits breaks the contract.
    #[tokio::test]
    async fn looks_up_events() {
        let fake = FakeSentry::start("acme", "t", &["42"]).await;
        let event = "0123456789abcdef0123456789abcdef";
        fake.add_event("shop", event, "42");
        let headers = [("authorization", "Bearer t")];
        let path = |org: &str, project: &str, id: &str| {
            format!("/api/0/projects/{org}/{project}/events/{id}/")
        };

        let found = raw::send(
            &fake.base_url(),
            "GET",
            &path("acme", "shop", event),
            &headers,
            None,
        )
        .await;
        assert_eq!(found.status, 200);
        assert_eq!(found.body["groupID"], "42");
        assert_eq!(found.body["eventID"], event);
        let unknown = "f".repeat(32);
        for (org, project, id) in [
            ("acme", "shop", unknown.as_str()),
            ("acme", "web", event),
            ("other", "shop", event),
        ] {
            let missing = raw::send(
                &fake.base_url(),
                "GET",
                &path(org, project, id),
                &headers,
                None,
            )
            .await;
            assert_eq!(missing.status, 404, "{org} {project} {id}");
            assert!(missing.body["detail"].is_string());
        }
        assert_eq!(fake.errors(), Vec::<String>::new());

        let bad = raw::send(
            &fake.base_url(),
            "GET",
            &path("acme", "shop", "not-an-id"),
            &headers,
            None,
        )
        .await;
        assert_eq!(bad.status, 500);
        assert_eq!(fake.errors().len(), 1, "{:?}", fake.errors());
    }

    /// An injected 429 carries `Retry-After`; the next request goes through.
    #[tokio::test]
    async fn injects_a_rate_limit() {
        let fake = FakeSentry::start("acme", "t", &["42"]).await;
        fake.inject("PUT", Fault::retry_after(429, 7));
        let headers = [("authorization", "Bearer t")];
        let body = Some(r#"{"status":"resolved"}"#);
        let limited = raw::send(&fake.base_url(), "PUT", PATH, &headers, body).await;
        assert_eq!(limited.status, 429);
        assert_eq!(limited.header("retry-after"), Some("7"));
        let ok = raw::send(&fake.base_url(), "PUT", PATH, &headers, body).await;
        assert_eq!(ok.status, 200);
        assert_eq!(fake.errors(), Vec::<String>::new());
    }
}
