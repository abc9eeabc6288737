//! What each window commit did to the frames: rewrote a frame's line,
//! changed its function or class, changed a function it calls, touched an
//! identifier on the crash line, or only touched its file.

use std::collections::{BTreeSet, HashMap};

use repo::git::{ChangeStatus, LineOrigin, Repo, Window};
use repo::index::{CodeIndex, Language, Symbol};

use super::DiagnoseError;
use super::frames::ResolvedFrame;
use super::report::EvidenceKind;

/// Commits that change more files than this are not searched for callee
/// evidence: a mass edit says little about one function.
const MAX_FILES_FOR_SYMBOLS: usize = 25;
/// Files parsed at most for callee evidence alone, newest commits first.
const MAX_CALLEE_CANDIDATES: usize = 48;
/// Frames (by rank among app frames) whose line identifiers are matched.
const IDENTIFIER_FRAMES: usize = 3;

/// One piece of evidence against a commit.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) kind: EvidenceKind,
    /// Index into the resolved frames.
    pub(crate) frame: usize,
    pub(crate) detail: String,
}

/// A function (or module-level code, when `qualified_name` is None) a
/// commit changed, named as in that commit's version of the file.
#[derive(Debug, Clone)]
pub(crate) struct ChangedSymbol {
    pub(crate) path: String,
    pub(crate) qualified_name: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) lines: u32,
    /// Identifiers on the changed lines, to link a change to a crash line.
    pub(crate) identifiers: BTreeSet<String>,
}

/// Everything the scorer and the locator need.
pub(crate) struct Evidence {
    /// Per window commit, its evidence items.
    pub(crate) per_commit: Vec<Vec<Item>>,
    /// Per resolved frame, the bounded blame of its line (app frames only).
    pub(crate) blame: Vec<Option<LineOrigin>>,
}

