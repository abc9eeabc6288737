//! The GitHub forge: a fix branch pushed with git2 (over forge's own HTTPS
//! transport, [`crate::transport`]), a pull request with the
//! heal report, labels and reviewers, and a tracking issue, each found
//! before it is created.
//!
//! `open_pull_request` goes: tracking issue (found by its hidden marker, or
//! created) → branch (read back, or built and pushed) → pull request (found
//! by head branch, or created with a body linking the issue) → reviewers,
//! then labels (the `suture` label last: a pull request that has it is
//! finished, one without it was interrupted and is finished now) → the
//! issue's body gains a link to the pull request. Every step can be
//! repeated, so the whole call can be: after a crash, a timeout, a 502 that
//! was in fact applied.
//!
//! Each round of an incident has its own branch and so its own pull
//! request; the tracking issue is the incident's, found by its marker
//! whatever the round, and lists every round's pull request.
//!
//! Markers are trusted only where suture writes them, since issue bodies
//! and comments quote event text: the incident marker is the tracking
//! issue's first line, a comment's key marker its last line.

mod api;
mod auth;

use std::path::Path;

use octocrab::secrecy::SecretString;
use serde_json::json;

use crate::error::ForgeError;
use crate::git;
use crate::http::Http;
use crate::retry::RetryPolicy;
use crate::transport::Timeouts;
use crate::{
    CommitIdentity, FixProposal, OpenedPr, Permission, PrState, blocking, incident_marker,
};
use api::{Api, Issue, Pull};
use auth::Credentials;

/// How suture authenticates to GitHub.
#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A personal or fine-grained access token (simple setups).
    Token(SecretString),
    /// A GitHub App installation (the recommended setup).
    App {
        /// The App's id.
        app_id: u64,
        /// The installation's id on the repository's owner.
        installation_id: u64,
        /// The App's private key, PEM (PKCS#1 or PKCS#8).
        private_key_pem: SecretString,
    },
}

/// Where and how the GitHub forge works.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// The REST API's base URL: `https://api.github.com`, or
    /// `https://<host>/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// The repository's owner (user or organisation).
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// Credentials.
    pub auth: GitHubAuth,
    /// Where the fix branch is pushed; `None` is
    /// `https://github.com/<owner>/<repo>.git`. Tests point it at a bare
    /// repository's path.
    pub push_url: Option<String>,
    /// Who commits the fix.
    pub identity: CommitIdentity,
    /// The label of suture's pull requests and issues (default `suture`).
    pub label: String,
    /// Whether `open_pull_request` also opens a tracking issue (default
    /// true).
    pub tracking_issue: bool,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
}

impl GitHubConfig {
    /// github.com defaults for `owner/repo`.
    pub fn new(owner: &str, repo: &str, auth: GitHubAuth) -> GitHubConfig {
        GitHubConfig {
            api_url: "https://api.github.com".to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            auth,
            push_url: None,
            identity: CommitIdentity::default(),
            label: "suture".to_string(),
            tracking_issue: true,
            retry: RetryPolicy::default(),
        }
    }
}

/// A GitHub repository as a forge. Cheap to clone (shared client and token
/// cache).
#[derive(Debug, Clone)]
pub struct GitHubForge {
    inner: std::sync::Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api: Api,
    config: GitHubConfig,
}

impl GitHubForge {
    /// A forge for `config`; fails on an unusable private key or names.
    pub fn new(config: GitHubConfig) -> Result<GitHubForge, ForgeError> {
        let name_ok = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name_ok(&config.owner) || !name_ok(&config.repo) {
            return Err(ForgeError::invalid(
                "github repository",
                format!("{}/{} is not owner/name", config.owner, config.repo),
            ));
        }
        if config.label.is_empty() || config.label.contains(',') {
            return Err(ForgeError::invalid("label", format!("{:?}", config.label)));
        }
        let credentials = match &config.auth {
            GitHubAuth::Token(token) => Credentials::Token(token.clone()),
            GitHubAuth::App {
                app_id,
                installation_id,
                private_key_pem,
            } => Credentials::app(*app_id, *installation_id, &config.repo, private_key_pem)?,
        };
        let http = Http::new("github", &config.api_url, config.retry.request_timeout)?;
        let api = Api {
            http,
            credentials,
            policy: config.retry.clone(),
            owner: config.owner.clone(),
            repo: config.repo.clone(),
        };
        Ok(GitHubForge {
            inner: std::sync::Arc::new(Inner { api, config }),
        })
    }

