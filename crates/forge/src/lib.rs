//! suture's forges: where a proven fix becomes a branch, a pull request and a
//! tracking issue for a human to review.
//!
//! [`Forge`] is the one entry point the pipeline uses, with two backends:
//!
//! - [`GitHubForge`]: a GitHub App (RS256 JWT → installation token, cached
//!   and refreshed before it expires) or a plain token; the fix branch is
//!   pushed with git2 over HTTPS through forge's own smart-HTTP transport
//!   (rustls, the system's CA certificates read on the first push; libgit2
//!   itself is built without TLS, so opening a repository costs no TLS
//!   set-up), the pull request carries the heal report,
//!   labels and reviewers (CODEOWNERS, else the culprit's author), and a
//!   tracking issue links to it and back.
//! - [`LocalForge`]: a bare git repository as the remote plus a JSON
//!   document of pull request and issue records, kept by a
//!   [`RecordsBackend`] (a file, [`FileRecords`], or the service's
//!   database), so the whole loop runs with no account
//!   (`suture pr list|show|merge|close`).
//!
//! **Invariant:** opening is idempotent per incident and round. Before
//! anything is created, the round's branch (`suture/<incident>-<slug>`,
//! `suture/<incident>-r<n>-<slug>` from round 2 on), its pull request (by
//! head branch) and the incident's tracking issue (by a hidden marker in
//! its body) are looked up, so a retry after a timeout that in fact
//! succeeded, or a restart between "branch pushed" and "pull request
//! opened", reuses what exists instead of opening a second one. A new
//! round (the first fix did not hold, or was closed) gets its own branch
//! and pull request and links the same tracking issue.
//!
//! **Invariant:** a token never reaches a log, an error message, a URL, a
//! git config or a request body: it travels in `Authorization` headers
//! (marked sensitive for the API; built per request and never logged by
//! the git transport, which gets it from a scope around the push), and
//! every type holding one redacts it in `Debug`.
//!
//! Transient failures (rate limits, 5xx, timeouts) are retried as
//! [`RetryPolicy`] says, then end in [`ForgeError::GaveUp`] for the caller
//! to record. [`upstream`] holds the two small clients the close step needs
//! besides the forge: resolve a Sentry issue, resolve a PagerDuty incident.

use std::path::Path;

pub mod action_http;
mod codeowners;
mod error;
mod git;
mod github;
mod http;
mod local;
mod retry;
mod transport;
pub mod upstream;

pub use codeowners::{CodeOwners, Owner, Reviewers};
pub use error::ForgeError;
pub use github::{GitHubAuth, GitHubConfig, GitHubForge};
pub use local::{
    FileRecords, LocalForge, LocalIssue, LocalPullRequest, MergeOutcome, RecordsBackend,
};
pub use octocrab::secrecy::{ExposeSecret, SecretString};
pub use retry::RetryPolicy;

/// A proven fix, ready to become a pull request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FixProposal {
    /// The incident's stable id: the idempotency key of branch, pull
    /// request and tracking issue.
    pub incident_id: String,
    /// A few words for the branch name, e.g. `zero-division-in-checkout`.
    pub slug: String,
    /// The pull request title.
    pub title: String,
    /// The pull request body (the heal report's markdown).
    pub body_markdown: String,
    /// The proven patch, a unified diff against `base_revision`.
    pub patch: String,
    /// The commit (40 hex) the patch applies to.
    pub base_revision: String,
    /// The branch the pull request targets, e.g. `main`.
    pub base_branch: String,
    /// The rung that produced the patch (`revert`, `llm`); also a label.
    pub strategy: String,
    /// Whether the production error was reproduced, so the fix is proven
    /// against it (else it is only plausible); a label says which
    /// ([`FixProposal::reproduction_label`]). Absent in older serialised
    /// proposals, which were not.
    #[serde(default)]
    pub reproduced: bool,
    /// Paths the patch touches (for CODEOWNERS).
    pub touched_paths: Vec<String>,
    /// The culprit commit's author email, when known.
    pub culprit_author_email: Option<String>,
    /// The culprit commit's author's forge login, when known.
    pub culprit_author_login: Option<String>,
    /// Which attempt at the incident this is, from 1: a fix that did not
    /// hold (or was closed unmerged) is followed by the next round, with
    /// its own branch and pull request and the same tracking issue.
    /// Absent in older serialised proposals, which were all round 1.
    #[serde(default = "first_round")]
    pub round: u32,
}

