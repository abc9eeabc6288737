//! Property tests of everything that reads attacker-controlled bytes:
//! envelope framing, event JSON (`domain::event`), the JSON depth scan, and
//! whole requests to the SDK and webhook endpoints. None may panic on any
//! input, and each refuses what is past its caps. Bounded: a fixed number
//! of cases per property, small inputs, no persistence of failures.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::config::{Config, SentryProject};
use ingest::envelope::{Envelope, EnvelopeError, EnvelopeLimits, Item};
use ingest::metrics::Metrics;
use ingest::signature::sign_hex;
use ingest::writer::Writer;
use ingest::{AppState, IngestConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Map, Value};
use tower::ServiceExt;

const CASES: u32 = 256;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

/// Keys the event and webhook readers look at, so generated JSON reaches
/// their deeper paths; plus short random ones.
const KEYS: &[&str] = &[
    "event_id",
    "exception",
    "values",
    "stacktrace",
    "frames",
    "message",
    "level",
    "release",
    "data",
    "error",
    "event",
    "issue",
    "id",
    "action",
    "type",
    "value",
    "logentry",
    "formatted",
    "platform",
    "tags",
    "contexts",
    "fingerprint",
    "in_app",
    "filename",
    "lineno",
    "function",
    "module",
    "abs_path",
    "threads",
    "issue_id",
    "issue_url",
    "web_url",
    "url",
    "project",
    "title",
    "culprit",
    "timestamp",
    "environment",
    "sdk",
    "length",
    "dsn",
    "comment",
    "pull_request",
    "review",
    "merged",
    "head",
    "sha",
    "updated_at",
    "lastSeen",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,4}",
    ]
}

/// Arbitrary JSON, biased towards the shapes events and webhooks have.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Bytes that look like JSON often enough to get past the first byte.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(&b"{}[]\":,0123456789.eE-+ntrufalsx\\\n "[..]),
            any::<u8>(),
        ],
        0..512,
    )
}

/// Envelope-shaped bytes: lines of JSON headers with `type` and `length`
/// (right or wrong), and payloads, glued by newlines.
fn envelope_soup() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        json().prop_map(|value| value.to_string().into_bytes()),
        ("[a-z]{1,8}", proptest::option::of(0usize..64)).prop_map(|(ty, length)| {
            let mut header = Map::new();
            header.insert("type".into(), ty.into());
            if let Some(length) = length {
                header.insert("length".into(), length.into());
            }
            Value::Object(header).to_string().into_bytes()
        }),
        json_soup(),
        Just(Vec::new()),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join(&b'\n'))
}

const LIMITS: EnvelopeLimits = EnvelopeLimits {
    max_items: 5,
    max_header_bytes: 256,
    max_depth: 8,
};

