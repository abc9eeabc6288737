//! Sentry envelope framing: splitting an envelope body into its items.
//!
//! SDKs send events to `/api/<project>/envelope/` as an envelope: a header line
//! of JSON, then items, each a header line of JSON and a payload that is
//! either `length` bytes long or runs to the next newline (Sentry's
//! `envelopes.mdx`). This module owns only that framing; what an `event`
//! item means is [`domain::event`]'s business, and decompression, auth and
//! size limits belong to the HTTP layer in front of it.
//!
//! Framing is strict where the format is: a bad header, a missing `type` or a
//! payload that does not fit its `length` rejects the whole envelope, because
//! after that the item boundaries are unknowable. Unknown item types and
//! unknown header keys are kept, as the format requires.
//!
//! An envelope from the network is read with [`Envelope::parse_limited`]:
//! the number of items, the length of each header line and the nesting of
//! its JSON are capped ([`EnvelopeLimits`]), each checked before the work it
//! bounds, so a body of a million empty items or of nested brackets is
//! refused after reading one item too many instead of after building them.

use domain::event::{EventError, ParsedEvent, Problem, parse_sdk_event};
use serde_json::{Map, Value};

/// One envelope as sent: headers and items in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    /// The envelope header (`event_id`, `dsn`, `sdk`, `sent_at`, ...), every key kept.
    pub headers: Map<String, Value>,
    /// Every item in order, including types suture does not use.
    pub items: Vec<Item>,
}

/// One item: its header and its raw payload bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// The item header (`type`, `length`, `content_type`, `filename`, ...).
    pub headers: Map<String, Value>,
    /// The payload, byte for byte (a `\r` before the terminating `\n` included).
    pub payload: Vec<u8>,
}

/// Caps on an envelope beyond its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeLimits {
    /// Most items.
    pub max_items: usize,
    /// Longest header line (the envelope's or an item's), in bytes.
    pub max_header_bytes: usize,
    /// Deepest JSON nesting in a header line.
    pub max_depth: usize,
}

impl EnvelopeLimits {
    /// No caps beyond serde_json's own: for envelopes read from local files.
    pub const NONE: EnvelopeLimits = EnvelopeLimits {
        max_items: usize::MAX,
        max_header_bytes: usize::MAX,
        max_depth: usize::MAX,
    };
}

