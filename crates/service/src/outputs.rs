//! The outputs of a round's steps as they are persisted: typed, and read
//! back through serde by the next step (or by a resumed job), never by key.

use agent::diagnose::Diagnosis;
use agent::heal::{HealReport, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::Step;

use crate::job::StepOutput;

/// The diagnose step's output: the diagnosis, and its Markdown for people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DiagnoseOutput {
    #[serde(flatten)]
    pub(crate) diagnosis: Diagnosis,
    pub(crate) markdown: String,
}

impl StepOutput for DiagnoseOutput {
    fn summary(&self, _: Step) -> String {
        match &self.diagnosis.culprit {
            Some(culprit) => format!("diagnosed: culprit {}", short(culprit)),
            None => "diagnosed: no culprit with confidence".to_owned(),
        }
    }
}

/// The heal step's output: the report (`report.json`), its Markdown (the
/// pull request's body), the proven patch and the LLM transcript.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HealOutput {
    #[serde(flatten)]
    pub(crate) report: HealReport,
    pub(crate) markdown: String,
    /// The proven patch, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fix_patch: Option<String>,
    /// Its hash, the key of the fix memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) patch_sha: Option<String>,
    /// Every request, reply and tool call of the LLM rung, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transcript: Option<Value>,
}

impl HealOutput {
    /// The proven patch and its hash, when the ladder proved one.
    pub(crate) fn proven_patch(&self) -> Option<(&str, &str)> {
        if self.report.outcome != Outcome::Proven {
            return None;
        }
        Some((self.fix_patch.as_deref()?, self.patch_sha.as_deref()?))
    }
}

impl StepOutput for HealOutput {
    fn summary(&self, _: Step) -> String {
        format!("heal finished: {}", self.report.outcome.as_str())
    }
}

/// What the propose step made: a pull request, or a tracking issue alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ProposeOutput {
    /// The timeline's line.
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pr_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) head_sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tracking_issue: Option<i64>,
    /// Whether the pull request was created now (false: found from an
    /// earlier run of the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<bool>,
}

impl StepOutput for ProposeOutput {
    fn summary(&self, _: Step) -> String {
        self.message.clone()
    }
}

/// The first ten characters of a commit id.
pub(crate) fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn diagnosis() -> Value {
        json!({
            "title": "ZeroDivisionError: division by zero",
            "revision": "1111111111111111111111111111111111111111",
            "revision_source": "release",
            "window": {"commits": 3, "base": null, "truncated": false, "shallow": false,
                "note": null, "since": null, "days": 14},
            "frames": [{"index": 0, "chain": 0, "path": "app.py", "line": 2, "symbol": "f",
                "function": "f", "in_app": true, "sdk_in_app": true, "mapping": "exact",
                "library": null, "blamed_commit": "2222222222222222222222222222222222222222",
                "weight": 1.0}],
            "suspects": [{"commit": "2222222222222222222222222222222222222222",
                "short_id": "2222222", "author": "Ann", "email": "ann@example.com",
                "time": "2024-01-01T00:00:00+00:00", "subject": "drop the guard", "score": 0.9,
                "evidence": [{"kind": "line", "frame": 0, "path": "app.py", "line": 2,
                    "symbol": "f", "detail": "changed the line"}]}],
            "locations": [{"path": "app.py", "symbol": "f", "kind": "function",
                "start_line": 1, "end_line": 2, "score": 1.0, "reasons": ["on the stack"]}],
            "confidence": 0.8,
            "culprit": "2222222222222222222222222222222222222222",
            "elapsed_ms": 12.5,
        })
    }

    /// What the diagnose and heal steps persist reads back as it was
    /// written, so a resumed job and the propose step see the same values
    /// (the stored shape is the report's, plus the step's own keys).
    #[test]
    fn step_outputs_round_trip() {
        let mut stored = diagnosis();
        stored["markdown"] = json!("## Diagnosis");
        let diagnose: DiagnoseOutput = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&diagnose).unwrap(), stored);
        assert_eq!(
            diagnose.summary(Step::Diagnose),
            "diagnosed: culprit 2222222222"
        );

        let run = json!({"command": "pytest", "backend": "bubblewrap", "exit": 0,
            "signal": null, "timed_out": false, "duration_ms": 30, "output_tail": "1 passed"});
        let stored = json!({
            "outcome": "proven",
            "strategy": "revert",
            "culprit": "2222222222222222222222222222222222222222",
            "revision": "1111111111111111111111111111111111111111",
            "title": "ZeroDivisionError: division by zero",
            "event_id": "e1",
            "sandbox": "bubblewrap",
            "test_command": "pytest",
            "tests": {"baseline": run, "patched": run},
            "patch": {"files": ["app.py"], "added": 2, "removed": 0},
            "rungs": [{"rung": "revert", "status": "proven", "reason": "the revert is proven"}],
            "attempts": [{"strategy": "revert", "patch": {"files": ["app.py"], "added": 2,
                "removed": 0}, "violation": null, "tests": run, "proven": true}],
            "llm": null,
            "diagnosis": diagnosis(),
            "elapsed_ms": 40,
            "markdown": "## Fix",
            "fix_patch": "--- a/app.py\n+++ b/app.py\n",
            "patch_sha": "abc",
        });
        let heal: HealOutput = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&heal).unwrap(), stored);
        assert_eq!(
            heal.proven_patch(),
            Some(("--- a/app.py\n+++ b/app.py\n", "abc"))
        );
        assert_eq!(heal.summary(Step::Heal), "heal finished: proven");
    }
}
