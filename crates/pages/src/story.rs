//! An incident's story as its steps persisted it: the latest round's
//! outputs of `diagnose`, `reproduce`, `heal` and `propose` (only that
//! round's: while round 2 diagnoses, round 1's fix is not shown as its
//! own; the fix memory lists earlier rounds' fixes).
//!
//! Read as JSON by key rather than through the service's typed outputs:
//! the service depends on this crate, not the other way round, and a page
//! must still show what it can of an output written by an older or newer
//! version (a missing or odd field is shown as absent, never an error).

use serde_json::Value;
use store::{JobKind, JobSummary};

/// The persisted outputs of an incident's latest round.
#[derive(Debug, Clone, Default)]
pub struct Story {
    /// The diagnose step's output (`Null` when it has none).
    pub diagnosis: Value,
    /// The reproduce step's output.
    pub reproduce: Value,
    /// The heal step's output (the heal report, `fix_patch`, …).
    pub heal: Value,
    /// The propose step's output (`pr_number`, `pr_url`, `message`, …).
    pub proposal: Value,
}

/// The commit a diagnosis blames, with what the suspects list says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Culprit {
    /// The full commit id.
    pub commit: String,
    /// The commit's subject line, when it is among the suspects.
    pub subject: Option<String>,
    /// Its author.
    pub author: Option<String>,
    /// When it was committed.
    pub time: Option<String>,
}

impl Culprit {
    /// The first ten characters of the commit id.
    pub fn short(&self) -> &str {
        short(&self.commit)
    }
}