/// Why bytes are not an envelope. Offsets are byte offsets into the body.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// More items than `limits.max_envelope_items`.
    #[error("envelope has more than {limit} items (limits.max_envelope_items)")]
    TooManyItems {
        /// The cap.
        limit: usize,
    },
    /// A header line longer than `limits.max_envelope_header_bytes`.
    #[error(
        "header line at byte {offset} is {length} bytes, more than {limit} \
         (limits.max_envelope_header_bytes)"
    )]
    HeaderTooLong {
        /// Where the line starts.
        offset: usize,
        /// Its length.
        length: usize,
        /// The cap.
        limit: usize,
    },
    /// A header line nesting deeper than `limits.max_json_depth`.
    #[error("header line at byte {offset}: {source}")]
    HeaderTooDeep {
        /// Where the line starts.
        offset: usize,
        /// How deep, and the cap.
        #[source]
        source: crate::json_depth::TooDeep,
    },
    /// Zero bytes: not even the header line.
    #[error("envelope is empty: it has no header line")]
    MissingHeader,
    /// The first line is not a JSON object.
    #[error("envelope header is not a json object")]
    BadEnvelopeHeader(#[source] serde_json::Error),
    /// An item header line is not a JSON object.
    #[error("item {index} at byte {offset}: header is not a json object")]
    BadItemHeader {
        /// Index of the item in the envelope.
        index: usize,
        /// Where its header line starts.
        offset: usize,
        /// What JSON said.
        #[source]
        source: serde_json::Error,
    },
    /// An item header without the required `type`.
    #[error("item {index} at byte {offset}: header has no `type`")]
    MissingItemType {
        /// Index of the item in the envelope.
        index: usize,
        /// Where its header line starts.
        offset: usize,
    },
    /// An item header whose `type` is not a string.
    #[error("item {index} at byte {offset}: `type` is not a string")]
    ItemTypeNotString {
        /// Index of the item in the envelope.
        index: usize,
        /// Where its header line starts.
        offset: usize,
    },
    /// An item header whose `length` is not a byte count.
    #[error("item {index} at byte {offset}: `length` is not a non-negative integer: {found}")]
    BadItemLength {
        /// Index of the item in the envelope.
        index: usize,
        /// Where its header line starts.
        offset: usize,
        /// The `length` value as sent.
        found: Value,
    },
    /// The body ends before `length` payload bytes.
    #[error(
        "item {index} at byte {offset}: payload is shorter than its length: \
         expected {expected} bytes, found {available}"
    )]
    PayloadTooShort {
        /// Index of the item in the envelope.
        index: usize,
        /// Where its payload starts.
        offset: usize,
        /// The `length` from the item header.
        expected: usize,
        /// The bytes left in the body.
        available: usize,
    },
    /// A length-prefixed payload followed by something other than `\n` or
    /// the end: the `length` is wrong or the body is corrupt.
    #[error(
        "item {index}: length-prefixed payload is followed by byte {found:#04x} at byte {offset}, \
         not a newline or the end"
    )]
    MissingNewlineAfterPayload {
        /// Index of the item in the envelope.
        index: usize,
        /// Where the unexpected byte is.
        offset: usize,
        /// The unexpected byte.
        found: u8,
    },
}

impl Envelope {
    /// Parses an (already decompressed) envelope body.
    ///
    /// Newlines are LF only; a `\r` before a `\n` belongs to the data before
    /// it. Items without `length` run to the next `\n` (or the end). The
    /// trailing newline is optional, an envelope without items is fine, and
    /// blank lines where an item header is expected are skipped (as Relay's
    /// JSON reader skips whitespace).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::parse_limited(bytes, &EnvelopeLimits::NONE)
    }

    /// [`Envelope::parse`] within `limits`.
    pub fn parse_limited(bytes: &[u8], limits: &EnvelopeLimits) -> Result<Envelope, EnvelopeError> {
        if bytes.is_empty() {
            return Err(EnvelopeError::MissingHeader);
        }
        let (header_line, mut offset) = line_at(bytes, 0);
        check_header_line(header_line, 0, limits)?;
        let headers =
            serde_json::from_slice(header_line).map_err(EnvelopeError::BadEnvelopeHeader)?;

        let mut items = Vec::new();
        while offset < bytes.len() {
            let (line, next) = line_at(bytes, offset);
            if line.iter().all(u8::is_ascii_whitespace) {
                offset = next;
                continue;
            }
            if items.len() >= limits.max_items {
                return Err(EnvelopeError::TooManyItems {
                    limit: limits.max_items,
                });
            }
            check_header_line(line, offset, limits)?;
            let (item, next) = parse_item(bytes, offset, items.len())?;
            items.push(item);
            offset = next;
        }
        Ok(Envelope { headers, items })
    }

    /// The envelope's bytes, every item written with its `length` (replacing
    /// any `length` its header had): what `parse` reads back as `self`, apart
    /// from that header key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = json_line(self.headers.clone());
        for item in &self.items {
            let mut headers = item.headers.clone();
            headers.insert("length".to_owned(), item.payload.len().into());
            out.push(b'\n');
            out.extend(json_line(headers));
            out.push(b'\n');
            out.extend(&item.payload);
        }
        out.push(b'\n');
        out
    }

    /// The envelope header's `event_id`, if it has one.
    pub fn event_id(&self) -> Option<&str> {
        self.headers.get("event_id")?.as_str()
    }

    /// The first item of type `event`, read through
    /// [`domain::event::parse_sdk_event`]; `None` when there is none
    /// (`transaction` items are not error events and are skipped).
    ///
    /// The envelope's `event_id` fills a missing one; a differing one is a
    /// problem, as is any further `event` item (which Sentry would reject and
    /// this does not read).
    pub fn event(&self) -> Option<Result<ParsedEvent, EventError>> {
        let mut event_items = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.ty() == Some("event"));
        let (_, item) = event_items.next()?;
        let mut parsed = match parse_sdk_event(&item.payload) {
            Ok(parsed) => parsed,
            Err(error) => return Some(Err(error)),
        };
        if let Some(envelope_event_id) = self.event_id() {
            match parsed.event.event_id.as_deref() {
                None => parsed.event.event_id = Some(envelope_event_id.to_owned()),
                Some(event_id) if same_event_id(event_id, envelope_event_id) => {}
                Some(event_id) => parsed.problems.push(Problem {
                    path: "event_id".to_owned(),
                    message: format!(
                        "differs from the envelope header's event_id {envelope_event_id:?}; \
                         kept {event_id:?}"
                    ),
                }),
            }
        }
        for (index, _) in event_items {
            parsed.problems.push(Problem {
                path: String::new(),
                message: format!(
                    "envelope item {index} is a further event item; only the first is read"
                ),
            });
        }
        Some(Ok(parsed))
    }
}