    fn api(&self) -> &Api {
        &self.inner.api
    }

    fn config(&self) -> &GitHubConfig {
        &self.inner.config
    }

    fn push_url(&self) -> String {
        self.config().push_url.clone().unwrap_or_else(|| {
            format!(
                "https://github.com/{}/{}.git",
                self.config().owner,
                self.config().repo
            )
        })
    }

    /// Pushes the fix branch and opens (or finds) the incident's pull
    /// request and tracking issue, linked both ways. Idempotent per
    /// incident: see the module docs.
    #[tracing::instrument(skip_all, fields(incident = %proposal.incident_id))]
    pub async fn open_pull_request(
        &self,
        proposal: &FixProposal,
        source_repo: &Path,
    ) -> Result<OpenedPr, ForgeError> {
        proposal.validate()?;
        let branch = proposal.branch();
        let issue = if self.config().tracking_issue {
            let title = format!("suture: {}", first_line(&proposal.title));
            let body = format!(
                "suture is tracking incident `{}`: {}\n\nA fix (strategy `{}`) is being proposed \
                 in a pull request; this issue is closed once the fix has held in production.",
                proposal.incident_id,
                first_line(&proposal.title),
                proposal.strategy,
            );
            self.tracking_issue(&proposal.incident_id, &title, &body)
                .await?
        } else {
            None
        };
        let head_sha = self.push_fix_branch(proposal, source_repo).await?;
        let (pull, created) = self
            .pull_request(proposal, &branch, issue.as_ref().map(|i| i.number))
            .await?;
        let label = self.config().label.as_str();
        if !pull.labels.iter().any(|l| l.name == label) {
            self.request_reviews(&pull, proposal, source_repo).await?;
            self.api()
                .add_labels(
                    pull.number,
                    &[
                        proposal.strategy.as_str(),
                        proposal.reproduction_label(),
                        label,
                    ],
                )
                .await?;
        }
        if let Some(issue) = &issue {
            self.link_issue(issue, pull.number, &proposal.strategy)
                .await?;
        }
        let opened = OpenedPr {
            number: pull.number,
            url: pull.html_url.clone(),
            branch,
            head_sha: if pull.head.sha.is_empty() {
                head_sha
            } else {
                pull.head.sha.clone()
            },
            tracking_issue: issue.map(|i| i.number),
            created,
        };
        tracing::info!(
            pull = opened.number,
            created = opened.created,
            tracking_issue = ?opened.tracking_issue,
            "pull request ready"
        );
        Ok(opened)
    }

