//! Webhook deliveries the fake GitHub would send about its own state: a
//! pull request closed (merged or not) and a comment created, for tests of
//! a service that reviews, verifies and closes on them.
//!
//! Each payload starts from GitHub's own example in
//! `shared/fixtures/github/` (so every field a real delivery has is
//! there), takes the fake's repository, users, numbers, branches and
//! commits in place of the example's, and is checked against the webhook
//! contract (`shared/contracts/github-webhooks-subset.json`, OpenAPI 3.1,
//! i.e. JSON Schema 2020-12) before it is handed out: a payload the
//! contract refuses is a broken fake, and panics.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::render::timestamp;
use super::{Comment, FakeGitHub, GitHubApi, State};
use crate::server::lock;

const CONTRACT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/contracts/github-webhooks-subset.json"
);
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/github"
);

/// The `X-Hub-Signature-256` value GitHub sends with a delivery of `body`
/// to a webhook with `secret`: `sha256=` and the hex HMAC-SHA256 of the
/// exact bytes.
pub fn sign_github_webhook(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

impl FakeGitHub {
    /// The `pull_request` delivery (`X-GitHub-Event: pull_request`) with
    /// action `closed` for pull request `number`: `merged` true with
    /// `merged_at`, `merged_by` and `merge_commit_sha` after
    /// [`FakeGitHub::merge_pull`], false after [`FakeGitHub::close_pull`].
    ///
    /// # Panics
    ///
    /// When there is no such pull request, when it is still open, or when
    /// the payload breaks the webhook contract.
    pub fn pull_request_closed_webhook(&self, number: u64) -> Value {
        let api = self.server.api();
        let state = lock(&api.state);
        let item = state
            .items
            .iter()
            .find(|item| item.number == number && item.pull.is_some())
            .unwrap_or_else(|| panic!("no pull request #{number}"));
        assert_eq!(item.state, "closed", "pull request #{number} is open");
        let pull = item.pull.as_ref().expect("found as a pull request");
        let mut payload = api.fixture("pull_request.closed.payload.json");
        let sender = &api.config.owner;
        let merged = pull.merged_at.is_some();
        let html_url = format!("{}/pull/{number}", api.repo_html_url());
        let api_url = format!("{}/pulls/{number}", api.repo_api_url());
        let repository = api.repository(&payload["repository"], Some(&pull.base_ref));
        let side = |reference: &str, sha: &str| {
            json!({
                "label": format!("{}:{reference}", api.config.owner),
                "ref": reference,
                "sha": sha,
                "user": api.webhook_user(&api.config.owner),
                "repo": repository,
            })
        };
        let issue_url = format!("{}/issues/{number}", api.repo_api_url());
        let comments_url = format!("{issue_url}/comments");
        let statuses_url = format!("{}/statuses/{}", api.repo_api_url(), pull.head_sha);
        let links = json!({
            "self": { "href": api_url },
            "html": { "href": html_url },
            "issue": { "href": issue_url },
            "comments": { "href": comments_url },
            "review_comments": { "href": format!("{api_url}/comments") },
            "commits": { "href": format!("{api_url}/commits") },
            "statuses": { "href": statuses_url },
        });
        let mut overlay = json!({
            "url": api_url,
            "id": item.id,
            "node_id": format!("PR_{}", item.id),
            "html_url": html_url,
            "diff_url": format!("{html_url}.diff"),
            "patch_url": format!("{html_url}.patch"),
            "issue_url": issue_url,
            "commits_url": format!("{api_url}/commits"),
            "review_comments_url": format!("{api_url}/comments"),
            "comments_url": comments_url,
            "statuses_url": statuses_url,
            "number": number,
            "state": "closed",
            "title": item.title,
            "body": item.body,
            "user": api.webhook_user(&item.author),
            "author_association": api.association(&item.author),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "created_at": timestamp(item.created_at),
            "updated_at": timestamp(item.updated_at),
            "closed_at": item.closed_at.map(timestamp),
            "merged_at": pull.merged_at.map(timestamp),
            "merged": merged,
            "merged_by": if merged { api.webhook_user(sender) } else { Value::Null },
            "merge_commit_sha": pull.merge_commit_sha,
            "draft": pull.draft,
            "labels": item.labels.iter().map(|name| api.webhook_label(name)).collect::<Vec<_>>(),
            "requested_reviewers": pull
                .requested_reviewers
                .iter()
                .map(|login| api.webhook_user(login))
                .collect::<Vec<_>>(),
            "requested_teams": [],
            "comments": item.comments.len(),
            "review_comments": 0,
            "_links": links,
        });
        overlay["head"] = side(&pull.head_ref, &pull.head_sha);
        overlay["base"] = side(&pull.base_ref, &pull.base_sha);
        crate::contract::merge(&mut payload["pull_request"], overlay);
        payload["action"] = json!("closed");
        payload["number"] = json!(number);
        payload["repository"] = repository.clone();
        payload["sender"] = api.webhook_user(sender);
        api.set_installation(&mut payload);
        check("pull-request-closed", &payload);
        payload
    }

    /// The `issue_comment` delivery (`X-GitHub-Event: issue_comment`) with
    /// action `created` for a comment by `login` saying `body` on issue or
    /// pull request `number`; `issue.pull_request` is there when `number`
    /// is a pull request, as GitHub sends it. The comment is also added to
    /// the fake's state, so the REST API lists it as GitHub would.
    ///
    /// # Panics
    ///
    /// When there is no such issue or pull request, or when the payload
    /// breaks the webhook contract.
    pub fn issue_comment_webhook(&self, number: u64, login: &str, body: &str) -> Value {
        let api = self.server.api();
        let mut state = lock(&api.state);
        let index = state
            .items
            .iter()
            .position(|item| item.number == number)
            .unwrap_or_else(|| panic!("no issue or pull request #{number}"));
        let comment = add_comment(&mut state, index, login, body);
        let item = &state.items[index];
        let mut payload = api.fixture("issue_comment.created.payload.json");
        let kind = if item.pull.is_some() {
            "pull"
        } else {
            "issues"
        };
        let html_url = format!("{}/{kind}/{number}", api.repo_html_url());
        let issue_url = format!("{}/issues/{number}", api.repo_api_url());
        let mut issue = json!({
            "url": issue_url,
            "repository_url": api.repo_api_url(),
            "labels_url": format!("{issue_url}/labels{{/name}}"),
            "comments_url": format!("{issue_url}/comments"),
            "events_url": format!("{issue_url}/events"),
            "html_url": html_url,
            "id": item.id,
            "node_id": format!("I_{}", item.id),
            "number": number,
            "title": item.title,
            "user": api.webhook_user(&item.author),
            "author_association": api.association(&item.author),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "labels": item.labels.iter().map(|name| api.webhook_label(name)).collect::<Vec<_>>(),
            "state": item.state,
            "comments": item.comments.len(),
            "created_at": timestamp(item.created_at),
            "updated_at": timestamp(item.updated_at),
            "closed_at": item.closed_at.map(timestamp),
            "body": item.body,
            "active_lock_reason": null,
            "reactions": reactions(&format!("{issue_url}/reactions")),
        });
        if let Some(pull) = &item.pull {
            issue["pull_request"] = json!({
                "url": format!("{}/pulls/{number}", api.repo_api_url()),
                "html_url": html_url,
                "diff_url": format!("{html_url}.diff"),
                "patch_url": format!("{html_url}.patch"),
                "merged_at": pull.merged_at.map(timestamp),
            });
        }
        let comment_url = format!("{}/issues/comments/{}", api.repo_api_url(), comment.id);
        let comment_json = json!({
            "url": comment_url,
            "html_url": format!("{html_url}#issuecomment-{}", comment.id),
            "issue_url": issue_url,
            "id": comment.id,
            "node_id": format!("IC_{}", comment.id),
            "user": api.webhook_user(login),
            "created_at": timestamp(comment.created_at),
            "updated_at": timestamp(comment.created_at),
            "author_association": api.association(login),
            "performed_via_github_app": null,
            "body": body,
            "reactions": reactions(&format!("{comment_url}/reactions")),
        });
        crate::contract::merge(&mut payload["issue"], issue);
        crate::contract::merge(&mut payload["comment"], comment_json);
        payload["action"] = json!("created");
        let base = item.pull.as_ref().map(|pull| pull.base_ref.as_str());
        payload["repository"] = api.repository(&payload["repository"], base);
        payload["sender"] = api.webhook_user(login);
        api.set_installation(&mut payload);
        check("issue-comment-created", &payload);
        payload
    }
}

/// Adds a comment by `login` to item `index`; returns it.
/// Adds a comment by `login` to item `index`: what the REST handler and
/// the comment webhook both do.
pub(super) fn add_comment(state: &mut State, index: usize, login: &str, body: &str) -> Comment {
    state.next_id += 1;
    let comment = Comment {
        id: 5000 + state.next_id,
        body: body.to_string(),
        author: login.to_string(),
        created_at: Utc::now(),
    };
    let item = &mut state.items[index];
    item.updated_at = comment.created_at;
    item.comments.push(comment.clone());
    comment
}

fn reactions(url: &str) -> Value {
    json!({
        "url": url,
        "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
        "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
    })
}

impl GitHubApi {
    /// A fixture with the example repository's names and API host replaced
    /// by the fake's (users are rendered separately).
    fn fixture(&self, name: &str) -> Value {
        let path = format!("{FIXTURES}/{name}");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {path}: {error}"));
        let text = text
            .replace("https://api.github.com", self.base_url())
            .replace(
                "Codertocat/Hello-World",
                &format!("{}/{}", self.config.owner, self.config.repo),
            )
            .replace("Hello-World", &self.config.repo);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("parsing {path}: {error}"))
    }

    /// The example's repository object, owned by the fake's owner, with
    /// `default_branch` when the fake knows it (a pull request's base).
    fn repository(&self, example: &Value, default_branch: Option<&str>) -> Value {
        let mut repository = example.clone();
        if let Some(branch) = default_branch {
            repository["default_branch"] = json!(branch);
        }
        repository["name"] = json!(self.config.repo);
        repository["full_name"] = json!(format!("{}/{}", self.config.owner, self.config.repo));
        repository["html_url"] = json!(self.repo_html_url());
        repository["url"] = json!(self.repo_api_url());
        repository["owner"] = self.webhook_user(&self.config.owner);
        repository
    }

    /// A webhook user object for `login`: the example's, with the login in
    /// every URL, and the id the REST answers give the same login.
    fn webhook_user(&self, login: &str) -> Value {
        static TEMPLATE: OnceLock<Value> = OnceLock::new();
        let template = TEMPLATE.get_or_init(|| {
            let path = format!("{FIXTURES}/issue_comment.created.payload.json");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("reading {path}: {error}"));
            let payload: Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("parsing {path}: {error}"));
            payload["sender"].clone()
        });
        let escaped = login.replace('[', "%5B").replace(']', "%5D");
        let text = template
            .to_string()
            .replace("https://api.github.com", self.base_url())
            .replace("Codertocat", &escaped);
        let mut user: Value = serde_json::from_str(&text).expect("a user object re-parses");
        let rest = self.user_json(&Value::Null, login);
        for key in ["login", "id", "node_id", "type", "html_url", "url"] {
            user[key] = rest[key].clone();
        }
        user
    }

    fn webhook_label(&self, name: &str) -> Value {
        let mut label = self.label_json(&Value::Null, name);
        label["description"] = Value::Null;
        label
    }

    /// How GitHub relates `login` to the repository in `author_association`.
    fn association(&self, login: &str) -> &'static str {
        if login == self.config.owner {
            "OWNER"
        } else if self.config.collaborators.contains_key(login) {
            "COLLABORATOR"
        } else {
            "NONE"
        }
    }

    /// Deliveries to a GitHub App name its installation; a repository
    /// webhook's do not.
    fn set_installation(&self, payload: &mut Value) {
        let Some(object) = payload.as_object_mut() else {
            return;
        };
        match self.config.app {
            Some((_, installation_id)) => {
                object.insert(
                    "installation".to_string(),
                    json!({ "id": installation_id, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}") }),
                );
            }
            None => {
                object.remove("installation");
            }
        }
    }
}

