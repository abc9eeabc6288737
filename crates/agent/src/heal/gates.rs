//! The gates every candidate patch passes, whatever proposed it: the scope
//! guard, a clean apply in a fresh worktree of the deployed revision, the
//! test command in the sandbox and, when the error was reproduced, the
//! reproduction. Before any of them, a candidate that repeats a fix which
//! did not hold (fix memory) is refused.
//!
//! A candidate is *proven* when the suite passes and the reproduction
//! passes with it; with no reproduction a passing suite only makes it
//! *plausible*.
//!
//! The scope guard's policy depends on who wrote the patch: a model's
//! patch ([`Strategy::Llm`]) also may not touch what decides what CI or the
//! build runs ([`ScopePolicy::for_generated_patches`]), or its passing
//! tests would prove nothing. A revert, whole or partial, keeps the
//! configured policy: it restores lines as a human last reviewed them, so
//! a culprit that broke the build in a Makefile can still be reverted.

use repo::git::Repo;
use repo::git2::Oid;
use repo::sandbox::{self, SandboxConfig};
use repo::scope::{self, ScopePolicy};
use repo::worktree::Worktree;

use super::HealError;
use super::memory::{self, AvoidedFix};
use super::report::{Attempt, PatchSummary, RunRecord, Strategy, ViolationRecord};
use crate::redact::Redactor;
use crate::reproduce::ReproCheck;

/// The fixed inputs of every gate run.
pub(crate) struct Gates<'a> {
    pub(crate) repo: &'a Repo,
    pub(crate) revision: Oid,
    pub(crate) sandbox: &'a SandboxConfig,
    pub(crate) test_command: &'a str,
    pub(crate) policy: &'a ScopePolicy,
    pub(crate) redactor: &'a Redactor,
    /// Fixes that did not hold in earlier rounds.
    pub(crate) avoid: &'a [AvoidedFix],
    /// How a fix is checked against the reproduction, once there is one.
    pub(crate) reproduction: Option<&'a ReproCheck>,
}

impl Gates<'_> {
    /// A fresh worktree of the deployed revision.
    pub(crate) fn worktree(&self) -> Result<Worktree, HealError> {
        Worktree::create(self.repo, self.revision).map_err(HealError::Worktree)
    }

    /// The suite at the deployed revision, unpatched.
    pub(crate) fn baseline(&self) -> Result<RunRecord, HealError> {
        let worktree = self.worktree()?;
        let outcome = sandbox::run(self.sandbox, worktree.path(), self.test_command)?;
        Ok(RunRecord::new(&outcome, self.redactor))
    }

    /// Checks, applies and tests one candidate patch in its own worktree.
    pub(crate) fn attempt(&self, strategy: Strategy, patch: &str) -> Result<Attempt, HealError> {
        let worktree = self.worktree()?;
        let mut attempt = Attempt {
            strategy,
            patch: None,
            violation: None,
            tests: None,
            reproduction: None,
            proven: false,
            plausible: false,
            text: patch.to_string(),
        };
        let generated;
        let policy = match strategy {
            Strategy::Revert | Strategy::PartialRevert => self.policy,
            Strategy::Llm => {
                generated = self.policy.for_generated_patches();
                &generated
            }
        };
        let checked = match scope::check(policy, worktree.path(), patch) {
            Ok(checked) => checked,
            Err(violation) => {
                tracing::info!(
                    kind = violation.kind(),
                    "patch rejected by the scope guard: {violation}"
                );
                attempt.violation = Some(ViolationRecord::new(&violation, self.redactor));
                return Ok(attempt);
            }
        };
        attempt.patch = Some(PatchSummary::new(&checked));
        // Keep what was checked and applied, not the proposer's raw text.
        attempt.text = checked.text.clone();
        // The guard's canonical rendering is what would be merged; its
        // hash ignores positions and context, so a remembered fix is found
        // however the proposer wrote it.
        if let Some(fix) = memory::avoided(self.avoid, &checked.text) {
            attempt.violation = Some(ViolationRecord::previously_failed(fix, self.redactor));
            return Ok(attempt);
        }
        if let Err(violation) = scope::apply(worktree.path(), &checked) {
            attempt.violation = Some(ViolationRecord::new(&violation, self.redactor));
            return Ok(attempt);
        }
        // The suite runs as the repository has it; the reproduction's test
        // is added after, so a suite failure is the suite's own.
        let outcome = sandbox::run(self.sandbox, worktree.path(), self.test_command)?;
        let record = RunRecord::new(&outcome, self.redactor);
        let suite_passed = record.passed();
        attempt.tests = Some(record);
        match self.reproduction {
            None => attempt.plausible = suite_passed,
            Some(check) if suite_passed => {
                if let Err(reason) = check.add_to(worktree.path(), self.policy) {
                    // The test applied at the deployed revision; a fix that
                    // collides with it cannot be judged by it.
                    attempt.violation = Some(ViolationRecord {
                        kind: "reproduction_conflict".to_string(),
                        message: self.redactor.redact(&reason),
                    });
                    return Ok(attempt);
                }
                let (run, passed) =
                    check.run_with_fix(self.sandbox, worktree.path(), self.redactor)?;
                attempt.proven = passed;
                attempt.reproduction = run;
            }
            Some(_) => {}
        }
        Ok(attempt)
    }
}
