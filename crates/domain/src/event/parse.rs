//! Reading one Sentry event object into an [`Event`], never failing.
//!
//! Events come from every SDK version and from Sentry re-serialising its stored
//! copy (with `null` for each absent field), so this reader is tolerant the way
//! Relay is: explicit `null` is just absent, a field of the wrong type becomes a
//! [`Problem`] plus a `None`/empty value, and keys it does not model are kept in
//! `other` (on the event and on frames). It accepts the legacy spellings Relay
//! does: `exception`/`threads` as `{values: [...]}`, a bare list or one object;
//! the `sentry.interfaces.*` aliases; tags as an object or a list of pairs.
//!
//! Problem paths are relative to the event object and name the index as sent,
//! e.g. `exception.values[0].stacktrace.frames[3].lineno`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::{Event, Exception, Frame, Problem, Stacktrace, Thread};

/// Reads the SDK event object itself (not a webhook around it) into an
/// [`Event`], with every problem met on the way.
///
/// `upstream_issue_id` is filled from the object's own `issue_id`, else the
/// issue id in its `issue_url` or `web_url` (webhooks add these to the event).
pub fn event_from_value(value: Value) -> (Event, Vec<Problem>) {
    let mut reader = Reader::default();
    let event = match value {
        Value::Object(map) => reader.event(map),
        other => {
            reader.problem(
                "",
                format!("expected an event object, found {}", describe(&other)),
            );
            Event::default()
        }
    };
    (event, reader.problems)
}

/// The issue id in a Sentry URL: the all-digits path segment after `issues`,
/// as in `.../organizations/<org>/issues/<id>/events/<event_id>/` or
/// `.../api/0/issues/<id>/`.
pub(super) fn issue_id_from_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let mut segments = path.split('/');
    segments.find(|segment| *segment == "issues")?;
    let id = segments.next()?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

/// An issue id as Sentry sends it: a string, or an integer in older payloads.
pub(super) fn issue_id_from_value(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) if id.is_u64() => Some(id.to_string()),
        _ => None,
    }
}

/// What kind of JSON value this is, with an article: for error messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// [`kind`] plus a short excerpt of scalar values, for problem messages.
fn describe(value: &Value) -> String {
    const EXCERPT_CHARS: usize = 40;
    match value {
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > EXCERPT_CHARS => {
            let excerpt: String = s.chars().take(EXCERPT_CHARS).collect();
            format!("a string ({excerpt:?}...)")
        }
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(items) if items.len() == 1 => "an array of 1 item".to_owned(),
        Value::Array(items) => format!("an array of {} items", items.len()),
        other => kind(other).to_owned(),
    }
}

/// `parent.key` (`parent[0]` for an index), or just `key` at the root.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() || key.starts_with('[') {
        format!("{parent}{key}")
    } else {
        format!("{parent}.{key}")
    }
}

/// Removes `key`, else its legacy `alias`; returns the value and the name it
/// was found under, for problem paths.
fn take_aliased(
    map: &mut Map<String, Value>,
    key: &'static str,
    alias: &'static str,
) -> (Option<Value>, &'static str) {
    match map.shift_remove(key) {
        Some(value) => (Some(value), key),
        None => (map.shift_remove(alias), alias),
    }
}

/// Collects problems while reading; the typed readers below never fail.
#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

impl Reader {
    fn problem(&mut self, path: &str, message: String) {
        self.problems.push(Problem {
            path: path.to_owned(),
            message,
        });
    }

    fn wrong_type(&mut self, parent: &str, key: &str, expected: &str, found: &Value) {
        self.problem(
            &join(parent, key),
            format!("expected {expected}, found {}", describe(found)),
        );
    }

