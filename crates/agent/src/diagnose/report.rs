//! The diagnosis as it is reported: the JSON schema of `suture diagnose
//! --json` (documented in docs/diagnose.md) and the input of the fix stage.

use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::event::Event;
use repo::git::{LineOrigin, Window};
use repo::pathmap::MapOutcome;
use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use super::frames::ResolvedFrame;
use super::score::{CULPRIT_CONFIDENCE, Ranking};
use super::window::Target;

/// Kinds of evidence, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The commit last changed the frame's line.
    Line,
    /// The commit removed or rewrote the lines right above the frame's
    /// line, in its function (a removed guard, a changed value the line
    /// uses), while the line itself is older.
    Adjacent,
    /// The commit created the frame's file: it wrote the line, as it wrote
    /// every other; authorship, not a change to working code.
    Created,
    /// The commit changed the function enclosing the frame's line.
    Function,
    /// The commit changed the class (impl, trait…) enclosing it.
    Class,
    /// The commit changed a function called on the frame's line itself.
    LineCallee,
    /// The commit changed a function the frame's function calls elsewhere.
    Callee,
    /// The commit's changed lines mention an identifier of the frame's line.
    Identifier,
    /// The commit changed the frame's file.
    File,
}

/// A diagnosis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnosis {
    /// One-line description of the error.
    pub title: String,
    /// The deployed revision the frames were read at (40-hex).
    pub revision: String,
    /// How it was found: `release`, `head` or `option`.
    pub revision_source: String,
    /// The commits looked at.
    pub window: WindowReport,
    /// Every frame, crash frame first.
    pub frames: Vec<FrameReport>,
    /// Ranked suspect commits.
    pub suspects: Vec<Suspect>,
    /// Ranked functions most likely to hold the fault.
    pub locations: Vec<Location>,
    /// 0..1: how sure the top suspect is the culprit.
    pub confidence: f64,
    /// The top suspect when confidence reaches the culprit threshold.
    pub culprit: Option<String>,
    /// Time taken, milliseconds.
    pub elapsed_ms: f64,
}

/// The window of commits looked at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowReport {
    /// Commits in the window.
    pub commits: usize,
    /// The commit just before the window, if any.
    pub base: Option<String>,
    /// True when the commit cap cut the window short.
    pub truncated: bool,
    /// `--since` as given.
    pub since: Option<String>,
    /// Days before the event, when the window is time-based.
    pub days: Option<u32>,
}

/// One frame as diagnosed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrameReport {
    /// Position in the stack, 0 = crash frame.
    pub index: usize,
    /// 0 for the raised exception's stack, 1.. for its causes.
    pub chain: usize,
    /// Repository-relative path, or null when not application code.
    pub path: Option<String>,
    /// Line number as reported.
    pub line: Option<u32>,
    /// Enclosing function at the deployed revision (qualified name).
    pub symbol: Option<String>,
    /// The function name as reported by the event.
    pub function: Option<String>,
    /// Whether the frame maps to a repository file.
    pub in_app: bool,
    /// The SDK's own in-app flag, when it sent one.
    pub sdk_in_app: Option<bool>,
    /// How the path was mapped, or why not: `code_mapping`, `exact`,
    /// `suffix`, `module`, `library`, `unmapped`.
    pub mapping: String,
    /// For library frames, which kind of library.
    pub library: Option<String>,
    /// The window commit that last changed this line, if any.
    pub blamed_commit: Option<String>,
    /// How much this frame's evidence counts.
    pub weight: f64,
}

/// A suspect commit with its evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suspect {
    /// Full 40-hex commit id.
    pub commit: String,
    /// Abbreviated id.
    pub short_id: String,
    /// Author name.
    pub author: String,
    /// Author e-mail.
    pub email: String,
    /// Author date, RFC 3339.
    pub time: String,
    /// First line of the message.
    pub subject: String,
    /// Evidence score (higher is more suspect).
    pub score: f64,
    /// Why, strongest first.
    pub evidence: Vec<EvidenceItem>,
}

