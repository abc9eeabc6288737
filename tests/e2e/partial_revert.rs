//! The partial revert rung end to end: culprits that mix the breaking change
//! with wanted work, healed by `suture heal` in bubblewrap with the suite's
//! own failing test as the reproduction. Only the hunks the reproduction
//! needs undone are undone; the rest of the commit stays.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tests::{DAY, ScriptedRepo, suture_bin};

use super::heal::{crash, rung, test_command};

const ANA: &str = "Ana Lima <ana@inventory.test>";
const BEN: &str = "Ben Ito <ben@inventory.test>";

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

const GUARD: &str = "    if not text:\n        return 0\n";

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

/// The feature that comes in the same commit as the broken guard.
const REPORT: &str = r#""""Daily stock report."""


def summary(levels):
    rows = [f"{item}: {count}" for item, count in sorted(levels.items())]
    return "\n".join(rows)
"#;

const REPORT_TESTS: &str = r#"import unittest

from inventory.report import summary


class ReportTest(unittest.TestCase):
    def test_summary(self):
        self.assertEqual(summary({"pear": 2, "apple": 1}), "apple: 1\npear: 2")
"#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A project whose first commit has `stock` as `inventory/stock.py` (and
/// `extra` files), then `culprit`'s files three days ago, then `later`'s a
/// day ago when given. Returns the repo and the culprit.
fn project(
    stock: &str,
    tests: &str,
    main: &str,
    extra: &[(&str, Option<&str>)],
    culprit: &[(&str, Option<&str>)],
    later: &[(&str, Option<&str>)],
) -> (ScriptedRepo, String) {
    let repo = ScriptedRepo::new();
    let mut first = vec![
        ("inventory/__init__.py", Some("")),
        ("inventory/stock.py", Some(stock)),
        ("tests/__init__.py", Some("")),
        ("tests/test_stock.py", Some(tests)),
        ("main.py", Some(main)),
    ];
    first.extend_from_slice(extra);
    repo.commit(ANA, now() - 40 * DAY, "Initial inventory", &first);
    let culprit = repo.commit(
        BEN,
        now() - 3 * DAY,
        "stock: report, and simpler parsing",
        culprit,
    );
    if !later.is_empty() {
        repo.commit(ANA, now() - DAY, "stock: later edits", later);
    }
    (repo, culprit.to_string())
}

