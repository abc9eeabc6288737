//! The normalised error event: what suture diagnoses, whatever door it came in by.
//!
//! Sentry hands us the same event in three wrappings (an SDK event sent to
//! `/store/` or inside an envelope, an integration-platform webhook, the legacy
//! WebHooks plugin) and in many dialects (SDK versions, Sentry's own
//! re-serialisation with `null` everywhere). This module owns the one [`Event`]
//! they all become, plus the questions every later stage asks of it: which
//! exception was raised ([`Event::primary_exception`]), which frames to diagnose
//! from ([`Event::crash_frames`]), and a one-line [`Event::title`].
//!
//! Reading is split by reason to change: `parse.rs` turns one event object into
//! an [`Event`] tolerantly ([`event_from_value`]: broken input is data, a
//! wrong-typed field becomes a [`Problem`], never an error), and `shape.rs`
//! recognises the wrapping around it ([`parse_event`], which fails only when
//! there is no event at all).
//!
//! Ordering convention, as on the wire: exceptions run oldest cause first with
//! the raised one LAST, and stack frames run oldest to newest with the crashing
//! frame LAST. The accessors that hand frames out for diagnosis flip that to
//! newest first, and say so.

mod parse;
mod shape;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use parse::event_from_value;
pub use shape::{EventError, parse_event, parse_sdk_event};

/// One error event, normalised from any of Sentry's wrappings.
///
/// Keys this type does not model are kept verbatim in [`Event::other`], so
/// nothing the sender said is lost. Keys that only fed a fallback (`datetime`,
/// `received`, `issue_id`, `issue_url`, `web_url`, ...) stay there too: only the
/// keys that map one-to-one onto a field here are moved out of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Sentry's id for this occurrence: 32 hex chars from SDKs, kept as sent.
    pub event_id: Option<String>,
    /// When it happened: `timestamp` (float epoch seconds or RFC 3339), else
    /// the webhook's `datetime`, else the time Sentry `received` it.
    pub timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// The SDK platform (`python`, `javascript`, `node`, ...): decides how
    /// frame paths map onto repository files.
    pub platform: Option<String>,
    /// `error`, `fatal`, `warning`, ...; numeric legacy levels are named.
    pub level: Option<String>,
    /// The release the SDK reported, usually a commit sha or a version: the
    /// anchor for "which recent commit broke things".
    pub release: Option<String>,
    /// Top-level `environment`, else the `environment` tag.
    pub environment: Option<String>,
    /// The log message: `logentry.formatted`/`.message`, else `message` (a
    /// string or the same object). Empty strings, which webhooks send for
    /// exception events, are `None`.
    pub message: Option<String>,
    /// Custom grouping fingerprint, when the SDK set one.
    pub fingerprint: Option<Vec<String>>,
    /// `exception.values` in wire order: oldest cause first, the raised one LAST.
    pub exceptions: Vec<Exception>,
    /// `threads.values`, for events whose stack trace lives on a thread.
    pub threads: Vec<Thread>,
    /// Legacy top-level `stacktrace` (message events with `attach_stacktrace`
    /// in older SDKs).
    pub stacktrace: Option<Stacktrace>,
    /// Tags in the order sent; SDKs send an object, webhooks `[k, v]` pairs.
    pub tags: Vec<(String, String)>,
    /// The Sentry issue (group) this event belongs to, when the wrapping says:
    /// lets suture comment on and resolve the upstream issue.
    pub upstream_issue_id: Option<String>,
    /// Every top-level key not modelled above, verbatim.
    pub other: Map<String, Value>,
}

/// One exception of a chain.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Exception {
    /// The exception class, e.g. `TypeError`.
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// The exception message.
    pub value: Option<String>,
    /// The module the class lives in, e.g. `requests.exceptions`.
    pub module: Option<String>,
    /// How it was captured (`{type, handled, ...}`), kept as sent.
    pub mechanism: Option<Value>,
    /// Where it was raised; frames oldest to newest.
    pub stacktrace: Option<Stacktrace>,
}

/// One thread of the process at capture time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Thread {
    /// Thread id; SDKs send integers or strings, kept as a string.
    pub id: Option<String>,
    /// The thread that crashed (native and some managed SDKs).
    pub crashed: bool,
    /// The thread that captured the event (e.g. `attach_stacktrace`).
    pub current: bool,
    /// The thread's stack; frames oldest to newest.
    pub stacktrace: Option<Stacktrace>,
}

