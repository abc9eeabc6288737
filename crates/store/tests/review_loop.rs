//! The store side of review → verify → close, on both databases: rounds,
//! jobs with input, forge-event jobs, fix attempts, recurrence reads,
//! documents and the upgrade from the first schema.

use chrono::{DateTime, Duration, Utc};
use store::{
    AttemptState, FixAttempt, IncidentState, JobKind, NewFixAttempt, NewSignal, SignalOutcome,
    Store, StoreError, testing,
};

use store::on_both;

on_both!(
    start_round_queues_the_next_pipeline_with_its_payload,
    enqueue_job_is_idempotent,
    forge_delivery_gets_exactly_one_job,
    record_attempt_is_idempotent_per_round,
    attempts_save_and_are_found,
    event_signals_respect_the_window,
    released_events_leave_out_those_without_a_release,
    document_updates_serialise,
    document_edit_can_decline_or_fail,
    an_event_for_a_resolved_incident_regresses_it,
    an_event_during_the_quiet_window_wakes_the_verification,
);

/// An event for a verifying incident makes its verification due now; the
/// verification of an incident in another state keeps its time.
async fn an_event_during_the_quiet_window_wakes_the_verification(store: Store) {
    let verifying = incident_with_event(&store, "fp-verifying").await;
    let other = incident_with_event(&store, "fp-other").await;
    let later = Utc::now() + Duration::hours(1);
    for (id, attempt_id) in [(verifying, 1), (other, 2)] {
        store
            .enqueue_job(id, &JobKind::Verify { attempt_id }, later, None)
            .await
            .unwrap();
    }
    store
        .set_incident_state(verifying, IncidentState::Verifying, "merged", None)
        .await
        .unwrap();
    // The round-1 pipeline jobs are out of the way.
    let lease = Utc::now() + Duration::minutes(5);
    for _ in 0..2 {
        let job = store.lease_job("w", lease).await.unwrap().unwrap();
        assert_eq!(job.kind, "pipeline");
        assert!(store.complete_job(job.id, "w").await.unwrap());
    }
    assert_eq!(store.lease_job("w", lease).await.unwrap(), None);
    store
        .commit_signals(&[
            signal("sentry_sdk", "during-1", Some("fp-verifying"), true),
            signal("sentry_sdk", "during-2", Some("fp-other"), true),
        ])
        .await
        .unwrap();
    let woken = store.lease_job("w", lease).await.unwrap().unwrap();
    assert_eq!(woken.incident_id, verifying);
    assert_eq!(woken.kind, "verify/1");
    assert!(store.reschedule_job(woken.id, "w", later).await.unwrap());
    assert_eq!(
        store.lease_job("w", lease).await.unwrap(),
        None,
        "both wait again"
    );
}

/// An event for a resolved incident flips it to `regressed` in the same
/// commit and queues the job about the fix that had held; events for
/// incidents in other states change no state.
async fn an_event_for_a_resolved_incident_regresses_it(store: Store) {
    let id = incident_with_event(&store, "fp-regress").await;
    let other = incident_with_event(&store, "fp-open").await;
    let mut attempt = store
        .record_attempt(&new_attempt(id, 1, "aaa"))
        .await
        .unwrap();
    attempt.fingerprint = "fp-regress".into();
    attempt.state = AttemptState::Held;
    store.save_attempt(&attempt).await.unwrap();
    store
        .set_incident_state(id, IncidentState::Resolved, "held", None)
        .await
        .unwrap();
    store
        .commit_signals(&[
            signal("sentry_sdk", "again-1", Some("fp-regress"), true),
            signal("sentry_sdk", "again-2", Some("fp-open"), true),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.incident(id).await.unwrap().unwrap().state,
        IncidentState::Regressed
    );
    assert_eq!(
        store.incident(other).await.unwrap().unwrap().state,
        IncidentState::New
    );
    let kinds: Vec<String> = store
        .incident_jobs(id)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "pipeline".to_owned(),
            JobKind::Regressed {
                attempt_id: attempt.id
            }
            .to_string()
        ]
    );
    // A second event while regressed queues nothing more.
    store
        .commit_signals(&[signal("sentry_sdk", "again-3", Some("fp-regress"), true)])
        .await
        .unwrap();
    assert_eq!(store.incident_jobs(id).await.unwrap().len(), 2);
}

