//! The heal report: `report.json` (the schema documented in docs/heal.md) and
//! `report.md`, the pull request body a reviewer reads.

use std::fmt::Write as _;

use repo::sandbox::RunOutcome;
use repo::scope::{CheckedPatch, ScopeViolation};
use serde::{Deserialize, Serialize};

use super::memory::AvoidedFix;
use crate::diagnose::Diagnosis;
use crate::markdown::{code, defuse_commands, fenced, inline};
use crate::redact::Redactor;
use crate::reproduce::{ConfirmedBy, Reproduction, ReproductionKind};

/// `text`, ending with a newline so another diff can follow it.
fn ensure_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// Bytes of test output kept in reports.
const OUTPUT_TAIL_BYTES: usize = 4_000;

/// How healing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A patch passed the scope guard, the reproduction of the production
    /// error passes with it, and so does the test suite.
    Proven,
    /// A patch passed the scope guard and the test suite passes with it,
    /// but the error was not reproduced: nothing showed that the fix
    /// fixes it.
    Plausible,
    /// Candidate patches were tested, but none passed.
    Unproven,
    /// No candidate patch reached the tests: a human has to take it.
    Escalated,
}

/// Which rung produced the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Revert of the culprit commit.
    Revert,
    /// Revert of only the culprit's hunks the reproduction needs undone.
    PartialRevert,
    /// A patch written by the LLM agent.
    Llm,
}

impl Outcome {
    /// The outcome's name, as in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Proven => "proven",
            Outcome::Plausible => "plausible",
            Outcome::Unproven => "unproven",
            Outcome::Escalated => "escalated",
        }
    }
}

impl Strategy {
    /// The strategy's name, as in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Revert => "revert",
            Strategy::PartialRevert => "partial_revert",
            Strategy::Llm => "llm",
        }
    }
}

/// What happened on one rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RungStatus {
    /// Not tried; `reason` says why.
    Skipped,
    /// Tried, produced no proven patch.
    Failed,
    /// Produced the proven patch.
    Proven,
    /// The escalation rung was reached.
    Escalated,
}

/// One rung of the ladder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RungRecord {
    /// `revert`, `llm` or `escalate`.
    pub rung: String,
    /// What happened.
    pub status: RungStatus,
    /// Why, in a sentence.
    pub reason: String,
}

/// One test run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The command, as run.
    pub command: String,
    /// The sandbox backend it ran in.
    pub backend: String,
    /// Exit status, when it exited.
    pub exit: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// The end of its output (stdout and stderr interleaved), redacted.
    pub output_tail: String,
}

impl RunRecord {
    pub(crate) fn new(outcome: &RunOutcome, redactor: &Redactor) -> RunRecord {
        RunRecord {
            command: outcome.command.clone(),
            backend: outcome.backend.clone(),
            exit: outcome.exit,
            signal: outcome.signal,
            timed_out: outcome.timed_out,
            duration_ms: outcome.duration.as_millis() as u64,
            output_tail: redactor.redact(&outcome.output_tail(OUTPUT_TAIL_BYTES)),
        }
    }

    /// Whether the suite passed.
    pub fn passed(&self) -> bool {
        self.exit == Some(0) && !self.timed_out
    }
}

/// The baseline and patched test runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestRuns {
    /// The suite at the deployed revision.
    pub baseline: Option<RunRecord>,
    /// The suite with the chosen (or last tried) patch.
    pub patched: Option<RunRecord>,
}

/// A scope guard or apply rejection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// Machine-readable kind (`denied`, `outside_repository`, …).
    pub kind: String,
    /// The guard's message.
    pub message: String,
}

impl ViolationRecord {
    /// The kind of a candidate refused because it repeats a fix that did
    /// not hold.
    pub const PREVIOUSLY_FAILED: &'static str = "previously_failed";

    pub(crate) fn previously_failed(fix: &AvoidedFix, redactor: &Redactor) -> ViolationRecord {
        ViolationRecord {
            kind: Self::PREVIOUSLY_FAILED.to_string(),
            message: redactor.redact(&fix.reason),
        }
    }

    /// Whether the candidate was refused as a repeat of a fix that did not
    /// hold.
    pub fn is_previously_failed(&self) -> bool {
        self.kind == Self::PREVIOUSLY_FAILED
    }

