//! The endpoints through `Router::oneshot`, on a real store: every scenario
//! runs on a fresh SQLite file and on a fresh PostgreSQL database
//! (`SUTURE_TEST_DATABASE_URL`, set by scripts/test). Signed fixtures from
//! ../shared/fixtures/ are accepted; every refused request says why and
//! leaves no row.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::http::{HeaderMap, Request, StatusCode};
use domain::config::{Config, SentryProject};
use ingest::metrics::Metrics;
use ingest::signature::sign_hex;
use ingest::writer::Writer;
use ingest::{AppState, IngestConfig};
use serde_json::{Value, json};
use store::Store;
use tower::ServiceExt;

const PROJECT: &str = "42";
/// The key in the fixture envelope's `dsn` header.
const KEY: &str = "e12d836b15bb49d7bbf99e64295d995b";
const SENTRY_SECRET: &str = "sentry-client-secret";
const PAGERDUTY_SECRET: &str = "pagerduty-secret";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::Harness::new(store::testing::fresh_sqlite(dir.path()).await)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Harness::new(store::testing::fresh_postgres().await)).await;
                }
            )*
        }
    };
}

on_both!(
    fixture_envelope_is_accepted_with_the_dsn_in_its_header,
    compressed_envelopes_are_accepted,
    store_endpoint_takes_one_event,
    sdk_auth_is_required,
    oversized_bodies_are_413,
    malformed_bodies_are_400,
    repeated_event_is_a_no_op,
    storm_is_one_incident,
    envelope_without_event_is_acknowledged_not_stored,
    sentry_webhook_fixtures,
    sentry_webhook_bad_signatures,
    pagerduty_webhook_fixtures,
    pagerduty_webhook_bad_signatures,
    github_webhook_fixtures,
    github_webhook_bad_signatures,
    unconfigured_webhooks_are_refused,
    incidents_api,
    health_readiness_and_metrics,
    memory_budget_sheds_load,
    a_wrong_key_is_refused_before_the_body_is_read,
    the_dsn_in_the_envelope_is_checked_after_its_first_line,
    envelope_caps_are_refused_naming_the_cap,
    rate_limited_events_get_relay_headers_and_are_not_stored,
    replayed_webhooks_are_duplicates,
    releases_api,
    status_api_and_gauge_show_the_pauses,
);

struct Harness {
    store: Store,
    router: Router,
    metrics: Arc<Metrics>,
}

impl Harness {
    fn new(store: Store) -> Harness {
        Harness::with_config(store, |_| {})
    }

    fn with_config(store: Store, edit: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::default();
        config.secrets.sentry_client_secret = Some(SENTRY_SECRET.into());
        config.secrets.pagerduty_webhook_secrets =
            vec!["rotated-out".into(), PAGERDUTY_SECRET.into()];
        config.secrets.github_webhook_secret = Some(GITHUB_SECRET.into());
        config.limits.max_envelope_bytes = 64 * 1024;
        config.limits.max_event_bytes = 16 * 1024;
        config.limits.max_webhook_bytes = 256 * 1024;
        edit(&mut config);
        let projects = [SentryProject {
            id: PROJECT.into(),
            public_key: KEY.into(),
        }];
        let metrics = Arc::new(Metrics::default());
        let (writer, _task) = Writer::spawn(store.clone(), 1024, 64, metrics.clone());
        let state = AppState::new(
            IngestConfig::new(&config, &projects),
            store.clone(),
            writer,
            metrics.clone(),
        );
        Harness {
            store,
            router: ingest::router(state),
            metrics,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = self.send_full(request).await;
        (status, body)
    }

    async fn send_full(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, body)
    }

    async fn rows(&self) -> i64 {
        self.store.count_signals().await.unwrap()
    }

    /// Sends `request`, expects `status` with an `error` saying why, and no
    /// new row.
    async fn refused(&self, request: Request<Body>, status: StatusCode) -> String {
        let before = self.rows().await;
        let (got, body) = self.send(request).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(self.rows().await, before, "a refused request left a row");
        body["error"].as_str().expect("error reason").to_owned()
    }
}

fn fixture(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

fn auth() -> String {
    format!("Sentry sentry_version=7, sentry_client=test/1.0, sentry_key={KEY}")
}

fn envelope_request(body: Vec<u8>, encoding: Option<&str>) -> Request<Body> {
    let mut request = Request::post(format!("/api/{PROJECT}/envelope/"))
        .header("x-sentry-auth", auth())
        .header("content-type", "application/x-sentry-envelope");
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.body(Body::from(body)).unwrap()
}

fn event_envelope(event_id: &str, event: Value) -> Vec<u8> {
    let payload = event.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

fn crash(event_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "platform": "python",
        "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
            "stacktrace": {"frames": [{"module": "shop.cart", "function": "total", "lineno": 3, "in_app": true}]}}]}
    })
}

/// Names `shop@1.0` of project 42 and nothing else, as a repository with
/// that one tag would.
#[derive(Debug)]
struct OneTag;

impl ingest::ReleaseCommits for OneTag {
    fn commits(&self, project: &str, releases: &[String]) -> Vec<Option<String>> {
        releases
            .iter()
            .map(|release| (project == PROJECT && release == "shop@1.0").then(|| "a".repeat(40)))
            .collect()
    }
}