fn signal(source: &str, key: &str, fingerprint: Option<&str>, has_event: bool) -> NewSignal {
    NewSignal {
        source: source.into(),
        dedup_key: key.into(),
        project: Some("1".into()),
        kind: if has_event {
            "event"
        } else {
            "pull_request.closed"
        }
        .into(),
        title: "ValueError: boom".into(),
        fingerprint: fingerprint.map(str::to_owned),
        upstream_id: None,
        has_event,
        release: None,
        payload: format!(r#"{{"event_id":"{key}"}}"#),
        received_at: Utc::now(),
    }
}

/// Opens an incident with an event (and so its round-1 pipeline job) and
/// returns its id.
async fn incident_with_event(store: &Store, fingerprint: &str) -> i64 {
    let outcomes = store
        .commit_signals(&[signal(
            "sentry_sdk",
            &format!("{fingerprint}-event"),
            Some(fingerprint),
            true,
        )])
        .await
        .unwrap();
    match outcomes[0] {
        SignalOutcome::Accepted {
            incident_id: Some(id),
            ..
        } => id,
        other => panic!("not accepted: {other:?}"),
    }
}

/// `now` at the database's precision (milliseconds).
fn millis_now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// Every kind prints as the text it parses from, `pipeline` is round 1, and
/// anything else is kept verbatim.
#[test]
fn job_kinds_round_trip() {
    let kinds = [
        (JobKind::Pipeline { round: 1 }, "pipeline"),
        (JobKind::Pipeline { round: 2 }, "pipeline/2"),
        (JobKind::Pipeline { round: 17 }, "pipeline/17"),
        (JobKind::ForgeEvent { signal_id: 42 }, "forge_event/42"),
        (JobKind::Verify { attempt_id: 7 }, "verify/7"),
        (JobKind::Regressed { attempt_id: 8 }, "regressed/8"),
        (JobKind::Other("reindex".into()), "reindex"),
    ];
    for (kind, text) in kinds {
        assert_eq!(kind.to_string(), text);
        assert_eq!(JobKind::parse(text), kind);
    }
    assert_eq!(store::PIPELINE_JOB, "pipeline");
    // Texts that are not how a kind prints stay what they were.
    for text in [
        "pipeline/1",
        "pipeline/0",
        "pipeline/02",
        "pipeline/+3",
        "pipeline/x",
        "forge_event/",
        "verify/1/2",
        "",
    ] {
        assert_eq!(JobKind::parse(text), JobKind::Other(text.into()), "{text}");
        assert_eq!(JobKind::parse(text).to_string(), text);
    }
}

/// Every incident state reads back from its name, and the names are unique.
#[test]
fn incident_states_round_trip() {
    let mut names: Vec<_> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
    for state in IncidentState::ALL {
        assert_eq!(state.as_str().parse::<IncidentState>().unwrap(), state);
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), IncidentState::ALL.len());
    assert_eq!(IncidentState::Stopped.as_str(), "stopped");
}

/// A new round bumps the incident's round, puts it back to `new`, and
/// queues `pipeline/<n>` whose lease carries the round's guidance.
async fn start_round_queues_the_next_pipeline_with_its_payload(store: Store) {
    let incident_id = incident_with_event(&store, "f").await;
    assert_eq!(store.incident(incident_id).await.unwrap().unwrap().round, 1);
    let lease = Utc::now() + Duration::seconds(60);
    let first = store.lease_job("w", lease).await.unwrap().unwrap();
    assert_eq!(first.job_kind(), JobKind::Pipeline { round: 1 });
    assert_eq!(first.payload, None);
    assert!(store.complete_job(first.id, "w").await.unwrap());
    store
        .set_incident_state(
            incident_id,
            IncidentState::Rejected,
            "closed unmerged",
            None,
        )
        .await
        .unwrap();

    let guidance = serde_json::json!({"avoid": ["abc123"], "reason": "reviewer: wrong layer"});
    let round = store
        .start_round(incident_id, Some(&guidance), "fix rejected: trying again")
        .await
        .unwrap();
    assert_eq!(round, 2);
    let incident = store.incident(incident_id).await.unwrap().unwrap();
    assert_eq!((incident.round, incident.state), (2, IncidentState::New));

    let job = store.lease_job("w", lease).await.unwrap().unwrap();
    assert_eq!(job.kind, "pipeline/2");
    assert_eq!(job.job_kind(), JobKind::Pipeline { round: 2 });
    assert_eq!(job.incident_id, incident_id);
    assert_eq!(job.payload, Some(guidance));

    let timeline = store.timeline(incident_id).await.unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(last.kind, "round");
    assert_eq!(last.message, "fix rejected: trying again");
    assert_eq!(
        last.data,
        Some(serde_json::json!({"round": 2, "job_id": job.id}))
    );
    let kinds: Vec<_> = store
        .incident_jobs(incident_id)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.kind)
        .collect();
    assert_eq!(kinds, ["pipeline", "pipeline/2"]);

    assert!(store.start_round(9999, None, "nothing").await.is_err());
}

