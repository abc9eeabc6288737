//! The libgit2 side: read the canonical text back, confirm git sees the same
//! files and line counts the guard checked, dry-run it against the work tree,
//! and only then write.
//!
//! The cross-check is the backstop for the two parsers disagreeing: if
//! libgit2 reads a different file, status or count than the guard did, the
//! patch is refused as malformed instead of applied on trust. The dry run
//! (`ApplyOptions::check`) makes a failed apply leave the tree untouched;
//! libgit2 also computes every result before writing any, so hunk failures
//! are all-or-nothing even without it.

use std::path::Path;

use git2::{ApplyLocation, ApplyOptions, Delta, Diff, Patch, Repository};

use super::ScopeViolation;
use super::render::{render, render_file};
use super::resolve::FileChange;
use super::tree;

/// A patch read by libgit2 and proven to apply to the work tree.
pub(super) struct Prepared {
    repo: Repository,
    diff: Diff<'static>,
    /// The canonical text libgit2 read.
    pub(super) text: String,
}

/// Checks the work tree's state, renders, cross-checks and dry-runs.
pub(super) fn prepare(worktree: &Path, files: &[FileChange]) -> Result<Prepared, ScopeViolation> {
    tree::check_state(worktree, files)?;
    let text = render(files);
    let diff = read(&text)?;
    cross_check(&diff, files)?;
    let repo = open(worktree)?;
    if let Err(error) = repo.apply(&diff, ApplyLocation::WorkDir, Some(&mut check_only())) {
        return Err(explain_failure(&repo, files, &error));
    }
    Ok(Prepared { repo, diff, text })
}

impl Prepared {
    /// Writes the patch into the work tree.
    pub(super) fn apply(self) -> Result<(), ScopeViolation> {
        self.repo
            .apply(&self.diff, ApplyLocation::WorkDir, None)
            .map_err(|error| ScopeViolation::does_not_apply(git_message(&error)))
    }
}

fn check_only() -> ApplyOptions<'static> {
    let mut options = ApplyOptions::new();
    options.check(true);
    options
}

fn read(text: &str) -> Result<Diff<'static>, ScopeViolation> {
    Diff::from_buffer(text.as_bytes()).map_err(|error| {
        ScopeViolation::malformed(format!(
            "git cannot read the patch: {}",
            git_message(&error)
        ))
    })
}

/// Opens the repository whose work tree root is exactly `worktree`.
fn open(worktree: &Path) -> Result<Repository, ScopeViolation> {
    let cannot = |why: String| {
        ScopeViolation::does_not_apply(format!("cannot use the work tree {worktree:?}: {why}"))
    };
    let repo = Repository::open(worktree).map_err(|error| cannot(git_message(&error)))?;
    let root = repo
        .workdir()
        .ok_or_else(|| cannot("the repository is bare".to_string()))?;
    let same = match (root.canonicalize(), worktree.canonicalize()) {
        (Ok(root), Ok(worktree)) => root == worktree,
        _ => false,
    };
    if !same {
        return Err(cannot("it is not the root of a git work tree".to_string()));
    }
    Ok(repo)
}

/// libgit2 must see exactly the files, statuses and line counts the guard
/// checked.
fn cross_check(diff: &Diff<'_>, files: &[FileChange]) -> Result<(), ScopeViolation> {
    let disagree = |what: String| {
        ScopeViolation::malformed(format!("git reads the patch differently: {what}"))
    };
    if diff.deltas().len() != files.len() {
        return Err(disagree(format!(
            "{} files instead of {}",
            diff.deltas().len(),
            files.len()
        )));
    }
    for (idx, (delta, file)) in diff.deltas().zip(files).enumerate() {
        let path = file.path();
        let expected_status = if file.is_add() {
            Delta::Added
        } else if file.is_delete() {
            Delta::Deleted
        } else if file.is_rename() {
            Delta::Renamed
        } else {
            Delta::Modified
        };
        if delta.status() != expected_status {
            return Err(disagree(format!(
                "{path:?} is {:?}, not {expected_status:?}",
                delta.status()
            )));
        }
        let expected_old = file.old_path.as_deref().unwrap_or(path);
        let expected_new = file.new_path.as_deref().unwrap_or(path);
        let git_old = delta.old_file().path().and_then(Path::to_str);
        let git_new = delta.new_file().path().and_then(Path::to_str);
        if git_old != Some(expected_old) || git_new != Some(expected_new) {
            return Err(disagree(format!(
                "{path:?} is named {git_old:?} -> {git_new:?}"
            )));
        }
        if delta.flags().is_binary() {
            return Err(disagree(format!("{path:?} is binary")));
        }
        let stats = Patch::from_diff(diff, idx)
            .ok()
            .flatten()
            .and_then(|patch| patch.line_stats().ok());
        let expected_stats = (file.added(), file.removed());
        match stats {
            Some((_, added, removed)) if (added, removed) == expected_stats => {}
            _ => {
                return Err(disagree(format!(
                    "{path:?} changes {stats:?} lines, not {expected_stats:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Names the first file that does not apply on its own, so the model (or a
/// human) learns which file's context is stale; falls back to git's message
/// when only the combination fails.
fn explain_failure(repo: &Repository, files: &[FileChange], error: &git2::Error) -> ScopeViolation {
    for file in files {
        let Ok(diff) = Diff::from_buffer(render_file(file).as_bytes()) else {
            continue;
        };
        if let Err(error) = repo.apply(&diff, ApplyLocation::WorkDir, Some(&mut check_only())) {
            return ScopeViolation::does_not_apply(format!(
                "{:?}: {}",
                file.path(),
                git_message(&error)
            ));
        }
    }
    ScopeViolation::does_not_apply(git_message(error))
}

/// libgit2's message, lowercased to match ours and without its trailing
/// punctuation.
fn git_message(error: &git2::Error) -> String {
    let message = error.message().trim_end_matches(['.', ' ', '\n']);
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown git error".to_string(),
    }
}