/// A stack trace as sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Stacktrace {
    /// Oldest to newest: the crashing frame is LAST.
    pub frames: Vec<Frame>,
}

/// One stack frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Frame {
    /// Path as the SDK shortened it (relative to a sys.path entry, a URL path).
    pub filename: Option<String>,
    /// Absolute path or URL of the file at runtime.
    pub abs_path: Option<String>,
    /// Module name, e.g. `luigi.scheduler`.
    pub module: Option<String>,
    /// Function name.
    pub function: Option<String>,
    /// 1-based line number.
    pub lineno: Option<u32>,
    /// 1-based column number.
    pub colno: Option<u32>,
    /// Whether the frame is the application's own code; `None` when the SDK
    /// did not say (Python omits it for the standard library).
    pub in_app: Option<bool>,
    /// The source line at `lineno`.
    pub context_line: Option<String>,
    /// Source lines just before `context_line`, in file order.
    pub pre_context: Vec<String>,
    /// Source lines just after `context_line`, in file order.
    pub post_context: Vec<String>,
    /// The package (native image, jar, ...) the frame belongs to.
    pub package: Option<String>,
    /// Per-frame platform when it differs from the event's.
    pub platform: Option<String>,
    /// Every frame key not modelled above (`vars`, `data`, ...), verbatim.
    pub other: Map<String, Value>,
}

/// The wrapping an event arrived in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventShape {
    /// The event object itself, as an SDK sends it to `/store/` or in an
    /// envelope `event` item.
    SdkEvent,
    /// An integration-platform ("Sentry App") webhook body
    /// `{action, installation, data, actor}`.
    IntegrationWebhook {
        /// `error`, `event_alert`, `issue`, ...: inferred from the keys of
        /// `data`, since Sentry sends it only in the `Sentry-Hook-Resource`
        /// header; `unknown` when `data` does not say.
        resource: String,
        /// The body's `action`, e.g. `created`, `triggered`.
        action: String,
    },
    /// The legacy WebHooks plugin body `{id, project, url, ..., event}`.
    LegacyWebhookPlugin,
}

/// Something in the input that was not as expected, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Where, relative to the event object, e.g.
    /// `exception.values[0].stacktrace.frames[3].lineno`; empty for the event
    /// itself.
    pub path: String,
    /// What was wrong, lowercase, e.g. `expected an integer, found a string ("12")`.
    pub message: String,
}

/// An event, the wrapping it came in, and what was odd about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedEvent {
    /// The event.
    pub event: Event,
    /// The wrapping it was found in.
    pub shape: EventShape,
    /// Problems met while reading it; none means it read cleanly.
    pub problems: Vec<Problem>,
}

impl Event {
    /// The exception that was raised (the last of `exceptions`), if any.
    pub fn primary_exception(&self) -> Option<&Exception> {
        self.exceptions.last()
    }

    /// The frames to diagnose from, crashing frame FIRST (newest first).
    ///
    /// They come from [`Event::crash_stacktrace`]; empty if there is none.
    pub fn crash_frames(&self) -> Vec<&Frame> {
        self.crash_stacktrace()
            .map(|stacktrace| stacktrace.frames.iter().rev().collect())
            .unwrap_or_default()
    }

