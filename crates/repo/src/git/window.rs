//! The window of recent commits: the first-parent history of the deployed
//! revision back to a boundary (a revision, a point in time, or a count).
//!
//! Only paths are read here; hunks are computed on demand (see `diff`) for
//! the few files a diagnosis looks at, which keeps a window of hundreds of
//! commits cheap.
//!
//! In a shallow clone the walk also stops at the boundary: the boundary
//! commit's parent is not in the clone, so what it changed cannot be told
//! (libgit2 would show it as a root commit adding every file, a false
//! culprit). It becomes the window's base, as a `since` revision would, and
//! [`Window::shallow`] says the history was cut there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use git2::{Delta, DiffFindOptions, DiffOptions, Oid};
use rayon::prelude::*;
use serde::Serialize;

use super::diff::{FileChange, Hunk, file_hunks};
use super::{Repo, RepoError, serialize_oid};

/// Where a window starts and stops.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    /// The newest commit: the deployed revision.
    pub tip: Oid,
    /// Stop at this revision (exclusive): `--since REV` or the previous release.
    pub since: Option<Oid>,
    /// Stop at commits committed before this Unix time: `--days N`.
    pub not_before: Option<i64>,
    /// Never read more than this many commits; a diagnosis must stay bounded.
    pub max_commits: usize,
}

/// One commit's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// The commit id.
    #[serde(serialize_with = "serialize_oid")]
    pub id: Oid,
    /// Author name as recorded.
    pub author_name: String,
    /// Author e-mail as recorded.
    pub author_email: String,
    /// Author time, Unix seconds.
    pub author_time: i64,
    /// Committer time, Unix seconds: what the window is cut by, since
    /// rebases and cherry-picks keep old author dates.
    pub commit_time: i64,
    /// First line of the message.
    pub summary: String,
    /// Number of parents (2+ for merges).
    pub n_parents: usize,
}

impl CommitInfo {
    pub(crate) fn from_commit(commit: &git2::Commit<'_>) -> CommitInfo {
        let author = commit.author();
        CommitInfo {
            id: commit.id(),
            author_name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
            author_email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
            author_time: author.when().seconds(),
            commit_time: commit.time().seconds(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
                .into_owned(),
            n_parents: commit.parent_count(),
        }
    }

    /// The abbreviated id used in human output.
    pub fn short_id(&self) -> String {
        self.id.to_string()[..10].to_string()
    }
}

/// A commit in the window with the files it changed against its first parent.
#[derive(Debug, Clone)]
pub struct WindowCommit {
    /// Its metadata.
    pub info: CommitInfo,
    /// The first parent (None for a root commit).
    pub parent: Option<Oid>,
    /// Files changed against the first parent.
    pub changes: Vec<FileChange>,
}

/// Hunks by (commit index, change index), computed once.
type HunkCache = HashMap<(usize, usize), Rc<Vec<Hunk>>>;

/// The recent history of the deployed revision, newest first.
pub struct Window<'r> {
    repo: &'r Repo,
    /// The deployed revision.
    pub tip: Oid,
    /// The commits, newest first, along the first-parent chain.
    pub commits: Vec<WindowCommit>,
    /// The commit just before the window (its oldest commit's parent), if any.
    pub base: Option<Oid>,
    /// True when `max_commits` cut the window short.
    pub truncated: bool,
    /// True when the repository is a shallow clone and its boundary cut
    /// the window short: `base` is the boundary commit, and older commits
    /// are not in the clone.
    pub shallow: bool,
    hunks: RefCell<HunkCache>,
}

