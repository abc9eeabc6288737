//! The service spawns its workers on a multi-threaded runtime, so every
//! store future must be `Send`, also when its arguments are borrowed. This
//! test only has to compile.

use chrono::Utc;
use store::{FixAttempt, JobKind, NewFixAttempt, NewSignal, Store, StoreError};

fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}

/// The loop's store calls, with borrowed arguments as a worker makes them.
async fn worker_calls(
    store: &Store,
    text: &str,
    new: &NewFixAttempt,
    attempt: &FixAttempt,
    batch: &[NewSignal],
    payload: &serde_json::Value,
) -> Result<(), StoreError> {
    store.commit_signals(batch).await?;
    store.lease_job(text, Utc::now()).await?;
    store
        .enqueue_job(
            1,
            &JobKind::Verify { attempt_id: 1 },
            Utc::now(),
            Some(payload),
        )
        .await?;
    store.start_round(1, Some(payload), text).await?;
    store.record_attempt(new).await?;
    store.save_attempt(attempt).await?;
    store.attempt(1).await?;
    store.attempt_for_round(1, 1).await?;
    store.attempts_for_fingerprint(text).await?;
    store.attempt_by_number(text, text, 1).await?;
    store
        .event_signals(1, Utc::now(), &[text.to_owned()], 1)
        .await?;
    store.event_releases(1, Utc::now()).await?;
    store.document(text).await?;
    store
        .update_document(text, |doc| {
            Ok::<_, StoreError>((doc.map(|doc| doc + text), ()))
        })
        .await
}

#[test]
fn store_futures_are_send() {
    let check: fn(Store, String, NewFixAttempt, FixAttempt, Vec<NewSignal>, serde_json::Value) =
        |store, text, new, attempt, batch, payload| {
            spawnable(async move {
                worker_calls(&store, &text, &new, &attempt, &batch, &payload).await
            });
        };
    let _ = check;
}
