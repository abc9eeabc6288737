//! Tests for the git module against real repositories built in a tempdir:
//! the window's boundaries and changed paths, hunks and the line map, bounded
//! blame (cross-checked against the `git blame` CLI), range touches, and the
//! `Repo` helpers.
//!
//! Commits are named `c1`, `c2`, … in creation order and the name is also the
//! commit message, so snapshots read as history. File contents are written as
//! whitespace-separated words, one word per line (`"a b c"` is three lines).

use std::cell::Cell;
use std::fmt::Write as _;
use std::process::Command;
use std::rc::Rc;

use expect_test::{Expect, expect};
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Oid, Repository, RepositoryInitOptions, Signature, Time};

use super::{ChangeStatus, LineMap, LineOrigin, Mapped, Repo, RepoError, Window, WindowSpec};

/// A scratch repository on branch `main`, committed to without a work tree.
struct Fixture {
    dir: tempfile::TempDir,
    git: Repository,
    n_commits: Cell<usize>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("creating a tempdir");
        let git = Repository::init_opts(
            dir.path(),
            RepositoryInitOptions::new().initial_head("main"),
        )
        .expect("initialising a repository");
        Fixture {
            dir,
            git,
            n_commits: Cell::new(0),
        }
    }

    /// The repository opened the way suture opens it.
    fn repo(&self) -> Repo {
        Repo::open(self.dir.path()).expect("opening the fixture repository")
    }

    /// Commits `files` on top of `HEAD` (a root commit in an empty
    /// repository), authored and committed by `author` at Unix `time`.
    fn commit(&self, author: &str, time: i64, files: &[(&str, &str)]) -> Oid {
        self.commit_edits(author, time, files, &[])
    }

    /// Like [`Fixture::commit`], also deleting `deletes`.
    fn commit_edits(
        &self,
        author: &str,
        time: i64,
        writes: &[(&str, &str)],
        deletes: &[&str],
    ) -> Oid {
        let parents: Vec<Oid> = self.head().into_iter().collect();
        self.create(&parents, author, (time, time), writes, deletes, true)
    }

    /// Like [`Fixture::commit`] with distinct author and committer times, as
    /// a rebase or cherry-pick leaves them.
    fn commit_dated(
        &self,
        author: &str,
        author_time: i64,
        commit_time: i64,
        files: &[(&str, &str)],
    ) -> Oid {
        let parents: Vec<Oid> = self.head().into_iter().collect();
        self.create(
            &parents,
            author,
            (author_time, commit_time),
            files,
            &[],
            true,
        )
    }

    /// A commit on top of `parent` that moves no ref: a side branch.
    fn side_commit(&self, parent: Oid, author: &str, time: i64, files: &[(&str, &str)]) -> Oid {
        self.create(&[parent], author, (time, time), files, &[], false)
    }

    /// Merges `side` into `HEAD`: the tree is HEAD's plus `files`.
    fn merge(&self, side: Oid, author: &str, time: i64, files: &[(&str, &str)]) -> Oid {
        let head = self.head().expect("a merge needs a HEAD commit");
        self.create(&[head, side], author, (time, time), files, &[], true)
    }

    fn head(&self) -> Option<Oid> {
        let head = self.git.head().ok()?;
        Some(head.peel_to_commit().ok()?.id())
    }

    /// Builds a commit whose tree is the first parent's with `writes` and
    /// `deletes` applied, named `c<n>`.
    fn create(
        &self,
        parents: &[Oid],
        author: &str,
        (author_time, commit_time): (i64, i64),
        writes: &[(&str, &str)],
        deletes: &[&str],
        move_head: bool,
    ) -> Oid {
        let git = &self.git;
        let baseline = match parents.first() {
            Some(&parent) => git.find_commit(parent).and_then(|c| c.tree()),
            None => git
                .treebuilder(None)
                .and_then(|builder| builder.write())
                .and_then(|id| git.find_tree(id)),
        }
        .expect("reading the baseline tree");
        let mut update = TreeUpdateBuilder::new();
        for (path, content) in writes {
            let blob = git.blob(content.as_bytes()).expect("writing a blob");
            update.upsert(*path, blob, FileMode::Blob);
        }
        for path in deletes {
            update.remove(*path);
        }
        let tree_id = update
            .create_updated(git, &baseline)
            .expect("writing the tree");
        let tree = git.find_tree(tree_id).expect("reading the tree");
        let email = format!("{author}@example.com");
        let author_sig =
            Signature::new(author, &email, &Time::new(author_time, 0)).expect("a signature");
        let committer =
            Signature::new(author, &email, &Time::new(commit_time, 0)).expect("a signature");
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|&id| git.find_commit(id).expect("reading a parent"))
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        self.n_commits.set(self.n_commits.get() + 1);
        let name = format!("c{}", self.n_commits.get());
        git.commit(
            move_head.then_some("HEAD"),
            &author_sig,
            &committer,
            &name,
            &tree,
            &parents,
        )
        .expect("committing")
    }

    /// A `git clone --depth <depth> --bare` of this repository (its `main`),
    /// in its own tempdir: the boundary is git's, written in `shallow`.
    fn shallow_clone(&self, depth: u32) -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().expect("creating a tempdir");
        let clone = dir.path().join("clone.git");
        #[allow(clippy::disallowed_methods)] // a shallow clone as git makes it
        let output = Command::new("git")
            .args(["clone", "--quiet", "--bare", "--depth", &depth.to_string()])
            .arg(format!("file://{}", self.dir.path().display()))
            .arg(&clone)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .expect("running git clone");
        assert!(
            output.status.success(),
            "git clone failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let repo = Repo::open(&clone).expect("opening the shallow clone");
        (dir, repo)
    }

    /// What `git blame --porcelain -L line,line tip -- path` says (whole
    /// history): the commit and the line's number in that commit's version.
    fn git_blame(&self, tip: Oid, path: &str, line: u32) -> (Oid, u32) {
        #[allow(clippy::disallowed_methods)] // the test compares with real git
        let output = Command::new("git")
            .arg("-C")
            .arg(self.dir.path())
            .args(["blame", "--porcelain", "-L", &format!("{line},{line}")])
            .arg(tip.to_string())
            .args(["--", path])
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .expect("running git blame");
        assert!(
            output.status.success(),
            "git blame failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).expect("utf-8 porcelain");
        let mut header = stdout
            .lines()
            .next()
            .expect("a porcelain header")
            .split(' ');
        let commit = Oid::from_str(header.next().expect("a sha")).expect("a valid sha");
        let orig_line = header
            .next()
            .expect("an original line")
            .parse()
            .expect("a line number");
        (commit, orig_line)
    }
}