pub(crate) fn collect(
    repo: &Repo,
    index: &mut CodeIndex,
    window: &Window<'_>,
    frames: &[ResolvedFrame],
) -> Result<Evidence, DiagnoseError> {
    let n_commits = window.commits.len();
    let mut per_commit: Vec<Vec<Item>> = vec![Vec::new(); n_commits];
    let mut blame = vec![None; frames.len()];

    // Bounded blame, one walk per file for all of its frame lines.
    let mut lines_by_path: HashMap<&str, Vec<(usize, u32)>> = HashMap::new();
    for (frame_idx, frame) in frames.iter().enumerate() {
        if let (Some(path), Some(line)) = (frame.path(), frame.line)
            && frame.weight > 0.0
        {
            lines_by_path
                .entry(path)
                .or_default()
                .push((frame_idx, line));
        }
    }
    for (path, lines) in &lines_by_path {
        let only_lines: Vec<u32> = lines.iter().map(|(_, l)| *l).collect();
        let origins = window.blame_lines(path, &only_lines)?;
        for ((frame_idx, line), origin) in lines.iter().zip(origins) {
            blame[*frame_idx] = Some(origin);
            if let LineOrigin::Window {
                commit_idx,
                created_file: created,
                ..
            } = origin
            {
                // The commit that created the file wrote every line of it:
                // that it wrote this one says little about a regression.
                per_commit[commit_idx].push(Item {
                    kind: if created {
                        EvidenceKind::Created
                    } else {
                        EvidenceKind::Line
                    },
                    frame: *frame_idx,
                    detail: if created {
                        format!("created {path}, with line {line}")
                    } else {
                        format!("last changed {path}:{line}")
                    },
                });
            }
        }
    }

    for (frame_idx, frame) in frames.iter().enumerate() {
        let Some(path) = frame.path() else { continue };
        if frame.weight <= 0.0 {
            continue;
        }
        let line_commit = match blame[frame_idx] {
            Some(LineOrigin::Window { commit_idx, .. }) => Some(commit_idx),
            _ => None,
        };
        let mut seen: BTreeSet<usize> = line_commit.into_iter().collect();
        // What changed right above an older line: a guard removed, a value
        // the line uses rewritten. Only inside the frame's function.
        if let (Some(line), Some(symbol)) = (frame.line, &frame.symbol)
            && line > symbol.start_line
        {
            for touch in window.range_touches(path, line - 1, line - 1)? {
                if !touch.created_file && seen.insert(touch.commit_idx) {
                    per_commit[touch.commit_idx].push(Item {
                        kind: EvidenceKind::Adjacent,
                        frame: frame_idx,
                        detail: format!(
                            "{} right above {path}:{line} in {}",
                            match (touch.removed.len(), touch.added.len()) {
                                (removed, 0) => format!("removed {removed} line(s)"),
                                (0, _) => "added the line".to_owned(),
                                _ => "rewrote the line".to_owned(),
                            },
                            symbol.qualified_name
                        ),
                    });
                }
            }
        }
        if let Some(symbol) = &frame.symbol {
            for touch in window.range_touches(path, symbol.start_line, symbol.end_line)? {
                if seen.insert(touch.commit_idx) {
                    per_commit[touch.commit_idx].push(Item {
                        kind: EvidenceKind::Function,
                        frame: frame_idx,
                        detail: format!("changed {} ({path})", symbol.qualified_name),
                    });
                }
            }
        }
        if let Some(container) = &frame.container {
            for touch in window.range_touches(path, container.start_line, container.end_line)? {
                if seen.insert(touch.commit_idx) {
                    per_commit[touch.commit_idx].push(Item {
                        kind: EvidenceKind::Class,
                        frame: frame_idx,
                        detail: format!("changed {} ({path})", container.qualified_name),
                    });
                }
            }
        }
        for (commit_idx, items) in per_commit.iter_mut().enumerate() {
            if window.change_of(commit_idx, path).is_some() && seen.insert(commit_idx) {
                items.push(Item {
                    kind: EvidenceKind::File,
                    frame: frame_idx,
                    detail: format!("changed {path}"),
                });
            }
        }
    }

    identifier_evidence(window, frames, &mut per_commit)?;
    let candidates = callee_candidates(repo, window, frames);
    let changed = changed_symbols(repo, index, window, &candidates)?;
    callee_evidence(frames, &changed, &mut per_commit);
    Ok(Evidence { per_commit, blame })
}

/// Identifiers on the top frames' lines that a commit's changed lines in the
/// same file mention: a changed default, a renamed attribute, a removed guard.
fn identifier_evidence(
    window: &Window<'_>,
    frames: &[ResolvedFrame],
    per_commit: &mut [Vec<Item>],
) -> Result<(), DiagnoseError> {
    let top_frames = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.weight > 0.0 && f.line_text.is_some())
        .take(IDENTIFIER_FRAMES);
    for (frame_idx, frame) in top_frames {
        let Some(path) = frame.path() else {
            continue;
        };
        let tokens = &frame.line_tokens;
        if tokens.is_empty() {
            continue;
        }
        for (commit_idx, items) in per_commit.iter_mut().enumerate() {
            let Some(change_idx) = window.change_of(commit_idx, path) else {
                continue;
            };
            // Creating the file mentions every identifier in it.
            if window.commits[commit_idx].changes[change_idx].status == ChangeStatus::Added {
                continue;
            }
            let hunks = window.hunks(commit_idx, change_idx)?;
            let changed_tokens: BTreeSet<String> = hunks
                .iter()
                .flat_map(|h| h.added.iter().chain(h.removed.iter()))
                .flat_map(|line| identifiers(line))
                .collect();
            let shared: Vec<&String> = tokens.intersection(&changed_tokens).collect();
            if !shared.is_empty() {
                let names = shared
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                items.push(Item {
                    kind: EvidenceKind::Identifier,
                    frame: frame_idx,
                    detail: format!("changed lines of {path} mention {names}"),
                });
            }
        }
    }
    Ok(())
}

