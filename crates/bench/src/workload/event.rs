//! The event the bench diagnoses: a Python trace whose frames point at
//! statement lines inside functions, most in files the window's commits
//! changed (the crash line itself written by one of them), the rest in files
//! no window commit touched.
//!
//! That mix is what makes a diagnosis do its full work: bounded blame walks
//! the window for every file, and the old files cost a walk that finds
//! nothing, as callers far from the fault do in production.

use repo::git2::Oid;
use serde_json::{Value, json};

use super::code::FunctionSpan;
use super::rng::Rng;
use super::synthetic::Synthetic;

/// Share of the callers (frames other than the crash) in files the window
/// changed.
const RECENT_SHARE: f64 = 0.65;

/// Where deployed Python code lives on the (imaginary) production host.
const DEPLOY_ROOT: &str = "/srv/app/";

/// One frame as the event reports it.
#[derive(Debug, Clone)]
pub(crate) struct TraceFrame {
    /// Repository path.
    pub(crate) path: String,
    pub(crate) line: u32,
    pub(crate) function: String,
}

/// The event and what the bench knows about it.
pub(crate) struct PlantedEvent {
    /// SDK event JSON, as `domain::event::event_from_value` reads it.
    pub(crate) json: Value,
    /// Oldest call first, the crash frame last, as in the event.
    pub(crate) frames: Vec<TraceFrame>,
    /// The commit that last wrote the crash line: what a diagnosis should
    /// put first.
    pub(crate) planted: Oid,
    /// Frames in files that a window commit changed.
    pub(crate) recent_frames: usize,
}

/// A production Python file frames may point into.
struct Candidate {
    /// Index into `Synthetic::files`.
    file_idx: usize,
    /// Whether a commit of the window edited it.
    recent: bool,
    /// The rendered text, for the frames' `context_line`.
    lines: Vec<String>,
    spans: Vec<FunctionSpan>,
}

/// A body line of a function of a candidate.
#[derive(Debug, Clone, Copy)]
struct Pick {
    candidate: usize,
    span: usize,
    body: usize,
}

/// A trace of `n_frames` frames at the head of `synthetic`, for a diagnosis
/// looking `days` days back from the anchor.
pub(crate) fn build(synthetic: &Synthetic, n_frames: usize, days: u32) -> PlantedEvent {
    let mut rng = Rng::new(0x7ace ^ n_frames as u64);
    let not_before = synthetic.anchor - i64::from(days) * 86_400;
    let first_window_step = synthetic
        .commit_times
        .iter()
        .position(|&time| time >= not_before)
        .unwrap_or(synthetic.commit_times.len()) as u32;
    // Production code, unless a tiny repository has only tests.
    let any_production = synthetic
        .files
        .iter()
        .any(|file| file.path.ends_with(".py") && !file.is_test());
    let candidates: Vec<Candidate> = synthetic
        .files
        .iter()
        .enumerate()
        .filter(|(_, file)| file.path.ends_with(".py") && !(any_production && file.is_test()))
        .map(|(file_idx, file)| Candidate {
            file_idx,
            // The first commit adds every file: it edits nothing.
            recent: file.last_edit() >= first_window_step && file.last_edit() > 0,
            lines: file.render().lines().map(str::to_string).collect(),
            spans: file.spans(),
        })
        .collect();

    // The crash: a line a window commit wrote, else any line at all.
    let window_lines: Vec<Pick> = candidates
        .iter()
        .enumerate()
        .flat_map(|(candidate, file)| {
            file.spans
                .iter()
                .enumerate()
                .flat_map(move |(span, function)| {
                    function
                        .body
                        .iter()
                        .enumerate()
                        .filter(move |(_, line)| line.origin >= first_window_step)
                        .map(move |(body, _)| Pick {
                            candidate,
                            span,
                            body,
                        })
                })
        })
        .collect();
    let crash = if window_lines.is_empty() {
        let candidate = rng.below(candidates.len());
        random_line(&mut rng, candidate, &candidates)
    } else {
        *rng.pick(&window_lines)
    };

    // Callers, each in a file of its own while files last.
    let (mut recent, mut older): (Vec<usize>, Vec<usize>) = (0..candidates.len())
        .filter(|&c| c != crash.candidate)
        .partition(|&c| candidates[c].recent);
    let n_callers = n_frames.saturating_sub(1);
    let mut picks = Vec::with_capacity(n_frames);
    for caller_idx in 0..n_callers {
        let want_recent = (caller_idx as f64) < RECENT_SHARE * n_callers as f64;
        let pool = if (want_recent && !recent.is_empty()) || older.is_empty() {
            &mut recent
        } else {
            &mut older
        };
        let candidate = if pool.is_empty() {
            rng.below(candidates.len())
        } else {
            pool.swap_remove(rng.below(pool.len()))
        };
        picks.push(random_line(&mut rng, candidate, &candidates));
    }
    // Shuffled so that recent and old callers interleave along the stack.
    for idx in (1..picks.len()).rev() {
        picks.swap(idx, rng.below(idx + 1));
    }
    picks.push(crash);

    let frames: Vec<TraceFrame> = picks
        .iter()
        .map(|pick| {
            let candidate = &candidates[pick.candidate];
            let function = &candidate.spans[pick.span];
            TraceFrame {
                path: synthetic.files[candidate.file_idx].path.clone(),
                line: function.body[pick.body].line,
                function: function.name.clone(),
            }
        })
        .collect();
    let json_frames: Vec<Value> = picks
        .iter()
        .zip(&frames)
        .map(|(pick, frame)| {
            let context_line = candidates[pick.candidate]
                .lines
                .get(frame.line as usize - 1)
                .cloned()
                .unwrap_or_default();
            json!({
                "abs_path": format!("{DEPLOY_ROOT}{}", frame.path),
                "filename": frame.path,
                "module": frame.path.trim_end_matches(".py").replace('/', "."),
                "function": frame.function,
                "lineno": frame.line,
                "context_line": context_line,
                "in_app": true,
            })
        })
        .collect();
    let json = json!({
        "event_id": format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
        "timestamp": synthetic.anchor as f64,
        "platform": "python",
        "level": "error",
        "environment": "production",
        "release": synthetic.head.to_string(),
        "exception": {"values": [{
            "type": "TypeError",
            "value": "unsupported operand type(s) for *: 'NoneType' and 'int'",
            "mechanism": {"type": "generic", "handled": false},
            "stacktrace": {"frames": json_frames},
        }]},
    });
    let crash_line = candidates[crash.candidate].spans[crash.span].body[crash.body];
    PlantedEvent {
        json,
        frames,
        planted: synthetic.commit_ids[crash_line.origin as usize],
        recent_frames: picks
            .iter()
            .filter(|pick| candidates[pick.candidate].recent)
            .count(),
    }
}

/// A body line of a random function of `candidate`.
fn random_line(rng: &mut Rng, candidate: usize, candidates: &[Candidate]) -> Pick {
    let spans = &candidates[candidate].spans;
    let span = rng.below(spans.len());
    Pick {
        candidate,
        span,
        body: rng.below(spans[span].body.len()),
    }
}
