//! The workers of `suture serve`: lease a job, run it, give it back done,
//! failed or for a retry.
//!
//! Jobs come in four kinds ([`JobKind`]): a pipeline round of an incident
//! (diagnose → heal → propose, in `pipeline.rs`), a forge event (a pull
//! request merged or closed, a `/suture` comment: `forge_events.rs`), the
//! verification of a merged fix at the end of its quiet window, and the
//! reopening of a resolved incident whose error came back (`verify.rs`).
//! Each worker owns its loop: lease (or wait `poll_millis`), run the job
//! while a heartbeat task renews the lease, repeat until shutdown.
//!
//! Steps are persisted before and after they run (`Ctx::run_step` in
//! `job.rs`), and
//! a step whose output is already persisted is not run again
//! (`Ctx::saved`), so a job resumed after a crash picks up at the first
//! unfinished step. A failure is a typed `Cause`, judged in one place
//! (`Ctx::judge`): one that may pass (a forge unreachable or rate-limited)
//! retries the job with backoff until its last attempt; any other (an
//! unreadable event, a repository that cannot be opened, a forge that
//! refused) is recorded on the timeline and ends the job, so it never
//! loops. The store failing retries the job. On shutdown a worker gets
//! `drain_seconds` to finish its step; past that it releases the lease for
//! the next process to resume.
//!

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use domain::config::Config;
use ingest::metrics::Metrics;
use store::{JobKind, LeasedJob, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cause::Cause;
use crate::forges::Forges;
use crate::job::{Ctx, StepPause, Stop};

/// What every worker shares.
pub(crate) struct Pipeline {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) forges: Arc<Forges>,
    /// Unique to this process: workers append their index.
    pub(crate) owner_prefix: String,
    /// The test hook: where a worker waits inside a step.
    pub(crate) pause: Option<StepPause>,
}

/// Runs worker `index` until `shutdown` is cancelled.
pub(crate) async fn run_worker(pipeline: Arc<Pipeline>, index: usize, shutdown: CancellationToken) {
    let owner = format!("{}-{index}", pipeline.owner_prefix);
    let queue = &pipeline.config.queue;
    let poll = Duration::from_millis(queue.poll_millis);
    while !shutdown.is_cancelled() {
        let lease_until =
            chrono::Utc::now() + chrono::Duration::seconds(queue.lease_seconds as i64);
        match pipeline.store.lease_job(&owner, lease_until).await {
            Ok(Some(job)) => {
                let span = tracing::info_span!(
                    "job",
                    job_id = job.id,
                    kind = job.kind,
                    incident_id = job.incident_id,
                    attempt = job.attempt
                );
                run_job(&pipeline, &owner, job, &shutdown)
                    .instrument(span)
                    .await;
            }
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "leasing a job failed");
                tokio::select! {
                    () = tokio::time::sleep(poll * 4) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
}

async fn run_job(
    pipeline: &Arc<Pipeline>,
    owner: &str,
    job: LeasedJob,
    shutdown: &CancellationToken,
) {
    let lost = Arc::new(AtomicBool::new(false));
    let heartbeat = tokio::spawn(heartbeat(
        pipeline.clone(),
        owner.to_owned(),
        job.id,
        lost.clone(),
    ));
    let ctx = Ctx {
        pipeline,
        owner,
        job: &job,
        shutdown,
        lost: &lost,
        llm: Arc::default(),
    };
    let result = match run_kind(&ctx).await {
        Err(Stop::Failed(cause)) => Err(ctx.judge(None, cause)),
        other => other,
    };
    let result = match result {
        Err(Stop::Fail(failure)) => ctx.fail(&failure.message(false)).await,
        other => other,
    };
    heartbeat.abort();
    let store = &pipeline.store;
    // A round's job that ended (done, or failed for good) frees its slot of
    // `max_concurrent_rounds`.
    if let (Ok(()) | Err(Stop::Ended), JobKind::Pipeline { round }) = (&result, job.job_kind())
        && let Err(error) = store.end_round(job.incident_id, round).await
    {
        tracing::warn!(error = %error_chain(&error), "recording the end of a round failed");
    }
    let ended = match result {
        Ok(()) => store
            .complete_job(job.id, owner)
            .await
            .map(|held| (held, "done")),
        Err(Stop::LeaseLost) => Ok((false, "lease_lost")),
        Err(Stop::Ended) => return,
        Err(Stop::Reschedule(run_after)) => store
            .reschedule_job(job.id, owner, run_after)
            .await
            .map(|held| (held, "rescheduled")),
        Err(Stop::Shutdown) => {
            tracing::info!("drain timed out: releasing the job");
            store
                .release_job(job.id, owner)
                .await
                .map(|held| (held, "released"))
        }
        Err(Stop::Store(error)) => retry_later(pipeline, &job, owner, &error_chain(&error)).await,
        Err(Stop::Retry(failure)) => {
            retry_later(pipeline, &job, owner, &failure.message(false)).await
        }
        // Judged and ended above.
        Err(Stop::Failed(_) | Stop::Fail(_)) => return,
    };
    match ended {
        Ok((_, outcome)) => pipeline.metrics.job(outcome),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "recording the end of a job failed; its lease will expire")
        }
    }
}

