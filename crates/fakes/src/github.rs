//! A fake GitHub REST API for tests of the forge: one repository with its
//! issues, pull requests, labels, reviewers, comments and collaborators,
//! and a GitHub App installation that hands out access tokens.
//!
//! [`FakeGitHub`] speaks the wire format of `api.github.com` for the
//! operations in `shared/contracts/github-rest-subset.json` (GitHub's own
//! OpenAPI description): every request is matched to an operation and
//! checked against it, and every answer is built from the contract's schema
//! and checked before it is sent (see [`crate::server`]). Behaviour follows
//! GitHub where tests can tell: issues and pull requests share one number
//! sequence and the issues list includes pull requests; a second open pull
//! request for the same head is refused with 422; reviews cannot be
//! requested from the author or from non-collaborators; `state_reason` is
//! ignored unless `state` changes; installation tokens expire.
//!
//! Git itself is not served: pushes go straight to a bare repository on
//! disk, and the fake reads branches from it ([`FakeGitHubBuilder::git_dir`])
//! for `GET /repos/{owner}/{repo}/git/ref/{ref}` and to check the head and
//! base of a new pull request; [`FakeGitHub::merge_pull`] merges there.
//!
//! The fake also writes the webhook deliveries GitHub would send about its
//! state (a pull request closed, a comment created), checked against the
//! webhook contract, and signs them as GitHub does ([`webhooks`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::contract::{OpenApi, flatten, instance};
use crate::server::{Answer, Api, Call, Server, lock};
pub use crate::server::{Fault, RecordedRequest};
use render::timestamp;
pub use webhooks::{check_webhook, sign_github_webhook};

/// `POST`: exchange an App JWT for an installation token.
pub const ACCESS_TOKENS: &str = "/app/installations/{installation_id}/access_tokens";
/// `GET`: one git reference (`heads/<branch>`).
pub const GIT_REF: &str = "/repos/{owner}/{repo}/git/ref/{ref}";
/// `GET` (list) and `POST` (create) pull requests.
pub const PULLS: &str = "/repos/{owner}/{repo}/pulls";
/// `GET`: one pull request.
pub const PULL: &str = "/repos/{owner}/{repo}/pulls/{pull_number}";
/// `POST`: request reviewers.
pub const REQUESTED_REVIEWERS: &str =
    "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers";
/// `GET` (list) and `POST` (create) issues.
pub const ISSUES: &str = "/repos/{owner}/{repo}/issues";
/// `GET` and `PATCH` one issue (pull requests too).
pub const ISSUE: &str = "/repos/{owner}/{repo}/issues/{issue_number}";
/// `GET` (list) and `POST` (create) comments of an issue or pull request.
pub const ISSUE_COMMENTS: &str = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
/// `POST`: add labels to an issue or pull request.
pub const ISSUE_LABELS: &str = "/repos/{owner}/{repo}/issues/{issue_number}/labels";
/// `GET`: a user's permission on the repository.
pub const COLLABORATOR_PERMISSION: &str =
    "/repos/{owner}/{repo}/collaborators/{username}/permission";

const CONTRACT: &str = "github-rest-subset.json";
const DOCS: &str = "https://docs.github.com/rest";

/// An issue as the fake holds it (pull requests are listed separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    /// Issue number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body (markdown), if any.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// `completed`, `not_planned`, `reopened`, … when set.
    pub state_reason: Option<String>,
    /// Label names, in the order they were added.
    pub labels: Vec<String>,
    /// Comment bodies, in order.
    pub comments: Vec<String>,
    /// Login of the author.
    pub author: String,
}

/// A pull request as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePull {
    /// Number (shared sequence with issues).
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body (markdown), if any.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// The merge commit, once merged.
    pub merge_commit_sha: Option<String>,
    /// Head branch name.
    pub head_ref: String,
    /// Head commit.
    pub head_sha: String,
    /// Base branch name.
    pub base_ref: String,
    /// Label names.
    pub labels: Vec<String>,
    /// Logins whose review is requested.
    pub requested_reviewers: Vec<String>,
    /// Team slugs whose review is requested.
    pub requested_teams: Vec<String>,
    /// Comment bodies, in order.
    pub comments: Vec<String>,
    /// Login of the author.
    pub author: String,
}

