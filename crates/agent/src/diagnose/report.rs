//! The diagnosis as it is reported: the JSON schema of `suture diagnose
//! --json` (documented in docs/diagnose.md) and the input of the fix stage.

use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::event::Event;
use repo::git::{CommitInfo, LineOrigin, Window};
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
    /// An experiment: with the commit reverted, the reproduction of the
    /// error passes (or bisecting the window with it ends there). Added by
    /// healing, never by the score.
    Reproduction,
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
    /// True when the repository is a shallow clone whose boundary cut the
    /// window short: `base` is the boundary commit, and the commits before
    /// it were not looked at because the clone does not hold them.
    /// (Diagnoses saved before the field existed read as `false`.)
    #[serde(default)]
    pub shallow: bool,
    /// Why the window holds fewer commits than asked, for a person; null
    /// when nothing cut it short.
    #[serde(default)]
    pub note: Option<String>,
    /// `--since` as given, or the previous release's commit (40-hex) when
    /// the window is the deploy's.
    pub since: Option<String>,
    /// Days before the event, when the window is time-based.
    pub days: Option<u32>,
    /// How the window was chosen. (Diagnoses saved before the field
    /// existed read as `days`.)
    #[serde(default)]
    pub source: WindowSource,
    /// The releases whose commits bound the window, when `source` is
    /// `releases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleaseRange>,
}

/// How a diagnosis window was chosen (see docs/diagnose.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    /// The deploy that brought the error: from the release before the
    /// incident's first release to that release.
    Releases,
    /// The days before the event (`--days`, `repos[].days`, default 14).
    #[default]
    Days,
    /// A revision given with `--since`.
    Since,
}

/// Two releases of a project: the one an incident arrived with and the
/// one deployed before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRange {
    /// The release seen before `release` (R0): the window's base.
    pub previous: String,
    /// The incident's first release (R): the window's tip.
    pub release: String,
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
    /// The module as reported by the event (`httpie.sessions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The frame's source line as the SDK sent it (capped); untrusted
    /// text, shown and never executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    /// The frame's local variables as the SDK sent them (capped, see
    /// [`crate::diagnose::locals`]); untrusted data. A replay test reads its
    /// arguments from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<serde_json::Map<String, serde_json::Value>>,
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

impl Suspect {
    /// A suspect for the commit `info` describes.
    pub fn new(info: &CommitInfo, score: f64, evidence: Vec<EvidenceItem>) -> Suspect {
        Suspect {
            commit: info.id.to_string(),
            short_id: info.short_id(),
            author: info.author_name.clone(),
            email: info.author_email.clone(),
            time: DateTime::<Utc>::from_timestamp(info.author_time, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            subject: info.summary.clone(),
            score,
            evidence,
        }
    }
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
            let evidence = ranked
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
                .collect();
            Suspect::new(info, (ranked.score * 1000.0).round() / 1000.0, evidence)
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
            shallow: window.shallow,
            note: window_note(window),
            since: target.since.clone(),
            days: target.days,
            source: target.source,
            releases: target.releases.clone(),
        },
        frames: frame_reports,
        suspects,
        locations,
        confidence: ranking.confidence,
        culprit,
        elapsed_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
    }
}

