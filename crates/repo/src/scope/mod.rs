//! The scope guard: every patch passes here before it touches a work tree.
//!
//! Patches are written by a model from attacker-influenced input (event
//! payloads), so the guard treats their text as hostile. [`check`] parses a
//! unified diff with a strict parser of its own, checks every path it names
//! (old and new, rename sources and targets) for escapes, symlinks, git's own
//! files and the [`ScopePolicy`] globs and limits, refuses binaries,
//! symlinks, submodules and new executables, and dry-runs the result with
//! libgit2. [`apply`] writes a checked patch. [`diff_from_edits`] turns a
//! model's search-and-replace edits into a diff that then goes through
//! [`check`] like any other.
//!
//! What is applied is never the model's text: the guard re-renders a
//! canonical git diff from what it checked and confirms libgit2 reads that
//! text as the same files and line counts.
//!
//! Pipeline, in the order violations are reported (the first one wins):
//! policy globs compile (`InvalidPolicy`) → parse (`Malformed`) → binary
//! sections (`Binary`) → path syntax (`OutsideRepository`) → names agree
//! (`Malformed`) → symlinks in the work tree (`OutsideRepository`) → modes
//! (`ModeChange`) → something left to change (`Malformed`) → deny, then
//! allow globs (`Denied`, `NotAllowed`) → limits (`TooManyFiles`,
//! `TooManyLines`) → work tree state (`DoesNotApply`) → libgit2 reads what
//! the guard read (`Malformed`) → libgit2's dry run (`DoesNotApply`).
//!
//! **Invariant:** nothing here writes to the work tree except [`apply`], and
//! [`apply`] writes nothing unless the whole patch applies.

mod edits;
mod git_apply;
mod parse;
mod policy;
mod render;
mod resolve;
mod tree;
mod violation;

#[cfg(test)]
mod tests;

pub use edits::{Edit, diff_from_edits};
pub use policy::{DeniedPaths, ScopePolicy};
pub use violation::ScopeViolation;

use std::path::Path;

use serde::{Deserialize, Serialize};

use policy::Matchers;
use resolve::FileChange;

/// One file of a checked patch, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchFile {
    /// Path before the change; `None` when the patch creates the file.
    pub old_path: Option<String>,
    /// Path after the change; `None` when the patch deletes the file.
    pub new_path: Option<String>,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
}

/// A patch that passed [`check`].
///
/// `text` is the canonical git diff the guard rendered, and the only thing
/// [`apply`] reads: it parses and re-checks it against the work tree it is
/// given (usually a fresh one, not the one `check` saw), so a value built by
/// hand or loaded from storage cannot bypass the path, symlink and mode
/// checks. The policy's globs and limits are [`check`]'s job alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedPatch {
    /// The canonical diff, as applied.
    pub text: String,
    /// Per-file paths and line counts, in patch order.
    pub files: Vec<PatchFile>,
}

impl CheckedPatch {
    /// Lines added plus lines removed, over all files.
    pub fn changed_lines(&self) -> usize {
        self.files
            .iter()
            .map(|file| file.added + file.removed)
            .sum()
    }
}

/// Parses and checks a unified diff (git-style `diff --git a/x b/x`, or plain
/// `--- a/x` / `+++ b/x`) against `policy` and the git work tree at
/// `worktree`, without changing anything.
///
/// Every path (old and new, rename sources and targets) is checked; each is
/// walked in `worktree` with `symlink_metadata`, and any symlink on the way,
/// or a symlink being the file patched, is [`ScopeViolation::OutsideRepository`].
/// Modes: symlinks (120000) and submodules (160000) are refused; 100755 is
/// accepted only for a file that is already executable in `worktree`.
pub fn check(
    policy: &ScopePolicy,
    worktree: &Path,
    patch: &str,
) -> Result<CheckedPatch, ScopeViolation> {
    let matchers = Matchers::new(policy)?;
    let files = analyse(worktree, patch)?;
    let paths = || files.iter().flat_map(FileChange::paths);
    for path in paths() {
        matchers.check_denied(path)?;
    }
    for path in paths() {
        matchers.check_allowed(path)?;
    }
    if files.len() > policy.max_files {
        return Err(ScopeViolation::TooManyFiles {
            files: files.len(),
            max: policy.max_files,
        });
    }
    let lines: usize = files.iter().map(|file| file.added() + file.removed()).sum();
    if lines > policy.max_changed_lines {
        return Err(ScopeViolation::TooManyLines {
            lines,
            max: policy.max_changed_lines,
        });
    }
    let prepared = git_apply::prepare(worktree, &files)?;
    Ok(CheckedPatch {
        text: prepared.text,
        files: files
            .iter()
            .map(|file| PatchFile {
                old_path: file.old_path.clone(),
                new_path: file.new_path.clone(),
                added: file.added(),
                removed: file.removed(),
            })
            .collect(),
    })
}

/// Applies a checked patch to the work tree of the git repository at
/// `worktree`.
///
/// Re-checks `patch.text` against this work tree first (paths, symlinks,
/// modes, file state), then dry-runs it with libgit2, so it fails with
/// [`ScopeViolation::DoesNotApply`] (or the violation found) leaving the
/// tree unchanged. Only an I/O failure during the final write could leave it
/// half-written.
pub fn apply(worktree: &Path, patch: &CheckedPatch) -> Result<(), ScopeViolation> {
    let files = analyse(worktree, &patch.text)?;
    git_apply::prepare(worktree, &files)?.apply()
}

/// Everything that does not depend on the policy and does not need git:
/// parse, resolve names, symlinks, modes.
fn analyse(worktree: &Path, patch: &str) -> Result<Vec<FileChange>, ScopeViolation> {
    let sections = parse::parse(patch)?;
    let mut files = resolve::resolve(&sections)?;
    tree::check_symlinks(worktree, &files)?;
    resolve::check_mode_values(&files)?;
    tree::read_base_modes(worktree, &mut files);
    tree::check_executables(&files)?;
    resolve::check_not_empty(&files)?;
    Ok(files)
}