/// Sets up a [`FakeGitHub`].
#[derive(Debug, Clone)]
pub struct FakeGitHubBuilder {
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    owner: String,
    repo: String,
    git_dir: Option<PathBuf>,
    /// `(app_id, installation_id)`.
    app: Option<(u64, u64)>,
    tokens: Vec<String>,
    token_ttl: chrono::Duration,
    /// login → role (`admin`, `maintain`, `write`, `triage`, `read`).
    collaborators: BTreeMap<String, String>,
    teams: Vec<String>,
    author: String,
}

impl FakeGitHubBuilder {
    /// Reads branches from this bare repository (where the client pushes).
    pub fn git_dir(mut self, path: &Path) -> FakeGitHubBuilder {
        self.config.git_dir = Some(path.to_path_buf());
        self
    }

    /// Accepts App JWTs for `app_id` and serves installation `installation_id`.
    pub fn app(mut self, app_id: u64, installation_id: u64) -> FakeGitHubBuilder {
        self.config.app = Some((app_id, installation_id));
        self
    }

    /// Accepts this plain token (a PAT or a fine-grained token).
    pub fn token(mut self, token: &str) -> FakeGitHubBuilder {
        self.config.tokens.push(token.to_string());
        self
    }

    /// Lifetime of installation tokens (GitHub's is one hour).
    pub fn token_ttl(mut self, ttl: std::time::Duration) -> FakeGitHubBuilder {
        self.config.token_ttl = chrono::Duration::from_std(ttl).expect("a small duration");
        self
    }

    /// A collaborator with `role` (`admin`, `maintain`, `write`, `triage`,
    /// `read`).
    pub fn collaborator(mut self, login: &str, role: &str) -> FakeGitHubBuilder {
        self.config
            .collaborators
            .insert(login.to_string(), role.to_string());
        self
    }

    /// A team (slug) of the owner organisation with access to the repository.
    pub fn team(mut self, slug: &str) -> FakeGitHubBuilder {
        self.config.teams.push(slug.to_string());
        self
    }

    /// Login of the authenticated identity that authors issues and pull
    /// requests (default `suture[bot]`).
    pub fn author(mut self, login: &str) -> FakeGitHubBuilder {
        self.config.author = login.to_string();
        self
    }

    /// Starts the fake on `127.0.0.1:0`.
    pub async fn start(self) -> FakeGitHub {
        // Load the contract before serving so a broken file fails here.
        OpenApi::load(CONTRACT);
        let server = Server::start(GitHubApi {
            config: self.config,
            state: Mutex::new(State::default()),
            base_url: OnceLock::new(),
        })
        .await;
        let _ = server.api().base_url.set(server.base_url());
        FakeGitHub { server }
    }
}

/// A running fake GitHub API; dropping it stops the server.
#[derive(Debug)]
pub struct FakeGitHub {
    server: Server<GitHubApi>,
}

impl FakeGitHub {
    /// A fake serving repository `owner/repo`.
    pub fn builder(owner: &str, repo: &str) -> FakeGitHubBuilder {
        FakeGitHubBuilder {
            config: Config {
                owner: owner.to_string(),
                repo: repo.to_string(),
                git_dir: None,
                app: None,
                tokens: Vec::new(),
                token_ttl: chrono::Duration::hours(1),
                collaborators: BTreeMap::new(),
                teams: Vec::new(),
                author: "suture[bot]".to_string(),
            },
        }
    }

