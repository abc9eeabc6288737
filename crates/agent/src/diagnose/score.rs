//! Scoring: evidence → a score per commit, and an overall confidence.
//!
//! A commit earns, for each frame, the weight of its strongest evidence
//! (line > the lines right above it > function, or class together with a
//! distinctive identifier of the line > callee on the line > class >
//! callee, identifier, creation of the file > file) plus a
//! quarter of the rest, times the frame's weight (the crash frame most, callers less,
//! test code and causes half). File-level evidence counts once per file, so
//! a long stack through one big file cannot outweigh a precise hit.

use std::collections::HashMap;

use repo::git::Window;

use super::evidence::{Evidence, Item};
use super::frames::{ResolvedFrame, is_test_path};
use super::report::EvidenceKind;

/// Below this confidence the top suspect is not called the culprit.
pub const CULPRIT_CONFIDENCE: f64 = 0.5;
/// What a suspect without precise evidence keeps, in confidence and as a
/// competitor.
const IMPRECISE_FACTOR: f64 = 0.6;
/// Suspects listed at most.
const MAX_SUSPECTS: usize = 10;
/// Score at which the evidence is "strong" (about two-thirds of the way to certainty).
const STRENGTH_SCALE: f64 = 0.6;

/// How much one kind of evidence says.
pub(crate) fn kind_weight(kind: EvidenceKind) -> f64 {
    match kind {
        // An experiment outweighs any reading of the history.
        EvidenceKind::Reproduction => 2.0,
        EvidenceKind::Line => 1.0,
        EvidenceKind::Adjacent => 0.9,
        EvidenceKind::Function => 0.6,
        EvidenceKind::Created => 0.3,
        EvidenceKind::LineCallee => 0.55,
        EvidenceKind::Class => 0.35,
        EvidenceKind::Callee => 0.3,
        EvidenceKind::Identifier => 0.3,
        EvidenceKind::File => 0.15,
    }
}

/// A scored commit.
#[derive(Debug, Clone)]
pub(crate) struct Ranked {
    pub(crate) commit_idx: usize,
    pub(crate) score: f64,
    pub(crate) items: Vec<Item>,
}

/// The ranking and how sure it is.
pub(crate) struct Ranking {
    pub(crate) suspects: Vec<Ranked>,
    pub(crate) confidence: f64,
}

pub(crate) fn rank(
    window: &Window<'_>,
    frames: &[ResolvedFrame],
    evidence: &Evidence,
    reference_time: i64,
) -> Ranking {
    let mut suspects: Vec<Ranked> = evidence
        .per_commit
        .iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
        .map(|(commit_idx, items)| {
            let base = evidence_score(frames, items);
            let score = base * commit_factor(window, commit_idx, reference_time);
            let mut items = items.clone();
            items.sort_by(|a, b| {
                let weight = |i: &Item| kind_weight(i.kind) * frames[i.frame].weight;
                weight(b).total_cmp(&weight(a))
            });
            Ranked {
                commit_idx,
                score,
                items,
            }
        })
        .filter(|r| r.score > 0.0)
        .collect();
    // Ties go to the newer commit (smaller index).
    suspects.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.commit_idx.cmp(&b.commit_idx))
    });
    suspects.truncate(MAX_SUSPECTS);
    let confidence = confidence(&suspects);
    Ranking {
        suspects,
        confidence,
    }
}

fn evidence_score(frames: &[ResolvedFrame], items: &[Item]) -> f64 {
    let mut by_frame: HashMap<usize, Vec<f64>> = HashMap::new();
    let mut file_only: HashMap<&str, f64> = HashMap::new();
    for item in items {
        let has = |kind| {
            items
                .iter()
                .any(|i| i.frame == item.frame && i.kind == kind)
        };
        // Changing, inside the frame's own class, state the frame's line
        // reads is as telling as changing its function.
        let weight = match item.kind {
            EvidenceKind::Class if has(EvidenceKind::Identifier) => {
                kind_weight(EvidenceKind::Function)
            }
            EvidenceKind::Identifier if has(EvidenceKind::Class) => continue,
            kind => kind_weight(kind),
        };
        by_frame.entry(item.frame).or_default().push(weight);
    }
    let mut total = 0.0;
    for (frame_idx, mut weights) in by_frame {
        let frame = &frames[frame_idx];
        weights.sort_by(|a, b| b.total_cmp(a));
        let best = weights[0];
        let rest: f64 = weights[1..].iter().sum();
        let contribution = (best + 0.25 * rest) * frame.weight;
        let only_file = weights.len() == 1 && best == kind_weight(EvidenceKind::File);
        match (only_file, frame.path()) {
            (true, Some(path)) => {
                let slot = file_only.entry(path).or_default();
                *slot = slot.max(contribution);
            }
            _ => total += contribution,
        }
    }
    total + file_only.values().sum::<f64>()
}

/// Recency (newer weighs a little more), spread (a commit touching hundreds
/// of files is a weak suspect for any one of them) and test-only changes.
fn commit_factor(window: &Window<'_>, commit_idx: usize, reference_time: i64) -> f64 {
    let commit = &window.commits[commit_idx];
    let age_days = ((reference_time - commit.info.commit_time).max(0) as f64) / 86_400.0;
    let recency = 0.85 + 0.15 * (-age_days / 7.0).exp();
    let n_files = commit.changes.len().max(1) as f64;
    let spread = 1.0 / (1.0 + 0.1 * (n_files / 5.0).max(1.0).ln());
    let test_only = commit.changes.iter().all(|c| is_test_path(c.path()));
    recency * spread * if test_only { 0.5 } else { 1.0 }
}

/// Strength of the top suspect's evidence, discounted when the runner-up is
/// close behind, and when none of it is precise (the frame's line, its
/// function, or a function called on its line): touching the same class or
/// file is a lead, not a verdict.
fn confidence(suspects: &[Ranked]) -> f64 {
    let Some(top) = suspects.first() else {
        return 0.0;
    };
    // A runner-up with only a lead (class, file) competes less than one with
    // precise evidence of its own.
    let second = suspects.get(1).map_or(0.0, |s| {
        s.score * if is_precise(s) { 1.0 } else { IMPRECISE_FACTOR }
    });
    let strength = 1.0 - (-top.score / STRENGTH_SCALE).exp();
    let margin = ((top.score - second) / top.score).max(0.0);
    let precision = if is_precise(top) {
        1.0
    } else {
        IMPRECISE_FACTOR
    };
    let confidence = strength * (0.4 + 0.6 * margin) * precision;
    (confidence * 1000.0).round() / 1000.0
}

/// Precise evidence: the commit changed (or created) the frame's line, the
/// lines right above it, its function, or a function called on its line;
/// or, inside the frame's own class, state the line reads (a distinctive
/// identifier of the line on a changed line).
fn is_precise(suspect: &Ranked) -> bool {
    let on_frame = |kind: EvidenceKind, frame: usize| {
        suspect
            .items
            .iter()
            .any(|item| item.kind == kind && item.frame == frame)
    };
    suspect.items.iter().any(|item| match item.kind {
        EvidenceKind::Line
        | EvidenceKind::Adjacent
        | EvidenceKind::Created
        | EvidenceKind::Function
        | EvidenceKind::LineCallee => true,
        EvidenceKind::Identifier => on_frame(EvidenceKind::Class, item.frame),
        _ => false,
    })
}
