//! A fake Sentry Web API for the close step: retrieve and update (resolve)
//! issues of one organisation.
//!
//! [`FakeSentry`] serves `GET` and `PUT
//! /api/0/organizations/{org}/issues/{issue_id}/` as described by
//! `shared/contracts/sentry-api-subset.json` (Sentry's own OpenAPI
//! description), checking requests and answers against it. One quirk of the
//! published text is handled as `shared/contracts/SOURCES.md` says: the
//! update's request schema lists every field as required although Sentry
//! changes only the fields sent, so `{"status":"resolved"}` is checked
//! without `required` (at the top level and in `statusDetails`).
//!
//! Authentication is `Authorization: Bearer <token>`; an unknown token gets
//! a 401, an unknown issue a 404, as Sentry answers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::contract::{OpenApi, Route, instance, without_required};
use crate::server::{Answer, Api, Call, Server, lock};
pub use crate::server::{Fault, RecordedRequest};

/// `GET` and `PUT` one issue.
pub const ISSUE: &str = "/api/0/organizations/{organization_id_or_slug}/issues/{issue_id}/";

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

    /// The issues, by id.
    pub fn issues(&self) -> Vec<FakeSentryIssue> {
        lock(&self.server.api().issues).values().cloned().collect()
    }
}

struct SentryApi {
    org: String,
    token: String,
    issues: Mutex<BTreeMap<String, FakeSentryIssue>>,
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
        let mut issues = lock(&self.issues);
        let issue = match issues.get_mut(route.param("issue_id")) {
            Some(issue) if route.param("organization_id_or_slug") == self.org => issue,
            _ => {
                return Answer::json(
                    404,
                    self.error_body(404, "The requested resource does not exist"),
                );
            }
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
