//! Reproduction: before any fix is tried, a test that fails the way
//! production failed, at the deployed revision.
//!
//! A fix is *proven* only when this test passes with it (and the suite still
//! passes); without one the best a fix can be is *plausible*. Candidates, in
//! order: a test of the suite that already fails with the event's exception
//! (*existing*); a *replay* test written from the crash frame's local
//! variables (deterministic, no model); a test the model writes (*llm*).
//! Every candidate passes the same gate in the sandbox.

mod check;
mod gate;
mod junit;
mod layout;
mod literal;
mod llm;
mod record;
mod render;
mod replay;
mod runner;
mod test_paths;

pub use record::{ConfirmedBy, RefusedCandidate, ReproTest, Reproduction, ReproductionKind};

use std::cell::RefCell;

use domain::event::Event;
use repo::git2::Oid;
use repo::index::CodeIndex;
use serde::{Deserialize, Serialize};

use crate::diagnose::Diagnosis;
use crate::heal::gates::Gates;
use crate::heal::{HealError, RunRecord};
use crate::llm::{AgentOutcome, LlmConfig, Transcript};

pub(crate) use check::ReproCheck;
use check::{REPORT_FILE, root_text, run_and_read};
use gate::{Expected, Judgement};
use runner::Runner;

/// What the reproduction step found. The service saves it as its own
/// step, and the heal step checks every fix against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproduced {
    /// The report's record.
    pub record: Reproduction,
    /// The suite at the deployed revision.
    pub baseline: RunRecord,
    /// The test command, as given or detected.
    pub test_command: String,
    /// How a fix is checked against the reproduction, when there is one.
    pub(crate) check: Option<ReproCheck>,
    /// The model's test-writing run, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
}

/// What [`reproduce`] found, before it is packed for saving.
pub(crate) struct Found {
    pub(crate) record: Reproduction,
    pub(crate) check: Option<ReproCheck>,
    pub(crate) baseline: RunRecord,
    pub(crate) llm: Option<(AgentOutcome, Transcript)>,
}