/// One piece of evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// What kind.
    pub kind: EvidenceKind,
    /// Index of the frame it is about.
    pub frame: usize,
    /// The frame's path.
    pub path: Option<String>,
    /// The frame's line.
    pub line: Option<u32>,
    /// The frame's enclosing function.
    pub symbol: Option<String>,
    /// Human-readable detail.
    pub detail: String,
}

/// A function likely to hold the fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    /// Repository-relative path.
    pub path: String,
    /// Qualified name (`Class.method`).
    pub symbol: String,
    /// Symbol kind (`function`, `method`, …).
    pub kind: String,
    /// First line at the deployed revision.
    pub start_line: u32,
    /// Last line at the deployed revision.
    pub end_line: u32,
    /// Relative score.
    pub score: f64,
    /// Why it is here.
    pub reasons: Vec<String>,
}

#[allow(clippy::too_many_arguments)] // one call site, each input a different stage's output
pub(crate) fn build(
    event: &Event,
    target: &Target,
    window: &Window<'_>,
    frames: &[ResolvedFrame],
    evidence: &Evidence,
    ranking: Ranking,
    locations: Vec<Location>,
    started: Instant,
) -> Diagnosis {
    let frame_reports = frames
        .iter()
        .enumerate()
        .map(|(idx, frame)| frame_report(frame, evidence.blame[idx]))
        .collect();
    let suspects: Vec<Suspect> = ranking
        .suspects
        .iter()
        .map(|ranked| {
            let info = &window.commits[ranked.commit_idx].info;
            Suspect {
                commit: info.id.to_string(),
                short_id: info.short_id(),
                author: info.author_name.clone(),
                email: info.author_email.clone(),
                time: DateTime::<Utc>::from_timestamp(info.author_time, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                subject: info.summary.clone(),
                score: (ranked.score * 1000.0).round() / 1000.0,
                evidence: ranked
                    .items
                    .iter()
                    .map(|item| {
                        let frame = &frames[item.frame];
                        EvidenceItem {
                            kind: item.kind,
                            frame: frame.index,
                            path: frame.path().map(str::to_string),
                            line: frame.line,
                            symbol: frame.symbol.as_ref().map(|s| s.qualified_name.clone()),
                            detail: item.detail.clone(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let culprit = (ranking.confidence >= CULPRIT_CONFIDENCE)
        .then(|| suspects.first().map(|s| s.commit.clone()))
        .flatten();
    Diagnosis {
        title: event.title(),
        revision: target.spec.tip.to_string(),
        revision_source: target.revision_source.to_string(),
        window: WindowReport {
            commits: window.commits.len(),
            base: window.base.map(|b| b.to_string()),
            truncated: window.truncated,
            since: target.since.clone(),
            days: target.days,
        },
        frames: frame_reports,
        suspects,
        locations,
        confidence: ranking.confidence,
        culprit,
        elapsed_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
    }
}

fn frame_report(frame: &ResolvedFrame, blame: Option<LineOrigin>) -> FrameReport {
    let (mapping, library) = match &frame.outcome {
        MapOutcome::Repo { method, .. } => (
            serde_json::to_value(method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            None,
        ),
        MapOutcome::Library { reason } => ("library".to_string(), Some(reason.to_string())),
        MapOutcome::Unmapped => ("unmapped".to_string(), None),
    };
    FrameReport {
        index: frame.index,
        chain: frame.chain,
        path: frame.path().map(str::to_string),
        line: frame.line,
        symbol: frame.symbol.as_ref().map(|s| s.qualified_name.clone()),
        function: frame.function.clone(),
        in_app: frame.in_app(),
        sdk_in_app: frame.sdk_in_app,
        mapping,
        library,
        blamed_commit: match blame {
            Some(LineOrigin::Window { commit, .. }) => Some(commit.to_string()),
            _ => None,
        },
        weight: (frame.weight * 1000.0).round() / 1000.0,
    }
}