/// `GET /api/releases`: the releases of the events sent, oldest first,
/// with their counts and the commit the service names (null without one);
/// the token guards it as the rest of the API; a missing or bad project or
/// limit is a 400 that says which.
async fn releases_api(h: Harness) {
    for (n, release) in ["shop@1.0", "shop@1.0", "shop@1.1"].into_iter().enumerate() {
        let id = format!("{n}").repeat(32);
        let mut event = crash(&id);
        event["release"] = json!(release);
        let (status, body) = h
            .send(envelope_request(event_envelope(&id, event), None))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let listed = |body: &Value| -> Vec<(String, i64, Value)> {
        body["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["release"].as_str().unwrap().to_owned(),
                    r["events"].as_i64().unwrap(),
                    r["commit"].clone(),
                )
            })
            .collect()
    };

    let (status, body) = h.send(get("/api/releases?project=42")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        listed(&body),
        vec![
            ("shop@1.0".to_owned(), 2, Value::Null),
            ("shop@1.1".to_owned(), 1, Value::Null)
        ],
        "no resolver, no commit: {body}"
    );
    let (_, body) = h.send(get("/api/releases?project=42&limit=1")).await;
    assert_eq!(listed(&body), vec![("shop@1.1".to_owned(), 1, Value::Null)]);
    for (path, says) in [
        ("/api/releases", "bad query: missing project"),
        ("/api/releases?project=", "bad query: project must be"),
        (
            "/api/releases?project=a/b",
            "bad query: project may hold only",
        ),
        ("/api/releases?project=42&limit=x", "bad query: "),
    ] {
        let (status, body) = h.send(get(path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(says), "{path}: {body}");
    }

    let mut config = Config::default();
    config.secrets.api_token = Some("t0ken".into());
    let metrics = Arc::new(Metrics::default());
    let (writer, _task) = Writer::spawn(h.store.clone(), 16, 16, metrics.clone());
    let state = AppState::new(
        IngestConfig::new(&config, &[]),
        h.store.clone(),
        writer,
        metrics,
    )
    .with_release_commits(Arc::new(OneTag));
    let router = ingest::router(state);
    let response = router
        .clone()
        .oneshot(get("/api/releases?project=42"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let request = Request::get("/api/releases?project=42")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        listed(&body),
        vec![
            ("shop@1.0".to_owned(), 2, json!("a".repeat(40))),
            ("shop@1.1".to_owned(), 1, Value::Null)
        ],
        "{body}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        writer.write_all(data).unwrap();
    }
    out
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

fn sentry_hook(
    body: Vec<u8>,
    signature: Option<String>,
    timestamp: Option<String>,
    request_id: &str,
) -> Request<Body> {
    let mut request = Request::post("/webhooks/sentry")
        .header("content-type", "application/json")
        .header("request-id", request_id);
    if let Some(signature) = signature {
        request = request.header("sentry-hook-signature", signature);
    }
    if let Some(timestamp) = timestamp {
        request = request.header("sentry-hook-timestamp", timestamp);
    }
    request.body(Body::from(body)).unwrap()
}

fn pagerduty_hook(body: Vec<u8>, signature: Option<String>, webhook_id: &str) -> Request<Body> {
    let mut request = Request::post("/webhooks/pagerduty")
        .header("content-type", "application/json")
        .header("x-webhook-id", webhook_id);
    if let Some(signature) = signature {
        request = request.header("x-pagerduty-signature", signature);
    }
    request.body(Body::from(body)).unwrap()
}

fn github_hook(
    body: Vec<u8>,
    signature: Option<String>,
    event: &str,
    delivery: &str,
) -> Request<Body> {
    let mut request = Request::post("/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.body(Body::from(body)).unwrap()
}

/// The envelope from Sentry's docs (an attachment and an event), with no
/// auth header: the key comes from the envelope's `dsn`.
async fn fixture_envelope_is_accepted_with_the_dsn_in_its_header(h: Harness) {
    let request = Request::post(format!("/api/{PROJECT}/envelope/"))
        .body(Body::from(fixture(
            "sentry-envelope/envelope.two-items.bin",
        )))
        .unwrap();
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"id": "9ec79c33ec9942ab8353589fcb2e04dc"}));
    let incidents = h.store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].title, "hello world");
    assert!(incidents[0].fingerprint.starts_with("message:"));
}

