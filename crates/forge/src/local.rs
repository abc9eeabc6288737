//! The local forge: a bare git repository as the remote and a JSON
//! document of pull request and issue records, so that the whole loop
//! (heal → pull request → review → merge → verify → close) runs with no
//! account.
//!
//! `suture pr list|show|merge|close` act on it through [`LocalForge`]'s
//! synchronous API. Pull requests and issues share one number sequence, as
//! on GitHub. Opening is idempotent per incident and round like the GitHub
//! forge's: the branch is read back from the bare repository and the
//! records are searched by branch and incident before anything is created.
//!
//! The records live behind a [`RecordsBackend`] (a file by default, see
//! [`records`]); every change is one read-modify-write under the
//! backend's lock, so the service and a `suture pr merge` in another
//! process take turns.
//!
//! The source may be a shallow clone: the bare remote then holds the
//! history down to the source's boundary and is itself a shallow
//! repository (see `git::mark_shallow_boundary`), which merges, `git log`
//! and clones of it read as such.

mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use git2::{Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

use crate::error::ForgeError;
use crate::{CommitIdentity, FixProposal, OpenedPr, PrState, git, incident_marker};
pub use records::{FileRecords, RecordsBackend};

/// Version of the records file format.
const RECORDS_VERSION: u32 = 1;

/// A bare repository and its pull request records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalForge {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    remote: PathBuf,
    records: Arc<dyn RecordsBackend>,
    identity: CommitIdentity,
}

/// A local pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalPullRequest {
    /// Number (shared sequence with issues).
    pub number: u64,
    /// The incident it fixes.
    pub incident_id: String,
    /// Title.
    pub title: String,
    /// Body (the heal report).
    pub body: String,
    /// Head branch in the bare repository.
    pub branch: String,
    /// Base branch it merges into.
    pub base_branch: String,
    /// Head commit when opened.
    pub head_sha: String,
    /// The revision the fix was built on.
    pub base_sha: String,
    /// The strategy that produced the fix.
    pub strategy: String,
    /// The incident's round this pull request belongs to (1 in records
    /// written before rounds existed).
    #[serde(default = "crate::first_round")]
    pub round: u32,
    /// Labels (`suture`, the strategy).
    pub labels: Vec<String>,
    /// Reviewers CODEOWNERS (or the culprit's author) would be asked.
    pub reviewers: Vec<String>,
    /// Open, merged or closed.
    pub state: PrState,
    /// The tracking issue.
    pub tracking_issue: Option<u64>,
    /// Comments, in order.
    pub comments: Vec<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it was merged or closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// The base branch's commit after the merge.
    pub merge_commit_sha: Option<String>,
}

/// A local issue (a tracking issue of an incident).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalIssue {
    /// Number (shared sequence with pull requests).
    pub number: u64,
    /// The incident it tracks.
    pub incident_id: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    /// `completed`, `reopened`, … when set.
    pub state_reason: Option<String>,
    /// Pull requests proposed for it.
    pub pull_requests: Vec<u64>,
    /// Comments, in order.
    pub comments: Vec<String>,
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The base branch's new commit.
    pub commit: String,
    /// Whether the base branch simply moved to the head (no merge commit).
    pub fast_forward: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    version: u32,
    next_number: u64,
    pull_requests: Vec<LocalPullRequest>,
    issues: Vec<LocalIssue>,
}

impl Records {
    fn take_number(&mut self) -> u64 {
        self.next_number = self.next_number.max(1);
        let number = self.next_number;
        self.next_number += 1;
        number
    }

    fn issue_mut(&mut self, number: u64) -> Result<&mut LocalIssue, ForgeError> {
        self.issues
            .iter_mut()
            .find(|issue| issue.number == number)
            .ok_or(ForgeError::NotFound {
                kind: "issue",
                number,
            })
    }

    fn pull_mut(&mut self, number: u64) -> Result<&mut LocalPullRequest, ForgeError> {
        self.pull_requests
            .iter_mut()
            .find(|pull| pull.number == number)
            .ok_or(ForgeError::NotFound {
                kind: "pull request",
                number,
            })
    }
}