    pub(crate) fn new(violation: &ScopeViolation, redactor: &Redactor) -> ViolationRecord {
        ViolationRecord {
            kind: violation.kind().to_string(),
            message: redactor.redact(&violation.to_string()),
        }
    }
}

/// Files and size of a patch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatchSummary {
    /// Paths touched.
    pub files: Vec<String>,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
}

impl PatchSummary {
    pub(crate) fn new(patch: &CheckedPatch) -> PatchSummary {
        PatchSummary {
            files: patch
                .files
                .iter()
                .filter_map(|f| f.new_path.clone().or_else(|| f.old_path.clone()))
                .collect(),
            added: patch.files.iter().map(|f| f.added).sum(),
            removed: patch.files.iter().map(|f| f.removed).sum(),
        }
    }
}

/// One candidate patch through the gates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The rung that proposed it.
    pub strategy: Strategy,
    /// Its size, when it parsed.
    pub patch: Option<PatchSummary>,
    /// Why the guard refused it, if it did.
    pub violation: Option<ViolationRecord>,
    /// The test run with it applied, if it got that far.
    pub tests: Option<RunRecord>,
    /// The reproduction with it applied, when there is a reproduction and
    /// the suite passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduction: Option<RunRecord>,
    /// Whether it is proven: the suite and the reproduction pass.
    pub proven: bool,
    /// Whether the suite passes with it although there is no reproduction
    /// to prove it.
    #[serde(default)]
    pub plausible: bool,
    /// The fix's text, without the regression test (kept out of JSON;
    /// written to `fix.patch` with the test when chosen).
    #[serde(skip)]
    pub text: String,
}

/// One hunk of the culprit, where a reviewer finds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HunkRef {
    /// The file.
    pub path: String,
    /// First line at the deployed revision.
    pub start: u32,
    /// Last line at the deployed revision.
    pub end: u32,
    /// First line of the hunk in the culprit (its new side).
    pub culprit_start: u32,
    /// Lines the culprit added in it.
    pub added: usize,
    /// Lines the culprit removed in it.
    pub removed: usize,
}

impl HunkRef {
    pub(crate) fn new(placed: &super::partial::Placed) -> HunkRef {
        let hunk = &placed.hunk.hunk;
        HunkRef {
            path: placed.hunk.path.clone(),
            start: placed.deployed.0,
            end: placed.deployed.1,
            culprit_start: hunk.new_start,
            added: hunk.added.len(),
            removed: hunk.removed.len(),
        }
    }
}

/// The partial revert rung's search: what it undid and what it kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartialRevertRecord {
    /// The culprit whose hunks were searched (40-hex).
    pub commit: String,
    /// The culprit's subject line, which the kept hunks belong to.
    pub subject: String,
    /// Whether a set of hunks short of the whole commit was proven.
    pub proven: bool,
    /// How many hunks the culprit has.
    pub hunks: usize,
    /// The hunks undone: the proven set, else the widest set tried.
    pub undone: Vec<HunkRef>,
    /// The culprit's other hunks, which stay.
    pub kept: Vec<HunkRef>,
    /// Sandbox runs the search took.
    pub runs: usize,
    /// Why the search widened past the implicated hunks, or why it found
    /// nothing short of the full revert (`every hunk is needed …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widened: Option<String>,
}

/// The LLM rung's summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmSummary {
    /// How the agent loop ended.
    pub outcome: String,
    /// Chat completion requests made.
    pub rounds: u32,
    /// Tokens used.
    pub tokens: u64,
}

/// Everything `suture heal` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealReport {
    /// proven, plausible, unproven or escalated.
    pub outcome: Outcome,
    /// The rung whose patch is proven, if any.
    pub strategy: Option<Strategy>,
    /// The diagnosed culprit (40-hex), if the diagnosis named one.
    pub culprit: Option<String>,
    /// What named the culprit: the diagnosis's score, or an experiment with
    /// the reproduction.
    #[serde(default)]
    pub culprit_confirmed_by: ConfirmedBy,
    /// How the production error was reproduced before any fix was tried.
    #[serde(default)]
    pub reproduction: Reproduction,
    /// The deployed revision the fix applies to.
    pub revision: String,
    /// The error, in one line.
    pub title: String,
    /// The event id, when the event had one.
    pub event_id: Option<String>,
    /// The sandbox backend every test ran in.
    pub sandbox: String,
    /// The test command.
    pub test_command: String,
    /// Baseline and patched runs.
    pub tests: TestRuns,
    /// The proven patch's size.
    pub patch: Option<PatchSummary>,
    /// Every rung, in order.
    pub rungs: Vec<RungRecord>,
    /// Every candidate patch through the gates.
    pub attempts: Vec<Attempt>,
    /// The LLM rung, when it ran.
    pub llm: Option<LlmSummary>,
    /// The partial revert's search, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialRevertRecord>,
    /// The diagnosis the ladder started from.
    pub diagnosis: Diagnosis,
    /// suture's record of earlier fixes for this error, when there were
    /// any (fix memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// Time taken, milliseconds.
    pub elapsed_ms: u64,
}

