//! Links across sources and runs of recovery actions, on both databases:
//! a PagerDuty trigger and a new Sentry incident each get their respond
//! job in the commit, a link is written both ways with a timeline entry on
//! each side once, a run is planned once per (signal, action), begins only
//! from `queued`, and an approval queues it exactly once.

use chrono::Utc;
use store::{JobKind, NewActionRun, NewSignal, SignalOutcome, Store, run_state};

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let mut store = store::testing::fresh_sqlite(dir.path()).await;
                    store.answer_incidents(true);
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let mut store = store::testing::fresh_postgres().await;
                    store.answer_incidents(true);
                    super::$name(store).await;
                }
            )*
        }
    };
}

on_both!(links_go_both_ways_once, runs_begin_once_and_approve_once);

/// Commits one signal; answers (signal id, incident id).
async fn signal(store: &Store, source: &str, kind: &str, key: &str, project: &str) -> (i64, i64) {
    let outcomes = store
        .commit_signals(&[NewSignal {
            source: source.into(),
            dedup_key: key.into(),
            project: Some(project.into()),
            kind: kind.into(),
            title: format!("{source} {key}"),
            fingerprint: Some(format!("{source}:{key}")),
            upstream_id: Some(key.into()),
            has_event: source == "sentry_sdk",
            release: None,
            payload: "{}".into(),
            received_at: Utc::now(),
        }])
        .await
        .unwrap();
    match outcomes[0] {
        SignalOutcome::Accepted {
            signal_id,
            incident_id: Some(incident_id),
            ..
        } => (signal_id, incident_id),
        other => panic!("{other:?}"),
    }
}

async fn jobs(store: &Store, incident_id: i64) -> Vec<String> {
    store
        .incident_jobs(incident_id)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.kind)
        .collect()
}

async fn links_go_both_ways_once(store: Store) {
    let (sentry_signal, sentry) = signal(&store, "sentry_sdk", "event", "e1", "1").await;
    let (page, pagerduty) = signal(&store, "pagerduty", "incident.triggered", "P1", "PSVC").await;
    let (_, acknowledged) =
        signal(&store, "pagerduty", "incident.acknowledged", "P2", "PSVC").await;
    // A store that answers nothing (no actions, no mapped services)
    // queues no respond job.
    let mut quiet = store.clone();
    quiet.answer_incidents(false);
    let (_, unanswered) = signal(&quiet, "pagerduty", "incident.triggered", "P3", "PSVC").await;
    assert!(jobs(&store, unanswered).await.is_empty());
    assert!(
        jobs(&store, sentry).await.contains(
            &JobKind::Respond {
                signal_id: sentry_signal
            }
            .to_string()
        )
    );
    assert!(
        jobs(&store, pagerduty)
            .await
            .contains(&format!("respond/{page}"))
    );
    assert!(
        jobs(&store, acknowledged)
            .await
            .iter()
            .all(|kind| !kind.starts_with("respond/"))
    );

    let near = store
        .active_incidents_near(
            &["sentry_sdk", "sentry_webhook"],
            Some(&["1".to_owned()]),
            &["resolved"],
            Utc::now(),
            chrono::Duration::seconds(900),
            10,
        )
        .await
        .unwrap();
    assert_eq!(near, [sentry]);
    let elsewhere = store
        .active_incidents_near(
            &["sentry_sdk"],
            Some(&["2".to_owned()]),
            &[],
            Utc::now(),
            chrono::Duration::seconds(900),
            10,
        )
        .await
        .unwrap();
    assert!(elsewhere.is_empty());

    assert!(
        store
            .link_incidents(pagerduty, sentry, "to sentry", "to pagerduty")
            .await
            .unwrap()
    );
    assert!(
        !store
            .link_incidents(sentry, pagerduty, "again", "again")
            .await
            .unwrap()
    );
    assert_eq!(store.linked_incidents(pagerduty).await.unwrap(), [sentry]);
    assert_eq!(store.linked_incidents(sentry).await.unwrap(), [pagerduty]);
    for (id, note) in [(pagerduty, "to sentry"), (sentry, "to pagerduty")] {
        let linked: Vec<String> = store
            .timeline(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.kind == "linked")
            .map(|entry| entry.message)
            .collect();
        assert_eq!(linked, [note]);
    }
}

async fn runs_begin_once_and_approve_once(store: Store) {
    let (page, incident) = signal(&store, "pagerduty", "incident.triggered", "P9", "PSVC").await;
    let run = |action: &'static str, state: &'static str| NewActionRun {
        incident_id: incident,
        signal_id: page,
        action,
        mode: "auto",
        triggered_by: "pagerduty incident.triggered",
        state,
        result: None,
        detail: None,
        message: "planned",
    };
    let auto = store
        .plan_action_run(&run("restart", run_state::QUEUED))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .plan_action_run(&run("restart", run_state::QUEUED))
            .await
            .unwrap(),
        None
    );
    assert!(
        jobs(&store, incident)
            .await
            .contains(&format!("action/{auto}"))
    );
    let hour = chrono::Duration::hours(1);
    assert!(store.start_action_run(auto, hour).await.unwrap());
    assert!(
        !store.start_action_run(auto, hour).await.unwrap(),
        "a run begins once"
    );
    let (again, other) = signal(&store, "pagerduty", "incident.triggered", "P10", "PSVC").await;
    let second = store
        .plan_action_run(&NewActionRun {
            signal_id: again,
            incident_id: other,
            ..run("restart", run_state::QUEUED)
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        !store.start_action_run(second, hour).await.unwrap(),
        "another run of the action began within the cooldown"
    );
    assert!(
        store
            .start_action_run(second, chrono::Duration::zero())
            .await
            .unwrap()
    );
    let (count, last) = store
        .action_usage("restart", Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert!(last.is_some());
    assert!(
        store
            .finish_action_run(auto, "ok", &serde_json::json!({"exit": 0}), "done")
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_action_run(auto, "failed", &serde_json::json!({}), "again")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .action_run(auto)
            .await
            .unwrap()
            .unwrap()
            .result
            .as_deref(),
        Some("ok")
    );

    let waiting = store
        .plan_action_run(&run("scale", run_state::AWAITING_APPROVAL))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !jobs(&store, incident)
            .await
            .contains(&format!("action/{waiting}"))
    );
    let before = store
        .approve_action_run(waiting, "alice", "approved")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.state, run_state::AWAITING_APPROVAL);
    let again = store
        .approve_action_run(waiting, "bob", "approved")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, run_state::QUEUED);
    assert_eq!(again.approved_by.as_deref(), Some("alice"));
    assert!(
        jobs(&store, incident)
            .await
            .contains(&format!("action/{waiting}"))
    );
    assert_eq!(
        store.approve_action_run(999_999, "x", "y").await.unwrap(),
        None
    );
    let listed = store.incident_action_runs(incident).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [auto, waiting]
    );
    assert_eq!(store.recent_action_runs(1).await.unwrap()[0].id, waiting);
}
