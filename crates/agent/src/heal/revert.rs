//! The revert rung: undo the culprit onto the deployed revision.
//!
//! Without a reproduction, only a culprit the diagnosis is confident about
//! is reverted, and a passing suite makes the revert plausible. With one,
//! the rung is an experiment: the top suspects are reverted in turn (up to
//! [`MAX_SUSPECT_REVERTS`]) until one turns the reproduction green; if none
//! does, the window is bisected with the reproduction and the commit it
//! finds is reverted. A culprit found either way is *confirmed by
//! reproduction*, whatever its score.

use std::time::Duration;

use repo::git::{BisectBudget, Verdict, bisect};
use repo::git2::{Oid, Sort};
use repo::worktree::RevertOutcome;

use super::HealError;
use super::gates::Gates;
use super::report::{Attempt, RungRecord, RungStatus, Strategy};
use crate::diagnose::{self, Diagnosis};

/// Suspects reverted, best first, before the window is bisected.
pub(crate) const MAX_SUSPECT_REVERTS: usize = 3;
/// Wall time one bisection may take.
const BISECT_WALL_TIME: Duration = Duration::from_secs(20 * 60);

/// A culprit the reproduction confirmed.
pub(crate) struct Confirmed {
    /// The commit (40-hex).
    pub(crate) commit: String,
    /// How, for the evidence item (`reverting it turns the reproduction green`).
    pub(crate) how: String,
}

/// What reverting one commit gave.
enum Tried {
    Attempted(Box<Attempt>),
    Skipped(String),
}

/// Runs the rung; `Some` when the reproduction confirmed a culprit.
pub(crate) fn revert_rung(
    gates: &Gates<'_>,
    diagnosis: &Diagnosis,
    rungs: &mut Vec<RungRecord>,
    attempts: &mut Vec<Attempt>,
) -> Result<Option<Confirmed>, HealError> {
    if gates.reproduction.is_none() {
        revert_culprit(gates, diagnosis, rungs, attempts)?;
        return Ok(None);
    }
    let mut notes = Vec::new();
    let mut tried = Vec::new();
    for suspect in diagnosis.suspects.iter().take(MAX_SUSPECT_REVERTS) {
        tried.push(suspect.commit.clone());
        let short = short(&suspect.commit);
        match revert(gates, &suspect.commit)? {
            Tried::Skipped(reason) => notes.push(reason),
            Tried::Attempted(attempt) => {
                let proven = attempt.proven;
                notes.push(describe(&attempt, &short));
                attempts.push(*attempt);
                if proven {
                    rungs.push(RungRecord {
                        rung: "revert".to_string(),
                        status: RungStatus::Proven,
                        reason: notes.join("; "),
                    });
                    return Ok(Some(Confirmed {
                        commit: suspect.commit.clone(),
                        how: format!(
                            "with {short} reverted, the reproduction passes (and the suite too)"
                        ),
                    }));
                }
            }
        }
    }
    if notes.is_empty() {
        notes.push("the diagnosis has no suspect commit".to_string());
    }
    rungs.push(RungRecord {
        rung: "revert".to_string(),
        status: if tried.is_empty() {
            RungStatus::Skipped
        } else {
            RungStatus::Failed
        },
        reason: notes.join("; "),
    });
    bisect_rung(gates, diagnosis, &tried, rungs, attempts)
}