impl Item {
    /// The item's `type` (`event`, `transaction`, `attachment`, ...).
    pub fn ty(&self) -> Option<&str> {
        self.headers.get("type")?.as_str()
    }
}

/// Refuses a header line past the length and depth caps, before it is parsed.
fn check_header_line(
    line: &[u8],
    offset: usize,
    limits: &EnvelopeLimits,
) -> Result<(), EnvelopeError> {
    if line.len() > limits.max_header_bytes {
        return Err(EnvelopeError::HeaderTooLong {
            offset,
            length: line.len(),
            limit: limits.max_header_bytes,
        });
    }
    crate::json_depth::check(line, limits.max_depth)
        .map_err(|source| EnvelopeError::HeaderTooDeep { offset, source })
}

/// A header as one line of compact JSON (which never contains a raw `\n`).
fn json_line(headers: Map<String, Value>) -> Vec<u8> {
    Value::Object(headers).to_string().into_bytes()
}

/// The line starting at `offset` (without its `\n`) and where the next starts.
fn line_at(bytes: &[u8], offset: usize) -> (&[u8], usize) {
    let rest = &bytes[offset..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (&rest[..newline], offset + newline + 1),
        None => (rest, bytes.len()),
    }
}

/// Reads the item whose header line starts at `offset`; returns it and where
/// the next one starts.
fn parse_item(bytes: &[u8], offset: usize, index: usize) -> Result<(Item, usize), EnvelopeError> {
    let (header_line, payload_start) = line_at(bytes, offset);
    let headers: Map<String, Value> =
        serde_json::from_slice(header_line).map_err(|source| EnvelopeError::BadItemHeader {
            index,
            offset,
            source,
        })?;
    match headers.get("type") {
        None | Some(Value::Null) => return Err(EnvelopeError::MissingItemType { index, offset }),
        Some(Value::String(_)) => {}
        Some(_) => return Err(EnvelopeError::ItemTypeNotString { index, offset }),
    }
    let length = match headers.get("length") {
        None | Some(Value::Null) => None,
        Some(found) => match found.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(length) => Some(length),
            None => {
                let found = found.clone();
                return Err(EnvelopeError::BadItemLength {
                    index,
                    offset,
                    found,
                });
            }
        },
    };

    let Some(length) = length else {
        let (payload, next) = line_at(bytes, payload_start);
        return Ok((
            Item {
                headers,
                payload: payload.to_vec(),
            },
            next,
        ));
    };
    let available = bytes.len() - payload_start;
    if length > available {
        return Err(EnvelopeError::PayloadTooShort {
            index,
            offset: payload_start,
            expected: length,
            available,
        });
    }
    let payload_end = payload_start + length;
    let next = match bytes.get(payload_end) {
        None => payload_end,
        Some(b'\n') => payload_end + 1,
        Some(&found) => {
            return Err(EnvelopeError::MissingNewlineAfterPayload {
                index,
                offset: payload_end,
                found,
            });
        }
    };
    Ok((
        Item {
            headers,
            payload: bytes[payload_start..payload_end].to_vec(),
        },
        next,
    ))
}