/// Runs `suture heal` on the crash; the exit code and report.json.
fn heal(repo: &ScriptedRepo, out: &Path) -> (Option<i32>, Value) {
    let event = crash(repo);
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let output = Command::new(suture_bin())
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", &test_command(), "--out"])
        .arg(out)
        .arg("--json")
        .env_remove("SUTURE_LLM_BASE_URL")
        .env_remove("SUTURE_LLM_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "no report ({error}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

/// Applies `fix.patch` to the user's checkout, as a reviewer merging it
/// would.
fn apply_fix(repo: &ScriptedRepo, out: &Path) {
    let status = Command::new("git")
        .arg("-C")
        .arg(repo.path())
        .arg("apply")
        .arg(out.join("fix.patch"))
        .status()
        .unwrap();
    assert!(status.success(), "fix.patch does not apply");
}

fn paths(hunks: &Value) -> Vec<&str> {
    hunks
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect()
}

/// The culprit adds a report feature (with its test) and removes a guard:
/// only the guard comes back, the feature stays, and the full revert —
/// proven too — is ranked below the partial one.
#[test]
fn a_feature_and_a_broken_guard_keep_the_feature() {
    let broken = STOCK.replace(GUARD, "");
    let (repo, culprit) = project(
        STOCK,
        TESTS,
        MAIN,
        &[],
        &[
            ("inventory/report.py", Some(REPORT)),
            ("inventory/stock.py", Some(&broken)),
            ("tests/test_report.py", Some(REPORT_TESTS)),
        ],
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, out.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven", "{report:#}");
    assert_eq!(report["strategy"], "partial_revert", "{report:#}");
    assert_eq!(report["reproduction"]["kind"], "existing");
    assert_eq!(report["rungs"][0]["rung"], "partial_revert");
    assert_eq!(rung(&report, "partial_revert")["status"], "proven");
    assert_eq!(rung(&report, "revert")["status"], "proven");

    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["strategy"], "partial_revert");
    assert_eq!(attempts[0]["proven"], true);
    let full = attempts
        .iter()
        .position(|a| a["strategy"] == "revert")
        .expect("the full revert is kept for comparison");
    assert!(full > 0);
    assert_eq!(attempts[full]["proven"], true);

    let partial = &report["partial"];
    assert_eq!(partial["commit"], culprit);
    assert_eq!(partial["proven"], true);
    assert_eq!(partial["subject"], "stock: report, and simpler parsing");
    assert_eq!(paths(&partial["undone"]), ["inventory/stock.py"]);
    assert_eq!(
        paths(&partial["kept"]),
        ["inventory/report.py", "tests/test_report.py"]
    );

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("Kept"), "{md}");
    assert!(md.contains("inventory/report.py"), "{md}");

    apply_fix(&repo, out.path());
    assert!(repo.read("inventory/stock.py").contains(GUARD));
    assert_eq!(repo.read("inventory/report.py"), REPORT);
    assert_eq!(repo.read("tests/test_report.py"), REPORT_TESTS);
}

/// A function whose breaking hunk and wanted hunk are 30 lines apart:
/// only the breaking hunk is undone.
#[test]
fn hunks_thirty_lines_apart_in_one_function() {
    let filler: String = (1..=30)
        .map(|n| format!("    # rule {n}: quantities are whole units counted at the dock\n"))
        .collect();
    let stock = format!(
        "def parse_quantity(text):\n    text = text.strip()\n{GUARD}    value = int(text)\n{filler}    return value\n\n\ndef restock(levels, item, text):\n    levels[item] = levels.get(item, 0) + parse_quantity(text)\n    return levels\n"
    );
    let broken = stock.replace(GUARD, "").replace(
        "    return value\n",
        "    value = min(value, 10_000)\n    return value\n",
    );
    let (repo, _culprit) = project(
        &stock,
        TESTS,
        MAIN,
        &[],
        &[("inventory/stock.py", Some(&broken))],
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, out.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["strategy"], "partial_revert", "{report:#}");
    let partial = &report["partial"];
    assert_eq!(partial["hunks"], 2);
    assert_eq!(
        partial["undone"].as_array().unwrap().len(),
        1,
        "{partial:#}"
    );
    assert_eq!(partial["kept"][0]["added"], 1, "{partial:#}");
    assert!(
        partial["runs"].as_u64().unwrap() <= 8,
        "the search stays within its budget: {partial:#}"
    );

    apply_fix(&repo, out.path());
    let fixed = repo.read("inventory/stock.py");
    assert!(fixed.contains(GUARD), "{fixed}");
    assert!(
        fixed.contains("    value = min(value, 10_000)\n"),
        "{fixed}"
    );
}

/// A later commit edited the lines around the breaking hunk (and moved
/// it down): the partial revert is rebased onto the deployed revision,
/// keeps the later edit, and is proven.
#[test]
fn a_later_edit_near_the_hunk_is_rebased() {
    let broken = STOCK.replace(GUARD, "");
    let later = format!("# Owned by the warehouse team.\n{broken}").replace(
        "an empty field means none.",
        "a blank field counts as none.",
    );
    let (repo, _culprit) = project(
        STOCK,
        TESTS,
        MAIN,
        &[],
        &[
            ("inventory/report.py", Some(REPORT)),
            ("inventory/stock.py", Some(&broken)),
        ],
        &[("inventory/stock.py", Some(&later))],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, out.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["strategy"], "partial_revert", "{report:#}");
    let partial = &report["partial"];
    assert_eq!(paths(&partial["undone"]), ["inventory/stock.py"]);
    // At the culprit the guard sat after line 6; the later commit added a
    // line above it.
    assert_eq!(partial["undone"][0]["culprit_start"], 6, "{partial:#}");
    assert_eq!(partial["undone"][0]["start"], 7, "{partial:#}");

    apply_fix(&repo, out.path());
    let fixed = repo.read("inventory/stock.py");
    assert!(fixed.contains(GUARD), "{fixed}");
    assert!(
        fixed.starts_with("# Owned by the warehouse team.\n"),
        "{fixed}"
    );
    assert!(fixed.contains("a blank field counts as none."), "{fixed}");
    assert_eq!(repo.read("inventory/report.py"), REPORT);
}

/// A culprit that breaks blank fields twice over — the strip is gone and
/// the blank marker changed in another file — needs both hunks undone:
/// the search finds no smaller set, says why, and the full revert wins.
#[test]
fn every_hunk_needed_widens_to_the_full_revert() {
    let stock = "from inventory.config import BLANK\n\n\ndef parse_quantity(text):\n    text = text.strip()\n    if text == BLANK:\n        return 0\n    return int(text)\n\n\ndef restock(levels, item, text):\n    levels[item] = levels.get(item, 0) + parse_quantity(text)\n    return levels\n";
    let tests = TESTS.replace("parse_quantity(\"\")", "parse_quantity(\"  \")");
    let main = MAIN.replace("\"apple\", \"\"", "\"apple\", \"  \"");
    let broken = stock.replace("    text = text.strip()\n", "");
    let (repo, culprit) = project(
        stock,
        &tests,
        &main,
        &[("inventory/config.py", Some("BLANK = \"\"\n"))],
        &[
            (
                "inventory/config.py",
                Some("BLANK = None  # a missing field\n"),
            ),
            ("inventory/stock.py", Some(&broken)),
        ],
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, out.path());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven", "{report:#}");
    assert_eq!(report["strategy"], "revert", "{report:#}");
    assert_eq!(rung(&report, "partial_revert")["status"], "failed");
    let partial = &report["partial"];
    assert_eq!(partial["commit"], culprit);
    assert_eq!(partial["proven"], false);
    assert!(
        partial["runs"].as_u64().unwrap() <= 8,
        "the search stays within its budget: {partial:#}"
    );
    assert!(
        partial["widened"]
            .as_str()
            .is_some_and(|why| why.starts_with("every hunk is needed")),
        "{partial:#}"
    );
    assert!(
        report["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["strategy"] == "revert"),
        "{report:#}"
    );
}
