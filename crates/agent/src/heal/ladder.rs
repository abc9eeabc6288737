//! The fix ladder itself: reproduce the error, then try each rung in order
//! until one yields a fix proven against the reproduction (or, with no
//! reproduction, one the suite passes: plausible).

use std::time::Instant;

use domain::event::Event;
use repo::git::Repo;
use repo::git2::Oid;
use repo::index::CodeIndex;

use super::gates::Gates;
use super::partial::partial_rung;
use super::report::{Attempt, HealReport, LlmSummary, Outcome, RungRecord, RungStatus, TestRuns};
use super::revert::{Confirmed, revert_rung};
use super::toolbox::HealToolbox;
use super::{HealError, HealOptions, detect_test_command};
use crate::diagnose::{self, Diagnosis, EvidenceItem, EvidenceKind, Suspect};
use crate::llm::{self, AgentOutcome, Transcript};
use crate::redact::Redactor;
use crate::reproduce::{self, ConfirmedBy, Reproduced, ReproductionKind};

/// The confidence of a culprit the reproduction confirmed.
const CONFIRMED_CONFIDENCE: f64 = 0.95;

/// Diagnoses `event`, then reproduces it and climbs the fix ladder.
/// `runtime` drives the LLM; call this from a thread that is not a runtime
/// worker (the CLI's main thread, or a blocking task in the service).
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