    fn event(&mut self, mut map: Map<String, Value>) -> Event {
        let event_id = self.string(map.shift_remove("event_id"), "", "event_id");
        let timestamp = self.event_timestamp(&mut map);
        let platform = self.string(map.shift_remove("platform"), "", "platform");
        let level = self.level(map.shift_remove("level"));
        let release = self.lenient_string(map.shift_remove("release"), "", "release");
        let environment = self.string(map.shift_remove("environment"), "", "environment");
        let (logentry, logentry_key) =
            take_aliased(&mut map, "logentry", "sentry.interfaces.Message");
        let logentry = self.message(logentry, logentry_key);
        let message = self.message(map.shift_remove("message"), "message");
        let fingerprint = self.fingerprint(map.shift_remove("fingerprint"));
        let (exception, exception_key) =
            take_aliased(&mut map, "exception", "sentry.interfaces.Exception");
        let exceptions = self
            .values(exception, exception_key)
            .into_iter()
            .filter_map(|(path, value)| self.exception(value, &path))
            .collect();
        let threads = self
            .values(map.shift_remove("threads"), "threads")
            .into_iter()
            .filter_map(|(path, value)| self.thread(value, &path))
            .collect();
        let (stacktrace, stacktrace_key) =
            take_aliased(&mut map, "stacktrace", "sentry.interfaces.Stacktrace");
        let stacktrace = self.stacktrace(stacktrace, stacktrace_key);
        let tags = self.tags(map.shift_remove("tags"));

        let environment = environment.or_else(|| {
            tags.iter()
                .find(|(key, _)| key == "environment")
                .map(|(_, value)| value.clone())
        });
        let upstream_issue_id = map
            .get("issue_id")
            .and_then(issue_id_from_value)
            .or_else(|| {
                ["issue_url", "web_url"]
                    .iter()
                    .find_map(|key| issue_id_from_url(map.get(*key)?.as_str()?))
            });

        Event {
            event_id,
            timestamp,
            platform,
            level,
            release,
            environment,
            message: logentry.or(message),
            fingerprint,
            exceptions,
            threads,
            stacktrace,
            tags,
            upstream_issue_id,
            other: map,
        }
    }

    /// `timestamp`, else webhooks' `datetime`, else `received`; the fallbacks
    /// are left in `other` since they mean something of their own.
    fn event_timestamp(&mut self, map: &mut Map<String, Value>) -> Option<DateTime<Utc>> {
        if let Some(timestamp) = self.timestamp(map.shift_remove("timestamp"), "timestamp") {
            return Some(timestamp);
        }
        for fallback in ["datetime", "received"] {
            if let Some(timestamp) = self.timestamp(map.get(fallback).cloned(), fallback) {
                return Some(timestamp);
            }
        }
        None
    }

    fn timestamp(&mut self, value: Option<Value>, key: &str) -> Option<DateTime<Utc>> {
        let parsed = match value? {
            Value::Null => return None,
            Value::Number(seconds) => seconds.as_f64().and_then(from_epoch_seconds),
            Value::String(text) => from_rfc3339(&text),
            other => {
                self.wrong_type("", key, "epoch seconds or an rfc 3339 string", &other);
                return None;
            }
        };
        if parsed.is_none() {
            self.problem(
                key,
                "not a valid timestamp: expected epoch seconds or an rfc 3339 string".into(),
            );
        }
        parsed
    }

    /// A string level, or a legacy numeric one (Python `logging` levels).
    fn level(&mut self, value: Option<Value>) -> Option<String> {
        let name = match value? {
            Value::Null => return None,
            Value::String(level) => return Some(level),
            Value::Number(n) => match n.as_u64() {
                Some(10) => "debug",
                Some(20) => "info",
                Some(30) => "warning",
                Some(40) => "error",
                Some(50) => "fatal",
                _ => {
                    self.problem("level", format!("unknown numeric level {n}"));
                    return None;
                }
            },
            other => {
                self.wrong_type("", "level", "a string", &other);
                return None;
            }
        };
        Some(name.to_owned())
    }

