//! Throwaway work trees: a checkout of one revision in a temp dir, in which a
//! fix is applied and tested without touching the user's repository.
//!
//! A worktree is a fresh repository whose object store *borrows* the source
//! repository's objects through `objects/info/alternates`: nothing is copied
//! and nothing is written to the source (no `git worktree` metadata, no refs,
//! no index). Commits made here (a revert) land in the temp repository's own
//! object store. The temp dir is removed when the `Worktree` is dropped, on
//! every path, failures and panics included.

use std::collections::BTreeMap;
use std::path::Path;

use git2::build::{CheckoutBuilder, TreeUpdateBuilder};
use git2::{DiffFormat, DiffOptions, FileMode, Oid, Patch, Repository};
use tempfile::TempDir;

use crate::git::patch_hunks;
use crate::git::{Hunk, Repo, RepoError};

/// One hunk of a commit against its first parent, with zero context lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitHunk {
    /// The file's path (the new one; the old one when the commit deleted it).
    pub path: String,
    /// Where the change sits and what it changed.
    pub hunk: Hunk,
}

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

    /// Undoes only the hunks `undo` of `commit` (indices into
    /// [`commit_hunks`]) onto the base revision, in memory; like
    /// [`Worktree::revert`] the work tree is not changed.
    ///
    /// The tree the commit would have had without those hunks is merged
    /// three-way onto the base, with the commit's own tree as the ancestor:
    /// later commits that edited near a hunk are merged through, not
    /// dropped, and a later commit that rewrote the hunk's own lines is a
    /// conflict.
    pub fn revert_hunks(&self, commit: Oid, undo: &[usize]) -> Result<RevertOutcome, RepoError> {
        let hunks = commit_hunks(&self.git, commit)?;
        let culprit = self.git.find_commit(commit)?;
        let culprit_tree = culprit.tree()?;
        let parent_tree = match culprit.parent_count() {
            0 => None,
            _ => Some(culprit.parent(0)?.tree()?),
        };
        let mut by_path: BTreeMap<&str, Vec<&Hunk>> = BTreeMap::new();
        for &idx in undo {
            let Some(hunk) = hunks.get(idx) else {
                return Err(RepoError::Git(git2::Error::from_str(&format!(
                    "hunk {idx} is not one of the commit's {} hunks",
                    hunks.len()
                ))));
            };
            by_path.entry(&hunk.path).or_default().push(&hunk.hunk);
        }
        let mut update = TreeUpdateBuilder::new();
        for (path, mut chosen) in by_path {
            chosen.sort_by_key(|h| std::cmp::Reverse(h.new_start));
            chosen.dedup();
            let new = blob_at(&self.git, &culprit_tree, path)?;
            let old = match &parent_tree {
                Some(tree) => blob_at(&self.git, tree, path)?,
                None => None,
            };
            let old_lines = lines(old.as_ref().map_or(&[][..], |(b, _)| b));
            let mut content = lines(new.as_ref().map_or(&[][..], |(b, _)| b));
            for hunk in chosen {
                let at = if hunk.new_lines == 0 {
                    hunk.new_start as usize
                } else {
                    hunk.new_start as usize - 1
                };
                let from = if hunk.old_lines == 0 {
                    0
                } else {
                    hunk.old_start as usize - 1
                };
                let restored = old_lines
                    .get(from..from + hunk.old_lines as usize)
                    .unwrap_or_default()
                    .to_vec();
                let end = (at + hunk.new_lines as usize).min(content.len());
                content.splice(at.min(end)..end, restored);
            }
            let bytes = content.concat();
            if bytes.is_empty() && old.is_none() {
                update.remove(path);
            } else {
                let mode = new
                    .as_ref()
                    .or(old.as_ref())
                    .map_or(FileMode::Blob, |m| m.1);
                update.upsert(path, self.git.blob(&bytes)?, mode);
            }
        }
        let without = self
            .git
            .find_tree(update.create_updated(&self.git, &culprit_tree)?)?;
        let base_tree = self.git.find_commit(self.base)?.tree()?;
        let mut index = self
            .git
            .merge_trees(&culprit_tree, &base_tree, &without, None)?;
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
        let merged = self.git.find_tree(index.write_tree_to(&self.git)?)?;
        let diff = self.git.diff_tree_to_tree(
            Some(&base_tree),
            Some(&merged),
            Some(&mut DiffOptions::new()),
        )?;
        let patch = diff_text(&diff)?;
        Ok(if patch.is_empty() {
            RevertOutcome::Empty
        } else {
            RevertOutcome::Clean { patch }
        })
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

/// The hunks of `commit` against its first parent, zero context lines, in
/// path order and then line order; binary files have none. These are the
/// indices [`Worktree::revert_hunks`] takes.
pub fn commit_hunks(git: &Repository, commit: Oid) -> Result<Vec<CommitHunk>, RepoError> {
    let commit = git.find_commit(commit)?;
    let parent = match commit.parent_count() {
        0 => None,
        _ => Some(commit.parent(0)?.tree()?),
    };
    let mut options = DiffOptions::new();
    options.context_lines(0);
    let diff = git.diff_tree_to_tree(parent.as_ref(), Some(&commit.tree()?), Some(&mut options))?;
    let mut hunks = Vec::new();
    for idx in 0..diff.deltas().len() {
        let Some(patch) = Patch::from_diff(&diff, idx)? else {
            continue;
        };
        let delta = patch.delta();
        if delta.flags().is_binary() {
            continue;
        }
        let path = delta
            .new_file()
            .path()
            .filter(|_| !delta.new_file().id().is_zero())
            .or(delta.old_file().path())
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        for hunk in patch_hunks(&patch)? {
            hunks.push(CommitHunk {
                path: path.clone(),
                hunk,
            });
        }
    }
    Ok(hunks)
}

/// The zero-context hunks of `path` from its version at `old` to its
/// version at `new` (a missing file is empty): with [`crate::git::LineMap`]
/// they map a line at `new` onto `old`.
pub fn path_hunks(
    git: &Repository,
    old: Oid,
    new: Oid,
    path: &str,
) -> Result<Vec<Hunk>, RepoError> {
    let old = blob_at(git, &git.find_commit(old)?.tree()?, path)?;
    let new = blob_at(git, &git.find_commit(new)?.tree()?, path)?;
    let mut options = DiffOptions::new();
    options.context_lines(0);
    let patch = Patch::from_buffers(
        old.as_ref().map_or(&[][..], |(b, _)| b),
        Some(Path::new(path)),
        new.as_ref().map_or(&[][..], |(b, _)| b),
        Some(Path::new(path)),
        Some(&mut options),
    )?;
    patch_hunks(&patch)
}

/// A blob's content and mode at `path` in `tree`, when it is a file there.
fn blob_at(
    git: &Repository,
    tree: &git2::Tree<'_>,
    path: &str,
) -> Result<Option<(Vec<u8>, FileMode)>, RepoError> {
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    let mode = match entry.filemode() {
        0o100755 => FileMode::BlobExecutable,
        0o120000 => FileMode::Link,
        _ => FileMode::Blob,
    };
    match entry.to_object(git)?.into_blob() {
        Ok(blob) => Ok(Some((blob.content().to_vec(), mode))),
        Err(_) => Ok(None),
    }
}

/// `content`'s lines, each with its own line ending.
fn lines(content: &[u8]) -> Vec<Vec<u8>> {
    content
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
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

    /// A culprit with a wanted hunk in one file and a bad one in another,
    /// far apart in a third, and a new file.
    fn mixed() -> (TempDir, Repo, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let long: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        commit(
            &git,
            &[
                ("a.py", "one\ntwo\nthree\n"),
                ("b.py", "b\n"),
                ("c.py", &long),
            ],
            "init",
            1,
        );
        let changed = long
            .replace("line 5\n", "line 5 bad\n")
            .replace("line 35\n", "line 35 wanted\n");
        let culprit = commit(
            &git,
            &[
                ("a.py", "one\nTWO\nthree\n"),
                ("b.py", "b\nfeature\n"),
                ("c.py", &changed),
                ("new.py", "brand new\n"),
            ],
            "mixed",
            2,
        );
        (dir, Repo::from_git(git), culprit)
    }

    fn hunk_texts(git: &Repository, commit: Oid) -> Vec<String> {
        commit_hunks(git, commit)
            .unwrap()
            .iter()
            .map(|h| {
                format!(
                    "{} {},{} -> {},{} {:?} {:?}",
                    h.path,
                    h.hunk.old_start,
                    h.hunk.old_lines,
                    h.hunk.new_start,
                    h.hunk.new_lines,
                    h.hunk.removed,
                    h.hunk.added
                )
            })
            .collect()
    }

    /// The commit's hunks are listed in path order, then line order.
    #[test]
    fn commit_hunks_are_in_path_then_line_order() {
        let (_dir, repo, culprit) = mixed();
        expect_test::expect![[r#"
            [
                "a.py 2,1 -> 2,1 [\"two\"] [\"TWO\"]",
                "b.py 1,0 -> 2,1 [] [\"feature\"]",
                "c.py 5,1 -> 5,1 [\"line 5\"] [\"line 5 bad\"]",
                "c.py 35,1 -> 35,1 [\"line 35\"] [\"line 35 wanted\"]",
                "new.py 0,0 -> 1,1 [] [\"brand new\"]",
            ]
        "#]]
        .assert_debug_eq(&hunk_texts(repo.git(), culprit));
    }

    /// Undoing some hunks leaves the others in place, in other files and
    /// in the same file.
    #[test]
    fn revert_hunks_undoes_only_the_chosen_hunks() {
        let (_dir, repo, culprit) = mixed();
        let worktree = Worktree::create(&repo, culprit).unwrap();
        let RevertOutcome::Clean { patch } = worktree.revert_hunks(culprit, &[0, 2]).unwrap()
        else {
            panic!("expected a clean partial revert");
        };
        assert!(patch.contains("-TWO\n+two\n"), "{patch}");
        assert!(patch.contains("-line 5 bad\n+line 5\n"), "{patch}");
        assert!(!patch.contains("b.py"), "{patch}");
        assert!(!patch.contains("line 35"), "{patch}");
        assert!(!patch.contains("new.py"), "{patch}");
        assert_eq!(worktree.diff().unwrap(), "");
    }

    /// Undoing every hunk is the full revert, a new file included.
    #[test]
    fn every_hunk_undone_is_the_full_revert() {
        let (_dir, repo, culprit) = mixed();
        let worktree = Worktree::create(&repo, culprit).unwrap();
        let all: Vec<usize> = (0..commit_hunks(repo.git(), culprit).unwrap().len()).collect();
        assert_eq!(
            worktree.revert_hunks(culprit, &all).unwrap(),
            worktree.revert(culprit).unwrap()
        );
        let RevertOutcome::Clean { patch } = worktree.revert_hunks(culprit, &[4]).unwrap() else {
            panic!("expected a clean partial revert");
        };
        assert!(patch.contains("deleted file mode"), "{patch}");
    }

    /// A later commit that edited near the hunk is merged through: the
    /// partial revert applies to the deployed revision and keeps the later
    /// edit. One that rewrote the hunk's own line conflicts.
    #[test]
    fn later_edits_are_rebased_through_or_conflict() {
        let (dir, repo, culprit) = mixed();
        let _ = dir;
        let long: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        let later_text = long
            .replace("line 5\n", "line 5 bad\n")
            .replace("line 35\n", "line 35 wanted\n")
            .replace("line 3\n", "line 3 later\n")
            .replace("line 7\n", "line 7 later\n");
        let later = commit(repo.git(), &[("c.py", &later_text)], "later", 3);
        let worktree = Worktree::create(&repo, later).unwrap();
        let RevertOutcome::Clean { patch } = worktree.revert_hunks(culprit, &[2]).unwrap() else {
            panic!("expected a clean partial revert");
        };
        expect_test::expect![[r#"
            diff --git a/c.py b/c.py
            index f86ad02..c9cfeeb 100644
            --- a/c.py
            +++ b/c.py
            @@ -2,7 +2,7 @@ line 1
             line 2
             line 3 later
             line 4
            -line 5 bad
            +line 5
             line 6
             line 7 later
             line 8
        "#]]
        .assert_eq(&patch);
        let rewritten = later_text.replace("line 5 bad\n", "line 5 worse\n");
        let rewrite = commit(repo.git(), &[("c.py", &rewritten)], "rewrite", 4);
        let worktree = Worktree::create(&repo, rewrite).unwrap();
        assert_eq!(
            worktree.revert_hunks(culprit, &[2]).unwrap(),
            RevertOutcome::Conflict {
                paths: vec!["c.py".to_string()]
            }
        );
        assert!(worktree.revert_hunks(culprit, &[9]).is_err());
    }

    /// `path_hunks` maps a culprit line onto the deployed revision.
    #[test]
    fn path_hunks_map_lines_between_revisions() {
        let (dir, repo, culprit) = mixed();
        let _ = dir;
        let long: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        let shifted = format!(
            "header\nheader\n{}",
            long.replace("line 5\n", "line 5 bad\n")
                .replace("line 35\n", "line 35 wanted\n")
        );
        let later = commit(repo.git(), &[("c.py", &shifted)], "later", 3);
        let hunks = path_hunks(repo.git(), later, culprit, "c.py").unwrap();
        let map = crate::git::LineMap::new(&hunks);
        assert_eq!(map.range_to_old(35, 35), (37, 37));
    }
}