    /// The API base URL, e.g. `http://127.0.0.1:4711` (like
    /// `https://api.github.com`, no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Requests of one operation, e.g. `("POST", PULLS)`.
    pub fn requests_to(&self, method: &str, template: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.is(method, template))
            .collect()
    }

    /// Contract violations and unexpected requests so far; a passing test
    /// asserts this is empty.
    pub fn errors(&self) -> Vec<String> {
        self.server.errors()
    }

    /// Queues `fault` for the next `method` request to `template` (one of
    /// this module's constants or any operation of the contract).
    pub fn inject(&self, method: &str, template: &str, fault: Fault) {
        self.server.inject(method, template, fault);
    }

    /// Injected faults not yet consumed.
    pub fn pending_faults(&self) -> usize {
        self.server.pending_faults()
    }

    /// The issues (not pull requests), by number.
    pub fn issues(&self) -> Vec<FakeIssue> {
        let state = lock(&self.server.api().state);
        state
            .items
            .iter()
            .filter(|item| item.pull.is_none())
            .map(|item| FakeIssue {
                number: item.number,
                title: item.title.clone(),
                body: item.body.clone(),
                state: item.state.clone(),
                state_reason: item.state_reason.clone(),
                labels: item.labels.clone(),
                comments: item.comments.iter().map(|c| c.body.clone()).collect(),
                author: item.author.clone(),
            })
            .collect()
    }

    /// The pull requests, by number.
    pub fn pulls(&self) -> Vec<FakePull> {
        let state = lock(&self.server.api().state);
        state
            .items
            .iter()
            .filter_map(|item| {
                let pull = item.pull.as_ref()?;
                Some(FakePull {
                    number: item.number,
                    title: item.title.clone(),
                    body: item.body.clone(),
                    state: item.state.clone(),
                    merged: pull.merged_at.is_some(),
                    merge_commit_sha: pull.merge_commit_sha.clone(),
                    head_ref: pull.head_ref.clone(),
                    head_sha: pull.head_sha.clone(),
                    base_ref: pull.base_ref.clone(),
                    labels: item.labels.clone(),
                    requested_reviewers: pull.requested_reviewers.clone(),
                    requested_teams: pull.requested_teams.clone(),
                    comments: item.comments.iter().map(|c| c.body.clone()).collect(),
                    author: item.author.clone(),
                })
            })
            .collect()
    }

    /// Installation tokens handed out so far, in order.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.server.api().state)
            .installation_tokens
            .iter()
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// Invalidates every installation token handed out so far (as when an
    /// installation's permissions change): their next use gets a 401.
    pub fn revoke_tokens(&self) {
        lock(&self.server.api().state)
            .installation_tokens
            .iter_mut()
            .for_each(|(_, expires_at)| *expires_at = DateTime::<Utc>::MIN_UTC);
    }

    /// Merges pull request `number` (as a human pressing the button, with
    /// GitHub's default "Create a merge commit"): when the fake reads a
    /// real bare repository ([`FakeGitHubBuilder::git_dir`]), a merge
    /// commit of the base branch's tip and the head is written there and
    /// the base branch moves to it, as on GitHub; with no repository (or a
    /// directory of bare ref files standing in for one) the head commit is
    /// recorded as the merge commit. Returns the merge commit.
    ///
    /// # Panics
    ///
    /// When there is no such open pull request, or the merge conflicts
    /// (GitHub would not offer the button).
    pub fn merge_pull(&self, number: u64) -> String {
        let api = self.server.api();
        let mut state = lock(&api.state);
        let item = state
            .items
            .iter_mut()
            .find(|item| item.number == number && item.pull.is_some())
            .expect("a pull request with that number");
        assert_eq!(item.state, "open", "pull request #{number} is not open");
        let pull = item.pull.as_ref().expect("checked above");
        let merge_commit = match api.git_repository() {
            Some(repo) => merge::merge_commit(&repo, &api.config.owner, number, &item.title, pull),
            None => pull.head_sha.clone(),
        };
        let now = Utc::now();
        item.state = "closed".to_string();
        item.closed_at = Some(now);
        item.updated_at = now;
        let pull = item.pull.as_mut().expect("checked above");
        pull.merged_at = Some(now);
        pull.merge_commit_sha = Some(merge_commit.clone());
        merge_commit
    }

    /// Closes pull request `number` without merging.
    ///
    /// # Panics
    ///
    /// When there is no such pull request.
    pub fn close_pull(&self, number: u64) {
        let mut state = lock(&self.server.api().state);
        let item = state
            .items
            .iter_mut()
            .find(|item| item.number == number && item.pull.is_some())
            .expect("a pull request with that number");
        item.state = "closed".to_string();
        item.closed_at = Some(Utc::now());
        item.updated_at = Utc::now();
    }
}

struct GitHubApi {
    config: Config,
    state: Mutex<State>,
    base_url: OnceLock<String>,
}

#[derive(Default)]
struct State {
    /// Issues and pull requests, by number (one sequence, as on GitHub).
    items: Vec<Item>,
    /// Ids for objects that have one (issues, comments, labels).
    next_id: u64,
    /// `(token, expires_at)`.
    installation_tokens: Vec<(String, DateTime<Utc>)>,
}

