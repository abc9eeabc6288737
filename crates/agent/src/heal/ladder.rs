//! The fix ladder itself: diagnose, run the baseline, then try each rung in
//! order until one yields a proven patch.

use std::time::Instant;

use domain::event::Event;
use repo::git::Repo;
use repo::git2::Oid;
use repo::index::CodeIndex;
use repo::worktree::RevertOutcome;

use super::gates::Gates;
use super::report::{
    Attempt, HealReport, LlmSummary, Outcome, RungRecord, RungStatus, Strategy, TestRuns,
};
use super::toolbox::HealToolbox;
use super::{HealError, HealOptions, detect_test_command};
use crate::diagnose::{self, Diagnosis};
use crate::llm::{self, AgentOutcome, Transcript};
use crate::redact::Redactor;

/// Diagnoses `event`, then climbs the fix ladder. `runtime` drives the LLM
/// rung; call this from a thread that is not a runtime worker (the CLI's main
/// thread, or a blocking task in the service).
pub fn heal(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    options: &HealOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<(HealReport, Option<Transcript>), HealError> {
    let diagnosis = diagnose::diagnose(repo, index, event, &options.diagnose)?;
    heal_diagnosed(repo, index, event, diagnosis, options, runtime)
}

/// Climbs the fix ladder from a diagnosis already made (the service's saved
/// diagnose step), so the fix and the diagnosis people read are the same
/// one. `options.diagnose` is not used.
pub fn heal_diagnosed(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: Diagnosis,
    options: &HealOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<(HealReport, Option<Transcript>), HealError> {
    let started = Instant::now();
    let redactor = Redactor::from_env();
    let revision = Oid::from_str(&diagnosis.revision).map_err(|e| HealError::Worktree(e.into()))?;

    let test_command = match &options.test_command {
        Some(command) => command.clone(),
        None => {
            let worktree =
                repo::worktree::Worktree::create(repo, revision).map_err(HealError::Worktree)?;
            detect_test_command(worktree.path()).ok_or(HealError::NoTestCommand)?
        }
    };
    repo::sandbox::probe(&options.sandbox.backend)?;
    let gates = Gates {
        repo,
        revision,
        sandbox: &options.sandbox,
        test_command: &test_command,
        policy: &options.scope,
        redactor: &redactor,
        avoid: &options.avoid,
    };

    let baseline = gates.baseline()?;
    let mut rungs = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();

    revert_rung(&gates, &diagnosis, &mut rungs, &mut attempts)?;

    let mut llm_summary = None;
    let mut transcript = None;
    if attempts.iter().any(|a| a.proven) {
        rungs.push(RungRecord {
            rung: "llm".to_string(),
            status: RungStatus::Skipped,
            reason: "a smaller fix is already proven".to_string(),
        });
    } else {
        match &options.llm {
            None => rungs.push(RungRecord {
                rung: "llm".to_string(),
                status: RungStatus::Skipped,
                reason: "no LLM endpoint is configured".to_string(),
            }),
            Some(config) => {
                let mut toolbox = HealToolbox::new(&gates, index, &diagnosis)?;
                let prompts = llm::render_prompts(
                    llm::AgentTask::Fix,
                    &toolbox.prompt_input(
                        event,
                        &diagnosis,
                        options.guidance.as_deref(),
                        options.history.as_deref(),
                    ),
                );
                let mut log = Transcript::default();
                let outcome =
                    runtime.block_on(llm::run_agent(config, &prompts, &mut toolbox, &mut log));
                let (status, reason, summary) = describe_agent(&outcome);
                attempts.extend(toolbox.into_attempts());
                rungs.push(RungRecord {
                    rung: "llm".to_string(),
                    status,
                    reason,
                });
                llm_summary = Some(summary);
                transcript = Some(log);
            }
        }
    }

    let proven = attempts.iter().find(|a| a.proven).cloned();
    let outcome = match (&proven, attempts.iter().any(|a| a.tests.is_some())) {
        (Some(_), _) => Outcome::Proven,
        (None, true) => Outcome::Unproven,
        (None, false) => Outcome::Escalated,
    };
    if proven.is_none() {
        rungs.push(RungRecord {
            rung: "escalate".to_string(),
            status: RungStatus::Escalated,
            reason: "no rung produced a proven fix; the diagnosis goes to a human".to_string(),
        });
    }
    let patched = proven
        .as_ref()
        .or_else(|| attempts.iter().rev().find(|a| a.tests.is_some()))
        .and_then(|a| a.tests.clone());
    let report = HealReport {
        outcome,
        strategy: proven.as_ref().map(|a| a.strategy),
        culprit: diagnosis.culprit.clone(),
        revision: diagnosis.revision.clone(),
        title: redactor.redact(&diagnosis.title),
        event_id: event.event_id.clone(),
        sandbox: options.sandbox.backend.to_string(),
        test_command: redactor.redact(&test_command),
        tests: TestRuns {
            baseline: Some(baseline),
            patched,
        },
        patch: proven.as_ref().and_then(|a| a.patch.clone()),
        rungs,
        attempts,
        llm: llm_summary,
        diagnosis,
        history: options.history.as_deref().map(|h| redactor.redact(h)),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    Ok((report, transcript))
}

/// Rung 1: revert the culprit when the diagnosis is confident and the
/// revert applies cleanly. A revert that was proposed in an earlier round
/// and did not hold is refused by the gates untested, and the ladder goes on.
fn revert_rung(
    gates: &Gates<'_>,
    diagnosis: &Diagnosis,
    rungs: &mut Vec<RungRecord>,
    attempts: &mut Vec<Attempt>,
) -> Result<(), HealError> {
    let mut record = |status, reason: String| {
        rungs.push(RungRecord {
            rung: "revert".to_string(),
            status,
            reason,
        })
    };
    let Some(culprit) = &diagnosis.culprit else {
        let reason = match diagnosis.suspects.first() {
            Some(top) => format!(
                "confidence {:.2} in the top suspect {} is below {:.2}",
                diagnosis.confidence,
                top.short_id,
                diagnose::CULPRIT_CONFIDENCE
            ),
            None => "the diagnosis has no suspect commit".to_string(),
        };
        record(RungStatus::Skipped, reason);
        return Ok(());
    };
    let culprit_oid = Oid::from_str(culprit).map_err(|e| HealError::Worktree(e.into()))?;
    let worktree = gates.worktree()?;
    let short = &culprit[..10];
    match worktree.revert(culprit_oid).map_err(HealError::Worktree)? {
        RevertOutcome::Conflict { paths } => {
            record(
                RungStatus::Skipped,
                format!(
                    "reverting {short} conflicts with later changes in {}",
                    paths.join(", ")
                ),
            );
        }
        RevertOutcome::Empty => {
            record(
                RungStatus::Skipped,
                format!("reverting {short} changes nothing at the deployed revision"),
            );
        }
        RevertOutcome::Clean { patch } => {
            let attempt = gates.attempt(Strategy::Revert, &patch)?;
            let reason = if let Some(violation) = attempt
                .violation
                .as_ref()
                .filter(|v| v.is_previously_failed())
            {
                format!(
                    "the revert of {short} was proposed before and did not hold: {}",
                    violation.message
                )
            } else if let Some(violation) = &attempt.violation {
                format!(
                    "the revert of {short} was refused by the scope guard: {}",
                    violation.message
                )
            } else if attempt.proven {
                format!(
                    "reverting {short} (confidence {:.2}) passes the test suite",
                    diagnosis.confidence
                )
            } else {
                format!("the test suite still fails with {short} reverted")
            };
            let status = if attempt.proven {
                RungStatus::Proven
            } else {
                RungStatus::Failed
            };
            attempts.push(attempt);
            record(status, reason);
        }
    }
    Ok(())
}

fn describe_agent(outcome: &AgentOutcome) -> (RungStatus, String, LlmSummary) {
    let (status, reason, name, rounds, tokens) = match outcome {
        AgentOutcome::Proven {
            rounds,
            tokens,
            summary,
        } => (
            RungStatus::Proven,
            format!("the agent's patch passes the test suite: {summary}"),
            "proven",
            *rounds,
            *tokens,
        ),
        AgentOutcome::Exhausted {
            reason,
            rounds,
            tokens,
        } => (
            RungStatus::Failed,
            format!("the agent ran out of its {reason:?} budget without a proven patch")
                .to_lowercase(),
            "exhausted",
            *rounds,
            *tokens,
        ),
        AgentOutcome::GaveUp {
            message,
            rounds,
            tokens,
        } => (
            RungStatus::Failed,
            format!("the agent gave up: {message}"),
            "gave_up",
            *rounds,
            *tokens,
        ),
        AgentOutcome::ProviderError {
            error,
            rounds,
            tokens,
        } => (
            RungStatus::Failed,
            format!("the LLM endpoint failed: {error}"),
            "provider_error",
            *rounds,
            *tokens,
        ),
    };
    (
        status,
        reason,
        LlmSummary {
            outcome: name.to_string(),
            rounds,
            tokens,
        },
    )
}
