//! Fix memory through the public `heal` API: a small repository whose
//! culprit removed a guard, a Sentry event of the crash, and the ladder run
//! with the process sandbox. The first round proves the revert; a later
//! round that remembers that revert did not hold refuses it untested and
//! goes on to the LLM rung (the fake OpenAI server), whose prompt carries
//! the record of earlier fixes.
//!
//! The test command logs every run to a file outside the worktree, so the
//! tests can count the sandbox runs and show a refused patch never got one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent::heal::{AvoidedFix, HealOptions, HealReport, Outcome, RungStatus, Strategy, heal};
use agent::llm::{LlmConfig, Transcript};
use fakes::openai::{FakeOpenAi, Reply};
use repo::git::Repo;
use repo::git2::{Repository, RepositoryInitOptions, Signature, Time};
use repo::index::CodeIndex;
use repo::sandbox::{Backend, SandboxConfig};
use serde_json::json;

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

const MAIN: &str = "from inventory.stock import restock\n\n\ndef nightly():\n    return restock({}, \"apple\", \"\")\n\n\nnightly()\n";

const DAY: i64 = 86_400;

const HISTORY: &str = "round 1: revert of 5e1f0c2a9b merged as PR #4, did not hold: the error recurred on release 1.2.4";

struct Project {
    dir: tempfile::TempDir,
    /// Where the test command logs its runs.
    runs: PathBuf,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn commit(git: &Repository, author: &str, time: i64, message: &str, files: &[(&str, &str)]) {
    let root = git.workdir().unwrap().to_path_buf();
    let mut index = git.index().unwrap();
    for (path, content) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = Signature::new(author, "dev@inventory.test", &Time::new(time, 0)).unwrap();
    let parent = git.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<_> = parent.iter().collect();
    git.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .unwrap();
}

/// An innocent commit, the culprit (the guard for an empty field removed),
/// and an innocent one after it.
fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("repo");
    let mut options = RepositoryInitOptions::new();
    options.initial_head("main");
    let git = Repository::init_opts(&work, &options).unwrap();
    commit(
        &git,
        "Ana Lima",
        now() - 40 * DAY,
        "Initial inventory",
        &[
            ("inventory/__init__.py", ""),
            ("inventory/stock.py", STOCK),
            ("main.py", MAIN),
            ("README.md", "# inventory\n"),
        ],
    );
    let bad = STOCK.replace("    if not text:\n        return 0\n", "");
    commit(
        &git,
        "Ben Ito",
        now() - 3 * DAY,
        "stock: simplify quantity parsing",
        &[("inventory/stock.py", &bad)],
    );
    commit(
        &git,
        "Cal Reyes",
        now() - DAY,
        "docs: usage",
        &[("README.md", "# inventory\n\nRun main.py nightly.\n")],
    );
    let runs = dir.path().join("runs.log");
    Project { dir, runs }
}

