//! The partial revert rung: undo only the culprit's hunks the evidence
//! implicates and keep the wanted work that came in the same commit.
//!
//! Culprit commits often mix the breaking change with wanted work (a
//! feature, a refactor, a cleanup); the full revert throws that work away
//! and, when it is large, runs into the scope guard's limits. This rung
//! picks the hunks the crash points at — a hunk on a crash frame's line or
//! next to it (a removed guard), one that changes an identifier the crash
//! line reads, else the hunks inside the frames' functions and the likely
//! locations — and searches hunk sets smallest first within
//! [`MAX_PARTIAL_RUNS`] sandbox runs: the implicated set, then widened to
//! the other hunks of the same functions, then of the same files. The whole
//! commit is the full revert's job, so the search stops short of it and
//! says so. A set that passes is shrunk one hunk at a time while it still
//! passes.
//!
//! Only the reproduction can judge a candidate: a suite that never failed
//! cannot tell which hunks matter, so without one the rung is skipped.
//! Every candidate is a patch against the deployed revision
//! ([`repo::worktree::Worktree::revert_hunks`], rebased through later
//! commits) and goes through the same gates as every fix.

use std::collections::BTreeSet;

use repo::git::LineMap;
use repo::git2::Oid;
use repo::worktree::{self, CommitHunk, RevertOutcome};

use super::HealError;
use super::gates::Gates;
use super::report::{Attempt, HunkRef, PartialRevertRecord, RungRecord, RungStatus, Strategy};
use crate::diagnose::Diagnosis;

/// Sandbox runs the search may spend.
pub(crate) const MAX_PARTIAL_RUNS: usize = 8;
/// A hunk this close to a frame line is implicated (a removed guard sits
/// just above the line that now crashes).
const ADJACENT_LINES: u32 = 3;
/// Words a crash line reads that say nothing about which hunk matters.
const KEYWORDS: &[&str] = &[
    "and",
    "await",
    "async",
    "break",
    "catch",
    "class",
    "const",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "false",
    "False",
    "finally",
    "for",
    "from",
    "function",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "let",
    "new",
    "none",
    "None",
    "not",
    "null",
    "or",
    "pass",
    "raise",
    "return",
    "self",
    "this",
    "throw",
    "true",
    "True",
    "try",
    "typeof",
    "undefined",
    "var",
    "while",
    "with",
    "yield",
];

/// A culprit hunk with where it sits at the deployed revision.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub(crate) hunk: CommitHunk,
    /// Inclusive line range at the deployed revision.
    pub(crate) deployed: (u32, u32),
}

/// What the crash says about where the fault is, at the deployed revision.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidence {
    /// In-app frame lines: path and line.
    pub(crate) frames: Vec<(String, u32)>,
    /// Enclosing functions and likely locations: path, first and last line.
    pub(crate) ranges: Vec<(String, u32, u32)>,
    /// Identifiers the crash line reads.
    pub(crate) identifiers: BTreeSet<String>,
}

impl Evidence {
    pub(crate) fn from_diagnosis(diagnosis: &Diagnosis) -> Evidence {
        let in_app = diagnosis
            .frames
            .iter()
            .filter(|f| f.in_app && f.chain == 0)
            .filter_map(|f| Some((f, f.path.clone()?, f.line?)));
        let mut evidence = Evidence::default();
        for (frame, path, line) in in_app {
            if evidence.frames.is_empty() {
                evidence.identifiers = frame
                    .context_line
                    .as_deref()
                    .map(identifiers)
                    .unwrap_or_default();
            }
            evidence.frames.push((path, line));
        }
        evidence.ranges = diagnosis
            .locations
            .iter()
            .map(|l| (l.path.clone(), l.start_line, l.end_line))
            .collect();
        evidence
    }
}

/// The identifiers in a line of code, keywords and one-letter names left
/// out.
fn identifiers(line: &str) -> BTreeSet<String> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|word| word.chars().count() >= 2)
        .filter(|word| word.chars().next().is_some_and(|c| !c.is_ascii_digit()))
        .filter(|word| !KEYWORDS.contains(word))
        .map(str::to_string)
        .collect()
}

