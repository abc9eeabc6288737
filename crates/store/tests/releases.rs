//! Releases as the store learns them from events, on both databases: each
//! project's releases with their first and last sighting and counts, the
//! release an incident arrived with, and the release deployed before it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use store::{NewSignal, ReleaseStats, SignalOutcome, Store};

use store::on_both;

on_both!(
    releases_are_aggregates_of_their_events,
    the_release_before_is_the_one_first_seen_last_before,
    an_incident_arrives_with_the_release_of_its_earliest_event,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// An SDK event of `fingerprint` from `project` on `release`, received
/// `seconds` after [`t0`].
fn event(
    key: &str,
    project: &str,
    fingerprint: &str,
    release: Option<&str>,
    seconds: i64,
) -> NewSignal {
    NewSignal {
        source: "sentry_sdk".into(),
        dedup_key: key.into(),
        project: Some(project.into()),
        kind: "event".into(),
        title: format!("{fingerprint}: boom"),
        fingerprint: Some(fingerprint.into()),
        upstream_id: None,
        has_event: true,
        release: release.map(str::to_owned),
        payload: format!(r#"{{"event_id":"{key}"}}"#),
        received_at: t0() + Duration::seconds(seconds),
    }
}

fn stats(release: &str, first: i64, last: i64, events: i64) -> ReleaseStats {
    ReleaseStats {
        release: release.into(),
        first_seen: t0() + Duration::seconds(first),
        last_seen: t0() + Duration::seconds(last),
        events,
    }
}

/// A project's releases are its events' releases, oldest first, with the
/// first and last time each was seen and how many events named it; other
/// projects, events without a release, deliveries without an event and
/// repeats count for nothing; `limit` keeps the newest.
async fn releases_are_aggregates_of_their_events(store: Store) {
    store
        .commit_signals(&[
            event("a1", "1", "A", Some("shop@1.0"), 0),
            event("a2", "1", "A", Some("shop@1.0"), 10),
            event("a3", "1", "A", Some("shop@1.1"), 30),
            event("b1", "1", "B", Some("shop@1.1"), 20),
            event("u1", "1", "A", None, 40),
            event("o1", "2", "C", Some("other@9"), 5),
        ])
        .await
        .unwrap();
    let mut webhook = event("w1", "1", "A", Some("shop@2.0"), 50);
    webhook.has_event = false;
    webhook.source = "sentry_webhook".into();
    let repeat = event("a2", "1", "A", Some("shop@1.0"), 60);
    let outcomes = store.commit_signals(&[webhook, repeat]).await.unwrap();
    assert_eq!(outcomes[1], SignalOutcome::Duplicate);

    assert_eq!(
        store.releases("1", 100).await.unwrap(),
        vec![stats("shop@1.0", 0, 10, 2), stats("shop@1.1", 20, 30, 2)]
    );
    assert_eq!(
        store.releases("1", 1).await.unwrap(),
        vec![stats("shop@1.1", 20, 30, 2)]
    );
    assert_eq!(
        store.releases("2", 100).await.unwrap(),
        vec![stats("other@9", 5, 5, 1)]
    );
    assert_eq!(store.releases("3", 100).await.unwrap(), vec![]);
}

/// The release before R is the project's release whose first event came
/// last before R's first event, whatever the names sort as and however
/// late older releases keep reporting; the first release has none, nor
/// has a release the project never saw.
async fn the_release_before_is_the_one_first_seen_last_before(store: Store) {
    store
        .commit_signals(&[
            event("a", "1", "A", Some("shop@1.9"), 0),
            event("b", "1", "A", Some("shop@1.10"), 10),
            event("c", "1", "A", Some("shop@1.9"), 100),
            event("d", "1", "B", Some("shop@1.11"), 20),
            event("e", "2", "C", Some("shop@1.95"), 15),
        ])
        .await
        .unwrap();
    let before = |release: &'static str| {
        let store = store.clone();
        async move { store.release_before("1", release).await.unwrap() }
    };
    assert_eq!(before("shop@1.11").await.as_deref(), Some("shop@1.10"));
    assert_eq!(before("shop@1.10").await.as_deref(), Some("shop@1.9"));
    assert_eq!(before("shop@1.9").await, None);
    assert_eq!(before("shop@3.0").await, None);
    assert_eq!(
        store.release_before("2", "shop@1.95").await.unwrap(),
        None,
        "another project's releases are not this one's"
    );
}

/// An incident's first release is the release of its earliest event,
/// even when a later event is on an older release or came in the same
/// batch first; an incident whose earliest event names none has none.
async fn an_incident_arrives_with_the_release_of_its_earliest_event(store: Store) {
    let outcomes = store
        .commit_signals(&[
            event("a2", "1", "A", Some("shop@1.0"), 10),
            event("a1", "1", "A", Some("shop@1.1"), 5),
            event("b1", "1", "B", None, 0),
            event("b2", "1", "B", Some("shop@1.1"), 20),
        ])
        .await
        .unwrap();
    let incident = |n: usize| match outcomes[n] {
        SignalOutcome::Accepted {
            incident_id: Some(id),
            ..
        } => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        store.first_release(incident(0)).await.unwrap().as_deref(),
        Some("shop@1.1")
    );
    assert_eq!(store.first_release(incident(2)).await.unwrap(), None);
    assert_eq!(store.first_release(9999).await.unwrap(), None);
}