/// A commit that changed a function the frame's function calls (by name):
/// the fault is often one call below the crash.
fn callee_evidence(
    frames: &[ResolvedFrame],
    changed: &[Vec<ChangedSymbol>],
    per_commit: &mut [Vec<Item>],
) {
    for (frame_idx, frame) in frames.iter().enumerate() {
        let Some(symbol) = &frame.symbol else {
            continue;
        };
        if frame.weight <= 0.0 || symbol.calls.is_empty() {
            continue;
        }
        for (commit_idx, symbols) in changed.iter().enumerate() {
            let already = per_commit[commit_idx]
                .iter()
                .any(|item| item.frame == frame_idx && item.kind != EvidenceKind::Identifier);
            if already {
                continue;
            }
            let hit = symbols.iter().find(|s| {
                s.name.as_deref().is_some_and(|name| {
                    name != symbol.name && symbol.calls.iter().any(|call| call == name)
                })
            });
            if let Some(hit) = hit {
                let name = hit.name.as_deref().unwrap_or_default();
                let on_line = frame
                    .line_text
                    .as_deref()
                    .is_some_and(|text| text.contains(&format!("{name}(")));
                per_commit[commit_idx].push(Item {
                    kind: if on_line {
                        EvidenceKind::LineCallee
                    } else {
                        EvidenceKind::Callee
                    },
                    frame: frame_idx,
                    detail: format!(
                        "changed {} ({}), called from {}",
                        hit.qualified_name.as_deref().unwrap_or_default(),
                        hit.path,
                        symbol.qualified_name
                    ),
                });
            }
        }
    }
}

/// Changed files that may hold callee evidence: newest first, within a
/// budget, the files whose text mentions a function a frame calls. Parsing
/// is the expensive part of a diagnosis, so nothing else is parsed before
/// the ranking.
fn callee_candidates(
    repo: &Repo,
    window: &Window<'_>,
    frames: &[ResolvedFrame],
) -> Vec<(usize, usize)> {
    let Some(pattern) = callee_pattern(frames) else {
        return Vec::new();
    };
    let mut candidates = Vec::new();
    'commits: for (commit_idx, commit) in window.commits.iter().enumerate() {
        if commit.changes.len() > MAX_FILES_FOR_SYMBOLS {
            continue;
        }
        for (change_idx, change) in commit.changes.iter().enumerate() {
            if change.status == ChangeStatus::Deleted
                || change
                    .new_path
                    .as_deref()
                    .and_then(Language::from_path)
                    .is_none()
            {
                continue;
            }
            let mentions = repo
                .git()
                .find_blob(change.new_blob)
                .is_ok_and(|blob| pattern.is_match(&String::from_utf8_lossy(blob.content())));
            if mentions {
                candidates.push((commit_idx, change_idx));
                if candidates.len() >= MAX_CALLEE_CANDIDATES {
                    break 'commits;
                }
            }
        }
    }
    candidates
}

