//! Healing: turn a diagnosis into the smallest safe fix, proven in a sandbox.
//!
//! The fix ladder tries the smallest safe action first and records every
//! rung, taken or skipped, with why:
//!
//! 1. *partial_revert*: with a reproduction, and a culprit of more than one
//!    hunk, undo only the hunks the reproduction needs undone and keep the
//!    wanted work that came with them (`partial`);
//! 2. *revert* the culprit onto the deployed revision, when the diagnosis is
//!    confident (or the reproduction confirms it) and the revert applies
//!    cleanly; it runs after a proven partial revert too, for comparison,
//!    and wins only when the partial revert is not proven;
//! 3. *llm*: an agent loop over an OpenAI-compatible endpoint that reads the
//!    code through tools and submits a patch;
//! 4. *escalate*: no patch; the report carries the diagnosis and what was
//!    tried.
//!
//! Every candidate patch, whatever its rung, goes through the same gates
//! (`gates`): the scope guard, a clean apply in a fresh worktree, and the
//! test command in the sandbox. A fix is *proven* only when the suite passes
//! with it.
//!
//! Healing remembers (`memory`): a fix that was proposed in an earlier round
//! and did not hold is refused at the gates before it is tested again, and
//! the record of earlier rounds goes to the model and into the report.

pub(crate) mod gates;
mod ladder;
mod memory;
mod partial;
mod report;
mod revert;
mod test_command;
pub(crate) mod toolbox;

use repo::git::RepoError;
use repo::sandbox::{SandboxConfig, SandboxError};
use repo::scope::ScopePolicy;

use crate::diagnose::{DiagnoseError, DiagnoseOptions};
use crate::llm::LlmConfig;

pub use ladder::{heal, heal_diagnosed, heal_reproduced, reproduce_diagnosed};
pub use memory::{AvoidedFix, patch_sha};
pub use report::{
    Attempt, HealReport, HunkRef, LlmSummary, Outcome, PartialRevertRecord, PatchSummary,
    RunRecord, RungRecord, RungStatus, Strategy, TestRuns, ViolationRecord,
};
pub use test_command::detect_test_command;

/// What healing needs besides the event and the repository.
#[derive(Debug, Clone, Default)]
pub struct HealOptions {
    /// How to diagnose.
    pub diagnose: DiagnoseOptions,
    /// The repository's test command; detected from the tree when None.
    pub test_command: Option<String>,
    /// Where and how tests run.
    pub sandbox: SandboxConfig,
    /// What a patch may touch.
    pub scope: ScopePolicy,
    /// The LLM endpoint, when one is configured.
    pub llm: Option<LlmConfig>,
    /// Extra guidance for the LLM rung (a reviewer's `/suture retry` comment).
    pub guidance: Option<String>,
    /// Fixes proposed in earlier rounds for this error that did not hold:
    /// a candidate with one of these [`patch_sha`]es is refused before it is
    /// tested, whichever rung proposes it.
    pub avoid: Vec<AvoidedFix>,
    /// suture's record of earlier fixes for this error, one round a line
    /// (`round 1: revert of abc123 merged as PR #4, did not hold: …`). The
    /// model reads it as data and the report shows it.
    pub history: Option<String>,
}

/// Why healing could not run at all. A ladder that ends without a proven
/// fix is an outcome, not an error.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// Diagnosis failed.
    #[error(transparent)]
    Diagnose(#[from] DiagnoseError),
    /// A worktree could not be made.
    #[error("preparing a worktree")]
    Worktree(#[source] RepoError),
    /// The sandbox cannot run tests here.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Preparing a worktree for a run (the reproduction's files) failed.
    #[error("preparing the worktree: {what}")]
    Prepare {
        /// What was being written.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No test command was given and none could be detected.
    #[error("no test command: pass one (--test-cmd) or add a recognisable test setup")]
    NoTestCommand,
}