/// The round a proposal or pull request recorded without one is in.
pub(crate) fn first_round() -> u32 {
    1
}

impl FixProposal {
    /// The label that says whether the fix is proven against a reproduction
    /// of the error.
    pub fn reproduction_label(&self) -> &'static str {
        if self.reproduced {
            "suture:reproduced"
        } else {
            "suture:unreproduced"
        }
    }

    /// The fix branch of this round (see [`branch_name_for_round`]).
    pub fn branch(&self) -> String {
        branch_name_for_round(&self.incident_id, self.round, &self.slug)
    }

    /// Checks what the forge relies on: an incident id, a round from 1, a
    /// 40-hex base, a patch, a valid base branch and strategy.
    pub fn validate(&self) -> Result<(), ForgeError> {
        let invalid = |reason: String| Err(ForgeError::invalid("proposal", reason));
        if self.incident_id.trim().is_empty() {
            return invalid("the incident id is empty".to_string());
        }
        if self.round == 0 {
            return invalid("rounds count from 1".to_string());
        }
        git::parse_oid(&self.base_revision)?;
        if self.patch.trim().is_empty() {
            return invalid("the patch is empty".to_string());
        }
        let base_ref = format!("refs/heads/{}", self.base_branch);
        if self.base_branch.is_empty() || !git2::Reference::is_valid_name(&base_ref) {
            return invalid(format!("{:?} is not a branch name", self.base_branch));
        }
        let strategy_ok = !self.strategy.is_empty()
            && self.strategy.len() <= 50
            && !self.strategy.contains(',')
            && !self.strategy.chars().any(char::is_control);
        if !strategy_ok {
            return invalid(format!(
                "{:?} is not a usable strategy label",
                self.strategy
            ));
        }
        Ok(())
    }

    /// The culprit's login: the one given, else the one GitHub's noreply
    /// address spells (`12345+login@users.noreply.github.com`).
    pub fn culprit_login(&self) -> Option<String> {
        if let Some(login) = &self.culprit_author_login {
            return Some(login.clone());
        }
        let email = self.culprit_author_email.as_deref()?;
        let local = email.strip_suffix("@users.noreply.github.com")?;
        let login = local.split_once('+').map_or(local, |(_, login)| login);
        let valid =
            !login.is_empty() && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        valid.then(|| login.to_string())
    }
}

/// Who commits the fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitIdentity {
    /// Author and committer name.
    pub name: String,
    /// Author and committer email.
    pub email: String,
}

impl Default for CommitIdentity {
    fn default() -> CommitIdentity {
        CommitIdentity {
            name: "suture".to_string(),
            email: "suture@users.noreply.github.com".to_string(),
        }
    }
}

/// The pull request of an incident, opened or found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenedPr {
    /// Its number.
    pub number: u64,
    /// Where a human reviews it.
    pub url: String,
    /// The head branch.
    pub branch: String,
    /// The head commit.
    pub head_sha: String,
    /// The tracking issue's number, when there is one.
    pub tracking_issue: Option<u64>,
    /// `false` when it already existed (a retry or a restart found it).
    pub created: bool,
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrState {
    /// Open for review.
    Open,
    /// Merged into its base.
    Merged,
    /// Closed without merging.
    Closed,
}

impl std::fmt::Display for PrState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrState::Open => "open",
            PrState::Merged => "merged",
            PrState::Closed => "closed",
        })
    }
}

/// A user's role on the repository, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// `admin`.
    Admin,
    /// `maintain`.
    Maintain,
    /// `write`.
    Write,
    /// `triage`.
    Triage,
    /// `read`.
    Read,
    /// No access (not a collaborator).
    None,
}

impl Permission {
    /// Whether `/suture` commands from this user are obeyed: admin,
    /// maintain or write.
    pub fn can_write(self) -> bool {
        matches!(
            self,
            Permission::Admin | Permission::Maintain | Permission::Write
        )
    }

    /// From GitHub's `role_name` (or, older, `permission`).
    pub fn from_role(role: &str) -> Permission {
        match role {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" | "push" => Permission::Write,
            "triage" => Permission::Triage,
            "read" | "pull" => Permission::Read,
            _ => Permission::None,
        }
    }
}

