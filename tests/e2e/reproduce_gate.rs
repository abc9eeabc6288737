//! The reproduction gate of `suture heal`, end to end: when the crash
//! frame's arguments are objects no test can be replayed from, the model
//! writes the reproduction, and the gate refuses every test that does not
//! fail the way production failed; without a model the revert is only
//! plausible; and with a reproduction, a culprit the diagnosis ranks low is
//! found by bisecting a 64-commit window in a handful of sandbox runs.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use fakes::openai::{FakeOpenAi, Reply};
use serde_json::{Value, json};
use tests::{DAY, ScriptedRepo, capture_python_event, suture_bin};

use super::heal::{rung, test_command};

const ORDERS: &str = r#""""Orders and how they are packed."""


class Order:
    def __init__(self, item, quantity, boxes):
        self.item = item
        self.quantity = quantity
        self.boxes = boxes


def per_box(order):
    """Items per box; an order without boxes ships loose."""
    if not order.boxes:
        return order.quantity
    return order.quantity // order.boxes
"#;

const ORDER_TESTS: &str = r#"import unittest

from app.orders import Order, per_box


class OrdersTest(unittest.TestCase):
    def test_per_box(self):
        self.assertEqual(per_box(Order("apple", 6, 2)), 3)
"#;

/// The crash happens at module level with an `Order` built there: no frame
/// of the stack is a function whose arguments are literals, so nothing can
/// be replayed from the event.
const SHIP: &str = "from app.orders import Order, per_box\n\nper_box(Order(\"apple\", 6, 0))\n";

const ANA: &str = "Ana Lima <ana@shipping.test>";
const BEN: &str = "Ben Ito <ben@shipping.test>";
const CAL: &str = "Cal Reyes <cal@shipping.test>";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The shipping project: a culprit removes the guard for orders without
/// boxes, between innocent commits; the suite stays green at HEAD. Returns
/// the repo and the culprit.
pub(crate) fn shipping() -> (ScriptedRepo, String) {
    let repo = ScriptedRepo::new();
    repo.commit(
        ANA,
        now() - 40 * DAY,
        "Initial shipping",
        &[
            ("app/__init__.py", Some("")),
            ("app/orders.py", Some(ORDERS)),
            ("tests/__init__.py", Some("")),
            ("tests/test_orders.py", Some(ORDER_TESTS)),
            ("ship.py", Some(SHIP)),
            ("README.md", Some("# shipping\n")),
        ],
    );
    let with_describe = format!(
        "{ORDERS}\n\ndef describe(order):\n    return f\"{{order.quantity}} x {{order.item}}\"\n"
    );
    repo.commit(
        CAL,
        now() - 6 * DAY,
        "orders: describe",
        &[("app/orders.py", Some(&with_describe))],
    );
    let bad = with_describe.replace(
        "    if not order.boxes:\n        return order.quantity\n",
        "",
    );
    assert_ne!(bad, with_describe);
    let culprit = repo.commit(
        BEN,
        now() - 3 * DAY,
        "orders: simplify per_box",
        &[("app/orders.py", Some(&bad))],
    );
    repo.commit(
        ANA,
        now() - DAY,
        "docs: usage",
        &[("README.md", Some("# shipping\n\nRun ship.py.\n"))],
    );
    (repo, culprit.to_string())
}

/// The production event of `program`, reported by the real `sentry-sdk`.
pub(crate) fn crash(repo: &ScriptedRepo, program: &str) -> Value {
    let out = repo.path().join(".git/captured.json");
    capture_python_event(repo.path(), program, Some(&repo.head().to_string()), &out)
}

struct Run {
    code: Option<i32>,
    report: Value,
    out: tempfile::TempDir,
}

/// `suture heal` over the default window, with the LLM endpoint pointed at
/// `fake` when there is one and no endpoint otherwise.
fn heal(repo: &ScriptedRepo, event: &Value, llm: Option<&str>, extra_args: &[&str]) -> Run {
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(suture_bin());
    command
        .args(["heal", "--repo"])
        .arg(repo.path())
        .arg("--event")
        .arg(&event_path)
        .args(["--test-cmd", &test_command(), "--json", "--out"])
        .arg(out.path())
        .args(extra_args)
        .env_remove("SUTURE_LLM_BASE_URL")
        .env_remove("SUTURE_LLM_MODEL")
        .env_remove("SUTURE_LLM_API_KEY");
    if let Some(base_url) = llm {
        command
            .env("SUTURE_LLM_BASE_URL", base_url)
            .env("SUTURE_LLM_MODEL", "fake-model")
            .env("SUTURE_LLM_API_KEY", "sk-fake-key-for-tests-000111");
    }
    let output = command.output().unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "no report ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run {
        code: output.status.code(),
        report,
        out,
    }
}