/// Hunk sets to try, smallest first, each with what it is. Only the
/// implicated set may be the whole commit (the shrink can still find a
/// smaller one); a widening never is, that is the full revert's job.
pub(crate) fn tiers(hunks: &[Placed], evidence: &Evidence) -> Vec<(String, Vec<usize>)> {
    let near_frame = |p: &Placed| {
        evidence.frames.iter().any(|(path, line)| {
            *path == p.hunk.path
                && p.deployed.0.saturating_sub(ADJACENT_LINES) <= *line
                && *line <= p.deployed.1 + ADJACENT_LINES
        })
    };
    let reads = |p: &Placed| {
        p.hunk
            .hunk
            .added
            .iter()
            .chain(&p.hunk.hunk.removed)
            .any(|line| !identifiers(line).is_disjoint(&evidence.identifiers))
    };
    let in_ranges = |p: &Placed, ranges: &[(String, u32, u32)]| {
        ranges.iter().any(|(path, start, end)| {
            *path == p.hunk.path && p.deployed.0 <= *end && *start <= p.deployed.1
        })
    };
    let pick = |keep: &dyn Fn(&Placed) -> bool| -> BTreeSet<usize> {
        (0..hunks.len()).filter(|&i| keep(&hunks[i])).collect()
    };
    let mut implicated = pick(&|p| near_frame(p) || reads(p));
    if implicated.is_empty() {
        implicated = pick(&|p| in_ranges(p, &evidence.ranges));
    }
    if implicated.is_empty() {
        return Vec::new();
    }
    // The functions around the implicated hunks and the frames.
    let functions: Vec<(String, u32, u32)> = evidence
        .ranges
        .iter()
        .filter(|(path, start, end)| {
            implicated.iter().any(|&i| {
                let p = &hunks[i];
                p.hunk.path == *path && p.deployed.0 <= *end && *start <= p.deployed.1
            }) || evidence
                .frames
                .iter()
                .any(|(frame, line)| frame == path && start <= line && line <= end)
        })
        .cloned()
        .collect();
    let functions_set: BTreeSet<usize> = implicated
        .iter()
        .copied()
        .chain(pick(&|p| in_ranges(p, &functions)))
        .collect();
    let files: BTreeSet<&str> = implicated
        .iter()
        .map(|&i| hunks[i].hunk.path.as_str())
        .chain(evidence.frames.iter().map(|(path, _)| path.as_str()))
        .collect();
    let files_set: BTreeSet<usize> = functions_set
        .iter()
        .copied()
        .chain(pick(&|p| files.contains(p.hunk.path.as_str())))
        .collect();
    let mut tiers: Vec<(String, Vec<usize>)> = Vec::new();
    for (label, set) in [
        ("the implicated hunks", implicated),
        ("the hunks of the same functions", functions_set),
        ("the hunks of the same files", files_set),
    ] {
        let set: Vec<usize> = set.into_iter().collect();
        let widening = !tiers.is_empty();
        if (widening && set.len() == hunks.len())
            || tiers.last().is_some_and(|(_, last)| *last == set)
        {
            continue;
        }
        tiers.push((label.to_string(), set));
    }
    tiers
}

/// How the search over hunk sets ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Searched {
    /// The smallest set found that passes, if any.
    pub(crate) chosen: Option<Vec<usize>>,
    /// The widest set tried.
    pub(crate) widest: Vec<usize>,
    /// Judge calls made.
    pub(crate) runs: usize,
    /// Why it widened past the implicated set, if it did.
    pub(crate) widened: Option<String>,
}

/// Tries `tiers` in order until one passes, then drops hunks one at a time
/// while the set still passes; at most `budget` judge calls.
pub(crate) fn search<E>(
    tiers: &[(String, Vec<usize>)],
    budget: usize,
    mut judge: impl FnMut(&[usize]) -> Result<bool, E>,
) -> Result<Searched, E> {
    let mut searched = Searched {
        chosen: None,
        widest: Vec::new(),
        runs: 0,
        widened: None,
    };
    let mut stopped = None;
    for (position, (label, set)) in tiers.iter().enumerate() {
        if searched.runs >= budget {
            stopped = Some(format!(
                "the budget of {budget} sandbox runs was spent before {label} were tried"
            ));
            break;
        }
        searched.runs += 1;
        searched.widest = set.clone();
        if judge(set)? {
            if position > 0 {
                searched.widened = Some(format!(
                    "with {} undone the reproduction or the suite still fails; widened to {label}",
                    tiers[position - 1].0
                ));
            }
            searched.chosen = Some(set.clone());
            break;
        }
    }
    let Some(mut chosen) = searched.chosen.take() else {
        searched.widened = Some(stopped.unwrap_or_else(|| {
            format!(
                "every hunk is needed: with {} undone the reproduction or the suite still fails, so only the full revert remains",
                tiers.last().map_or("none".to_string(), |(label, _)| label.clone())
            )
        }));
        return Ok(searched);
    };
    let mut position = 0;
    while chosen.len() > 1 && position < chosen.len() && searched.runs < budget {
        let mut smaller = chosen.clone();
        smaller.remove(position);
        searched.runs += 1;
        if judge(&smaller)? {
            chosen = smaller;
        } else {
            position += 1;
        }
    }
    searched.chosen = Some(chosen);
    Ok(searched)
}

