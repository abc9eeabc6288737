//! Rounds and their limits in the store, on both databases: admission by
//! the hourly rate and the concurrency limit, a round admitted once, the
//! end of a round freeing its slot, holding an incident back once per
//! reason, an incident's event windows, the newest release as of a time,
//! and LLM tokens per day.

use chrono::{Duration, Utc};
use serde_json::json;
use store::{
    Admission, AttemptState, IncidentState, NewFixAttempt, NewSignal, RoundLimits, SignalOutcome,
    Store,
};

use store::on_both;

on_both!(
    admission_counts_running_rounds_and_the_hour,
    holding_back_is_said_once_per_reason,
    event_windows_count_each_window,
    the_newest_release_is_as_of_a_time,
    llm_tokens_add_up_per_day,
    open_pull_requests_and_verdicts_are_counted_per_repository,
);

fn event(
    fingerprint: &str,
    key: &str,
    release: Option<&str>,
    at: chrono::DateTime<Utc>,
) -> NewSignal {
    NewSignal {
        source: "sentry_sdk".into(),
        dedup_key: key.into(),
        project: Some("1".into()),
        kind: "event".into(),
        title: format!("{fingerprint} error"),
        fingerprint: Some(fingerprint.into()),
        upstream_id: None,
        has_event: true,
        release: release.map(str::to_owned),
        payload: "{}".into(),
        received_at: at,
    }
}

async fn incident(store: &Store, fingerprint: &str) -> i64 {
    let outcomes = store
        .commit_signals(&[event(
            fingerprint,
            &format!("{fingerprint}-0"),
            None,
            Utc::now(),
        )])
        .await
        .unwrap();
    match outcomes[0] {
        SignalOutcome::Accepted {
            incident_id: Some(id),
            ..
        } => id,
        ref other => panic!("not accepted: {other:?}"),
    }
}

async fn admission_counts_running_rounds_and_the_hour(store: Store) {
    let limits = RoundLimits {
        per_hour: 2,
        concurrent: 1,
    };
    let (a, b, c) = (
        incident(&store, "a").await,
        incident(&store, "b").await,
        incident(&store, "c").await,
    );
    let admit = |id: i64| {
        let store = store.clone();
        async move {
            store
                .admit_round(id, 1, "shop", "new_release", limits)
                .await
                .unwrap()
        }
    };
    assert_eq!(admit(a).await, Admission::Admitted);
    // Asked again (a resumed job): still admitted, not counted twice.
    assert_eq!(admit(a).await, Admission::Admitted);
    assert!(matches!(
        admit(b).await,
        Admission::Held {
            limit: "max_concurrent_rounds",
            ..
        }
    ));
    store.end_round(a, 1).await.unwrap();
    assert_eq!(admit(b).await, Admission::Admitted);
    store.end_round(b, 1).await.unwrap();
    let Admission::Held { limit, retry_at } = admit(c).await else {
        panic!("a third round in the hour was admitted");
    };
    assert_eq!(limit, "max_rounds_per_hour");
    assert!(retry_at > Utc::now() + Duration::minutes(59), "{retry_at}");
    // Another repository has its own limits.
    assert_eq!(
        store
            .admit_round(c, 1, "other", "spike", limits)
            .await
            .unwrap(),
        Admission::Admitted
    );
    let c_now = store.incident(c).await.unwrap().unwrap();
    assert_eq!(c_now.trigger.as_deref(), Some("spike"));
    assert_eq!(
        store.round_trigger(c, 1).await.unwrap().as_deref(),
        Some("spike")
    );
    assert_eq!(store.round_trigger(c, 2).await.unwrap(), None);
}

async fn holding_back_is_said_once_per_reason(store: Store) {
    let id = incident(&store, "held").await;
    let learning = json!({"reason": "learning"});
    assert!(
        store
            .hold_back(id, IncidentState::Observed, &learning, "observed: learning")
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_back(id, IncidentState::Observed, &learning, "observed: learning")
            .await
            .unwrap()
    );
    let limit = json!({"limit": "max_rounds_per_hour", "trigger": "spike"});
    assert!(
        store
            .hold_back(id, IncidentState::Deferred, &limit, "deferred")
            .await
            .unwrap()
    );
    let held = store.incident(id).await.unwrap().unwrap();
    assert_eq!(held.state, IncidentState::Deferred);
    assert_eq!(held.held_back, Some(limit));
    let said = store.timeline(id).await.unwrap();
    assert_eq!(
        said.iter()
            .filter(|entry| entry.kind == "held_back")
            .count(),
        2
    );
    // A stopped incident is not held back: the table refuses the move.
    store
        .set_incident_state(id, IncidentState::Stopped, "stop", None)
        .await
        .unwrap();
    assert!(
        store
            .hold_back(id, IncidentState::Observed, &learning, "observed: learning")
            .await
            .is_err()
    );
}

