//! The outputs of a round's steps as they are persisted: typed, and read
//! back through serde by the next step (or by a resumed job), never by key.

use agent::diagnose::Diagnosis;
use agent::heal::{HealReport, Outcome, Strategy};
use agent::reproduce::Reproduced;
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

/// The reproduction step's output: the baseline, the reproducing test
/// (kept so the heal step checks fixes against the same one), and the
/// model's test-writing transcript when it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReproduceOutput {
    #[serde(flatten)]
    pub(crate) reproduced: Reproduced,
}

impl StepOutput for ReproduceOutput {
    fn summary(&self, _: Step) -> String {
        match self.reproduced.record.kind {
            Some(kind) => format!("reproduced ({})", kind.as_str()),
            None => "not reproduced".to_owned(),
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
    /// The chosen fix with its regression test, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fix_patch: Option<String>,
    /// The fix's hash (without the test), the key of the fix memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) patch_sha: Option<String>,
    /// Every request, reply and tool call of the LLM rung, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transcript: Option<Value>,
}

impl HealOutput {
    /// The fix to put on a branch, and its hash: a proven fix, or a
    /// plausible one (no reproduction) when it is a revert or the
    /// repository proposes unreproduced fixes. A plausible model-written
    /// patch otherwise stays a suggestion.
    pub(crate) fn branch_patch(&self, propose_unreproduced: bool) -> Option<(&str, &str)> {
        let fix = (self.fix_patch.as_deref()?, self.patch_sha.as_deref()?);
        match self.report.outcome {
            Outcome::Proven => Some(fix),
            Outcome::Plausible
                if propose_unreproduced || self.report.strategy == Some(Strategy::Revert) =>
            {
                Some(fix)
            }
            Outcome::Plausible | Outcome::Unproven | Outcome::Escalated => None,
        }
    }

    /// A plausible fix that goes into the tracking issue as a suggestion.
    pub(crate) fn suggested_patch(&self, propose_unreproduced: bool) -> Option<(&str, &str)> {
        if self.report.outcome != Outcome::Plausible
            || self.branch_patch(propose_unreproduced).is_some()
        {
            return None;
        }
        Some((self.fix_patch.as_deref()?, self.patch_sha.as_deref()?))
    }

    /// Whether the fix is proven against a reproduction of the error.
    pub(crate) fn reproduced(&self) -> bool {
        self.report.outcome == Outcome::Proven && self.report.reproduction.reproduced()
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
                "note": null, "since": null, "days": 14, "source": "days"},
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
            "culprit_confirmed_by": "reproduction",
            "reproduction": {"kind": "replay",
                "tests": [{"file": "tests/test_app_f_replay.py", "name": "t"}],
                "command": "pytest", "at_revision": run, "at_base": null, "with_fix": run,
                "refused": [], "reason": null},
            "revision": "1111111111111111111111111111111111111111",
            "title": "ZeroDivisionError: division by zero",
            "event_id": "e1",
            "sandbox": "bubblewrap",
            "test_command": "pytest",
            "tests": {"baseline": run, "patched": run},
            "patch": {"files": ["app.py"], "added": 2, "removed": 0},
            "rungs": [{"rung": "revert", "status": "proven", "reason": "the revert is proven"}],
            "attempts": [{"strategy": "revert", "patch": {"files": ["app.py"], "added": 2,
                "removed": 0}, "violation": null, "tests": run, "proven": true,
                "plausible": false}],
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
            heal.branch_patch(false),
            Some(("--- a/app.py\n+++ b/app.py\n", "abc"))
        );
        assert!(heal.reproduced());
        assert_eq!(heal.summary(Step::Heal), "heal finished: proven");

        // A heal step saved before reproductions existed still reads.
        let mut old = stored.clone();
        let old_map = old.as_object_mut().unwrap();
        old_map.remove("reproduction");
        old_map.remove("culprit_confirmed_by");
        let old: HealOutput = serde_json::from_value(old).unwrap();
        assert!(!old.reproduced());
    }

    /// A plausible revert goes on a branch; a plausible model-written patch
    /// is a suggestion unless the repository proposes unreproduced fixes.
    #[test]
    fn plausible_fixes_are_proposed_by_strategy() {
        let run = json!({"command": "pytest", "backend": "bubblewrap", "exit": 0,
            "signal": null, "timed_out": false, "duration_ms": 30, "output_tail": ""});
        let heal = |strategy: &str| -> HealOutput {
            serde_json::from_value(json!({
                "outcome": "plausible", "strategy": strategy, "culprit": null,
                "revision": "1111111111111111111111111111111111111111", "title": "t",
                "event_id": null, "sandbox": "bubblewrap", "test_command": "pytest",
                "tests": {"baseline": run, "patched": run}, "patch": null, "rungs": [],
                "attempts": [], "llm": null, "diagnosis": diagnosis(), "elapsed_ms": 1,
                "markdown": "", "fix_patch": "diff", "patch_sha": "sha",
            }))
            .unwrap()
        };
        let revert = heal("revert");
        assert_eq!(revert.branch_patch(false), Some(("diff", "sha")));
        assert_eq!(revert.suggested_patch(false), None);
        assert!(!revert.reproduced());
        let llm = heal("llm");
        assert_eq!(llm.branch_patch(false), None);
        assert_eq!(llm.suggested_patch(false), Some(("diff", "sha")));
        assert_eq!(llm.branch_patch(true), Some(("diff", "sha")));
        assert_eq!(llm.suggested_patch(true), None);
    }
}