/// Runs the rung on the diagnosis's culprit (else its top suspect). The
/// proven candidate, if any, is pushed onto `attempts`.
pub(crate) fn partial_rung(
    gates: &Gates<'_>,
    diagnosis: &Diagnosis,
    rungs: &mut Vec<RungRecord>,
    attempts: &mut Vec<Attempt>,
) -> Result<Option<PartialRevertRecord>, HealError> {
    let mut record = |status, reason: String| {
        rungs.push(RungRecord {
            rung: Strategy::PartialRevert.as_str().to_string(),
            status,
            reason,
        })
    };
    if gates.reproduction.is_none() {
        record(
            RungStatus::Skipped,
            "the error was not reproduced: a suite that never failed cannot tell which hunks matter"
                .to_string(),
        );
        return Ok(None);
    }
    let Some(commit) = diagnosis
        .culprit
        .clone()
        .or_else(|| diagnosis.suspects.first().map(|s| s.commit.clone()))
    else {
        record(
            RungStatus::Skipped,
            "the diagnosis has no suspect commit".to_string(),
        );
        return Ok(None);
    };
    let short: String = commit.chars().take(10).collect();
    let oid = Oid::from_str(&commit).map_err(|e| HealError::Worktree(e.into()))?;
    let git = gates.repo.git();
    let hunks = worktree::commit_hunks(git, oid).map_err(HealError::Worktree)?;
    if hunks.len() < 2 {
        record(
            RungStatus::Skipped,
            format!(
                "{short} changes {} hunk: its partial revert is the full revert",
                hunks.len()
            ),
        );
        return Ok(None);
    }
    let placed = place(gates, oid, hunks)?;
    let tiers = tiers(&placed, &Evidence::from_diagnosis(diagnosis));
    if tiers.is_empty() {
        record(
            RungStatus::Skipped,
            format!(
                "the crash implicates none of {short}'s {} hunks",
                placed.len()
            ),
        );
        return Ok(None);
    }
    let all = placed.len();
    let worktree = gates.worktree()?;
    let mut proven: Option<Attempt> = None;
    let mut searched = search(&tiers, MAX_PARTIAL_RUNS, |set| {
        let patch = match worktree
            .revert_hunks(oid, set)
            .map_err(HealError::Worktree)?
        {
            RevertOutcome::Clean { patch } => patch,
            RevertOutcome::Conflict { .. } | RevertOutcome::Empty => return Ok(false),
        };
        let attempt = gates.attempt(Strategy::PartialRevert, &patch)?;
        let passed = attempt.proven;
        if passed {
            proven = Some(attempt);
        }
        Ok::<_, HealError>(passed)
    })?;
    if searched.chosen.as_ref().is_some_and(|set| set.len() == all) {
        // Shrinking kept every hunk: that is the full revert, not a partial.
        searched.widest = searched.chosen.take().unwrap_or_default();
        searched.widened = Some(
            "every hunk is needed: with any one of them kept the reproduction or the suite fails, so only the full revert remains"
                .to_string(),
        );
        proven = None;
    }
    let subject = gates
        .repo
        .commit_info(oid)
        .map(|info| info.summary)
        .unwrap_or_default();
    let undone_set = searched.chosen.clone().unwrap_or(searched.widest.clone());
    let refs = |keep: bool| -> Vec<HunkRef> {
        placed
            .iter()
            .enumerate()
            .filter(|(i, _)| undone_set.contains(i) != keep)
            .map(|(_, p)| HunkRef::new(p))
            .collect()
    };
    let partial = PartialRevertRecord {
        commit: commit.clone(),
        subject,
        proven: searched.chosen.is_some() && proven.is_some(),
        hunks: placed.len(),
        undone: refs(false),
        kept: refs(true),
        runs: searched.runs,
        widened: searched.widened.clone(),
    };
    match proven.filter(|_| searched.chosen.is_some()) {
        Some(attempt) => {
            attempts.push(attempt);
            record(
                RungStatus::Proven,
                format!(
                    "undoing {} of {short}'s {} hunks turns the reproduction green and the suite passes; {} kept ({} sandbox runs)",
                    partial.undone.len(),
                    partial.hunks,
                    partial.kept.len(),
                    partial.runs
                ),
            );
        }
        None => record(
            RungStatus::Failed,
            format!(
                "no set of {short}'s hunks short of the whole commit turns the reproduction green in {} sandbox runs: {}",
                searched.runs,
                searched.widened.as_deref().unwrap_or_default()
            ),
        ),
    }
    Ok(Some(partial))
}