    /// A message as a string or `{formatted, message, params}`; blank is `None`.
    fn message(&mut self, value: Option<Value>, key: &str) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => Some(text).filter(|text| !text.is_empty()),
            Value::Object(mut object) => {
                let formatted = self.string(object.shift_remove("formatted"), key, "formatted");
                let template = self.string(object.shift_remove("message"), key, "message");
                formatted
                    .filter(|text| !text.is_empty())
                    .or(template)
                    .filter(|text| !text.is_empty())
            }
            other => {
                self.wrong_type("", key, "a string or a message object", &other);
                None
            }
        }
    }

    fn fingerprint(&mut self, value: Option<Value>) -> Option<Vec<String>> {
        match value? {
            Value::Null => None,
            Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for (idx, item) in items.into_iter().enumerate() {
                    if let Some(part) =
                        self.lenient_string(Some(item), "fingerprint", &format!("[{idx}]"))
                    {
                        parts.push(part);
                    }
                }
                Some(parts)
            }
            other => {
                self.wrong_type("", "fingerprint", "an array of strings", &other);
                None
            }
        }
    }

    /// Tags as `{k: v}`, `[[k, v], ...]` or `[{key, value}, ...]`. Numbers and
    /// booleans become strings (as Relay does); a `null` value is no tag.
    fn tags(&mut self, value: Option<Value>) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Object(object)) => {
                for (key, value) in object {
                    if let Some(value) = self.lenient_string(Some(value), "tags", &key) {
                        tags.push((key, value));
                    }
                }
            }
            Some(Value::Array(items)) => {
                for (idx, item) in items.into_iter().enumerate() {
                    let path = format!("tags[{idx}]");
                    let (key, value) = match item {
                        Value::Array(pair) if pair.len() == 2 => {
                            let mut pair = pair.into_iter();
                            (pair.next(), pair.next())
                        }
                        Value::Object(mut entry) if entry.contains_key("key") => {
                            (entry.shift_remove("key"), entry.shift_remove("value"))
                        }
                        Value::Null => continue,
                        other => {
                            let message =
                                format!("expected a [key, value] pair, found {}", describe(&other));
                            self.problem(&path, message);
                            continue;
                        }
                    };
                    let key = self.lenient_string(key, &path, "key");
                    let value = self.lenient_string(value, &path, "value");
                    if let (Some(key), Some(value)) = (key, value) {
                        tags.push((key, value));
                    }
                }
            }
            Some(other) => self.wrong_type("", "tags", "an object or a list of pairs", &other),
        }
        tags
    }

    /// The items of a `{values: [...]}` container, also accepting a bare list
    /// or a single item; each with its path.
    fn values(&mut self, value: Option<Value>, key: &str) -> Vec<(String, Value)> {
        let indexed = |prefix: String, items: Vec<Value>| {
            items
                .into_iter()
                .enumerate()
                .map(|(idx, item)| (format!("{prefix}[{idx}]"), item))
                .collect()
        };
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => indexed(key.to_owned(), items),
            Some(Value::Object(mut object)) => match object.shift_remove("values") {
                None if object.is_empty() => Vec::new(),
                None => vec![(key.to_owned(), Value::Object(object))],
                Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => indexed(join(key, "values"), items),
                Some(other) => {
                    self.wrong_type(key, "values", "an array", &other);
                    Vec::new()
                }
            },
            Some(other) => {
                self.wrong_type("", key, "an object with values", &other);
                Vec::new()
            }
        }
    }

    fn exception(&mut self, value: Value, path: &str) -> Option<Exception> {
        let mut map = self.object(value, path, "an exception")?;
        Some(Exception {
            ty: self.string(map.shift_remove("type"), path, "type"),
            value: self.exception_value(map.shift_remove("value"), path),
            module: self.string(map.shift_remove("module"), path, "module"),
            mechanism: map
                .shift_remove("mechanism")
                .filter(|mechanism| !mechanism.is_null()),
            stacktrace: self.stacktrace(map.shift_remove("stacktrace"), &join(path, "stacktrace")),
        })
    }

    /// Exception values are free text; structured ones keep their JSON text.
    fn exception_value(&mut self, value: Option<Value>, path: &str) -> Option<String> {
        match value? {
            value @ (Value::Array(_) | Value::Object(_)) => {
                let message = format!(
                    "expected a string, found {}; kept its json text",
                    kind(&value)
                );
                self.problem(&join(path, "value"), message);
                Some(value.to_string())
            }
            scalar => self.lenient_string(Some(scalar), path, "value"),
        }
    }

    fn thread(&mut self, value: Value, path: &str) -> Option<Thread> {
        let mut map = self.object(value, path, "a thread")?;
        Some(Thread {
            id: self.lenient_string(map.shift_remove("id"), path, "id"),
            crashed: self
                .bool(map.shift_remove("crashed"), path, "crashed")
                .unwrap_or(false),
            current: self
                .bool(map.shift_remove("current"), path, "current")
                .unwrap_or(false),
            stacktrace: self.stacktrace(map.shift_remove("stacktrace"), &join(path, "stacktrace")),
        })
    }

    /// `path` is the stack trace's own path here.
    fn stacktrace(&mut self, value: Option<Value>, path: &str) -> Option<Stacktrace> {
        let mut map = match value? {
            Value::Null => return None,
            Value::Object(map) => map,
            other => {
                self.problem(
                    path,
                    format!("expected a stack trace object, found {}", describe(&other)),
                );
                return None;
            }
        };
        let frames = match map.shift_remove("frames") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .filter_map(|(idx, item)| self.frame(item, &format!("{path}.frames[{idx}]")))
                .collect(),
            Some(other) => {
                self.wrong_type(path, "frames", "an array", &other);
                Vec::new()
            }
        };
        Some(Stacktrace { frames })
    }

    fn frame(&mut self, value: Value, path: &str) -> Option<Frame> {
        let mut map = self.object(value, path, "a frame")?;
        Some(Frame {
            filename: self.string(map.shift_remove("filename"), path, "filename"),
            abs_path: self.string(map.shift_remove("abs_path"), path, "abs_path"),
            module: self.string(map.shift_remove("module"), path, "module"),
            function: self.string(map.shift_remove("function"), path, "function"),
            lineno: self.u32(map.shift_remove("lineno"), path, "lineno"),
            colno: self.u32(map.shift_remove("colno"), path, "colno"),
            in_app: self.bool(map.shift_remove("in_app"), path, "in_app"),
            context_line: self.string(map.shift_remove("context_line"), path, "context_line"),
            pre_context: self.source_lines(map.shift_remove("pre_context"), path, "pre_context"),
            post_context: self.source_lines(map.shift_remove("post_context"), path, "post_context"),
            package: self.string(map.shift_remove("package"), path, "package"),
            platform: self.string(map.shift_remove("platform"), path, "platform"),
            other: map,
        })
    }

    /// An item of a list that must be an object; anything else is skipped
    /// with a problem (`null` items silently).
    fn object(&mut self, value: Value, path: &str, what: &str) -> Option<Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                self.problem(
                    path,
                    format!(
                        "expected {what} object, found {}; skipped",
                        describe(&other)
                    ),
                );
                None
            }
        }
    }

    fn string(&mut self, value: Option<Value>, parent: &str, key: &str) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => Some(text),
            other => {
                self.wrong_type(parent, key, "a string", &other);
                None
            }
        }
    }

    /// Like [`Reader::string`], but numbers and booleans are turned into their
    /// text, as Relay does for releases, tags and ids.
    fn lenient_string(&mut self, value: Option<Value>, parent: &str, key: &str) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => Some(text),
            scalar @ (Value::Number(_) | Value::Bool(_)) => Some(scalar.to_string()),
            other => {
                self.wrong_type(parent, key, "a string", &other);
                None
            }
        }
    }

    fn u32(&mut self, value: Option<Value>, parent: &str, key: &str) -> Option<u32> {
        let value = value.filter(|value| !value.is_null())?;
        let number = value.as_u64().and_then(|n| u32::try_from(n).ok());
        if number.is_none() {
            self.wrong_type(parent, key, "a non-negative 32-bit integer", &value);
        }
        number
    }

    fn bool(&mut self, value: Option<Value>, parent: &str, key: &str) -> Option<bool> {
        match value? {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            other => {
                self.wrong_type(parent, key, "a boolean", &other);
                None
            }
        }
    }

    /// Source context lines. A non-string line becomes `""` so the others keep
    /// their distance from `lineno`.
    fn source_lines(&mut self, value: Option<Value>, parent: &str, key: &str) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let path = join(parent, key);
                let mut lines = Vec::with_capacity(items.len());
                for (idx, item) in items.into_iter().enumerate() {
                    lines.push(match item {
                        Value::String(line) => line,
                        Value::Null => String::new(),
                        other => {
                            self.wrong_type(&path, &format!("[{idx}]"), "a string", &other);
                            String::new()
                        }
                    });
                }
                lines
            }
            Some(other) => {
                self.wrong_type(parent, key, "an array of strings", &other);
                Vec::new()
            }
        }
    }
}

