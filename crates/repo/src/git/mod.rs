//! git history through git2: opening a repository, resolving revisions, the
//! window of recent commits, per-commit hunks and the bounded blame.
//!
//! History is read along the first-parent chain of the deployed revision:
//! every step is then a plain diff between two consecutive trees, so line
//! tracking is exact, and a merge shows up as the one change it brought in
//! (which is also what one would revert).
//!
//! A shallow clone (`git clone --depth N`, the default of many CI
//! checkouts) ends at its boundary commits, listed in `shallow`: libgit2
//! reads them as parentless, so a walk would take the oldest one for a root
//! commit that created every file. The window stops there instead and says
//! so ([`Window::shallow`]).

mod bisect;
mod blame;
mod diff;
mod window;

pub use bisect::{BisectBudget, BisectResult, Verdict, bisect};
pub use blame::{LineOrigin, RangeTouch};
pub(crate) use diff::patch_hunks;
pub use diff::{ChangeStatus, FileChange, Hunk, LineMap, Mapped};
pub use window::{CommitInfo, Window, WindowCommit, WindowSpec};

use std::collections::HashSet;
use std::path::Path;

use git2::{Oid, Repository};

/// Failures while reading a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The path is not a git repository (or cannot be read).
    #[error("cannot open git repository at {path}")]
    Open {
        /// The path that was given.
        path: String,
        /// Why git2 refused it.
        #[source]
        source: git2::Error,
    },
    /// A revision (sha, branch, tag) does not name a commit here.
    #[error("unknown revision {rev:?}")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
        /// Why git2 could not resolve it.
        #[source]
        source: git2::Error,
    },
    /// The repository has no commits yet.
    #[error("repository has no commits")]
    Empty,
    /// Any other git2 failure while reading objects.
    #[error("reading git objects")]
    Git(#[from] git2::Error),
}

/// All blob paths of a tree, `dir/file` style.
pub fn blob_paths(tree: &git2::Tree<'_>) -> Result<Vec<String>, RepoError> {
    let mut paths = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob)
            && let Ok(name) = entry.name()
        {
            paths.push(format!("{dir}{name}"));
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(paths)
}

/// Serialises an object id as its 40-hex text.
pub(crate) fn serialize_oid<S: serde::Serializer>(
    oid: &Oid,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(oid)
}

/// A repository opened for reading.
pub struct Repo {
    git: Repository,
}

impl Repo {
    /// Opens the repository at `path` (a work tree or a bare repository).
    pub fn open(path: &Path) -> Result<Repo, RepoError> {
        let git = Repository::open(path).map_err(|source| RepoError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Repo { git })
    }

    /// Wraps an already-open repository.
    pub fn from_git(git: Repository) -> Repo {
        Repo { git }
    }

    /// The underlying git2 handle, for the code index and other readers.
    pub fn git(&self) -> &Repository {
        &self.git
    }

    /// The commit `HEAD` points at.
    pub fn head(&self) -> Result<Oid, RepoError> {
        let head = self.git.head().map_err(|_| RepoError::Empty)?;
        Ok(head.peel_to_commit().map_err(|_| RepoError::Empty)?.id())
    }

    /// Resolves a revision (full or short sha, branch, tag, `HEAD~3`) to a commit.
    pub fn resolve(&self, rev: &str) -> Result<Oid, RepoError> {
        let object =
            self.git
                .revparse_single(rev)
                .map_err(|source| RepoError::UnknownRevision {
                    rev: rev.to_string(),
                    source,
                })?;
        let commit = object
            .peel_to_commit()
            .map_err(|source| RepoError::UnknownRevision {
                rev: rev.to_string(),
                source,
            })?;
        Ok(commit.id())
    }

    /// Reads one commit's metadata.
    pub fn commit_info(&self, id: Oid) -> Result<CommitInfo, RepoError> {
        Ok(CommitInfo::from_commit(&self.git.find_commit(id)?))
    }

    /// All blob paths of the commit's tree, for path mapping.
    pub fn tree_paths(&self, commit: Oid) -> Result<Vec<String>, RepoError> {
        blob_paths(&self.git.find_commit(commit)?.tree()?)
    }

    /// The content of `path` at `commit`, or `None` when the path is absent
    /// or not a file.
    pub fn file_at(&self, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let tree = self.git.find_commit(commit)?.tree()?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(error) if error.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        match entry.to_object(&self.git)?.into_blob() {
            Ok(blob) => Ok(Some(blob.content().to_vec())),
            Err(_) => Ok(None),
        }
    }

    /// The commits at which a shallow clone's history ends (their parents
    /// are not in the clone); empty for a complete repository.
    pub fn shallow_boundary(&self) -> Result<HashSet<Oid>, RepoError> {
        let path = self.git.commondir().join("shallow");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
            Err(error) => {
                return Err(RepoError::Git(git2::Error::from_str(&format!(
                    "reading {}: {error}",
                    path.display()
                ))));
            }
        };
        // git writes one 40-hex id a line; libgit2 refuses anything else
        // when it opens the repository, so a bad line cannot get this far.
        Ok(text
            .lines()
            .filter_map(|line| Oid::from_str(line.trim()).ok())
            .collect())
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> Result<bool, RepoError> {
        Ok(ancestor == descendant || self.git.graph_descendant_of(descendant, ancestor)?)
    }
}

#[cfg(test)]
mod tests;
