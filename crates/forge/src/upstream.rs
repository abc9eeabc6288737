//! The close step's calls to the services that raised the incident:
//! find and resolve the Sentry issue, resolve (and annotate) the PagerDuty
//! incident.
//!
//! Both are small JSON clients over the same HTTP client and retry rules as
//! the GitHub forge (429 with `Retry-After` waits that long; 5xx and
//! timeouts back off; then [`ForgeError::GaveUp`]). Resolving is an
//! idempotent `PUT`, retried as it is. A PagerDuty note is a create: after
//! an attempt that may have been applied, the incident's notes are read
//! before trying again, so a retry never adds it twice.
//!
//! Wire formats (`shared/contracts/*-api-subset.json`, WIRE-FORMATS.md e/f):
//! Sentry `PUT /api/0/organizations/{org}/issues/{id}/` with
//! `{"status":"resolved"}` and `Authorization: Bearer <token>`, and
//! `GET /api/0/projects/{org}/{project}/events/{event_id}/` whose `groupID`
//! is the issue of an event an SDK sent straight to suture; PagerDuty
//! `PUT /incidents/{id}` with `{"incident":{"type":"incident_reference",
//! "status":"resolved"}}`, `Authorization: Token token=<key>`,
//! `Accept: application/vnd.pagerduty+json;version=2` and `From: <email>`.

use chrono::Utc;
use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use octocrab::secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::ForgeError;
use crate::http::{Http, Reply, encode, secret_header};
use crate::retry::{Backoff, Flavour, Retry, RetryPolicy, judge};

/// Where and how to reach Sentry.
#[derive(Debug, Clone)]
pub struct SentryConfig {
    /// `https://sentry.io` (or a region host, or a self-hosted base).
    pub base_url: String,
    /// The organisation's slug (or id).
    pub organization: String,
    /// An internal-integration or org auth token with `event:write`.
    pub token: SecretString,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
}

impl SentryConfig {
    /// sentry.io defaults.
    pub fn new(organization: &str, token: SecretString) -> SentryConfig {
        SentryConfig {
            base_url: "https://sentry.io".to_string(),
            organization: organization.to_string(),
            token,
            retry: RetryPolicy::default(),
        }
    }
}

/// Sentry's Web API, for resolving issues.
#[derive(Debug)]
pub struct SentryClient {
    http: Http,
    config: SentryConfig,
}

impl SentryClient {
    /// A client for `config`.
    pub fn new(config: SentryConfig) -> Result<SentryClient, ForgeError> {
        let http = Http::new("sentry", &config.base_url, config.retry.request_timeout)?;
        Ok(SentryClient { http, config })
    }

    /// The id of the Sentry issue event `event_id` of `project` (id or
    /// slug) was grouped into, its `groupID`; `None` when Sentry does not
    /// know the event (404: never sent there, not yet processed, or
    /// deleted) or has not grouped it. An SDK event carries no issue id, so
    /// this is how the close step finds the issue to resolve. The event id
    /// is the SDK's 32 hex digits; the UUID form with dashes is accepted.
    pub async fn issue_for_event(
        &self,
        project: &str,
        event_id: &str,
    ) -> Result<Option<String>, ForgeError> {
        let operation = "look up the sentry event";
        let event_id: String = event_id
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if event_id.len() != 32 || !event_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ForgeError::invalid(
                "sentry event id",
                format!("{event_id:?} is not 32 hex digits"),
            ));
        }
        if project.is_empty() {
            return Err(ForgeError::invalid("sentry project", "it is empty"));
        }
        let path = format!(
            "/api/0/projects/{}/{}/events/{event_id}/",
            encode(&self.config.organization),
            encode(project),
        );
        let reply = call(
            &self.http,
            &self.config.retry,
            operation,
            Method::GET,
            &path,
            &self.headers()?,
            None,
        )
        .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(reply.into_error(self.http.service, operation));
        }
        let event: Value = reply.json(self.http.service, operation)?;
        match &event["groupID"] {
            Value::String(group) if !group.is_empty() => Ok(Some(group.clone())),
            Value::Null | Value::String(_) => Ok(None),
            // Sentry's serialiser writes ids as strings; a number is not
            // what the API documents but names the issue all the same.
            Value::Number(group) => Ok(Some(group.to_string())),
            other => Err(ForgeError::Protocol {
                service: self.http.service,
                operation: operation.to_string(),
                reason: format!("groupID is {other}, not a string"),
            }),
        }
    }

    /// Marks issue `issue_id` resolved.
    pub async fn resolve_issue(&self, issue_id: &str) -> Result<(), ForgeError> {
        self.update(issue_id, &json!({ "status": "resolved" }))
            .await
    }

    /// Marks issue `issue_id` resolved by `commit` of `repository` (as
    /// Sentry names the repository), which Sentry shows on the issue.
    pub async fn resolve_issue_in_commit(
        &self,
        issue_id: &str,
        repository: &str,
        commit: &str,
    ) -> Result<(), ForgeError> {
        let body = json!({
            "status": "resolved",
            "statusDetails": { "inCommit": { "repository": repository, "commit": commit } },
        });
        self.update(issue_id, &body).await
    }

    async fn update(&self, issue_id: &str, body: &Value) -> Result<(), ForgeError> {
        let operation = "resolve the sentry issue";
        let path = format!(
            "/api/0/organizations/{}/issues/{}/",
            encode(&self.config.organization),
            encode(issue_id)
        );
        let reply = call(
            &self.http,
            &self.config.retry,
            operation,
            Method::PUT,
            &path,
            &self.headers()?,
            Some(body),
        )
        .await?;
        expect_success(reply, self.http.service, operation)
    }

    fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, ForgeError> {
        Ok(vec![
            (ACCEPT, HeaderValue::from_static("application/json")),
            (
                AUTHORIZATION,
                secret_header(&format!("Bearer {}", self.config.token.expose_secret()))?,
            ),
        ])
    }
}

