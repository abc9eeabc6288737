//! Throwaway work trees: a checkout of one revision in a temp dir, in which a
//! fix is applied and tested without touching the user's repository.
//!
//! A worktree is a fresh repository whose object store *borrows* the source
//! repository's objects through `objects/info/alternates`: nothing is copied
//! and nothing is written to the source (no `git worktree` metadata, no refs,
//! no index). Commits made here (a revert) land in the temp repository's own
//! object store. The temp dir is removed when the `Worktree` is dropped, on
//! every path, failures and panics included.

use std::path::Path;

use git2::build::CheckoutBuilder;
use git2::{DiffFormat, DiffOptions, Oid, Repository};
use tempfile::TempDir;

use crate::git::{Repo, RepoError};

/// A checkout of one revision in a temp dir.
pub struct Worktree {
    // Field order matters: the repository handle closes before the dir goes.
    git: Repository,
    base: Oid,
    dir: TempDir,
}

/// What reverting a commit onto the worktree's revision gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertOutcome {
    /// The revert applies cleanly; this is its unified diff against the base.
    Clean {
        /// `git diff` of the revert, base → reverted.
        patch: String,
    },
    /// The revert conflicts with later changes in these paths.
    Conflict {
        /// Conflicting paths.
        paths: Vec<String>,
    },
    /// The revert changes nothing (the commit was already undone).
    Empty,
}

impl Worktree {
    /// Checks out `revision` of `source` into a new temp dir.
    pub fn create(source: &Repo, revision: Oid) -> Result<Worktree, RepoError> {
        let dir = tempfile::Builder::new()
            .prefix("suture-worktree-")
            .tempdir()
            .map_err(|error| {
                RepoError::Git(git2::Error::from_str(&format!(
                    "creating temp dir: {error}"
                )))
            })?;
        let git = Repository::init(dir.path())?;
        let objects = source.git().path().join("objects");
        let alternates = git.path().join("objects/info/alternates");
        std::fs::create_dir_all(alternates.parent().expect("objects/info"))
            .and_then(|()| std::fs::write(&alternates, format!("{}\n", objects.display())))
            .map_err(|error| {
                RepoError::Git(git2::Error::from_str(&format!(
                    "writing alternates: {error}"
                )))
            })?;
        // Reopen so the object database sees the alternates.
        let git = Repository::open(dir.path())?;
        git.find_commit(revision)?;
        git.set_head_detached(revision)?;
        git.checkout_head(Some(CheckoutBuilder::new().force()))?;
        Ok(Worktree {
            git,
            base: revision,
            dir,
        })
    }

    /// The work tree's root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The git2 handle of the temp repository.
    pub fn git(&self) -> &Repository {
        &self.git
    }

    /// The revision checked out.
    pub fn base(&self) -> Oid {
        self.base
    }

    /// Reverts `commit` onto the base revision in memory and returns its diff;
    /// the work tree is not changed (the caller applies the diff through the
    /// scope guard like any other patch). Merge commits are reverted against
    /// their first parent.
    pub fn revert(&self, commit: Oid) -> Result<RevertOutcome, RepoError> {
        let commit = self.git.find_commit(commit)?;
        let ours = self.git.find_commit(self.base)?;
        let mainline = if commit.parent_count() > 1 { 1 } else { 0 };
        let mut index = self.git.revert_commit(&commit, &ours, mainline, None)?;
        if index.has_conflicts() {
            let mut paths: Vec<String> = index
                .conflicts()?
                .filter_map(Result::ok)
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            return Ok(RevertOutcome::Conflict { paths });
        }
        let tree = self.git.find_tree(index.write_tree_to(&self.git)?)?;
        let base_tree = ours.tree()?;
        let diff = self.git.diff_tree_to_tree(
            Some(&base_tree),
            Some(&tree),
            Some(&mut DiffOptions::new()),
        )?;
        let patch = diff_text(&diff)?;
        if patch.is_empty() {
            Ok(RevertOutcome::Empty)
        } else {
            Ok(RevertOutcome::Clean { patch })
        }
    }