impl<'r> Window<'r> {
    /// Reads the window described by `spec`.
    pub fn read(repo: &'r Repo, spec: &WindowSpec) -> Result<Window<'r>, RepoError> {
        let git = repo.git();
        let mut walked: Vec<(CommitInfo, Oid, Option<Oid>)> = Vec::new();
        let mut base = None;
        let mut truncated = false;
        let mut shallow = false;
        let boundary = repo.shallow_boundary()?;
        let mut current = git.find_commit(spec.tip)?;
        loop {
            if let Some(since) = spec.since
                && (current.id() == since || git.graph_descendant_of(since, current.id())?)
            {
                base = Some(current.id());
                break;
            }
            if let Some(not_before) = spec.not_before
                && current.time().seconds() < not_before
            {
                base = Some(current.id());
                break;
            }
            if walked.len() >= spec.max_commits {
                truncated = true;
                base = Some(current.id());
                break;
            }
            if boundary.contains(&current.id()) {
                shallow = true;
                base = Some(current.id());
                break;
            }
            let parent = current.parent(0).ok();
            walked.push((
                CommitInfo::from_commit(&current),
                current.id(),
                parent.as_ref().map(|p| p.id()),
            ));
            match parent {
                Some(parent) => current = parent,
                None => break,
            }
        }
        let changes = changed_files_parallel(repo, &walked)?;
        let commits = walked
            .into_iter()
            .zip(changes)
            .map(|((info, _, parent), changes)| WindowCommit {
                info,
                parent,
                changes,
            })
            .collect();
        Ok(Window {
            repo,
            tip: spec.tip,
            commits,
            base,
            truncated,
            shallow,
            hunks: RefCell::new(HashMap::new()),
        })
    }

    /// The repository this window was read from.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// Index of a commit in `commits`.
    pub fn position(&self, id: Oid) -> Option<usize> {
        self.commits.iter().position(|c| c.info.id == id)
    }

    /// The hunks of one file change of one commit (zero context lines), cached.
    pub fn hunks(&self, commit_idx: usize, change_idx: usize) -> Result<Rc<Vec<Hunk>>, RepoError> {
        if let Some(hunks) = self.hunks.borrow().get(&(commit_idx, change_idx)) {
            return Ok(hunks.clone());
        }
        let change = &self.commits[commit_idx].changes[change_idx];
        let hunks = Rc::new(file_hunks(self.repo, change)?);
        self.hunks
            .borrow_mut()
            .insert((commit_idx, change_idx), hunks.clone());
        Ok(hunks)
    }

    /// The change of `path` (by its new name) in a commit, if it touched it.
    pub fn change_of(&self, commit_idx: usize, path: &str) -> Option<usize> {
        self.commits[commit_idx]
            .changes
            .iter()
            .position(|c| c.new_path.as_deref() == Some(path))
    }
}

/// Tree diffs of many commits, spread over the cores: each worker opens its
/// own handle on the repository, since git2 handles are not shared across
/// threads.
fn changed_files_parallel(
    repo: &Repo,
    walked: &[(CommitInfo, Oid, Option<Oid>)],
) -> Result<Vec<Vec<FileChange>>, RepoError> {
    // Below this, opening extra handles costs more than it saves.
    const PARALLEL_FROM: usize = 32;
    if walked.len() < PARALLEL_FROM {
        return walked
            .iter()
            .map(|(_, commit, parent)| changed_files(repo.git(), *commit, *parent))
            .collect();
    }
    let path = repo.git().path().to_path_buf();
    walked
        .par_iter()
        .map_init(
            || git2::Repository::open(&path),
            |git, (_, commit, parent)| match git {
                Ok(git) => changed_files(git, *commit, *parent),
                Err(error) => Err(RepoError::Git(git2::Error::from_str(error.message()))),
            },
        )
        .collect()
}

fn changed_files(
    git: &git2::Repository,
    commit: Oid,
    parent: Option<Oid>,
) -> Result<Vec<FileChange>, RepoError> {
    let new_tree = git.find_commit(commit)?.tree()?;
    let old_tree = parent
        .map(|p| git.find_commit(p).and_then(|c| c.tree()))
        .transpose()?;
    let mut options = DiffOptions::new();
    options.skip_binary_check(true);
    let mut diff = git.diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut options))?;
    let has_add = diff.deltas().any(|d| d.status() == Delta::Added);
    let has_delete = diff.deltas().any(|d| d.status() == Delta::Deleted);
    // Rename detection reads blob contents; only pay for it when a rename is possible.
    if has_add && has_delete && diff.deltas().len() <= 500 {
        diff.find_similar(Some(DiffFindOptions::new().renames(true)))?;
    }
    Ok(diff
        .deltas()
        .map(|delta| FileChange::from_delta(&delta))
        .collect())
}