    /// Pushes the incident's fix branch unless it already exists; returns
    /// its head commit. A push the remote refuses (the branch appeared in
    /// the meantime) reads the branch back; nothing is ever force-pushed.
    pub async fn push_fix_branch(
        &self,
        proposal: &FixProposal,
        source_repo: &Path,
    ) -> Result<String, ForgeError> {
        proposal.validate()?;
        let branch = proposal.branch();
        if let Some(sha) = self.api().branch(&branch).await? {
            tracing::info!(branch = %branch, sha = %sha, "fix branch already pushed");
            return Ok(sha);
        }
        let token = self.api().token().await?;
        let (source, proposal_copy, branch_copy, identity, url) = (
            source_repo.to_path_buf(),
            proposal.clone(),
            branch.clone(),
            self.config().identity.clone(),
            self.push_url(),
        );
        let timeouts = Timeouts {
            connect: self.config().retry.push_connect_timeout,
            io: self.config().retry.push_io_timeout,
        };
        let pushed = blocking("git push", move || {
            git::push_fix(
                &source,
                &proposal_copy,
                &branch_copy,
                &identity,
                &url,
                Some(&token),
                timeouts,
            )
        })
        .await;
        match pushed {
            Ok(commit) => {
                tracing::info!(branch = %branch, sha = %commit.sha, "fix branch pushed");
                Ok(commit.sha)
            }
            Err(rejected @ ForgeError::PushRejected { .. }) => {
                match self.api().branch(&branch).await? {
                    Some(sha) => Ok(sha),
                    None => Err(rejected),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Opens (or finds) the incident's tracking issue with `body` and the
    /// incident marker; returns its number.
    pub async fn open_tracking_issue(
        &self,
        incident_id: &str,
        title: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        match self.tracking_issue(incident_id, title, body).await? {
            Some(issue) => Ok(issue.number),
            None => Err(ForgeError::Status {
                service: "github",
                operation: "create the tracking issue".to_string(),
                status: 410,
                message: "issues are disabled for this repository".to_string(),
            }),
        }
    }

    /// Comments `comment` (once, however often this is retried), then
    /// closes issue `number` as completed.
    pub async fn close_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        let key = format!("close-{:016x}", fnv1a(comment));
        self.api().comment(number, comment, &key, true).await?;
        self.api()
            .update_issue(
                number,
                &json!({ "state": "closed", "state_reason": "completed" }),
            )
            .await
            .map(drop)
    }

    /// Reopens issue `number` (reason `reopened`), then comments `comment`
    /// (once, however often this is retried).
    pub async fn reopen_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        self.api()
            .update_issue(
                number,
                &json!({ "state": "open", "state_reason": "reopened" }),
            )
            .await?;
        let key = format!("reopen-{:016x}", fnv1a(comment));
        self.api().comment(number, comment, &key, true).await
    }

    /// Comments on issue or pull request `number`. Retries inside this call
    /// never double it; two calls post two comments.
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let key = format!("c{nanos:x}");
        self.api().comment(number, body, &key, false).await
    }

    /// `login`'s role on the repository ([`Permission::None`] for
    /// non-collaborators).
    pub async fn permission(&self, login: &str) -> Result<Permission, ForgeError> {
        self.api().permission(login).await
    }

    /// Whether pull request `number` is open, merged or closed.
    pub async fn pr_state(&self, number: u64) -> Result<PrState, ForgeError> {
        Ok(self.api().pull(number).await?.state())
    }

    /// The tracking issue of `incident_id`, found or created; `None` when
    /// the repository has issues disabled (410).
    async fn tracking_issue(
        &self,
        incident_id: &str,
        title: &str,
        body: &str,
    ) -> Result<Option<Issue>, ForgeError> {
        let marker = incident_marker(incident_id);
        let label = self.config().label.clone();
        let path = format!(
            "/repos/{}/{}/issues",
            self.config().owner,
            self.config().repo
        );
        // The marker is the body's first line, the one place it is trusted.
        let payload = json!({
            "title": title,
            "body": format!("{marker}\n{body}"),
            "labels": [label],
        });
        let (api, label_ref, marker_ref) = (self.api(), &label, &marker);
        let find = move || api.issue_by_marker(label_ref, marker_ref);
        match self
            .api()
            .create::<Issue, _, _>(
                "create the tracking issue",
                &path,
                &payload,
                true,
                find,
                |_| false,
            )
            .await
        {
            Ok((issue, _)) => Ok(Some(issue)),
            Err(ForgeError::Status { status: 410, .. }) => {
                tracing::warn!("issues are disabled: no tracking issue");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The pull request of `branch`, found or created.
    async fn pull_request(
        &self,
        proposal: &FixProposal,
        branch: &str,
        issue: Option<u64>,
    ) -> Result<(Pull, bool), ForgeError> {
        let mut body = proposal.body_markdown.trim_end().to_string();
        body.push_str("\n\n---\n");
        if let Some(issue) = issue {
            body.push_str(&format!("Tracking issue: #{issue}\n"));
        }
        let round = if proposal.round > 1 {
            format!(", round {}", proposal.round)
        } else {
            String::new()
        };
        body.push_str(&format!(
            "Opened by suture for incident `{}` (strategy `{}`{round}).\n\n{}",
            proposal.incident_id,
            proposal.strategy,
            incident_marker(&proposal.incident_id)
        ));
        let payload = json!({
            "title": first_line(&proposal.title),
            "head": branch,
            "base": proposal.base_branch,
            "body": body,
            "draft": false,
        });
        let path = format!(
            "/repos/{}/{}/pulls",
            self.config().owner,
            self.config().repo
        );
        let api = self.api();
        let find = move || api.pull_by_head(branch);
        // "A pull request already exists" while the list lags, or a head
        // GitHub does not see yet right after the push: look again.
        let retry_unprocessable = |reply: &crate::http::Reply| {
            let text = reply.body.to_ascii_lowercase();
            text.contains("already exists") || text.contains("\"field\":\"head\"")
        };
        self.api()
            .create(
                "create the pull request",
                &path,
                &payload,
                true,
                find,
                retry_unprocessable,
            )
            .await
    }

    /// Asks CODEOWNERS' owners of the touched paths for reviews, else the
    /// culprit's author if they are a collaborator; never the author of the
    /// pull request. A refused request is logged, not fatal.
    async fn request_reviews(
        &self,
        pull: &Pull,
        proposal: &FixProposal,
        source_repo: &Path,
    ) -> Result<(), ForgeError> {
        if !pull.requested_reviewers.is_empty() || !pull.requested_teams.is_empty() {
            return Ok(());
        }
        let author = pull.user.as_ref().map(|user| user.login.clone());
        let (source, revision) = (source_repo.to_path_buf(), proposal.base_revision.clone());
        let codeowners = blocking("read codeowners", move || {
            git::codeowners_at(&source, &revision)
        })
        .await?;
        let mut reviewers = codeowners
            .map(|codeowners| {
                codeowners.reviewers(
                    &proposal.touched_paths,
                    &self.config().owner,
                    author.as_deref(),
                )
            })
            .unwrap_or_default();
        if reviewers.is_empty()
            && let Some(login) = proposal.culprit_login()
            && author
                .as_deref()
                .is_none_or(|author| !author.eq_ignore_ascii_case(&login))
            && self.api().permission(&login).await? != Permission::None
        {
            reviewers.users.push(login);
        }
        if reviewers.is_empty() {
            tracing::info!(pull = pull.number, "no reviewer to request");
            return Ok(());
        }
        reviewers.users.truncate(15);
        reviewers.teams.truncate(15);
        if self
            .api()
            .request_reviewers(pull.number, &reviewers.users, &reviewers.teams)
            .await?
        {
            return Ok(());
        }
        // Refused: someone named in CODEOWNERS has no access. Keep the
        // collaborators and ask once more.
        let mut collaborators = Vec::new();
        for login in &reviewers.users {
            if self.api().permission(login).await? != Permission::None {
                collaborators.push(login.clone());
            }
        }
        if collaborators.is_empty() && reviewers.teams.is_empty() {
            return Ok(());
        }
        self.api()
            .request_reviewers(pull.number, &collaborators, &reviewers.teams)
            .await
            .map(drop)
    }

    /// Adds "Proposed fix: #<pull>" to the tracking issue's body, once
    /// per pull request (a later round adds its own line).
    async fn link_issue(&self, issue: &Issue, pull: u64, strategy: &str) -> Result<(), ForgeError> {
        let body = issue.body.clone().unwrap_or_default();
        let link = format!("Proposed fix: #{pull}");
        // `#1` must not count as linked because `#12` is.
        let linked = body
            .match_indices(&link)
            .any(|(at, _)| !body[at + link.len()..].starts_with(|c: char| c.is_ascii_digit()));
        if linked {
            return Ok(());
        }
        let body = format!("{}\n\n{link} (strategy `{strategy}`)", body.trim_end());
        self.api()
            .update_issue(issue.number, &json!({ "body": body }))
            .await
            .map(drop)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// FNV-1a, for stable comment keys.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