impl Project {
    fn work(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// The sandbox runs recorded so far.
    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.runs)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    }

    /// The Sentry event of `nightly()` crashing in `parse_quantity`.
    fn event(&self) -> domain::event::Event {
        let stock = STOCK.replace("    if not text:\n        return 0\n", "");
        let line = stock
            .lines()
            .position(|l| l == "    return int(text)")
            .unwrap() as u32
            + 1;
        let body = json!({
            "event_id": "0f5b2c1d3e4a49f8a1b2c3d4e5f60718",
            "timestamp": now() as f64,
            "platform": "python",
            "level": "error",
            "exception": {"values": [{
                "type": "ValueError",
                "value": "invalid literal for int() with base 10: ''",
                "stacktrace": {"frames": [
                    {"filename": "main.py", "abs_path": "/srv/app/main.py", "module": "__main__",
                     "function": "<module>", "lineno": 8, "in_app": true,
                     "context_line": "nightly()"},
                    {"filename": "main.py", "abs_path": "/srv/app/main.py", "module": "__main__",
                     "function": "nightly", "lineno": 5, "in_app": true,
                     "context_line": "    return restock({}, \"apple\", \"\")"},
                    {"filename": "inventory/stock.py", "abs_path": "/srv/app/inventory/stock.py",
                     "module": "inventory.stock", "function": "restock", "lineno": line + 4,
                     "in_app": true,
                     "context_line": "    levels[item] = levels.get(item, 0) + parse_quantity(text)"},
                    {"filename": "inventory/stock.py", "abs_path": "/srv/app/inventory/stock.py",
                     "module": "inventory.stock", "function": "parse_quantity", "lineno": line,
                     "in_app": true, "context_line": "    return int(text)"}
                ]}
            }]}
        });
        domain::event::parse_event(body.to_string().as_bytes())
            .unwrap()
            .event
    }

    fn options(&self, avoid: Vec<AvoidedFix>, llm: Option<LlmConfig>) -> HealOptions {
        HealOptions {
            // The test passes when the guard's `return 0` is back, whatever
            // the condition; every run is logged outside the worktree.
            test_command: Some(format!(
                "echo run >> '{}'; grep -q 'return 0' inventory/stock.py",
                self.runs.display()
            )),
            sandbox: SandboxConfig {
                backend: Backend::Process,
                timeout: Duration::from_secs(60),
                ..SandboxConfig::default()
            },
            llm,
            // A later round knows what it remembers and why.
            history: (!avoid.is_empty()).then(|| HISTORY.to_string()),
            avoid,
            ..HealOptions::default()
        }
    }

    /// Runs the ladder from a thread that is not a runtime worker, as the
    /// service does.
    fn heal(
        &self,
        options: &HealOptions,
        runtime: &tokio::runtime::Runtime,
    ) -> (HealReport, Option<Transcript>) {
        let repo = Repo::open(&self.work()).unwrap();
        let mut index = CodeIndex::new();
        heal(&repo, &mut index, &self.event(), options, runtime.handle()).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The first round: nothing to avoid, the revert passes the suite (plausible:
/// this suite cannot reproduce the error). Its patch is
/// what a later round remembers.
fn first_round(project: &Project, runtime: &tokio::runtime::Runtime) -> HealReport {
    let (report, _) = project.heal(&project.options(Vec::new(), None), runtime);
    assert_eq!(report.outcome, Outcome::Plausible, "{report:#?}");
    assert_eq!(report.strategy, Some(Strategy::Revert));
    report
}

fn avoid(report: &HealReport) -> Vec<AvoidedFix> {
    vec![AvoidedFix {
        patch_sha: report.fix_sha().unwrap(),
        reason: "reverted in PR #4, and the error recurred on release 1.2.4".to_string(),
    }]
}

/// With the revert remembered and no LLM, the revert is refused untested and
/// the ladder escalates.
#[test]
fn a_revert_that_did_not_hold_is_refused_untested() {
    let project = project();
    let runtime = runtime();
    let first = first_round(&project, &runtime);
    assert_eq!(project.runs(), 2, "baseline and the revert");

    let (report, transcript) = project.heal(&project.options(avoid(&first), None), &runtime);

    assert_eq!(project.runs(), 3, "only the baseline ran this round");
    assert!(transcript.is_none());
    assert_eq!(report.outcome, Outcome::Escalated, "{report:#?}");
    assert_eq!(report.strategy, None);
    assert!(report.fix_patch().is_none());
    assert!(report.tests.patched.is_none());
    let revert = report.rungs.iter().find(|r| r.rung == "revert").unwrap();
    assert_eq!(
        (revert.rung.as_str(), revert.status),
        ("revert", RungStatus::Failed)
    );
    assert!(
        revert
            .reason
            .contains("was proposed before and did not hold")
            && revert.reason.contains("release 1.2.4"),
        "{}",
        revert.reason
    );
    assert_eq!(report.attempts.len(), 1);
    let attempt = &report.attempts[0];
    assert_eq!(attempt.strategy, Strategy::Revert);
    let violation = attempt.violation.as_ref().unwrap();
    assert_eq!(violation.kind, "previously_failed");
    assert_eq!(
        violation.message,
        "reverted in PR #4, and the error recurred on release 1.2.4"
    );
    assert!(attempt.tests.is_none() && !attempt.proven);
    let statuses: Vec<_> = report.rungs.iter().map(|r| r.rung.as_str()).collect();
    assert_eq!(statuses, ["partial_revert", "revert", "llm", "escalate"]);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["history"], HISTORY);
    assert_eq!(
        json["attempts"][0]["violation"]["kind"],
        "previously_failed"
    );
    let md = report.to_markdown();
    assert!(md.contains("### Fix memory"), "{md}");
    assert!(md.contains(&format!("- {HISTORY}")), "{md}");
    assert!(
        md.contains("1 candidate fix of this round repeated a fix that did not hold"),
        "{md}"
    );
}

/// Without history the report says nothing about fix memory.
#[test]
fn a_first_round_has_no_fix_memory() {
    let project = project();
    let runtime = runtime();
    let (report, _) = project.heal(&project.options(Vec::new(), None), &runtime);
    assert_eq!(report.outcome, Outcome::Plausible);
    assert!(!report.to_markdown().contains("Fix memory"));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("history").is_none(), "{json:#}");

    // The diagnosis it started from reads as a reply for a person.
    let explained = report.diagnosis.to_markdown();
    assert!(explained.contains("**Culprit:** `"), "{explained}");
    assert!(
        explained.contains("stock: simplify quantity parsing by Ben Ito"),
        "{explained}"
    );
    assert!(explained.contains("- `inventory/stock.py:"), "{explained}");
    assert!(
        explained.contains("2 commits scanned from the last 14 days"),
        "{explained}"
    );
}

