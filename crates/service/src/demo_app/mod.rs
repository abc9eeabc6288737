//! The demo application `suture demo` heals: a small Python shop (standard
//! library only) whose git history holds a real-looking regression.
//!
//! Four commits over the last twelve days, so the default diagnosis window
//! holds them all: the shop, an innocent catalog change, the culprit (a
//! refactor of discount-code parsing that drops the blank-code case the
//! checkout form sends) and an innocent README change. The suite stays
//! green at every commit: nothing tests a blank code, so the crash is
//! reproduced from the event's frame locals (a replay test), which is what
//! makes the fix `proven` rather than merely plausible.
//!
//! The application reports its crash with `crash_report.py`, a stdlib
//! client of the Sentry envelope protocol that sends what sentry-sdk sends
//! (in-app frames with context lines and local variables): the demo needs
//! no SDK installed.

use std::path::Path;

use repo::git2::{Repository, RepositoryInitOptions, Signature, Time};

/// Why the demo application could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoAppError {
    /// A file or directory could not be written.
    #[error("writing {path}")]
    Io {
        /// What was being written.
        path: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// git refused a step of the history.
    #[error("writing the demo's git history")]
    Git(#[from] repo::git2::Error),
}

/// The files one commit writes: repository path and content.
type Files<'a> = &'a [(&'a str, &'a str)];

const PRICING_V1: &str = include_str!("app/pricing_v1.py");
const PRICING_V2: &str = include_str!("app/pricing_v2.py");
const CATALOG_V1: &str = include_str!("app/catalog_v1.py");
const CATALOG_V2: &str = include_str!("app/catalog_v2.py");
const README_V1: &str = include_str!("app/README_v1.md");
const README_V2: &str = include_str!("app/README_v2.md");

const ANA: (&str, &str) = ("Ana Lima", "ana@teashop.example");
const BEN: (&str, &str) = ("Ben Ito", "ben@teashop.example");
const CAL: (&str, &str) = ("Cal Reyes", "cal@teashop.example");

const DAY: i64 = 86_400;

/// The command the demo's suite runs with, for `python`: unittest, which
/// comes with Python (pytest would be one more thing to install).
pub fn test_command(python: &str) -> String {
    format!("{python} -m unittest discover -s tests -t . -q")
}

/// The culprit's subject, as the diagnosis should name it.
pub const CULPRIT_SUBJECT: &str = "pricing: accept codes written save-10";

/// Creates the application in `dir` (which must not exist or be empty) with
/// its history on `main`, the last commit `now` minus a day; returns the
/// HEAD commit's id, the release the application reports.
pub fn create(dir: &Path, now: i64) -> Result<String, DemoAppError> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head("main");
    let git = Repository::init_opts(dir, &options)?;
    let history: [((&str, &str), i64, &str, Files<'_>); 4] = [
        (
            ANA,
            12,
            "Shop: catalog, pricing and the nightly checkout",
            &[
                ("shop/__init__.py", ""),
                ("shop/catalog.py", CATALOG_V1),
                ("shop/pricing.py", PRICING_V1),
                ("shop/checkout.py", include_str!("app/checkout.py")),
                ("tests/__init__.py", ""),
                ("tests/test_pricing.py", include_str!("app/test_pricing.py")),
                (
                    "tests/test_checkout.py",
                    include_str!("app/test_checkout.py"),
                ),
                ("crash_report.py", include_str!("app/crash_report.py")),
                ("main.py", include_str!("app/main.py")),
                ("orders.json", include_str!("app/orders.json")),
                ("README.md", README_V1),
                (".gitignore", "__pycache__/\n"),
            ],
        ),
        (
            CAL,
            8,
            "catalog: add the tea sampler",
            &[("shop/catalog.py", CATALOG_V2)],
        ),
        (BEN, 5, CULPRIT_SUBJECT, &[("shop/pricing.py", PRICING_V2)]),
        (
            ANA,
            1,
            "README: how the nightly checkout reports crashes",
            &[("README.md", README_V2)],
        ),
    ];
    let mut head = String::new();
    for ((name, email), days_ago, message, files) in history {
        head = commit(
            &git,
            dir,
            (name, email),
            now - days_ago * DAY,
            message,
            files,
        )?
        .to_string();
    }
    Ok(head)
}

fn commit(
    git: &Repository,
    dir: &Path,
    (name, email): (&str, &str),
    time: i64,
    message: &str,
    files: Files<'_>,
) -> Result<repo::git2::Oid, DemoAppError> {
    let mut index = git.index()?;
    for (path, content) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DemoAppError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&full, content).map_err(|source| DemoAppError::Io {
            path: full.display().to_string(),
            source,
        })?;
        index.add_path(Path::new(path))?;
    }
    index.write()?;
    let tree = git.find_tree(index.write_tree()?)?;
    let signature = Signature::new(name, email, &Time::new(time, 0))?;
    let parent = git.head().ok().and_then(|head| head.peel_to_commit().ok());
    let parents: Vec<&repo::git2::Commit<'_>> = parent.iter().collect();
    Ok(git.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The history is four commits on `main`, the culprit third, and the
    /// work tree holds the last version of each file.
    #[test]
    fn the_history_ends_with_the_regression_two_commits_back() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000;
        let head = create(dir.path(), now).unwrap();
        let git = Repository::open(dir.path()).unwrap();
        let mut walk = git.revwalk().unwrap();
        walk.push_head().unwrap();
        let subjects: Vec<String> = walk
            .map(|oid| {
                let commit = git.find_commit(oid.unwrap()).unwrap();
                commit.summary().unwrap().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(subjects.len(), 4, "{subjects:?}");
        assert_eq!(subjects[1], CULPRIT_SUBJECT);
        assert_eq!(git.head().unwrap().shorthand().unwrap(), "main");
        assert_eq!(
            git.head()
                .unwrap()
                .peel_to_commit()
                .unwrap()
                .id()
                .to_string(),
            head
        );
        let pricing = std::fs::read_to_string(dir.path().join("shop/pricing.py")).unwrap();
        assert_eq!(pricing, PRICING_V2);
        assert!(
            PRICING_V1.contains("if not code:") && !PRICING_V2.contains("if not code:"),
            "the culprit drops the blank-code case"
        );
        let statuses = git.statuses(None).unwrap();
        assert!(statuses.is_empty(), "the work tree is clean");
    }
}
