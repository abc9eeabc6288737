//! Grouping: which incident an event belongs to.
//!
//! Two occurrences of one failure must get the same fingerprint even when
//! their messages carry different ids and their code moved a few lines, and
//! two different failures must not. The rules, first match wins:
//!
//! 1. The SDK's own `fingerprint`, with `{{ default }}` standing for rule 2
//!    or 3 (Sentry's custom grouping).
//! 2. An exception: its type plus the normalised in-app frames (module or
//!    file, function; no line numbers, which move with every deploy), for
//!    every exception of the chain. Without in-app frames, all frames; with
//!    no frames, the normalised message.
//! 3. A message: the `logentry.message` template, else the message with
//!    numbers, hex ids and quoted values masked.
//!
//! Webhooks that name an upstream issue or incident group by it instead
//! ([`Fingerprint::upstream`]): the sender already did the grouping.

use sha2::{Digest, Sha256};

use crate::event::{Event, Frame};

/// An incident key: a short kind prefix and a hash, e.g. `exception:3f…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// The fingerprint of an SDK event (rules 1–3 above).
    pub fn of_event(event: &Event) -> Fingerprint {
        match &event.fingerprint {
            Some(parts) if !parts.is_empty() && !is_default_only(parts) => {
                let mut components = Vec::new();
                for part in parts {
                    if is_default_marker(part) {
                        components.extend(default_components(event).1);
                    } else {
                        components.push(format!("custom:{part}"));
                    }
                }
                Fingerprint::hashed("custom", &components)
            }
            _ => {
                let (kind, components) = default_components(event);
                Fingerprint::hashed(kind, &components)
            }
        }
    }

    /// An upstream issue or incident: `sentry-issue:123`, `pagerduty:PXYZ`.
    pub fn upstream(kind: &str, id: &str) -> Fingerprint {
        Fingerprint(format!("{kind}:{id}"))
    }

    fn hashed(kind: &str, components: &[String]) -> Fingerprint {
        let mut hasher = Sha256::new();
        for component in components {
            hasher.update(component.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        Fingerprint(format!("{kind}:{}", hex::encode(&digest[..16])))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_default_marker(part: &str) -> bool {
    matches!(part.trim(), "{{ default }}" | "{{default}}")
}

fn is_default_only(parts: &[String]) -> bool {
    parts.iter().all(|part| is_default_marker(part))
}

/// The kind and components of the default grouping.
fn default_components(event: &Event) -> (&'static str, Vec<String>) {
    let exceptions: Vec<_> = event
        .exceptions
        .iter()
        .filter(|exception| exception.ty.is_some() || exception.value.is_some())
        .collect();
    if !exceptions.is_empty() {
        let mut components = Vec::new();
        for exception in exceptions {
            let ty = exception.ty.as_deref().unwrap_or("<unknown>");
            components.push(format!("type:{ty}"));
            let frames = exception
                .stacktrace
                .as_ref()
                .map_or(&[][..], |stacktrace| &stacktrace.frames[..]);
            let frames = grouping_frames(frames);
            if frames.is_empty() {
                let value = exception.value.as_deref().unwrap_or_default();
                components.push(format!("value:{}", mask(value)));
            }
            components.extend(frames);
        }
        return ("exception", components);
    }
    let frames = event
        .crash_stacktrace()
        .map(|stacktrace| grouping_frames(&stacktrace.frames))
        .unwrap_or_default();
    let template = event
        .other
        .get("logentry")
        .and_then(|logentry| logentry.get("message"))
        .and_then(|message| message.as_str())
        .map(str::to_owned);
    let message = template.unwrap_or_else(|| {
        mask(
            event
                .message
                .as_deref()
                .unwrap_or_else(|| fallback_title(event)),
        )
    });
    let mut components = vec![format!("message:{message}")];
    components.extend(frames);
    ("message", components)
}

fn fallback_title(event: &Event) -> &str {
    event
        .other
        .get("title")
        .and_then(|title| title.as_str())
        .unwrap_or("<unlabeled event>")
}

/// `module-or-file:function` of the in-app frames, else of all frames.
fn grouping_frames(frames: &[Frame]) -> Vec<String> {
    let in_app: Vec<&Frame> = frames
        .iter()
        .filter(|frame| frame.in_app == Some(true))
        .collect();
    let chosen: Vec<&Frame> = if in_app.is_empty() {
        frames.iter().collect()
    } else {
        in_app
    };
    chosen
        .into_iter()
        .map(|frame| {
            let place = frame
                .module
                .as_deref()
                .map(str::to_owned)
                .or_else(|| frame.filename.as_deref().map(normalise_path))
                .or_else(|| frame.abs_path.as_deref().map(normalise_path))
                .unwrap_or_default();
            let function = frame
                .function
                .as_deref()
                .map(normalise_function)
                .unwrap_or_default();
            format!("frame:{place}:{function}")
        })
        .collect()
}

/// A frame path without what changes between deploys: a URL's origin and
/// query, and content hashes in bundle names (`app.3f2a1b9c.js`).
fn normalise_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => path,
    };
    path.split('/')
        .map(|segment| {
            segment
                .split('.')
                .map(|part| {
                    if looks_like_hash(part) {
                        "<hash>"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A function name without anonymous-function serials and addresses.
fn normalise_function(function: &str) -> String {
    mask(function)
}

fn looks_like_hash(part: &str) -> bool {
    part.len() >= 8
        && part.bytes().all(|b| b.is_ascii_hexdigit())
        && part.bytes().any(|b| b.is_ascii_digit())
}

/// `text` with what varies between occurrences masked: numbers, hex ids,
/// and quoted values.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // A quoted value: mask it whole when it closes on this line.
                let rest: String = chars.clone().take_while(|&d| d != c && d != '\n').collect();
                if chars.clone().nth(rest.chars().count()) == Some(c) {
                    for _ in 0..=rest.chars().count() {
                        chars.next();
                    }
                    out.push(c);
                    out.push('*');
                    out.push(c);
                } else {
                    out.push(c);
                }
            }
            c if c.is_ascii_digit() => {
                while chars.peek().is_some_and(|d| d.is_ascii_alphanumeric()) {
                    chars.next();
                }
                out.push('#');
            }
            c if c.is_ascii_hexdigit() => {
                let word: String = std::iter::once(c)
                    .chain(chars.clone().take_while(char::is_ascii_alphanumeric))
                    .collect();
                if word.len() >= 8
                    && word.bytes().all(|b| b.is_ascii_hexdigit())
                    && word.bytes().any(|b| b.is_ascii_digit())
                {
                    for _ in 1..word.len() {
                        chars.next();
                    }
                    out.push('#');
                } else {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::event::event_from_value;

    fn fingerprint(value: Value) -> String {
        Fingerprint::of_event(&event_from_value(value).0).0
    }

    fn exception(ty: &str, value: &str, frames: Value) -> Value {
        json!({"exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": frames}}]}})
    }

    /// The same error raised at moved lines and with other ids in its
    /// message is one incident.
    #[test]
    fn same_error_different_lines_and_values() {
        let a = exception(
            "KeyError",
            "'user 17'",
            json!([{"module": "shop.cart", "function": "total", "lineno": 10, "in_app": true},
                   {"module": "json", "function": "loads", "lineno": 5, "in_app": false}]),
        );
        let b = exception(
            "KeyError",
            "'user 99'",
            json!([{"module": "shop.cart", "function": "total", "lineno": 14, "in_app": true}]),
        );
        assert_eq!(fingerprint(a.clone()), fingerprint(b));
        assert!(fingerprint(a).starts_with("exception:"));
    }

    /// Another exception type, or another in-app function, is another incident.
    #[test]
    fn different_type_or_function() {
        let frames = json!([{"module": "shop.cart", "function": "total", "in_app": true}]);
        let other_frames = json!([{"module": "shop.cart", "function": "subtotal", "in_app": true}]);
        let base = fingerprint(exception("KeyError", "x", frames.clone()));
        assert_ne!(base, fingerprint(exception("ValueError", "x", frames)));
        assert_ne!(base, fingerprint(exception("KeyError", "x", other_frames)));
    }

    /// The SDK's fingerprint wins; `{{ default }}` alone is the default.
    #[test]
    fn sdk_fingerprint() {
        let base = exception("E", "v", json!([{"function": "f", "in_app": true}]));
        let mut custom = base.clone();
        custom["fingerprint"] = json!(["payment-timeout"]);
        let mut default_only = base.clone();
        default_only["fingerprint"] = json!(["{{ default }}"]);
        let mut extended = base.clone();
        extended["fingerprint"] = json!(["{{ default }}", "eu"]);
        assert!(fingerprint(custom.clone()).starts_with("custom:"));
        assert_eq!(fingerprint(default_only), fingerprint(base.clone()));
        assert_ne!(fingerprint(extended), fingerprint(base));
        let mut other_message = custom.clone();
        other_message["exception"]["values"][0]["type"] = json!("Other");
        assert_eq!(fingerprint(custom), fingerprint(other_message));
    }

    /// Messages group by template, else by the masked message.
    #[test]
    fn messages() {
        let a = fingerprint(json!({"message": "disk 91% full on host-7"}));
        let b = fingerprint(json!({"message": "disk 95% full on host-12"}));
        assert_eq!(a, b);
        assert!(a.starts_with("message:"));
        let t1 = fingerprint(
            json!({"logentry": {"message": "user %s failed", "formatted": "user 1 failed"}}),
        );
        let t2 = fingerprint(
            json!({"logentry": {"message": "user %s failed", "formatted": "user 2 failed"}}),
        );
        assert_eq!(t1, t2);
    }

    /// Masking keeps words and hides what varies.
    #[test]
    fn masking() {
        assert_eq!(
            mask("id 42 at 0x7ffe and deadbeef12 'bob'"),
            "id # at # and # '*'"
        );
        assert_eq!(mask("face cafe added"), "face cafe added");
        assert_eq!(mask("it's"), "it's");
    }

    /// Bundle hashes and URL origins do not split JavaScript incidents.
    #[test]
    fn javascript_paths() {
        assert_eq!(
            normalise_path("https://cdn.example.com/static/app.3f2a1b9c.js?v=2"),
            "static/app.<hash>.js"
        );
        assert_eq!(normalise_path("src/app.js"), "src/app.js");
    }
}