/// `suture heal` with the model scripted by `replies`, run off the
/// runtime's workers so the fake keeps answering.
async fn heal_with_model(
    repo: &ScriptedRepo,
    event: &Value,
    replies: Vec<Reply>,
) -> (Run, FakeOpenAi) {
    let fake = FakeOpenAi::start(replies).await;
    let base_url = fake.base_url();
    let run = tokio::task::block_in_place(|| heal(repo, event, Some(&base_url), &[]));
    (run, fake)
}

/// `submit_test` creating `path` with `text`.
pub(crate) fn submit_test(path: &str, text: &str) -> Reply {
    Reply::tool_call(
        "submit_test",
        json!({"edits": [{"path": path, "search": "", "replace": text}]}),
    )
}

/// A test of the repository's conventions that builds the order itself and
/// lets `per_box`'s ZeroDivisionError propagate.
pub(crate) const GOOD_TEST: &str = r#"import unittest

from app.orders import Order, per_box


class LooseOrderTest(unittest.TestCase):
    def test_an_order_without_boxes_ships_loose(self):
        self.assertEqual(per_box(Order("apple", 6, 0)), 6)
"#;

fn test_file(body: &str) -> String {
    format!(
        "import unittest\n\nfrom app.orders import Order, per_box\n\n\nclass CandidateTest(unittest.TestCase):\n    def test_candidate(self):\n{body}"
    )
}

fn refused(report: &Value) -> &Vec<Value> {
    report["reproduction"]["refused"].as_array().unwrap()
}

/// The replay candidates were all refused: the crash frame's argument is an
/// object, and the module-level caller is no function.
fn assert_not_replayable(report: &Value) {
    let replays: Vec<&Value> = refused(report)
        .iter()
        .filter(|r| r["kind"] == "replay")
        .collect();
    assert!(
        replays.iter().any(|r| r["what"]
            .as_str()
            .unwrap()
            .starts_with("per_box (app/orders.py:")),
        "{report:#}"
    );
}

/// No existing test fails and the crash frame's argument is an `Order`:
/// the model writes a test that builds the order itself, the gate accepts
/// it (it fails at HEAD with ZeroDivisionError raised in `per_box`), the
/// revert of the culprit is proven against it, and the test ships in
/// `fix.patch` after the revert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_writes_the_reproduction_when_replay_cannot() {
    let (repo, culprit) = shipping();
    let event = crash(&repo, "ship.py");
    assert_eq!(event["exception"]["values"][0]["type"], "ZeroDivisionError");
    let (run, fake) = heal_with_model(
        &repo,
        &event,
        vec![submit_test("tests/test_loose_orders.py", GOOD_TEST)],
    )
    .await;
    let report = &run.report;

    assert_eq!(run.code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven");
    assert_eq!(
        report["tests"]["baseline"]["exit"], 0,
        "the suite is green at HEAD"
    );
    assert_not_replayable(report);
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], "llm", "{report:#}");
    assert_eq!(reproduction["llm"]["outcome"], "proven", "{report:#}");
    assert_eq!(reproduction["llm"]["rounds"], 1);
    assert_eq!(
        reproduction["tests"][0]["file"],
        "tests/test_loose_orders.py"
    );
    assert_ne!(reproduction["at_revision"]["exit"], 0);
    assert_eq!(
        reproduction["at_base"]["exit"], 0,
        "the guard is there before the window"
    );
    assert_eq!(reproduction["with_fix"]["exit"], 0);
    assert!(refused(report).iter().all(|r| r["kind"] != "llm"));

    assert_eq!(report["strategy"], "revert");
    assert_eq!(rung(report, "revert")["status"], "proven", "{report:#}");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["culprit_confirmed_by"], "reproduction");
    assert_eq!(report["diagnosis"]["suspects"][0]["commit"], culprit);
    assert_eq!(
        report["diagnosis"]["suspects"][0]["evidence"][0]["kind"],
        "reproduction"
    );

    let patch = std::fs::read_to_string(run.out.path().join("fix.patch")).unwrap();
    assert!(patch.contains("+    if not order.boxes:\n"), "{patch}");
    assert!(
        patch.contains("+++ b/tests/test_loose_orders.py"),
        "{patch}"
    );
    assert!(
        patch.contains("+        self.assertEqual(per_box(Order(\"apple\", 6, 0)), 6)"),
        "{patch}"
    );
    // The reproduction ran first, and nothing else was asked of the model.
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.remaining(), 0);
    let task = fake.requests()[0].messages()[1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(task.starts_with("# Reproduction\n"), "{task}");
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
    assert!(repo.is_clean());
}