/// With the revert remembered, the LLM rung runs after it. The model first
/// submits the same fix as edits: it is refused untested and the refusal is
/// its tool result; its different fix is then proven. The prompt carried the
/// record of earlier fixes as a fenced data block.
#[test]
fn the_llm_rung_runs_after_the_refused_revert_and_reads_the_history() {
    let project = project();
    let runtime = runtime();
    let first = first_round(&project, &runtime);
    let same_as_revert = json!({"edits": [{
        "path": "inventory/stock.py",
        "search": "    text = text.strip()\n    return int(text)\n",
        "replace": "    text = text.strip()\n    if not text:\n        return 0\n    return int(text)\n",
    }]});
    let different = json!({"edits": [{
        "path": "inventory/stock.py",
        "search": "    text = text.strip()\n    return int(text)\n",
        "replace": "    text = text.strip()\n    if text == \"\":\n        return 0\n    return int(text)\n",
    }]});
    let fake = runtime.block_on(FakeOpenAi::start([
        Reply::tool_call("submit_edits", same_as_revert),
        Reply::tool_call("submit_edits", different),
    ]));
    let mut config = LlmConfig::new(&fake.base_url(), "fake-model");
    config.api_key = Some("sk-fake-key-for-tests-000111".to_string());
    config.request_timeout = Duration::from_secs(20);
    config.wall_time = Duration::from_secs(60);
    let runs_before = project.runs();

    let (report, transcript) =
        project.heal(&project.options(avoid(&first), Some(config)), &runtime);

    assert!(fake.errors().is_empty(), "{:?}", fake.errors());
    assert_eq!(report.outcome, Outcome::Plausible, "{report:#?}");
    assert_eq!(report.strategy, Some(Strategy::Llm));
    // Without a reproduction the partial revert is skipped.
    assert_eq!(report.rungs[0].status, RungStatus::Skipped);
    assert_eq!(report.rungs[1].status, RungStatus::Failed);
    assert_eq!(report.rungs[2].status, RungStatus::Proven);
    let kinds: Vec<_> = report
        .attempts
        .iter()
        .map(|a| {
            let kind = a.violation.as_ref().map(|v| v.kind.as_str());
            (a.strategy, kind.unwrap_or("tested"), a.tests.is_some())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (Strategy::Revert, "previously_failed", false),
            (Strategy::Llm, "previously_failed", false),
            (Strategy::Llm, "tested", true),
        ]
    );
    assert_eq!(
        project.runs() - runs_before,
        2,
        "the baseline and the model's different fix"
    );
    assert!(
        report
            .fix_patch()
            .unwrap()
            .contains("+    if text == \"\":")
    );
    assert!(transcript.is_some());

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let task = requests[0].messages()[1]["content"].as_str().unwrap();
    let history = task
        .split_once("## Earlier fixes\n")
        .expect("an earlier-fixes section")
        .1;
    assert!(
        history.contains(&format!(
            "````text untrusted data from suture's record of earlier fixes\n{HISTORY}\n````"
        )),
        "{task}"
    );
    let refusal = requests[1]
        .messages()
        .iter()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap()
        .to_string();
    assert!(
        refusal.contains("previously_failed") && refusal.contains("did not hold"),
        "{refusal}"
    );
}
