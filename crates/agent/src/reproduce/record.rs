//! What `report.json` says about the reproduction (documented in
//! docs/heal.md): which kind was found, which tests, and the runs that
//! showed it fail as production did and pass with the fix.

use serde::{Deserialize, Serialize};

use crate::heal::{LlmSummary, RunRecord};

/// How the production error was reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReproductionKind {
    /// A test of the suite already fails with the event's exception.
    Existing,
    /// A test written from the crash frame's local variables.
    Replay,
    /// A test written by the model and accepted by the gate.
    Llm,
}

impl ReproductionKind {
    /// The kind's name, as in `report.json` and the metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReproductionKind::Existing => "existing",
            ReproductionKind::Replay => "replay",
            ReproductionKind::Llm => "llm",
        }
    }
}

/// One reproducing test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReproTest {
    /// Repository-relative file, when the runner reports it.
    pub file: Option<String>,
    /// The test's id as its runner names it.
    pub name: String,
}

/// A candidate the gate refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedCandidate {
    /// `existing`, `replay` or `llm`.
    pub kind: ReproductionKind,
    /// What it was: a test file, or the frame a replay was planned from.
    pub what: String,
    /// Why it was refused, in a sentence.
    pub reason: String,
}

/// The reproduction step's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reproduction {
    /// How the error was reproduced; null when it was not.
    pub kind: Option<ReproductionKind>,
    /// The tests that reproduce it.
    pub tests: Vec<ReproTest>,
    /// The command that runs the reproduction on its own.
    pub command: Option<String>,
    /// The reproduction at the deployed revision: it fails as production did.
    pub at_revision: Option<RunRecord>,
    /// The reproduction before the suspect commits (the window's base),
    /// when it was run there.
    pub at_base: Option<RunRecord>,
    /// The reproduction with the chosen fix.
    pub with_fix: Option<RunRecord>,
    /// Candidates the gate refused, in the order they were tried.
    pub refused: Vec<RefusedCandidate>,
    /// Why there is no reproduction, when there is none.
    pub reason: Option<String>,
    /// The model's test-writing run, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSummary>,
    /// The new test file(s) as a patch against the deployed revision
    /// (replay and llm kinds); committed with the fix. Kept out of JSON:
    /// it is part of `fix.patch`.
    #[serde(skip)]
    pub patch: Option<String>,
}

impl Reproduction {
    /// Whether the error was reproduced.
    pub fn reproduced(&self) -> bool {
        self.kind.is_some()
    }
}

/// What named the culprit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmedBy {
    /// The diagnosis's evidence score alone.
    #[default]
    Score,
    /// An experiment: reverting it (or bisecting to it) turns the
    /// reproduction green.
    Reproduction,
}