impl HealReport {
    /// The chosen fix (proven, else plausible) with the regression test,
    /// ready for `fix.patch` and the fix branch.
    pub fn fix_patch(&self) -> Option<String> {
        let fix = self.chosen()?;
        Some(match &self.reproduction.patch {
            Some(test) => format!("{}{}", ensure_newline(&fix.text), test),
            None => fix.text.clone(),
        })
    }

    /// The fix memory's key for the chosen fix: [`super::patch_sha`] of the
    /// fix alone, so the same fix is recognised whatever test came with it.
    pub fn fix_sha(&self) -> Option<String> {
        self.chosen().map(|fix| super::patch_sha(&fix.text))
    }

    /// The attempt the outcome rests on.
    fn chosen(&self) -> Option<&Attempt> {
        match self.outcome {
            Outcome::Proven => self.attempts.iter().find(|a| a.proven),
            Outcome::Plausible => self.attempts.iter().find(|a| a.plausible),
            Outcome::Unproven | Outcome::Escalated => None,
        }
    }

    /// The pull request body: what broke, the evidence, the culprit, the
    /// fix and why it is the smallest safe one, and the test runs.
    ///
    /// Every piece of event- and history-derived text goes through
    /// [`crate::markdown`], and the whole body through a [`Redactor`] of
    /// this process's secrets (and secret shapes) as the last step.
    pub fn to_markdown(&self) -> String {
        self.render_markdown(&Redactor::from_env())
    }