impl LocalForge {
    /// The forge of the bare repository at `remote_path`, with records in
    /// the file `records_path` (created on first write; its directory must
    /// exist).
    pub fn open(remote_path: &Path, records_path: &Path) -> Result<LocalForge, ForgeError> {
        LocalForge::with_backend(remote_path, Arc::new(FileRecords::new(records_path)))
    }

    /// The forge of the existing bare repository at `remote_path`, with
    /// records kept by `backend`.
    pub fn with_backend(
        remote_path: &Path,
        backend: Arc<dyn RecordsBackend>,
    ) -> Result<LocalForge, ForgeError> {
        git::open_bare(remote_path).map_err(ForgeError::git(format!(
            "opening the bare remote {}",
            remote_path.display()
        )))?;
        Ok(LocalForge {
            inner: Arc::new(Inner {
                remote: remote_path.to_path_buf(),
                records: backend,
                identity: CommitIdentity::default(),
            }),
        })
    }

    /// Like [`LocalForge::with_backend`], but first creates the bare
    /// repository (and its parent directories) when there is none at
    /// `remote_path`, so a service can start from an empty data directory.
    /// The new remote has no branches: the first pull request seeds its
    /// base (see [`LocalForge::open_pull_request`]). A path that exists and
    /// is something else than an empty directory or a bare repository is
    /// refused, never overwritten.
    pub fn open_or_init(
        remote_path: &Path,
        backend: Arc<dyn RecordsBackend>,
    ) -> Result<LocalForge, ForgeError> {
        let vacant = match std::fs::read_dir(remote_path) {
            Ok(mut entries) => entries.next().is_none(),
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        };
        if vacant {
            std::fs::create_dir_all(remote_path).map_err(ForgeError::io(format!(
                "creating the bare remote {}",
                remote_path.display()
            )))?;
            Repository::init_bare(remote_path).map_err(ForgeError::git(format!(
                "creating the bare remote {}",
                remote_path.display()
            )))?;
            tracing::info!(remote = %remote_path.display(), "created the local forge's bare remote");
        }
        LocalForge::with_backend(remote_path, backend)
    }

    /// The same forge committing as `identity`.
    pub fn with_identity(self, identity: CommitIdentity) -> LocalForge {
        LocalForge {
            inner: Arc::new(Inner {
                remote: self.inner.remote.clone(),
                records: self.inner.records.clone(),
                identity,
            }),
        }
    }

    /// The bare repository.
    pub fn remote(&self) -> &Path {
        &self.inner.remote
    }

    /// Every pull request, by number.
    pub fn list(&self) -> Result<Vec<LocalPullRequest>, ForgeError> {
        Ok(self.read()?.pull_requests)
    }

    /// Pull request `number`.
    pub fn show(&self, number: u64) -> Result<LocalPullRequest, ForgeError> {
        self.read()?
            .pull_requests
            .into_iter()
            .find(|pull| pull.number == number)
            .ok_or(ForgeError::NotFound {
                kind: "pull request",
                number,
            })
    }

    /// Every issue, by number.
    pub fn issues(&self) -> Result<Vec<LocalIssue>, ForgeError> {
        Ok(self.read()?.issues)
    }

    /// Issue `number`.
    pub fn issue(&self, number: u64) -> Result<LocalIssue, ForgeError> {
        self.read()?
            .issues
            .into_iter()
            .find(|issue| issue.number == number)
            .ok_or(ForgeError::NotFound {
                kind: "issue",
                number,
            })
    }