/// The note of a window cut short by the commit cap or by a shallow
/// clone's boundary.
fn window_note(window: &Window<'_>) -> Option<String> {
    let base = window.base.map(|b| b.to_string()[..10].to_string());
    if window.shallow {
        Some(format!(
            "the repository is a shallow clone: its history stops at {}, so older commits were \
             not looked at; clone with more depth (or unshallow) for a longer window",
            base.unwrap_or_default()
        ))
    } else if window.truncated {
        Some(format!(
            "the window reached the commit cap ({} commits) before its boundary",
            window.commits.len()
        ))
    } else {
        None
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
        module: frame.module.clone(),
        context_line: frame.context_line.clone(),
        vars: frame.vars.clone(),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use repo::git::Repo;
    use repo::git2::{Repository, Signature};
    use repo::index::CodeIndex;

    use super::super::{DiagnoseOptions, ReleaseRange, WindowSource, diagnose};

    /// Three commits to `app.py` on `main`, each adding a line.
    fn history(dir: &Path) {
        let git = Repository::init(dir).unwrap();
        let signature = Signature::now("Dev", "dev@example.com").unwrap();
        let mut parent = None;
        for n in 1..=3 {
            let text: String = (1..=n).map(|line| format!("x{line} = {line}\n")).collect();
            let blob = git.blob(text.as_bytes()).unwrap();
            let mut tree = git.treebuilder(None).unwrap();
            tree.insert("app.py", blob, 0o100644).unwrap();
            let tree = git.find_tree(tree.write().unwrap()).unwrap();
            let parents: Vec<&repo::git2::Commit<'_>> = parent.iter().collect();
            let id = git
                .commit(
                    Some("HEAD"),
                    &signature,
                    &signature,
                    &format!("c{n}"),
                    &tree,
                    &parents,
                )
                .unwrap();
            parent = Some(git.find_commit(id).unwrap());
        }
    }

    /// The window is the deploy's, R0..R, only when both releases name
    /// commits and R descends from R0; `--since` wins, and anything else
    /// falls back to the days before the event. `source` says which.
    #[test]
    fn the_window_source_says_how_it_was_chosen() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path());
        let git = Repository::open(dir.path()).unwrap();
        let commit = |rev: &str| git.revparse_single(rev).unwrap().id();
        let (c1, c2, c3) = (commit("HEAD~2"), commit("HEAD~1"), commit("HEAD"));
        for (tag, id) in [("v1.0", c1), ("v1.1", c3), ("v1.1-again", c3)] {
            git.tag_lightweight(tag, &git.find_object(id, None).unwrap(), false)
                .unwrap();
        }
        let repo = Repo::open(dir.path()).unwrap();
        let run = |options: DiagnoseOptions| {
            diagnose(&repo, &mut CodeIndex::default(), &event(), &options)
                .unwrap()
                .window
        };
        let deploy = |previous: &str, release: &str| DiagnoseOptions {
            deploy: Some(ReleaseRange {
                previous: previous.to_string(),
                release: release.to_string(),
            }),
            ..DiagnoseOptions::default()
        };

        let diagnosis = diagnose(
            &repo,
            &mut CodeIndex::default(),
            &event(),
            &deploy("shop@1.0", "shop@1.1"),
        )
        .unwrap();
        let markdown = diagnosis.to_markdown();
        assert!(
            markdown
                .contains("2 commits scanned deployed between releases `shop@1.0` and `shop@1.1`"),
            "{markdown}"
        );
        let window = diagnosis.window;
        assert_eq!(window.source, WindowSource::Releases);
        assert_eq!(window.base, Some(c1.to_string()));
        assert_eq!(window.since, Some(c1.to_string()));
        assert_eq!(window.commits, 2, "c2 and c3: {c2} {c3}");
        assert_eq!(window.days, None);
        assert_eq!(
            window.releases,
            Some(ReleaseRange {
                previous: "shop@1.0".into(),
                release: "shop@1.1".into()
            })
        );
        let saved = serde_json::to_value(&window).unwrap();
        assert_eq!(saved["source"], "releases");
        assert_eq!(saved["releases"]["previous"], "shop@1.0");

        for (options, why) in [
            (DiagnoseOptions::default(), "no deploy"),
            (deploy("shop@0.9", "shop@1.1"), "R0 names no commit"),
            (deploy("shop@1.0", "shop@2.0"), "R names no commit"),
            (deploy("1.1", "v1.1-again"), "two names for one commit"),
            (deploy("shop@1.1", "shop@1.0"), "R does not descend from R0"),
            (
                DiagnoseOptions {
                    revision: Some("HEAD~1".into()),
                    ..deploy("shop@1.0", "shop@1.1")
                },
                "a revision was given",
            ),
        ] {
            let window = run(options);
            assert_eq!(window.source, WindowSource::Days, "{why}");
            assert_eq!(window.days, Some(crate::diagnose::DEFAULT_DAYS), "{why}");
            assert_eq!(window.releases, None, "{why}");
        }

        let window = run(DiagnoseOptions {
            since: Some("HEAD~1".into()),
            ..deploy("shop@1.0", "shop@1.1")
        });
        assert_eq!(window.source, WindowSource::Since);
        assert_eq!(window.since.as_deref(), Some("HEAD~1"));
        assert_eq!(window.base, Some(c2.to_string()));
        assert_eq!(window.commits, 1);

        // A diagnosis saved before the field existed reads as `days`.
        let mut old = saved;
        old.as_object_mut().unwrap().remove("source");
        old.as_object_mut().unwrap().remove("releases");
        let old: super::WindowReport = serde_json::from_value(old).unwrap();
        assert_eq!(old.source, WindowSource::Days);
    }

    fn shallow_clone(from: &Path, to: &Path) {
        #[allow(clippy::disallowed_methods)] // a shallow clone as git makes it
        let output = std::process::Command::new("git")
            .args(["clone", "--quiet", "--bare", "--depth", "2"])
            .arg(format!("file://{}", from.display()))
            .arg(to)
            .env_remove("GIT_DIR")
            .output()
            .expect("running git clone");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A crash on line 3 of `app.py` (the tip's last line).
    fn event() -> domain::event::Event {
        let (event, problems) = domain::event::event_from_value(serde_json::json!({
            "platform": "python",
            "exception": {"values": [{
                "type": "ValueError",
                "value": "bad",
                "stacktrace": {"frames": [
                    {"filename": "app.py", "function": "f", "lineno": 3, "in_app": true}
                ]}
            }]}
        }));
        assert!(problems.is_empty(), "{problems:?}");
        event
    }

    /// Diagnosing in a depth-2 clone: the window holds the tip, stops at
    /// the boundary commit (its base), and the JSON says so in `shallow`
    /// and `note`; the complete repository reports neither.
    #[test]
    fn diagnose_reports_the_shallow_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full");
        let clone = dir.path().join("clone.git");
        history(&full);
        shallow_clone(&full, &clone);
        let run = |path: &Path| {
            let repo = Repo::open(path).unwrap();
            let mut index = CodeIndex::default();
            let diagnosis =
                diagnose(&repo, &mut index, &event(), &DiagnoseOptions::default()).unwrap();
            serde_json::to_value(&diagnosis).unwrap()
        };

        let shallow = run(&clone);
        let window = &shallow["window"];
        assert_eq!(window["commits"], 1, "{shallow:#}");
        assert_eq!(window["shallow"], true);
        assert_eq!(window["truncated"], false);
        let boundary = Repo::open(&full).unwrap().resolve("HEAD~1").unwrap();
        assert_eq!(window["base"], boundary.to_string());
        let note = window["note"].as_str().unwrap();
        assert!(
            note.contains("shallow clone") && note.contains(&boundary.to_string()[..10]),
            "{note}"
        );

        let complete = run(&full);
        assert_eq!(complete["window"]["commits"], 3, "{complete:#}");
        assert_eq!(complete["window"]["shallow"], false);
        assert_eq!(complete["window"]["note"], serde_json::Value::Null);
    }

    /// Event text and commit metadata reach the diagnosis only redacted: a
    /// token-shaped secret in the exception's value is gone from the title
    /// and everything else the diagnosis carries.
    #[test]
    fn a_diagnosis_carries_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        history(dir.path());
        let token = format!("ghp_{}", "A1b2C3d4E5".repeat(4));
        let (event, _) = domain::event::event_from_value(serde_json::json!({
            "platform": "python",
            "exception": {"values": [{
                "type": "ValueError",
                "value": format!("login failed with {token}"),
                "stacktrace": {"frames": [
                    {"filename": "app.py", "function": "f", "lineno": 3, "in_app": true}
                ]}
            }]}
        }));
        let repo = Repo::open(dir.path()).unwrap();
        let diagnosis = diagnose(
            &repo,
            &mut CodeIndex::default(),
            &event,
            &DiagnoseOptions::default(),
        )
        .unwrap();
        let json = serde_json::to_string(&diagnosis).unwrap();
        assert!(!json.contains(&token), "{json}");
        assert!(
            diagnosis.title.contains("[redacted]"),
            "{}",
            diagnosis.title
        );
        assert!(!diagnosis.to_markdown().contains(&token));
    }
}
