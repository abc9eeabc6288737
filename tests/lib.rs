//! Support for suture's end-to-end tests: scripted git histories in temp
//! dirs, real `sentry-sdk` events, and running the real `suture` binary.
//! The scenarios themselves are in `e2e/`.

// End-to-end tests run the real binary and the real SDKs.
#![allow(clippy::disallowed_methods)]

pub mod loop_support;
pub mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::{Oid, Repository, Signature, Time};
use tempfile::TempDir;

/// A git repository in a temp dir whose history a test writes commit by commit.
pub struct ScriptedRepo {
    dir: TempDir,
    git: Repository,
}

/// One day in seconds.
pub const DAY: i64 = 86_400;

impl ScriptedRepo {
    /// An empty repository on branch `main`.
    pub fn new() -> ScriptedRepo {
        let dir = tempfile::Builder::new()
            .prefix("suture-e2e-")
            .tempdir()
            .expect("temp dir");
        let mut options = git2::RepositoryInitOptions::new();
        options.initial_head("main");
        let git = Repository::init_opts(dir.path(), &options).expect("git init");
        ScriptedRepo { dir, git }
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `files` (`None` deletes) and commits them as `author`
    /// (`"Name <email>"`) at Unix time `time`.
    pub fn commit(
        &self,
        author: &str,
        time: i64,
        message: &str,
        files: &[(&str, Option<&str>)],
    ) -> Oid {
        let (name, email) = author
            .split_once(" <")
            .map(|(n, e)| (n, e.trim_end_matches('>')))
            .expect("author as Name <email>");
        let mut index = self.git.index().expect("index");
        for (path, content) in files {
            let full = self.path().join(path);
            match content {
                Some(content) => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, content).unwrap();
                    index.add_path(Path::new(path)).unwrap();
                }
                None => {
                    std::fs::remove_file(&full).unwrap();
                    index.remove_path(Path::new(path)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = self.git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = Signature::new(name, email, &Time::new(time, 0)).unwrap();
        let parents: Vec<git2::Commit<'_>> = self
            .git
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        self.git
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parent_refs,
            )
            .unwrap()
    }

    /// A file of the work tree as last committed by the script.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).expect("file of the scripted repo")
    }

    /// `HEAD`'s commit id.
    pub fn head(&self) -> Oid {
        self.git.head().unwrap().peel_to_commit().unwrap().id()
    }

    /// Whether the work tree and index are clean.
    pub fn is_clean(&self) -> bool {
        self.git
            .statuses(None)
            .unwrap()
            .iter()
            .all(|s| s.status().is_ignored())
    }
}

impl Default for ScriptedRepo {
    fn default() -> ScriptedRepo {
        ScriptedRepo::new()
    }
}

/// The `suture` binary of this build (`target/<profile>/suture`), built by
/// the test command before the tests run.
pub fn suture_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SUTURE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join(format!("suture{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p suture`), as the README's test command does",
        bin.display()
    );
    bin
}

/// Runs `suture` with `args`.
pub fn suture(args: &[&str]) -> Output {
    Command::new(suture_bin())
        .args(args)
        .output()
        .expect("running suture")
}

/// Runs `suture` with `args` and `--json`, expecting exit 0 and JSON on stdout.
pub fn suture_json(args: &[&str]) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = suture(&all);
    assert!(
        output.status.success(),
        "suture {args:?} failed with {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "suture printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The Python interpreter that has `sentry-sdk`: `SUTURE_TEST_PYTHON`, set
/// by the test command to its venv, else `python3`.
pub fn python() -> String {
    std::env::var("SUTURE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs `program` (a path inside `cwd`) under the real `sentry-sdk` and
/// returns the event JSON it reported, written to `out`.
pub fn capture_python_event(
    cwd: &Path,
    program: &str,
    release: Option<&str>,
    out: &Path,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/capture_event.py");
    let mut command = Command::new(python());
    command.arg(&script).arg(program).arg(out).current_dir(cwd);
    if let Some(release) = release {
        command.env("SUTURE_TEST_RELEASE", release);
    }
    let output = command.output().expect("running python");
    assert!(
        output.status.success(),
        "capturing an event with sentry-sdk failed (is sentry-sdk installed? the README's test command installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out).expect("event written");
    serde_json::from_str(&text).expect("event JSON")
}

/// Runs the Node module `program` (a path inside `cwd`) under the real
/// `@sentry/node` and returns the event it reported, written to `out`.
/// `SUTURE_TEST_NODE_MODULES` (set by the test command) holds the SDK.
pub fn capture_node_event(
    cwd: &Path,
    program: &str,
    release: Option<&str>,
    out: &Path,
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/capture_event.mjs");
    let modules = std::env::var("SUTURE_TEST_NODE_MODULES").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/test-node/node_modules")
            .display()
            .to_string()
    });
    let mut command = Command::new("node");
    command
        .arg("--no-warnings")
        .arg(&script)
        .arg(program)
        .arg(out)
        .current_dir(cwd)
        .env("NODE_PATH", &modules);
    if let Some(release) = release {
        command.env("SUTURE_TEST_RELEASE", release);
    }
    let output = command.output().expect("running node");
    assert!(
        output.status.success(),
        "capturing an event with @sentry/node failed (the README's test command installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).expect("event written")).expect("event JSON")
}

/// A path under the shared fixtures directory that sits beside the repository.
pub fn shared_fixture(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(relative);
    assert!(path.exists(), "fixture {} is missing", path.display());
    path
}