/// Where and how to reach PagerDuty.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// `https://api.pagerduty.com`.
    pub base_url: String,
    /// A REST API key.
    pub api_key: SecretString,
    /// The email of a user on the account: PagerDuty's `From` header on
    /// writes, the user the change is attributed to.
    pub from_email: String,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
}

impl PagerDutyConfig {
    /// api.pagerduty.com defaults.
    pub fn new(api_key: SecretString, from_email: &str) -> PagerDutyConfig {
        PagerDutyConfig {
            base_url: "https://api.pagerduty.com".to_string(),
            api_key,
            from_email: from_email.to_string(),
            retry: RetryPolicy::default(),
        }
    }
}

/// PagerDuty's REST API, for resolving incidents.
#[derive(Debug)]
pub struct PagerDutyClient {
    http: Http,
    config: PagerDutyConfig,
}

impl PagerDutyClient {
    /// A client for `config`.
    pub fn new(config: PagerDutyConfig) -> Result<PagerDutyClient, ForgeError> {
        if !config.from_email.contains('@') {
            return Err(ForgeError::invalid(
                "pagerduty from email",
                format!("{:?} is not an email address", config.from_email),
            ));
        }
        let http = Http::new("pagerduty", &config.base_url, config.retry.request_timeout)?;
        Ok(PagerDutyClient { http, config })
    }

    fn headers(&self, write: bool) -> Result<Vec<(HeaderName, HeaderValue)>, ForgeError> {
        let mut headers = vec![
            (
                ACCEPT,
                HeaderValue::from_static("application/vnd.pagerduty+json;version=2"),
            ),
            (
                AUTHORIZATION,
                secret_header(&format!(
                    "Token token={}",
                    self.config.api_key.expose_secret()
                ))?,
            ),
        ];
        if write {
            let from = HeaderValue::from_str(&self.config.from_email)
                .map_err(|_| ForgeError::invalid("pagerduty from email", "not a header value"))?;
            headers.push((HeaderName::from_static("from"), from));
        }
        Ok(headers)
    }

    /// Resolves incident `incident_id`.
    pub async fn resolve_incident(&self, incident_id: &str) -> Result<(), ForgeError> {
        let operation = "resolve the pagerduty incident";
        let path = format!("/incidents/{}", encode(incident_id));
        let body = json!({ "incident": { "type": "incident_reference", "status": "resolved" } });
        let reply = call(
            &self.http,
            &self.config.retry,
            operation,
            Method::PUT,
            &path,
            &self.headers(true)?,
            Some(&body),
        )
        .await?;
        expect_success(reply, self.http.service, operation)
    }

    /// Adds a note to incident `incident_id`, once: a retry after an
    /// attempt that may have been applied first reads the notes.
    pub async fn add_note(&self, incident_id: &str, content: &str) -> Result<(), ForgeError> {
        let operation = "add a pagerduty note";
        let path = format!("/incidents/{}/notes", encode(incident_id));
        let body = json!({ "note": { "content": content } });
        let mut backoff = Backoff::new(&self.config.retry, operation);
        let mut look = false;
        loop {
            if look && self.has_note(&path, content).await? {
                return Ok(());
            }
            let outcome = self
                .http
                .once(Method::POST, &path, &self.headers(true)?, Some(&body))
                .await;
            match judge(outcome, Flavour::Other, Utc::now().timestamp()) {
                Ok(reply) => return expect_success(reply, self.http.service, operation),
                Err(retry) => {
                    look = matches!(retry, Retry::Transient { .. });
                    backoff.wait(retry).await?;
                }
            }
        }
    }

    async fn has_note(&self, path: &str, content: &str) -> Result<bool, ForgeError> {
        let operation = "read pagerduty notes";
        let reply = call(
            &self.http,
            &self.config.retry,
            operation,
            Method::GET,
            path,
            &self.headers(false)?,
            None,
        )
        .await?;
        if !reply.is_success() {
            return Err(reply.into_error(self.http.service, operation));
        }
        let notes: Value = reply.json(self.http.service, operation)?;
        Ok(notes["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|note| note["content"].as_str() == Some(content)))
    }
}

/// A request retried until it gets an answer other than 429 or 5xx.
async fn call(
    http: &Http,
    policy: &RetryPolicy,
    operation: &str,
    method: Method,
    path: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Option<&Value>,
) -> Result<Reply, ForgeError> {
    let mut backoff = Backoff::new(policy, operation);
    loop {
        let outcome = http.once(method.clone(), path, headers, body).await;
        match judge(outcome, Flavour::Other, Utc::now().timestamp()) {
            Ok(reply) => return Ok(reply),
            Err(retry) => backoff.wait(retry).await?,
        }
    }
}

fn expect_success(reply: Reply, service: &'static str, operation: &str) -> Result<(), ForgeError> {
    if reply.is_success() {
        Ok(())
    } else {
        Err(reply.into_error(service, operation))
    }
}