/// The fix branch of an incident: `suture/<incident>-<slug>`, each part
/// lowercased, anything but `[a-z0-9]` turned into single dashes, the
/// incident cut to 40 characters and the slug to 40.
pub fn branch_name(incident_id: &str, slug: &str) -> String {
    let incident = ref_part(incident_id, 40);
    let slug = ref_part(slug, 40);
    match (incident.is_empty(), slug.is_empty()) {
        (_, true) => format!("suture/{incident}"),
        (true, false) => format!("suture/{slug}"),
        (false, false) => format!("suture/{incident}-{slug}"),
    }
}

/// The fix branch of round `round` of an incident: round 1 (and 0, which
/// [`FixProposal::validate`] refuses) is [`branch_name`]'s
/// `suture/<incident>-<slug>`, so branches pushed before rounds existed are
/// still found; round n ≥ 2 is `suture/<incident>-r<n>-<slug>`, with the
/// same cuts and characters.
pub fn branch_name_for_round(incident_id: &str, round: u32, slug: &str) -> String {
    if round <= 1 {
        return branch_name(incident_id, slug);
    }
    let incident = ref_part(incident_id, 40);
    let slug = ref_part(slug, 40);
    let parts: Vec<String> = [incident, format!("r{round}"), slug]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect();
    format!("suture/{}", parts.join("-"))
}

/// The hidden marker that identifies an incident's tracking issue and pull
/// request: `<!-- suture:incident=<id> -->` (the id reduced to characters
/// that cannot end the comment).
pub fn incident_marker(incident_id: &str) -> String {
    let id: String = incident_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        .collect::<String>()
        .replace("--", "-");
    format!("<!-- suture:incident={id} -->")
}

fn ref_part(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let cut: String = out.chars().take(max).collect();
    cut.trim_matches('-').to_string()
}

/// A forge: where fixes become pull requests. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Forge {
    /// github.com or GitHub Enterprise.
    GitHub(GitHubForge),
    /// A bare repository and local records.
    Local(LocalForge),
}

impl Forge {
    /// Pushes the fix branch and opens (or finds) the incident's pull
    /// request and tracking issue. Idempotent per incident.
    pub async fn open_pull_request(
        &self,
        proposal: &FixProposal,
        source_repo: &Path,
    ) -> Result<OpenedPr, ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.open_pull_request(proposal, source_repo).await,
            Forge::Local(forge) => {
                let (forge, proposal, source) =
                    (forge.clone(), proposal.clone(), source_repo.to_path_buf());
                blocking("local forge", move || {
                    forge.open_pull_request(&proposal, &source)
                })
                .await
            }
        }
    }

    /// Opens (or finds) the incident's tracking issue; returns its number.
    pub async fn open_tracking_issue(
        &self,
        incident_id: &str,
        title: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.open_tracking_issue(incident_id, title, body).await,
            Forge::Local(forge) => {
                let forge = forge.clone();
                let (incident_id, title, body) =
                    (incident_id.to_string(), title.to_string(), body.to_string());
                blocking("local forge", move || {
                    forge.open_tracking_issue(&incident_id, &title, &body)
                })
                .await
            }
        }
    }

    /// Comments `comment`, then closes issue `number` as completed.
    pub async fn close_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.close_issue(number, comment).await,
            Forge::Local(forge) => {
                let (forge, comment) = (forge.clone(), comment.to_string());
                blocking("local forge", move || forge.close_issue(number, &comment)).await
            }
        }
    }

    /// Reopens issue `number` (reason `reopened`), then comments `comment`.
    pub async fn reopen_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.reopen_issue(number, comment).await,
            Forge::Local(forge) => {
                let (forge, comment) = (forge.clone(), comment.to_string());
                blocking("local forge", move || forge.reopen_issue(number, &comment)).await
            }
        }
    }

    /// Comments on issue or pull request `number`.
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.comment(number, body).await,
            Forge::Local(forge) => {
                let (forge, body) = (forge.clone(), body.to_string());
                blocking("local forge", move || forge.comment(number, &body)).await
            }
        }
    }

    /// `login`'s role on the repository (the local forge's operator is an
    /// admin).
    pub async fn permission(&self, login: &str) -> Result<Permission, ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.permission(login).await,
            Forge::Local(_) => Ok(Permission::Admin),
        }
    }

    /// Whether pull request `number` is open, merged or closed.
    pub async fn pr_state(&self, number: u64) -> Result<PrState, ForgeError> {
        match self {
            Forge::GitHub(forge) => forge.pr_state(number).await,
            Forge::Local(forge) => {
                let forge = forge.clone();
                blocking("local forge", move || forge.show(number).map(|pr| pr.state)).await
            }
        }
    }
}