/// Looks for a reproduction of `event` at the deployed revision: a failing
/// test of the suite, else a replay test, else (with an endpoint) a test
/// written by the model. The suite's baseline run comes out of it too.
pub(crate) fn reproduce(
    gates: &Gates<'_>,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: &Diagnosis,
    llm: Option<&LlmConfig>,
    runtime: &tokio::runtime::Handle,
) -> Result<Found, HealError> {
    let worktree = gates.worktree()?;
    let runner = Runner::detect(gates.test_command, worktree.path());
    let expected = expected(event, diagnosis);
    let mut record = Reproduction::default();

    // The baseline, with a report when the runner can write one: a suite
    // that already fails with the production error is the reproduction.
    let suite_command = runner
        .as_ref()
        .and_then(|r| r.suite_command(gates.test_command, REPORT_FILE));
    let baseline = match (&runner, &suite_command) {
        (Some(runner), Some(command)) => {
            let (run, report) = run_and_read(
                gates.sandbox,
                worktree.path(),
                command,
                runner,
                gates.redactor,
            )?;
            if !run.passed()
                && let (Ok(report), Some(expected)) = (&report, &expected)
            {
                match gate::judge(report, &root_text(worktree.path()), None, expected) {
                    Judgement::Reproduces(tests) => {
                        record.kind = Some(ReproductionKind::Existing);
                        record.tests = tests;
                        record.command = Some(gates.redactor.redact(command));
                        record.at_revision = Some(run.clone());
                        let check = ReproCheck {
                            kind: ReproductionKind::Existing,
                            runner: runner.clone(),
                            patch: None,
                            files: Vec::new(),
                            ids: record.tests.iter().map(|t| t.name.clone()).collect(),
                            expected: expected.clone(),
                            base_good: None,
                        };
                        return Ok(Found {
                            record,
                            check: Some(check),
                            baseline: run,
                            llm: None,
                        });
                    }
                    Judgement::Refused(reason) => record.refused.push(RefusedCandidate {
                        kind: ReproductionKind::Existing,
                        what: "the test suite".to_string(),
                        reason: gates.redactor.redact(&reason),
                    }),
                }
            }
            run
        }
        _ => gates.baseline()?,
    };
    drop(worktree);

    let Some(expected) = expected else {
        record.reason = Some(
            "the event names no exception type or no crash frame in the repository".to_string(),
        );
        return Ok(Found {
            record,
            check: None,
            baseline,
            llm: None,
        });
    };
    let Some(runner) = runner else {
        record.reason = Some(format!(
            "suture cannot read structured results from the test command {}; a reproduction needs pytest, unittest or node --test",
            gates.redactor.redact(gates.test_command)
        ));
        return Ok(Found {
            record,
            check: None,
            baseline,
            llm: None,
        });
    };
    let base = diagnosis
        .window
        .base
        .as_deref()
        .and_then(|base| Oid::from_str(base).ok());

    let mut reasons = Vec::new();
    if let Some(found) = replay(
        gates,
        index,
        event,
        diagnosis,
        &runner,
        &expected,
        base,
        &mut record,
    )? {
        return Ok(Found {
            record,
            check: Some(found),
            baseline,
            llm: None,
        });
    }
    reasons.push(
        if record
            .refused
            .iter()
            .any(|r| r.kind == ReproductionKind::Replay)
        {
            "no frame of the crash could be replayed from the event"
        } else {
            "the event's frames hold no values to replay"
        },
    );

    let Some(config) = llm else {
        reasons.push("no LLM endpoint is configured to write a test");
        record.reason = Some(sentence(&reasons));
        return Ok(Found {
            record,
            check: None,
            baseline,
            llm: None,
        });
    };
    let accepted: RefCell<Option<(ReproCheck, Box<Accepted>)>> = RefCell::new(None);
    let refused: RefCell<Vec<RefusedCandidate>> = RefCell::new(Vec::new());
    let mut check_test = |patch: &str| -> Result<llm::TestCheck, HealError> {
        let files = added_files(patch);
        let mut candidate = ReproCheck {
            kind: ReproductionKind::Llm,
            runner: runner.clone(),
            patch: Some(patch.to_string()),
            files: files.clone(),
            ids: Vec::new(),
            expected: expected.clone(),
            base_good: None,
        };
        let verdict = judge_candidate(gates, &candidate, base)?;
        Ok(match verdict {
            Candidate::Accepted(runs) => {
                candidate.base_good = runs.base_good;
                let summary = format!(
                    "the test fails at the deployed revision with {} raised in {}",
                    expected.exception_type, expected.function
                );
                *accepted.borrow_mut() = Some((candidate, runs));
                llm::TestCheck::Reproduces { summary }
            }
            Candidate::Refused(reason) => {
                refused.borrow_mut().push(RefusedCandidate {
                    kind: ReproductionKind::Llm,
                    what: files.join(", "),
                    reason: gates.redactor.redact(&reason),
                });
                llm::TestCheck::Refused { reason }
            }
        })
    };
    let written = llm::write_reproduction(
        gates,
        index,
        event,
        diagnosis,
        config,
        runtime,
        &mut check_test,
    )?;
    record.refused.extend(refused.into_inner());
    let model = Some((written.outcome, written.transcript));
    match (written.patch, accepted.into_inner()) {
        (Some(patch), Some((mut check, runs))) => {
            check.patch = Some(patch);
            record.kind = Some(ReproductionKind::Llm);
            fill(&mut record, &check, *runs, gates);
            Ok(Found {
                record,
                check: Some(check),
                baseline,
                llm: model,
            })
        }
        _ => {
            reasons.push("the model wrote no test the gate accepted");
            record.reason = Some(sentence(&reasons));
            Ok(Found {
                record,
                check: None,
                baseline,
                llm: model,
            })
        }
    }
}

