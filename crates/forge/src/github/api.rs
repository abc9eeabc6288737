//! The GitHub REST calls of the pull request flow, each retried per
//! [`RetryPolicy`], with the answers' few fields the forge reads.
//!
//! Reads and idempotent writes (`PATCH`, adding labels) go through
//! [`Api::call`]: retried as they are. Creates go through [`Api::create`]:
//! after any failure that may have been applied on GitHub's side (a 5xx, a
//! timeout), the next attempt first looks for what the previous one may
//! have created, so that retrying never creates it twice.

use chrono::Utc;
use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ForgeError;
use crate::github::auth::Credentials;
use crate::http::{Http, Reply, encode, secret_header};
use crate::retry::{Backoff, Flavour, Retry, RetryPolicy, judge};
use crate::{Permission, PrState};

/// Pages of a list read before giving up the search (100 items each).
const MAX_PAGES: u32 = 20;

/// A repository's API, authenticated.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) http: Http,
    pub(crate) credentials: Credentials,
    pub(crate) policy: RetryPolicy,
    pub(crate) owner: String,
    pub(crate) repo: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Pull {
    pub(crate) number: u64,
    pub(crate) html_url: String,
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) merged: Option<bool>,
    #[serde(default)]
    pub(crate) merged_at: Option<String>,
    pub(crate) head: Head,
    #[serde(default)]
    pub(crate) user: Option<User>,
    #[serde(default)]
    pub(crate) labels: Vec<Label>,
    #[serde(default)]
    pub(crate) requested_reviewers: Vec<User>,
    #[serde(default)]
    pub(crate) requested_teams: Vec<Team>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Head {
    #[serde(rename = "ref")]
    pub(crate) reference: String,
    pub(crate) sha: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct User {
    pub(crate) login: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Label {
    pub(crate) name: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Team {
    #[allow(dead_code, reason = "read for debugging output only")]
    pub(crate) slug: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Issue {
    pub(crate) number: u64,
    #[serde(default)]
    pub(crate) body: Option<String>,
    /// Present when the "issue" is a pull request.
    #[serde(default)]
    pub(crate) pull_request: Option<Value>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Comment {
    #[serde(default)]
    body: Option<String>,
}

#[derive(serde::Deserialize)]
struct GitRef {
    object: GitObject,
}

#[derive(serde::Deserialize)]
struct GitObject {
    sha: String,
}

#[derive(serde::Deserialize)]
struct CollaboratorPermission {
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

impl Pull {
    pub(crate) fn state(&self) -> PrState {
        if self.merged == Some(true) || self.merged_at.is_some() {
            PrState::Merged
        } else if self.state == "closed" {
            PrState::Closed
        } else {
            PrState::Open
        }
    }
}

impl Api {
    fn repo_path(&self, rest: &str) -> String {
        format!(
            "/repos/{}/{}{rest}",
            encode(&self.owner),
            encode(&self.repo)
        )
    }

    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (
                ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            ),
            (
                HeaderName::from_static("x-github-api-version"),
                HeaderValue::from_static("2022-11-28"),
            ),
        ]
    }

    /// The token for git over HTTPS (the same as for the API).
    pub(crate) async fn token(&self) -> Result<octocrab::secrecy::SecretString, ForgeError> {
        self.credentials
            .token(&self.http, &self.policy, &self.headers())
            .await
    }

    /// One authenticated attempt, judged: `Ok` an answer to act on, `Err`
    /// a reason to retry.
    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<Reply, Retry>, ForgeError> {
        let token = self.token().await?;
        let mut headers = self.headers();
        use octocrab::secrecy::ExposeSecret;
        headers.push((
            AUTHORIZATION,
            secret_header(&format!("Bearer {}", token.expose_secret()))?,
        ));
        let outcome = self.http.once(method, path, &headers, body).await;
        Ok(judge(outcome, Flavour::GitHub, Utc::now().timestamp()))
    }

    /// A request retried until it gets an answer to act on (any status but
    /// rate limits and 5xx). A 401 to an installation token drops it and
    /// tries once more with a fresh one.
    pub(crate) async fn call(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ForgeError> {
        let mut backoff = Backoff::new(&self.policy, operation);
        let mut refreshed = false;
        loop {
            match self.attempt(method.clone(), path, body).await? {
                Ok(reply) if reply.status == 401 && self.credentials.is_app() && !refreshed => {
                    refreshed = true;
                    self.credentials.invalidate().await;
                    backoff
                        .wait(Retry::Now {
                            reason: "401: the installation token was refused".to_string(),
                        })
                        .await?;
                }
                Ok(reply) => return Ok(reply),
                Err(retry) => backoff.wait(retry).await?,
            }
        }
    }

    /// `call`, expecting one of `statuses`; other answers are errors.
    async fn expect(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        statuses: &[u16],
    ) -> Result<Reply, ForgeError> {
        let reply = self.call(operation, method, path, body).await?;
        if statuses.contains(&reply.status) {
            Ok(reply)
        } else {
            Err(reply.into_error(self.http.service, operation))
        }
    }

    /// Creates with `POST path body` unless `find` already sees the object.
    /// `find` runs before the first attempt when `look_first`, and always
    /// after an attempt that may have been applied. `retry_unprocessable`
    /// says which 422 answers are worth another round (e.g. "already
    /// exists" while the list lags). Returns the object and whether this
    /// call created it (or may have).
    ///
    /// `find` is a plain closure returning a future that borrows only what
    /// the closure captured by reference, not the closure itself: with an
    /// `AsyncFn` the compiler cannot prove the caller's future `Send` for
    /// every borrow, and a service could not box or spawn it.
    pub(crate) async fn create<T, F, Found>(
        &self,
        operation: &str,
        path: &str,
        body: &Value,
        look_first: bool,
        find: F,
        retry_unprocessable: fn(&Reply) -> bool,
    ) -> Result<(T, bool), ForgeError>
    where
        T: DeserializeOwned,
        F: Fn() -> Found,
        Found: Future<Output = Result<Option<T>, ForgeError>>,
    {
        let mut backoff = Backoff::new(&self.policy, operation);
        let mut maybe_applied = false;
        let mut refreshed = false;
        let mut look = look_first;
        loop {
            if look && let Some(found) = find().await? {
                tracing::info!(operation, "found what an earlier attempt created");
                return Ok((found, maybe_applied));
            }
            look = true;
            match self.attempt(Method::POST, path, Some(body)).await? {
                Ok(reply) if reply.is_success() => {
                    return Ok((reply.json(self.http.service, operation)?, true));
                }
                Ok(reply) if reply.status == 401 && self.credentials.is_app() && !refreshed => {
                    refreshed = true;
                    self.credentials.invalidate().await;
                    let reason = "401: the installation token was refused".to_string();
                    backoff.wait(Retry::Now { reason }).await?;
                }
                Ok(reply) if reply.status == 422 && retry_unprocessable(&reply) => {
                    let reason = format!("422: {}", reply.message());
                    backoff.wait(Retry::Transient { reason }).await?;
                }
                Ok(reply) => return Err(reply.into_error(self.http.service, operation)),
                Err(retry) => {
                    if matches!(retry, Retry::Transient { .. }) {
                        maybe_applied = true;
                    }
                    backoff.wait(retry).await?;
                }
            }
        }
    }

    /// The commit a branch points at; `None` when it does not exist.
    pub(crate) async fn branch(&self, branch: &str) -> Result<Option<String>, ForgeError> {
        let operation = "read the fix branch";
        let path = self.repo_path(&format!("/git/ref/heads/{branch}"));
        let reply = self
            .expect(operation, Method::GET, &path, None, &[200, 404, 409])
            .await?;
        if reply.status != 200 {
            return Ok(None);
        }
        let reference: GitRef = reply.json(self.http.service, operation)?;
        Ok(Some(reference.object.sha))
    }

    /// The pull request whose head is `branch` (any state), newest first.
    pub(crate) async fn pull_by_head(&self, branch: &str) -> Result<Option<Pull>, ForgeError> {
        let operation = "find the pull request";
        let path = self.repo_path(&format!(
            "/pulls?head={}&state=all&per_page=100",
            encode(&format!("{}:{branch}", self.owner))
        ));
        let reply = self
            .expect(operation, Method::GET, &path, None, &[200])
            .await?;
        let pulls: Vec<Pull> = reply.json(self.http.service, operation)?;
        Ok(pulls.into_iter().find(|pull| pull.head.reference == branch))
    }

    pub(crate) async fn pull(&self, number: u64) -> Result<Pull, ForgeError> {
        let operation = "read the pull request";
        let path = self.repo_path(&format!("/pulls/{number}"));
        self.expect(operation, Method::GET, &path, None, &[200])
            .await?
            .json(self.http.service, operation)
    }

    /// The first issue (not pull request) labelled `label` whose body
    /// starts with the line `marker`, searching every state. A marker
    /// anywhere else is quoted text, not suture's.
    pub(crate) async fn issue_by_marker(
        &self,
        label: &str,
        marker: &str,
    ) -> Result<Option<Issue>, ForgeError> {
        let operation = "find the tracking issue";
        for page in 1..=MAX_PAGES {
            let path = self.repo_path(&format!(
                "/issues?labels={}&state=all&per_page=100&page={page}",
                encode(label)
            ));
            let reply = self
                .expect(operation, Method::GET, &path, None, &[200])
                .await?;
            let issues: Vec<Issue> = reply.json(self.http.service, operation)?;
            let found = issues.into_iter().find(|issue| {
                issue.pull_request.is_none()
                    && issue
                        .body
                        .as_deref()
                        .is_some_and(|body| first_line_is(body, marker))
            });
            if found.is_some() {
                return Ok(found);
            }
            if !has_next_page(&reply) {
                break;
            }
        }
        Ok(None)
    }

    pub(crate) async fn update_issue(
        &self,
        number: u64,
        patch: &Value,
    ) -> Result<Issue, ForgeError> {
        let operation = "update the issue";
        let path = self.repo_path(&format!("/issues/{number}"));
        self.expect(operation, Method::PATCH, &path, Some(patch), &[200])
            .await?
            .json(self.http.service, operation)
    }

    pub(crate) async fn add_labels(&self, number: u64, labels: &[&str]) -> Result<(), ForgeError> {
        let path = self.repo_path(&format!("/issues/{number}/labels"));
        let body = json!({ "labels": labels });
        self.expect("add labels", Method::POST, &path, Some(&body), &[200])
            .await
            .map(drop)
    }

    /// Asks for reviews; `Ok(false)` when GitHub refuses the request (422:
    /// someone is not a collaborator, or is the author).
    pub(crate) async fn request_reviewers(
        &self,
        number: u64,
        users: &[String],
        teams: &[String],
    ) -> Result<bool, ForgeError> {
        let operation = "request reviewers";
        let path = self.repo_path(&format!("/pulls/{number}/requested_reviewers"));
        let body = json!({ "reviewers": users, "team_reviewers": teams });
        let reply = self
            .expect(operation, Method::POST, &path, Some(&body), &[201, 422])
            .await?;
        if reply.status == 422 {
            tracing::warn!(pull = number, message = %reply.message(), "review request refused");
        }
        Ok(reply.status == 201)
    }

    /// `login`'s role; `None` when not a collaborator.
    pub(crate) async fn permission(&self, login: &str) -> Result<Permission, ForgeError> {
        let operation = "read a collaborator's permission";
        let path = self.repo_path(&format!("/collaborators/{}/permission", encode(login)));
        let reply = self
            .expect(operation, Method::GET, &path, None, &[200, 404])
            .await?;
        if reply.status == 404 {
            return Ok(Permission::None);
        }
        let answer: CollaboratorPermission = reply.json(self.http.service, operation)?;
        let role = answer.role_name.as_deref().unwrap_or(&answer.permission);
        match Permission::from_role(role) {
            // Custom roles have their own names; `permission` still says
            // the base level.
            Permission::None => Ok(Permission::from_role(&answer.permission)),
            permission => Ok(permission),
        }
    }

    /// Comments `body` on issue or pull request `number`, with a hidden
    /// `<!-- suture:comment=<key> -->`. After an attempt that may have been
    /// applied, and before the first one when `look_first`, the latest
    /// comment is checked for the key, so the comment is never doubled.
    pub(crate) async fn comment(
        &self,
        number: u64,
        body: &str,
        key: &str,
        look_first: bool,
    ) -> Result<(), ForgeError> {
        let marker = format!("<!-- suture:comment={key} -->");
        let path = self.repo_path(&format!("/issues/{number}/comments"));
        let payload = json!({ "body": format!("{body}\n\n{marker}") });
        let marker = &marker;
        let find = || async move {
            let latest = self.latest_comment(number).await?;
            Ok(latest
                .filter(|comment| last_line_is(comment, marker))
                .map(|_| Value::Null))
        };
        self.create::<Value, _, _>("comment", &path, &payload, look_first, find, |_| false)
            .await
            .map(drop)
    }

    async fn latest_comment(&self, number: u64) -> Result<Option<String>, ForgeError> {
        let operation = "read comments";
        let mut latest = None;
        for page in 1..=MAX_PAGES {
            let path = self.repo_path(&format!(
                "/issues/{number}/comments?per_page=100&page={page}"
            ));
            let reply = self
                .expect(operation, Method::GET, &path, None, &[200])
                .await?;
            let comments: Vec<Comment> = reply.json(self.http.service, operation)?;
            if let Some(last) = comments.into_iter().last() {
                latest = Some(last.body.unwrap_or_default());
            }
            if !has_next_page(&reply) {
                break;
            }
        }
        Ok(latest)
    }
}

/// Whether `text`'s first line is `marker` (surrounding whitespace aside).
fn first_line_is(text: &str, marker: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|line| line.trim() == marker)
}

/// Whether `text`'s last non-empty line is `marker`.
fn last_line_is(text: &str, marker: &str) -> bool {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .is_some_and(|line| line.trim() == marker)
}

fn has_next_page(reply: &Reply) -> bool {
    reply
        .header("link")
        .is_some_and(|link| link.contains("rel=\"next\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A marker counts only on the line suture writes it on: quoted in
    /// the middle of a body, or in a code block, it is text.
    #[test]
    fn markers_are_trusted_only_where_suture_writes_them() {
        let marker = "<!-- suture:incident=7 -->";
        assert!(first_line_is(&format!("{marker}\nbody"), marker));
        assert!(first_line_is(&format!("{marker}\r\nbody"), marker));
        assert!(!first_line_is(&format!("ValueError\n{marker}"), marker));
        assert!(!first_line_is(&format!("x {marker}\nbody"), marker));
        assert!(!first_line_is("", marker));
        let key = "<!-- suture:comment=close-1 -->";
        assert!(last_line_is(&format!("Held.\n\n{key}\n"), key));
        assert!(!last_line_is(&format!("```\n{key}\n```\nmore"), key));
        assert!(!last_line_is(&format!("{key} and more"), key));
    }
}