/// Places each hunk at the deployed revision through the file's changes
/// since the culprit.
fn place(
    gates: &Gates<'_>,
    culprit: Oid,
    hunks: Vec<CommitHunk>,
) -> Result<Vec<Placed>, HealError> {
    let git = gates.repo.git();
    let mut placed = Vec::with_capacity(hunks.len());
    let mut since: Option<(String, Vec<repo::git::Hunk>)> = None;
    for hunk in hunks {
        let h = &hunk.hunk;
        let at_culprit = if h.new_lines == 0 {
            (h.new_start.max(1), h.new_start + 1)
        } else {
            (h.new_start, h.new_start + h.new_lines - 1)
        };
        let deployed = if culprit == gates.revision {
            at_culprit
        } else {
            if since.as_ref().is_none_or(|(path, _)| *path != hunk.path) {
                let changes = worktree::path_hunks(git, gates.revision, culprit, &hunk.path)
                    .map_err(HealError::Worktree)?;
                since = Some((hunk.path.clone(), changes));
            }
            let changes = &since.as_ref().expect("set above").1;
            LineMap::new(changes).range_to_old(at_culprit.0, at_culprit.1)
        };
        placed.push(Placed { hunk, deployed });
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use repo::git::Hunk;

    use super::*;

    fn placed(path: &str, start: u32, lines: u32, added: &[&str]) -> Placed {
        Placed {
            hunk: CommitHunk {
                path: path.to_string(),
                hunk: Hunk {
                    old_start: start,
                    old_lines: lines,
                    new_start: start,
                    new_lines: lines,
                    removed: Vec::new(),
                    added: added.iter().map(|s| s.to_string()).collect(),
                },
            },
            deployed: (start, start + lines.max(1) - 1),
        }
    }

    fn evidence(frames: &[(&str, u32)], ranges: &[(&str, u32, u32)], line: &str) -> Evidence {
        Evidence {
            frames: frames.iter().map(|(p, l)| (p.to_string(), *l)).collect(),
            ranges: ranges
                .iter()
                .map(|(p, s, e)| (p.to_string(), *s, *e))
                .collect(),
            identifiers: identifiers(line),
        }
    }

    /// A hunk on the crash line and one just above it (a removed guard) are
    /// implicated; a feature elsewhere is not, and the widening goes
    /// through the function, then the file, never the whole commit.
    #[test]
    fn frame_lines_and_neighbours_are_implicated_first() {
        let hunks = vec![
            placed("app/feature.py", 1, 4, &["def total(prices):"]),
            placed("app/store.py", 10, 1, &["    pass"]),
            placed("app/store.py", 40, 1, &["    log('x')"]),
            placed("app/store.py", 80, 1, &["OTHER = 1"]),
        ];
        let evidence = evidence(
            &[("app/store.py", 12)],
            &[("app/store.py", 5, 45)],
            "return stock[sku]",
        );
        let tiers = tiers(&hunks, &evidence);
        assert_eq!(
            tiers,
            vec![
                ("the implicated hunks".to_string(), vec![1]),
                ("the hunks of the same functions".to_string(), vec![1, 2]),
                ("the hunks of the same files".to_string(), vec![1, 2, 3]),
            ]
        );
    }

    /// When the evidence implicates every hunk, that set is still tried
    /// (the shrink may find fewer), but no widening repeats it.
    #[test]
    fn an_implicated_whole_commit_is_tried_once() {
        let hunks = vec![
            placed("a.py", 10, 1, &["text = 1"]),
            placed("a.py", 40, 1, &["text = 2"]),
        ];
        let evidence = evidence(&[("a.py", 10)], &[("a.py", 1, 50)], "int(text)");
        assert_eq!(
            tiers(&hunks, &evidence),
            vec![("the implicated hunks".to_string(), vec![0, 1])]
        );
    }

    /// A hunk far from the crash that changes what the crash line reads is
    /// implicated; keywords and one-letter names are not evidence.
    #[test]
    fn a_hunk_changing_what_the_crash_line_reads_is_implicated() {
        let hunks = vec![
            placed("app/config.py", 3, 1, &["LIMIT = 0"]),
            placed("app/util.py", 3, 1, &["if x: return None"]),
            placed("app/store.py", 90, 1, &["def unrelated(): pass"]),
        ];
        let evidence = evidence(&[("app/store.py", 12)], &[], "if x > LIMIT: return None");
        assert_eq!(tiers(&hunks, &evidence)[0].1, vec![0]);
    }

    /// With nothing on or next to a frame line, the likely locations pick
    /// the hunks; with nothing at all there is nothing to search.
    #[test]
    fn locations_are_the_fallback_and_no_evidence_gives_no_tiers() {
        let hunks = vec![
            placed("a.py", 20, 1, &["y = 2"]),
            placed("b.py", 1, 1, &["z = 3"]),
        ];
        let located = evidence(&[("a.py", 50)], &[("a.py", 15, 30)], "");
        assert_eq!(tiers(&hunks, &located)[0].1, vec![0]);
        assert!(tiers(&hunks, &evidence(&[], &[], "")).is_empty());
    }

    /// A passing implicated set is shrunk one hunk at a time to what the
    /// judge needs.
    #[test]
    fn a_passing_set_is_shrunk_to_the_needed_hunks() {
        let tiers = vec![("the implicated hunks".to_string(), vec![0, 1, 2, 3])];
        let searched = search(&tiers, 8, |set: &[usize]| Ok::<_, ()>(set.contains(&2))).unwrap();
        assert_eq!(searched.chosen, Some(vec![2]));
        assert_eq!(searched.runs, 5);
        assert_eq!(searched.widened, None);
    }

    /// A failing implicated set widens, and the report says why.
    #[test]
    fn a_failing_set_widens_to_the_next_tier() {
        let tiers = vec![
            ("the implicated hunks".to_string(), vec![1]),
            ("the hunks of the same functions".to_string(), vec![1, 2]),
        ];
        let searched = search(&tiers, 8, |set: &[usize]| Ok::<_, ()>(set.contains(&2))).unwrap();
        assert_eq!(searched.chosen, Some(vec![2]));
        assert_eq!(searched.runs, 3);
        assert!(
            searched
                .widened
                .as_deref()
                .is_some_and(|w| w.contains("widened to the hunks of the same functions")),
            "{searched:?}"
        );
    }

    /// When no tier passes, every hunk is needed; a spent budget says so
    /// instead.
    #[test]
    fn no_passing_tier_means_every_hunk_is_needed_or_the_budget_ran_out() {
        let tiers = vec![
            ("the implicated hunks".to_string(), vec![0]),
            ("the hunks of the same files".to_string(), vec![0, 1]),
        ];
        let searched = search(&tiers, 8, |_: &[usize]| Ok::<_, ()>(false)).unwrap();
        assert_eq!(searched.chosen, None);
        assert_eq!(searched.runs, 2);
        assert_eq!(searched.widest, vec![0, 1]);
        assert!(
            searched
                .widened
                .as_deref()
                .is_some_and(|w| w.starts_with("every hunk is needed")),
            "{searched:?}"
        );
        let searched = search(&tiers, 1, |_: &[usize]| Ok::<_, ()>(false)).unwrap();
        assert_eq!(searched.runs, 1);
        assert!(
            searched
                .widened
                .as_deref()
                .is_some_and(|w| w.contains("budget of 1 sandbox runs")),
            "{searched:?}"
        );
    }
}