/// Asking twice for one (incident, kind) queues one job and notes it once.
async fn enqueue_job_is_idempotent(store: Store) {
    let incident_id = incident_with_event(&store, "f").await;
    let kind = JobKind::Verify { attempt_id: 7 };
    let later = Utc::now() + Duration::seconds(3600);
    let job = store
        .enqueue_job(incident_id, &kind, later, None)
        .await
        .unwrap();
    assert!(job.is_some());
    let payload = serde_json::json!({"x": 1});
    assert_eq!(
        store
            .enqueue_job(incident_id, &kind, Utc::now(), Some(&payload))
            .await
            .unwrap(),
        None
    );
    let queued: Vec<_> = store
        .timeline(incident_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == "job_queued")
        .collect();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].message, "pipeline job queued");
    assert_eq!(queued[1].message, "verify/7 job queued");
    assert_eq!(
        queued[1].data,
        Some(serde_json::json!({"job_id": job.unwrap(), "kind": "verify/7"}))
    );
    // Not due yet: only the pipeline job leases.
    let lease = Utc::now() + Duration::seconds(60);
    let pipeline = store.lease_job("w", lease).await.unwrap().unwrap();
    assert_eq!(pipeline.kind, "pipeline");
    assert_eq!(store.lease_job("w", lease).await.unwrap(), None);

    // A job of no incident is queued without a timeline entry.
    let other = JobKind::Other("sweep".into());
    assert!(
        store
            .enqueue_job(0, &other, Utc::now(), Some(&payload))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.timeline(0).await.unwrap().is_empty());
    let sweep = store.lease_job("w", lease).await.unwrap().unwrap();
    assert_eq!(
        (sweep.incident_id, sweep.job_kind(), sweep.payload),
        (0, other, Some(payload))
    );
}

/// Each accepted forge delivery gets one `forge_event` job in the batch that
/// stores it; repeats get none; its steps write no timeline.
async fn forge_delivery_gets_exactly_one_job(store: Store) {
    let outcomes = store
        .commit_signals(&[
            signal("github", "delivery-1", None, false),
            signal("sentry_sdk", "event-1", Some("f"), true),
            signal("github", "delivery-1", None, false),
            signal("pagerduty", "page-1", Some("g"), false),
        ])
        .await
        .unwrap();
    let SignalOutcome::Accepted {
        signal_id,
        incident_id: None,
        job_enqueued: true,
        ..
    } = outcomes[0]
    else {
        panic!("forge delivery: {:?}", outcomes[0]);
    };
    assert!(matches!(
        outcomes[1],
        SignalOutcome::Accepted {
            job_enqueued: true,
            ..
        }
    ));
    assert_eq!(outcomes[2], SignalOutcome::Duplicate);
    assert!(matches!(
        outcomes[3],
        SignalOutcome::Accepted {
            job_enqueued: false,
            ..
        }
    ));
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("queued".to_owned(), 2)]
    );

    let again = store
        .commit_signals(&[signal("github", "delivery-1", None, false)])
        .await
        .unwrap();
    assert_eq!(again, [SignalOutcome::Duplicate]);
    // A delivery suture does not act on (a push) is kept, with no job.
    let push = NewSignal {
        kind: "push".into(),
        ..signal("github", "delivery-push", None, false)
    };
    let kept = store.commit_signals(&[push]).await.unwrap();
    assert!(matches!(
        kept[0],
        SignalOutcome::Accepted {
            job_enqueued: false,
            ..
        }
    ));
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("queued".to_owned(), 2)]
    );
    let local = store
        .commit_signals(&[signal("local_forge", "pr-3-merged", None, false)])
        .await
        .unwrap();
    assert!(matches!(
        local[0],
        SignalOutcome::Accepted {
            job_enqueued: true,
            ..
        }
    ));
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("queued".to_owned(), 3)]
    );

    let lease = Utc::now() + Duration::seconds(60);
    let mut forge_jobs = Vec::new();
    while let Some(job) = store.lease_job("w", lease).await.unwrap() {
        if let JobKind::ForgeEvent { signal_id } = job.job_kind() {
            assert_eq!(job.incident_id, 0);
            forge_jobs.push(signal_id);
            assert!(store.start_step(&job, "w", "route").await.unwrap());
            assert!(
                store
                    .finish_step(&job, "w", "route", true, &serde_json::json!({}), "routed")
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.step(job.id, "route").await.unwrap().unwrap().state,
                "finished"
            );
        }
    }
    assert_eq!(forge_jobs.len(), 2);
    assert_eq!(forge_jobs[0], signal_id);
    assert!(store.timeline(0).await.unwrap().is_empty());
}