async fn event_windows_count_each_window(store: Store) {
    let now = Utc::now();
    let at = |seconds: i64| now - Duration::seconds(seconds);
    let signals = vec![
        event("w", "w-1", None, at(250)),
        event("w", "w-2", None, at(150)),
        event("w", "w-3", None, at(50)),
        event("w", "w-4", None, at(40)),
        event("w", "w-5", None, at(0)),
    ];
    let outcomes = store.commit_signals(&signals).await.unwrap();
    let SignalOutcome::Accepted {
        incident_id: Some(id),
        ..
    } = outcomes[0]
    else {
        panic!("not accepted");
    };
    let counts = store.event_windows(id, now, 100_000, 3).await.unwrap();
    assert_eq!(counts, vec![1, 1, 3]);
}

async fn the_newest_release_is_as_of_a_time(store: Store) {
    let now = Utc::now();
    store
        .commit_signals(&[
            event("r", "r-1", Some("1.0"), now - Duration::seconds(100)),
            event("r", "r-2", Some("1.1"), now - Duration::seconds(50)),
        ])
        .await
        .unwrap();
    let newest = |at| store.newest_release_at("1", at);
    assert_eq!(newest(now).await.unwrap().as_deref(), Some("1.1"));
    assert_eq!(
        newest(now - Duration::seconds(60))
            .await
            .unwrap()
            .as_deref(),
        Some("1.0")
    );
    assert_eq!(newest(now - Duration::seconds(200)).await.unwrap(), None);
}

async fn llm_tokens_add_up_per_day(store: Store) {
    assert_eq!(store.llm_tokens("shop", "2026-12-06").await.unwrap(), 0);
    assert_eq!(
        store
            .add_llm_tokens("shop", "2026-12-06", 1200)
            .await
            .unwrap(),
        1200
    );
    assert_eq!(
        store
            .add_llm_tokens("shop", "2026-12-06", 300)
            .await
            .unwrap(),
        1500
    );
    assert_eq!(
        store
            .add_llm_tokens("shop", "2026-12-07", 10)
            .await
            .unwrap(),
        10
    );
    assert_eq!(store.llm_tokens("shop", "2026-12-06").await.unwrap(), 1500);
    assert_eq!(store.llm_tokens("other", "2026-12-06").await.unwrap(), 0);
}

async fn open_pull_requests_and_verdicts_are_counted_per_repository(store: Store) {
    let limits = RoundLimits {
        per_hour: 10,
        concurrent: 10,
    };
    let mut ids = Vec::new();
    for (n, state) in [
        AttemptState::Open,
        AttemptState::Open,
        AttemptState::Rejected,
        AttemptState::Held,
    ]
    .into_iter()
    .enumerate()
    {
        let id = incident(&store, &format!("pr-{n}")).await;
        store
            .admit_round(id, 1, "shop", "new_release", limits)
            .await
            .unwrap();
        let mut attempt = store
            .record_attempt(&NewFixAttempt {
                incident_id: id,
                fingerprint: format!("pr-{n}"),
                round: 1,
                strategy: "revert".into(),
                patch_sha: format!("sha-{n}"),
                mode: "pr".into(),
                forge: "local_forge".into(),
                forge_repo: "shop".into(),
            })
            .await
            .unwrap();
        attempt.state = state;
        attempt.pr_number = Some(n as i64 + 1);
        store.save_attempt(&attempt).await.unwrap();
        ids.push(id);
    }
    assert_eq!(store.open_pull_requests("shop").await.unwrap(), 2);
    assert_eq!(store.open_pull_requests("other").await.unwrap(), 0);
    // Newest verdict first; open ones have none yet.
    assert_eq!(
        store.latest_verdicts("shop", 5).await.unwrap(),
        vec![AttemptState::Held, AttemptState::Rejected]
    );
    assert_eq!(
        store.latest_verdicts("shop", 1).await.unwrap(),
        vec![AttemptState::Held]
    );
}
