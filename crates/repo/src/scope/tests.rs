//! Tests for the scope guard against real git repositories in tempdirs.
//!
//! Every fixture repository holds a few source files, a CI workflow, a
//! `.env`, an executable script and two symlinks pointing outside the
//! repository (`vendor/` at a directory, `notes.txt` at a file). Every call
//! to `check` asserts that neither the work tree nor the outside directory
//! changed by a byte; accepted patches are then applied and the change to
//! the tree is snapshotted.

mod accept;
mod apply;
mod edits;
mod malformed;
mod policy;
mod reject;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use expect_test::Expect;
use git2::{IndexAddOption, Repository, Signature};

use super::{CheckedPatch, ScopePolicy, ScopeViolation, apply, check};

const LIB_RS: &str = "\
pub fn add(a: i32, b: i32) -> i32 {
    a - b
}

pub fn double(x: i32) -> i32 {
    x * 2
}
";

/// A committed repository and a directory outside it that its symlinks
/// point into.
struct Fixture {
    repo_dir: tempfile::TempDir,
    outside_dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let repo_dir = tempfile::tempdir().expect("creating the repository tempdir");
        let outside_dir = tempfile::tempdir().expect("creating the outside tempdir");
        fs::write(outside_dir.path().join("secret.txt"), "outside\n").expect("writing outside");
        let fixture = Fixture {
            repo_dir,
            outside_dir,
        };
        fixture.write("README.md", "# demo\n\nA demo project.\n");
        fixture.write("src/lib.rs", LIB_RS);
        fixture.write("src/util.rs", "pub fn id(x: i32) -> i32 {\n    x\n}\n");
        fixture.write(".github/workflows/ci.yml", "on: push\njobs: {}\n");
        fixture.write(".env", "API_TOKEN=hunter2\n");
        fixture.write("scripts/run.sh", "#!/bin/sh\necho run\n");
        fixture.set_executable("scripts/run.sh");
        std::os::unix::fs::symlink(fixture.outside_dir.path(), fixture.root().join("vendor"))
            .expect("linking vendor");
        std::os::unix::fs::symlink(
            fixture.outside_dir.path().join("secret.txt"),
            fixture.root().join("notes.txt"),
        )
        .expect("linking notes.txt");
        fixture.commit_all();
        fixture
    }

    fn root(&self) -> &Path {
        self.repo_dir.path()
    }

    fn write(&self, path: &str, content: &str) {
        let full_path = self.root().join(path);
        fs::create_dir_all(full_path.parent().expect("a parent")).expect("creating directories");
        fs::write(full_path, content).expect("writing a fixture file");
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.root().join(path)).expect("reading a fixture file")
    }

    fn set_executable(&self, path: &str) {
        fs::set_permissions(self.root().join(path), fs::Permissions::from_mode(0o755))
            .expect("making a file executable");
    }

    fn commit_all(&self) {
        let git = Repository::init(self.root()).expect("initialising a repository");
        let mut index = git.index().expect("opening the index");
        index
            .add_all(["*"], IndexAddOption::DEFAULT | IndexAddOption::FORCE, None)
            .expect("adding files");
        index.write().expect("writing the index");
        let tree = git
            .find_tree(index.write_tree().expect("writing a tree"))
            .expect("finding the tree");
        let signature = Signature::now("fixture", "fixture@example.com").expect("a signature");
        git.commit(Some("HEAD"), &signature, &signature, "c1", &tree, &[])
            .expect("committing");
    }

    /// Every file, directory and symlink of the work tree (without `.git`)
    /// and of the outside directory.
    fn snapshot(&self) -> BTreeMap<String, Entry> {
        let mut entries = BTreeMap::new();
        walk(self.root(), "", &mut entries);
        walk(self.outside_dir.path(), "<outside>/", &mut entries);
        entries
    }

    /// `check` with `policy`, asserting it changed nothing.
    fn check_with(
        &self,
        policy: &ScopePolicy,
        patch: &str,
    ) -> Result<CheckedPatch, ScopeViolation> {
        let before = self.snapshot();
        let outcome = check(policy, self.root(), patch);
        assert_eq!(before, self.snapshot(), "check changed the tree");
        outcome
    }

    fn check(&self, patch: &str) -> Result<CheckedPatch, ScopeViolation> {
        self.check_with(&ScopePolicy::default(), patch)
    }

    /// `apply`, then the change it made to the tree (or the refusal, after
    /// asserting the tree is unchanged).
    fn apply(&self, patch: &CheckedPatch) -> String {
        let before = self.snapshot();
        match apply(self.root(), patch) {
            Ok(()) => render_tree_change(&before, &self.snapshot()),
            Err(violation) => {
                assert_eq!(before, self.snapshot(), "a failed apply changed the tree");
                render_violation(&violation)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File { executable: bool, content: Vec<u8> },
    Dir,
    Symlink(PathBuf),
}

fn walk(dir: &Path, prefix: &str, entries: &mut BTreeMap<String, Entry>) {
    let mut children: Vec<_> = fs::read_dir(dir)
        .expect("listing a directory")
        .map(|child| child.expect("reading a directory entry"))
        .collect();
    children.sort_by_key(|child| child.file_name());
    for child in children {
        let name = format!("{prefix}{}", child.file_name().to_string_lossy());
        if name == ".git" {
            continue;
        }
        let meta = fs::symlink_metadata(child.path()).expect("reading metadata");
        let entry = if meta.file_type().is_symlink() {
            Entry::Symlink(fs::read_link(child.path()).expect("reading a link"))
        } else if meta.is_dir() {
            walk(&child.path(), &format!("{name}/"), entries);
            Entry::Dir
        } else {
            Entry::File {
                executable: meta.permissions().mode() & 0o100 != 0,
                content: fs::read(child.path()).expect("reading a file"),
            }
        };
        entries.insert(name, entry);
    }
}

/// One line per added, removed or changed path, with the new content of
/// files.
fn render_tree_change(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> String {
    let mut out = String::new();
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let (what, entry) = match (before.get(path), after.get(path)) {
            (Some(old), Some(new)) if old == new => continue,
            (Some(_), Some(new)) => ("changed", Some(new)),
            (None, Some(new)) => ("added", Some(new)),
            (Some(_), None) => ("removed", None),
            (None, None) => continue,
        };
        match entry {
            Some(Entry::File {
                executable,
                content,
            }) => {
                let mode = if *executable { " (executable)" } else { "" };
                let _ = writeln!(out, "{what} {path}{mode}:");
                for line in String::from_utf8_lossy(content).lines() {
                    let _ = writeln!(out, "  |{line}");
                }
            }
            Some(other) => {
                let _ = writeln!(out, "{what} {path}: {other:?}");
            }
            None => {
                let _ = writeln!(out, "{what} {path}");
            }
        }
    }
    out
}

fn render_violation(violation: &ScopeViolation) -> String {
    format!("{}: {violation}", violation.kind())
}

fn render_checked(checked: &CheckedPatch) -> String {
    let mut out = String::new();
    for file in &checked.files {
        let (status, path) = match (&file.old_path, &file.new_path) {
            (None, Some(new)) => ("A", new.clone()),
            (Some(old), None) => ("D", old.clone()),
            (Some(old), Some(new)) if old != new => ("R", format!("{old} -> {new}")),
            (_, new) => ("M", new.clone().unwrap_or_default()),
        };
        let _ = writeln!(out, "{status} {path} +{} -{}", file.added, file.removed);
    }
    out.push_str("---\n");
    out.push_str(&checked.text);
    out
}

/// Checks `patch` (dedented) against a fresh fixture with the default
/// policy and snapshots the verdict: the files and canonical text, or the
/// violation.
fn check_patch(patch: &str, expect: Expect) {
    check_patch_with(&ScopePolicy::default(), patch, expect);
}

fn check_patch_with(policy: &ScopePolicy, patch: &str, expect: Expect) {
    let fixture = Fixture::new();
    let rendered = match fixture.check_with(policy, &dedent(patch)) {
        Ok(checked) => render_checked(&checked),
        Err(violation) => render_violation(&violation),
    };
    expect.assert_eq(&rendered);
}

/// Checks and applies `patch` on a fresh fixture; snapshots the verdict and
/// the change to the tree.
fn check_and_apply(patch: &str, expect: Expect) {
    let fixture = Fixture::new();
    let rendered = match fixture.check(&dedent(patch)) {
        Ok(checked) => format!(
            "{}===\n{}",
            render_checked(&checked),
            fixture.apply(&checked)
        ),
        Err(violation) => render_violation(&violation),
    };
    expect.assert_eq(&rendered);
}

/// Removes the leading newline and the common indentation, so patches can
/// be written indented in the test source. Context lines keep their one
/// leading space.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    // Split on '\n' only: `str::lines` would also eat a '\r' under test.
    let lines: Vec<&str> = text.split('\n').collect();
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or_default());
        out.push('\n');
    }
    // The closing quote's indentation (or the final newline) leaves a last
    // empty line.
    out.pop();
    out
}
