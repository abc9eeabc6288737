//! The table of incident state transitions, walked on both databases:
//! every move it lists goes through `set_incident_state`, every other one
//! is refused with `StoreError::Transition` and writes nothing, and the
//! other writers of the state (a new round, the write path's regression)
//! go through the same table.

use chrono::Utc;
use store::{IncidentState, NewSignal, Store, StoreError};

use store::on_both;

on_both!(
    every_listed_transition_applies_and_no_other,
    a_refused_transition_writes_nothing,
    a_missing_incident_is_not_a_transition,
    a_new_round_goes_through_the_table,
);

/// An incident (state `new`) of its own for `fingerprint`.
async fn incident(store: &Store, fingerprint: &str) -> i64 {
    let outcomes = store
        .commit_signals(&[NewSignal {
            source: "sentry_sdk".into(),
            dedup_key: fingerprint.into(),
            project: Some("1".into()),
            kind: "event".into(),
            title: "ValueError: boom".into(),
            fingerprint: Some(fingerprint.into()),
            upstream_id: None,
            has_event: true,
            release: None,
            payload: "{}".into(),
            received_at: Utc::now(),
        }])
        .await
        .unwrap();
    match outcomes[0] {
        store::SignalOutcome::Accepted {
            incident_id: Some(id),
            ..
        } => id,
        other => panic!("{other:?}"),
    }
}

async fn state(store: &Store, id: i64) -> IncidentState {
    store.incident(id).await.unwrap().unwrap().state
}

/// Every (from, to) pair: the listed ones apply through
/// `set_incident_state`, the others are refused naming both states. Every
/// state can be entered from `new`, which is how each `from` is reached.
async fn every_listed_transition_applies_and_no_other(store: Store) {
    use IncidentState as S;
    let mut refused = Vec::new();
    for from in IncidentState::ALL {
        let id = incident(&store, &format!("fp-{from}")).await;
        if from == S::Fixed {
            // Nothing writes `fixed`: it cannot be reached, so it is never
            // left either.
            let reached = store.set_incident_state(id, from, "from", None).await;
            assert!(
                matches!(reached, Err(StoreError::Transition { .. })),
                "{reached:?}"
            );
            continue;
        }
        for to in IncidentState::ALL {
            store
                .set_incident_state(id, from, "from", None)
                .await
                .unwrap();
            assert_eq!(state(&store, id).await, from);
            let moved = store.set_incident_state(id, to, "to", None).await;
            if from.can_become(to) {
                moved.unwrap_or_else(|error| panic!("{from} → {to}: {error}"));
                assert_eq!(state(&store, id).await, to, "{from} → {to}");
            } else {
                match moved {
                    Err(StoreError::Transition {
                        incident_id,
                        from: was,
                        to: asked,
                    }) => assert_eq!((incident_id, was, asked), (id, from, to)),
                    other => panic!("{from} → {to} was not refused: {other:?}"),
                }
                assert_eq!(state(&store, id).await, from, "{from} → {to}");
                refused.push((from, to));
            }
            // Back to `new` for the next pair (`new` is allowed from anywhere).
            store
                .set_incident_state(id, S::New, "again", None)
                .await
                .unwrap();
        }
    }
    let mut expected: Vec<(IncidentState, IncidentState)> = [
        S::Diagnosing,
        S::Diagnosed,
        S::Healing,
        S::NoRepo,
        S::Proposed,
        S::Suggested,
        S::Unfixed,
        S::Resolved,
        S::Regressed,
        S::Observed,
        S::Deferred,
    ]
    .into_iter()
    .map(|to| (S::Stopped, to))
    .collect();
    expected.extend(
        IncidentState::ALL
            .into_iter()
            .filter(|from| *from != S::Fixed)
            .map(|from| (from, S::Fixed)),
    );
    refused.sort_by_key(|(from, to)| (*from as u8, *to as u8));
    expected.sort_by_key(|(from, to)| (*from as u8, *to as u8));
    assert_eq!(refused, expected);
}

/// A refused move leaves the state, the round and the timeline as they
/// were, and says so in its message.
async fn a_refused_transition_writes_nothing(store: Store) {
    let id = incident(&store, "fp-stopped").await;
    store
        .set_incident_state(id, IncidentState::Stopped, "stop", None)
        .await
        .unwrap();
    let before = store.timeline(id).await.unwrap().len();
    let error = store
        .set_incident_state(id, IncidentState::Healing, "heal anyway", None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("incident {id} cannot move from stopped to healing")
    );
    let incident = store.incident(id).await.unwrap().unwrap();
    assert_eq!(
        (incident.state, incident.round),
        (IncidentState::Stopped, 1)
    );
    assert_eq!(store.timeline(id).await.unwrap().len(), before);
}

/// An incident that does not exist has no state to move from: as before
/// the table, the call writes its timeline entry and succeeds.
async fn a_missing_incident_is_not_a_transition(store: Store) {
    store
        .set_incident_state(9999, IncidentState::Failed, "gone", None)
        .await
        .unwrap();
    assert_eq!(store.incident(9999).await.unwrap().map(|i| i.state), None);
}

/// `start_round` moves the state through the table too: back to `new`
/// from a stopped incident, which only a human's retry may do.
async fn a_new_round_goes_through_the_table(store: Store) {
    let id = incident(&store, "fp-round").await;
    store
        .set_incident_state(id, IncidentState::Stopped, "stop", None)
        .await
        .unwrap();
    assert_eq!(store.start_round(id, None, "retry").await.unwrap(), 2);
    assert_eq!(state(&store, id).await, IncidentState::New);
    store
        .set_incident_state(id, IncidentState::Diagnosing, "diagnosing", None)
        .await
        .unwrap();
}