/// Reproduces the error and climbs the fix ladder from a diagnosis
/// already made (the service's saved diagnose step), so the fix and the
/// diagnosis people read are the same one. `options.diagnose` is not used.
pub fn heal_diagnosed(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: Diagnosis,
    options: &HealOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<(HealReport, Option<Transcript>), HealError> {
    let reproduced = reproduce_diagnosed(repo, index, event, &diagnosis, options, runtime)?;
    heal_reproduced(repo, index, event, diagnosis, reproduced, options, runtime)
}

/// The reproduction step: the suite's baseline run, and a test that fails
/// as production did, when one can be found (see [`crate::reproduce`]).
pub fn reproduce_diagnosed(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: &Diagnosis,
    options: &HealOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<Reproduced, HealError> {
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
        reproduction: None,
    };
    let found = reproduce::reproduce(
        &gates,
        index,
        event,
        diagnosis,
        options.llm.as_ref(),
        runtime,
    )?;
    let mut record = found.record;
    let transcript = found.llm.map(|(outcome, transcript)| {
        record.llm = Some(describe_agent(&outcome).2);
        transcript
    });
    if let Some(kind) = record.kind {
        tracing::info!(
            kind = kind.as_str(),
            tests = record.tests.len(),
            "error reproduced"
        );
    } else {
        tracing::info!(
            reason = record.reason.as_deref().unwrap_or_default(),
            "error not reproduced"
        );
    }
    Ok(Reproduced {
        record,
        baseline: found.baseline,
        test_command,
        check: found.check,
        transcript,
    })
}

/// Climbs the fix ladder from a diagnosis and its reproduction step.
pub fn heal_reproduced(
    repo: &Repo,
    index: &mut CodeIndex,
    event: &Event,
    mut diagnosis: Diagnosis,
    reproduced: Reproduced,
    options: &HealOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<(HealReport, Option<Transcript>), HealError> {
    let started = Instant::now();
    let redactor = Redactor::from_env();
    let revision = Oid::from_str(&diagnosis.revision).map_err(|e| HealError::Worktree(e.into()))?;
    let Reproduced {
        mut record,
        baseline,
        test_command,
        check,
        transcript: test_transcript,
    } = reproduced;
    repo::sandbox::probe(&options.sandbox.backend)?;
    let gates = Gates {
        repo,
        revision,
        sandbox: &options.sandbox,
        test_command: &test_command,
        policy: &options.scope,
        redactor: &redactor,
        avoid: &options.avoid,
        reproduction: check.as_ref(),
    };

    let mut rungs = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();

    // The partial revert goes first so that, when it is proven, it is the
    // first proven attempt and is chosen over the full revert, which still
    // runs for comparison.
    let partial = partial_rung(&gates, &diagnosis, &mut rungs, &mut attempts)?;
    let mut confirmed = revert_rung(&gates, &diagnosis, &mut rungs, &mut attempts)?;
    if confirmed.is_none()
        && let Some(partial) = partial.as_ref().filter(|p| p.proven)
    {
        confirmed = Some(Confirmed {
            commit: partial.commit.clone(),
            how: format!(
                "with {} of the hunks of {} undone, the reproduction passes (and the suite too)",
                partial.undone.len(),
                partial.commit.chars().take(10).collect::<String>()
            ),
        });
    }
    if let Some(confirmed) = &confirmed {
        confirm(repo, &mut diagnosis, confirmed)?;
    }

    let mut llm_summary = None;
    let mut transcript = test_transcript;
    if let Some(settled) = attempts.iter().find(|a| a.proven || a.plausible) {
        rungs.push(RungRecord {
            rung: "llm".to_string(),
            status: RungStatus::Skipped,
            reason: if settled.proven {
                "a smaller fix is already proven".to_string()
            } else {
                "a smaller fix already passes the suite; with no reproduction a patch could not be proven either".to_string()
            },
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
                transcript = Some(match transcript {
                    Some(mut earlier) => {
                        earlier.entries.extend(log.entries);
                        earlier
                    }
                    None => log,
                });
            }
        }
    }

    let chosen = attempts
        .iter()
        .find(|a| a.proven)
        .or_else(|| attempts.iter().find(|a| a.plausible))
        .cloned();
    let outcome = match (&chosen, attempts.iter().any(|a| a.tests.is_some())) {
        (Some(fix), _) if fix.proven => Outcome::Proven,
        (Some(_), _) => Outcome::Plausible,
        (None, true) => Outcome::Unproven,
        (None, false) => Outcome::Escalated,
    };
    if chosen.is_none() {
        rungs.push(RungRecord {
            rung: "escalate".to_string(),
            status: RungStatus::Escalated,
            reason: "no rung produced a fix the gates accept; the diagnosis goes to a human"
                .to_string(),
        });
    }
    if let Some(fix) = chosen.as_ref().filter(|fix| fix.proven) {
        record.with_fix = match record.kind {
            Some(ReproductionKind::Existing) => fix.tests.clone(),
            _ => fix.reproduction.clone(),
        };
        record.patch = check.as_ref().and_then(|c| c.patch.clone());
    }
    let patched = chosen
        .as_ref()
        .or_else(|| attempts.iter().rev().find(|a| a.tests.is_some()))
        .and_then(|a| a.tests.clone());
    let report = HealReport {
        outcome,
        strategy: chosen.as_ref().map(|a| a.strategy),
        culprit: diagnosis.culprit.clone(),
        culprit_confirmed_by: if confirmed.is_some() {
            ConfirmedBy::Reproduction
        } else {
            ConfirmedBy::Score
        },
        reproduction: record,
        revision: diagnosis.revision.clone(),
        title: redactor.redact(&diagnosis.title),
        event_id: event.event_id.clone(),
        sandbox: options.sandbox.backend.to_string(),
        test_command: redactor.redact(&test_command),
        tests: TestRuns {
            baseline: Some(baseline),
            patched,
        },
        patch: chosen.as_ref().and_then(|a| a.patch.clone()),
        rungs,
        attempts,
        llm: llm_summary,
        partial,
        diagnosis,
        history: options.history.as_deref().map(|h| redactor.redact(h)),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    Ok((report, transcript))
}

/// Writes the experiment into the diagnosis: the confirmed commit becomes
/// the culprit, first among the suspects with evidence of kind
/// `reproduction`, and the confidence says so.
fn confirm(repo: &Repo, diagnosis: &mut Diagnosis, confirmed: &Confirmed) -> Result<(), HealError> {
    let item = EvidenceItem {
        kind: EvidenceKind::Reproduction,
        frame: 0,
        path: None,
        line: None,
        symbol: None,
        detail: confirmed.how.clone(),
    };
    let mut suspect = match diagnosis
        .suspects
        .iter()
        .position(|s| s.commit == confirmed.commit)
    {
        Some(position) => diagnosis.suspects.remove(position),
        None => {
            let oid =
                Oid::from_str(&confirmed.commit).map_err(|e| HealError::Worktree(e.into()))?;
            let info = repo.commit_info(oid).map_err(HealError::Worktree)?;
            Suspect::new(&info, 0.0, Vec::new())
        }
    };
    suspect.evidence.insert(0, item);
    diagnosis.suspects.insert(0, suspect);
    diagnosis.culprit = Some(confirmed.commit.clone());
    diagnosis.confidence = diagnosis.confidence.max(CONFIRMED_CONFIDENCE);
    Ok(())
}

pub(crate) fn describe_agent(outcome: &AgentOutcome) -> (RungStatus, String, LlmSummary) {
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