/// Panics when `payload` breaks the contract's schema of webhook `name`
/// (e.g. `pull-request-closed`).
fn check(name: &str, payload: &Value) {
    let errors = check_webhook(name, payload);
    assert!(
        errors.is_empty(),
        "the fake's {name} payload breaks the webhook contract: {errors:?}"
    );
}

/// Contract violations of `payload` as the body of webhook `name` (a key
/// of the contract's `webhooks`, e.g. `issue-comment-created`), at most
/// five.
///
/// # Panics
///
/// When the contract cannot be read or has no such webhook: a broken test
/// setup.
pub fn check_webhook(name: &str, payload: &Value) -> Vec<String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        let text = std::fs::read_to_string(CONTRACT_PATH)
            .unwrap_or_else(|error| panic!("reading {CONTRACT_PATH}: {error}"));
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("parsing {CONTRACT_PATH}: {error}"))
    });
    let validator = *lock(VALIDATORS.get_or_init(Default::default))
        .entry(name.to_string())
        .or_insert_with(|| {
            let schema = document["webhooks"][name]["post"]["requestBody"]["content"]
                ["application/json"]["schema"]
                .clone();
            assert!(schema.is_object(), "{CONTRACT_PATH} has no webhook {name}");
            // OpenAPI 3.1 schema objects are JSON Schema 2020-12.
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|error| panic!("compiling webhook {name}: {error}"));
            Box::leak(Box::new(validator))
        });
    validator
        .iter_errors(payload)
        .take(5)
        .map(|error| {
            format!(
                "at {:?} (schema {}): {}",
                error.instance_path().to_string(),
                error.schema_path(),
                error.masked()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