struct Item {
    number: u64,
    id: u64,
    title: String,
    body: Option<String>,
    state: String,
    state_reason: Option<String>,
    labels: Vec<String>,
    comments: Vec<Comment>,
    author: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    pull: Option<Pull>,
}

#[derive(Clone)]
struct Comment {
    id: u64,
    body: String,
    author: String,
    created_at: DateTime<Utc>,
}

struct Pull {
    head_ref: String,
    head_sha: String,
    base_ref: String,
    base_sha: String,
    draft: bool,
    merged_at: Option<DateTime<Utc>>,
    merge_commit_sha: Option<String>,
    requested_reviewers: Vec<String>,
    requested_teams: Vec<String>,
}

impl Api for GitHubApi {
    fn contract(&self) -> &'static OpenApi {
        OpenApi::load(CONTRACT)
    }

    fn error_body(&self, status: u16, message: &str) -> Value {
        json!({
            "message": message,
            "documentation_url": DOCS,
            "status": status.to_string(),
        })
    }

    fn handle(&self, call: &Call<'_>) -> Answer {
        let mut problems = Vec::new();
        if call.header("user-agent").is_none_or(str::is_empty) {
            // GitHub refuses requests without a User-Agent.
            problems.push("no user-agent header".to_string());
        }
        if let Some(version) = call.header("x-github-api-version")
            && version != "2022-11-28"
        {
            problems.push(format!("x-github-api-version is {version:?}"));
        }
        if !problems.is_empty() {
            return Answer {
                problems,
                ..Answer::empty(500)
            };
        }
        let route = call.route;
        if route.template == ACCESS_TOKENS {
            return self.access_tokens(call);
        }
        if let Some(answer) = self.authorise(call) {
            return answer;
        }
        if route.param("owner") != self.config.owner || route.param("repo") != self.config.repo {
            return self.not_found();
        }
        let mut state = lock(&self.state);
        match (route.method.as_str(), route.template.as_str()) {
            ("get", GIT_REF) => self.git_ref(route.param("ref")),
            ("get", PULLS) => self.list_pulls(&state, call),
            ("post", PULLS) => self.create_pull(&mut state, call),
            ("get", PULL) => match self.find(&state, route.param("pull_number"), true) {
                Some(index) => {
                    Answer::json(200, self.pull_json(&state.items[index], PULL, "get", 200))
                }
                None => self.not_found(),
            },
            ("post", REQUESTED_REVIEWERS) => self.request_reviewers(&mut state, call),
            ("get", ISSUES) => self.list_issues(&state, call),
            ("post", ISSUES) => self.create_issue(&mut state, call),
            ("get", ISSUE) => match self.find(&state, route.param("issue_number"), false) {
                Some(index) => {
                    Answer::json(200, self.issue_json(&state.items[index], ISSUE, "get", 200))
                }
                None => self.not_found(),
            },
            ("patch", ISSUE) => self.update_issue(&mut state, call),
            ("get", ISSUE_COMMENTS) => self.list_comments(&state, call),
            ("post", ISSUE_COMMENTS) => self.create_comment(&mut state, call),
            ("post", ISSUE_LABELS) => self.add_labels(&mut state, call),
            ("get", COLLABORATOR_PERMISSION) => self.permission(route.param("username")),
            (method, template) => {
                Answer::problem(format!("the fake does not serve {method} {template}"))
            }
        }
    }
}