/// Float epoch seconds at microsecond precision (what Sentry stores; finer
/// digits of an f64 near 1.6e9 are noise).
fn from_epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    let micros = (seconds * 1e6).round();
    if !micros.is_finite() || micros.abs() > 9.0e18 {
        return None;
    }
    DateTime::from_timestamp_micros(micros as i64)
}

/// RFC 3339, or the zone-less ISO form older SDKs send, read as UTC.
fn from_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(timestamp) = DateTime::parse_from_rfc3339(text) {
        return Some(timestamp.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;
    use crate::event::debug_render;

    fn check(input: Value, expect: Expect) {
        let (event, problems) = event_from_value(input);
        expect.assert_eq(&debug_render(&event, &problems));
    }

    fn problem_strings(input: Value) -> Vec<String> {
        event_from_value(input)
            .1
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The message forms: a string, an object, `logentry`, and `logentry`
    /// winning over `message` when both are sent.
    #[test]
    fn message_forms() {
        let message = |input: Value| event_from_value(input).0.message;
        assert_eq!(message(json!({"message": "plain"})), Some("plain".into()));
        assert_eq!(
            message(json!({"message": {"formatted": "x=1", "message": "x=%s", "params": [1]}})),
            Some("x=1".into())
        );
        assert_eq!(
            message(json!({"message": {"message": "x=%s", "params": [1]}})),
            Some("x=%s".into())
        );
        assert_eq!(
            message(json!({"logentry": {"formatted": "from logentry"}})),
            Some("from logentry".into())
        );
        assert_eq!(
            message(json!({"logentry": {"message": "log"}, "message": "plain"})),
            Some("log".into())
        );
        assert_eq!(
            message(json!({"sentry.interfaces.Message": {"message": "legacy"}})),
            Some("legacy".into())
        );
        assert_eq!(message(json!({"message": ""})), None);
        assert_eq!(message(json!({"message": null})), None);
        assert_eq!(
            message(json!({"logentry": {"formatted": ""}, "message": "m"})),
            Some("m".into())
        );
    }

    /// Tags as an object (SDKs), as `[k, v]` pairs (webhooks) and as
    /// `{key, value}` entries (the web API); scalars are stringified, `null`
    /// values dropped, the order kept; `environment` falls back to the tag.
    #[test]
    fn tag_forms() {
        let tags = |input: Value| event_from_value(input).0.tags;
        let expected = vec![
            ("b".to_owned(), "1".to_owned()),
            ("a".to_owned(), "true".to_owned()),
        ];
        assert_eq!(
            tags(json!({"tags": {"b": 1, "a": true, "n": null}})),
            expected
        );
        assert_eq!(
            tags(json!({"tags": [["b", 1], ["a", true], ["n", null], null]})),
            expected
        );
        assert_eq!(
            tags(json!({"tags": [{"key": "b", "value": "1"}, {"key": "a", "value": "true"}]})),
            expected
        );

        let (event, problems) = event_from_value(json!({"tags": [["environment", "staging"]]}));
        assert_eq!(event.environment.as_deref(), Some("staging"));
        assert!(problems.is_empty());
        let (event, _) =
            event_from_value(json!({"environment": "prod", "tags": {"environment": "staging"}}));
        assert_eq!(event.environment.as_deref(), Some("prod"));
    }

    /// Broken tags are problems, and the good ones are still read.
    #[test]
    fn broken_tags() {
        let (event, problems) = event_from_value(
            json!({"tags": [["ok", "yes"], "k:v", ["a", "b", "c"], [{"x": 1}, "v"]]}),
        );
        assert_eq!(event.tags, vec![("ok".to_owned(), "yes".to_owned())]);
        expect![[r#"
            [
                Problem {
                    path: "tags[1]",
                    message: "expected a [key, value] pair, found a string (\"k:v\")",
                },
                Problem {
                    path: "tags[2]",
                    message: "expected a [key, value] pair, found an array of 3 items",
                },
                Problem {
                    path: "tags[3].key",
                    message: "expected a string, found an object",
                },
            ]
        "#]]
        .assert_debug_eq(&problems);
        assert_eq!(
            problem_strings(json!({"tags": "a=b"})),
            ["tags: expected an object or a list of pairs, found a string (\"a=b\")"]
        );
    }

    /// Float epoch seconds and RFC 3339 strings are the same instant; the
    /// webhook `datetime` and `received` are fallbacks.
    #[test]
    fn timestamps() {
        let timestamp = |input: Value| {
            event_from_value(input)
                .0
                .timestamp
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        };
        let expected = Some("2019-08-19T20:58:37.391000Z".to_owned());
        assert_eq!(timestamp(json!({"timestamp": 1566248317.391})), expected);
        assert_eq!(
            timestamp(json!({"timestamp": "2019-08-19T20:58:37.391000Z"})),
            expected
        );
        assert_eq!(
            timestamp(json!({"timestamp": "2019-08-19T22:58:37.391+02:00"})),
            expected
        );
        assert_eq!(
            timestamp(json!({"timestamp": "2019-08-19T20:58:37.391"})),
            expected
        );
        assert_eq!(
            timestamp(json!({"timestamp": null, "datetime": "2019-08-19T20:58:37.391000Z"})),
            expected
        );
        assert_eq!(timestamp(json!({"received": 1566248317.391})), expected);
        assert_eq!(
            timestamp(json!({"timestamp": 1566248317})),
            Some("2019-08-19T20:58:37.000000Z".into())
        );

        let (event, problems) =
            event_from_value(json!({"timestamp": "yesterday", "received": 1566248317.391}));
        assert_eq!(event.timestamp.map(|t| t.timestamp()), Some(1566248317));
        assert_eq!(
            problems,
            [Problem {
                path: "timestamp".into(),
                message: "not a valid timestamp: expected epoch seconds or an rfc 3339 string"
                    .into()
            }]
        );
        assert_eq!(
            problem_strings(json!({"timestamp": [1]})),
            ["timestamp: expected epoch seconds or an rfc 3339 string, found an array of 1 item"]
        );
        assert_eq!(problem_strings(json!({"timestamp": 1e300})).len(), 1);
    }

    /// Unknown keys are kept verbatim, on the event and on frames, nulls too;
    /// fallback sources stay in `other` too.
    #[test]
    fn unknown_keys_kept() {
        let (event, problems) = event_from_value(json!({
            "server_name": "web-1",
            "contexts": {"runtime": {"name": "CPython"}},
            "dist": null,
            "datetime": "2019-08-19T20:58:37Z",
            "exception": {"values": [{"stacktrace": {"frames": [
                {"lineno": 1, "vars": {"x": "1"}, "data": {"orig_in_app": 1}, "symbol": null}
            ]}}]},
        }));
        assert!(problems.is_empty());
        expect![[r#"{"server_name":"web-1","contexts":{"runtime":{"name":"CPython"}},"dist":null,"datetime":"2019-08-19T20:58:37Z"}"#]]
            .assert_eq(&Value::Object(event.other).to_string());
        let frame = &event.exceptions[0].stacktrace.as_ref().unwrap().frames[0];
        expect![[r#"{"vars":{"x":"1"},"data":{"orig_in_app":1},"symbol":null}"#]]
            .assert_eq(&Value::Object(frame.other.clone()).to_string());
    }

    /// Wrong-typed fields become problems and `None`/empty values, never
    /// errors; the rest of the event is still read.
    #[test]
    fn wrong_types_become_problems() {
        check(
            json!({
                "event_id": 42,
                "level": ["error"],
                "platform": "python",
                "release": 7,
                "fingerprint": "custom",
                "exception": {"values": [
                    "not an exception",
                    {"type": "E", "value": {"code": 1}, "module": 3, "stacktrace": {"frames": [
                        {"function": "f", "lineno": "12", "colno": -1, "in_app": null, "pre_context": ["a", 1, null]},
                        7,
                        {"function": "g", "lineno": 12.5, "in_app": "yes", "post_context": "x", "filename": false},
                    ]}},
                ]},
                "threads": {"values": [{"id": [1], "crashed": 1, "stacktrace": {"frames": {"0": {}}}}]},
                "stacktrace": "frames",
            }),
            expect![[r#"
                title: E: {"code":1}
                event_id: -  timestamp: -
                platform: python  level: -  release: 7  environment: -  issue: -
                exception[0]: E "{\"code\":1}" module=- mechanism=- frames=2 in_app=--
                thread[0]: id=- crashed=false current=false frames=0
                crash frames (2, newest first):
                  g at ?:? in_app=-
                  f at ?:? in_app=-
                problem: event_id: expected a string, found a number (42)
                problem: level: expected a string, found an array of 1 item
                problem: fingerprint: expected an array of strings, found a string ("custom")
                problem: exception.values[0]: expected an exception object, found a string ("not an exception"); skipped
                problem: exception.values[1].value: expected a string, found an object; kept its json text
                problem: exception.values[1].module: expected a string, found a number (3)
                problem: exception.values[1].stacktrace.frames[0].lineno: expected a non-negative 32-bit integer, found a string ("12")
                problem: exception.values[1].stacktrace.frames[0].colno: expected a non-negative 32-bit integer, found a number (-1)
                problem: exception.values[1].stacktrace.frames[0].pre_context[1]: expected a string, found a number (1)
                problem: exception.values[1].stacktrace.frames[1]: expected a frame object, found a number (7); skipped
                problem: exception.values[1].stacktrace.frames[2].filename: expected a string, found a boolean (false)
                problem: exception.values[1].stacktrace.frames[2].lineno: expected a non-negative 32-bit integer, found a number (12.5)
                problem: exception.values[1].stacktrace.frames[2].in_app: expected a boolean, found a string ("yes")
                problem: exception.values[1].stacktrace.frames[2].post_context: expected an array of strings, found a string ("x")
                problem: threads.values[0].id: expected a string, found an array of 1 item
                problem: threads.values[0].crashed: expected a boolean, found a number (1)
                problem: threads.values[0].stacktrace.frames: expected an array, found an object
                problem: stacktrace: expected a stack trace object, found a string ("frames")
            "#]],
        );
    }

    /// A line number past u32 is a problem, not a wrap-around.
    #[test]
    fn lineno_out_of_range() {
        assert_eq!(
            problem_strings(json!({"stacktrace": {"frames": [{"lineno": 4294967296u64}]}})),
            [
                "stacktrace.frames[0].lineno: expected a non-negative 32-bit integer, found a number (4294967296)"
            ]
        );
    }

    /// Context lines keep their positions when one is not a string.
    #[test]
    fn context_lines_keep_positions() {
        let (event, _) = event_from_value(
            json!({"stacktrace": {"frames": [{"pre_context": ["a", null, 3, "d"]}]}}),
        );
        assert_eq!(
            event.stacktrace.unwrap().frames[0].pre_context,
            ["a", "", "", "d"]
        );
    }

    /// The legacy spellings Relay accepts: a bare exception list, one
    /// exception object, `sentry.interfaces.*` aliases, numeric levels.
    #[test]
    fn legacy_spellings() {
        let (event, problems) = event_from_value(json!({
            "sentry.interfaces.Exception": {"type": "E", "value": "single"},
            "sentry.interfaces.Stacktrace": {"frames": [{"lineno": 1}]},
            "threads": [{"id": 1, "current": true}],
            "level": 40,
        }));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(event.exceptions.len(), 1);
        assert_eq!(event.title(), "E: single");
        assert_eq!(event.stacktrace.unwrap().frames[0].lineno, Some(1));
        assert_eq!(event.threads[0].id.as_deref(), Some("1"));
        assert_eq!(event.level.as_deref(), Some("error"));
        assert_eq!(
            problem_strings(json!({"level": 45})),
            ["level: unknown numeric level 45"]
        );
        assert_eq!(
            problem_strings(json!({"exception": {"values": {"0": {}}}})),
            ["exception.values: expected an array, found an object"]
        );
        assert!(
            event_from_value(json!({"exception": {}}))
                .0
                .exceptions
                .is_empty()
        );
    }

    /// Not an object at all: an empty event and one problem at the root.
    #[test]
    fn not_an_object() {
        let (event, problems) = event_from_value(json!([1, 2]));
        assert_eq!(event, Event::default());
        assert_eq!(
            problems[0].to_string(),
            "expected an event object, found an array of 2 items"
        );
    }

    /// Long strings are quoted only in part in problem messages.
    #[test]
    fn long_values_are_excerpted_in_problems() {
        let (_, problems) = event_from_value(json!({"fingerprint": "y".repeat(100)}));
        expect![[r#"expected an array of strings, found a string ("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"...)"#]]
            .assert_eq(&problems[0].message);
    }

    /// The issue id comes from `issue_id`, else from the URLs.
    #[test]
    fn upstream_issue_id_from_the_event() {
        let issue = |input: Value| event_from_value(input).0.upstream_issue_id;
        assert_eq!(issue(json!({"issue_id": "12"})), Some("12".into()));
        assert_eq!(issue(json!({"issue_id": 12})), Some("12".into()));
        assert_eq!(
            issue(json!({"issue_url": "https://sentry.io/api/0/issues/34/"})),
            Some("34".into())
        );
        assert_eq!(
            issue(
                json!({"web_url": "https://sentry.io/organizations/o/issues/56/events/abc/?x=1"})
            ),
            Some("56".into())
        );
        assert_eq!(
            issue(json!({"web_url": "https://sentry.io/organizations/o/issues/?query=1"})),
            None
        );
        assert_eq!(
            issue_id_from_url("https://sentry.io/organizations/o/issues/78?referrer=x"),
            Some("78".into())
        );
        assert_eq!(
            issue_id_from_url("https://sentry.io/issues/FRONT-END-9/"),
            None
        );
    }
}