/// gzip (sentry-python without brotli), br (with it) and deflate all decode.
async fn compressed_envelopes_are_accepted(h: Harness) {
    let ids = [
        "a".repeat(32),
        "b".repeat(32),
        "c".repeat(32),
        "d".repeat(32),
    ];
    let bodies = [
        (gzip(&event_envelope(&ids[0], crash(&ids[0]))), Some("gzip")),
        (brotli(&event_envelope(&ids[1], crash(&ids[1]))), Some("br")),
        (
            zlib(&event_envelope(&ids[2], crash(&ids[2]))),
            Some("deflate"),
        ),
        (event_envelope(&ids[3], crash(&ids[3])), None),
    ];
    for (body, encoding) in bodies {
        let (status, body) = h.send(envelope_request(body, encoding)).await;
        assert_eq!(status, StatusCode::OK, "{encoding:?}: {body}");
    }
    assert_eq!(h.rows().await, 4);
    let incidents = h.store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1, "one error, one incident");
    assert_eq!(incidents[0].count, 4);
    let reason = h
        .refused(
            envelope_request(b"garbage".to_vec(), Some("gzip")),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(reason, "body is not valid gzip");
    let reason = h
        .refused(
            envelope_request(b"x".to_vec(), Some("zstd")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
    assert_eq!(
        reason,
        "unsupported content-encoding \"zstd\": use br, gzip or deflate"
    );
}

/// The legacy `/store/` endpoint: one event JSON, auth in the query string.
async fn store_endpoint_takes_one_event(h: Harness) {
    let id = "e".repeat(32);
    let request = Request::post(format!(
        "/api/{PROJECT}/store/?sentry_version=7&sentry_key={KEY}"
    ))
    .header("content-encoding", "gzip")
    .body(Body::from(gzip(crash(&id).to_string().as_bytes())))
    .unwrap();
    let (status, body) = h.send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], json!(id));
    assert_eq!(h.rows().await, 1);
}

/// No key, a wrong key, an unknown project, disagreeing keys: 403 with a
/// reason, nothing stored.
async fn sdk_auth_is_required(h: Harness) {
    let body = || event_envelope(&"f".repeat(32), crash(&"f".repeat(32)));
    let no_key = Request::post(format!("/api/{PROJECT}/envelope/"))
        .body(Body::from(body()))
        .unwrap();
    assert_eq!(
        h.refused(no_key, StatusCode::FORBIDDEN).await,
        "missing sentry_key: send X-Sentry-Auth or ?sentry_key="
    );
    let wrong = Request::post(format!("/api/{PROJECT}/envelope/"))
        .header("x-sentry-auth", "Sentry sentry_key=0000000000000000")
        .body(Body::from(body()))
        .unwrap();
    assert_eq!(
        h.refused(wrong, StatusCode::FORBIDDEN).await,
        "unknown sentry_key for project 42"
    );
    let unknown = Request::post("/api/7/envelope/")
        .header("x-sentry-auth", auth())
        .body(Body::from(body()))
        .unwrap();
    assert_eq!(
        h.refused(unknown, StatusCode::FORBIDDEN).await,
        "unknown project 7"
    );
    let conflicting = Request::post(format!("/api/{PROJECT}/envelope/?sentry_key=other"))
        .header("x-sentry-auth", auth())
        .body(Body::from(body()))
        .unwrap();
    assert_eq!(
        h.refused(conflicting, StatusCode::FORBIDDEN).await,
        "conflicting sentry_key values"
    );
}