/// Framing never panics, and what it accepts is within the caps.
#[test]
fn envelope_framing_never_panics_and_keeps_its_caps() {
    runner(CASES * 4)
        .run(
            &prop_oneof![
                envelope_soup(),
                proptest::collection::vec(any::<u8>(), 0..1024)
            ],
            |bytes| {
                let _ = Envelope::parse(&bytes);
                if let Ok(envelope) = Envelope::parse_limited(&bytes, &LIMITS) {
                    prop_assert!(envelope.items.len() <= LIMITS.max_items);
                    for item in &envelope.items {
                        prop_assert!(
                            Value::Object(item.headers.clone()).to_string().len()
                                <= 4 * LIMITS.max_header_bytes
                        );
                    }
                    // What was read is what would be written.
                    let again = Envelope::parse(&envelope.to_bytes()).unwrap();
                    prop_assert_eq!(again.items.len(), envelope.items.len());
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Well-formed envelopes round-trip; one item more than the cap is refused
/// naming the cap.
#[test]
fn envelope_item_cap() {
    let item =
        ("[a-z]{1,6}", proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(ty, payload)| {
            let mut headers = Map::new();
            headers.insert("type".into(), ty.into());
            Item { headers, payload }
        });
    runner(CASES)
        .run(&proptest::collection::vec(item, 0..12), |items| {
            let envelope = Envelope {
                headers: Map::new(),
                items,
            };
            let bytes = envelope.to_bytes();
            match Envelope::parse_limited(&bytes, &LIMITS) {
                Ok(parsed) => {
                    prop_assert!(envelope.items.len() <= LIMITS.max_items);
                    prop_assert_eq!(parsed.items.len(), envelope.items.len());
                    for (a, b) in parsed.items.iter().zip(&envelope.items) {
                        prop_assert_eq!(&a.payload, &b.payload);
                    }
                }
                Err(EnvelopeError::TooManyItems { limit }) => {
                    prop_assert_eq!(limit, LIMITS.max_items);
                    prop_assert!(envelope.items.len() > LIMITS.max_items);
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
            Ok(())
        })
        .unwrap();
}

/// The event readers never panic: not on bytes, not on any JSON, not on
/// nesting far past serde_json's own limit.
#[test]
fn event_parsing_never_panics() {
    runner(CASES * 4)
        .run(
            &prop_oneof![
                json().prop_map(|value| value.to_string().into_bytes()),
                json_soup(),
            ],
            |bytes| {
                let _ = domain::event::parse_sdk_event(&bytes);
                let _ = domain::event::parse_event(&bytes);
                Ok(())
            },
        )
        .unwrap();
    runner(32)
        .run(&(1usize..5000, any::<bool>()), |(depth, objects)| {
            let (open, close) = if objects {
                ("{\"event\":", "}")
            } else {
                ("[", "]")
            };
            let deep = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let _ = domain::event::parse_sdk_event(deep.as_bytes());
            let _ = domain::event::parse_event(deep.as_bytes());
            prop_assert_eq!(
                ingest::json_depth::check(deep.as_bytes(), 64).is_ok(),
                depth <= 64
            );
            Ok(())
        })
        .unwrap();
}

/// The depth scan agrees with the depth of generated JSON.
#[test]
fn depth_scan_measures_generated_json() {
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    runner(CASES)
        .run(&(json(), 0usize..8), |(value, limit)| {
            let text = value.to_string();
            prop_assert_eq!(
                ingest::json_depth::check(text.as_bytes(), limit).is_ok(),
                depth(&value) <= limit
            );
            Ok(())
        })
        .unwrap();
}

const KEY: &str = "0123456789abcdef0123456789abcdef";
const SECRET: &str = "property-secret";

/// A router over a fresh SQLite store with small caps, and the runtime it
/// runs on.
fn router() -> (tokio::runtime::Runtime, Router, tempfile::TempDir) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = runtime.block_on(store::testing::fresh_sqlite(dir.path()));
    let mut config = Config::default();
    config.secrets.sentry_client_secret = Some(SECRET.into());
    config.secrets.pagerduty_webhook_secrets = vec![SECRET.into()];
    config.secrets.github_webhook_secret = Some(SECRET.into());
    config.limits.max_envelope_bytes = 8 * 1024;
    config.limits.max_event_bytes = 4 * 1024;
    config.limits.max_webhook_bytes = 8 * 1024;
    config.limits.max_envelope_items = 5;
    config.limits.max_json_depth = 8;
    let projects = [SentryProject {
        id: "1".into(),
        public_key: KEY.into(),
    }];
    let router = runtime.block_on(async {
        let metrics = Arc::new(Metrics::default());
        let (writer, _task) = Writer::spawn(store.clone(), 1024, 64, metrics.clone());
        ingest::router(AppState::new(
            IngestConfig::new(&config, &projects),
            store,
            writer,
            metrics,
        ))
    });
    (runtime, router, dir)
}

fn post(router: &Router, runtime: &tokio::runtime::Runtime, request: Request<Body>) -> StatusCode {
    runtime
        .block_on(router.clone().oneshot(request))
        .unwrap()
        .status()
}

/// Any envelope body, with the right key, is stored, acknowledged or
/// refused with a 4xx that names why: never a 5xx, never a panic.
#[test]
fn sdk_endpoints_answer_any_body_with_2xx_or_4xx() {
    let (runtime, router, _dir) = router();
    runner(CASES)
        .run(
            &(prop_oneof![envelope_soup(), json_soup()], any::<bool>()),
            |(body, store)| {
                let path = if store {
                    "/api/1/store/"
                } else {
                    "/api/1/envelope/"
                };
                let request = Request::post(path)
                    .header("x-sentry-auth", format!("Sentry sentry_key={KEY}"))
                    .body(Body::from(body.clone()))
                    .unwrap();
                let status = post(&router, &runtime, request);
                prop_assert!(
                    matches!(status.as_u16(), 200 | 400 | 413),
                    "{status} for {:?}",
                    String::from_utf8_lossy(&body)
                );
                Ok(())
            },
        )
        .unwrap();
}

/// Any signed webhook body is stored, or refused with 400 (not what the
/// sender sends, too deep) or 413 (too large): never a 5xx, never a panic.
#[test]
fn webhooks_answer_any_signed_body_with_2xx_or_4xx() {
    let (runtime, router, _dir) = router();
    let body = prop_oneof![
        json().prop_map(|value| value.to_string().into_bytes()),
        json().prop_map(
            |value| serde_json::json!({"action": "created", "data": value})
                .to_string()
                .into_bytes()
        ),
        json().prop_map(|value| serde_json::json!({"event": value}).to_string().into_bytes()),
        json_soup(),
        (1usize..40)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        Just(vec![b' '; 9 * 1024]),
    ];
    runner(CASES)
        .run(&(body, 0usize..3), |(body, which)| {
            let signature = sign_hex(SECRET.as_bytes(), &body);
            let now = chrono::Utc::now().timestamp().to_string();
            let request = match which {
                0 => Request::post("/webhooks/sentry")
                    .header("sentry-hook-signature", signature)
                    .header("sentry-hook-timestamp", now),
                1 => Request::post("/webhooks/pagerduty")
                    .header("x-pagerduty-signature", format!("v1={signature}")),
                _ => Request::post("/webhooks/github")
                    .header("x-github-event", "issue_comment")
                    .header("x-hub-signature-256", format!("sha256={signature}")),
            }
            .body(Body::from(body.clone()))
            .unwrap();
            let status = post(&router, &runtime, request);
            prop_assert!(
                matches!(status.as_u16(), 200 | 400 | 413),
                "{status} for {:?}",
                String::from_utf8_lossy(&body)
            );
            if body.len() > 8 * 1024 {
                prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            }
            if ingest::json_depth::check(&body, 8).is_err() && body.len() <= 8 * 1024 {
                prop_assert_eq!(status, StatusCode::BAD_REQUEST);
            }
            Ok(())
        })
        .unwrap();
}
