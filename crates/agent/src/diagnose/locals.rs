//! What a frame's SDK sent besides its position: the source line and the
//! local variables, kept for the report and for replay tests.
//!
//! Both are attacker-controlled text (anyone holding the DSN's public key
//! can send them), so they are capped here, once, before they reach a
//! report, a prompt or a test file; the diagnosis's redaction pass then
//! blanks secrets in them like in every other string. They are data
//! everywhere downstream: shown, or decoded as JSON by a replay test, never
//! executed or spliced into code.

use domain::event::Frame;
use serde_json::{Map, Value};

/// Most variables kept per frame (sentry-sdk sends at most 10).
pub const MAX_VARS: usize = 32;
/// Most bytes of one variable's JSON; a larger value is replaced by
/// [`TOO_LARGE`].
pub const MAX_VALUE_BYTES: usize = 8 << 10;
/// Most bytes of a frame's variables altogether.
pub const MAX_FRAME_BYTES: usize = 32 << 10;
/// Deepest nesting kept in one value.
pub const MAX_DEPTH: usize = 8;
/// Most characters of the source line kept.
pub const MAX_CONTEXT_CHARS: usize = 400;
/// What replaces a value past the caps: a string that reads back as no
/// literal, so a replay test never rebuilds a cut value as if it were whole.
pub const TOO_LARGE: &str = "<suture: value too large>";

/// The frame's `vars`, capped; `None` when it sent none.
pub fn vars(frame: &Frame) -> Option<Map<String, Value>> {
    let Some(Value::Object(vars)) = frame.other.get("vars") else {
        return None;
    };
    let mut kept = Map::new();
    let mut total = 0usize;
    for (name, value) in vars.iter().take(MAX_VARS) {
        let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
        let value = if size > MAX_VALUE_BYTES || depth(value) > MAX_DEPTH {
            Value::String(TOO_LARGE.to_string())
        } else {
            value.clone()
        };
        total += name.len() + size.min(MAX_VALUE_BYTES);
        if total > MAX_FRAME_BYTES {
            break;
        }
        kept.insert(truncate(name, 200), value);
    }
    Some(kept)
}

/// The frame's `context_line`, capped.
pub fn context_line(frame: &Frame) -> Option<String> {
    frame
        .context_line
        .as_deref()
        .map(|line| truncate(line.trim_end(), MAX_CONTEXT_CHARS))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn depth(value: &Value) -> usize {
    // Iterative: a hostile value must not overflow the stack here.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        deepest = deepest.max(level);
        if level > MAX_DEPTH {
            break;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frame(vars: Value, context_line: Option<&str>) -> Frame {
        let mut frame = Frame {
            context_line: context_line.map(str::to_string),
            ..Frame::default()
        };
        frame.other.insert("vars".into(), vars);
        frame
    }

    #[test]
    fn small_vars_are_kept_as_sent() {
        let sent = json!({"key": "'a'", "value": 3, "items": ["'x'", null, true]});
        assert_eq!(
            vars(&frame(sent.clone(), None)).map(Value::Object),
            Some(sent)
        );
        assert_eq!(vars(&Frame::default()), None);
    }

    #[test]
    fn oversized_or_deep_values_are_replaced_and_counts_capped() {
        let mut deep = json!(1);
        for _ in 0..50 {
            deep = json!([deep]);
        }
        let mut many = Map::new();
        for i in 0..100 {
            many.insert(format!("v{i}"), json!(i));
        }
        many.insert("v0".into(), json!("x".repeat(100_000)));
        many.insert("v1".into(), deep);
        let kept = vars(&frame(Value::Object(many), None)).unwrap();
        assert_eq!(kept.len(), MAX_VARS);
        assert_eq!(kept["v0"], json!(TOO_LARGE));
        assert_eq!(kept["v1"], json!(TOO_LARGE));
        assert_eq!(kept["v2"], json!(2));
    }

    #[test]
    fn the_total_is_capped() {
        let mut many = Map::new();
        for i in 0..30 {
            many.insert(format!("v{i}"), json!("y".repeat(MAX_VALUE_BYTES - 10)));
        }
        let kept = vars(&frame(Value::Object(many), None)).unwrap();
        let size: usize = kept.values().map(|v| v.to_string().len()).sum();
        assert!(size <= MAX_FRAME_BYTES, "{size}");
        assert!(!kept.is_empty());
    }

    #[test]
    fn the_context_line_is_capped() {
        let long = "z".repeat(5_000);
        let line = context_line(&frame(json!({}), Some(&long))).unwrap();
        assert_eq!(line.chars().count(), MAX_CONTEXT_CHARS + 1);
    }
}