    /// The work tree's changes against the base, untracked files included,
    /// as a unified diff.
    pub fn diff(&self) -> Result<String, RepoError> {
        let base_tree = self.git.find_commit(self.base)?.tree()?;
        let mut options = DiffOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .show_untracked_content(true);
        let diff = self
            .git
            .diff_tree_to_workdir(Some(&base_tree), Some(&mut options))?;
        diff_text(&diff)
    }
}

fn diff_text(diff: &git2::Diff<'_>) -> Result<String, RepoError> {
    let mut text = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            text.push(line.origin() as u8);
        }
        text.extend_from_slice(line.content());
        true
    })?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use git2::{Signature, Time};

    use super::*;

    fn commit(git: &Repository, files: &[(&str, &str)], message: &str, time: i64) -> Oid {
        let mut index = git.index().unwrap();
        for (path, content) in files {
            let full = git.workdir().unwrap().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, content).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = Signature::new("T", "t@x.test", &Time::new(time, 0)).unwrap();
        let parent = git.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        git.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
    }

    fn source() -> (TempDir, Repo, Vec<Oid>) {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let a = commit(
            &git,
            &[("a.py", "one\ntwo\nthree\n"), ("b.py", "b\n")],
            "init",
            1,
        );
        let b = commit(&git, &[("a.py", "one\nTWO\nthree\n")], "bad", 2);
        let c = commit(&git, &[("b.py", "b2\n")], "other", 3);
        (dir, Repo::from_git(git), vec![a, b, c])
    }

    /// A worktree checks out the revision, borrows objects, and leaves the
    /// source repository's files, refs and status untouched; dropping it
    /// removes the temp dir.
    #[test]
    fn checkout_is_isolated_and_removed_on_drop() {
        let (dir, repo, commits) = source();
        let before = std::fs::read_dir(dir.path().join(".git")).unwrap().count();
        let worktree = Worktree::create(&repo, commits[1]).unwrap();
        let path = worktree.path().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(path.join("a.py")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(std::fs::read_to_string(path.join("b.py")).unwrap(), "b\n");
        std::fs::write(path.join("a.py"), "changed\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.py")).unwrap(),
            "one\nTWO\nthree\n"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join(".git")).unwrap().count(),
            before
        );
        assert_eq!(repo.head().unwrap(), commits[2]);
        drop(worktree);
        assert!(!path.exists());
    }

    /// Reverting the culprit onto a later revision gives the inverse diff of
    /// that commit only, without touching the work tree.
    #[test]
    fn revert_gives_the_inverse_patch() {
        let (_dir, repo, commits) = source();
        let worktree = Worktree::create(&repo, commits[2]).unwrap();
        let RevertOutcome::Clean { patch } = worktree.revert(commits[1]).unwrap() else {
            panic!("expected a clean revert");
        };
        expect_test::expect![[r#"
            diff --git a/a.py b/a.py
            index ddc897f..4cb29ea 100644
            --- a/a.py
            +++ b/a.py
            @@ -1,3 +1,3 @@
             one
            -TWO
            +two
             three
        "#]]
        .assert_eq(&patch);
        assert_eq!(worktree.diff().unwrap(), "");
    }

    /// A revert that conflicts with a later change names the paths.
    #[test]
    fn conflicting_revert_names_paths() {
        let (dir, repo, commits) = source();
        let later = commit(repo.git(), &[("a.py", "one\nTWO!\nthree\n")], "later", 4);
        let _ = dir;
        let worktree = Worktree::create(&repo, later).unwrap();
        assert_eq!(
            worktree.revert(commits[1]).unwrap(),
            RevertOutcome::Conflict {
                paths: vec!["a.py".to_string()]
            }
        );
    }

    /// The work tree's diff includes new files.
    #[test]
    fn diff_includes_untracked_files() {
        let (_dir, repo, commits) = source();
        let worktree = Worktree::create(&repo, commits[2]).unwrap();
        std::fs::write(worktree.path().join("new.py"), "x = 1\n").unwrap();
        let diff = worktree.diff().unwrap();
        assert!(diff.contains("+++ b/new.py"), "{diff}");
        assert!(diff.contains("+x = 1"), "{diff}");
    }
}
