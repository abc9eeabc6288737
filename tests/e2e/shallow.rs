//! The application's repository is a shallow clone (`git clone --depth 3`,
//! as CI checkouts and many deployments are): `suture diagnose` reads the
//! window down to the clone's boundary and says it stopped there, and the
//! whole local loop runs from it: the local forge's fresh bare remote is
//! seeded from the clone, the pull request is merged with `suture pr`, and
//! the incident is resolved.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tests::loop_support::{branch_head, report_crash};
use tests::serve_support::{Db, ServeHome};
use tests::{ScriptedRepo, suture_bin, suture_json};

use crate::heal::{inventory, test_command};

const PATIENCE: Duration = Duration::from_secs(180);

/// A `git clone --depth <depth>` of `repo` (with a work tree) in its own
/// tempdir: the newest `depth` commits, the oldest a shallow boundary.
fn shallow_clone(repo: &ScriptedRepo, depth: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("suture-e2e-shallow-")
        .tempdir()
        .unwrap();
    let clone = dir.path().join("inventory");
    let output = Command::new("git")
        .args(["clone", "--quiet", "--depth", &depth.to_string()])
        .arg(format!("file://{}", repo.path().display()))
        .arg(&clone)
        .env_remove("GIT_DIR")
        .output()
        .expect("running git clone");
    assert!(
        output.status.success(),
        "git clone failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(clone.join(".git/shallow").exists());
    (dir, clone)
}

/// The commit `rev` names in the full repository.
fn rev(repo: &ScriptedRepo, rev: &str) -> String {
    git2::Repository::open(repo.path())
        .unwrap()
        .revparse_single(rev)
        .unwrap()
        .id()
        .to_string()
}

/// `suture diagnose --json` in a depth-3 clone of the inventory: the
/// culprit (HEAD~1) is found, the window holds the two commits above the
/// boundary (HEAD~2, the base), and the report says the clone cut it.
#[test]
fn diagnose_in_a_shallow_clone_stops_at_the_boundary() {
    let (repo, culprit) = inventory();
    let (_dir, clone) = shallow_clone(&repo, 3);
    let event =
        tests::capture_python_event(&clone, "main.py", None, &clone.join(".git/captured.json"));
    let event_path = clone.join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();

    let diagnosis = suture_json(&[
        "diagnose",
        "--repo",
        clone.to_str().unwrap(),
        "--event",
        event_path.to_str().unwrap(),
    ]);

    let window = &diagnosis["window"];
    assert_eq!(window["commits"], 2, "{diagnosis:#}");
    assert_eq!(window["shallow"], true, "{diagnosis:#}");
    assert_eq!(window["truncated"], false);
    let boundary = rev(&repo, "HEAD~2");
    assert_eq!(window["base"], boundary.as_str());
    let note = window["note"].as_str().unwrap();
    assert!(note.contains(&boundary[..10]), "{note}");
    assert_eq!(diagnosis["culprit"], culprit.as_str(), "{diagnosis:#}");
}

fn pr(home: &ServeHome, args: &[&str]) -> Output {
    let output = Command::new(suture_bin())
        .arg("pr")
        .args(args)
        .arg("--config")
        .arg(home.dir.path().join("suture.toml"))
        .env_remove("SUTURE_DATABASE_URL")
        .output()
        .expect("running suture pr");
    assert!(
        output.status.success(),
        "suture pr {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The content of `path` on `branch` of the bare repository `remote`.
fn file_on(remote: &Path, branch: &str, path: &str) -> String {
    let repo = git2::Repository::open_bare(remote).unwrap();
    let head = branch_head(remote, branch).expect("the branch exists");
    let blob = repo
        .find_commit(git2::Oid::from_str(&head).unwrap())
        .unwrap()
        .tree()
        .unwrap()
        .get_path(Path::new(path))
        .unwrap()
        .to_object(&repo)
        .unwrap()
        .peel_to_blob()
        .unwrap();
    String::from_utf8_lossy(blob.content()).into_owned()
}

/// The local loop from a depth-3 clone: proposed (not failed on the push),
/// the fresh bare remote marked shallow at the boundary with `main` at the
/// deployed revision, the merge lands the fix, and the incident resolves.
#[test]
fn local_loop_from_a_shallow_clone() {
    let (repo, _culprit) = inventory();
    let (_dir, clone) = shallow_clone(&repo, 3);
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n[verify]\nquiet_seconds = 3\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\n",
        home.data_dir().display(),
        clone.display(),
        test_command()
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, &clone, "main.py", "1.0.0");

    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "failed", "unfixed"].contains(&incident["state"].as_str().unwrap_or(""))
    });

    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let remote = home.data_dir().join("forge/inventory.git");
    assert_eq!(
        std::fs::read_to_string(remote.join("shallow")).unwrap(),
        format!("{}\n", rev(&repo, "HEAD~2"))
    );
    assert_eq!(
        branch_head(&remote, "main").as_deref(),
        Some(rev(&repo, "HEAD").as_str())
    );
    let number = proposed["fixes"][0]["pr_number"]
        .as_i64()
        .unwrap()
        .to_string();
    let merged = String::from_utf8_lossy(&pr(&home, &["merge", &number]).stdout).into_owned();
    assert!(merged.contains("merged"), "{merged}");
    assert!(
        file_on(&remote, "main", "inventory/stock.py").contains("if not text:"),
        "main has the fix"
    );
    let resolved = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        incident["state"] == "resolved" || incident["state"] == "failed"
    });
    assert_eq!(resolved["state"], "resolved", "{resolved:#}");
}