/// One word per line: `"a b c"` → `"a\nb\nc\n"`.
fn lines(words: &str) -> String {
    words
        .split_whitespace()
        .map(|word| format!("{word}\n"))
        .collect()
}

/// A window from `tip` with no boundary but a generous count.
fn spec(tip: Oid) -> WindowSpec {
    WindowSpec {
        tip,
        since: None,
        not_before: None,
        max_commits: 100,
    }
}

/// The `c<n>` name of a commit (its message).
fn name(repo: &Repo, id: Oid) -> String {
    repo.commit_info(id).expect("reading a commit").summary
}

// ---------------------------------------------------------------------------
// The window

/// One line per commit (`name author committed=T parent=P`, `merge` when it
/// has several parents) with its changes indented, then the base and
/// whether the count cut the window short.
fn check_window(repo: &Repo, spec: &WindowSpec, expect: Expect) {
    let window = Window::read(repo, spec).expect("reading the window");
    let mut rendered = String::new();
    for commit in &window.commits {
        let info = &commit.info;
        let parent = commit.parent.map_or("none".to_string(), |p| name(repo, p));
        let merge = if info.n_parents > 1 { " merge" } else { "" };
        writeln!(
            rendered,
            "{} {} committed={} parent={parent}{merge}",
            info.summary, info.author_name, info.commit_time
        )
        .unwrap();
        for change in &commit.changes {
            let status = format!("{:?}", change.status).to_lowercase();
            let old = change.old_path.as_deref().unwrap_or("-");
            let new = change.new_path.as_deref().unwrap_or("-");
            writeln!(rendered, "  {status} {old} -> {new}").unwrap();
        }
    }
    let base = window.base.map_or("none".to_string(), |b| name(repo, b));
    write!(rendered, "base={base} truncated={}", window.truncated).unwrap();
    if window.shallow {
        rendered.push_str(" shallow");
    }
    rendered.push('\n');
    assert_eq!(window.tip, spec.tip);
    expect.assert_eq(&rendered);
}

/// Five linear commits, one file each.
fn five_commits(fx: &Fixture) -> Vec<Oid> {
    (1..=5)
        .map(|n| {
            fx.commit(
                &format!("dev{n}"),
                1000 * n,
                &[(&format!("f{n}.txt"), "x\n")],
            )
        })
        .collect()
}

/// `since = c2` stops the window before c2 (exclusive) and makes c2 the base.
#[test]
fn window_stops_before_since() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            since: Some(c[1]),
            ..spec(c[4])
        },
        expect![[r#"
            c5 dev5 committed=5000 parent=c4
              added - -> f5.txt
            c4 dev4 committed=4000 parent=c3
              added - -> f4.txt
            c3 dev3 committed=3000 parent=c2
              added - -> f3.txt
            base=c2 truncated=false
        "#]],
    );
}

/// `since` on a side branch merged into main (not on the first-parent
/// chain): the window holds what `git log since..tip --first-parent` holds
/// (the merge, and the main commit c2 the side branch never saw) and stops
/// at c1, the first first-parent commit that `since` descends from.
#[test]
fn window_since_reached_through_merge() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("a.txt", "a\n")]);
    fx.commit("ann", 2000, &[("a.txt", "a2\n")]);
    let side = fx.side_commit(c1, "sid", 3000, &[("side.txt", "s\n")]);
    fx.merge(side, "ann", 4000, &[("side.txt", "s\n")]);
    let tip = fx.commit("ann", 5000, &[("a.txt", "a5\n")]);
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            since: Some(side),
            ..spec(tip)
        },
        expect![[r#"
            c5 ann committed=5000 parent=c4
              modified a.txt -> a.txt
            c4 ann committed=4000 parent=c2 merge
              added - -> side.txt
            c2 ann committed=2000 parent=c1
              modified a.txt -> a.txt
            base=c1 truncated=false
        "#]],
    );
}

/// `not_before` cuts by committer time, inclusive: c3 was authored long
/// ago (a rebase) but committed after the cut, so it stays; c2, committed
/// exactly at the cut, stays too; c1 becomes the base.
#[test]
fn window_cut_by_committer_time() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("a.txt", "1\n")]);
    fx.commit("ann", 2000, &[("a.txt", "2\n")]);
    fx.commit_dated("bob", 500, 3000, &[("a.txt", "3\n")]);
    let tip = fx.commit("ann", 4000, &[("a.txt", "4\n")]);
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            not_before: Some(2000),
            ..spec(tip)
        },
        expect![[r#"
            c4 ann committed=4000 parent=c3
              modified a.txt -> a.txt
            c3 bob committed=3000 parent=c2
              modified a.txt -> a.txt
            c2 ann committed=2000 parent=c1
              modified a.txt -> a.txt
            base=c1 truncated=false
        "#]],
    );
    let window = Window::read(
        &repo,
        &WindowSpec {
            not_before: Some(2001),
            ..spec(tip)
        },
    )
    .unwrap();
    assert_eq!(window.commits.len(), 2, "c2 was committed before 2001");
    assert_eq!(window.commits[1].info.author_time, 500);
}