fn new_attempt(incident_id: i64, round: i64, patch_sha: &str) -> NewFixAttempt {
    NewFixAttempt {
        incident_id,
        fingerprint: "fp".into(),
        round,
        strategy: "revert".into(),
        patch_sha: patch_sha.into(),
        mode: "propose".into(),
        forge: "github".into(),
        forge_repo: "acme/shop".into(),
    }
}

/// Recording the attempt of a round twice (a job resumed after a crash)
/// returns the first row, changes included, untouched.
async fn record_attempt_is_idempotent_per_round(store: Store) {
    let first = store
        .record_attempt(&new_attempt(1, 1, "aaa"))
        .await
        .unwrap();
    assert_eq!(first.state, AttemptState::Proposing);
    assert_eq!((first.incident_id, first.round), (1, 1));
    assert!(first.releases_before.is_empty());
    assert_eq!(first.pr_number, None);
    let mut opened = first.clone();
    opened.state = AttemptState::Open;
    opened.pr_number = Some(12);
    store.save_attempt(&opened).await.unwrap();

    let again = store
        .record_attempt(&new_attempt(1, 1, "bbb"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.patch_sha, "aaa");
    assert_eq!(
        (again.state, again.pr_number),
        (AttemptState::Open, Some(12))
    );

    let next = store
        .record_attempt(&new_attempt(1, 2, "bbb"))
        .await
        .unwrap();
    assert_ne!(next.id, first.id);
    assert_eq!(store.attempt_for_round(1, 2).await.unwrap(), Some(next));
    assert_eq!(store.attempt_for_round(1, 3).await.unwrap(), None);
}

/// What is saved reads back; attempts are found by pull request or tracking
/// issue number in their repository, and by fingerprint oldest first.
async fn attempts_save_and_are_found(store: Store) {
    let a = store
        .record_attempt(&new_attempt(1, 1, "aaa"))
        .await
        .unwrap();
    let b = store
        .record_attempt(&new_attempt(1, 2, "bbb"))
        .await
        .unwrap();
    let mut other = new_attempt(2, 1, "ccc");
    other.fingerprint = "other".into();
    other.forge = "local_forge".into();
    let c = store.record_attempt(&other).await.unwrap();

    let merged_at = millis_now();
    let mut saved = a.clone();
    saved.branch = Some("suture/fix-1".into());
    saved.pr_number = Some(5);
    saved.pr_url = Some("https://github.com/acme/shop/pull/5".into());
    saved.state = AttemptState::Merged;
    saved.releases_before = vec!["1.0.0".into(), "1.0.1".into()];
    saved.merged_at = Some(merged_at);
    saved.verify_until = Some(merged_at + Duration::hours(1));
    saved.note = Some("merged by alice".into());
    store.save_attempt(&saved).await.unwrap();
    let read = store.attempt(a.id).await.unwrap().unwrap();
    assert!(read.updated_at >= a.updated_at);
    assert_eq!(
        read,
        FixAttempt {
            updated_at: read.updated_at,
            ..saved.clone()
        }
    );
    assert!(!read.state.did_not_hold());

    let mut suggested = b.clone();
    suggested.state = AttemptState::Suggested;
    suggested.tracking_issue = Some(9);
    store.save_attempt(&suggested).await.unwrap();
    let mut elsewhere = c.clone();
    elsewhere.pr_number = Some(5);
    store.save_attempt(&elsewhere).await.unwrap();

    let by_pr = store
        .attempt_by_number("github", "acme/shop", 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_pr.id, a.id);
    let by_issue = store
        .attempt_by_number("github", "acme/shop", 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_issue.id, b.id);
    assert_eq!(
        store
            .attempt_by_number("github", "acme/other", 5)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .attempt_by_number("local_forge", "acme/shop", 5)
            .await
            .unwrap()
            .map(|attempt| attempt.id),
        Some(c.id)
    );
    // A number that is both a pull request and a tracking issue: the newest.
    let mut clash = b.clone();
    clash.state = AttemptState::Suggested;
    clash.tracking_issue = Some(5);
    store.save_attempt(&clash).await.unwrap();
    assert_eq!(
        store
            .attempt_by_number("github", "acme/shop", 5)
            .await
            .unwrap()
            .map(|attempt| attempt.id),
        Some(b.id)
    );

    let memory: Vec<_> = store
        .attempts_for_fingerprint("fp")
        .await
        .unwrap()
        .into_iter()
        .map(|attempt| attempt.id)
        .collect();
    assert_eq!(memory, [a.id, b.id]);

    let mut missing = a.clone();
    missing.id = 9999;
    assert!(store.save_attempt(&missing).await.is_err());
    assert_eq!(store.attempt(9999).await.unwrap(), None);
}

/// Recurrence reads: events after a time, oldest first, except those of
/// given releases (an event without a release always counts); and the
/// releases seen before a time.
async fn event_signals_respect_the_window(store: Store) {
    let t0 = millis_now() - Duration::minutes(10);
    let at = |key: &str, fingerprint: &str, has_event: bool, offset: i64, release: Option<&str>| {
        NewSignal {
            received_at: t0 + Duration::seconds(offset),
            release: release.map(str::to_owned),
            ..signal("sentry_sdk", key, Some(fingerprint), has_event)
        }
    };
    // Received out of order, to show the order is by time.
    store
        .commit_signals(&[
            at("e2", "f", true, 2, Some("2.0")),
            at("e0", "f", true, 0, Some("1.0")),
            at("e1", "f", true, 1, Some("1.0")),
            at("e3", "f", true, 3, None),
            at("note", "f", false, 1, Some("9.9")),
            at("elsewhere", "g", true, 1, Some("3.0")),
        ])
        .await
        .unwrap();
    let incident = store
        .list_incidents(10)
        .await
        .unwrap()
        .into_iter()
        .find(|incident| incident.fingerprint == "f")
        .unwrap();
    let keys = |signals: Vec<store::StoredSignal>| -> Vec<String> {
        signals.into_iter().map(|s| s.dedup_key).collect()
    };
    let before_all = t0 - Duration::seconds(1);
    let all = store
        .event_signals(incident.id, before_all, &[], 100)
        .await
        .unwrap();
    assert_eq!(all[0].received_at, t0);
    assert_eq!(all[0].release.as_deref(), Some("1.0"));
    assert_eq!(keys(all), ["e0", "e1", "e2", "e3"]);
    assert_eq!(
        keys(
            store
                .event_signals(incident.id, t0, &[], 100)
                .await
                .unwrap()
        ),
        ["e1", "e2", "e3"]
    );
    assert_eq!(
        keys(
            store
                .event_signals(incident.id, before_all, &["1.0".to_owned()], 100)
                .await
                .unwrap()
        ),
        ["e2", "e3"],
        "events of an excluded release are left out, events without one are not"
    );
    assert_eq!(
        keys(
            store
                .event_signals(
                    incident.id,
                    before_all,
                    &["1.0".to_owned(), "2.0".to_owned()],
                    1
                )
                .await
                .unwrap()
        ),
        ["e3"]
    );
    assert!(
        store
            .event_signals(incident.id, t0 + Duration::seconds(3), &[], 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .event_releases(incident.id, t0 + Duration::seconds(2))
            .await
            .unwrap(),
        ["1.0"]
    );
    assert_eq!(
        store
            .event_releases(incident.id, t0 + Duration::seconds(10))
            .await
            .unwrap(),
        ["1.0", "2.0"]
    );
}

/// Sixteen concurrent read-modify-writes of one counter lose none.
async fn document_updates_serialise(store: Store) {
    assert_eq!(store.document("counter").await.unwrap(), None);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_document("counter", |doc| {
                    let n: i64 = doc.as_deref().map_or(0, |doc| doc.parse().unwrap());
                    Ok::<_, StoreError>((Some((n + 1).to_string()), n))
                })
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..16).collect::<Vec<_>>());
    assert_eq!(
        store.document("counter").await.unwrap().as_deref(),
        Some("16")
    );
    assert_eq!(store.document("other").await.unwrap(), None);
}