/// Every way a model's test can fail to reproduce the error is refused,
/// recorded, and sent back to the model with the reason; only the last,
/// good test is the reproduction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_tests_that_do_not_reproduce() {
    let (repo, culprit) = shipping();
    let event = crash(&repo, "ship.py");
    // (file, text, what the refusal says) in submission order.
    let passes = test_file("        self.assertEqual(per_box(Order(\"apple\", 6, 2)), 3)\n");
    let import_error = format!(
        "import app.shipping_rates\n{}",
        test_file("        per_box(Order(\"apple\", 6, 0))\n")
    );
    let syntax_error = test_file("        per_box(Order(\"apple\", 6, 0)\n");
    let own_assertion = test_file("        self.assertEqual(per_box(Order(\"apple\", 6, 3)), 3)\n");
    let other_type = test_file("        per_box(Order(\"apple\", \"6\", 2))\n");
    let from_the_test = test_file(
        "        per_box(Order(\"apple\", 6, 2))\n        raise ZeroDivisionError(\"no boxes\")\n",
    );
    let candidates: [(&str, &str, &str); 6] = [
        (
            "tests/test_repro_passes.py",
            &passes,
            "no test fails with ZeroDivisionError raised in per_box",
        ),
        (
            "tests/test_repro_import.py",
            &import_error,
            "fails with ModuleNotFoundError, not ZeroDivisionError",
        ),
        (
            "tests/test_repro_syntax.py",
            &syntax_error,
            "the tests do not load: SyntaxError",
        ),
        (
            "tests/test_repro_assert.py",
            &own_assertion,
            "fails with AssertionError, not ZeroDivisionError",
        ),
        (
            "tests/test_repro_type.py",
            &other_type,
            "fails with TypeError, not ZeroDivisionError",
        ),
        (
            "tests/test_repro_raise.py",
            &from_the_test,
            "ZeroDivisionError is not raised in the application's code",
        ),
    ];
    let mut replies: Vec<Reply> = candidates
        .iter()
        .map(|(path, text, _)| submit_test(path, text))
        .collect();
    // Not a test file: the toolbox refuses it before the gate runs it.
    replies.push(submit_test(
        "app_test_helper.py",
        &test_file("        per_box(Order(\"apple\", 6, 0))\n"),
    ));
    replies.push(submit_test("tests/test_loose_orders.py", GOOD_TEST));
    let (run, fake) = heal_with_model(&repo, &event, replies).await;
    let report = &run.report;

    assert_eq!(run.code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven");
    assert_eq!(report["culprit"], culprit);
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], "llm", "{report:#}");
    assert_eq!(
        reproduction["tests"][0]["file"],
        "tests/test_loose_orders.py"
    );
    assert_eq!(reproduction["llm"]["rounds"], 8);

    // The gate's refusals, in order, each naming its file and why.
    let by_model: Vec<&Value> = refused(report)
        .iter()
        .filter(|r| r["kind"] == "llm")
        .collect();
    assert_eq!(by_model.len(), candidates.len(), "{report:#}");
    for ((path, _, why), refusal) in candidates.iter().zip(&by_model) {
        assert_eq!(refusal["what"], *path, "{refusal:#}");
        let reason = refusal["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{path}: {reason}");
    }

    // Each verdict reached the model in the request after its submission.
    let requests = fake.requests();
    assert_eq!(requests.len(), 8);
    for (round, (path, _, why)) in candidates.iter().enumerate() {
        let feedback = last_tool_result(requests[round + 1].messages());
        assert!(
            feedback.starts_with("rejected: the test does not reproduce the error: "),
            "{path}: {feedback}"
        );
        assert!(feedback.contains(why), "{path}: {feedback}");
    }
    let feedback = last_tool_result(requests[7].messages());
    assert!(
        feedback.starts_with("rejected: test refused: app_test_helper.py is not a test file"),
        "{feedback}"
    );
    assert!(
        refused(report)
            .iter()
            .all(|r| r["what"] != "app_test_helper.py"),
        "the toolbox refused it before the gate"
    );
    assert!(fake.errors().is_empty(), "{:?}", fake.errors());

    // Only the accepted test ships.
    let patch = std::fs::read_to_string(run.out.path().join("fix.patch")).unwrap();
    assert!(
        patch.contains("+++ b/tests/test_loose_orders.py"),
        "{patch}"
    );
    assert!(!patch.contains("test_repro_"), "{patch}");
    assert!(!patch.contains("app_test_helper"), "{patch}");
}