    /// Pushes the round's fix branch to the bare repository and records its
    /// pull request and the incident's tracking issue; finds them instead
    /// when they exist. A later round gets a new pull request linked from
    /// the same tracking issue. When the remote has no base branch yet (a
    /// fresh remote), it is created at the proposal's base revision first;
    /// an existing base branch is never moved.
    pub fn open_pull_request(
        &self,
        proposal: &FixProposal,
        source_repo: &Path,
    ) -> Result<OpenedPr, ForgeError> {
        proposal.validate()?;
        let branch = proposal.branch();
        self.update(|records| {
            let issue = find_or_create_issue(
                records,
                &proposal.incident_id,
                &format!(
                    "suture: {}",
                    proposal.title.lines().next().unwrap_or_default()
                ),
                &format!("suture is tracking incident `{}`.", proposal.incident_id),
            );
            if let Some(pull) = records
                .pull_requests
                .iter()
                .find(|pull| pull.branch == branch && pull.incident_id == proposal.incident_id)
            {
                return Ok(OpenedPr {
                    number: pull.number,
                    url: self.url(pull.number),
                    branch: branch.clone(),
                    head_sha: pull.head_sha.clone(),
                    tracking_issue: pull.tracking_issue,
                    created: false,
                });
            }
            let head_sha = match git::branch_head(&self.inner.remote, &branch)? {
                Some(sha) => sha,
                None => {
                    // A shallow source brings history that ends at its
                    // boundary: the remote must know it ends there.
                    git::mark_shallow_boundary(&self.inner.remote, source_repo)?;
                    let url = self.inner.remote.to_string_lossy().into_owned();
                    git::push_fix(
                        source_repo,
                        proposal,
                        &branch,
                        &self.inner.identity,
                        &url,
                        None,
                        crate::transport::Timeouts::default(),
                    )?
                    .sha
                }
            };
            // The fix commit's parent is the base revision, so the push
            // brought it: a fresh remote gets its base branch from it (also
            // after a crash between the push and this).
            git::seed_branch(
                &self.inner.remote,
                &proposal.base_branch,
                &proposal.base_revision,
            )?;
            let reviewers = local_reviewers(source_repo, proposal)?;
            let number = records.take_number();
            records.pull_requests.push(LocalPullRequest {
                number,
                incident_id: proposal.incident_id.clone(),
                title: proposal
                    .title
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                body: format!(
                    "{}\n\n---\nTracking issue: #{issue}\n\n{}",
                    proposal.body_markdown.trim_end(),
                    incident_marker(&proposal.incident_id)
                ),
                branch: branch.clone(),
                base_branch: proposal.base_branch.clone(),
                head_sha: head_sha.clone(),
                base_sha: proposal.base_revision.clone(),
                strategy: proposal.strategy.clone(),
                round: proposal.round,
                labels: vec![
                    "suture".to_string(),
                    proposal.strategy.clone(),
                    proposal.reproduction_label().to_string(),
                ],
                reviewers,
                state: PrState::Open,
                tracking_issue: Some(issue),
                comments: Vec::new(),
                created_at: Utc::now(),
                closed_at: None,
                merge_commit_sha: None,
            });
            let tracking = records.issue_mut(issue)?;
            tracking.pull_requests.push(number);
            tracking
                .body
                .push_str(&format!("\n\nProposed fix: #{number}"));
            Ok(OpenedPr {
                number,
                url: self.url(number),
                branch: branch.clone(),
                head_sha,
                tracking_issue: Some(issue),
                created: true,
            })
        })
    }

    /// Merges pull request `number` into its base branch in the bare
    /// repository: a fast-forward when the base has not moved, else a merge
    /// commit. A conflict leaves everything as it was. Merging a merged
    /// pull request again returns the recorded result.
    pub fn merge(&self, number: u64) -> Result<MergeOutcome, ForgeError> {
        self.update(|records| {
            let pull = records.pull_mut(number)?;
            match pull.state {
                PrState::Merged => {
                    return Ok(MergeOutcome {
                        commit: pull.merge_commit_sha.clone().unwrap_or_default(),
                        fast_forward: false,
                    });
                }
                PrState::Closed => {
                    return Err(ForgeError::WrongState {
                        number,
                        state: pull.state.to_string(),
                        action: "merged",
                    });
                }
                PrState::Open => {}
            }
            let outcome = merge_branch(
                &self.inner.remote,
                number,
                &pull.branch,
                &pull.base_branch,
                &self.inner.identity,
            )?;
            pull.state = PrState::Merged;
            pull.closed_at = Some(Utc::now());
            pull.merge_commit_sha = Some(outcome.commit.clone());
            Ok(outcome)
        })
    }

