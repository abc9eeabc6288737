//! Reproduce before repair, Python: the suite is green at the deployed
//! revision (the test that would have caught the bug is not in the tree),
//! the real `sentry-sdk` event carries the crash frames' local variables,
//! and suture writes a replay test from them that fails as production did,
//! proves the revert with it, and ships it with the fix — as a file of the
//! repository's own test directory, which the project's interpreter runs
//! outside suture with the same result.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tests::loop_support::{branch_head, report_crash};
use tests::serve_support::{Db, ServeHome, block_on, http, support_script};
use tests::{DAY, ScriptedRepo, capture_python_event, python, suture_bin};

use crate::heal::rung;

const PATIENCE: Duration = Duration::from_secs(180);

const ANA: &str = "Ana Lima <ana@inventory.test>";
const BEN: &str = "Ben Ito <ben@inventory.test>";
const CAL: &str = "Cal Reyes <cal@inventory.test>";

/// The guard the culprit removes, in every project below.
const GUARD: &str = "    if not text:\n        return 0\n";

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

/// The suite covers the happy path only: it stays green after the culprit.
const GREEN_TESTS: &str = r#"import unittest

from inventory.stock import parse_quantity, restock


class StockTest(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(parse_quantity(" 3 "), 3)

    def test_restock(self):
        self.assertEqual(restock({"apple": 1}, "apple", "2"), {"apple": 3})
"#;

const MAIN: &str = "from inventory.stock import restock\n\n\ndef nightly():\n    return restock({}, \"apple\", \"\")\n\n\nnightly()\n";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A project with `stock` (which holds `guard`), a green `tests` suite and
/// `main`, then an innocent commit, the culprit (removes the guard) and a
/// docs commit; returns the repo and the culprit.
fn project(
    stock: &str,
    guard: &str,
    tests: &str,
    main: &str,
    extra: &[(&str, Option<&str>)],
) -> (ScriptedRepo, String) {
    assert!(stock.contains(guard), "the project's guard");
    let repo = ScriptedRepo::new();
    let mut files = vec![
        ("inventory/__init__.py", Some("")),
        ("inventory/stock.py", Some(stock)),
        ("tests/__init__.py", Some("")),
        ("tests/test_stock.py", Some(tests)),
        ("main.py", Some(main)),
        ("README.md", Some("# inventory\n")),
    ];
    files.extend_from_slice(extra);
    repo.commit(ANA, now() - 40 * DAY, "Initial inventory", &files);
    let with_total = format!("{stock}\n\ndef total(levels):\n    return sum(levels.values())\n");
    repo.commit(
        CAL,
        now() - 6 * DAY,
        "stock: add total",
        &[("inventory/stock.py", Some(&with_total))],
    );
    let bad = with_total.replacen(guard, "", 1);
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

/// The inventory whose suite is green at HEAD while `parse_quantity("")`
/// raises `ValueError` there.
fn green_inventory() -> (ScriptedRepo, String) {
    project(STOCK, GUARD, GREEN_TESTS, MAIN, &[])
}

fn unittest_command() -> String {
    format!("{} -m unittest discover -s tests -t . -q", python())
}

fn pytest_command() -> String {
    format!("{} -m pytest -q", python())
}

fn crash(repo: &ScriptedRepo) -> Value {
    let out = repo.path().join(".git/captured.json");
    capture_python_event(repo.path(), "main.py", Some(&repo.head().to_string()), &out)
}

/// `suture heal` with `test_command` and no LLM: its exit code and report.
fn heal(
    repo: &ScriptedRepo,
    event: &Value,
    out: &Path,
    test_command: &str,
) -> (Option<i32>, Value) {
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let output = Command::new(suture_bin())
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", test_command, "--out"])
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

/// The files a patch creates, with their text.
fn new_files(patch: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for section in patch.split("diff --git ").skip(1) {
        if !section.contains("\nnew file mode ") {
            continue;
        }
        let path = section
            .lines()
            .find_map(|line| line.strip_prefix("+++ b/"))
            .expect("a new file's path")
            .to_owned();
        let body = section.split_once("\n@@ ").expect("a hunk").1;
        let text: String = body
            .lines()
            .skip(1)
            .filter_map(|line| line.strip_prefix('+'))
            .map(|line| format!("{line}\n"))
            .collect();
        files.push((path, text));
    }
    files
}

/// A clone of `repo` at its HEAD, outside suture.
fn clone(repo: &ScriptedRepo) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("suture-e2e-clone-")
        .tempdir()
        .unwrap();
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo.path())
        .arg(dir.path())
        .status()
        .expect("git clone");
    assert!(status.success());
    dir
}

fn git_apply(dir: &Path, patch: &Path) {
    let output = Command::new("git")
        .arg("apply")
        .arg(patch)
        .current_dir(dir)
        .output()
        .expect("git apply");
    assert!(
        output.status.success(),
        "fix.patch applies to HEAD: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the one test file `path` with the project's interpreter.
fn run_test_file(dir: &Path, path: &str) -> Output {
    let module = path.trim_end_matches(".py").replace('/', ".");
    Command::new(python())
        .args(["-m", "unittest", "-q", &module])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The replay test `fix.patch` adds (the only new file).
fn replay_test_of(patch: &str) -> (String, String) {
    let mut created = new_files(patch);
    assert_eq!(created.len(), 1, "one new file, the test: {patch}");
    created.remove(0)
}

/// The new test applied alone fails at HEAD with `expected`; the whole
/// `fix.patch` on a clean clone makes it pass.
fn replay_test_fails_at_head_and_passes_with_the_fix(
    repo: &ScriptedRepo,
    out: &Path,
    test_path: &str,
    test_text: &str,
    expected: &str,
) {
    let at_head = clone(repo);
    std::fs::write(at_head.path().join(test_path), test_text).unwrap();
    let failed = run_test_file(at_head.path(), test_path);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(text(&failed).contains(expected), "{}", text(&failed));
    assert!(text(&failed).contains("Ran 1 test"), "{}", text(&failed));

    let fixed = clone(repo);
    git_apply(fixed.path(), &out.join("fix.patch"));
    let passed = run_test_file(fixed.path(), test_path);
    assert!(passed.status.success(), "{}", text(&passed));
    assert!(text(&passed).contains("Ran 1 test"), "{}", text(&passed));
}

/// What every replayed, proven revert of the green inventory shows.
fn assert_replayed_and_proven(repo: &ScriptedRepo, culprit: &str, test_command: &str) {
    let event = crash(repo);
    assert_eq!(event["exception"]["values"][0]["type"], "ValueError");
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(repo, &event, out.path(), test_command);

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven", "{report:#}");
    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["sandbox"], "bubblewrap");
    assert_eq!(
        report["tests"]["baseline"]["exit"], 0,
        "the suite is green at HEAD"
    );
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], "replay", "{report:#}");
    assert_ne!(reproduction["at_revision"]["exit"], 0, "{reproduction:#}");
    assert_eq!(reproduction["with_fix"]["exit"], 0, "{reproduction:#}");
    assert_eq!(report["culprit_confirmed_by"], "reproduction");
    assert_eq!(rung(&report, "revert")["status"], "proven");

    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    assert!(
        patch.contains("+    if not text:\n+        return 0\n"),
        "the revert hunk: {patch}"
    );
    let (test_path, test_text) = replay_test_of(&patch);
    assert_eq!(
        test_path, "tests/test_stock_parse_quantity_replay.py",
        "in the repository's test dir, named as its tests are"
    );
    assert_eq!(
        reproduction["tests"][0]["file"].as_str(),
        Some(test_path.as_str()),
        "{reproduction:#}"
    );
    assert!(test_text.contains("import unittest"), "{test_text}");
    assert!(test_text.contains("parse_quantity"), "{test_text}");

    replay_test_fails_at_head_and_passes_with_the_fix(
        repo,
        out.path(),
        &test_path,
        &test_text,
        "ValueError: invalid literal for int() with base 10: ''",
    );
    assert!(repo.is_clean());
}

/// The suite is green at the deployed revision, yet the error is
/// reproduced: a test replaying `parse_quantity("")` from the event's
/// frame variables fails there with `ValueError` and passes with the revert,
/// which is thereby proven and the culprit confirmed by experiment; the
/// test ships in `fix.patch` and behaves the same outside suture. Run with
/// the standard library's runner, then with pytest.
#[test]
fn a_replay_test_reproduces_and_ships_with_the_revert() {
    let (repo, culprit) = green_inventory();
    assert_replayed_and_proven(&repo, &culprit, &unittest_command());
    assert_replayed_and_proven(&repo, &culprit, &pytest_command());
}

/// `suture serve` with the local forge, in pull-request mode: the real SDK
/// reports the crash, the reproduce step is saved and shown, and the pull
/// request carries the replay test on its branch, says it is reproduced,
/// and is labelled so; the metric counts the replay.
#[test]
fn the_pull_request_carries_the_regression_test() {
    let (repo, culprit) = green_inventory();
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.config = format!(
        "[store]\ndata_dir = \"{}\"\n\
         [queue]\npoll_millis = 100\nbackoff_seconds = 1\n\
         [[repos]]\nname = \"inventory\"\npath = \"{}\"\ntest_command = \"{}\"\ndays = 30\nlearning_seconds = 0\nmode = \"pr\"\n",
        home.data_dir().display(),
        repo.path().display(),
        unittest_command()
    );
    let serve = home.start(&[("SUTURE_LLM_BASE_URL", "")]);
    report_crash(&serve.dsn, repo.path(), "main.py", "1.0.0");
    let proposed = serve.wait_json("/api/incidents/1", PATIENCE, |incident| {
        ["proposed", "suggested", "failed", "unfixed"]
            .contains(&incident["state"].as_str().unwrap_or(""))
    });
    assert_eq!(proposed["state"], "proposed", "{proposed:#}");
    let heal = &proposed["heal"];
    assert_eq!(heal["outcome"], "proven", "{:#}", proposed["heal"]);
    assert_eq!(heal["reproduction"]["kind"], "replay", "{heal:#}");
    assert_eq!(heal["culprit"], culprit);
    let steps: Vec<&Value> = proposed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| job["steps"].as_array().unwrap())
        .collect();
    let reproduce = steps
        .iter()
        .find(|step| step["step"] == "reproduce")
        .unwrap_or_else(|| panic!("no reproduce step: {:#}", proposed["jobs"]));
    assert_eq!(reproduce["state"], "finished", "{reproduce:#}");
    let timeline = proposed["timeline"].to_string();
    assert!(
        timeline.contains("reproduced (replay)"),
        "the timeline shows the reproduce step: {:#}",
        proposed["timeline"]
    );
    let order: Vec<&str> = steps
        .iter()
        .filter_map(|step| step["step"].as_str())
        .collect();
    let at = |name: &str| order.iter().position(|step| *step == name);
    assert!(
        at("diagnose") < at("reproduce") && at("reproduce") < at("heal"),
        "diagnose, reproduce, heal: {order:?}"
    );

    let records = block_on(home.store().document("local_forge/inventory"))
        .unwrap()
        .expect("the local forge's records are in the store");
    let records: Value = serde_json::from_str(&records).unwrap();
    let pulls = records["pull_requests"].as_array().unwrap();
    assert_eq!(pulls.len(), 1, "{records:#}");
    let pull = &pulls[0];
    let labels: Vec<&str> = pull["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(labels.contains(&"suture:reproduced"), "{labels:?}");
    assert!(!labels.contains(&"suture:unreproduced"), "{labels:?}");
    let first_line = pull["body"].as_str().unwrap().lines().next().unwrap_or("");
    assert!(
        first_line.contains("reproduced") && first_line.contains("proven"),
        "{first_line}"
    );
    assert!(!first_line.contains("unreproduced"), "{first_line}");

    let remote = home.data_dir().join("forge/inventory.git");
    let branch = pull["branch"].as_str().unwrap();
    let head = branch_head(&remote, branch).expect("the fix branch is in the bare remote");
    assert_eq!(pull["head_sha"].as_str(), Some(head.as_str()));
    let bare = git2::Repository::open_bare(&remote).unwrap();
    let tree = bare
        .find_commit(git2::Oid::from_str(&head).unwrap())
        .unwrap()
        .tree()
        .unwrap();
    let blob = |path: &str| -> String {
        let entry = tree
            .get_path(Path::new(path))
            .unwrap_or_else(|_| panic!("{path} is on the branch"));
        let object = entry.to_object(&bare).unwrap();
        String::from_utf8(object.peel_to_blob().unwrap().content().to_vec()).unwrap()
    };
    let test = blob("tests/test_stock_parse_quantity_replay.py");
    assert!(test.contains("parse_quantity"), "{test}");
    assert!(
        blob("inventory/stock.py").contains(GUARD),
        "the revert is on the branch"
    );

    let (status, metrics) = http(serve.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("suture_reproductions_total{kind=\"replay\"} 1"),
        "{metrics}"
    );
}

/// Hostile strings, captured by the real SDK from a real call, reach the
/// replay test only as escaped data: the test file parses, holds none of
/// them raw, runs none of them (the marker file is never created), and
/// still fails at HEAD with the event's exception. A frame whose argument
/// the SDK cut short is refused, and the next frame out is replayed.
#[test]
fn hostile_locals_stay_data() {
    let markers = tempfile::tempdir().unwrap();
    let marker = markers.path().join("pwned");
    let payload = format!("__import__('os').system('touch {}')", marker.display());
    let hostile =
        format!("x' \" ''' \"\"\" \\ \\n \\\" \n*/ ${{x}} {payload} \"\"\"); {payload}; #");
    // int() cannot read it, and the guard's isdigit() says so.
    let stock = r#""""Stock levels."""

NOTE = "checked by the nightly audit; " * 80


def parse_quantity(text, tags, note):
    """'3' -> 3; anything that is not a count means none."""
    if not text.isdigit():
        return 0
    return int(text)


def restock(levels, item, text, tags):
    levels[item] = levels.get(item, 0) + parse_quantity(text, tags, NOTE)
    return levels
"#;
    let main = "import json\n\nfrom inventory.stock import restock\n\n\n\
                def nightly():\n    with open(\"hostile.json\") as f:\n        row = json.load(f)\n    \
                return restock({\"apple\": 1}, row[\"item\"], row[\"text\"], row[\"tags\"])\n\n\nnightly()\n";
    let row = serde_json::json!({
        "item": format!("apple {payload} '''"),
        "text": hostile,
        "tags": [["a\"\"\"", ["b'''", ["c */ ${x}", [payload.clone(), "\\\n"]]]]],
    })
    .to_string();
    let (repo, culprit) = project_hostile(stock, main, &row);

    let out_event = repo.path().join(".git/captured.json");
    let output = Command::new(python())
        .arg(support_script("capture_event.py"))
        .arg("main.py")
        .arg(&out_event)
        .current_dir(repo.path())
        .env("SUTURE_TEST_RELEASE", repo.head().to_string())
        .env("SUTURE_TEST_MAX_VALUE_LENGTH", "1024")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&out_event).unwrap()).unwrap();
    assert_eq!(event["exception"]["values"][0]["type"], "ValueError");
    let frames = event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    let innermost = frames.last().unwrap();
    assert_eq!(innermost["function"], "parse_quantity");
    assert!(
        innermost["vars"]["note"].as_str().unwrap().ends_with("..."),
        "the SDK cut the long string: {innermost:#}"
    );
    assert!(
        event.to_string().contains("__import__"),
        "the SDK captured the hostile values"
    );

    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, &event, out.path(), &unittest_command());
    assert!(!marker.exists(), "suture ran an event value");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven", "{report:#}");
    assert_eq!(report["culprit"], culprit);
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], "replay", "{reproduction:#}");
    let refused = reproduction["refused"].as_array().unwrap();
    assert!(
        refused.iter().any(|candidate| {
            candidate["kind"] == "replay"
                && candidate["what"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("parse_quantity")
                && candidate["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("cut short")
        }),
        "the frame whose note was cut is refused: {reproduction:#}"
    );

    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    let (test_path, test_text) = replay_test_of(&patch);
    assert_eq!(
        test_path, "tests/test_stock_restock_replay.py",
        "the next frame out"
    );
    // The file parses, and every hostile fragment is inside the one string
    // that holds the values: none is code, a comment or a docstring.
    let written = markers.path().join("test.py");
    std::fs::write(&written, &test_text).unwrap();
    let inspected = Command::new(python())
        .arg(support_script("inspect_test_file.py"))
        .arg(&written)
        .args([
            "__import__",
            "system(",
            "pwned",
            "\"\"\"",
            "'''",
            "*/",
            "${x}",
            hostile.as_str(),
        ])
        .output()
        .unwrap();
    assert!(
        inspected.status.success(),
        "{}\n{test_text}",
        text(&inspected)
    );
    // The characters that could end the literal are escaped, not written.
    for raw in ["'''", "*/", "${x}"] {
        assert!(
            !test_text.contains(raw),
            "{raw} is written raw:\n{test_text}"
        );
    }
    assert!(!test_text.contains(&hostile), "{test_text}");

    replay_test_fails_at_head_and_passes_with_the_fix(
        &repo,
        out.path(),
        &test_path,
        &test_text,
        "ValueError: invalid literal for int() with base 10",
    );
    assert!(!marker.exists(), "running the test ran an event value");
}

/// [`project`] for the hostile inventory: `main.py` reads the hostile row
/// from `hostile.json`, so the values are data in the repository too.
fn project_hostile(stock: &str, main: &str, row: &str) -> (ScriptedRepo, String) {
    let tests = "import unittest\n\nfrom inventory.stock import parse_quantity\n\n\n\
                 class StockTest(unittest.TestCase):\n    def test_parse(self):\n        \
                 self.assertEqual(parse_quantity(\"3\", [], \"\"), 3)\n";
    let guard = "    if not text.isdigit():\n        return 0\n";
    project(stock, guard, tests, main, &[("hostile.json", Some(row))])
}

/// A crash in a method whose receiver needs a constructor argument the
/// frame does not hold, called with an object: no frame can be replayed,
/// and with no LLM there is no reproduction. The revert passes the suite
/// and is only plausible (exit 1), written to `fix.patch` with a report
/// that says so first.
#[test]
fn an_object_argument_is_not_replayed_and_the_outcome_is_plausible() {
    let stock = r#""""Stock levels."""


class Entry:
    def __init__(self, item, text):
        self.item = item
        self.text = text


class Ledger:
    def __init__(self, levels):
        self.levels = levels

    def add(self, entry):
        text = entry.text.strip()
        if not text:
            return 0
        self.levels[entry.item] = self.levels.get(entry.item, 0) + int(text)
        return self.levels[entry.item]
"#;
    let tests = "import unittest\n\nfrom inventory.stock import Entry, Ledger\n\n\n\
                 class LedgerTest(unittest.TestCase):\n    def test_add(self):\n        \
                 self.assertEqual(Ledger({}).add(Entry(\"apple\", \" 3 \")), 3)\n";
    let main = "from inventory.stock import Entry, Ledger\n\n\n\
                def nightly(ledger, entry):\n    return ledger.add(entry)\n\n\n\
                nightly(Ledger({}), Entry(\"apple\", \"\"))\n";
    let guard = "        if not text:\n            return 0\n";
    let (repo, culprit) = project(stock, guard, tests, main, &[]);
    let event = crash(&repo);
    assert_eq!(event["exception"]["values"][0]["type"], "ValueError");
    let out = tempfile::tempdir().unwrap();
    let (code, report) = heal(&repo, &event, out.path(), &unittest_command());

    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["outcome"], "plausible", "{report:#}");
    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit);
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], Value::Null, "{reproduction:#}");
    let refused: Vec<(&str, &str)> = reproduction["refused"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|candidate| candidate["kind"] == "replay")
        .map(|candidate| {
            (
                candidate["what"].as_str().unwrap(),
                candidate["reason"].as_str().unwrap(),
            )
        })
        .collect();
    let reason_for = |function: &str| {
        refused
            .iter()
            .find(|(what, _)| what.starts_with(function))
            .map(|(_, reason)| *reason)
            .unwrap_or_else(|| panic!("no refused replay of {function}: {reproduction:#}"))
    };
    assert!(
        reason_for("Ledger.add").contains("receiver cannot be built"),
        "{reproduction:#}"
    );
    assert!(
        reason_for("nightly").contains("an object, not a literal"),
        "{reproduction:#}"
    );
    assert_ne!(report["culprit_confirmed_by"], "reproduction");

    let patch = std::fs::read_to_string(out.path().join("fix.patch")).unwrap();
    assert!(
        patch.contains("+        if not text:\n+            return 0\n"),
        "{patch}"
    );
    assert!(new_files(&patch).is_empty(), "no test ships: {patch}");
    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    let first = markdown.lines().next().unwrap_or("");
    assert!(first.contains("unreproduced"), "{first}");
}