    /// The stack trace [`Event::crash_frames`] reads, in wire order: the
    /// primary exception's, else the first crashed thread's, else the first
    /// current thread's, else the legacy top-level one, else that of the only
    /// thread with a stack. Stack traces without frames are passed over.
    pub fn crash_stacktrace(&self) -> Option<&Stacktrace> {
        fn with_frames(stacktrace: Option<&Stacktrace>) -> Option<&Stacktrace> {
            stacktrace.filter(|stacktrace| !stacktrace.frames.is_empty())
        }
        let thread_stacktrace = |wanted: fn(&Thread) -> bool| {
            self.threads
                .iter()
                .filter(|thread| wanted(thread))
                .find_map(|thread| with_frames(thread.stacktrace.as_ref()))
        };
        let only_thread_stacktrace = || {
            let mut stacked = self
                .threads
                .iter()
                .filter_map(|thread| with_frames(thread.stacktrace.as_ref()));
            match (stacked.next(), stacked.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        };
        with_frames(self.primary_exception().and_then(|e| e.stacktrace.as_ref()))
            .or_else(|| thread_stacktrace(|thread| thread.crashed))
            .or_else(|| thread_stacktrace(|thread| thread.current))
            .or_else(|| with_frames(self.stacktrace.as_ref()))
            .or_else(only_thread_stacktrace)
    }

    /// Frames of the cause chain (every exception but the primary one), newest
    /// first: the nearest cause's crashing frame first, each frame tagged with
    /// its exception's index in `exceptions`.
    pub fn chained_frames(&self) -> Vec<(usize, &Frame)> {
        let n_causes = self.exceptions.len().saturating_sub(1);
        self.exceptions[..n_causes]
            .iter()
            .enumerate()
            .rev()
            .flat_map(|(exception_idx, exception)| {
                exception
                    .stacktrace
                    .iter()
                    .flat_map(|stacktrace| stacktrace.frames.iter().rev())
                    .map(move |frame| (exception_idx, frame))
            })
            .collect()
    }

    /// A one-line title in Sentry's style: `TypeError: message` for an
    /// exception (first line of its value), else the first line of the
    /// message, else the sender's own `title`, else `<unlabeled event>`.
    pub fn title(&self) -> String {
        if let Some(exception) = self.primary_exception() {
            let ty = exception.ty.as_deref().filter(|ty| !ty.is_empty());
            let value = exception.value.as_deref().and_then(first_line);
            match (ty, value) {
                (Some(ty), Some(value)) => return format!("{ty}: {value}"),
                (Some(ty), None) => return ty.to_owned(),
                (None, Some(value)) => return value.to_owned(),
                (None, None) => {}
            }
        }
        if let Some(message) = self.message.as_deref().and_then(first_line) {
            return message.to_owned();
        }
        if let Some(title) = self
            .other
            .get("title")
            .and_then(Value::as_str)
            .and_then(first_line)
        {
            return title.to_owned();
        }
        "<unlabeled event>".to_owned()
    }
}

/// The first line with text on it, trimmed; `None` for blank text.
fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|line| !line.is_empty())
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A compact, stable rendering of an event for snapshot tests.
#[cfg(test)]
fn debug_render(event: &Event, problems: &[Problem]) -> String {
    use std::fmt::Write;

    fn or_dash(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or("-")
    }
    fn in_app_string(frames: &[Frame]) -> String {
        let flag = |frame: &Frame| match frame.in_app {
            Some(true) => 'T',
            Some(false) => 'F',
            None => '-',
        };
        frames.iter().map(flag).collect()
    }
    fn frame_line(frame: &Frame) -> String {
        let path = frame.abs_path.as_ref().or(frame.filename.as_ref());
        let mut line = format!(
            "{} at {}:{}",
            frame.function.as_deref().unwrap_or("?"),
            path.map_or("?", String::as_str),
            frame.lineno.map_or("?".to_owned(), |n| n.to_string()),
        );
        if let Some(colno) = frame.colno {
            write!(line, ":{colno}").unwrap();
        }
        let in_app = frame.in_app.map_or("-".to_owned(), |b| b.to_string());
        write!(line, " in_app={in_app}").unwrap();
        line
    }

    let mut out = String::new();
    let timestamp = event
        .timestamp
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    writeln!(out, "title: {}", event.title()).unwrap();
    writeln!(
        out,
        "event_id: {}  timestamp: {}",
        or_dash(&event.event_id),
        timestamp.as_deref().unwrap_or("-")
    )
    .unwrap();
    writeln!(
        out,
        "platform: {}  level: {}  release: {}  environment: {}  issue: {}",
        or_dash(&event.platform),
        or_dash(&event.level),
        or_dash(&event.release),
        or_dash(&event.environment),
        or_dash(&event.upstream_issue_id),
    )
    .unwrap();
    if let Some(message) = &event.message {
        writeln!(out, "message: {message:?}").unwrap();
    }
    if let Some(fingerprint) = &event.fingerprint {
        writeln!(out, "fingerprint: {fingerprint:?}").unwrap();
    }
    if !event.tags.is_empty() {
        let tags: Vec<String> = event.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "tags: {}", tags.join(", ")).unwrap();
    }
    for (idx, exception) in event.exceptions.iter().enumerate() {
        let frames = exception
            .stacktrace
            .as_ref()
            .map_or(&[][..], |s| &s.frames[..]);
        writeln!(
            out,
            "exception[{idx}]: {} {:?} module={} mechanism={} frames={} in_app={}",
            or_dash(&exception.ty),
            exception.value.as_deref().unwrap_or("-"),
            or_dash(&exception.module),
            exception
                .mechanism
                .as_ref()
                .map_or("-".to_owned(), Value::to_string),
            frames.len(),
            in_app_string(frames),
        )
        .unwrap();
    }
    for (idx, thread) in event.threads.iter().enumerate() {
        let frames = thread
            .stacktrace
            .as_ref()
            .map_or(&[][..], |s| &s.frames[..]);
        writeln!(
            out,
            "thread[{idx}]: id={} crashed={} current={} frames={}",
            or_dash(&thread.id),
            thread.crashed,
            thread.current,
            frames.len()
        )
        .unwrap();
    }
    if let Some(stacktrace) = &event.stacktrace {
        writeln!(out, "stacktrace: frames={}", stacktrace.frames.len()).unwrap();
    }
    let crash_frames = event.crash_frames();
    writeln!(out, "crash frames ({}, newest first):", crash_frames.len()).unwrap();
    for frame in crash_frames.iter().take(3) {
        writeln!(out, "  {}", frame_line(frame)).unwrap();
    }
    if crash_frames.len() > 3 {
        writeln!(out, "  ... {} more", crash_frames.len() - 3).unwrap();
    }
    if !event.other.is_empty() {
        let keys: Vec<&str> = event.other.keys().map(String::as_str).collect();
        writeln!(out, "other: {}", keys.join(", ")).unwrap();
    }
    for problem in problems {
        writeln!(out, "problem: {problem}").unwrap();
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;

    fn check(input: Value, expect: Expect) {
        let (event, problems) = event_from_value(input);
        expect.assert_eq(&debug_render(&event, &problems));
    }

    fn frame(function: &str, lineno: u32) -> Value {
        let abs_path = format!("/app/{function}.py");
        json!({"function": function, "abs_path": abs_path, "lineno": lineno, "in_app": true})
    }

    /// A Python `raise B from A`: the SDK sends A then B; B is primary, its
    /// last frame crashes first, and A's frames come out as the chain.
    #[test]
    fn chained_exceptions() {
        let input = json!({
            "exception": {"values": [
                {"type": "KeyError", "value": "'id'", "stacktrace": {"frames": [frame("load", 10), frame("lookup", 20)]}},
                {"type": "ValueError", "value": "bad row\nmore detail", "stacktrace": {"frames": [frame("main", 1), frame("handle", 2)]}},
            ]}
        });
        let (event, problems) = event_from_value(input.clone());
        assert!(problems.is_empty());
        assert_eq!(
            event.primary_exception().unwrap().ty.as_deref(),
            Some("ValueError")
        );
        let crash: Vec<_> = event
            .crash_frames()
            .iter()
            .map(|f| f.function.clone().unwrap())
            .collect();
        assert_eq!(crash, ["handle", "main"]);
        let chained: Vec<_> = event
            .chained_frames()
            .iter()
            .map(|(idx, f)| (*idx, f.lineno.unwrap()))
            .collect();
        assert_eq!(chained, [(0, 20), (0, 10)]);
        check(
            input,
            expect![[r#"
                title: ValueError: bad row
                event_id: -  timestamp: -
                platform: -  level: -  release: -  environment: -  issue: -
                exception[0]: KeyError "'id'" module=- mechanism=- frames=2 in_app=TT
                exception[1]: ValueError "bad row\nmore detail" module=- mechanism=- frames=2 in_app=TT
                crash frames (2, newest first):
                  handle at /app/handle.py:2 in_app=true
                  main at /app/main.py:1 in_app=true
            "#]],
        );
    }

    /// Three exceptions: causes come out nearest first, tagged by index.
    #[test]
    fn chained_frames_walk_causes_nearest_first() {
        let (event, _) = event_from_value(json!({"exception": {"values": [
            {"type": "A", "stacktrace": {"frames": [frame("a1", 1), frame("a2", 2)]}},
            {"type": "B", "stacktrace": {"frames": [frame("b1", 3)]}},
            {"type": "C", "stacktrace": {"frames": [frame("c1", 4)]}},
        ]}}));
        let chained: Vec<_> = event
            .chained_frames()
            .iter()
            .map(|(idx, f)| (*idx, f.lineno.unwrap()))
            .collect();
        assert_eq!(chained, [(1, 3), (0, 2), (0, 1)]);
    }

    /// A single exception has no chain.
    #[test]
    fn chained_frames_empty_without_causes() {
        let (event, _) = event_from_value(json!({"exception": {"values": [{"type": "A"}]}}));
        assert!(event.chained_frames().is_empty());
        assert!(Event::default().chained_frames().is_empty());
    }

    /// `capture_message` with `attach_stacktrace`: the stack is on the current
    /// thread, and the crashed one wins over it when both exist.
    #[test]
    fn threads_only_event() {
        check(
            json!({
                "message": "disk almost full",
                "threads": {"values": [
                    {"id": 140, "current": true, "stacktrace": {"frames": [frame("poll", 5), frame("check", 6)]}},
                    {"id": "main", "crashed": false, "stacktrace": {"frames": [frame("idle", 9)]}},
                ]}
            }),
            expect![[r#"
                title: disk almost full
                event_id: -  timestamp: -
                platform: -  level: -  release: -  environment: -  issue: -
                message: "disk almost full"
                thread[0]: id=140 crashed=false current=true frames=2
                thread[1]: id=main crashed=false current=false frames=1
                crash frames (2, newest first):
                  check at /app/check.py:6 in_app=true
                  poll at /app/poll.py:5 in_app=true
            "#]],
        );
        let (event, _) = event_from_value(json!({"threads": {"values": [
            {"current": true, "stacktrace": {"frames": [frame("current", 1)]}},
            {"crashed": true, "stacktrace": {"frames": [frame("crashed", 2)]}},
        ]}}));
        assert_eq!(event.crash_frames()[0].function.as_deref(), Some("crashed"));
    }

    /// One thread with a stack, neither crashed nor current: it is the only
    /// stack there is, so it is used.
    #[test]
    fn crash_frames_fall_back_to_the_only_stacked_thread() {
        let (event, _) = event_from_value(json!({"threads": [
            {"id": 1},
            {"id": 2, "stacktrace": {"frames": [frame("only", 7)]}},
        ]}));
        assert_eq!(event.crash_frames()[0].lineno, Some(7));

        let (event, _) = event_from_value(json!({"threads": [
            {"id": 1, "stacktrace": {"frames": [frame("one", 1)]}},
            {"id": 2, "stacktrace": {"frames": [frame("two", 2)]}},
        ]}));
        assert!(event.crash_frames().is_empty());
    }

    /// The primary exception has no frames: fall through to the threads.
    #[test]
    fn crash_frames_skip_an_exception_without_frames() {
        let (event, _) = event_from_value(json!({
            "exception": {"values": [{"type": "E", "stacktrace": {"frames": []}}]},
            "threads": {"values": [{"crashed": true, "stacktrace": {"frames": [frame("t", 3)]}}]},
        }));
        assert_eq!(event.crash_frames()[0].lineno, Some(3));
    }

    /// The legacy top-level `stacktrace` is used when nothing else has frames.
    #[test]
    fn crash_frames_from_legacy_stacktrace() {
        let (event, _) = event_from_value(json!({
            "message": "m",
            "stacktrace": {"frames": [frame("outer", 1), frame("inner", 2)]},
        }));
        let lines: Vec<_> = event
            .crash_frames()
            .iter()
            .map(|f| f.lineno.unwrap())
            .collect();
        assert_eq!(lines, [2, 1]);
    }

    /// Titles in Sentry's style, and their fallbacks.
    #[test]
    fn titles() {
        let title = |value: Value| event_from_value(value).0.title();
        assert_eq!(
            title(json!({"exception": [{"type": "E", "value": "v"}]})),
            "E: v"
        );
        assert_eq!(
            title(json!({"exception": [{"type": "E", "value": ""}]})),
            "E"
        );
        assert_eq!(
            title(json!({"exception": [{"value": "\n  only value\nrest"}]})),
            "only value"
        );
        assert_eq!(title(json!({"exception": [{}], "message": "m"})), "m");
        assert_eq!(
            title(json!({"message": "", "title": "From Sentry"})),
            "From Sentry"
        );
        assert_eq!(title(json!({})), "<unlabeled event>");
    }

    /// Problems render as `path: message`, or just the message at the root.
    #[test]
    fn problem_display() {
        let problem = Problem {
            path: "a.b".into(),
            message: "oops".into(),
        };
        assert_eq!(problem.to_string(), "a.b: oops");
        let problem = Problem {
            path: String::new(),
            message: "oops".into(),
        };
        assert_eq!(problem.to_string(), "oops");
    }

    /// The serde form round-trips, for storing events.
    #[test]
    fn serde_round_trip() {
        let (event, _) = event_from_value(json!({
            "event_id": "e", "timestamp": 1.5, "tags": {"a": "b"}, "custom": [1],
            "exception": [{"type": "E", "mechanism": {"handled": false},
                "stacktrace": {"frames": [{"lineno": 3, "vars": {"x": 1}}]}}],
        }));
        let text = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
        assert!(text.contains(r#""type":"E""#), "{text}");
    }
}