/// `max_commits` keeps the newest commits, marks the window truncated and
/// makes the first commit left out the base.
#[test]
fn window_truncated_at_max_commits() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            max_commits: 2,
            ..spec(c[4])
        },
        expect![[r#"
            c5 dev5 committed=5000 parent=c4
              added - -> f5.txt
            c4 dev4 committed=4000 parent=c3
              added - -> f4.txt
            base=c3 truncated=true
        "#]],
    );
}

/// A count that exactly fits the history reaches the root: not truncated,
/// no base; one less leaves the root out as the base.
#[test]
fn window_max_commits_at_the_root() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let repo = fx.repo();
    let exact = Window::read(
        &repo,
        &WindowSpec {
            max_commits: 5,
            ..spec(c[4])
        },
    )
    .unwrap();
    assert_eq!(
        (exact.commits.len(), exact.base, exact.truncated),
        (5, None, false)
    );
    let short = Window::read(
        &repo,
        &WindowSpec {
            max_commits: 4,
            ..spec(c[4])
        },
    )
    .unwrap();
    assert_eq!(
        (short.commits.len(), short.base, short.truncated),
        (4, Some(c[0]), true)
    );
}

/// A boundary that is met first wins over the count: `since` right at the
/// count's edge is a plain base, not a truncation.
#[test]
fn window_since_at_count_edge_is_not_truncation() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c[2]),
            max_commits: 2,
            ..spec(c[4])
        },
    )
    .unwrap();
    assert_eq!(
        (window.commits.len(), window.base, window.truncated),
        (2, Some(c[2]), false)
    );
}

/// Without boundaries the window reaches the root commit: no base, the
/// root has no parent and adds every file it holds.
#[test]
fn window_reaches_root_commit() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("a.txt", "a\n"), ("src/b.txt", "b\n")]);
    let tip = fx.commit("bob", 2000, &[("src/b.txt", "b2\n")]);
    let repo = fx.repo();
    check_window(
        &repo,
        &spec(tip),
        expect![[r#"
            c2 bob committed=2000 parent=c1
              modified src/b.txt -> src/b.txt
            c1 ann committed=1000 parent=none
              added - -> a.txt
              added - -> src/b.txt
            base=none truncated=false
        "#]],
    );
}

/// In a shallow clone the window stops at the boundary commit and says so:
/// c3's parent is not in the clone, so c3 is the base (libgit2 alone would
/// read it as a root commit adding every file, a false culprit).
#[test]
fn window_stops_at_the_shallow_boundary() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let (_dir, repo) = fx.shallow_clone(3);
    assert_eq!(
        repo.shallow_boundary()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [c[2]]
    );
    check_window(
        &repo,
        &spec(c[4]),
        expect![[r#"
            c5 dev5 committed=5000 parent=c4
              added - -> f5.txt
            c4 dev4 committed=4000 parent=c3
              added - -> f4.txt
            base=c3 truncated=false shallow
        "#]],
    );
}

/// A depth-1 clone holds only the tip: an empty window whose base is the
/// tip itself, cut by the boundary; blame says every line is older.
#[test]
fn window_of_a_depth_one_clone_is_empty() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("a.txt", &lines("a b"))]);
    let tip = fx.commit("bob", 2000, &[("a.txt", &lines("a b c"))]);
    let (_dir, repo) = fx.shallow_clone(1);
    let window = Window::read(&repo, &spec(tip)).unwrap();
    assert_eq!(
        (
            window.commits.len(),
            window.base,
            window.truncated,
            window.shallow
        ),
        (0, Some(tip), false, true)
    );
    assert_eq!(
        window.blame_lines("a.txt", &[3]).unwrap(),
        [LineOrigin::BeforeWindow { line: 3 }]
    );
}

/// A boundary met before the shallow one is the window's own: `since`, the
/// time cut and the count inside the clone leave `shallow` false, and a
/// complete repository never reports it.
#[test]
fn window_cut_inside_a_shallow_clone_is_not_shallow() {
    let fx = Fixture::new();
    let c = five_commits(&fx);
    let (_dir, repo) = fx.shallow_clone(3);
    for (spec, base, truncated) in [
        (
            WindowSpec {
                since: Some(c[3]),
                ..spec(c[4])
            },
            c[3],
            false,
        ),
        (
            WindowSpec {
                not_before: Some(4000),
                ..spec(c[4])
            },
            c[2],
            false,
        ),
        (
            WindowSpec {
                max_commits: 1,
                ..spec(c[4])
            },
            c[3],
            true,
        ),
    ] {
        let window = Window::read(&repo, &spec).unwrap();
        assert_eq!(
            (window.base, window.truncated, window.shallow),
            (Some(base), truncated, false),
            "{spec:?}"
        );
    }
    let complete = fx.repo();
    assert!(!Window::read(&complete, &spec(c[4])).unwrap().shallow);
    assert!(complete.shallow_boundary().unwrap().is_empty());
}

/// A merge is diffed against its first parent: it shows the side branch's
/// change (side.txt) and not main's own (a.txt, changed by c2 before it),
/// and the side commit itself is not in the window.
#[test]
fn merge_is_diffed_against_first_parent() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("a.txt", "a\n")]);
    fx.commit("ann", 2000, &[("a.txt", "a2\n")]);
    let side = fx.side_commit(c1, "sid", 3000, &[("side.txt", "s\n"), ("a.txt", "a\n")]);
    let merge = fx.merge(side, "ann", 4000, &[("side.txt", "s\n")]);
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(merge)
        },
        expect![[r#"
            c4 ann committed=4000 parent=c2 merge
              added - -> side.txt
            c2 ann committed=2000 parent=c1
              modified a.txt -> a.txt
            base=c1 truncated=false
        "#]],
    );
}