/// The content of the last tool message of a request: what the toolbox
/// answered the model's previous call with.
fn last_tool_result(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_else(|| panic!("no tool result in {messages:#?}"))
        .to_string()
}

/// Without a model nothing can write the reproduction: the confident
/// culprit's revert passes the suite, which is plausible, never proven.
#[test]
fn without_a_model_an_unreplayable_error_is_plausible_never_proven() {
    let (repo, culprit) = shipping();
    let event = crash(&repo, "ship.py");
    let run = heal(&repo, &event, None, &[]);
    let report = &run.report;

    assert_eq!(run.code, Some(1), "{report:#}");
    assert_eq!(report["outcome"], "plausible", "{report:#}");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["culprit_confirmed_by"], "score");
    assert_not_replayable(report);
    let reproduction = &report["reproduction"];
    assert_eq!(reproduction["kind"], Value::Null);
    assert!(reproduction.get("llm").is_none(), "{report:#}");
    let reason = reproduction["reason"].as_str().unwrap();
    assert!(reason.contains("no LLM endpoint"), "{reason}");
    assert!(
        reason.starts_with("No frame of the crash could be replayed"),
        "{reason}"
    );
    let patch = std::fs::read_to_string(run.out.path().join("fix.patch")).unwrap();
    assert!(patch.contains("+    if not order.boxes:\n"), "{patch}");
    assert!(!patch.contains("+++ b/tests/"), "no test ships: {patch}");
}

const CONFIG: &str = "BOX_SIZE = 6\nPALLET = 40\n";

const PACKING: &str = r#""""Packing orders into boxes."""
from app import config


def boxes_for(quantity):
    """How many full boxes a quantity fills."""
    return quantity // config.BOX_SIZE


def label(item):
    return item.upper()
"#;

const PACKING_TESTS: &str = r#"import unittest

from app.packing import label


class PackingTest(unittest.TestCase):
    def test_label(self):
        self.assertEqual(label("apple"), "APPLE")
"#;

const NIGHTLY: &str = "from app.packing import boxes_for\n\n\ndef nightly():\n    return boxes_for(10)\n\n\nnightly()\n";

/// Commits in the bisect scenario's window.
const WINDOW: usize = 64;
/// The culprit's place in the window, oldest first.
const CULPRIT_AT: usize = 32;

/// 64 commits after a good base: most add a note, the culprit (commit 32)
/// sets the box size `boxes_for` divides by to zero in `app/config.py`, and
/// three later commits rewrite `boxes_for` itself — so blame of the crash
/// line, the crash function and the identifiers on it all point at those
/// three, and the culprit, in a file the stack never enters, is not among
/// the diagnosis's suspects. Returns the repo and the culprit.
fn packing() -> (ScriptedRepo, String) {
    let repo = ScriptedRepo::new();
    repo.commit(
        ANA,
        now() - 40 * DAY,
        "Initial packing",
        &[
            ("app/__init__.py", Some("")),
            ("app/config.py", Some(CONFIG)),
            ("app/packing.py", Some(PACKING)),
            ("tests/__init__.py", Some("")),
            ("tests/test_packing.py", Some(PACKING_TESTS)),
            ("nightly.py", Some(NIGHTLY)),
            ("README.md", Some("# packing\n")),
        ],
    );
    let mut packing = PACKING.to_string();
    let mut culprit = None;
    let start = now() - 5 * DAY;
    for i in 0..WINDOW {
        let mut rewrite = |from: &str, to: &str| {
            let next = packing.replace(from, to);
            assert_ne!(next, packing);
            packing = next;
        };
        let note_path = format!("notes/n{i}.txt");
        let note_text = format!("note {i}\n");
        let (message, path, text) = match i {
            CULPRIT_AT => (
                "config: box sizes are configured per warehouse now",
                "app/config.py".to_string(),
                CONFIG.replace("BOX_SIZE = 6", "BOX_SIZE = 0"),
            ),
            45 => {
                rewrite(
                    "    return quantity // config.BOX_SIZE\n",
                    "    return int(quantity) // config.BOX_SIZE\n",
                );
                (
                    "packing: accept quantities as text",
                    "app/packing.py".to_string(),
                    packing.clone(),
                )
            }
            55 => {
                rewrite("fills.\"\"\"", "fills (rounding down).\"\"\"");
                (
                    "packing: document rounding",
                    "app/packing.py".to_string(),
                    packing.clone(),
                )
            }
            62 => {
                rewrite("// config.BOX_SIZE", "// int(config.BOX_SIZE)");
                (
                    "packing: box size may be text",
                    "app/packing.py".to_string(),
                    packing.clone(),
                )
            }
            _ => ("notes", note_path, note_text),
        };
        let author = if i % 2 == 0 { BEN } else { CAL };
        let commit = repo.commit(
            author,
            start + i as i64 * 3600,
            &format!("{message} ({i})"),
            &[(&path, Some(&text))],
        );
        if i == CULPRIT_AT {
            culprit = Some(commit.to_string());
        }
    }
    (repo, culprit.unwrap())
}

