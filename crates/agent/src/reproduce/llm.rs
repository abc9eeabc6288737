//! The *llm* candidate: when an endpoint is configured and neither an
//! existing test nor a replay reproduces the error, the model writes the
//! reproduction test.
//!
//! The model works through a reproduction toolbox (the read tools, the
//! unpatched test run, `submit_test`). A submitted test passes three checks
//! in order, and the first refusal goes back to the model as feedback: the
//! scope guard with the policy for generated patches (no CI, build or
//! runner configuration files such as `conftest.py`), then test files only
//! ([`check_test_only`]: new test files or lines added to existing ones),
//! then the caller's reproduction gate (the test fails at the deployed
//! revision with the production exception raised in the crash function).
//! Only a test the gate accepted is returned, as the scope guard's
//! canonical text, never the model's.

use domain::event::Event;
use repo::index::CodeIndex;
use repo::scope::CheckedPatch;

use super::test_paths::check_test_only;
use crate::diagnose::Diagnosis;
use crate::heal::HealError;
use crate::heal::gates::Gates;
use crate::heal::toolbox::HealToolbox;
use crate::llm::{self, AgentOutcome, AgentTask, LlmConfig, SubmitVerdict, Transcript};

/// What the gate said about a submitted test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TestCheck {
    /// It fails at the deployed revision the way production failed.
    Reproduces {
        /// One line on how it reproduced (test name, exception, function),
        /// for the model and the transcript.
        summary: String,
    },
    /// It does not reproduce the error, or could not be judged.
    Refused {
        /// Why, for the model to act on.
        reason: String,
    },
}

/// How the model's attempt at a reproduction ended.
#[derive(Debug)]
pub(crate) struct LlmReproduction {
    /// The accepted test patch (the scope guard's canonical text), when the
    /// gate accepted one.
    pub(crate) patch: Option<String>,
    /// How the agent loop ended; `Proven` exactly when `patch` is `Some`.
    pub(crate) outcome: AgentOutcome,
    /// Every step of the attempt.
    pub(crate) transcript: Transcript,
}

