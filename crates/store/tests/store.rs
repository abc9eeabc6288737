//! The store on both databases: the same scenarios run on a fresh SQLite
//! file and a fresh PostgreSQL database (`SUTURE_TEST_DATABASE_URL`, set by
//! scripts/test; without it the PostgreSQL half fails).

use chrono::{Duration, Utc};
use store::{IncidentState, NewSignal, SignalOutcome, Store, testing};

use store::on_both;

on_both!(
    migrations_are_idempotent,
    repeats_are_no_ops,
    storm_is_one_incident_and_one_job,
    signals_without_event_open_no_job,
    lease_is_exclusive_and_expires,
    lost_lease_fences_writes,
    retry_waits_for_backoff,
    release_does_not_count_an_attempt,
    steps_persist_and_count_runs,
    concurrent_leases_never_share_a_job,
    two_replicas_share_incidents,
);

fn signal(key: &str, fingerprint: Option<&str>, has_event: bool) -> NewSignal {
    NewSignal {
        source: "sentry_sdk".into(),
        dedup_key: key.into(),
        project: Some("1".into()),
        kind: "event".into(),
        title: "ValueError: boom".into(),
        fingerprint: fingerprint.map(str::to_owned),
        upstream_id: None,
        has_event,
        release: None,
        payload: format!(r#"{{"event_id":"{key}"}}"#),
        received_at: Utc::now(),
    }
}

/// Re-running the migrations on a migrated database changes nothing.
async fn migrations_are_idempotent(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let url = match store.backend() {
        store::Backend::Sqlite => store.description().to_owned(),
        store::Backend::Postgres => store.description().to_owned(),
    };
    let again = Store::open(&url, &store::StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(again.count_signals().await.unwrap(), 1);
    again.ping().await.unwrap();
}

/// The same (source, dedup key) twice, in one batch or two, is stored once
/// and counted once.
async fn repeats_are_no_ops(store: Store) {
    let outcomes = store
        .commit_signals(&[signal("a", Some("f"), true), signal("a", Some("f"), true)])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[0],
        SignalOutcome::Accepted {
            new_incident: true,
            job_enqueued: true,
            ..
        }
    ));
    assert_eq!(outcomes[1], SignalOutcome::Duplicate);
    let outcomes = store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    assert_eq!(outcomes, [SignalOutcome::Duplicate]);
    let incidents = store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].count, 1);
    assert_eq!(store.count_signals().await.unwrap(), 1);
}

/// Many batches of one fingerprint: one incident counting them all, one job,
/// one `opened` entry.
async fn storm_is_one_incident_and_one_job(store: Store) {
    for batch in 0..5 {
        let signals: Vec<_> = (0..50)
            .map(|i| signal(&format!("{batch}-{i}"), Some("storm"), true))
            .collect();
        let outcomes = store.commit_signals(&signals).await.unwrap();
        let enqueued = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    SignalOutcome::Accepted {
                        job_enqueued: true,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(enqueued, usize::from(batch == 0));
    }
    let incidents = store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].count, 250);
    assert_eq!(incidents[0].state, IncidentState::New);
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("queued".to_owned(), 1)]
    );
    let timeline = store.timeline(incidents[0].id).await.unwrap();
    let kinds: Vec<_> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "job_queued"]);
}

/// An incident opened by a signal with nothing to diagnose gets its job
/// when the first event arrives, not before; fingerprint-less signals are
/// kept without an incident.
async fn signals_without_event_open_no_job(store: Store) {
    store
        .commit_signals(&[signal("issue", Some("up:1"), false)])
        .await
        .unwrap();
    store
        .commit_signals(&[signal("gh", None, false)])
        .await
        .unwrap();
    assert!(store.job_counts().await.unwrap().is_empty());
    let outcomes = store
        .commit_signals(&[signal("event", Some("up:1"), true)])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[0],
        SignalOutcome::Accepted {
            new_incident: false,
            job_enqueued: true,
            ..
        }
    ));
    let incident = &store.list_incidents(10).await.unwrap()[0];
    assert_eq!(incident.count, 2);
    let event_signal = store
        .signal(incident.event_signal_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event_signal.dedup_key, "event");
    assert_eq!(store.count_signals().await.unwrap(), 3);
}

/// A leased job is not leased again until its lease expires; then it is,
/// as a further attempt.
async fn lease_is_exclusive_and_expires(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let lease = Utc::now() + Duration::seconds(60);
    let job = store.lease_job("w1", lease).await.unwrap().unwrap();
    assert_eq!(job.attempt, 1);
    assert_eq!(store.lease_job("w2", lease).await.unwrap(), None);
    assert!(store.heartbeat(job.id, "w1", lease).await.unwrap());

    // w1 dies: its lease runs out.
    assert!(
        store
            .heartbeat(job.id, "w1", Utc::now() - Duration::seconds(1))
            .await
            .unwrap()
    );
    let again = store.lease_job("w2", lease).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempt), (job.id, 2));
    assert!(store.complete_job(again.id, "w2").await.unwrap());
    assert_eq!(store.lease_job("w3", lease).await.unwrap(), None);
    assert_eq!(store.job_counts().await.unwrap(), [("done".to_owned(), 1)]);
}

/// Once another worker holds the job, the old owner's writes are refused.
async fn lost_lease_fences_writes(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let expired = Utc::now() - Duration::seconds(1);
    let old = store.lease_job("old", expired).await.unwrap().unwrap();
    let new = store
        .lease_job("new", Utc::now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.id, new.id);
    assert!(!store.heartbeat(old.id, "old", Utc::now()).await.unwrap());
    assert!(!store.start_step(&old, "old", "diagnose").await.unwrap());
    assert!(!store.complete_job(old.id, "old").await.unwrap());
    assert!(!store.fail_job(old.id, "old", "x").await.unwrap());
    assert_eq!(store.step(old.id, "diagnose").await.unwrap(), None);
    assert!(store.complete_job(new.id, "new").await.unwrap());
}