/// The number in "(N sandbox runs)" of a bisect rung's reason.
fn sandbox_runs(reason: &str) -> usize {
    let (before, _) = reason
        .split_once(" sandbox runs)")
        .unwrap_or_else(|| panic!("no run count in {reason}"));
    before
        .rsplit('(')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run count in {reason}"))
}

/// The culprit sits in the middle of a 64-commit window, outside the
/// diagnosis's top three suspects (checked with `suture diagnose` first).
/// Their reverts leave the replay reproduction failing, so the window is
/// bisected with it: six sandbox runs (log2 64; the base is known good from
/// the reproduction's run there, so it is not probed again) name the
/// culprit, and its revert is proven.
#[test]
fn bisect_confirms_the_culprit_in_a_64_commit_window() {
    let (repo, culprit) = packing();
    let event = crash(&repo, "nightly.py");
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();

    let diagnosis = tests::suture_json(&[
        "diagnose",
        "--repo",
        repo.path().to_str().unwrap(),
        "--event",
        event_path.to_str().unwrap(),
        "--days",
        "30",
    ]);
    assert_eq!(diagnosis["window"]["commits"], WINDOW, "{diagnosis:#}");
    let top: Vec<&str> = diagnosis["suspects"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|s| s["commit"].as_str().unwrap())
        .collect();
    assert_eq!(top.len(), 3, "{diagnosis:#}");
    assert!(!top.contains(&culprit.as_str()), "{diagnosis:#}");
    assert_eq!(diagnosis["culprit"], Value::Null);

    let run = heal(&repo, &event, None, &["--days", "30"]);
    let report = &run.report;
    assert_eq!(run.code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "proven");
    assert_eq!(report["reproduction"]["kind"], "replay", "{report:#}");
    assert_eq!(report["reproduction"]["at_base"]["exit"], 0);

    let revert = rung(report, "revert");
    assert_eq!(revert["status"], "failed", "{report:#}");
    let bisect = rung(report, "bisect");
    assert_eq!(bisect["status"], "proven", "{report:#}");
    let reason = bisect["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "bisecting {WINDOW} commits with the reproduction points at {}",
            &culprit[..10]
        )),
        "{reason}"
    );
    let runs = sandbox_runs(reason);
    assert!(runs <= 7, "{runs} sandbox runs: {reason}");
    assert_eq!(runs, 6, "log2 of the window, the base known good: {reason}");

    // One attempt per suspect whose revert applied, then the culprit's.
    let attempts = report["attempts"].as_array().unwrap();
    let last = attempts.last().unwrap();
    assert_eq!(last["strategy"], "revert");
    assert_eq!(last["proven"], true, "{last:#}");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a["proven"] == false)
    );

    assert_eq!(report["strategy"], "revert");
    assert_eq!(report["culprit"], culprit);
    assert_eq!(report["culprit_confirmed_by"], "reproduction");
    let suspect = &report["diagnosis"]["suspects"][0];
    assert_eq!(suspect["commit"], culprit);
    assert_eq!(suspect["evidence"][0]["kind"], "reproduction");
    let patch = std::fs::read_to_string(run.out.path().join("fix.patch")).unwrap();
    assert!(patch.contains("+BOX_SIZE = 6\n"), "{patch}");
}