/// Event ids compare as UUIDs: case and dashes do not matter.
fn same_event_id(a: &str, b: &str) -> bool {
    let normalise = |id: &str| -> String {
        id.chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    normalise(a) == normalise(b)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use expect_test::{Expect, expect};

    use super::*;

    /// The byte-exact two-item example from Sentry's `envelopes.mdx`.
    const TWO_ITEMS: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/sentry-envelope/envelope.two-items.bin"
    ));

    /// Renders headers and payloads (escaped) one line each.
    fn check(bytes: &[u8], expect: Expect) {
        let rendered = match Envelope::parse(bytes) {
            Ok(envelope) => {
                let mut out = format!("headers: {}\n", Value::Object(envelope.headers.clone()));
                for item in &envelope.items {
                    writeln!(
                        out,
                        "item: {} payload=b\"{}\"",
                        Value::Object(item.headers.clone()),
                        item.payload.escape_ascii()
                    )
                    .unwrap();
                }
                out
            }
            Err(error) => format!("error: {error}\n"),
        };
        expect.assert_eq(&rendered);
    }

    /// Sentry's documented example: an attachment whose payload keeps its BOM
    /// and `\r\n`, then an event; both read, the event through the domain.
    #[test]
    fn documented_two_item_example() {
        check(
            TWO_ITEMS,
            expect![[r#"
                headers: {"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42"}
                item: {"type":"attachment","length":10,"content_type":"text/plain","filename":"hello.txt"} payload=b"\xef\xbb\xbfHello\r\n"
                item: {"type":"event","length":41,"content_type":"application/json","filename":"application.log"} payload=b"{\"message\":\"hello world\",\"level\":\"error\"}"
            "#]],
        );
        let envelope = Envelope::parse(TWO_ITEMS).unwrap();
        assert_eq!(
            envelope.event_id(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(envelope.items[0].ty(), Some("attachment"));
        assert_eq!(envelope.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        let parsed = envelope.event().unwrap().unwrap();
        assert_eq!(parsed.event.message.as_deref(), Some("hello world"));
        assert_eq!(parsed.event.level.as_deref(), Some("error"));
        assert_eq!(
            parsed.event.event_id.as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert!(parsed.problems.is_empty());
    }

    /// The example without its trailing newline reads the same.
    #[test]
    fn trailing_newline_is_optional() {
        let trimmed = Envelope::parse(&TWO_ITEMS[..TWO_ITEMS.len() - 1]).unwrap();
        assert_eq!(trimmed, Envelope::parse(TWO_ITEMS).unwrap());
    }

    /// Writing and reading back gives the same envelope.
    #[test]
    fn round_trip() {
        let envelope = Envelope::parse(TWO_ITEMS).unwrap();
        assert_eq!(Envelope::parse(&envelope.to_bytes()).unwrap(), envelope);
        assert_eq!(envelope.to_bytes(), TWO_ITEMS);
    }

    /// Items without `length` run to the next `\n`; a `\r` before it is data;
    /// unknown types are kept; blank lines between items are skipped.
    #[test]
    fn items_without_length() {
        check(
            b"{}\n{\"type\":\"session\"}\n{\"a\":1}\r\n\n{\"type\":\"mystery\",\"x\":[1]}\nbytes",
            expect![[r#"
                headers: {}
                item: {"type":"session"} payload=b"{\"a\":1}\r"
                item: {"type":"mystery","x":[1]} payload=b"bytes"
            "#]],
        );
    }

    /// Header-only envelopes, with or without a newline, have no items.
    #[test]
    fn empty_envelopes() {
        check(
            b"{}",
            expect![[r#"
            headers: {}
        "#]],
        );
        check(
            b"{\"event_id\":\"e\"}\n",
            expect![[r#"
            headers: {"event_id":"e"}
        "#]],
        );
        check(
            b"{}\r\n",
            expect![[r#"
            headers: {}
        "#]],
        );
        assert!(Envelope::parse(b"{}").unwrap().event().is_none());
    }

    /// Empty payloads, with and without `length`, at the end and between items.
    #[test]
    fn empty_payloads() {
        check(
            b"{}\n{\"type\":\"a\",\"length\":0}\n\n{\"type\":\"b\"}\n\n{\"type\":\"c\",\"length\":0}",
            expect![[r#"
                headers: {}
                item: {"type":"a","length":0} payload=b""
                item: {"type":"b"} payload=b""
                item: {"type":"c","length":0} payload=b""
            "#]],
        );
        check(
            b"{}\n{\"type\":\"a\"}",
            expect![[r#"
            headers: {}
            item: {"type":"a"} payload=b""
        "#]],
        );
    }

    /// A length-prefixed payload may contain newlines.
    #[test]
    fn length_prefixed_payload_with_newlines() {
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":5}\na\nb\nc\n",
            expect![[r#"
            headers: {}
            item: {"type":"attachment","length":5} payload=b"a\nb\nc"
        "#]],
        );
    }

    /// Every way framing can fail, each with its precise reason.
    #[test]
    fn malformed_envelopes() {
        check(
            b"",
            expect![[r#"
            error: envelope is empty: it has no header line
        "#]],
        );
        check(
            b"not json\n",
            expect![[r#"
            error: envelope header is not a json object
        "#]],
        );
        check(
            b"[]\n",
            expect![[r#"
            error: envelope header is not a json object
        "#]],
        );
        check(
            b"{}\n{\"type\":\"event\"\n{}",
            expect![[r#"
            error: item 0 at byte 3: header is not a json object
        "#]],
        );
        check(
            b"{}\n{\"length\":2}\nab",
            expect![[r#"
            error: item 0 at byte 3: header has no `type`
        "#]],
        );
        check(
            b"{}\n{\"type\":null}\n",
            expect![[r#"
            error: item 0 at byte 3: header has no `type`
        "#]],
        );
        check(
            b"{}\n{\"type\":7}\n",
            expect![[r#"
            error: item 0 at byte 3: `type` is not a string
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":\"2\"}\nab",
            expect![[r#"
            error: item 0 at byte 3: `length` is not a non-negative integer: "2"
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":-1}\n",
            expect![[r#"
            error: item 0 at byte 3: `length` is not a non-negative integer: -1
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":10}\nshort\n",
            expect![[r#"
            error: item 0 at byte 28: payload is shorter than its length: expected 10 bytes, found 6
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":1}",
            expect![[r#"
            error: item 0 at byte 26: payload is shorter than its length: expected 1 bytes, found 0
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":2}\nabc\n",
            expect![[r#"
            error: item 0: length-prefixed payload is followed by byte 0x63 at byte 29, not a newline or the end
        "#]],
        );
        check(
            b"{}\n{\"type\":\"a\",\"length\":2}\nab\r\n",
            expect![[r#"
            error: item 0: length-prefixed payload is followed by byte 0x0d at byte 29, not a newline or the end
        "#]],
        );
    }

    /// The error variants, matched by shape as well as by message.
    #[test]
    fn error_variants() {
        assert!(matches!(
            Envelope::parse(b""),
            Err(EnvelopeError::MissingHeader)
        ));
        assert!(matches!(
            Envelope::parse(b"x"),
            Err(EnvelopeError::BadEnvelopeHeader(_))
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{}\n{\"x\"\n"),
            Err(EnvelopeError::MissingItemType {
                index: 0,
                offset: 3
            })
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"a\"}\n\n{\"x\"\n"),
            Err(EnvelopeError::BadItemHeader {
                index: 1,
                offset: 17,
                ..
            })
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"a\",\"length\":3}\nab"),
            Err(EnvelopeError::PayloadTooShort {
                index: 0,
                expected: 3,
                available: 2,
                ..
            })
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"a\",\"length\":1}\nab"),
            Err(EnvelopeError::MissingNewlineAfterPayload {
                index: 0,
                found: b'b',
                ..
            })
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":[]}"),
            Err(EnvelopeError::ItemTypeNotString { .. })
        ));
        assert!(matches!(
            Envelope::parse(b"{}\n{\"type\":\"a\",\"length\":1.5}\na"),
            Err(EnvelopeError::BadItemLength { .. })
        ));
    }

    /// `transaction` items are not error events; the first `event` item is.
    #[test]
    fn event_skips_transactions() {
        let envelope = Envelope {
            headers: Map::new(),
            items: vec![
                item(
                    "transaction",
                    br#"{"type":"transaction","transaction":"/"}"#,
                ),
                item(
                    "event",
                    br#"{"event_id":"abc","exception":{"values":[{"type":"E","value":"v"}]}}"#,
                ),
            ],
        };
        let parsed = Envelope::parse(&envelope.to_bytes())
            .unwrap()
            .event()
            .unwrap()
            .unwrap();
        assert_eq!(parsed.event.title(), "E: v");
        assert!(parsed.problems.is_empty());

        let only_transaction = Envelope {
            headers: Map::new(),
            items: vec![item("transaction", b"{}")],
        };
        assert!(only_transaction.event().is_none());
    }

    /// An event payload that is not JSON is the domain's `EventError`.
    #[test]
    fn event_payload_not_json() {
        let envelope = Envelope {
            headers: Map::new(),
            items: vec![item("event", b"{oops")],
        };
        let error = envelope.event().unwrap().unwrap_err();
        assert_eq!(error.to_string(), "body is not json");
        let envelope = Envelope {
            headers: Map::new(),
            items: vec![item("event", b"[]")],
        };
        assert!(matches!(
            envelope.event(),
            Some(Err(EventError::NotAnObject { .. }))
        ));
    }

    /// The envelope `event_id` fills a missing one and is checked against a
    /// present one; further event items are reported, not read.
    #[test]
    fn event_id_and_further_events() {
        let mut headers = Map::new();
        headers.insert(
            "event_id".into(),
            "9EC79C33-EC99-42AB-8353-589FCB2E04DC".into(),
        );
        let envelope = Envelope {
            headers: headers.clone(),
            items: vec![item(
                "event",
                br#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"#,
            )],
        };
        assert!(envelope.event().unwrap().unwrap().problems.is_empty());

        let envelope = Envelope {
            headers,
            items: vec![
                item("event", br#"{"event_id":"other"}"#),
                item("event", b"{}"),
            ],
        };
        let parsed = envelope.event().unwrap().unwrap();
        assert_eq!(parsed.event.event_id.as_deref(), Some("other"));
        let problems: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
        expect![[r#"
            [
                "event_id: differs from the envelope header's event_id \"9EC79C33-EC99-42AB-8353-589FCB2E04DC\"; kept \"other\"",
                "envelope item 1 is a further event item; only the first is read",
            ]
        "#]].assert_debug_eq(&problems);
    }

    fn item(ty: &str, payload: &[u8]) -> Item {
        let mut headers = Map::new();
        headers.insert("type".into(), ty.into());
        Item {
            headers,
            payload: payload.to_vec(),
        }
    }
}