/// A retried job waits for its backoff before it is leased again.
async fn retry_waits_for_backoff(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let lease = Utc::now() + Duration::seconds(60);
    let job = store.lease_job("w", lease).await.unwrap().unwrap();
    assert!(
        store
            .retry_job(
                job.id,
                "w",
                "store hiccup",
                Utc::now() + Duration::seconds(30)
            )
            .await
            .unwrap()
    );
    assert_eq!(store.lease_job("w", lease).await.unwrap(), None);
    assert_eq!(store.queued_jobs().await.unwrap(), 1);
    let jobs = store.incident_jobs(job.incident_id).await.unwrap();
    assert_eq!(jobs[0].last_error.as_deref(), Some("store hiccup"));
    assert!(
        store
            .retry_job(job.id, "w", "again", Utc::now())
            .await
            .is_ok_and(|held| !held)
    );
}

/// Releasing a job at shutdown queues it again without using an attempt.
async fn release_does_not_count_an_attempt(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let lease = Utc::now() + Duration::seconds(60);
    let job = store.lease_job("w", lease).await.unwrap().unwrap();
    assert!(store.release_job(job.id, "w").await.unwrap());
    let again = store.lease_job("w2", lease).await.unwrap().unwrap();
    assert_eq!(again.attempt, 1);
}

/// Steps keep their output and count their runs across leases.
async fn steps_persist_and_count_runs(store: Store) {
    store
        .commit_signals(&[signal("a", Some("f"), true)])
        .await
        .unwrap();
    let job = store
        .lease_job("w", Utc::now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert!(store.start_step(&job, "w", "diagnose").await.unwrap());
    let output = serde_json::json!({"culprit": "abc"});
    assert!(
        store
            .finish_step(&job, "w", "diagnose", true, &output, "diagnosed")
            .await
            .unwrap()
    );
    assert!(store.start_step(&job, "w", "heal").await.unwrap());
    // The worker dies in heal; the next one runs heal again.
    assert!(
        store
            .heartbeat(job.id, "w", Utc::now() - Duration::seconds(1))
            .await
            .unwrap()
    );
    let job = store
        .lease_job("w2", Utc::now() + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    let diagnose = store.step(job.id, "diagnose").await.unwrap().unwrap();
    assert_eq!(diagnose.state, "finished");
    assert_eq!(diagnose.runs, 1);
    assert_eq!(diagnose.output.as_deref(), Some(r#"{"culprit":"abc"}"#));
    assert!(store.start_step(&job, "w2", "heal").await.unwrap());
    assert!(
        store
            .finish_step(&job, "w2", "heal", false, &serde_json::json!({}), "no fix")
            .await
            .unwrap()
    );
    let heal = store.step(job.id, "heal").await.unwrap().unwrap();
    assert_eq!((heal.state.as_str(), heal.runs), ("failed", 2));
    let kinds: Vec<_> = store
        .timeline(job.incident_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "job_queued",
            "step_started",
            "step_finished",
            "step_started",
            "step_started",
            "step_failed"
        ]
    );
    store
        .set_incident_state(
            job.incident_id,
            IncidentState::Unfixed,
            "no proven fix",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .incident(job.incident_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        IncidentState::Unfixed
    );
    assert_eq!(
        store.incident_counts().await.unwrap(),
        [(IncidentState::Unfixed, 1)]
    );
}

/// Many workers leasing at once from many jobs: each job goes to exactly one.
async fn concurrent_leases_never_share_a_job(store: Store) {
    let signals: Vec<_> = (0..40)
        .map(|i| signal(&format!("k{i}"), Some(&format!("f{i}")), true))
        .collect();
    store.commit_signals(&signals).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("w{worker}");
            let mut got = Vec::new();
            while let Some(job) = store
                .lease_job(&owner, Utc::now() + Duration::seconds(60))
                .await
                .unwrap()
            {
                got.push(job.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (40, 40));
}

/// Two replicas on one database, each with its own write-path cache:
/// whichever sees the first event enqueues the one job, the other's stale
/// view never enqueues a second, and counts add up.
async fn two_replicas_share_incidents(a: Store) {
    let b = Store::open(a.description(), &store::StoreOptions::default())
        .await
        .unwrap();
    a.commit_signals(&[signal("issue", Some("up:9"), false)])
        .await
        .unwrap();
    b.commit_signals(&[signal("issue-again", Some("up:9"), false)])
        .await
        .unwrap();
    let first = b
        .commit_signals(&[signal("event-b", Some("up:9"), true)])
        .await
        .unwrap();
    assert!(matches!(
        first[0],
        SignalOutcome::Accepted {
            job_enqueued: true,
            ..
        }
    ));
    // `a` still remembers the incident without an event.
    let second = a
        .commit_signals(&[signal("event-a", Some("up:9"), true)])
        .await
        .unwrap();
    assert!(matches!(
        second[0],
        SignalOutcome::Accepted {
            job_enqueued: false,
            ..
        }
    ));
    assert_eq!(a.job_counts().await.unwrap(), [("queued".to_owned(), 1)]);
    let incident = &a.list_incidents(10).await.unwrap()[0];
    assert_eq!(incident.count, 4);
    let diagnosed = a
        .signal(incident.event_signal_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(diagnosed.dedup_key, "event-b");
}

/// The test helpers point at the variable scripts/test exports.
#[test]
fn postgres_variable_is_documented() {
    assert_eq!(testing::DATABASE_URL_VAR, "SUTURE_TEST_DATABASE_URL");
}
