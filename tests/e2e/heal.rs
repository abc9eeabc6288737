//! `suture heal` end to end: a small Python project whose tests run with the
//! standard library, a bad commit among innocent ones, the real `sentry-sdk`
//! event of the crash, and the fix proven in bubblewrap.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tests::{DAY, ScriptedRepo, capture_python_event, python, suture_bin};

const STOCK: &str = r#""""Stock levels."""


def parse_quantity(text):
    """'3' -> 3; an empty field means none."""
    text = text.strip()
    if not text:
        return 0
    return int(text)


def restock(levels, item, text):
    levels[item] = levels.get(item, 0) + parse_quantity(text)
    return levels
"#;

const TESTS: &str = r#"import unittest

from inventory.stock import parse_quantity, restock


class StockTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(parse_quantity(" 3 "), 3)

    def test_empty_field_is_zero(self):
        self.assertEqual(parse_quantity(""), 0)

    def test_restock(self):
        self.assertEqual(restock({"apple": 1}, "apple", "2"), {"apple": 3})
"#;

const MAIN: &str = "from inventory.stock import restock\n\n\ndef nightly():\n    return restock({}, \"apple\", \"\")\n\n\nnightly()\n";

const ANA: &str = "Ana Lima <ana@inventory.test>";
const BEN: &str = "Ben Ito <ben@inventory.test>";
const CAL: &str = "Cal Reyes <cal@inventory.test>";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The project with a culprit (a removed guard) between innocent commits
/// that touch the same file; returns the repo and the culprit.
pub(crate) fn inventory() -> (ScriptedRepo, String) {
    let repo = ScriptedRepo::new();
    repo.commit(
        ANA,
        now() - 40 * DAY,
        "Initial inventory",
        &[
            ("inventory/__init__.py", Some("")),
            ("inventory/stock.py", Some(STOCK)),
            ("tests/__init__.py", Some("")),
            ("tests/test_stock.py", Some(TESTS)),
            ("main.py", Some(MAIN)),
            ("README.md", Some("# inventory\n")),
            (
                ".github/workflows/ci.yml",
                Some("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"),
            ),
        ],
    );
    let with_total = format!("{STOCK}\n\ndef total(levels):\n    return sum(levels.values())\n");
    repo.commit(
        CAL,
        now() - 6 * DAY,
        "stock: add total",
        &[("inventory/stock.py", Some(&with_total))],
    );
    let bad = with_total.replace("    if not text:\n        return 0\n", "");
    let culprit = repo.commit(
        BEN,
        now() - 3 * DAY,
        "stock: simplify quantity parsing",
        &[("inventory/stock.py", Some(&bad))],
    );
    repo.commit(
        ANA,
        now() - DAY,
        "docs: usage",
        &[("README.md", Some("# inventory\n\nRun main.py nightly.\n"))],
    );
    (repo, culprit.to_string())
}

/// The rung named `name` of a heal report.
pub(crate) fn rung<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["rungs"]
        .as_array()
        .and_then(|rungs| rungs.iter().find(|rung| rung["rung"] == name))
        .unwrap_or_else(|| panic!("no {name} rung in {report:#}"))
}

/// The standard-library test command, with an interpreter that works inside
/// the sandbox (an absolute path, not a shim that needs the user's HOME).
pub(crate) fn test_command() -> String {
    format!("{} -m unittest discover -s tests -t . -q", python())
}