    pub(crate) fn render_markdown(&self, redactor: &Redactor) -> String {
        let mut md = String::new();
        let short = |sha: &str| sha.chars().take(10).collect::<String>();
        let headline = match (self.outcome, self.strategy) {
            (Outcome::Proven, Some(Strategy::Revert)) => {
                "Revert the commit that broke it (reproduced, proven)".to_string()
            }
            (Outcome::Proven, Some(Strategy::PartialRevert)) => {
                "Undo the breaking part of the commit, keep the rest (reproduced, proven)"
                    .to_string()
            }
            (Outcome::Proven, _) => "Fix proven against a reproduction of the error".to_string(),
            (Outcome::Plausible, Some(Strategy::Revert)) => {
                "Revert the likely culprit (unreproduced: plausible, not proven)".to_string()
            }
            (Outcome::Plausible, _) => {
                "Plausible fix (unreproduced: the suite passes, the error was not reproduced)"
                    .to_string()
            }
            (Outcome::Unproven, _) => "No proven fix: candidates failed the gates".to_string(),
            (Outcome::Escalated, _) => "Escalated: no safe fix to propose".to_string(),
        };
        let _ = writeln!(md, "## suture: {headline}\n");
        let _ = writeln!(md, "### What broke\n");
        let _ = writeln!(md, "{}\n", code(&self.title));
        if let Some(event_id) = &self.event_id {
            let _ = writeln!(md, "- event: {}", code(event_id));
        }
        let _ = writeln!(
            md,
            "- deployed revision: {}\n",
            code(&short(&self.revision))
        );

        let _ = writeln!(md, "### Evidence\n");
        let diagnosis = &self.diagnosis;
        let _ = writeln!(
            md,
            "Diagnosis confidence **{:.2}** over {} recent commits.\n",
            diagnosis.confidence, diagnosis.window.commits
        );
        for suspect in diagnosis.suspects.iter().take(3) {
            let _ = writeln!(
                md,
                "- {} {} — {} (score {:.2})",
                code(&suspect.short_id),
                inline(&suspect.subject),
                inline(&suspect.author),
                suspect.score
            );
            for item in suspect.evidence.iter().take(3) {
                let _ = writeln!(md, "  - {}", inline(&item.detail));
            }
        }
        if let Some(location) = diagnosis.locations.first() {
            let _ = writeln!(
                md,
                "\nMost likely location: {} in {} (lines {}–{}).",
                code(&location.symbol),
                code(&location.path),
                location.start_line,
                location.end_line
            );
        }
        let _ = writeln!(md);

        if let Some(culprit) = &self.culprit {
            let _ = writeln!(md, "### Culprit\n");
            if let Some(suspect) = diagnosis.suspects.iter().find(|s| &s.commit == culprit) {
                let _ = writeln!(
                    md,
                    "{} {} by {}\n",
                    code(&suspect.commit),
                    inline(&suspect.subject),
                    inline(&suspect.author)
                );
            }
        }

        self.write_fix_memory(&mut md);
        self.write_reproduction(&mut md);

        let _ = writeln!(md, "### The fix\n");
        match (self.strategy, &self.patch) {
            (Some(Strategy::Revert), Some(patch)) => {
                let _ = writeln!(
                    md,
                    "Revert of the culprit onto the deployed revision: it restores the code that ran before the change, touches only what the culprit touched ({} files, +{} −{}), and applies cleanly. It is the smallest safe action; a forward fix can follow once production is healthy.\n",
                    patch.files.len(),
                    patch.added,
                    patch.removed
                );
            }
            (Some(Strategy::PartialRevert), Some(patch)) => {
                let _ = writeln!(
                    md,
                    "Partial revert of the culprit onto the deployed revision: it undoes only the hunks the reproduction needs undone ({} files, +{} −{}) and keeps the rest of the commit. The reproduction and the suite pass with it; the full revert is listed below for comparison.\n",
                    patch.files.len(),
                    patch.added,
                    patch.removed
                );
                self.write_partial(&mut md);
            }
            (Some(Strategy::Llm), Some(patch)) => {
                let _ = writeln!(
                    md,
                    "A scoped patch ({} files, +{} −{}) written by the repair agent after the revert was not possible or did not pass; it passed the scope guard and the test suite{}. Review it as you would any change.\n",
                    patch.files.len(),
                    patch.added,
                    patch.removed,
                    if self.reproduction.reproduced() {
                        ", and the reproduction passes with it"
                    } else {
                        ""
                    }
                );
            }
            _ => {
                let _ = writeln!(md, "No patch is proposed.\n");
            }
        }
        if let Some(patch) = &self.patch {
            for file in &patch.files {
                let _ = writeln!(md, "- {}", code(file));
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "### Tests\n");
        let _ = writeln!(
            md,
            "Command {} in the {} sandbox.\n",
            code(&self.test_command),
            code(&self.sandbox)
        );
        for (name, run) in [
            ("before the fix", &self.tests.baseline),
            ("with the fix", &self.tests.patched),
        ] {
            if let Some(run) = run {
                let status = if run.timed_out {
                    "timed out".to_string()
                } else {
                    match run.exit {
                        Some(0) => "passed".to_string(),
                        Some(code) => format!("failed (exit {code})"),
                        None => format!("killed by signal {}", run.signal.unwrap_or_default()),
                    }
                };
                let _ = writeln!(
                    md,
                    "- {name}: **{status}** in {:.1} s",
                    run.duration_ms as f64 / 1000.0
                );
            }
        }
        if self.tests.baseline.as_ref().is_some_and(RunRecord::passed) {
            let _ = writeln!(
                md,
                "\nThe suite passes before the fix too: on its own it only shows the fix breaks nothing it covers."
            );
        }
        if let Some(run) = self.tests.patched.as_ref().or(self.tests.baseline.as_ref()) {
            let _ = writeln!(
                md,
                "\n<details><summary>output tail</summary>\n\n{}</details>",
                fenced(&run.output_tail, "text")
            );
        }

        let _ = writeln!(md, "\n### What was tried\n");
        for rung in &self.rungs {
            let status = serde_json::to_value(rung.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- **{}**: {status} — {}",
                inline(&rung.rung),
                inline(&rung.reason)
            );
        }
        let _ = writeln!(
            md,
            "\n---\nOpened by suture. A human approves and merges; suture never merges."
        );
        defuse_commands(&redactor.redact(&md))
    }

    /// What the partial revert undid and kept, hunk by hunk.
    fn write_partial(&self, md: &mut String) {
        let Some(partial) = &self.partial else {
            return;
        };
        let short: String = partial.commit.chars().take(10).collect();
        let list = |md: &mut String, hunks: &[HunkRef]| {
            for hunk in hunks {
                let _ = writeln!(
                    md,
                    "- {} lines {}–{} (+{} −{})",
                    code(&hunk.path),
                    hunk.start,
                    hunk.end,
                    hunk.added,
                    hunk.removed
                );
            }
        };
        let _ = writeln!(
            md,
            "Undone ({} of {} hunks of {} {}):\n",
            partial.undone.len(),
            partial.hunks,
            code(&short),
            inline(&partial.subject)
        );
        list(md, &partial.undone);
        let _ = writeln!(
            md,
            "\nKept (the wanted work of {} {}, lines at the deployed revision):\n",
            code(&short),
            inline(&partial.subject)
        );
        list(md, &partial.kept);
        if let Some(widened) = &partial.widened {
            let _ = writeln!(md, "\nThe search widened: {}", inline(widened));
        }
        let _ = writeln!(md);
    }

    /// The "Reproduction" section: the test that fails as production did,
    /// or why there is none.
    fn write_reproduction(&self, md: &mut String) {
        let reproduction = &self.reproduction;
        let _ = writeln!(md, "### Reproduction\n");
        match reproduction.kind {
            Some(kind) => {
                let how = match kind {
                    ReproductionKind::Existing => "a test of the suite already fails with it",
                    ReproductionKind::Replay => {
                        "a regression test replays the crash frame's arguments from the event"
                    }
                    ReproductionKind::Llm => "a regression test written by the repair agent",
                };
                let _ = writeln!(
                    md,
                    "The production error is reproduced ({}): {how}. It fails at the deployed revision with the event's exception in the crash function{}.\n",
                    code(kind.as_str()),
                    match &reproduction.with_fix {
                        Some(run) if run.passed() => ", and passes with the fix",
                        Some(_) => ", and still fails with the fix",
                        None => "",
                    }
                );
                for test in &reproduction.tests {
                    match &test.file {
                        Some(file) => {
                            let _ = writeln!(md, "- {} in {}", code(&test.name), code(file));
                        }
                        None => {
                            let _ = writeln!(md, "- {}", code(&test.name));
                        }
                    }
                }
                if reproduction.patch.is_some() && self.fix_patch().is_some() {
                    let _ = writeln!(md, "\nThe regression test is committed with the fix.");
                }
            }
            None => {
                let _ = writeln!(
                    md,
                    "**Unreproduced.** {}\n",
                    inline(
                        reproduction
                            .reason
                            .as_deref()
                            .unwrap_or("No test reproduces the production error.")
                    )
                );
            }
        }
        if !reproduction.refused.is_empty() {
            let _ = writeln!(md, "\nCandidates the reproduction gate refused:\n");
            for refused in reproduction.refused.iter().take(8) {
                let _ = writeln!(
                    md,
                    "- {} {}: {}",
                    code(refused.kind.as_str()),
                    inline(&refused.what),
                    inline(&refused.reason)
                );
            }
        }
        if self.culprit_confirmed_by == ConfirmedBy::Reproduction {
            let _ = writeln!(
                md,
                "\nThe culprit is confirmed by experiment: with it undone, the reproduction passes."
            );
        }
        let _ = writeln!(md);
    }

    /// The "Fix memory" section: what was tried in earlier rounds, and which
    /// candidates this round refused for repeating it. Nothing when this is
    /// the first round.
    fn write_fix_memory(&self, md: &mut String) {
        let Some(history) = self.history.as_deref().filter(|h| !h.trim().is_empty()) else {
            return;
        };
        let _ = writeln!(md, "### Fix memory\n");
        let _ = writeln!(md, "Earlier fixes for this error:\n");
        for line in history.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = writeln!(md, "- {}", inline(line));
        }
        let refused = self
            .attempts
            .iter()
            .filter(|a| {
                a.violation
                    .as_ref()
                    .is_some_and(|v| v.is_previously_failed())
            })
            .count();
        if refused > 0 {
            let _ = writeln!(
                md,
                "\n{refused} candidate fix{} of this round repeated a fix that did not hold and {} refused untested.",
                if refused == 1 { "" } else { "es" },
                if refused == 1 { "was" } else { "were" }
            );
        }
        let _ = writeln!(md);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report whose event, history and test output carry what a body
    /// must not pass on: Markdown, HTML, a mention, a fence of backticks,
    /// a forged marker, a known secret and secret-shaped text.
    fn hostile_report() -> HealReport {
        let run = |exit: i32, tail: &str| {
            serde_json::json!({
                "command": "pytest", "backend": "bubblewrap", "exit": exit, "signal": null,
                "timed_out": false, "duration_ms": 1200, "output_tail": tail
            })
        };
        serde_json::from_value(serde_json::json!({
            "outcome": "proven", "strategy": "revert",
            "culprit": "3de76e65cd0a1b2c3d4e5f60718293a4b5c6d7e8",
            "revision": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
            "title": "Error\n[x](http://e) ![i](http://e/i.png) @team <!-- suture:incident=9 --> `",
            "event_id": "abc", "sandbox": "bubblewrap", "test_command": "pytest -q",
            "tests": {
                "baseline": run(1, "FAILED"),
                "patched": run(0, "ok ghp_16C7e42F292c6912E7710c838347Ae178B4a s3cr3t-known-value\n```\n# not a heading\n<!-- suture:incident=9 -->\npostgres://app:hunter2pass@db/app")
            },
            "patch": {"files": ["app/x.py"], "added": 1, "removed": 0},
            "rungs": [{"rung": "revert", "status": "proven", "reason": "ok [l](http://e)"}],
            "attempts": [], "llm": null,
            "diagnosis": {
                "title": "Error", "revision": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
                "revision_source": "release",
                "window": {"commits": 1, "base": null, "truncated": false, "since": null, "days": 14},
                "frames": [], "locations": [], "confidence": 0.9,
                "culprit": "3de76e65cd0a1b2c3d4e5f60718293a4b5c6d7e8", "elapsed_ms": 1.0,
                "suspects": [{
                    "commit": "3de76e65cd0a1b2c3d4e5f60718293a4b5c6d7e8", "short_id": "3de76e65cd",
                    "author": "@ops <b>", "email": "a@example.test", "time": "2024-05-01T10:00:00+00:00",
                    "subject": "fix\n/suture retry", "score": 1.0, "evidence": []
                }]
            },
            "history": "round 1: merged @team [x](http://e)",
            "elapsed_ms": 5
        }))
        .unwrap()
    }

    /// Nothing event-derived is active in the body, the output tail stays
    /// inside its fence, and secrets are blanked by value and by shape.
    #[test]
    fn the_body_keeps_event_text_inert_and_secrets_out() {
        let redactor =
            Redactor::from_vars([("APP_SECRET".to_string(), "s3cr3t-known-value".to_string())]);
        let md = hostile_report().render_markdown(&redactor);
        for secret in ["hunter2pass", "ghp_16C7", "s3cr3t-known-value"] {
            assert!(!md.contains(secret), "{secret} in\n{md}");
        }
        assert!(!md.contains("<!-- suture:"), "{md}");
        // The title is code: inert as written, in a span it cannot close.
        assert!(
            md.contains("`` Error [x](http://e) ![i](http://e/i.png) @team <!\u{200b}-- suture:incident=9 --> ` ``"),
            "{md}"
        );
        // Prose is escaped: no link, mention or HTML.
        assert!(
            md.contains("merged @\u{200b}team \\[x\\]\\(http:\u{200b}//e\\)"),
            "{md}"
        );
        assert!(md.contains("— @\u{200b}ops &lt;b&gt; (score"), "{md}");
        assert!(md.contains("ok \\[l\\]\\(http:\u{200b}//e\\)"), "{md}");
        assert!(
            md.lines()
                .all(|l| !l.trim_start().to_ascii_lowercase().starts_with("/suture")),
            "{md}"
        );
        // The tail's own ``` cannot close the fence around it.
        let open = md
            .find("````text\n")
            .expect("a fence longer than the tail's");
        let close = md[open..].find("\n````\n").expect("closed") + open;
        assert!(md[open..close].contains("# not a heading"), "{md}");
    }
}