/// One commit that adds, modifies, deletes and renames (a file moved with
/// one of its ten lines edited): each change has its status and paths, and
/// the blob on the missing side is zero.
#[test]
fn changed_paths_carry_their_status() {
    let fx = Fixture::new();
    let long = lines("l1 l2 l3 l4 l5 l6 l7 l8 l9 l10");
    fx.commit(
        "ann",
        1000,
        &[
            ("keep.txt", "k\n"),
            ("gone.txt", "g\n"),
            ("old/long.txt", &long),
        ],
    );
    let tip = fx.commit_edits(
        "bob",
        2000,
        &[
            ("keep.txt", "k2\n"),
            ("new.txt", "n\n"),
            ("moved/long.txt", &long.replace("l5", "L5")),
        ],
        &["gone.txt", "old/long.txt"],
    );
    let repo = fx.repo();
    check_window(
        &repo,
        &WindowSpec {
            max_commits: 1,
            ..spec(tip)
        },
        expect![[r#"
            c2 bob committed=2000 parent=c1
              deleted gone.txt -> -
              modified keep.txt -> keep.txt
              renamed old/long.txt -> moved/long.txt
              added - -> new.txt
            base=c1 truncated=true
        "#]],
    );
    let window = Window::read(
        &repo,
        &WindowSpec {
            max_commits: 1,
            ..spec(tip)
        },
    )
    .unwrap();
    for change in &window.commits[0].changes {
        let path = change.path();
        match change.status {
            ChangeStatus::Added => assert!(change.old_blob.is_zero(), "{path}"),
            ChangeStatus::Deleted => assert!(change.new_blob.is_zero(), "{path}"),
            _ => assert!(
                !change.old_blob.is_zero() && !change.new_blob.is_zero(),
                "{path}"
            ),
        }
    }
    assert_eq!(window.change_of(0, "moved/long.txt"), Some(2));
    assert_eq!(
        window.change_of(0, "gone.txt"),
        None,
        "looked up by new path only"
    );
}

// ---------------------------------------------------------------------------
// Hunks and the line map

/// Commits `old` then `new` as f.txt and renders the hunks of the second
/// commit (`-old_start,old_lines +new_start,new_lines -removed +added`), then
/// `LineMap::to_old` of every new line: `new:old` for an unchanged line,
/// `new:+hunk@near` for an added one.
fn check_hunks(old: &str, new: &str, expect: Expect) {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("f.txt", &lines(old))]);
    let tip = fx.commit("ann", 2000, &[("f.txt", &lines(new))]);
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    let change_idx = window.change_of(0, "f.txt").expect("f.txt changed");
    let hunks = window.hunks(0, change_idx).unwrap();
    let mut rendered = String::new();
    for hunk in hunks.iter() {
        writeln!(
            rendered,
            "-{},{} +{},{} -[{}] +[{}]",
            hunk.old_start,
            hunk.old_lines,
            hunk.new_start,
            hunk.new_lines,
            hunk.removed.join(" "),
            hunk.added.join(" ")
        )
        .unwrap();
    }
    let map = LineMap::new(&hunks);
    let n_new = new.split_whitespace().count() as u32;
    let mapped: Vec<String> = (1..=n_new)
        .map(|line| match map.to_old(line) {
            Mapped::Old(old) => format!("{line}:{old}"),
            Mapped::Added { hunk, near } => format!("{line}:+{hunk}@{near}"),
        })
        .collect();
    writeln!(rendered, "{}", mapped.join(" ")).unwrap();
    expect.assert_eq(&rendered);
}