    /// Closes pull request `number` without merging (the branch stays).
    pub fn close(&self, number: u64) -> Result<(), ForgeError> {
        self.update(|records| {
            let pull = records.pull_mut(number)?;
            match pull.state {
                PrState::Merged => Err(ForgeError::WrongState {
                    number,
                    state: pull.state.to_string(),
                    action: "closed",
                }),
                PrState::Closed => Ok(()),
                PrState::Open => {
                    pull.state = PrState::Closed;
                    pull.closed_at = Some(Utc::now());
                    Ok(())
                }
            }
        })
    }

    /// Finds or records the incident's tracking issue; returns its number.
    pub fn open_tracking_issue(
        &self,
        incident_id: &str,
        title: &str,
        body: &str,
    ) -> Result<u64, ForgeError> {
        self.update(|records| Ok(find_or_create_issue(records, incident_id, title, body)))
    }

    /// Comments `comment` and closes issue `number` as completed (no
    /// second comment when it is already closed with it).
    pub fn close_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        self.update(|records| {
            let issue = records.issue_mut(number)?;
            if issue.state == "closed" && issue.comments.last().map(String::as_str) == Some(comment)
            {
                return Ok(());
            }
            issue.comments.push(comment.to_string());
            issue.state = "closed".to_string();
            issue.state_reason = Some("completed".to_string());
            Ok(())
        })
    }

    /// Reopens issue `number` (reason `reopened`) and comments `comment`.
    pub fn reopen_issue(&self, number: u64, comment: &str) -> Result<(), ForgeError> {
        self.update(|records| {
            let issue = records.issue_mut(number)?;
            if issue.state == "open" && issue.comments.last().map(String::as_str) == Some(comment) {
                return Ok(());
            }
            issue.state = "open".to_string();
            issue.state_reason = Some("reopened".to_string());
            issue.comments.push(comment.to_string());
            Ok(())
        })
    }

    /// Comments on issue or pull request `number`.
    pub fn comment(&self, number: u64, body: &str) -> Result<(), ForgeError> {
        self.update(|records| {
            if let Ok(pull) = records.pull_mut(number) {
                pull.comments.push(body.to_string());
                return Ok(());
            }
            records.issue_mut(number)?.comments.push(body.to_string());
            Ok(())
        })
    }

    fn url(&self, number: u64) -> String {
        format!("local:{}#{number}", self.inner.remote.display())
    }

    fn read(&self) -> Result<Records, ForgeError> {
        parse_records(self.inner.records.read()?)
    }

    /// Read, change, write back, as one turn of the backend's lock. A
    /// failing `change` writes nothing. `change` runs once per turn the
    /// backend takes (once, unless a backend retries a turn), and the
    /// result of the last run is returned.
    fn update<T>(
        &self,
        mut change: impl FnMut(&mut Records) -> Result<T, ForgeError>,
    ) -> Result<T, ForgeError> {
        let mut result = None;
        self.inner.records.update(&mut |document| {
            let mut records = parse_records(document)?;
            result = Some(change(&mut records)?);
            serde_json::to_string_pretty(&records)
                .map(Some)
                .map_err(|error| ForgeError::records(format!("serialising: {error}")))
        })?;
        result.ok_or_else(|| ForgeError::records("the records backend did not run the change"))
    }
}

fn find_or_create_issue(records: &mut Records, incident_id: &str, title: &str, body: &str) -> u64 {
    if let Some(issue) = records
        .issues
        .iter()
        .find(|issue| issue.incident_id == incident_id)
    {
        return issue.number;
    }
    let number = records.take_number();
    records.issues.push(LocalIssue {
        number,
        incident_id: incident_id.to_string(),
        title: title.to_string(),
        // First line, as on GitHub: where a marker is trusted.
        body: format!("{}\n{body}", incident_marker(incident_id)),
        state: "open".to_string(),
        state_reason: None,
        pull_requests: Vec::new(),
        comments: Vec::new(),
    });
    number
}