/// Bisects the window with the reproduction, then reverts what it finds.
fn bisect_rung(
    gates: &Gates<'_>,
    diagnosis: &Diagnosis,
    tried: &[String],
    rungs: &mut Vec<RungRecord>,
    attempts: &mut Vec<Attempt>,
) -> Result<Option<Confirmed>, HealError> {
    let check = gates.reproduction.expect("the caller checked");
    let mut record = |status, reason: String| {
        rungs.push(RungRecord {
            rung: "bisect".to_string(),
            status,
            reason,
        })
    };
    let base = diagnosis
        .window
        .base
        .as_deref()
        .and_then(|b| Oid::from_str(b).ok());
    let commits = window_commits(gates, base, diagnosis.window.commits)?;
    if commits.len() < 2 {
        record(
            RungStatus::Skipped,
            "the window has no commit to bisect besides the deployed one".to_string(),
        );
        return Ok(None);
    }
    let base_is_good = match (check.base_good, base) {
        (Some(good), _) => good,
        (None, Some(base)) => check.verdict_at(gates, base)?.1 == Some(true),
        (None, None) => false,
    };
    let budget = BisectBudget {
        max_runs: usize::BITS as usize - commits.len().leading_zeros() as usize + 3,
        max_duration: BISECT_WALL_TIME,
    };
    let result = bisect(&commits, base_is_good, &budget, |commit| {
        Ok::<_, HealError>(match check.verdict_at(gates, commit)?.1 {
            Some(true) => Verdict::Good,
            Some(false) => Verdict::Bad,
            None => Verdict::Skip,
        })
    })?;
    let runs = result.runs.len();
    let Some(culprit) = result.culprit else {
        record(
            RungStatus::Failed,
            format!(
                "bisecting {} commits in {runs} sandbox runs found no culprit: {}",
                commits.len(),
                result.stopped.unwrap_or_default()
            ),
        );
        return Ok(None);
    };
    let commit = culprit.to_string();
    let short = short(&commit);
    let found = format!(
        "bisecting {} commits with the reproduction points at {short} ({runs} sandbox runs)",
        commits.len()
    );
    if tried.contains(&commit) {
        record(
            RungStatus::Failed,
            format!("{found}, whose revert was already tried"),
        );
        return Ok(None);
    }
    match revert(gates, &commit)? {
        Tried::Skipped(reason) => {
            record(RungStatus::Failed, format!("{found}; {reason}"));
            Ok(None)
        }
        Tried::Attempted(attempt) => {
            let proven = attempt.proven;
            let note = describe(&attempt, &short);
            attempts.push(*attempt);
            record(
                if proven {
                    RungStatus::Proven
                } else {
                    RungStatus::Failed
                },
                format!("{found}; {note}"),
            );
            Ok(proven.then(|| Confirmed {
                commit,
                how: format!("{found}, and reverting it turns the reproduction green"),
            }))
        }
    }
}

/// The window's commits, newest first along the first-parent chain, from
/// the deployed revision down to (not including) `base`.
fn window_commits(gates: &Gates<'_>, base: Option<Oid>, max: usize) -> Result<Vec<Oid>, HealError> {
    let git = gates.repo.git();
    let mut walk = git.revwalk().map_err(|e| HealError::Worktree(e.into()))?;
    walk.set_sorting(Sort::TOPOLOGICAL)
        .and_then(|_| walk.simplify_first_parent())
        .and_then(|_| walk.push(gates.revision))
        .map_err(|e| HealError::Worktree(e.into()))?;
    if let Some(base) = base {
        walk.hide(base).map_err(|e| HealError::Worktree(e.into()))?;
    }
    let mut commits = Vec::new();
    for oid in walk.take(max.max(1)) {
        commits.push(oid.map_err(|e| HealError::Worktree(e.into()))?);
    }
    Ok(commits)
}

/// The rung without a reproduction: the confident culprit only.
fn revert_culprit(
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
                "confidence {:.2} in the top suspect {} is below {:.2}, and there is no reproduction to test a revert against",
                diagnosis.confidence,
                top.short_id,
                diagnose::CULPRIT_CONFIDENCE
            ),
            None => "the diagnosis has no suspect commit".to_string(),
        };
        record(RungStatus::Skipped, reason);
        return Ok(());
    };
    match revert(gates, culprit)? {
        Tried::Skipped(reason) => record(RungStatus::Skipped, reason),
        Tried::Attempted(attempt) => {
            let status = if attempt.plausible || attempt.proven {
                RungStatus::Proven
            } else {
                RungStatus::Failed
            };
            let note = describe(&attempt, &short(culprit));
            attempts.push(*attempt);
            record(
                status,
                format!("{note} (confidence {:.2})", diagnosis.confidence),
            );
        }
    }
    Ok(())
}

/// Reverts `commit` onto the deployed revision and puts it through the gates.
fn revert(gates: &Gates<'_>, commit: &str) -> Result<Tried, HealError> {
    let oid = Oid::from_str(commit).map_err(|e| HealError::Worktree(e.into()))?;
    let short = short(commit);
    let worktree = gates.worktree()?;
    Ok(match worktree.revert(oid).map_err(HealError::Worktree)? {
        RevertOutcome::Conflict { paths } => Tried::Skipped(format!(
            "reverting {short} conflicts with later changes in {}",
            paths.join(", ")
        )),
        RevertOutcome::Empty => Tried::Skipped(format!(
            "reverting {short} changes nothing at the deployed revision"
        )),
        RevertOutcome::Clean { patch } => {
            Tried::Attempted(Box::new(gates.attempt(Strategy::Revert, &patch)?))
        }
    })
}

/// One sentence on what became of a revert.
fn describe(attempt: &Attempt, short: &str) -> String {
    if let Some(violation) = attempt
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
        format!("reverting {short} turns the reproduction green and the suite passes")
    } else if attempt.plausible {
        format!("reverting {short} passes the test suite")
    } else if attempt.tests.as_ref().is_some_and(|t| t.passed()) {
        format!("with {short} reverted the suite passes but the reproduction still fails")
    } else {
        format!("the test suite still fails with {short} reverted")
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(10).collect()
}