/// A line inserted before the first line: every old line moves down by one.
#[test]
fn hunk_insertion_at_start() {
    check_hunks(
        "a b c",
        "X a b c",
        expect![[r#"
        -0,0 +1,1 -[] +[X]
        1:+0@1 2:1 3:2 4:3
    "#]],
    );
}

/// Two lines inserted in the middle, after old line 2.
#[test]
fn hunk_insertion_in_middle() {
    check_hunks(
        "a b c d",
        "a b X Y c d",
        expect![[r#"
        -2,0 +3,2 -[] +[X Y]
        1:1 2:2 3:+0@2 4:+0@2 5:3 6:4
    "#]],
    );
}

/// A line appended after the last line.
#[test]
fn hunk_insertion_at_end() {
    check_hunks(
        "a b c",
        "a b c X",
        expect![[r#"
        -3,0 +4,1 -[] +[X]
        1:1 2:2 3:3 4:+0@3
    "#]],
    );
}

/// The first two lines deleted: a pure deletion after new line 0.
#[test]
fn hunk_deletion_at_start() {
    check_hunks(
        "a b c d",
        "c d",
        expect![[r#"
        -1,2 +0,0 -[a b] +[]
        1:3 2:4
    "#]],
    );
}

/// A line deleted in the middle: lines below move up by one.
#[test]
fn hunk_deletion_in_middle() {
    check_hunks(
        "a b c d",
        "a c d",
        expect![[r#"
        -2,1 +1,0 -[b] +[]
        1:1 2:3 3:4
    "#]],
    );
}

/// The last line deleted: nothing before it moves.
#[test]
fn hunk_deletion_at_end() {
    check_hunks(
        "a b c",
        "a b",
        expect![[r#"
        -3,1 +2,0 -[c] +[]
        1:1 2:2
    "#]],
    );
}

/// The first line rewritten.
#[test]
fn hunk_replacement_at_start() {
    check_hunks(
        "a b c",
        "A b c",
        expect![[r#"
        -1,1 +1,1 -[a] +[A]
        1:+0@1 2:2 3:3
    "#]],
    );
}

/// One middle line replaced by three: lines below move down by two.
#[test]
fn hunk_replacement_in_middle_grows() {
    check_hunks(
        "a b c d",
        "a B1 B2 B3 c d",
        expect![[r#"
        -2,1 +2,3 -[b] +[B1 B2 B3]
        1:1 2:+0@2 3:+0@2 4:+0@2 5:3 6:4
    "#]],
    );
}

/// The last two lines replaced by one.
#[test]
fn hunk_replacement_at_end_shrinks() {
    check_hunks(
        "a b c d",
        "a b X",
        expect![[r#"
        -3,2 +3,1 -[c d] +[X]
        1:1 2:2 3:+0@3
    "#]],
    );
}

/// A tracked line (`d`, old 4 → new 3) between a pure deletion above it
/// (`new_lines == 0`) and a pure insertion below it (`old_lines == 0`), and
/// a line (`e`) after both: the offsets of both hunks add up.
#[test]
fn hunk_deletion_and_insertion_around_tracked_line() {
    check_hunks(
        "a b c d e",
        "a c d X e",
        expect![[r#"
        -2,1 +1,0 -[b] +[]
        -4,0 +4,1 -[] +[X]
        1:1 2:3 3:4 4:+1@4 5:5
    "#]],
    );
}

/// A pure insertion right above a tracked line and a pure deletion right
/// below it: the tracked line keeps its identity.
#[test]
fn hunk_insertion_above_deletion_below_tracked_line() {
    check_hunks(
        "a b c d",
        "a X b d",
        expect![[r#"
        -1,0 +2,1 -[] +[X]
        -3,1 +3,0 -[c] +[]
        1:1 2:+0@1 3:2 4:4
    "#]],
    );
}

/// Hunks are computed once per (commit, change) and then shared.
#[test]
fn hunks_are_cached() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("f.txt", "a\n")]);
    let tip = fx.commit("ann", 2000, &[("f.txt", "b\n")]);
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    let first = window.hunks(0, 0).unwrap();
    let second = window.hunks(0, 0).unwrap();
    assert!(Rc::ptr_eq(&first, &second));
    assert_eq!(first.len(), 1);
}

/// Renders `LineMap::range_to_old` of each new-side range for the change
/// from `old` to `new`: `start-end -> old_start-old_end`.
fn check_ranges(old: &str, new: &str, ranges: &[(u32, u32)], expect: Expect) {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("f.txt", &lines(old))]);
    let tip = fx.commit("ann", 2000, &[("f.txt", &lines(new))]);
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    let hunks = window.hunks(0, 0).unwrap();
    let map = LineMap::new(&hunks);
    let mut rendered = String::new();
    for &(start, end) in ranges {
        let (old_start, old_end) = map.range_to_old(start, end);
        writeln!(rendered, "{start}-{end} -> {old_start}-{old_end}").unwrap();
    }
    expect.assert_eq(&rendered);
}

/// Ranges over unchanged lines shift by the hunks above them; a range
/// holding a replacement widens over the replaced old lines; a range ending
/// right before a deletion does not take the deleted lines.
#[test]
fn range_to_old_shifts_and_widens() {
    // old: a b c d e f g; new: a Y1 Y2 c d g (b → Y1 Y2, e f deleted)
    check_ranges(
        "a b c d e f g",
        "a Y1 Y2 c d g",
        &[(1, 1), (4, 5), (6, 6), (2, 3), (1, 4), (3, 6)],
        expect![[r#"
            1-1 -> 1-1
            4-5 -> 3-4
            6-6 -> 7-7
            2-3 -> 2-2
            1-4 -> 1-3
            3-6 -> 2-7
        "#]],
    );
}

/// A range whose first line was inserted starts at the old line after the
/// insertion point, not at the line before it (which lies outside the
/// range); a range whose last line was inserted ends at the line before.
#[test]
fn range_to_old_with_inserted_edges() {
    // old: a b c d; new: a b X c d Y (X after old 2, Y after old 4)
    check_ranges(
        "a b c d",
        "a b X c d Y",
        &[(3, 5), (4, 6), (3, 6)],
        expect![[r#"
            3-5 -> 3-4
            4-6 -> 3-4
            3-6 -> 3-4
        "#]],
    );
}

// ---------------------------------------------------------------------------
// Bounded blame

/// Blames every line of `path` at the window's tip: `line text <- c3:2`
/// (commit and its line number in that commit's version) or
/// `line text <- before:4` (line number at the base).
fn check_blame(repo: &Repo, window: &Window<'_>, path: &str, expect: Expect) {
    let text = repo
        .file_at(window.tip, path)
        .unwrap()
        .expect("path exists at tip");
    let text = String::from_utf8(text).unwrap();
    let all: Vec<u32> = (1..=text.lines().count() as u32).collect();
    let origins = window.blame_lines(path, &all).unwrap();
    let mut rendered = String::new();
    for ((line, content), origin) in all.iter().zip(text.lines()).zip(origins) {
        let origin = match origin {
            LineOrigin::Window {
                commit_idx,
                commit,
                line,
                ..
            } => {
                assert_eq!(window.commits[commit_idx].info.id, commit);
                format!("{}:{line}", name(repo, commit))
            }
            LineOrigin::BeforeWindow { line } => format!("before:{line}"),
        };
        writeln!(rendered, "{line} {content} <- {origin}").unwrap();
    }
    expect.assert_eq(&rendered);
}

/// Checks bounded blame of every line of `path` against `git blame` over
/// the whole history: a window origin must be git's commit and line; a line
/// from before the window must come from a commit outside it (per git) and
/// read the same at the base, where the file is `base_path`.
fn cross_check_with_git(
    fx: &Fixture,
    repo: &Repo,
    window: &Window<'_>,
    path: &str,
    base_path: &str,
) {
    let text = String::from_utf8(repo.file_at(window.tip, path).unwrap().unwrap()).unwrap();
    let tip_lines: Vec<&str> = text.lines().collect();
    let all: Vec<u32> = (1..=tip_lines.len() as u32).collect();
    let origins = window.blame_lines(path, &all).unwrap();
    for (&line, origin) in all.iter().zip(origins) {
        let (git_commit, git_line) = fx.git_blame(window.tip, path, line);
        match origin {
            LineOrigin::Window {
                commit, line: ours, ..
            } => assert_eq!(
                (name(repo, commit), ours),
                (name(repo, git_commit), git_line),
                "tip line {line}: bounded blame vs git blame"
            ),
            LineOrigin::BeforeWindow { line: base_line } => {
                assert_eq!(
                    window.position(git_commit),
                    None,
                    "tip line {line}: git blames window commit {}",
                    name(repo, git_commit)
                );
                let base = window.base.expect("a line before the window needs a base");
                let base_text =
                    String::from_utf8(repo.file_at(base, base_path).unwrap().unwrap()).unwrap();
                assert_eq!(
                    base_text.lines().nth(base_line as usize - 1),
                    Some(tip_lines[line as usize - 1]),
                    "tip line {line} vs base line {base_line}"
                );
            }
        }
    }
}

/// The layered history: c1 writes eight lines, c2 rewrites `c` (before the
/// window, which starts after c2), c3 inserts X Y after `a`, c4 rewrites
/// `e`, c5 deletes `b`. Lines only moved by c3 and c5 trace back to the base
/// with their old numbers; E is c4's line 7 (c5's deletion moved it up).
#[test]
fn blame_rewrites_moves_and_older_lines() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("f.txt", &lines("a b c d e f g h"))]);
    let c2 = fx.commit("bob", 2000, &[("f.txt", &lines("a b C d e f g h"))]);
    fx.commit("cat", 3000, &[("f.txt", &lines("a X Y b C d e f g h"))]);
    fx.commit("dan", 4000, &[("f.txt", &lines("a X Y b C d E f g h"))]);
    let tip = fx.commit("eve", 5000, &[("f.txt", &lines("a X Y C d E f g h"))]);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c2),
            ..spec(tip)
        },
    )
    .unwrap();
    check_blame(
        &repo,
        &window,
        "f.txt",
        expect![[r#"
            1 a <- before:1
            2 X <- c3:2
            3 Y <- c3:3
            4 C <- before:3
            5 d <- before:4
            6 E <- c4:7
            7 f <- before:6
            8 g <- before:7
            9 h <- before:8
        "#]],
    );
    cross_check_with_git(&fx, &repo, &window, "f.txt", "f.txt");
}

/// The same history with the whole of it in the window: lines the window
/// used to call older now trace to c1 and c2, as `git blame` says.
#[test]
fn blame_back_to_root_matches_git() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("f.txt", &lines("a b c d e f g h"))]);
    fx.commit("bob", 2000, &[("f.txt", &lines("a b C d e f g h"))]);
    fx.commit("cat", 3000, &[("f.txt", &lines("a X Y b C d e f g h"))]);
    fx.commit("dan", 4000, &[("f.txt", &lines("a X Y b C d E f g h"))]);
    let tip = fx.commit("eve", 5000, &[("f.txt", &lines("a X Y C d E f g h"))]);
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    check_blame(
        &repo,
        &window,
        "f.txt",
        expect![[r#"
            1 a <- c1:1
            2 X <- c3:2
            3 Y <- c3:3
            4 C <- c2:3
            5 d <- c1:4
            6 E <- c4:7
            7 f <- c1:6
            8 g <- c1:7
            9 h <- c1:8
        "#]],
    );
    cross_check_with_git(&fx, &repo, &window, "f.txt", "f.txt");
}

/// Blamed lines may be asked in any order and repeated; each gets its own
/// origin, and a commit touching only other files is skipped.
#[test]
fn blame_lines_in_any_order() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("f.txt", &lines("a b c"))]);
    fx.commit("bob", 2000, &[("f.txt", &lines("a B c"))]);
    let tip = fx.commit("cat", 3000, &[("other.txt", "o\n")]);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    let origins = window.blame_lines("f.txt", &[3, 2, 3]).unwrap();
    let c2 = window.commits[1].info.id;
    assert_eq!(
        origins,
        [
            LineOrigin::BeforeWindow { line: 3 },
            LineOrigin::Window {
                commit_idx: 1,
                commit: c2,
                line: 2,
                created_file: false,
            },
            LineOrigin::BeforeWindow { line: 3 },
        ]
    );
}

/// A file created inside the window: lines nobody changed since are the
/// creating commit's, at their number in its version; a later rewrite wins.
#[test]
fn blame_file_created_in_window() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("other.txt", "o\n")]);
    fx.commit("bob", 2000, &[("g.txt", &lines("a b c d"))]);
    let tip = fx.commit("cat", 3000, &[("g.txt", &lines("N a b C d"))]);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    check_blame(
        &repo,
        &window,
        "g.txt",
        expect![[r#"
            1 N <- c3:1
            2 a <- c2:1
            3 b <- c2:2
            4 C <- c3:4
            5 d <- c2:4
        "#]],
    );
    // Every line comes from the window, so the base path is never read.
    cross_check_with_git(&fx, &repo, &window, "g.txt", "g.txt");
}

/// A line the file's creation wrote says so, even when the file was
/// created under another name and renamed since; a line rewritten later
/// does not.
#[test]
fn blame_knows_a_file_creation_across_a_rename() {
    let fx = Fixture::new();
    fx.commit("ann", 1000, &[("old.txt", &lines("a b c"))]);
    fx.commit_edits("bob", 2000, &[("new.txt", &lines("a b c"))], &["old.txt"]);
    let tip = fx.commit("cat", 3000, &[("new.txt", &lines("a B c"))]);
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    let created: Vec<bool> = window
        .blame_lines("new.txt", &[1, 2])
        .unwrap()
        .into_iter()
        .map(|origin| match origin {
            LineOrigin::Window { created_file, .. } => created_file,
            LineOrigin::BeforeWindow { .. } => panic!("the whole history is in the window"),
        })
        .collect();
    assert_eq!(created, [true, false]);
}

/// A file renamed inside the window (c3 moves old.txt to new.txt and edits
/// one line): blame follows it to the old path, so c2's edit of old.txt is
/// found, and older lines read the same at the base under the old name.
#[test]
fn blame_follows_rename() {
    let fx = Fixture::new();
    let c1 = fx.commit(
        "ann",
        1000,
        &[("old.txt", &lines("l1 l2 l3 l4 l5 l6 l7 l8 l9 l10"))],
    );
    fx.commit(
        "bob",
        2000,
        &[("old.txt", &lines("l1 L2 l3 l4 l5 l6 l7 l8 l9 l10"))],
    );
    fx.commit_edits(
        "cat",
        3000,
        &[("new.txt", &lines("l1 L2 l3 l4 l5 l6 l7 l8 L9 l10"))],
        &["old.txt"],
    );
    let tip = fx.commit(
        "dan",
        4000,
        &[("new.txt", &lines("l1 L2 l3 l4 L5 l6 l7 l8 L9 l10"))],
    );
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    check_blame(
        &repo,
        &window,
        "new.txt",
        expect![[r#"
            1 l1 <- before:1
            2 L2 <- c2:2
            3 l3 <- before:3
            4 l4 <- before:4
            5 L5 <- c4:5
            6 l6 <- before:6
            7 l7 <- before:7
            8 l8 <- before:8
            9 L9 <- c3:9
            10 l10 <- before:10
        "#]],
    );
    cross_check_with_git(&fx, &repo, &window, "new.txt", "old.txt");
}

// ---------------------------------------------------------------------------
// Range touches

/// Renders `range_touches` of `path` `start..=end`, newest first:
/// `c5 -[removed] +[added]` or `c1 created`.
fn check_touches(
    repo: &Repo,
    window: &Window<'_>,
    path: &str,
    (start, end): (u32, u32),
    expect: Expect,
) {
    let mut rendered = String::new();
    for touch in window.range_touches(path, start, end).unwrap() {
        let commit = &window.commits[touch.commit_idx].info.summary;
        if touch.created_file {
            writeln!(rendered, "{commit} created").unwrap();
        } else {
            writeln!(
                rendered,
                "{commit} -[{}] +[{}]",
                touch.removed.join(" "),
                touch.added.join(" ")
            )
            .unwrap();
        }
    }
    assert!(repo.file_at(window.tip, path).unwrap().is_some());
    expect.assert_eq(&rendered);
}

/// A function `fn{ … }` at tip lines 4-7, followed back through: c6 appends
/// below it and c4 inserts above it (not reported, but the range shifts),
/// c5 deletes a line inside it, c3 changes only a line after it (not
/// reported), c2 rewrites a line inside it, c1 created the file.
#[test]
fn range_touches_follow_a_function_back() {
    let fx = Fixture::new();
    fx.commit(
        "ann",
        1000,
        &[("f.txt", &lines("head fn{ one two three } tail"))],
    );
    fx.commit(
        "bob",
        2000,
        &[("f.txt", &lines("head fn{ one TWO three } tail"))],
    );
    fx.commit(
        "cat",
        3000,
        &[("f.txt", &lines("head fn{ one TWO three } TAIL"))],
    );
    fx.commit(
        "dan",
        4000,
        &[("f.txt", &lines("head use1 use2 fn{ one TWO three } TAIL"))],
    );
    fx.commit(
        "eve",
        5000,
        &[("f.txt", &lines("head use1 use2 fn{ one TWO } TAIL"))],
    );
    let tip = fx.commit(
        "fay",
        6000,
        &[("f.txt", &lines("head use1 use2 fn{ one TWO } TAIL end"))],
    );
    let repo = fx.repo();
    let window = Window::read(&repo, &spec(tip)).unwrap();
    check_touches(
        &repo,
        &window,
        "f.txt",
        (4, 7),
        expect![[r#"
            c5 -[three] +[]
            c2 -[two] +[TWO]
            c1 created
        "#]],
    );
    check_touches(
        &repo,
        &window,
        "f.txt",
        (8, 9),
        expect![[r#"
        c6 -[] +[end]
        c3 -[tail] +[TAIL]
        c1 created
    "#]],
    );
}

/// A function inserted whole by c3 right after the line c2 rewrote: c3 is
/// reported, and the walk stops there, since the function did not exist
/// before c3 (c2 only changed the line above where it would appear).
#[test]
fn range_touches_stop_where_the_range_was_inserted() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("f.txt", &lines("a b c"))]);
    fx.commit("bob", 2000, &[("f.txt", &lines("a B c"))]);
    let tip = fx.commit("cat", 3000, &[("f.txt", &lines("a B fn{ body } c"))]);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    check_touches(
        &repo,
        &window,
        "f.txt",
        (3, 5),
        expect![[r#"
        c3 -[] +[fn{ body }]
    "#]],
    );
}

/// A function whose first line (a decorator) c3 inserted right after the
/// line c2 rewrote: c2 changed only the line above the function and is not
/// reported; c4's edit to the body is.
#[test]
fn range_touches_ignore_the_line_before_an_inserted_first_line() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("f.txt", &lines("a b fn{ body } c"))]);
    fx.commit("bob", 2000, &[("f.txt", &lines("a B fn{ body } c"))]);
    fx.commit("cat", 3000, &[("f.txt", &lines("a B @deco fn{ body } c"))]);
    let tip = fx.commit("dan", 4000, &[("f.txt", &lines("a B @deco fn{ BODY } c"))]);
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    check_touches(
        &repo,
        &window,
        "f.txt",
        (3, 6),
        expect![[r#"
        c4 -[body] +[BODY]
        c3 -[] +[@deco]
    "#]],
    );
}

/// Range touches follow a rename back to the old path.
#[test]
fn range_touches_follow_rename() {
    let fx = Fixture::new();
    let c1 = fx.commit(
        "ann",
        1000,
        &[("old.txt", &lines("l1 l2 l3 l4 l5 l6 l7 l8 l9 l10"))],
    );
    fx.commit(
        "bob",
        2000,
        &[("old.txt", &lines("l1 l2 l3 L4 l5 l6 l7 l8 l9 l10"))],
    );
    let tip = fx.commit_edits(
        "cat",
        3000,
        &[("new.txt", &lines("l1 l2 l3 L4 l5 l6 l7 l8 l9 L10"))],
        &["old.txt"],
    );
    let repo = fx.repo();
    let window = Window::read(
        &repo,
        &WindowSpec {
            since: Some(c1),
            ..spec(tip)
        },
    )
    .unwrap();
    check_touches(
        &repo,
        &window,
        "new.txt",
        (3, 5),
        expect![[r#"
        c2 -[l4] +[L4]
    "#]],
    );
}

// ---------------------------------------------------------------------------
// Repo

/// A short sha, an annotated tag, a branch and `HEAD~1` all resolve to
/// their commit; a tag resolves to the commit, not the tag object.
#[test]
fn resolve_revisions() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("a.txt", "1\n")]);
    let c2 = fx.commit("ann", 2000, &[("a.txt", "2\n")]);
    let signature = Signature::new("ann", "ann@example.com", &Time::new(2000, 0)).unwrap();
    let target = fx.git.find_object(c1, None).unwrap();
    fx.git
        .tag("v1.0", &target, &signature, "release", false)
        .unwrap();
    fx.git
        .branch("topic", &fx.git.find_commit(c1).unwrap(), false)
        .unwrap();
    let repo = fx.repo();
    let short = repo.commit_info(c2).unwrap().short_id();
    assert_eq!(short.len(), 10);
    assert_eq!(repo.resolve(&short).unwrap(), c2);
    assert_eq!(repo.resolve(&c1.to_string()).unwrap(), c1);
    assert_eq!(repo.resolve("v1.0").unwrap(), c1);
    assert_eq!(repo.resolve("topic").unwrap(), c1);
    assert_eq!(repo.resolve("main").unwrap(), c2);
    assert_eq!(repo.resolve("HEAD~1").unwrap(), c1);
    assert_eq!(repo.head().unwrap(), c2);
}

/// An unknown revision is `UnknownRevision`, named in the message; so is a
/// revision that names a blob rather than a commit.
#[test]
fn resolve_unknown_revision() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("a.txt", "1\n")]);
    let repo = fx.repo();
    let error = repo.resolve("x").unwrap_err();
    assert!(
        matches!(error, RepoError::UnknownRevision { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), r#"unknown revision "x""#);
    let blob = format!("{c1}:a.txt");
    let error = repo.resolve(&blob).unwrap_err();
    assert!(
        matches!(error, RepoError::UnknownRevision { .. }),
        "{error:?}"
    );
}

/// Opening a directory that is not a repository fails with the path.
#[test]
fn open_non_repository() {
    let dir = tempfile::tempdir().unwrap();
    let error = Repo::open(dir.path()).err().expect("not a repository");
    assert!(matches!(error, RepoError::Open { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("cannot open git repository at"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

/// `HEAD` of a repository without commits is `Empty`.
#[test]
fn head_of_empty_repository() {
    let fx = Fixture::new();
    let error = fx.repo().head().unwrap_err();
    assert!(matches!(error, RepoError::Empty), "{error:?}");
    assert_eq!(error.to_string(), "repository has no commits");
}

/// `file_at` reads a file at a given commit, even one deleted later, and
/// is `None` for a missing path, a directory, or a path through a file.
#[test]
fn file_at_reads_files_only() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("src/a.txt", "one\n"), ("b.txt", "b\n")]);
    let c2 = fx.commit_edits("ann", 2000, &[("src/a.txt", "two\n")], &["b.txt"]);
    let repo = fx.repo();
    assert_eq!(
        repo.file_at(c1, "src/a.txt").unwrap().as_deref(),
        Some(&b"one\n"[..])
    );
    assert_eq!(
        repo.file_at(c2, "src/a.txt").unwrap().as_deref(),
        Some(&b"two\n"[..])
    );
    assert_eq!(
        repo.file_at(c1, "b.txt").unwrap().as_deref(),
        Some(&b"b\n"[..])
    );
    assert_eq!(repo.file_at(c2, "b.txt").unwrap(), None);
    assert_eq!(repo.file_at(c2, "src").unwrap(), None);
    assert_eq!(repo.file_at(c2, "src/missing.txt").unwrap(), None);
    assert_eq!(repo.file_at(c2, "nope/a.txt").unwrap(), None);
}

/// `tree_paths` lists every file of the commit with its full path, and no
/// directories.
#[test]
fn tree_paths_lists_files() {
    let fx = Fixture::new();
    let tip = fx.commit(
        "ann",
        1000,
        &[
            ("a.txt", "a\n"),
            ("src/b.rs", "b\n"),
            ("src/deep/c.py", "c\n"),
        ],
    );
    let mut paths = fx.repo().tree_paths(tip).unwrap();
    paths.sort();
    assert_eq!(paths, ["a.txt", "src/b.rs", "src/deep/c.py"]);
}

/// `is_ancestor` holds for a commit and itself and along history (through a
/// merge's second parent), not the other way, nor between siblings.
#[test]
fn is_ancestor_follows_history() {
    let fx = Fixture::new();
    let c1 = fx.commit("ann", 1000, &[("a.txt", "1\n")]);
    let c2 = fx.commit("ann", 2000, &[("a.txt", "2\n")]);
    let side = fx.side_commit(c1, "sid", 3000, &[("s.txt", "s\n")]);
    let merge = fx.merge(side, "ann", 4000, &[("s.txt", "s\n")]);
    let repo = fx.repo();
    assert!(repo.is_ancestor(c1, c1).unwrap());
    assert!(repo.is_ancestor(c1, c2).unwrap());
    assert!(repo.is_ancestor(side, merge).unwrap());
    assert!(!repo.is_ancestor(c2, c1).unwrap());
    assert!(!repo.is_ancestor(side, c2).unwrap());
    assert!(!repo.is_ancestor(c2, side).unwrap());
}

/// `commit_info` keeps author and committer apart and the message's first
/// line.
#[test]
fn commit_info_reads_metadata() {
    let fx = Fixture::new();
    let c1 = fx.commit_dated("ann", 500, 1500, &[("a.txt", "1\n")]);
    let info = fx.repo().commit_info(c1).unwrap();
    assert_eq!(
        (
            info.author_name.as_str(),
            info.author_email.as_str(),
            info.author_time,
            info.commit_time,
            info.summary.as_str(),
            info.n_parents
        ),
        ("ann", "ann@example.com", 500, 1500, "c1", 0)
    );
    assert_eq!(info.short_id(), c1.to_string()[..10]);
}
