//! The Sentry and PagerDuty resolve calls against their fakes, which check
//! each request and answer against the services' OpenAPI descriptions.

use std::time::Duration;

use fakes::pagerduty::{self as pd, FakePagerDuty};
use fakes::sentry::{self as sentry_fake, FakeSentry, Fault};
use forge::upstream::{PagerDutyClient, PagerDutyConfig, SentryClient, SentryConfig};
use forge::{ForgeError, RetryPolicy, SecretString};
use tokio::time::Instant;

use crate::support::policy;

fn sentry(fake: &FakeSentry, retry: RetryPolicy) -> SentryClient {
    let mut config = SentryConfig::new("acme", SecretString::from("sntrys_secret".to_string()));
    config.base_url = fake.base_url();
    config.retry = retry;
    SentryClient::new(config).unwrap()
}

fn pagerduty(fake: &FakePagerDuty) -> PagerDutyClient {
    let mut config = PagerDutyConfig::new(
        SecretString::from("pd_secret".to_string()),
        "oncall@example.com",
    );
    config.base_url = fake.base_url();
    config.retry = policy();
    PagerDutyClient::new(config).unwrap()
}

/// Resolving sends `{"status":"resolved"}` with the bearer token to the
/// organisation's issue (trailing slash and all); resolving in a commit
/// says which.
#[tokio::test]
async fn resolves_a_sentry_issue() {
    let fake = FakeSentry::start("acme", "sntrys_secret", &["42", "43"]).await;
    let client = sentry(&fake, policy());

    client.resolve_issue("42").await.unwrap();
    client
        .resolve_issue_in_commit(
            "43",
            "acme/shop",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .await
        .unwrap();

    let issues = fake.issues();
    assert_eq!(issues[0].status, "resolved");
    assert_eq!(issues[1].status, "resolved");
    assert_eq!(
        issues[1].status_details["inCommit"]["repository"],
        "acme/shop"
    );
    let request = &fake.requests()[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/api/0/organizations/acme/issues/42/");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sntrys_secret")
    );
    assert_eq!(request.body, serde_json::json!({ "status": "resolved" }));
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A 429 with `Retry-After: 30` and a hung request delay the resolve by
/// that long and the client's timeout; it then goes through once.
#[tokio::test(start_paused = true)]
async fn sentry_rate_limits_and_hangs_delay_the_resolve() {
    let fake = FakeSentry::start("acme", "sntrys_secret", &["42"]).await;
    fake.inject("PUT", Fault::retry_after(429, 30));
    fake.inject("PUT", Fault::hang());
    let client = sentry(&fake, policy());
    let start = Instant::now();

    client.resolve_issue("42").await.unwrap();

    assert!(
        start.elapsed() >= Duration::from_secs(30 + 10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(fake.issues()[0].status, "resolved");
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Persistent 502s give up after the budget, with the attempts counted;
/// an unknown issue is a plain 404 error, not retried.
#[tokio::test(start_paused = true)]
async fn sentry_gives_up_and_reports_unknown_issues() {
    let fake = FakeSentry::start("acme", "sntrys_secret", &["42"]).await;
    for _ in 0..3 {
        fake.inject("PUT", Fault::status(502));
    }
    let client = sentry(
        &fake,
        RetryPolicy {
            max_attempts: 3,
            ..policy()
        },
    );

    let error = client.resolve_issue("42").await.unwrap_err();
    assert!(
        matches!(error, ForgeError::GaveUp { attempts: 3, .. }),
        "{error}"
    );
    let error = client.resolve_issue("404404").await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(fake.requests().len(), 4);
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// An event's issue is its `groupID`; an event Sentry does not know is
/// `None`; the UUID form of an id is sent as Sentry's 32 hex digits, and
/// an id that is neither is refused without a request.
#[tokio::test]
async fn finds_the_issue_of_an_event() {
    let fake = FakeSentry::start("acme", "sntrys_secret", &["42"]).await;
    let event = "0123456789abcdef0123456789abcdef";
    fake.add_event("shop", event, "42");
    let client = sentry(&fake, policy());

    assert_eq!(
        client
            .issue_for_event("shop", event)
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    assert_eq!(
        client
            .issue_for_event("shop", "01234567-89AB-CDEF-0123-456789ABCDEF")
            .await
            .unwrap()
            .as_deref(),
        Some("42")
    );
    assert_eq!(
        client
            .issue_for_event("shop", &"f".repeat(32))
            .await
            .unwrap(),
        None
    );
    assert_eq!(client.issue_for_event("web", event).await.unwrap(), None);
    let error = client.issue_for_event("shop", "nope").await.unwrap_err();
    assert!(matches!(error, ForgeError::Invalid { .. }), "{error}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!("/api/0/projects/acme/shop/events/{event}/")
    );
    assert_eq!(requests[1].path, requests[0].path);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sntrys_secret")
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// The event lookup is retried like the other calls: a 429 waits its
/// `Retry-After`, a 502 backs off, then the answer comes; a 401 is an
/// error, not a missing event.
#[tokio::test(start_paused = true)]
async fn the_event_lookup_is_retried() {
    let fake = FakeSentry::start("acme", "sntrys_secret", &["42"]).await;
    let event = "0123456789abcdef0123456789abcdef";
    fake.add_event("shop", event, "42");
    fake.inject_on(
        "GET",
        sentry_fake::PROJECT_EVENT,
        Fault::retry_after(429, 20),
    );
    fake.inject_on("GET", sentry_fake::PROJECT_EVENT, Fault::status(502));
    let client = sentry(&fake, policy());
    let start = Instant::now();

    let issue = client.issue_for_event("shop", event).await.unwrap();

    assert_eq!(issue.as_deref(), Some("42"));
    assert!(
        start.elapsed() >= Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(fake.requests().len(), 3);
    let mut config = SentryConfig::new("acme", SecretString::from("wrong".to_string()));
    config.base_url = fake.base_url();
    config.retry = policy();
    let refused = SentryClient::new(config)
        .unwrap()
        .issue_for_event("shop", event)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ForgeError::Status { status: 401, .. }),
        "{refused}"
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// Resolving sends the documented body with the API key, PagerDuty's
/// versioned `Accept` and `From`; the fake checks all of them.
#[tokio::test]
async fn resolves_a_pagerduty_incident() {
    let fake = FakePagerDuty::start("pd_secret", &["PT4KHLK"]).await;
    let client = pagerduty(&fake);

    client.resolve_incident("PT4KHLK").await.unwrap();

    let incident = &fake.incidents()[0];
    assert_eq!(incident.status, "resolved");
    assert_eq!(incident.updated_by.as_deref(), Some("oncall@example.com"));
    let request = &fake.requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some("Token token=pd_secret")
    );
    assert_eq!(
        request.body,
        serde_json::json!({ "incident": { "type": "incident_reference", "status": "resolved" } })
    );
    let error = client.resolve_incident("PNOPE").await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(fake.errors(), Vec::<String>::new());
}

/// A note whose answer is lost (502 after it was added) is found on the
/// retry, not added twice; a 429 and a hang on the resolve only delay it.
#[tokio::test(start_paused = true)]
async fn pagerduty_faults_neither_duplicate_nor_lose() {
    let fake = FakePagerDuty::start("pd_secret", &["PT4KHLK"]).await;
    fake.inject("POST", pd::NOTES, Fault::status(502).after_applying());
    fake.inject("PUT", pd::INCIDENT, Fault::retry_after(429, 5));
    fake.inject("PUT", pd::INCIDENT, Fault::hang());
    let client = pagerduty(&fake);
    let start = Instant::now();

    client
        .add_note("PT4KHLK", "Fixed by acme/shop#2, held for 24 h.")
        .await
        .unwrap();
    client.resolve_incident("PT4KHLK").await.unwrap();

    assert!(
        start.elapsed() >= Duration::from_secs(1 + 5 + 10),
        "{:?}",
        start.elapsed()
    );
    let incident = &fake.incidents()[0];
    assert_eq!(incident.notes, ["Fixed by acme/shop#2, held for 24 h."]);
    assert_eq!(incident.status, "resolved");
    assert_eq!(fake.errors(), Vec::<String>::new());
}
