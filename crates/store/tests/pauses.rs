//! The kill switch in the store, on both databases: pausing and resuming
//! everything or one repository, and the once-only `paused` timeline entry.

use store::{NewSignal, SignalOutcome, Store};

use store::on_both;

on_both!(
    nothing_is_paused_at_first,
    a_global_pause_holds_every_repository_until_resumed,
    a_repository_pause_is_its_own,
    pausing_again_keeps_since_and_takes_the_new_reason,
    concurrent_pauses_are_all_kept,
    a_paused_note_is_written_once_in_a_row,
);

async fn nothing_is_paused_at_first(store: Store) {
    let pauses = store.pauses().await.unwrap();
    assert!(pauses.is_empty());
    assert_eq!(pauses.for_repo("app"), None);
    let (lifted, left) = store.resume(None).await.unwrap();
    assert_eq!(lifted, None);
    assert!(left.is_empty());
}

async fn a_global_pause_holds_every_repository_until_resumed(store: Store) {
    let pauses = store
        .pause(None, "incident review", Some("alice"))
        .await
        .unwrap();
    let global = pauses.global.clone().unwrap();
    assert_eq!(global.reason, "incident review");
    assert_eq!(global.by.as_deref(), Some("alice"));
    let read = store.pauses().await.unwrap();
    assert_eq!(read, pauses);
    assert_eq!(read.for_repo("app"), Some(&global));
    assert_eq!(read.for_repo("anything"), Some(&global));

    let (lifted, left) = store.resume(None).await.unwrap();
    assert_eq!(lifted, Some(global));
    assert!(left.is_empty());
    assert!(store.pauses().await.unwrap().is_empty());
}

async fn a_repository_pause_is_its_own(store: Store) {
    store.pause(Some("app"), "bad deploy", None).await.unwrap();
    let pauses = store.pauses().await.unwrap();
    assert_eq!(pauses.for_repo("app").unwrap().reason, "bad deploy");
    assert_eq!(pauses.for_repo("other"), None);
    assert_eq!(pauses.global, None);

    // Lifting the global pause leaves a repository's own pause alone.
    store.pause(None, "everything", None).await.unwrap();
    let (lifted, left) = store.resume(None).await.unwrap();
    assert_eq!(lifted.unwrap().reason, "everything");
    assert_eq!(left.for_repo("app").unwrap().reason, "bad deploy");

    let (lifted, left) = store.resume(Some("other")).await.unwrap();
    assert_eq!(lifted, None);
    assert_eq!(left.repos.len(), 1);
    let (lifted, left) = store.resume(Some("app")).await.unwrap();
    assert_eq!(lifted.unwrap().reason, "bad deploy");
    assert!(left.is_empty());
}

async fn pausing_again_keeps_since_and_takes_the_new_reason(store: Store) {
    let first = store.pause(Some("app"), "first", None).await.unwrap();
    let second = store.pause(Some("app"), "second", None).await.unwrap();
    assert_eq!(second.repos["app"].reason, "second");
    assert_eq!(second.repos["app"].since, first.repos["app"].since);
    let first = store.pause(None, "one", None).await.unwrap();
    let second = store.pause(None, "two", None).await.unwrap();
    assert_eq!(second.global.as_ref().unwrap().reason, "two");
    assert_eq!(second.global.unwrap().since, first.global.unwrap().since);
}

/// Pauses from many writers at once (replicas, operators) are all kept:
/// none overwrites another's.
async fn concurrent_pauses_are_all_kept(store: Store) {
    let names: Vec<String> = (0..8).map(|n| format!("repo-{n}")).collect();
    let pauses = names.iter().map(|name| {
        let store = store.clone();
        let name = name.clone();
        tokio::spawn(async move { store.pause(Some(&name), "load", None).await.unwrap() })
    });
    for pause in pauses {
        pause.await.unwrap();
    }
    let pauses = store.pauses().await.unwrap();
    assert_eq!(pauses.repos.keys().cloned().collect::<Vec<_>>(), names);
}

async fn a_paused_note_is_written_once_in_a_row(store: Store) {
    let outcomes = store
        .commit_signals(&[NewSignal {
            source: "sentry_sdk".into(),
            dedup_key: "1:e1".into(),
            project: Some("1".into()),
            kind: "event".into(),
            title: "E: v".into(),
            fingerprint: Some("fp".into()),
            upstream_id: None,
            has_event: true,
            release: None,
            payload: "{}".into(),
            received_at: chrono::Utc::now(),
        }])
        .await
        .unwrap();
    let SignalOutcome::Accepted {
        incident_id: Some(id),
        ..
    } = outcomes[0]
    else {
        panic!("not accepted: {:?}", outcomes[0]);
    };
    let paused = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .timeline(id)
                .await
                .unwrap()
                .into_iter()
                .filter(|entry| entry.kind == "paused")
                .map(|entry| entry.message)
                .collect::<Vec<_>>()
        }
    };
    assert!(store.note_paused(id, "paused: review").await.unwrap());
    assert!(!store.note_paused(id, "paused: review").await.unwrap());
    assert_eq!(paused(&store).await, ["paused: review"]);
    // Another reason is news.
    assert!(store.note_paused(id, "paused: other").await.unwrap());
    // After something else happened, the same pause is said again.
    store
        .add_timeline(id, "state", "resumed work", None)
        .await
        .unwrap();
    assert!(store.note_paused(id, "paused: other").await.unwrap());
    assert_eq!(
        paused(&store).await,
        ["paused: review", "paused: other", "paused: other"]
    );
}