/// The functions that the given changes (commit index, change index)
/// changed, per window commit, read from the commit's own version of each
/// file; the parses run in parallel.
pub(crate) fn changed_symbols(
    repo: &Repo,
    index: &mut CodeIndex,
    window: &Window<'_>,
    changes: &[(usize, usize)],
) -> Result<Vec<Vec<ChangedSymbol>>, DiagnoseError> {
    let wanted: Vec<(usize, usize, Language)> = changes
        .iter()
        .filter_map(|&(c, ch)| {
            let change = &window.commits[c].changes[ch];
            if change.status == ChangeStatus::Deleted {
                return None;
            }
            Some((
                c,
                ch,
                change.new_path.as_deref().and_then(Language::from_path)?,
            ))
        })
        .collect();
    let blobs: Vec<_> = wanted
        .iter()
        .map(|&(c, ch, language)| (window.commits[c].changes[ch].new_blob, language))
        .collect();
    index.prefetch_blobs(repo.git(), &blobs)?;

    let mut all: Vec<Vec<ChangedSymbol>> = vec![Vec::new(); window.commits.len()];
    for (commit_idx, change_idx, language) in wanted {
        let change = &window.commits[commit_idx].changes[change_idx];
        let path = change.path();
        let file = match index.file_blob(repo.git(), change.new_blob, language) {
            Ok(file) => file,
            Err(_) => continue, // too large or unreadable: no symbols, not a failed diagnosis
        };
        let symbols = &mut all[commit_idx];
        let hunks = window.hunks(commit_idx, change_idx)?;
        for hunk in hunks.iter() {
            let function_at = |line: u32| {
                file.enclosing_chain(line)
                    .into_iter()
                    .find(|s| s.kind.is_function_like())
            };
            // Removed lines (beyond those replaced) belong to where the hunk starts.
            let start = function_at(hunk.new_start.max(1));
            let removed_extra = hunk.old_lines.saturating_sub(hunk.new_lines);
            let removed_tokens = hunk.removed.iter().flat_map(|l| identifiers(l)).collect();
            bump(symbols, path, start, removed_extra, removed_tokens);
            for (offset, text) in hunk.added.iter().enumerate() {
                let function = function_at(hunk.new_start + offset as u32);
                bump(symbols, path, function, 1, identifiers(text));
            }
        }
    }
    Ok(all)
}

/// A regex matching any name the frames' functions call, as a whole word.
fn callee_pattern(frames: &[ResolvedFrame]) -> Option<regex::Regex> {
    let names: BTreeSet<&str> = frames
        .iter()
        .filter(|f| f.weight > 0.0)
        .filter_map(|f| f.symbol.as_ref())
        .flat_map(|s| s.calls.iter().map(String::as_str))
        .filter(|name| name.len() >= 3)
        .collect();
    if names.is_empty() {
        return None;
    }
    let alternation = names
        .iter()
        .map(|n| regex::escape(n))
        .collect::<Vec<_>>()
        .join("|");
    regex::Regex::new(&format!(r"\b(?:{alternation})\b")).ok()
}

fn bump(
    symbols: &mut Vec<ChangedSymbol>,
    path: &str,
    function: Option<&Symbol>,
    lines: u32,
    tokens: BTreeSet<String>,
) {
    if lines == 0 && tokens.is_empty() {
        return;
    }
    let qualified_name = function.map(|s| s.qualified_name.clone());
    match symbols
        .iter_mut()
        .find(|s| s.path == path && s.qualified_name == qualified_name)
    {
        Some(existing) => {
            existing.lines += lines;
            existing.identifiers.extend(tokens);
        }
        None => symbols.push(ChangedSymbol {
            path: path.to_string(),
            qualified_name,
            name: function.map(|s| s.name.clone()),
            lines,
            identifiers: tokens,
        }),
    }
}

/// Identifier tokens worth matching: long enough, not keywords or the
/// names every function has.
pub(crate) fn identifiers(text: &str) -> BTreeSet<String> {
    const COMMON: &[&str] = &[
        "self",
        "this",
        "None",
        "null",
        "true",
        "false",
        "True",
        "False",
        "return",
        "await",
        "async",
        "const",
        "function",
        "import",
        "from",
        "else",
        "elif",
        "while",
        "break",
        "continue",
        "pass",
        "raise",
        "throw",
        "yield",
        "with",
        "lambda",
        "class",
        "struct",
        "impl",
        "super",
        "value",
        "values",
        "data",
        "args",
        "kwargs",
        "result",
        "string",
        "len",
        "type",
        "list",
        "dict",
        "print",
        "Some",
        "Ok",
        "Err",
        "let",
        "mut",
        "func",
        "var",
        "new",
        "int",
        "str",
        "bool",
        "float",
        "object",
        "isinstance",
        "items",
        "keys",
        "get",
        "set",
        "append",
    ];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.len() >= 4 && !t.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|t| !COMMON.contains(t))
        .map(str::to_string)
        .collect()
}