/// Why an edit can fail in the document test.
#[derive(Debug)]
enum EditError {
    Refused,
    #[allow(dead_code)]
    Store(StoreError),
}

impl From<StoreError> for EditError {
    fn from(error: StoreError) -> EditError {
        EditError::Store(error)
    }
}

/// An edit that returns no text or fails writes nothing.
async fn document_edit_can_decline_or_fail(store: Store) {
    let looked = store
        .update_document("prs", |doc| Ok::<_, StoreError>((None, doc)))
        .await
        .unwrap();
    assert_eq!(looked, None);
    assert_eq!(store.document("prs").await.unwrap(), None);
    store
        .update_document("prs", |_| Ok::<_, StoreError>((Some("[1]".into()), ())))
        .await
        .unwrap();
    let refused = store
        .update_document("prs", |_| -> Result<(Option<String>, ()), EditError> {
            Err(EditError::Refused)
        })
        .await;
    assert!(matches!(refused, Err(EditError::Refused)));
    let kept = store
        .update_document("prs", |doc| Ok::<_, EditError>((None, doc)))
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("[1]"));
}

/// A database with incidents made by the first schema upgrades in place:
/// the rows stay, in round 1.
async fn upgrades_from_the_first_schema(url: &str) {
    let old = testing::open_at_version(url, 1).await;
    // The rows as the first schema's write path left them.
    testing::execute(
        &old,
        "INSERT INTO incidents (fingerprint, title, state, source, project, upstream_id, \
         signal_count, event_signal_id, first_seen, last_seen, updated_at) \
         VALUES ('f', 'ValueError: boom', 'new', 'sentry_webhook', '1', NULL, 1, NULL, 1, 1, 1); \
         INSERT INTO signals (source, dedup_key, project, kind, title, fingerprint, incident_id, \
         has_event, payload, received_at) VALUES ('sentry_webhook', 'issue-1', '1', \
         'issue.created', 'ValueError: boom', 'f', 1, 0, '{}', 1);",
    )
    .await;
    old.close().await;
    let store = Store::open(url, &store::StoreOptions::default())
        .await
        .unwrap();
    let incidents = store.list_incidents(10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        (incidents[0].round, incidents[0].state, incidents[0].count),
        (1, IncidentState::New, 1)
    );
    let kept = store.signal(1).await.unwrap().unwrap();
    assert_eq!((kept.dedup_key.as_str(), kept.release), ("issue-1", None));
    // The new tables work on the upgraded database.
    let round = store
        .start_round(incidents[0].id, None, "again")
        .await
        .unwrap();
    assert_eq!(round, 2);
    store
        .record_attempt(&new_attempt(incidents[0].id, 2, "aaa"))
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_upgrades_from_the_first_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("suture.db").display());
    upgrades_from_the_first_schema(&url).await;
}