impl GitHubApi {
    fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or_default()
    }

    /// The bare repository the fake reads, when it is a real one.
    fn git_repository(&self) -> Option<git2::Repository> {
        git2::Repository::open_bare(self.config.git_dir.as_ref()?).ok()
    }

    fn repo_api_url(&self) -> String {
        format!(
            "{}/repos/{}/{}",
            self.base_url(),
            self.config.owner,
            self.config.repo
        )
    }

    fn repo_html_url(&self) -> String {
        format!(
            "https://github.com/{}/{}",
            self.config.owner, self.config.repo
        )
    }

    fn not_found(&self) -> Answer {
        Answer::json(404, self.error_body(404, "Not Found"))
    }

    fn unauthorised(&self, message: &str) -> Answer {
        Answer::json(401, self.error_body(401, message))
    }

    fn invalid(&self, message: &str, errors: Value) -> Answer {
        let mut body = self.error_body(422, message);
        body["errors"] = errors;
        Answer::json(422, body)
    }

    /// A 401 for a missing, unknown or expired token; `None` when the
    /// request may go on.
    fn authorise(&self, call: &Call<'_>) -> Option<Answer> {
        let Some(token) = bearer(call) else {
            return Some(self.unauthorised("Requires authentication"));
        };
        if self.config.tokens.iter().any(|t| t == token) {
            return None;
        }
        let state = lock(&self.state);
        let now = Utc::now();
        let valid = state
            .installation_tokens
            .iter()
            .any(|(t, expires_at)| t == token && *expires_at > now);
        if valid {
            None
        } else {
            Some(self.unauthorised("Bad credentials"))
        }
    }

    fn access_tokens(&self, call: &Call<'_>) -> Answer {
        let Some((app_id, installation_id)) = self.config.app else {
            return Answer::problem("access token requested but the fake has no app".to_string());
        };
        let Some(jwt) = bearer(call) else {
            return self.unauthorised("A JSON web token could not be decoded");
        };
        let problems = check_app_jwt(jwt, app_id);
        if !problems.is_empty() {
            return Answer {
                problems,
                ..Answer::empty(500)
            };
        }
        if call.route.param("installation_id") != installation_id.to_string() {
            return self.not_found();
        }
        let mut state = lock(&self.state);
        let token = format!(
            "ghs_fake{:04}{}",
            state.installation_tokens.len() + 1,
            "x".repeat(28)
        );
        let expires_at = Utc::now() + self.config.token_ttl;
        state.installation_tokens.push((token.clone(), expires_at));
        let schema = self.schema("post", ACCESS_TOKENS, 201);
        Answer::json(
            201,
            instance(
                schema,
                json!({
                    "token": token,
                    "expires_at": timestamp(expires_at),
                    "permissions": {
                        "contents": "write",
                        "issues": "write",
                        "pull_requests": "write",
                        "metadata": "read",
                    },
                    "repository_selection": "selected",
                }),
            ),
        )
    }

    fn git_ref(&self, reference: &str) -> Answer {
        let Some(sha) = self.read_ref(reference) else {
            return self.not_found();
        };
        let schema = self.schema("get", GIT_REF, 200);
        Answer::json(
            200,
            instance(
                schema,
                json!({
                    "ref": format!("refs/{reference}"),
                    "node_id": format!("REF_{sha}"),
                    "url": format!("{}/git/refs/{reference}", self.repo_api_url()),
                    "object": {
                        "type": "commit",
                        "sha": sha,
                        "url": format!("{}/git/commits/{sha}", self.repo_api_url()),
                    },
                }),
            ),
        )
    }

    /// The commit `refs/<reference>` points at in the bare repository.
    fn read_ref(&self, reference: &str) -> Option<String> {
        let git_dir = self.config.git_dir.as_ref()?;
        let name = format!("refs/{reference}");
        if name.contains("..") {
            return None;
        }
        if let Ok(text) = std::fs::read_to_string(git_dir.join(&name)) {
            let sha = text.trim();
            if sha.len() == 40 {
                return Some(sha.to_string());
            }
        }
        let packed = std::fs::read_to_string(git_dir.join("packed-refs")).ok()?;
        packed.lines().find_map(|line| {
            let (sha, packed_name) = line.split_once(' ')?;
            (packed_name == name && sha.len() == 40).then(|| sha.to_string())
        })
    }

    fn list_pulls(&self, state: &State, call: &Call<'_>) -> Answer {
        let wanted_state = call.query("state").unwrap_or("open");
        let head = call.query("head");
        let base = call.query("base");
        let matches: Vec<&Item> = state
            .items
            .iter()
            .rev()
            .filter(|item| {
                let Some(pull) = &item.pull else {
                    return false;
                };
                let state_matches = wanted_state == "all" || item.state == wanted_state;
                let head_matches = head
                    .is_none_or(|head| head == format!("{}:{}", self.config.owner, pull.head_ref));
                let base_matches = base.is_none_or(|base| base == pull.base_ref);
                state_matches && head_matches && base_matches
            })
            .collect();
        self.page(call, PULLS, &matches, |item| {
            self.pull_json(item, PULLS, "get", 200)
        })
    }

    /// One page of `items` (GitHub's `per_page`/`page` and `Link` header).
    fn page(
        &self,
        call: &Call<'_>,
        template: &str,
        items: &[&Item],
        render: impl Fn(&Item) -> Value,
    ) -> Answer {
        let per_page = call
            .query("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page = call
            .query("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let start = (page - 1) * per_page;
        let body: Vec<Value> = items
            .iter()
            .skip(start)
            .take(per_page)
            .map(|item| render(item))
            .collect();
        let mut answer = Answer::json(200, Value::Array(body));
        if start + per_page < items.len() {
            let mut query: Vec<String> = call
                .query
                .iter()
                .filter(|(name, _)| name != "page")
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            query.push(format!("page={}", page + 1));
            let path = template
                .replace("{owner}", &self.config.owner)
                .replace("{repo}", &self.config.repo);
            answer = answer.with_header(
                "link",
                format!(
                    "<{}{path}?{}>; rel=\"next\"",
                    self.base_url(),
                    query.join("&")
                ),
            );
        }
        answer
    }

    fn create_pull(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let body = call.body.cloned().unwrap_or(Value::Null);
        let head = body["head"].as_str().unwrap_or_default();
        let base = body["base"].as_str().unwrap_or_default();
        let Some(title) = body["title"].as_str() else {
            return self.invalid(
                "Validation Failed",
                json!([{ "resource": "PullRequest", "field": "title", "code": "missing_field" }]),
            );
        };
        let head_ref = match head.split_once(':') {
            Some((owner, branch)) if owner == self.config.owner => branch,
            Some(_) => {
                return self.invalid(
                    "Validation Failed",
                    json!([{ "resource": "PullRequest", "field": "head", "code": "invalid" }]),
                );
            }
            None => head,
        };
        let Some(head_sha) = self.read_ref(&format!("heads/{head_ref}")) else {
            return self.invalid(
                "Validation Failed",
                json!([{ "resource": "PullRequest", "field": "head", "code": "invalid" }]),
            );
        };
        let Some(base_sha) = self.read_ref(&format!("heads/{base}")) else {
            return self.invalid(
                "Validation Failed",
                json!([{ "resource": "PullRequest", "field": "base", "code": "invalid" }]),
            );
        };
        let duplicate = state.items.iter().any(|item| {
            item.state == "open"
                && item
                    .pull
                    .as_ref()
                    .is_some_and(|pull| pull.head_ref == head_ref && pull.base_ref == base)
        });
        if duplicate {
            return self.invalid(
                "Validation Failed",
                json!([{
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": format!("A pull request already exists for {}:{head_ref}.", self.config.owner),
                }]),
            );
        }
        let item = self.new_item(
            state,
            title,
            body["body"].as_str(),
            Some(Pull {
                head_ref: head_ref.to_string(),
                head_sha,
                base_ref: base.to_string(),
                base_sha,
                draft: body["draft"] == json!(true),
                merged_at: None,
                merge_commit_sha: None,
                requested_reviewers: Vec::new(),
                requested_teams: Vec::new(),
            }),
        );
        let json = self.pull_json(&item, PULLS, "post", 201);
        let location = json["url"].as_str().unwrap_or_default().to_string();
        state.items.push(item);
        Answer::json(201, json).with_header("location", location)
    }

    fn new_item(
        &self,
        state: &mut State,
        title: &str,
        body: Option<&str>,
        pull: Option<Pull>,
    ) -> Item {
        state.next_id += 1;
        let now = Utc::now();
        Item {
            number: state.items.len() as u64 + 1,
            id: 1000 + state.next_id,
            title: title.to_string(),
            body: body.map(str::to_string),
            state: "open".to_string(),
            state_reason: None,
            labels: Vec::new(),
            comments: Vec::new(),
            author: self.config.author.clone(),
            created_at: now,
            updated_at: now,
            closed_at: None,
            pull,
        }
    }

    /// The index of issue or pull request `number`; with `pull`, only a pull
    /// request.
    fn find(&self, state: &State, number: &str, pull: bool) -> Option<usize> {
        let number: u64 = number.parse().ok()?;
        state
            .items
            .iter()
            .position(|item| item.number == number && (!pull || item.pull.is_some()))
    }

    fn request_reviewers(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let Some(index) = self.find(state, call.route.param("pull_number"), true) else {
            return self.not_found();
        };
        let body = call.body.cloned().unwrap_or(Value::Null);
        let reviewers: Vec<String> = strings(&body["reviewers"]);
        let teams: Vec<String> = strings(&body["team_reviewers"]);
        let item = &mut state.items[index];
        if reviewers.contains(&item.author) {
            return self.invalid(
                "Review cannot be requested from pull request author.",
                json!([]),
            );
        }
        let strangers = reviewers
            .iter()
            .any(|login| !self.config.collaborators.contains_key(login))
            || teams.iter().any(|team| !self.config.teams.contains(team));
        if strangers {
            return self.invalid(
                &format!(
                    "Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {}/{} repository.",
                    self.config.owner, self.config.repo
                ),
                json!([]),
            );
        }
        let pull = item.pull.as_mut().expect("found as a pull request");
        for login in reviewers {
            if !pull.requested_reviewers.contains(&login) {
                pull.requested_reviewers.push(login);
            }
        }
        for team in teams {
            if !pull.requested_teams.contains(&team) {
                pull.requested_teams.push(team);
            }
        }
        item.updated_at = Utc::now();
        Answer::json(
            201,
            self.pull_json(&state.items[index], REQUESTED_REVIEWERS, "post", 201),
        )
    }

    fn list_issues(&self, state: &State, call: &Call<'_>) -> Answer {
        let wanted_state = call.query("state").unwrap_or("open");
        let labels: Vec<&str> = call
            .query("labels")
            .map(|labels| {
                labels
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let matches: Vec<&Item> = state
            .items
            .iter()
            .rev()
            .filter(|item| {
                (wanted_state == "all" || item.state == wanted_state)
                    && labels
                        .iter()
                        .all(|label| item.labels.iter().any(|l| l == label))
            })
            .collect();
        self.page(call, ISSUES, &matches, |item| {
            self.issue_json(item, ISSUES, "get", 200)
        })
    }

    fn create_issue(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let body = call.body.cloned().unwrap_or(Value::Null);
        let title = match &body["title"] {
            Value::String(title) => title.clone(),
            Value::Number(number) => number.to_string(),
            _ => String::new(),
        };
        let mut item = self.new_item(state, &title, body["body"].as_str(), None);
        for label in label_names(&body["labels"]) {
            if !item.labels.contains(&label) {
                item.labels.push(label);
            }
        }
        let json = self.issue_json(&item, ISSUES, "post", 201);
        let location = json["url"].as_str().unwrap_or_default().to_string();
        state.items.push(item);
        Answer::json(201, json).with_header("location", location)
    }

    fn update_issue(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let Some(index) = self.find(state, call.route.param("issue_number"), false) else {
            return self.not_found();
        };
        let body = call.body.cloned().unwrap_or(Value::Null);
        let item = &mut state.items[index];
        let now = Utc::now();
        if let Some(title) = body["title"].as_str() {
            item.title = title.to_string();
        }
        if body.get("body").is_some() {
            item.body = body["body"].as_str().map(str::to_string);
        }
        if body.get("labels").is_some() {
            item.labels = label_names(&body["labels"]);
        }
        // `state_reason` only counts when `state` changes.
        if let Some(new_state) = body["state"].as_str()
            && new_state != item.state
        {
            item.state = new_state.to_string();
            let reason = body["state_reason"].as_str().map(str::to_string);
            if new_state == "closed" {
                item.closed_at = Some(now);
                item.state_reason = reason.or_else(|| Some("completed".to_string()));
            } else {
                item.closed_at = None;
                item.state_reason = reason.or_else(|| Some("reopened".to_string()));
            }
        }
        item.updated_at = now;
        Answer::json(
            200,
            self.issue_json(&state.items[index], ISSUE, "patch", 200),
        )
    }

    fn list_comments(&self, state: &State, call: &Call<'_>) -> Answer {
        let Some(index) = self.find(state, call.route.param("issue_number"), false) else {
            return self.not_found();
        };
        let item = &state.items[index];
        let comments: Vec<Value> = item
            .comments
            .iter()
            .map(|comment| self.comment_json(item, comment, ISSUE_COMMENTS, "get", 200))
            .collect();
        Answer::json(200, Value::Array(comments))
    }

    fn create_comment(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let Some(index) = self.find(state, call.route.param("issue_number"), false) else {
            return self.not_found();
        };
        let body = call
            .body
            .and_then(|b| b["body"].as_str())
            .unwrap_or_default();
        let comment = webhooks::add_comment(state, index, &self.config.author, body);
        let item = &state.items[index];
        let json = self.comment_json(item, &comment, ISSUE_COMMENTS, "post", 201);
        let location = json["url"].as_str().unwrap_or_default().to_string();
        Answer::json(201, json).with_header("location", location)
    }

    fn add_labels(&self, state: &mut State, call: &Call<'_>) -> Answer {
        let Some(index) = self.find(state, call.route.param("issue_number"), false) else {
            return self.not_found();
        };
        let names = label_names(&call.body.cloned().unwrap_or(Value::Null)["labels"]);
        let item = &mut state.items[index];
        for name in names {
            if !item.labels.contains(&name) {
                item.labels.push(name);
            }
        }
        let schema = self.schema("post", ISSUE_LABELS, 200);
        let item_schema = schema.get("items").unwrap_or(&Value::Null);
        let labels: Vec<Value> = item
            .labels
            .iter()
            .map(|name| self.label_json(item_schema, name))
            .collect();
        Answer::json(200, Value::Array(labels))
    }

    fn permission(&self, login: &str) -> Answer {
        let Some(role) = self.config.collaborators.get(login) else {
            return self.not_found();
        };
        let permission = match role.as_str() {
            "admin" => "admin",
            "maintain" | "write" => "write",
            "triage" | "read" => "read",
            _ => "none",
        };
        let schema = &flatten(self.schema("get", COLLABORATOR_PERMISSION, 200));
        let user_schema = schema.pointer("/properties/user").unwrap_or(&Value::Null);
        Answer::json(
            200,
            instance(
                schema,
                json!({
                    "permission": permission,
                    "role_name": role,
                    "user": self.user_json(user_schema, login),
                }),
            ),
        )
    }
}

/// The token of `Authorization: Bearer <t>` or `Authorization: token <t>`.
fn bearer<'a>(call: &'a Call<'_>) -> Option<&'a str> {
    let value = call.header("authorization")?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Problems with an App JWT: GitHub wants RS256, `iss` = the App id (or
/// client id), `iat` not in the future, `exp` after now and at most ten
/// minutes ahead. The signature itself is not verified.
fn check_app_jwt(jwt: &str, app_id: u64) -> Vec<String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return vec![format!("the app jwt has {} parts, not 3", parts.len())];
    };
    let decode =
        |part: &str| -> Option<Value> { serde_json::from_slice(&base64url_decode(part)?).ok() };
    let (Some(header), Some(claims)) = (decode(header), decode(claims)) else {
        return vec!["the app jwt header or claims are not base64url json".to_string()];
    };
    let mut problems = Vec::new();
    if header["alg"] != json!("RS256") {
        problems.push(format!("the app jwt alg is {}, not RS256", header["alg"]));
    }
    if signature.is_empty() || base64url_decode(signature).is_none() {
        problems.push("the app jwt has no signature".to_string());
    }
    let iss_matches = claims["iss"] == json!(app_id) || claims["iss"] == json!(app_id.to_string());
    if !iss_matches {
        problems.push(format!(
            "the app jwt iss is {}, not {app_id}",
            claims["iss"]
        ));
    }
    let now = Utc::now().timestamp();
    match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
        (Some(iat), Some(exp)) => {
            if iat > now + 5 {
                problems.push(format!("the app jwt iat is {} s in the future", iat - now));
            }
            if exp <= now {
                problems.push("the app jwt has expired".to_string());
            }
            if exp > now + 600 {
                problems.push(format!(
                    "the app jwt exp is {} s ahead, more than 10 minutes",
                    exp - now
                ));
            }
        }
        _ => problems.push("the app jwt lacks integer iat and exp".to_string()),
    }
    problems
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((bits >> n_bits) as u8);
            bits &= (1 << n_bits) - 1;
        }
    }
    Some(out)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Label names from a `labels` array of strings or `{name}` objects.
fn label_names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().or_else(|| item["name"].as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

mod merge;
mod render;
#[cfg(test)]
mod tests;
pub mod webhooks;
