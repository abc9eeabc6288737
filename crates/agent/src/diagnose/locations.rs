//! Suspect locations: the functions most likely to hold the fault.
//!
//! In about a third of real crashes the faulty function is not on the stack
//! (the crash is a symptom further on), so candidates are the functions the
//! suspect commits changed, weighed by how they relate to the frames (the
//! frame's own function, a sibling in its class, a callee, the same file),
//! plus the frames' functions themselves as a fallback.

use std::collections::HashMap;

use repo::git::{Repo, Window};
use repo::git2::Tree;
use repo::index::CodeIndex;

use super::DiagnoseError;
use super::evidence::{ChangedSymbol, changed_symbols};
use super::frames::ResolvedFrame;
use super::report::Location;
use super::score::Ranking;

/// Suspects whose changed functions are considered.
const SUSPECTS_CONSIDERED: usize = 5;
/// What being on the stack alone is worth, before any suspect says more.
const ON_STACK: f64 = 0.15;
/// Locations listed at most.
const MAX_LOCATIONS: usize = 10;

pub(crate) fn rank(
    repo: &Repo,
    index: &mut CodeIndex,
    window: &Window<'_>,
    frames: &[ResolvedFrame],
    ranking: &Ranking,
    tip_tree: &Tree<'_>,
) -> Result<Vec<Location>, DiagnoseError> {
    let mut candidates: HashMap<(String, String), Location> = HashMap::new();
    let top: Vec<(usize, usize)> = ranking
        .suspects
        .iter()
        .take(SUSPECTS_CONSIDERED)
        .flat_map(|s| {
            (0..window.commits[s.commit_idx].changes.len()).map(move |ch| (s.commit_idx, ch))
        })
        .collect();
    let all_changed = changed_symbols(repo, index, window, &top)?;

    for suspect in ranking.suspects.iter().take(SUSPECTS_CONSIDERED) {
        let changed = &all_changed[suspect.commit_idx];
        let total_lines: u32 = changed.iter().map(|s| s.lines).sum::<u32>().max(1);
        let short = window.commits[suspect.commit_idx].info.short_id();
        for symbol in changed {
            let Some(qualified_name) = &symbol.qualified_name else {
                continue;
            };
            let Some(file) = index.file_at(repo.git(), tip_tree, &symbol.path)? else {
                continue;
            };
            // Gone at the deployed revision: it cannot hold the fault any more.
            let Some(at_tip) = file.by_qualified_name(qualified_name) else {
                continue;
            };
            let (relation, related) = relatedness(symbol, qualified_name, frames);
            let share = f64::from(symbol.lines) / f64::from(total_lines);
            let score = suspect.score * related * (0.5 + 0.5 * share);
            let location = candidates
                .entry((symbol.path.clone(), qualified_name.clone()))
                .or_insert_with(|| Location {
                    path: symbol.path.clone(),
                    symbol: qualified_name.clone(),
                    kind: at_tip.kind.name().to_string(),
                    start_line: at_tip.start_line,
                    end_line: at_tip.end_line,
                    score: 0.0,
                    reasons: Vec::new(),
                });
            location.score += score;
            location
                .reasons
                .push(format!("changed by {short} ({relation})"));
        }
    }

    for frame in frames.iter().filter(|f| f.weight > 0.0) {
        let (Some(path), Some(symbol)) = (frame.path(), &frame.symbol) else {
            continue;
        };
        let location = candidates
            .entry((path.to_string(), symbol.qualified_name.clone()))
            .or_insert_with(|| Location {
                path: path.to_string(),
                symbol: symbol.qualified_name.clone(),
                kind: symbol.kind.name().to_string(),
                start_line: symbol.start_line,
                end_line: symbol.end_line,
                score: 0.0,
                reasons: Vec::new(),
            });
        location.score += ON_STACK * frame.weight;
        let reason = format!("on the stack (frame {})", frame.index);
        if !location.reasons.contains(&reason) {
            location.reasons.push(reason);
        }
    }

    let mut locations: Vec<Location> = candidates.into_values().collect();
    for location in &mut locations {
        location.score = (location.score * 1000.0).round() / 1000.0;
    }
    locations.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.start_line.cmp(&b.start_line))
    });
    locations.truncate(MAX_LOCATIONS);
    Ok(locations)
}

/// How a changed function relates to the stack, and what that is worth.
/// A sibling in the frame's class or file counts fully only when the change
/// shares an identifier with the frame's line (the state the crash reads);
/// otherwise it is a neighbour, not a lead.
fn relatedness(
    changed: &ChangedSymbol,
    qualified_name: &str,
    frames: &[ResolvedFrame],
) -> (&'static str, f64) {
    let linked_anywhere = frames.iter().any(|f| linked(changed, f));
    let mut best = if linked_anywhere {
        ("shares identifiers with a frame line", 0.25)
    } else {
        ("elsewhere", 0.1)
    };
    let name = qualified_name
        .rsplit(['.', ':'])
        .next()
        .unwrap_or(qualified_name);
    for frame in frames.iter().filter(|f| f.weight > 0.0) {
        let Some(frame_path) = frame.path() else {
            continue;
        };
        let same_file = frame_path == changed.path;
        let link = linked(changed, frame);
        let own = same_file
            && frame
                .symbol
                .as_ref()
                .is_some_and(|s| s.qualified_name == qualified_name);
        let sibling = same_file
            && frame
                .container
                .as_ref()
                .is_some_and(|c| qualified_name.starts_with(&format!("{}.", c.qualified_name)));
        let callee = frame
            .symbol
            .as_ref()
            .is_some_and(|s| s.calls.iter().any(|c| c == name));
        let candidates = [
            ("the frame's own function", 1.0, own),
            ("called from a frame", 0.7, callee),
            (
                "same class as a frame, same identifiers",
                0.8,
                sibling && link,
            ),
            ("same class as a frame", 0.2, sibling && !link),
            (
                "in a frame's file, same identifiers",
                0.5,
                same_file && link,
            ),
            ("in a frame's file", 0.15, same_file && !link),
        ];
        for (relation, value, holds) in candidates {
            let weighted = value * frame.weight;
            if holds && weighted > best.1 {
                best = (relation, weighted);
            }
        }
    }
    best
}

fn linked(changed: &ChangedSymbol, frame: &ResolvedFrame) -> bool {
    frame.weight > 0.0
        && frame
            .line_tokens
            .iter()
            .any(|token| changed.identifiers.contains(token))
}