/// Who would be asked to review: CODEOWNERS' users and teams (as
/// `org/team`), else the culprit's login.
fn local_reviewers(source_repo: &Path, proposal: &FixProposal) -> Result<Vec<String>, ForgeError> {
    let mut reviewers = Vec::new();
    if let Some(codeowners) = git::codeowners_at(source_repo, &proposal.base_revision)? {
        for path in &proposal.touched_paths {
            for owner in codeowners.owners_of(path) {
                let name = match owner {
                    crate::Owner::User(login) => login.clone(),
                    crate::Owner::Team { org, slug } => format!("{org}/{slug}"),
                    crate::Owner::Email(_) => continue,
                };
                if !reviewers.contains(&name) {
                    reviewers.push(name);
                }
            }
        }
    }
    if reviewers.is_empty()
        && let Some(login) = proposal.culprit_login()
    {
        reviewers.push(login);
    }
    Ok(reviewers)
}

fn merge_branch(
    remote: &Path,
    number: u64,
    branch: &str,
    base_branch: &str,
    identity: &CommitIdentity,
) -> Result<MergeOutcome, ForgeError> {
    let repo =
        git::open_bare(remote).map_err(ForgeError::git(format!("opening {}", remote.display())))?;
    let base_ref = format!("refs/heads/{base_branch}");
    let head = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .and_then(|reference| reference.peel_to_commit())
        .map_err(ForgeError::git(format!("reading {branch}")))?;
    let base = repo
        .find_reference(&base_ref)
        .and_then(|reference| reference.peel_to_commit())
        .map_err(ForgeError::git(format!("reading {base_branch}")))?;
    let message = format!("Merge pull request #{number} from {branch}");
    let fast_forward = base.id() == head.id()
        || repo
            .graph_descendant_of(head.id(), base.id())
            .map_err(ForgeError::git("comparing the branches"))?;
    let commit: Oid = if fast_forward {
        head.id()
    } else {
        let mut index = repo
            .merge_commits(&base, &head, None)
            .map_err(ForgeError::git(format!(
                "merging {branch} into {base_branch}"
            )))?;
        if index.has_conflicts() {
            let mut paths: Vec<String> = index
                .conflicts()
                .map_err(ForgeError::git("listing conflicts"))?
                .filter_map(Result::ok)
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            return Err(ForgeError::MergeConflict { number, paths });
        }
        let tree_oid = index
            .write_tree_to(&repo)
            .map_err(ForgeError::git("writing the merged tree"))?;
        let tree = repo
            .find_tree(tree_oid)
            .map_err(ForgeError::git("reading the merged tree"))?;
        let signature = Signature::now(&identity.name, &identity.email)
            .map_err(ForgeError::git("making the merge signature"))?;
        repo.commit(
            None,
            &signature,
            &signature,
            &message,
            &tree,
            &[&base, &head],
        )
        .map_err(ForgeError::git("committing the merge"))?
    };
    // Move the base only if nobody else moved it meanwhile.
    repo.reference_matching(&base_ref, commit, true, base.id(), &message)
        .map_err(ForgeError::git(format!("updating {base_branch}")))?;
    Ok(MergeOutcome {
        commit: commit.to_string(),
        fast_forward,
    })
}

/// The records in `document`; empty records when there is none yet.
fn parse_records(document: Option<String>) -> Result<Records, ForgeError> {
    let Some(text) = document else {
        return Ok(Records {
            version: RECORDS_VERSION,
            next_number: 1,
            ..Records::default()
        });
    };
    let records: Records =
        serde_json::from_str(&text).map_err(|error| ForgeError::CorruptRecords {
            reason: format!("not a records document: {error}"),
        })?;
    if records.version != RECORDS_VERSION {
        return Err(ForgeError::CorruptRecords {
            reason: format!(
                "records version {} is not {RECORDS_VERSION}",
                records.version
            ),
        });
    }
    Ok(records)
}