/// Runs blocking git and file work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, ForgeError> + Send + 'static,
) -> Result<T, ForgeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| ForgeError::Task { what, source })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Branch names are lowercase, dash-separated, cut, and valid refs.
    #[test]
    fn branch_names() {
        assert_eq!(
            branch_name("INC-42", "ZeroDivisionError in checkout()"),
            "suture/inc-42-zerodivisionerror-in-checkout"
        );
        assert_eq!(branch_name("abc", ""), "suture/abc");
        let long = branch_name(&"x".repeat(100), &"y/".repeat(100));
        assert_eq!(long.len(), "suture/".len() + 40 + 1 + 39);
        assert!(git2::Reference::is_valid_name(&format!(
            "refs/heads/{long}"
        )));
    }

    /// Round 1 keeps the branch of old; later rounds insert `r<n>` after
    /// the incident, and every shape is a valid ref.
    #[test]
    fn branch_names_per_round() {
        assert_eq!(
            branch_name_for_round("INC-42", 1, "zero division"),
            "suture/inc-42-zero-division"
        );
        assert_eq!(
            branch_name_for_round("INC-42", 2, "zero division"),
            "suture/inc-42-r2-zero-division"
        );
        assert_eq!(branch_name_for_round("abc", 13, ""), "suture/abc-r13");
        assert_eq!(branch_name_for_round("", 3, "fix"), "suture/r3-fix");
        assert_ne!(
            branch_name_for_round("inc", 2, "x"),
            branch_name_for_round("inc", 3, "x")
        );
        let long = branch_name_for_round(&"x".repeat(100), u32::MAX, &"y/".repeat(100));
        assert!(long.contains(&format!("-r{}-", u32::MAX)), "{long}");
        for name in [long, branch_name_for_round("a..b", 2, "@{x}.lock")] {
            assert!(
                git2::Reference::is_valid_name(&format!("refs/heads/{name}")),
                "{name}"
            );
        }
    }

    /// A proposal serialised before rounds existed reads as round 1; round
    /// 0 is refused.
    #[test]
    fn rounds_default_to_one_and_start_there() {
        let json = serde_json::json!({
            "incident_id": "inc-1", "slug": "s", "title": "t", "body_markdown": "",
            "patch": "p", "base_revision": "0123456789abcdef0123456789abcdef01234567",
            "base_branch": "main", "strategy": "revert", "touched_paths": [],
            "culprit_author_email": null, "culprit_author_login": null,
        });
        let mut proposal: FixProposal = serde_json::from_value(json).unwrap();
        assert_eq!(proposal.round, 1);
        assert_eq!(proposal.branch(), "suture/inc-1-s");
        proposal.validate().unwrap();
        proposal.round = 0;
        let error = proposal.validate().unwrap_err();
        assert!(error.to_string().contains("rounds count from 1"), "{error}");
        proposal.round = 2;
        assert_eq!(proposal.branch(), "suture/inc-1-r2-s");
    }

    /// The marker cannot be closed early by a hostile incident id.
    #[test]
    fn markers_stay_comments() {
        assert_eq!(incident_marker("inc-1"), "<!-- suture:incident=inc-1 -->");
        assert_eq!(
            incident_marker("a-->b <x>"),
            "<!-- suture:incident=a-bx -->"
        );
    }

    /// The culprit's login comes from GitHub's noreply address when not
    /// given; other addresses give none.
    #[test]
    fn culprit_login_from_noreply_email() {
        let mut proposal = FixProposal {
            incident_id: "i".into(),
            slug: "s".into(),
            title: "t".into(),
            body_markdown: String::new(),
            patch: String::new(),
            base_revision: String::new(),
            base_branch: "main".into(),
            strategy: "revert".into(),
            reproduced: false,
            touched_paths: Vec::new(),
            culprit_author_email: Some("12345+octo-cat@users.noreply.github.com".into()),
            culprit_author_login: None,
            round: 1,
        };
        assert_eq!(proposal.culprit_login().as_deref(), Some("octo-cat"));
        proposal.culprit_author_email = Some("dev@example.com".into());
        assert_eq!(proposal.culprit_login(), None);
    }

    /// Write access is admin, maintain or write.
    #[test]
    fn write_access() {
        assert!(Permission::from_role("maintain").can_write());
        assert!(!Permission::from_role("triage").can_write());
        assert!(!Permission::from_role("unknown").can_write());
    }
}
