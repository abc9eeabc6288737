//! `/incidents/{id}`: an incident's whole story, in the order a reviewer
//! asks the questions — what broke and who changed it (culprit, suspects
//! with their evidence, the stack, the likely locations with their code),
//! can we see it fail (the reproduction), what is the fix and is it proven
//! (the diff, the baseline and patched test runs), what happened before
//! (fix memory), is it holding (the verification window) and everything
//! in order (the timeline).
//!
//! The code around a likely location is read from the repository at the
//! diagnosed revision, off the runtime, a bounded slice of a bounded blob.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Html;
use chrono::Utc;
use maud::{Markup, html};
use serde_json::Value;
use store::{FixAttempt, Incident, StoredSignal, TimelineEntry};

use crate::auth::Viewer;
use crate::overview::{
    CardFacts, card_facts, held_back, percent, pull_request_link, state_label, state_name, trigger,
    when, when_precise,
};
use crate::story::{Story, list, short, text};
use crate::{Pages, PagesError, highlight, layout};

/// Likely locations shown with their code.
const MAX_LOCATIONS_WITH_CODE: usize = 5;

/// Lines shown around a location, before and after it.
const CONTEXT_LINES: usize = 3;

/// Lines of one location shown at most.
const MAX_LOCATION_LINES: usize = 60;

/// Files larger than this are not read for context.
const MAX_CONTEXT_BLOB: usize = 1024 * 1024;

/// Events after a merge listed at most.
const MAX_EVENTS_SHOWN: i64 = 50;

/// Frames of an undiagnosed event shown at most.
const MAX_EVENT_FRAMES: usize = 200;