/// The first ten characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// `value[key]` as text.
pub fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `value[key]` as an array (empty when absent or not one).
pub fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl Story {
    /// The outputs of the latest round's pipeline job among `jobs` (later
    /// jobs come later).
    pub fn from_jobs(jobs: &[JobSummary]) -> Story {
        let round = |job: &JobSummary| match JobKind::parse(&job.kind) {
            JobKind::Pipeline { round } => Some(round),
            _ => None,
        };
        let latest = jobs.iter().filter_map(round).max();
        let output = |name: &str| -> Value {
            jobs.iter()
                .filter(|job| round(job) == latest)
                .rev()
                .flat_map(|job| job.steps.iter())
                .find(|step| step.step == name && step.output.is_some())
                .and_then(|step| step.output.as_deref())
                .and_then(|output| serde_json::from_str(output).ok())
                .unwrap_or(Value::Null)
        };
        Story {
            diagnosis: output(store::Step::Diagnose.as_str()),
            reproduce: output(store::Step::Reproduce.as_str()),
            heal: output(store::Step::Heal.as_str()),
            proposal: output(store::Step::Propose.as_str()),
        }
    }

    /// The diagnosis: the one the heal report carries (later, with the
    /// confidence its experiments confirmed), else the diagnose step's.
    fn diagnosis(&self) -> &Value {
        match self.heal.get("diagnosis") {
            Some(diagnosis) if diagnosis.is_object() => diagnosis,
            _ => &self.diagnosis,
        }
    }

    /// The blamed commit: the heal report's (confirmed by a reproduction
    /// or bisection when it says so), else the diagnosis's.
    pub fn culprit(&self) -> Option<Culprit> {
        let commit = text(&self.heal, "culprit").or_else(|| text(self.diagnosis(), "culprit"))?;
        let suspect = self
            .suspects()
            .iter()
            .find(|suspect| text(suspect, "commit") == Some(commit));
        let field = |key: &str| suspect.and_then(|s| text(s, key)).map(str::to_owned);
        Some(Culprit {
            commit: commit.to_owned(),
            subject: field("subject"),
            author: field("author"),
            time: field("time"),
        })
    }

    /// What confirmed the culprit (`reproduction`, `bisection`, …).
    pub fn culprit_confirmed_by(&self) -> Option<&str> {
        text(&self.heal, "culprit_confirmed_by")
    }

    /// The diagnosis's confidence, from 0 to 1.
    pub fn confidence(&self) -> Option<f64> {
        self.diagnosis().get("confidence").and_then(Value::as_f64)
    }

    /// The rung that made the fix (`revert`, `partial_revert`, `llm`, …).
    pub fn strategy(&self) -> Option<&str> {
        text(&self.heal, "strategy")
    }

    /// The heal outcome (`proven`, `plausible`, `unproven`, `escalated`).
    pub fn outcome(&self) -> Option<&str> {
        text(&self.heal, "outcome")
    }

    /// The fix with its regression test, a unified diff.
    pub fn fix_patch(&self) -> Option<&str> {
        text(&self.heal, "fix_patch").filter(|patch| !patch.trim().is_empty())
    }

    /// The revision the diagnosis read (the deployed one).
    pub fn revision(&self) -> Option<&str> {
        text(self.diagnosis(), "revision")
    }

    /// The stack as the diagnosis mapped it onto the repository, innermost
    /// last as the SDK sent it.
    pub fn frames(&self) -> &[Value] {
        list(self.diagnosis(), "frames")
    }

    /// The suspect commits, best first, with their evidence.
    pub fn suspects(&self) -> &[Value] {
        list(self.diagnosis(), "suspects")
    }

    /// The likely locations of the fault, best first.
    pub fn locations(&self) -> &[Value] {
        list(self.diagnosis(), "locations")
    }

    /// The reproduction record: the heal report's (with the run with the
    /// fix), else the reproduce step's.
    pub fn reproduction(&self) -> Option<&Value> {
        self.heal
            .get("reproduction")
            .or_else(|| self.reproduce.get("record"))
            .filter(|record| record.is_object())
    }

    /// The suite's run at the deployed revision, and with the fix.
    pub fn test_runs(&self) -> (Option<&Value>, Option<&Value>) {
        let tests = self.heal.get("tests");
        let run = |key: &str| {
            tests
                .and_then(|tests| tests.get(key))
                .filter(|run| run.is_object())
        };
        let baseline = run("baseline")
            .or_else(|| self.reproduce.get("baseline").filter(|run| run.is_object()));
        (baseline, run("patched"))
    }

    /// The rungs of the fix ladder tried, each with its status and reason.
    pub fn rungs(&self) -> &[Value] {
        list(&self.heal, "rungs")
    }

    /// The pull request the propose step opened.
    pub fn pr_number(&self) -> Option<i64> {
        self.proposal.get("pr_number").and_then(Value::as_i64)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use store::{JobSummary, StepSummary};

    use super::*;

    fn step(name: &str, output: Value) -> StepSummary {
        StepSummary {
            step: name.to_owned(),
            state: "finished".to_owned(),
            runs: 1,
            started_at: chrono::Utc::now(),
            finished_at: Some(chrono::Utc::now()),
            output: Some(output.to_string()),
        }
    }

    fn job(kind: &str, steps: Vec<StepSummary>) -> JobSummary {
        JobSummary {
            id: 1,
            kind: kind.to_owned(),
            state: "done".to_owned(),
            attempts: 1,
            last_error: None,
            steps,
        }
    }

    /// The latest round wins, the culprit is described from the suspects,
    /// and odd shapes read as absent rather than failing the page.
    #[test]
    fn the_latest_round_tells_the_story() {
        let diagnosis = |culprit: &str| {
            json!({"culprit": culprit, "confidence": 0.75, "revision": "r",
                "suspects": [{"commit": culprit, "subject": "drop the guard", "author": "Ann"}],
                "frames": [{"path": "app.py"}], "locations": "not a list"})
        };
        let jobs = vec![
            job(
                "pipeline",
                vec![
                    step("diagnose", diagnosis("aaaaaaaaaaaaaaaa")),
                    step("reproduce", json!({"record": {"kind": "replay"}})),
                ],
            ),
            job(
                "pipeline/2",
                vec![
                    step("diagnose", diagnosis("bbbbbbbbbbbbbbbb")),
                    step(
                        "heal",
                        json!({"strategy": "revert", "fix_patch": "  ", "tests": 3}),
                    ),
                    step("propose", json!({"pr_number": 7})),
                ],
            ),
            job(
                "forge_event/9",
                vec![step("diagnose", json!({"culprit": "cccc"}))],
            ),
        ];
        let story = Story::from_jobs(&jobs);
        let culprit = story.culprit().unwrap();
        assert_eq!(culprit.short(), "bbbbbbbbbb");
        assert_eq!(culprit.subject.as_deref(), Some("drop the guard"));
        assert_eq!(culprit.author.as_deref(), Some("Ann"));
        assert_eq!(story.confidence(), Some(0.75));
        assert_eq!(story.strategy(), Some("revert"));
        assert_eq!(story.fix_patch(), None);
        assert_eq!(story.frames().len(), 1);
        assert!(story.locations().is_empty());
        assert_eq!(story.test_runs(), (None, None));
        assert_eq!(story.pr_number(), Some(7));
        // Round 1's reproduction is not round 2's.
        assert_eq!(story.reproduction(), None);

        // The heal report's diagnosis is the later word.
        let mut healed = story.clone();
        healed.heal["diagnosis"] = json!({"confidence": 0.95});
        assert_eq!(healed.confidence(), Some(0.95));

        let empty = Story::from_jobs(&[]);
        assert_eq!(empty.culprit(), None);
        assert_eq!(empty.reproduction(), None);
    }
}