/// Puts the job back in the queue after the backoff for its attempt.
async fn retry_later(
    pipeline: &Pipeline,
    job: &LeasedJob,
    owner: &str,
    reason: &str,
) -> Result<(bool, &'static str), StoreError> {
    let delay = backoff(&pipeline.config, job.attempt);
    tracing::warn!(
        reason,
        retry_in_seconds = delay.as_secs(),
        "job failed, retrying"
    );
    let run_after = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    pipeline
        .store
        .retry_job(job.id, owner, reason, run_after)
        .await
        .map(|held| (held, "retried"))
}

/// Runs the job by its kind, after the checks every kind shares.
async fn run_kind(ctx: &Ctx<'_>) -> Result<(), Stop> {
    let config = &ctx.pipeline.config;
    if ctx.job.attempt > config.queue.max_attempts {
        return Err(Cause::GaveUp(config.queue.max_attempts).into());
    }
    // Each kind's future is boxed: inline, the largest (a round that ends
    // in a GitHub pull request) made every job's future as large, and a
    // debug build's worker thread ran out of stack moving it.
    match ctx.job.job_kind() {
        JobKind::Pipeline { round } => Box::pin(crate::pipeline::run(ctx, round)).await,
        JobKind::ForgeEvent { signal_id } => {
            Box::pin(crate::forge_events::run(ctx, signal_id)).await
        }
        JobKind::Verify { attempt_id } => Box::pin(crate::verify::run(ctx, attempt_id)).await,
        JobKind::Regressed { attempt_id } => {
            Box::pin(crate::verify::regressed(ctx, attempt_id)).await
        }
        JobKind::Detect => Box::pin(crate::detect::run(ctx)).await,
        JobKind::Respond { signal_id } => Box::pin(crate::actions::respond(ctx, signal_id)).await,
        JobKind::Action { run_id } => Box::pin(crate::actions::run(ctx, run_id)).await,
        JobKind::Other(kind) => Err(Cause::UnknownJob(kind).into()),
    }
}

/// Renews the lease every `heartbeat_seconds`; flags `lost` when it cannot.
async fn heartbeat(pipeline: Arc<Pipeline>, owner: String, job_id: i64, lost: Arc<AtomicBool>) {
    let queue = &pipeline.config.queue;
    let mut interval = tokio::time::interval(Duration::from_secs(queue.heartbeat_seconds));
    interval.tick().await;
    loop {
        interval.tick().await;
        let lease_until =
            chrono::Utc::now() + chrono::Duration::seconds(queue.lease_seconds as i64);
        match pipeline.store.heartbeat(job_id, &owner, lease_until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("lease lost");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(error) => tracing::warn!(error = %error_chain(&error), "heartbeat failed"),
        }
    }
}

/// Wait before retry `attempt`: `backoff_seconds` doubling, at most an hour.
fn backoff(config: &Config, attempt: i64) -> Duration {
    let exponent = attempt.clamp(1, 12) as u32 - 1;
    Duration::from_secs(
        config
            .queue
            .backoff_seconds
            .saturating_mul(1 << exponent)
            .min(3600),
    )
}