/// `GET /incidents/{id}`.
pub(crate) async fn page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Html<String>, PagesError> {
    let not_found = || PagesError::NotFound(format!("incident {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let store = pages.store();
    let incident = store.incident(id).await?.ok_or_else(not_found)?;
    let facts = card_facts(&pages, &incident).await?;
    let timeline = store.timeline(id).await?;
    let fixes = store
        .attempts_for_fingerprint(&incident.fingerprint)
        .await?;
    let arrived = match facts.attempt.as_ref().and_then(|a| a.merged_at) {
        Some(merged_at) => {
            store
                .event_signals(id, merged_at, &[], MAX_EVENTS_SHOWN)
                .await?
        }
        None => Vec::new(),
    };
    let contexts = location_contexts(&pages, &facts).await?;
    let event_frames = if facts.story.frames().is_empty() {
        event_frames(&pages, &incident).await?
    } else {
        Vec::new()
    };
    let body = html! {
        (header(&incident, &facts))
        (culprit(&facts.story))
        (suspects(&facts.story))
        (stack(&facts.story, &event_frames))
        (locations(&facts.story, &contexts))
        (reproduction(&facts.story))
        (diff(&facts.story))
        (test_runs(&facts.story))
        (fix_memory(&fixes, incident.id))
        (verification(facts.attempt.as_ref(), &arrived))
        (timeline_section(&timeline))
    };
    // What moves the story on: a new state, round, step output or verdict.
    let outputs = [
        &facts.story.diagnosis,
        &facts.story.reproduce,
        &facts.story.heal,
        &facts.story.proposal,
    ]
    .map(|output| if output.is_null() { "-" } else { "+" })
    .concat();
    let round = incident.round.to_string();
    let attempt = facts
        .attempt
        .as_ref()
        .map_or("", |attempt| attempt.state.as_str());
    let watch = layout::digest(&[state_name(&incident), &round, &outputs, attempt]);
    Ok(layout::watched_page(
        &incident.title,
        viewer.signout(pages.keys()).as_deref(),
        Some(&watch),
        body,
    ))
}

fn header(incident: &Incident, facts: &CardFacts) -> Markup {
    html! {
        p { a href="/" { "← All incidents" } }
        h1 { (incident.title) }
        dl.facts {
            dt { "State" }
            dd { span.badge #incident-state data-state=(state_name(incident)) { (state_label(state_name(incident))) } }
            dt { "Events" } dd { (incident.count) }
            @if !facts.releases.is_empty() {
                dt { "Releases" } dd { (facts.releases.join(", ")) }
            }
            dt { "First seen" } dd { (when(&incident.first_seen)) }
            dt { "Last seen" } dd { (when(&incident.last_seen)) }
            dt { "Source" } dd { (incident.source) @if let Some(project) = &incident.project { " · project " (project) } }
            @if let Some(repo) = &facts.repo {
                dt { "Repository" } dd { (repo) }
            }
            dt { "Round" } dd { (incident.round) }
            @if let Some(trigger) = trigger(incident) {
                dt { "Trigger" } dd { (trigger) }
            }
            @if let Some(why) = held_back(incident) {
                dt { "Held back" } dd { (why) }
            }
            @match pull_request_link(facts) {
                Some((href, label)) => { dt { "Pull request" } dd { a href=(href) { (label) } } }
                // No pull request: what was proposed instead (a tracking
                // issue with the diagnosis or the diff).
                None => {
                    @if let Some(message) = facts.story.proposal.get("message").and_then(Value::as_str) {
                        dt { "Proposal" } dd { (message) }
                    }
                }
            }
        }
        @if facts.repo.is_none() {
            p.notice { "No configured repository serves this incident's project, so it is not diagnosed. See [[repos]] in the configuration, or run suture serve --repo PATH." }
        }
    }
}

fn culprit(story: &Story) -> Markup {
    html! {
        section #culprit aria-labelledby="culprit-heading" {
            h2 #culprit-heading { "Culprit" }
            @match story.culprit() {
                Some(culprit) => {
                    dl.facts {
                        dt { "Commit" } dd { code title=(culprit.commit) { (culprit.short()) } }
                        @if let Some(subject) = &culprit.subject { dt { "Subject" } dd { (subject) } }
                        @if let Some(author) = &culprit.author { dt { "Author" } dd { (author) } }
                        @if let Some(time) = &culprit.time { dt { "Committed" } dd { (time) } }
                        @if let Some(confidence) = story.confidence() {
                            dt { "Confidence" } dd { (percent(confidence)) }
                        }
                        @if let Some(by) = story.culprit_confirmed_by() {
                            dt { "Confirmed by" } dd { (by.replace('_', " ")) }
                        }
                    }
                }
                None => {
                    p.empty {
                        @if story.diagnosis.is_null() && story.heal.is_null() {
                            "Not diagnosed yet."
                        } @else {
                            "No commit is blamed with confidence."
                        }
                    }
                }
            }
        }
    }
}

fn location_text(value: &Value) -> String {
    match (
        text(value, "path"),
        value.get("line").and_then(Value::as_u64),
    ) {
        (Some(path), Some(line)) => format!("{path}:{line}"),
        (Some(path), None) => path.to_owned(),
        (None, _) => String::new(),
    }
}

fn suspects(story: &Story) -> Markup {
    html! {
        section #suspects aria-labelledby="suspects-heading" {
            h2 #suspects-heading { "Suspects and evidence" }
            @if story.suspects().is_empty() {
                p.empty { "No suspect commits." }
            }
            ol {
                @for suspect in story.suspects() {
                    li.suspect {
                        code { (text(suspect, "short_id").or_else(|| text(suspect, "commit").map(short)).unwrap_or("?")) }
                        " " (text(suspect, "subject").unwrap_or(""))
                        @if let Some(author) = text(suspect, "author") { " — " (author) }
                        @if let Some(score) = suspect.get("score").and_then(Value::as_f64) {
                            " " span.badge { "score " (format!("{score:.2}")) }
                        }
                        ul.evidence {
                            @for evidence in list(suspect, "evidence") {
                                li {
                                    span.badge { (text(evidence, "kind").unwrap_or("evidence").replace('_', " ")) }
                                    @let place = location_text(evidence);
                                    @let symbol = text(evidence, "symbol");
                                    @if !place.is_empty() { " " span.path { (place) } }
                                    @if let Some(symbol) = symbol { " in " code { (symbol) } }
                                    @if let Some(detail) = text(evidence, "detail") {
                                        @if place.is_empty() && symbol.is_none() { " " } @else { ": " }
                                        (detail)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The incident's event's crash frames as the SDK sent them, innermost
/// last, shaped as the diagnosis's frames (without blame): the stack of an
/// incident not diagnosed (yet, or at all).
async fn event_frames(pages: &Pages, incident: &Incident) -> Result<Vec<Value>, PagesError> {
    let Some(signal_id) = incident.event_signal_id else {
        return Ok(Vec::new());
    };
    let Some(signal) = pages.store().signal(signal_id).await? else {
        return Ok(Vec::new());
    };
    // Parsing a large event is CPU work: off the runtime.
    Ok(tokio::task::spawn_blocking(move || {
        let Ok(parsed) = domain::event::parse_event(signal.payload.as_bytes()) else {
            return Vec::new();
        };
        let Some(stacktrace) = parsed.event.crash_stacktrace() else {
            return Vec::new();
        };
        stacktrace
            .frames
            .iter()
            .take(MAX_EVENT_FRAMES)
            .enumerate()
            .map(|(index, frame)| {
                serde_json::json!({
                    "index": index,
                    "function": frame.function,
                    "path": frame.filename.as_ref().or(frame.abs_path.as_ref()),
                    "line": frame.lineno,
                    "in_app": frame.in_app,
                    "context_line": frame.context_line,
                })
            })
            .collect()
    })
    .await?)
}

fn stack(story: &Story, event_frames: &[Value]) -> Markup {
    let (frames, mapped) = if story.frames().is_empty() {
        (event_frames, false)
    } else {
        (story.frames(), true)
    };
    html! {
        section #stack aria-labelledby="stack-heading" {
            h2 #stack-heading { "Stack" }
            @if frames.is_empty() {
                p.empty { "No stack: the event carries none, or it is not read yet." }
            } @else {
                p.muted {
                    @if mapped { "Innermost frame (where it was raised) first. " }
                    @else { "Most recent call last. " }
                    "In-app frames are marked"
                    @if mapped { "; each names the commit that last changed its line." }
                    @else { ". As the event sent them: not mapped onto the repository yet, so no commit is blamed." }
                }
                div.table-wrap {
                    table.rows {
                        thead { tr { th scope="col" { "#" } th scope="col" { "Function" } th scope="col" { "Where" } th scope="col" { "In app" } th scope="col" { "Blamed commit" } } }
                        tbody {
                            @for frame in frames {
                                @let in_app = frame.get("in_app").and_then(Value::as_bool).unwrap_or(false);
                                tr.frame.in-app[in_app] {
                                    td data-label="#" { (frame.get("index").and_then(Value::as_u64).map(|i| i.to_string()).unwrap_or_default()) }
                                    td data-label="Function" { code { (text(frame, "function").or_else(|| text(frame, "symbol")).unwrap_or("?")) } }
                                    td.path data-label="Where" {
                                        (location_text(frame))
                                        @if text(frame, "path").is_none() {
                                            @if let Some(module) = text(frame, "module") { code { (module) } " " }
                                            @if let Some(mapping) = text(frame, "mapping") { span.muted { "(" (mapping) ")" } }
                                        }
                                        @if let Some(line) = text(frame, "context_line") {
                                            br; code { (line.trim()) }
                                        }
                                    }
                                    td data-label="In app" { @if in_app { "in app" } @else { span.muted { "library" } } }
                                    td data-label="Blamed commit" { @if let Some(commit) = text(frame, "blamed_commit") { code title=(commit) { (short(commit)) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The code of each of the first likely locations, read at the revision.
async fn location_contexts(
    pages: &Pages,
    facts: &CardFacts,
) -> Result<Vec<Option<(usize, String)>>, PagesError> {
    let wanted: Vec<(String, usize, usize)> = facts
        .story
        .locations()
        .iter()
        .take(MAX_LOCATIONS_WITH_CODE)
        .map(|location| {
            let line = |key: &str| {
                location
                    .get(key)
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0)
            };
            (
                text(location, "path").unwrap_or("").to_owned(),
                line("start_line"),
                line("end_line"),
            )
        })
        .collect();
    let repo_path = facts.repo.as_ref().and_then(|name| {
        pages
            .config()
            .repos
            .iter()
            .find(|repo| &repo.name == name)
            .map(|repo| repo.path.clone())
    });
    let (Some(repo_path), Some(revision)) = (repo_path, facts.story.revision()) else {
        return Ok(vec![None; wanted.len()]);
    };
    let revision = revision.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        let repository = git2::Repository::open(&repo_path).ok();
        wanted
            .iter()
            .map(|(path, start, end)| {
                let repository = repository.as_ref()?;
                context_at(repository, &revision, path, *start, *end)
            })
            .collect()
    })
    .await?)
}

/// Lines around `start..=end` of `path` at `revision`, with the first's
/// number.
fn context_at(
    repository: &git2::Repository,
    revision: &str,
    path: &str,
    start: usize,
    end: usize,
) -> Option<(usize, String)> {
    if start == 0 || end < start || path.is_empty() {
        return None;
    }
    let oid = git2::Oid::from_str(revision).ok()?;
    let tree = repository.find_commit(oid).ok()?.tree().ok()?;
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = repository.find_blob(entry.id()).ok()?;
    if blob.size() > MAX_CONTEXT_BLOB || blob.is_binary() {
        return None;
    }
    let source = String::from_utf8_lossy(blob.content());
    let first = start.saturating_sub(CONTEXT_LINES).max(1);
    let last = (end + CONTEXT_LINES).min(first + MAX_LOCATION_LINES - 1);
    let slice: Vec<&str> = source
        .lines()
        .skip(first - 1)
        .take(last + 1 - first)
        .collect();
    (!slice.is_empty()).then(|| (first, slice.join("\n") + "\n"))
}

fn locations(story: &Story, contexts: &[Option<(usize, String)>]) -> Markup {
    html! {
        section #locations aria-labelledby="locations-heading" {
            h2 #locations-heading { "Likely locations" }
            @if story.locations().is_empty() {
                p.empty { "None ranked." }
            }
            @for (n, location) in story.locations().iter().enumerate() {
                @let path = text(location, "path").unwrap_or("");
                @let start = location.get("start_line").and_then(Value::as_u64).unwrap_or(0);
                @let end = location.get("end_line").and_then(Value::as_u64).unwrap_or(start);
                div.location {
                    h3 {
                        code { (text(location, "symbol").unwrap_or("?")) }
                        " " span.path { (path) ":" (start) "–" (end) }
                        @if let Some(kind) = text(location, "kind") { " " span.badge { (kind) } }
                    }
                    @let reasons: Vec<&str> = list(location, "reasons").iter().filter_map(Value::as_str).collect();
                    @if !reasons.is_empty() { p.muted { (reasons.join("; ")) } }
                    @if let Some(Some((first, code))) = contexts.get(n) {
                        @let focus = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
                        (highlight::code(path, code, *first, focus))
                    }
                }
            }
        }
    }
}

fn run(title: &str, run: Option<&Value>) -> Markup {
    html! {
        div.run {
            h3 { (title) }
            @match run {
                Some(run) => {
                    @let exit = run.get("exit").and_then(Value::as_i64);
                    @let timed_out = run.get("timed_out").and_then(Value::as_bool).unwrap_or(false);
                    @let passed = exit == Some(0) && !timed_out;
                    p {
                        span.badge.ok[passed].bad[!passed] {
                            @if timed_out { "timed out" }
                            @else if let Some(exit) = exit { @if passed { "passed" } @else { "failed, exit " (exit) } }
                            @else { "killed" }
                        }
                        @if let Some(command) = text(run, "command") { " " code { (command) } }
                        @if let Some(ms) = run.get("duration_ms").and_then(Value::as_u64) { " " span.muted { (format!("{:.1} s", ms as f64 / 1000.0)) } }
                        @if let Some(backend) = text(run, "backend") { " " span.muted { "in " (backend) } }
                    }
                    @let tail = text(run, "output_tail").unwrap_or("");
                    @if tail.trim().is_empty() { p.empty { "No output." } }
                    @else { pre.wrap aria-label=(format!("{title}: output tail")) { (tail) } }
                }
                None => { p.empty { "Not run." } }
            }
        }
    }
}

/// The files of `patch` whose path is one of `paths`.
fn files_of(patch: &str, paths: &[&str]) -> String {
    let mut kept = String::new();
    let mut keep = false;
    for line in patch.split_inclusive('\n') {
        if line.starts_with("diff ") {
            keep = paths
                .iter()
                .any(|path| line.trim_end().ends_with(&format!(" b/{path}")));
        }
        if keep {
            kept.push_str(line);
        }
    }
    kept
}

fn reproduction(story: &Story) -> Markup {
    html! {
        section #reproduction aria-labelledby="reproduction-heading" {
            h2 #reproduction-heading { "Reproduction" }
            @match story.reproduction() {
                Some(record) => {
                    @let tests = list(record, "tests");
                    @if let Some(kind) = text(record, "kind") {
                        p {
                            span.badge.ok { "reproduced" } " by a " (kind.replace('_', " ")) " test"
                            @if let Some(command) = text(record, "command") { ": " code { (command) } }
                        }
                        ul {
                            @for test in tests {
                                li { span.path { (text(test, "file").unwrap_or("")) } " " code { (text(test, "name").unwrap_or("")) } }
                            }
                        }
                        @let files: Vec<&str> = tests.iter().filter_map(|t| text(t, "file")).collect();
                        @let test_diff = story.fix_patch().map(|patch| files_of(patch, &files)).unwrap_or_default();
                        @if !test_diff.is_empty() {
                            h3 { "The test" }
                            (highlight::diff(&test_diff))
                        }
                        (run("At the deployed revision (fails as production did)", record.get("at_revision").filter(|r| r.is_object())))
                        (run("With the fix", record.get("with_fix").filter(|r| r.is_object())))
                    } @else {
                        p.empty { "Not reproduced" @if let Some(reason) = text(record, "reason") { ": " (reason) } }
                    }
                    @let refused = list(record, "refused");
                    @if !refused.is_empty() {
                        details {
                            summary { (refused.len()) " candidate test(s) refused" }
                            ul { @for candidate in refused { li { (text(candidate, "reason").unwrap_or("")) } } }
                        }
                    }
                }
                None => { p.empty { "No reproduction attempted yet." } }
            }
        }
    }
}

fn diff(story: &Story) -> Markup {
    html! {
        section #diff aria-labelledby="diff-heading" {
            h2 #diff-heading { "The fix" }
            @if let Some(outcome) = story.outcome() {
                p {
                    span.badge.ok[outcome == "proven"] { (outcome) }
                    @if let Some(strategy) = story.strategy() { " by " (strategy.replace('_', " ")) }
                }
            }
            @match story.fix_patch() {
                Some(patch) => { (highlight::diff(patch)) }
                None => { p.empty { "No fix yet." } }
            }
            @if !story.rungs().is_empty() {
                h3 { "The fix ladder" }
                ol {
                    @for rung in story.rungs() {
                        li {
                            strong { (text(rung, "rung").unwrap_or("?").replace('_', " ")) } ": "
                            (text(rung, "status").unwrap_or(""))
                            @if let Some(reason) = text(rung, "reason") { " — " (reason) }
                        }
                    }
                }
            }
        }
    }
}

fn test_runs(story: &Story) -> Markup {
    let (baseline, patched) = story.test_runs();
    html! {
        section #test-runs aria-labelledby="test-runs-heading" {
            h2 #test-runs-heading { "Test runs" }
            (run("Baseline (the deployed revision)", baseline))
            (run("Patched (with the fix)", patched))
        }
    }
}

fn fix_memory(fixes: &[FixAttempt], incident_id: i64) -> Markup {
    html! {
        section #fixes aria-labelledby="fixes-heading" {
            h2 #fixes-heading { "Fix memory" }
            @if fixes.is_empty() {
                p.empty { "No fix proposed for this error before." }
            } @else {
                div.table-wrap {
                    table.rows {
                        thead { tr { th scope="col" { "Incident" } th scope="col" { "Round" } th scope="col" { "Strategy" } th scope="col" { "State" } th scope="col" { "Pull request" } th scope="col" { "Note" } } }
                        tbody {
                            @for fix in fixes {
                                tr {
                                    td data-label="Incident" { @if fix.incident_id == incident_id { (fix.incident_id) " (this)" } @else { a href=(format!("/incidents/{}", fix.incident_id)) { (fix.incident_id) } } }
                                    td data-label="Round" { (fix.round) }
                                    td data-label="Strategy" { (fix.strategy) }
                                    td data-label="State" { span.badge { (fix.state.as_str()) } }
                                    td data-label="Pull request" { @if let Some(n) = fix.pr_number { "#" (n) } }
                                    td data-label="Note" { (fix.note.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "1h 02m 03s", or "0s" once past.
fn remaining(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn verification(attempt: Option<&FixAttempt>, arrived: &[StoredSignal]) -> Markup {
    html! {
        section #verification aria-labelledby="verification-heading" {
            h2 #verification-heading { "Verification" }
            @match attempt.and_then(|a| a.merged_at.map(|merged| (a, merged))) {
                None => { p.empty { "Nothing merged yet: the quiet window starts when the pull request is merged." } }
                Some((attempt, merged_at)) => {
                    dl.facts {
                        dt { "Merged" } dd { (when_precise(&merged_at)) }
                        dt { "Fix" } dd { span.badge { (attempt.state.as_str()) } }
                        @if let Some(until) = attempt.verify_until {
                            dt { "Quiet window ends" } dd { (when_precise(&until)) }
                            @if attempt.state.as_str() == "merged" && until > Utc::now() {
                                dt { "Remaining" }
                                dd { span #countdown role="timer" data-until=(until.to_rfc3339()) { (remaining((until - Utc::now()).num_seconds())) } }
                            }
                        }
                        @if let Some(closed) = attempt.closed_at { dt { "Decided" } dd { (when_precise(&closed)) } }
                        @if let Some(note) = &attempt.note { dt { "Note" } dd { (note) } }
                    }
                    h3 { "Events since the merge" }
                    @if arrived.is_empty() {
                        p.empty { "None." }
                    } @else {
                        ul {
                            @for event in arrived {
                                li { (when_precise(&event.received_at)) " · release " (event.release.as_deref().unwrap_or("(none)")) " · " (event.kind) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn timeline_section(timeline: &[TimelineEntry]) -> Markup {
    html! {
        section #timeline aria-labelledby="timeline-heading" {
            h2 #timeline-heading { "Timeline" }
            ol.timeline {
                @for entry in timeline {
                    li data-kind=(entry.kind) { (when(&entry.at)) span.badge { (entry.kind.replace('_', " ")) } " " (entry.message) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_down_in_words() {
        assert_eq!(remaining(3723), "1h 02m 03s");
        assert_eq!(remaining(61), "1m 01s");
        assert_eq!(remaining(5), "5s");
        assert_eq!(remaining(-5), "0s");
    }

    #[test]
    fn the_reproduction_test_is_cut_from_the_fix() {
        let patch = "diff --git a/app.py b/app.py\n+fix\ndiff --git a/tests/test_app.py b/tests/test_app.py\n+test\n";
        assert_eq!(
            files_of(patch, &["tests/test_app.py"]),
            "diff --git a/tests/test_app.py b/tests/test_app.py\n+test\n"
        );
        assert_eq!(files_of(patch, &["nope.py"]), "");
    }
}