fn heal(
    repo: &ScriptedRepo,
    event: &Value,
    out: &Path,
    extra_env: &[(&str, &str)],
    extra_args: &[&str],
) -> (Option<i32>, Value) {
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let mut command = Command::new(suture_bin());
    command
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", &test_command(), "--out"])
        .arg(out)
        .arg("--json")
        .args(extra_args)
        .env_remove("SUTURE_LLM_BASE_URL")
        .env_remove("SUTURE_LLM_MODEL");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "no report ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

pub(crate) fn crash(repo: &ScriptedRepo) -> Value {
    let out = repo.path().join(".git/captured.json");
    capture_python_event(repo.path(), "main.py", Some(&repo.head().to_string()), &out)
}

/// The culprit is diagnosed, reverted onto HEAD, and the revert is proven:
/// the suite fails before and passes after, in bubblewrap. The user's
/// checkout is untouched and no worktree is left behind.
#[test]
fn revert_of_the_culprit_is_proven_in_bubblewrap() {
    let (repo, culprit) = inventory();
    let head = repo.head();
    let event = crash(&repo);
    assert_eq!(event["exception"]["values"][0]["type"], "ValueError");
    let out = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let scratch_path = scratch.path().to_str().unwrap();

    let (code, report) = heal(&repo, &event, out.path(), &[("TMPDIR", scratch_path)], &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven");
    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["sandbox"], "bubblewrap");
    assert_ne!(report["tests"]["baseline"]["exit"], 0);
    assert_eq!(report["tests"]["patched"]["exit"], 0);
    assert_eq!(report["tests"]["patched"]["backend"], "bubblewrap");
    assert_eq!(rung(&report, "revert")["status"], "proven");
    // The culprit is one hunk: there is nothing to keep, so no partial revert.
    assert_eq!(rung(&report, "partial_revert")["status"], "skipped");
    assert_eq!(rung(&report, "llm")["status"], "skipped");
    // The suite's own failing test reproduces the error, and reverting the
    // culprit turns it green: the culprit is confirmed by experiment.
    assert_eq!(report["reproduction"]["kind"], "existing", "{report:#}");
    assert_eq!(
        report["reproduction"]["tests"][0]["name"],
        "tests.test_stock.StockTest.test_empty_field_is_zero"
    );
    assert_eq!(report["reproduction"]["with_fix"]["exit"], 0);
    assert_eq!(report["culprit_confirmed_by"], "reproduction");
    assert_eq!(
        report["diagnosis"]["suspects"][0]["evidence"][0]["kind"],
        "reproduction"
    );

    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    assert!(
        patch.contains("+    if not text:\n+        return 0\n"),
        "{patch}"
    );
    assert!(
        !patch.contains("def total"),
        "only the culprit's change is undone: {patch}"
    );
    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        markdown.contains("Revert the commit that broke it"),
        "{markdown}"
    );
    assert!(markdown.contains(&culprit), "{markdown}");
    assert!(
        markdown.contains("The production error is reproduced (`existing`)"),
        "{markdown}"
    );
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, report);

    assert!(repo.is_clean());
    assert_eq!(repo.head(), head);
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "worktrees are removed: {left:?}");
}

/// Without a confident culprit the ladder skips the revert, finds no LLM,
/// and escalates with exit 1, writing the report but no fix.
#[test]
fn no_culprit_and_no_llm_escalates() {
    let (repo, _) = inventory();
    let event = crash(&repo);
    let out = tempfile::tempdir().unwrap();
    let head = repo.head().to_string();

    let (code, report) = heal(&repo, &event, out.path(), &[], &["--since", &head]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["outcome"], "escalated");
    assert_eq!(report["strategy"], Value::Null);
    assert_eq!(report["rungs"][0]["status"], "skipped");
    assert_eq!(
        rung(&report, "llm")["reason"],
        "no LLM endpoint is configured"
    );
    assert_eq!(rung(&report, "escalate")["status"], "escalated");
    assert!(!out.path().join("fix.patch").exists());
    assert!(out.path().join("report.md").exists());
}

/// A secret in suture's own environment reaches neither the sandbox (the
/// test command prints its environment), nor the report, nor the patch.
#[test]
fn host_secrets_stay_out_of_the_sandbox_and_the_report() {
    let (repo, _) = inventory();
    let event = crash(&repo);
    let out = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-planted-value-4242";
    let command = format!("env; {}", test_command());

    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let output = Command::new(suture_bin())
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", &command, "--out"])
        .arg(out.path())
        .env("SUTURE_FAKE_SECRET", secret)
        .env("GITHUB_TOKEN", secret)
        .env_remove("SUTURE_LLM_BASE_URL")
        .output()
        .unwrap();
    // suture reads no structured results from a compound command, so the
    // error is not reproduced and the revert is only plausible (exit 1).
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    assert!(report.contains("\"outcome\": \"plausible\""), "{report}");
    assert!(
        report.contains("PATH="),
        "the command's env output is in the report: {report}"
    );
    for name in ["report.json", "report.md", "fix.patch"] {
        let text = std::fs::read_to_string(out.path().join(name)).unwrap();
        assert!(!text.contains(secret), "{name} leaks the secret");
        assert!(
            !text.contains("GITHUB_TOKEN"),
            "{name} shows the token variable"
        );
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
}