/// Tries replay tests, innermost frame first; the first the gate accepts.
#[allow(clippy::too_many_arguments)]
fn replay(
    gates: &Gates<'_>,
    index: &mut CodeIndex,
    event: &Event,
    diagnosis: &Diagnosis,
    runner: &Runner,
    expected: &Expected,
    base: Option<Oid>,
    record: &mut Reproduction,
) -> Result<Option<ReproCheck>, HealError> {
    let worktree = gates.worktree()?;
    let commit = gates
        .repo
        .git()
        .find_commit(gates.revision)
        .map_err(|e| HealError::Worktree(e.into()))?;
    let tree = commit.tree().map_err(|e| HealError::Worktree(e.into()))?;
    let inputs = replay::Inputs {
        repo: gates.repo,
        tree: &tree,
        root: worktree.path(),
        runner,
        exception_type: &expected.exception_type,
    };
    for plan in replay::plan(&inputs, index, event, diagnosis) {
        let planned = match plan {
            Ok(planned) => planned,
            Err(not) => {
                record.refused.push(RefusedCandidate {
                    kind: ReproductionKind::Replay,
                    what: gates.redactor.redact(&not.what),
                    reason: gates.redactor.redact(&not.reason),
                });
                continue;
            }
        };
        let mut candidate = ReproCheck {
            kind: ReproductionKind::Replay,
            runner: runner.clone(),
            patch: Some(planned.patch.clone()),
            files: vec![planned.path.clone()],
            ids: Vec::new(),
            expected: expected.clone(),
            base_good: None,
        };
        match judge_candidate(gates, &candidate, base)? {
            Candidate::Accepted(runs) => {
                candidate.base_good = runs.base_good;
                record.kind = Some(ReproductionKind::Replay);
                fill(record, &candidate, *runs, gates);
                return Ok(Some(candidate));
            }
            Candidate::Refused(reason) => record.refused.push(RefusedCandidate {
                kind: ReproductionKind::Replay,
                what: gates
                    .redactor
                    .redact(&format!("{} in {}", planned.what, planned.path)),
                reason: gates.redactor.redact(&reason),
            }),
        }
    }
    Ok(None)
}

/// A candidate the gate accepted, with the runs that showed it.
struct Accepted {
    at_revision: Option<RunRecord>,
    at_base: Option<RunRecord>,
    base_good: Option<bool>,
    tests: Vec<ReproTest>,
}

enum Candidate {
    Accepted(Box<Accepted>),
    Refused(String),
}

/// The gate: the candidate must fail at the deployed revision as production
/// did, and must not fail the same way before the suspect commits (then the
/// fault is in how the function was called, and a caller's replay is the
/// right test).
fn judge_candidate(
    gates: &Gates<'_>,
    candidate: &ReproCheck,
    base: Option<Oid>,
) -> Result<Candidate, HealError> {
    let (at_revision, judgement) = candidate.run_at(gates, gates.revision)?;
    let tests = match judgement {
        Judgement::Reproduces(tests) => tests,
        Judgement::Refused(reason) => return Ok(Candidate::Refused(reason)),
    };
    let mut at_base = None;
    let mut base_good = None;
    if let Some(base) = base {
        let (run, verdict) = candidate.verdict_at(gates, base)?;
        at_base = run;
        base_good = verdict;
        if verdict == Some(false) {
            return Ok(Candidate::Refused(
                "it fails the same way before the suspect commits: the fault is in how it is called"
                    .to_string(),
            ));
        }
    }
    Ok(Candidate::Accepted(Box::new(Accepted {
        at_revision,
        at_base,
        base_good,
        tests,
    })))
}

fn fill(record: &mut Reproduction, check: &ReproCheck, runs: Accepted, gates: &Gates<'_>) {
    record.tests = runs.tests;
    record.command = check.command().map(|c| gates.redactor.redact(&c));
    record.at_revision = runs.at_revision;
    record.at_base = runs.at_base;
    record.patch = check.patch.clone();
}

/// The exception and crash site the gate expects, from the event and the
/// diagnosis: the raised exception's type, and the innermost frame of its
/// stack that is the application's.
fn expected(event: &Event, diagnosis: &Diagnosis) -> Option<Expected> {
    let ty = event.primary_exception()?.ty.as_deref()?;
    let ty = ty.rsplit('.').next().unwrap_or(ty).trim();
    let frame = diagnosis
        .frames
        .iter()
        .find(|f| f.chain == 0 && f.in_app && f.path.is_some())?;
    let function = frame.function.as_deref().or(frame.symbol.as_deref())?;
    Some(Expected {
        exception_type: ty.to_string(),
        path: frame.path.clone()?,
        function: function.rsplit('.').next().unwrap_or(function).to_string(),
    })
}

/// The files a patch creates or changes (`+++ b/` lines).
fn added_files(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|line| line.strip_prefix("+++ b/"))
        .map(|path| path.trim_end().to_string())
        .collect()
}

fn sentence(parts: &[&str]) -> String {
    let mut text = parts.join("; ");
    if let Some(first) = text.get(..1) {
        text = format!("{}{}.", first.to_uppercase(), &text[1..]);
    }
    text
}