#[tokio::test]
async fn postgres_upgrades_from_the_first_schema() {
    upgrades_from_the_first_schema(&testing::fresh_postgres_url().await).await;
}

/// Recurrences that must name a release: events without one are left out
/// before the limit (a storm of them hides no released one) and counted.
async fn released_events_leave_out_those_without_a_release(store: Store) {
    let t0 = millis_now() - Duration::minutes(10);
    let at = |key: &str, offset: i64, release: Option<&str>| NewSignal {
        received_at: t0 + Duration::seconds(offset),
        release: release.map(str::to_owned),
        ..signal("sentry_sdk", key, Some("f"), true)
    };
    let mut signals: Vec<NewSignal> = (0..5).map(|n| at(&format!("bare-{n}"), n, None)).collect();
    signals.push(at("old", 6, Some("1.0")));
    signals.push(at("new", 7, Some("2.0")));
    store.commit_signals(&signals).await.unwrap();
    let incident = store.list_incidents(10).await.unwrap()[0].id;
    let before_all = t0 - Duration::seconds(1);
    let released = store
        .released_event_signals(incident, before_all, &["1.0".to_owned()], 1)
        .await
        .unwrap();
    assert_eq!(
        released
            .iter()
            .map(|s| s.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    assert_eq!(
        store
            .unreleased_event_count(incident, before_all)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .unreleased_event_count(incident, t0 + Duration::seconds(2))
            .await
            .unwrap(),
        2
    );
}