/// Has the model write a reproduction test for `event`. Each test it
/// submits is checked with the generated-patch scope policy of `gates`,
/// then refused unless it only creates test files or adds lines to them,
/// and only then handed to `check` as the canonical diff text. The attempt
/// ends when `check` says [`TestCheck::Reproduces`], when the model gives
/// up, or when a budget of `config` runs out.
///
/// `runtime` drives the agent loop: call this from a thread that is not a
/// runtime worker. An error from `check` (the sandbox could not run) goes
/// to the model as a refusal, as a fix's does in the LLM rung; only failing
/// to make the toolbox's checkout is an error here.
pub(crate) fn write_reproduction(
    gates: &Gates<'_>,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: &Diagnosis,
    config: &LlmConfig,
    runtime: &tokio::runtime::Handle,
    check: &mut dyn FnMut(&str) -> Result<TestCheck, HealError>,
) -> Result<LlmReproduction, HealError> {
    let mut judge = |checked: &CheckedPatch, root: &std::path::Path| -> SubmitVerdict {
        if let Err(reason) = check_test_only(checked, root) {
            return SubmitVerdict::Rejected {
                feedback: format!("test refused: {reason}"),
            };
        }
        match check(&checked.text) {
            Ok(TestCheck::Reproduces { summary }) => SubmitVerdict::Proven { summary },
            Ok(TestCheck::Refused { reason }) => SubmitVerdict::Rejected {
                feedback: format!("the test does not reproduce the error: {reason}"),
            },
            Err(error) => SubmitVerdict::Rejected {
                feedback: format!("the test could not be run: {error}"),
            },
        }
    };
    let mut toolbox = HealToolbox::for_reproduction(gates, index, diagnosis, &mut judge)?;
    let prompts = llm::render_prompts(
        AgentTask::Reproduce,
        &toolbox.prompt_input(event, diagnosis, None, None),
    );
    let mut transcript = Transcript::default();
    let outcome = runtime.block_on(llm::run_agent(
        config,
        &prompts,
        &mut toolbox,
        &mut transcript,
    ));
    let patch = toolbox.into_accepted_test();
    Ok(LlmReproduction {
        patch,
        outcome,
        transcript,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fakes::openai::{FakeOpenAi, Reply};
    use repo::git::Repo;
    use repo::git2::{Oid, Repository, Signature};
    use repo::sandbox::{Backend, SandboxConfig};
    use repo::scope::ScopePolicy;
    use serde_json::json;

    use super::*;
    use crate::redact::Redactor;

    const APP: &str = "def ratio(total, count):\n    return total / count\n";
    const EXISTING_TEST: &str =
        "from app import ratio\n\n\ndef test_ratio():\n    assert ratio(4, 2) == 2\n";

    fn repository(dir: &Path) -> Oid {
        let git = Repository::init(dir).unwrap();
        let mut index = git.index().unwrap();
        for (path, text) in [("app.py", APP), ("tests/test_app.py", EXISTING_TEST)] {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let me = Signature::now("Dev", "dev@example.test").unwrap();
        git.commit(Some("HEAD"), &me, &me, "start", &tree, &[])
            .unwrap()
    }

    fn diagnosis(revision: Oid) -> Diagnosis {
        serde_json::from_value(json!({
            "title": "ZeroDivisionError: division by zero",
            "revision": revision.to_string(),
            "revision_source": "head",
            "window": {"commits": 0, "base": null, "truncated": false, "since": null, "days": null},
            "frames": [{
                "index": 0, "chain": 0, "path": "app.py", "line": 2, "symbol": "ratio",
                "function": "ratio", "vars": {"total": 4, "count": 0}, "in_app": true,
                "sdk_in_app": true, "mapping": "exact", "library": null, "blamed_commit": null,
                "weight": 1.0
            }],
            "suspects": [], "locations": [], "confidence": 0.0,
            "culprit": null, "elapsed_ms": 0.0
        }))
        .unwrap()
    }

    fn event() -> Event {
        Event {
            exceptions: vec![domain::event::Exception {
                ty: Some("ZeroDivisionError".to_string()),
                value: Some("division by zero".to_string()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// What one scripted reproduction attempt did.
    struct Run {
        result: LlmReproduction,
        /// Every text `check` was called with.
        checked: Vec<String>,
        /// The tool results the model was sent, in order.
        tool_results: Vec<String>,
        /// The system prompt and the tools offered in the first request.
        system: String,
        offered: Vec<String>,
    }

    /// Runs `write_reproduction` over a fresh repository with the model
    /// scripted by `replies`; `check` accepts every test it is asked about.
    fn run(replies: Vec<Reply>) -> Run {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(FakeOpenAi::start(replies));
        let dir = tempfile::tempdir().unwrap();
        let revision = repository(dir.path());
        let repo = Repo::open(dir.path()).unwrap();
        let sandbox = SandboxConfig {
            backend: Backend::Process,
            ..SandboxConfig::default()
        };
        let policy = ScopePolicy::default();
        let redactor = Redactor::default();
        let gates = Gates {
            repo: &repo,
            revision,
            sandbox: &sandbox,
            test_command: "python -m pytest -q",
            policy: &policy,
            redactor: &redactor,
            avoid: &[],
            reproduction: None,
        };
        let mut index = CodeIndex::new();
        let config = LlmConfig::new(&fake.base_url(), "test-model");
        let mut checked = Vec::new();
        let mut check = |text: &str| {
            checked.push(text.to_string());
            Ok(TestCheck::Reproduces {
                summary: "tests/test_repro.py::test_ratio_of_nothing fails with \
                          ZeroDivisionError in ratio"
                    .to_string(),
            })
        };
        let result = write_reproduction(
            &gates,
            &mut index,
            &event(),
            &diagnosis(revision),
            &config,
            runtime.handle(),
            &mut check,
        )
        .unwrap();
        assert_eq!(fake.errors(), Vec::<String>::new(), "contract violations");
        let requests = fake.requests();
        let last = requests.last().unwrap();
        let tool_results = last
            .messages()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .collect();
        let first = &requests[0];
        Run {
            result,
            checked,
            tool_results,
            system: first.messages()[0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            offered: first.body["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect(),
        }
    }

    fn give_up() -> Reply {
        Reply::tool_call("give_up", json!({ "reason": "cannot reproduce" }))
    }

    /// A test submitted as a change to application code is refused by the
    /// test-only rule, before the gate is asked.
    #[test]
    fn a_test_touching_application_code_is_refused_without_running_it() {
        let edits = json!({ "edits": [
            { "path": "app.py", "search": "    return total / count", "replace": "    return total / count  # probe" }
        ] });
        let run = run(vec![Reply::tool_call("submit_test", edits), give_up()]);

        assert!(
            run.checked.is_empty(),
            "check was called: {:?}",
            run.checked
        );
        assert_eq!(run.result.patch, None);
        assert!(
            matches!(run.result.outcome, AgentOutcome::GaveUp { .. }),
            "{:?}",
            run.result.outcome
        );
        assert_eq!(run.tool_results.len(), 1);
        assert!(
            run.tool_results[0].starts_with("rejected: test refused: app.py is not a test file"),
            "{}",
            run.tool_results[0]
        );
        assert!(run.offered.contains(&"submit_test".to_string()));
        assert!(!run.offered.contains(&"submit_patch".to_string()));
        assert!(run.system.contains("reproduction agent"), "{}", run.system);
    }

    /// A test that removes a line of an existing test file is refused: an
    /// existing test file may only gain lines.
    #[test]
    fn a_test_removing_an_existing_line_is_refused() {
        let diff = "--- a/tests/test_app.py\n+++ b/tests/test_app.py\n@@ -3,3 +3,3 @@\n \n \
                    def test_ratio():\n-    assert ratio(4, 2) == 2\n+    assert ratio(4, 0) == 0\n";
        let run = run(vec![
            Reply::tool_call("submit_test", json!({ "diff": diff })),
            give_up(),
        ]);

        assert!(
            run.checked.is_empty(),
            "check was called: {:?}",
            run.checked
        );
        assert_eq!(run.result.patch, None);
        assert!(
            run.tool_results[0].starts_with(
                "rejected: test refused: tests/test_app.py: the patch removes or changes 1 \
                 existing line(s)"
            ),
            "{}",
            run.tool_results[0]
        );
    }

    /// A new test file reaches the gate as the scope guard's canonical
    /// text; the gate's acceptance ends the attempt proven, with that text.
    #[test]
    fn a_new_test_file_the_gate_accepts_is_the_reproduction() {
        let test = "from app import ratio\n\n\ndef test_ratio_of_nothing():\n    \
                    assert ratio(4, 0) == 0\n";
        let edits =
            json!({ "edits": [{ "path": "tests/test_repro.py", "search": "", "replace": test }] });
        let run = run(vec![Reply::tool_call("submit_test", edits)]);

        assert_eq!(run.checked.len(), 1);
        let canonical = &run.checked[0];
        assert!(
            canonical.starts_with("diff --git a/tests/test_repro.py b/tests/test_repro.py\n"),
            "{canonical}"
        );
        assert!(
            canonical.contains("+def test_ratio_of_nothing():\n"),
            "{canonical}"
        );
        assert_eq!(run.result.patch.as_ref(), Some(canonical));
        assert_eq!(
            run.result.outcome,
            AgentOutcome::Proven {
                rounds: 1,
                tokens: 120,
                summary: "tests/test_repro.py::test_ratio_of_nothing fails with \
                          ZeroDivisionError in ratio"
                    .to_string(),
            }
        );
        assert!(run.result.transcript.entries.len() > 3);
    }
}