/// An error with its sources, `a: b: c`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use store::{IncidentState, Step};

    use super::*;
    use crate::job::PauseUntil;

    async fn pipeline_with_one_job(
        dir: &std::path::Path,
        edit: impl FnOnce(&mut Config),
    ) -> Arc<Pipeline> {
        let store = store::testing::fresh_sqlite(dir).await;
        let event = r#"{"event_id":"e1","exception":{"values":[{"type":"E","value":"v"}]}}"#;
        store
            .commit_signals(&[store::NewSignal {
                source: "sentry_sdk".into(),
                dedup_key: "1:e1".into(),
                project: Some("1".into()),
                kind: "event".into(),
                title: "E: v".into(),
                fingerprint: Some("exception:x".into()),
                upstream_id: None,
                has_event: true,
                release: None,
                payload: event.into(),
                received_at: chrono::Utc::now(),
            }])
            .await
            .unwrap();
        let mut config = Config::default();
        edit(&mut config);
        Arc::new(Pipeline {
            store,
            config: Arc::new(config),
            metrics: Arc::default(),
            forges: Arc::default(),
            owner_prefix: "test".into(),
            pause: None,
        })
    }

    /// The next job, leased by worker `w` for a minute.
    async fn lease(pipeline: &Pipeline) -> LeasedJob {
        pipeline
            .store
            .lease_job("w", chrono::Utc::now() + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap()
    }

    async fn timeline(pipeline: &Pipeline) -> Vec<String> {
        let entries = pipeline.store.timeline(1).await.unwrap();
        entries.into_iter().map(|entry| entry.message).collect()
    }

    /// A job whose workers keep dying (leases expire) fails for good after
    /// `max_attempts`, instead of looping.
    #[tokio::test]
    async fn a_job_that_keeps_crashing_fails_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline =
            pipeline_with_one_job(dir.path(), |config| config.queue.max_attempts = 2).await;
        let store = &pipeline.store;
        for owner in ["died-1", "died-2"] {
            let expired = chrono::Utc::now() - chrono::Duration::seconds(1);
            store.lease_job(owner, expired).await.unwrap().unwrap();
        }
        let job = lease(&pipeline).await;
        assert_eq!(job.attempt, 3);
        run_job(&pipeline, "w", job, &CancellationToken::new()).await;
        assert_eq!(
            store.job_counts().await.unwrap(),
            [("failed".to_owned(), 1)]
        );
        assert_eq!(
            store.incident(1).await.unwrap().unwrap().state,
            IncidentState::Failed
        );
        assert!(
            timeline(&pipeline)
                .await
                .contains(&"gave up after 2 attempts".to_owned())
        );
    }

    /// No repository serves the incident's project: the incident says so and
    /// the job ends, once.
    #[tokio::test]
    async fn an_incident_without_a_repository_ends_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline_with_one_job(dir.path(), |_| {}).await;
        let job = lease(&pipeline).await;
        run_job(&pipeline, "w", job, &CancellationToken::new()).await;
        assert_eq!(
            pipeline.store.job_counts().await.unwrap(),
            [("done".to_owned(), 1)]
        );
        assert_eq!(
            pipeline.store.incident(1).await.unwrap().unwrap().state,
            IncidentState::NoRepo
        );
        let messages = timeline(&pipeline).await;
        assert_eq!(
            messages.last().unwrap(),
            "no repository is configured for sentry_sdk project 1: add one under [[repos]] in suture.toml"
        );
    }

    /// A repository that cannot be opened fails the job with the reason on
    /// the timeline; it is not retried.
    #[tokio::test]
    async fn a_pipeline_error_is_recorded_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-repo").display().to_string();
        let pipeline = pipeline_with_one_job(dir.path(), |config| {
            config.repos.push(domain::config::RepoConfig {
                name: "gone".into(),
                path: missing,
                // Straight to the round: no learning period to wait out.
                learning_seconds: 0,
                ..Default::default()
            });
        })
        .await;
        let job = lease(&pipeline).await;
        run_job(&pipeline, "w", job, &CancellationToken::new()).await;
        assert_eq!(
            pipeline.store.job_counts().await.unwrap(),
            [("failed".to_owned(), 1)]
        );
        let steps = pipeline.store.steps(1).await.unwrap();
        assert_eq!(
            (steps[0].step.as_str(), steps[0].state.as_str()),
            ("diagnose", "failed")
        );
        assert!(
            timeline(&pipeline)
                .await
                .iter()
                .any(|m| m.starts_with("diagnose failed:"))
        );
    }

    /// Shutdown while a step runs past the drain time: the job is given
    /// back (queued again, the attempt not counted) and its step stays
    /// started, to resume elsewhere. The step is held by the test, not by a
    /// timer, so nothing here depends on timing.
    #[tokio::test]
    async fn a_step_that_outlasts_the_drain_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("repo").display().to_string();
        let mut pipeline = pipeline_with_one_job(dir.path(), |config| {
            config.server.drain_seconds = 0;
            config.repos.push(domain::config::RepoConfig {
                name: "app".into(),
                path: missing,
                // Straight to the round: no learning period to wait out.
                learning_seconds: 0,
                ..Default::default()
            });
        })
        .await;
        Arc::get_mut(&mut pipeline).unwrap().pause = Some(StepPause {
            step: Step::Diagnose,
            until: PauseUntil::Released(Arc::new(tokio::sync::Notify::new())),
        });
        let job = lease(&pipeline).await;
        let shutdown = CancellationToken::new();
        let running = tokio::spawn({
            let (pipeline, shutdown) = (pipeline.clone(), shutdown.clone());
            async move { run_job(&pipeline, "w", job, &shutdown).await }
        });
        while pipeline.store.steps(1).await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        running.await.unwrap();
        assert_eq!(
            pipeline.store.job_counts().await.unwrap(),
            [("queued".to_owned(), 1)]
        );
        let steps = pipeline.store.steps(1).await.unwrap();
        assert_eq!(
            (steps[0].step.as_str(), steps[0].state.as_str()),
            ("diagnose", "started")
        );
    }

    /// Retries back off by doubling, capped at an hour.
    #[test]
    fn backoff_doubles_and_caps() {
        let config = Config::default();
        let waits: Vec<u64> = [1, 2, 3, 20]
            .iter()
            .map(|&a| backoff(&config, a).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 40, 3600]);
    }
}