/// Too large on the wire, once inflated, or as one event item: 413.
async fn oversized_bodies_are_413(h: Harness) {
    let big = json!({"message": "x".repeat(100 * 1024)});
    let reason = h
        .refused(
            envelope_request(event_envelope(&"1".repeat(32), big.clone()), None),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_eq!(reason, "body exceeds the limit of 65536 bytes");
    let bomb = gzip(&event_envelope(&"2".repeat(32), big));
    assert!(bomb.len() < 64 * 1024);
    h.refused(
        envelope_request(bomb, Some("gzip")),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let item = json!({"message": "y".repeat(20 * 1024)});
    let reason = h
        .refused(
            envelope_request(event_envelope(&"3".repeat(32), item), None),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_eq!(reason, "body exceeds the limit of 16384 bytes");
    let hook = vec![b' '; 300 * 1024];
    let signature = sign_hex(GITHUB_SECRET.as_bytes(), &hook);
    h.refused(
        github_hook(hook, Some(format!("sha256={signature}")), "push", "big"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

/// Broken framing and broken JSON: 400 with the reason.
async fn malformed_bodies_are_400(h: Harness) {
    let reason = h
        .refused(
            envelope_request(b"not json\n".to_vec(), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(
        reason,
        "malformed envelope: envelope header is not a json object"
    );
    let short = b"{}\n{\"type\":\"event\",\"length\":100}\n{}\n".to_vec();
    let reason = h
        .refused(envelope_request(short, None), StatusCode::BAD_REQUEST)
        .await;
    assert!(reason.starts_with("malformed envelope: item 0"), "{reason}");
    let bad_item = b"{}\n{\"type\":\"event\"}\n[1,2]\n".to_vec();
    let reason = h
        .refused(envelope_request(bad_item, None), StatusCode::BAD_REQUEST)
        .await;
    assert!(reason.starts_with("malformed json: event item"), "{reason}");
    let store = Request::post(format!("/api/{PROJECT}/store/"))
        .header("x-sentry-auth", auth())
        .body(Body::from("{\"event_id\":"))
        .unwrap();
    h.refused(store, StatusCode::BAD_REQUEST).await;
    let body = b"{not json".to_vec();
    let signature = sign_hex(SENTRY_SECRET.as_bytes(), &body);
    let reason = h
        .refused(
            sentry_hook(body, Some(signature), Some(now()), "bad-json"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(reason.starts_with("malformed json"), "{reason}");
}

/// The same event id twice (an SDK retry): one row, one count, both 200.
async fn repeated_event_is_a_no_op(h: Harness) {
    let id = "9".repeat(32);
    for _ in 0..2 {
        let (status, _) = h
            .send(envelope_request(event_envelope(&id, crash(&id)), None))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(h.rows().await, 1);
    assert_eq!(h.store.list_incidents(10).await.unwrap()[0].count, 1);
    let text = h.metrics.render(&Default::default());
    assert!(
        text.contains(
            "suture_signals_total{result=\"deduplicated\",source=\"sentry_sdk\",reason=\"\"} 1"
        ),
        "{text}"
    );
}

/// 200 occurrences of one error sent concurrently: one incident, one job.
async fn storm_is_one_incident(h: Harness) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let router = h.router.clone();
        let id = format!("{i:032x}");
        tasks.push(tokio::spawn(async move {
            router
                .oneshot(envelope_request(event_envelope(&id, crash(&id)), None))
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let incidents = h.store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].count, 200);
    assert_eq!(
        h.store.job_counts().await.unwrap(),
        [("queued".to_owned(), 1)]
    );
}

/// A session-only envelope is answered 200 and stores nothing.
async fn envelope_without_event_is_acknowledged_not_stored(h: Harness) {
    let body = b"{\"sent_at\":\"2024-01-01T00:00:00Z\"}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n"
        .to_vec();
    let (status, _) = h.send(envelope_request(body, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.rows().await, 0);
}

const SENTRY_FIXTURES: [&str; 7] = [
    "sentry-integration/issue.created.json",
    "sentry-integration/issue.resolved.json",
    "sentry-integration/error.created.json",
    "sentry-integration/event_alert.triggered.json",
    "sentry-integration/event_alert.triggered.python.json",
    "sentry-integration/event_alert.triggered.node.json",
    "sentry-integration/comment.created.json",
];

/// Every Sentry integration fixture, signed with the client secret, is
/// accepted; a redelivery (same Request-ID) is a no-op; error events join
/// the incident of their upstream issue.
async fn sentry_webhook_fixtures(h: Harness) {
    for (idx, name) in SENTRY_FIXTURES.iter().enumerate() {
        let body = fixture(name);
        let signature = sign_hex(SENTRY_SECRET.as_bytes(), &body);
        let (status, reply) = h
            .send(sentry_hook(
                body,
                Some(signature),
                Some(now()),
                &format!("req-{idx}"),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {reply}");
        assert_eq!(reply["status"], "accepted", "{name}");
    }
    assert_eq!(h.rows().await, SENTRY_FIXTURES.len() as i64);
    let body = fixture(SENTRY_FIXTURES[0]);
    let signature = sign_hex(SENTRY_SECRET.as_bytes(), &body);
    let (status, reply) = h
        .send(sentry_hook(body, Some(signature), Some(now()), "req-0"))
        .await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert_eq!(h.rows().await, SENTRY_FIXTURES.len() as i64);
    let incidents = h.store.list_incidents(100).await.unwrap();
    assert!(
        incidents
            .iter()
            .all(|i| i.fingerprint.starts_with("sentry-issue:")),
        "{incidents:?}"
    );
    let messages = timeline_messages(&h, &incidents).await;
    for expected in [
        "sentry_webhook issue.created",
        "sentry_webhook issue.resolved",
        "sentry_webhook comment.created",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected} not on a timeline: {messages:?}"
        );
    }
}

/// Every timeline message of `incidents`.
async fn timeline_messages(h: &Harness, incidents: &[store::Incident]) -> Vec<String> {
    let mut messages = Vec::new();
    for incident in incidents {
        messages.extend(
            h.store
                .timeline(incident.id)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.message),
        );
    }
    messages
}

/// Tampered body, missing, malformed, wrong-secret signatures and stale
/// timestamps are 401 and store nothing.
async fn sentry_webhook_bad_signatures(h: Harness) {
    let body = fixture("sentry-integration/error.created.json");
    let good = sign_hex(SENTRY_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let cases = [
        (
            sentry_hook(tampered, Some(good.clone()), Some(now()), "t"),
            "Sentry-Hook-Signature does not match the body",
        ),
        (
            sentry_hook(body.clone(), None, Some(now()), "m"),
            "missing Sentry-Hook-Signature",
        ),
        (
            sentry_hook(body.clone(), Some("xyz".into()), Some(now()), "x"),
            "malformed Sentry-Hook-Signature: expected hex",
        ),
        (
            sentry_hook(
                body.clone(),
                Some(sign_hex(b"wrong", &body)),
                Some(now()),
                "w",
            ),
            "Sentry-Hook-Signature does not match the body",
        ),
        (
            sentry_hook(
                body.clone(),
                Some(good.clone()),
                Some((chrono::Utc::now().timestamp() - 3600).to_string()),
                "s",
            ),
            "stale Sentry-Hook-Timestamp: outside the replay window",
        ),
        (
            sentry_hook(body.clone(), Some(good), None, "n"),
            "missing Sentry-Hook-Timestamp",
        ),
    ];
    for (request, reason) in cases {
        assert_eq!(h.refused(request, StatusCode::UNAUTHORIZED).await, reason);
    }
    assert_eq!(h.rows().await, 0);
}

const PAGERDUTY_FIXTURES: [&str; 3] = [
    "pagerduty/v3.incident.triggered.json",
    "pagerduty/v3.incident.priority_updated.json",
    "pagerduty/v3.incident.resolved.json",
];

/// PagerDuty fixtures signed with two secrets (rotation) are accepted and
/// grouped by PagerDuty incident; redelivery by X-Webhook-Id is a no-op.
async fn pagerduty_webhook_fixtures(h: Harness) {
    for (idx, name) in PAGERDUTY_FIXTURES.iter().enumerate() {
        let body = fixture(name);
        let signature = format!(
            "v1={},v1={}",
            sign_hex(b"some-new-secret", &body),
            sign_hex(PAGERDUTY_SECRET.as_bytes(), &body)
        );
        let (status, reply) = h
            .send(pagerduty_hook(body, Some(signature), &format!("wh-{idx}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {reply}");
    }
    let body = fixture(PAGERDUTY_FIXTURES[0]);
    let signature = format!("v1={}", sign_hex(PAGERDUTY_SECRET.as_bytes(), &body));
    let (_, reply) = h.send(pagerduty_hook(body, Some(signature), "wh-0")).await;
    assert_eq!(reply["status"], "duplicate");
    assert_eq!(h.rows().await, 3);
    let incidents = h.store.list_incidents(10).await.unwrap();
    assert!(
        incidents
            .iter()
            .all(|i| i.fingerprint.starts_with("pagerduty:"))
    );
    let messages = timeline_messages(&h, &incidents).await;
    assert!(
        messages.iter().any(|m| m == "pagerduty incident.resolved"),
        "{messages:?}"
    );
    // An incident without an event has nothing to diagnose yet: no job.
    assert!(h.store.job_counts().await.unwrap().is_empty());
}

/// Tampered, missing, malformed and wrong-secret PagerDuty signatures: 401.
async fn pagerduty_webhook_bad_signatures(h: Harness) {
    let body = fixture(PAGERDUTY_FIXTURES[0]);
    let good = format!("v1={}", sign_hex(PAGERDUTY_SECRET.as_bytes(), &body));
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    let cases = [
        (
            pagerduty_hook(tampered, Some(good), "1"),
            "X-PagerDuty-Signature does not match the body",
        ),
        (
            pagerduty_hook(body.clone(), None, "2"),
            "missing X-PagerDuty-Signature",
        ),
        (
            pagerduty_hook(body.clone(), Some("sha256=00".into()), "3"),
            "malformed X-PagerDuty-Signature: expected v1=<hex>",
        ),
        (
            pagerduty_hook(
                body.clone(),
                Some(format!("v1={}", sign_hex(b"wrong", &body))),
                "4",
            ),
            "X-PagerDuty-Signature does not match the body",
        ),
    ];
    for (request, reason) in cases {
        assert_eq!(h.refused(request, StatusCode::UNAUTHORIZED).await, reason);
    }
}

const GITHUB_FIXTURES: [(&str, &str); 6] = [
    ("github/pull_request.closed.payload.json", "pull_request"),
    ("github/pull_request.opened.payload.json", "pull_request"),
    (
        "github/pull_request_review.submitted.payload.json",
        "pull_request_review",
    ),
    ("github/issue_comment.created.payload.json", "issue_comment"),
    ("github/installation.created.payload.json", "installation"),
    ("github/push.event.payload.json", "push"),
];

/// GitHub fixtures signed with the webhook secret are stored (kind =
/// event.action), open no incident, and dedupe on X-GitHub-Delivery.
async fn github_webhook_fixtures(h: Harness) {
    for (idx, (name, event)) in GITHUB_FIXTURES.iter().enumerate() {
        let body = fixture(name);
        let signature = format!("sha256={}", sign_hex(GITHUB_SECRET.as_bytes(), &body));
        let (status, reply) = h
            .send(github_hook(
                body,
                Some(signature),
                event,
                &format!("d-{idx}"),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{name}: {reply}");
    }
    let body = fixture(GITHUB_FIXTURES[0].0);
    let signature = format!("sha256={}", sign_hex(GITHUB_SECRET.as_bytes(), &body));
    let (_, reply) = h
        .send(github_hook(body, Some(signature), "pull_request", "d-0"))
        .await;
    assert_eq!(reply["status"], "duplicate");
    assert_eq!(h.rows().await, GITHUB_FIXTURES.len() as i64);
    assert!(h.store.list_incidents(10).await.unwrap().is_empty());
}

/// Tampered, missing, malformed and wrong-secret GitHub signatures: 401.
async fn github_webhook_bad_signatures(h: Harness) {
    let body = fixture(GITHUB_FIXTURES[0].0);
    let good = format!("sha256={}", sign_hex(GITHUB_SECRET.as_bytes(), &body));
    let mut tampered = body.clone();
    tampered[3] ^= 1;
    let cases = [
        (
            github_hook(tampered, Some(good.clone()), "pull_request", "1"),
            "X-Hub-Signature-256 does not match the body",
        ),
        (
            github_hook(body.clone(), None, "pull_request", "2"),
            "missing X-Hub-Signature-256",
        ),
        (
            github_hook(
                body.clone(),
                Some(good.replace("sha256=", "sha1=")),
                "pull_request",
                "3",
            ),
            "malformed X-Hub-Signature-256: expected sha256=<hex>",
        ),
        (
            github_hook(
                body.clone(),
                Some(format!("sha256={}", sign_hex(b"wrong", &body))),
                "pull_request",
                "4",
            ),
            "X-Hub-Signature-256 does not match the body",
        ),
    ];
    for (request, reason) in cases {
        assert_eq!(h.refused(request, StatusCode::UNAUTHORIZED).await, reason);
    }
}

/// Without a secret a webhook cannot be verified, so it is refused.
async fn unconfigured_webhooks_are_refused(h: Harness) {
    let h = Harness::with_config(h.store.clone(), |config| {
        config.secrets = Default::default()
    });
    let body = fixture(GITHUB_FIXTURES[0].0);
    let reason = h
        .refused(github_hook(body, None, "push", "x"), StatusCode::FORBIDDEN)
        .await;
    assert_eq!(
        reason,
        "github webhook is not configured: set SUTURE_GITHUB_WEBHOOK_SECRET"
    );
}

/// The read API lists incidents and shows one with its job and timeline;
/// with a token configured it needs the bearer.
async fn incidents_api(h: Harness) {
    let id = "7".repeat(32);
    h.send(envelope_request(event_envelope(&id, crash(&id)), None))
        .await;
    let (status, list) = h
        .send(Request::get("/api/incidents").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let incident = &list["incidents"][0];
    assert_eq!(incident["state"], "new");
    assert_eq!(incident["title"], "ZeroDivisionError: division by zero");
    assert_eq!(incident["count"], 1);
    let (status, detail) = h
        .send(
            Request::get(format!("/api/incidents/{}", incident["id"]))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["jobs"][0]["state"], "queued");
    assert_eq!(detail["diagnosis"], Value::Null);
    let kinds: Vec<_> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("opened"), json!("job_queued")]);
    let (status, body) = h
        .send(
            Request::get("/api/incidents/999999")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"error": "not found"}))
    );

    let h = Harness::with_config(h.store.clone(), |config| {
        config.secrets.api_token = Some("t0ken".into())
    });
    let (status, _) = h
        .send(Request::get("/api/incidents").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::get("/api/incidents")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(request).await.0, StatusCode::OK);
}

/// Liveness, readiness and the Prometheus text with the families promised.
async fn health_readiness_and_metrics(h: Harness) {
    assert_eq!(
        h.send(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        h.send(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::OK
    );
    let id = "8".repeat(32);
    h.send(envelope_request(event_envelope(&id, crash(&id)), None))
        .await;
    h.send(Request::get("/nope").body(Body::empty()).unwrap())
        .await;
    let (status, text) = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for line in [
        "suture_http_requests_total{route=\"/api/{project_id}/envelope/\",status=\"200\"} 1",
        "suture_signals_total{result=\"accepted\",source=\"sentry_sdk\",reason=\"\"} 1",
        "suture_incidents{state=\"new\"} 1",
        "suture_jobs_queued 1",
        "suture_ingest_queue_depth 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    let (status, body) = h
        .send(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method not allowed"})
        )
    );
}

/// Bodies draw on the memory budget until committed: one that does not fit
/// is 503 with Retry-After and leaves no row; the budget comes back after
/// each request.
async fn memory_budget_sheds_load(h: Harness) {
    let h = Harness::with_config(h.store.clone(), |config| {
        config.limits.max_inflight_bytes = 8 * 1024
    });
    let big = json!({"message": "z".repeat(12 * 1024)});
    let reason = h
        .refused(
            envelope_request(event_envelope(&"5".repeat(32), big), None),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    assert_eq!(reason, "too many bytes in flight: retry shortly");
    for i in 0..20 {
        let id = format!("{i:032x}");
        let (status, body) = h
            .send(envelope_request(event_envelope(&id, crash(&id)), None))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(h.rows().await, 20);
}

/// A request body sent in chunks that records whether anything past the
/// first chunk was asked for.
struct Chunks {
    chunks: VecDeque<Bytes>,
    sent: usize,
    read_past_first: Arc<AtomicBool>,
}

impl Chunks {
    fn body(chunks: Vec<Vec<u8>>) -> (Body, Arc<AtomicBool>) {
        let read_past_first = Arc::new(AtomicBool::new(false));
        let body = Chunks {
            chunks: chunks.into_iter().map(Bytes::from).collect(),
            sent: 0,
            read_past_first: read_past_first.clone(),
        };
        (Body::new(body), read_past_first)
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.sent >= 1 {
            self.read_past_first.store(true, Ordering::SeqCst);
        }
        self.sent += 1;
        Poll::Ready(
            self.chunks
                .pop_front()
                .map(|chunk| Ok(http_body::Frame::data(chunk))),
        )
    }
}

/// A key that is wrong (or a project that is unknown) is refused before a
/// byte of the body is read, whatever Content-Length it declares.
async fn a_wrong_key_is_refused_before_the_body_is_read(h: Harness) {
    for (path, key) in [
        (format!("/api/{PROJECT}/envelope/"), "0000"),
        (format!("/api/{PROJECT}/store/"), "0000"),
        ("/api/7/envelope/".to_owned(), KEY),
    ] {
        let (body, read) = Chunks::body(vec![b"{}".to_vec(), b"\n".to_vec()]);
        let request = Request::post(&path)
            .header("x-sentry-auth", format!("Sentry sentry_key={key}"))
            .header("content-length", "20971520")
            .body(body)
            .unwrap();
        let (status, _) = h.send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!read.load(Ordering::SeqCst), "{path}: the body was read");
    }
}

/// Without a key in the headers, only the envelope's first line is read
/// (and decompressed) for its `dsn`: a wrong one stops there.
async fn the_dsn_in_the_envelope_is_checked_after_its_first_line(h: Harness) {
    let header = |key: &str| format!("{{\"dsn\":\"https://{key}@suture.example/{PROJECT}\"}}\n");
    let rest = event_envelope(&"e".repeat(32), crash(&"e".repeat(32)))
        .split(|&b| b == b'\n')
        .skip(1)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let (body, read) = Chunks::body(vec![header("wrong").into_bytes(), rest.clone()]);
    let request = Request::post(format!("/api/{PROJECT}/envelope/"))
        .body(body)
        .unwrap();
    let (status, reply) = h.send(request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(!read.load(Ordering::SeqCst), "read past the first line");

    // The right key, compressed, in pieces: accepted.
    let whole = gzip(&[header(KEY).into_bytes(), rest].concat());
    let pieces = whole.chunks(7).map(<[u8]>::to_vec).collect();
    let (body, _) = Chunks::body(pieces);
    let request = Request::post(format!("/api/{PROJECT}/envelope/"))
        .header("content-encoding", "gzip")
        .body(body)
        .unwrap();
    let (status, reply) = h.send(request).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(h.rows().await, 1);

    // A first line past the header cap is refused without finding a key.
    let h = Harness::with_config(h.store.clone(), |config| {
        config.limits.max_envelope_header_bytes = 256
    });
    let long = format!("{{\"pad\":\"{}\"}}\n{{}}\n", "p".repeat(1000));
    let reason = h
        .refused(
            Request::post(format!("/api/{PROJECT}/envelope/"))
                .body(Body::from(long))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_eq!(
        reason,
        "envelope header line is longer than 256 bytes (limits.max_envelope_header_bytes)"
    );
}

/// Too many items and too long header lines are 413, nesting past the
/// depth cap is 400; each error names its cap, and nothing is stored.
async fn envelope_caps_are_refused_naming_the_cap(h: Harness) {
    let h = Harness::with_config(h.store.clone(), |config| {
        config.limits.max_envelope_items = 10;
        config.limits.max_envelope_header_bytes = 512;
        config.limits.max_json_depth = 16;
    });
    let items = format!("{{}}\n{}", "{\"type\":\"session\"}\n{}\n".repeat(11));
    let reason = h
        .refused(
            envelope_request(items.into_bytes(), None),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert_eq!(
        reason,
        "malformed envelope: envelope has more than 10 items (limits.max_envelope_items)"
    );
    let long = format!(
        "{{}}\n{{\"type\":\"a\",\"pad\":\"{}\"}}\n{{}}\n",
        "p".repeat(600)
    );
    let reason = h
        .refused(
            envelope_request(long.into_bytes(), None),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
        .await;
    assert!(
        reason.ends_with("more than 512 (limits.max_envelope_header_bytes)"),
        "{reason}"
    );
    let deep = json!({"message": "m", "extra": {"x": serde_json::from_str::<Value>(&format!("{}{}", "[".repeat(20), "]".repeat(20))).unwrap()}});
    let reason = h
        .refused(
            envelope_request(event_envelope(&"d".repeat(32), deep.clone()), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        reason.starts_with("json nests deeper than 16 levels")
            && reason.ends_with("limits.max_json_depth)"),
        "{reason}"
    );
    let store = Request::post(format!("/api/{PROJECT}/store/"))
        .header("x-sentry-auth", auth())
        .body(Body::from(deep.to_string()))
        .unwrap();
    h.refused(store, StatusCode::BAD_REQUEST).await;
    let header = format!("{}{}\n", "[".repeat(40), "]".repeat(40));
    let reason = h
        .refused(
            envelope_request(header.into_bytes(), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(reason.contains("limits.max_json_depth"), "{reason}");
    assert!(h.metrics.render(&Default::default()).contains(
        "suture_signals_total{result=\"rejected\",source=\"sentry_sdk\",reason=\"too_many_items\"} 1"
    ));
}

/// Past `limits.events_per_minute_per_project`, an event is 429 with
/// `Retry-After` and `X-Sentry-Rate-Limits` as Relay sends them, counted as
/// rate_limited, and not stored.
async fn rate_limited_events_get_relay_headers_and_are_not_stored(h: Harness) {
    let h = Harness::with_config(h.store.clone(), |config| {
        config.limits.events_per_minute_per_project = 2
    });
    for i in 0..2 {
        let id = format!("{i:032x}");
        let (status, reply) = h
            .send(envelope_request(event_envelope(&id, crash(&id)), None))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
    }
    let id = "7".repeat(32);
    let (status, headers, reply) = h
        .send_full(envelope_request(event_envelope(&id, crash(&id)), None))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        headers["x-sentry-rate-limits"].to_str().unwrap(),
        format!("{retry_after}:error;default:project")
    );
    let store = Request::post(format!("/api/{PROJECT}/store/?sentry_key={KEY}"))
        .body(Body::from(crash(&"8".repeat(32)).to_string()))
        .unwrap();
    assert_eq!(h.send(store).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.rows().await, 2);
    let text = h.metrics.render(&Default::default());
    assert!(
        text.contains(
            "suture_signals_total{result=\"rate_limited\",source=\"sentry_sdk\",reason=\"\"} 2"
        ),
        "{text}"
    );
}

/// A signed body sent again is a duplicate however its unsigned headers
/// change: GitHub under a new X-GitHub-Delivery, Sentry with a fresh
/// timestamp and request id, PagerDuty under a new X-Webhook-Id.
async fn replayed_webhooks_are_duplicates(h: Harness) {
    let body = fixture(GITHUB_FIXTURES[3].0);
    let signature = format!("sha256={}", sign_hex(GITHUB_SECRET.as_bytes(), &body));
    for (delivery, expected) in [("first", "accepted"), ("replayed", "duplicate")] {
        let (status, reply) = h
            .send(github_hook(
                body.clone(),
                Some(signature.clone()),
                "issue_comment",
                delivery,
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], expected);
    }
    let body = serde_json::to_vec(&json!({
        "action": "resolved",
        "installation": {"uuid": "i-1"},
        "data": {"issue": {"id": "4711", "title": "E", "lastSeen": "2026-01-01T00:00:00Z", "project": {"id": "2"}}}
    }))
    .unwrap();
    let signature = sign_hex(SENTRY_SECRET.as_bytes(), &body);
    for (request_id, expected) in [("r-1", "accepted"), ("r-2", "duplicate")] {
        let (status, reply) = h
            .send(sentry_hook(
                body.clone(),
                Some(signature.clone()),
                Some(now()),
                request_id,
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], expected);
    }
    let body = fixture(PAGERDUTY_FIXTURES[0]);
    let signature = format!("v1={}", sign_hex(PAGERDUTY_SECRET.as_bytes(), &body));
    for (webhook_id, expected) in [("w-1", "accepted"), ("w-2", "duplicate")] {
        let (status, reply) = h
            .send(pagerduty_hook(
                body.clone(),
                Some(signature.clone()),
                webhook_id,
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], expected);
    }
    assert_eq!(h.rows().await, 3);
}

/// `GET /api/status` and `suture_paused` show what the kill switch holds,
/// read from the store at each request; the status needs the bearer when
/// a token is configured.
async fn status_api_and_gauge_show_the_pauses(h: Harness) {
    let h = Harness::with_config(h.store.clone(), |config| {
        for name in ["app", "billing"] {
            config.repos.push(domain::config::RepoConfig {
                name: name.into(),
                ..Default::default()
            });
        }
    });
    let status = || async {
        let (code, body) = h
            .send(Request::get("/api/status").body(Body::empty()).unwrap())
            .await;
        assert_eq!(code, StatusCode::OK);
        body
    };
    let metrics = || async {
        let (_, body) = h
            .send(Request::get("/metrics").body(Body::empty()).unwrap())
            .await;
        body.as_str().unwrap().to_owned()
    };
    let body = status().await;
    assert_eq!(body["paused"], json!({"global": null, "repos": {}}));
    assert_eq!(body["repos"][0], json!({"name": "app", "paused": false}));
    let text = metrics().await;
    for line in [
        "suture_paused{repo=\"*\"} 0",
        "suture_paused{repo=\"app\"} 0",
        "suture_paused{repo=\"billing\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    h.store
        .pause(Some("billing"), "bad deploy", Some("alice"))
        .await
        .unwrap();
    let body = status().await;
    assert_eq!(body["paused"]["global"], Value::Null);
    let billing = &body["paused"]["repos"]["billing"];
    assert_eq!(billing["reason"], "bad deploy");
    assert_eq!(billing["by"], "alice");
    assert!(
        billing["since"]
            .as_str()
            .is_some_and(|since| since.ends_with('Z'))
    );
    assert_eq!(body["repos"][1], json!({"name": "billing", "paused": true}));
    assert!(
        metrics()
            .await
            .contains("suture_paused{repo=\"billing\"} 1")
    );

    h.store.pause(None, "incident review", None).await.unwrap();
    let body = status().await;
    assert_eq!(body["paused"]["global"]["reason"], "incident review");
    assert_eq!(body["repos"][0], json!({"name": "app", "paused": true}));
    let text = metrics().await;
    assert!(text.contains("suture_paused{repo=\"*\"} 1"));
    // The gauge is per repository's own pause; `*` carries the global one.
    assert!(text.contains("suture_paused{repo=\"app\"} 0"));

    let h = Harness::with_config(h.store.clone(), |config| {
        config.secrets.api_token = Some("t0ken".into())
    });
    let (code, _) = h
        .send(Request::get("/api/status").body(Body::empty()).unwrap())
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}
