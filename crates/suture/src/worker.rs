//! The workers of `suture serve`: lease a job, run it, give it back done,
//! failed or for a retry.
//!
//! Jobs come in three kinds ([`JobKind`]): a pipeline round of an incident
//! (diagnose → heal → propose, in `pipeline.rs`), a forge event (a pull
//! request merged or closed, a `/suture` comment: `forge_events.rs`), and
//! the verification of a merged fix at the end of its quiet window
//! (`verify.rs`). Each worker owns its loop: lease (or wait
//! `poll_millis`), run the job while a heartbeat task renews the lease,
//! repeat until shutdown.
//!
//! Steps are persisted before and after they run, and a step whose output
//! is already persisted is not run again, so a job resumed after a crash
//! picks up at the first unfinished step. Failures split three ways: the
//! store failing or a forge being unreachable is transient (retry with
//! backoff: the job goes back to the queue); anything else (an unreadable
//! event, a repository that cannot be opened, heal unable to run) is
//! recorded on the timeline and ends the job, so it never loops. On
//! shutdown a worker gets `drain_seconds` to finish its step; past that it
//! releases the lease for the next process to resume.
//!
//! Test hook (documented in README.md): with `SUTURE_TEST_PAUSE_IN_STEP=STEP`
//! a worker sleeps `SUTURE_TEST_PAUSE_SECONDS` (default 600) right after
//! persisting the start of `STEP`, so a test can SIGKILL it mid-pipeline.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use domain::config::Config;
use ingest::metrics::Metrics;
use serde_json::Value;
use store::{IncidentState, JobKind, LeasedJob, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::forges::Forges;

/// What every worker shares.
pub(crate) struct Pipeline {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) forges: Arc<Forges>,
    /// Unique to this process: workers append their index.
    pub(crate) owner_prefix: String,
}

/// Why a job stopped before its end.
pub(crate) enum Stop {
    /// The store failed: retry later.
    Store(StoreError),
    /// Something outside failed in a way that may pass (a forge or an
    /// upstream API unreachable, rate-limited): retry later.
    Retry(String),
    /// Something failed for good: end the job (and fail its incident).
    Fail(String),
    /// The job ran before its time (woken early) and must wait until then.
    Reschedule(chrono::DateTime<chrono::Utc>),
    /// Another worker holds the job now: touch nothing.
    LeaseLost,
    /// Shutdown outlasted the drain: give the job back.
    Shutdown,
    /// The job was already ended for good (failed); nothing is left to record.
    Ended,
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Stop {
        Stop::Store(error)
    }
}

/// One leased job being run: what its steps need to persist themselves.
pub(crate) struct Ctx<'a> {
    pub(crate) pipeline: &'a Arc<Pipeline>,
    pub(crate) owner: &'a str,
    pub(crate) job: &'a LeasedJob,
    shutdown: &'a CancellationToken,
    lost: &'a AtomicBool,
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
    };
    let result = match run_kind(&ctx).await {
        Err(Stop::Fail(message)) => ctx.fail(&message).await,
        other => other,
    };
    heartbeat.abort();
    let store = &pipeline.store;
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
        Err(Stop::Retry(reason) | Stop::Fail(reason)) => {
            retry_later(pipeline, &job, owner, &reason).await
        }
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
        let message = format!("gave up after {} attempts", config.queue.max_attempts);
        return ctx.fail(&message).await;
    }
    match ctx.job.job_kind() {
        JobKind::Pipeline { round } => crate::pipeline::run(ctx, round).await,
        JobKind::ForgeEvent { signal_id } => crate::forge_events::run(ctx, signal_id).await,
        JobKind::Verify { attempt_id } => crate::verify::run(ctx, attempt_id).await,
        JobKind::Regressed { attempt_id } => crate::verify::regressed(ctx, attempt_id).await,
        JobKind::Other(kind) => ctx.fail(&format!("unknown job kind {kind:?}")).await,
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

impl Ctx<'_> {
    pub(crate) fn store(&self) -> &Store {
        &self.pipeline.store
    }

    pub(crate) fn config(&self) -> &Config {
        &self.pipeline.config
    }

    pub(crate) fn forges(&self) -> &Forges {
        &self.pipeline.forges
    }

    /// Records that `incident` reached `milestone` now.
    pub(crate) fn milestone(&self, milestone: &'static str, incident: &store::Incident) {
        let since = (chrono::Utc::now() - incident.first_seen)
            .to_std()
            .unwrap_or_default();
        self.pipeline.metrics.milestone(milestone, since);
    }

    /// Whether step `step` of this job already finished (its output is
    /// persisted): then it is not run again.
    pub(crate) async fn finished_output(&self, step: &str) -> Result<Option<Value>, Stop> {
        let record = self.store().step(self.job.id, step).await?;
        Ok(record
            .filter(|record| record.state == "finished")
            .map(|record| {
                record
                    .output
                    .and_then(|output| serde_json::from_str(&output).ok())
                    .unwrap_or(Value::Null)
            }))
    }

    /// Persists the start of `step`, runs `work`, and returns its result; on
    /// shutdown the step gets the drain time to finish.
    pub(crate) async fn run_step<T>(
        &self,
        step: &str,
        work: impl Future<Output = T>,
    ) -> Result<T, Stop> {
        // Shutting down: start nothing new; the job resumes here elsewhere.
        if self.shutdown.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        if self.lost.load(Ordering::SeqCst)
            || !self.store().start_step(self.job, self.owner, step).await?
        {
            return Err(Stop::LeaseLost);
        }
        let started = Instant::now();
        let pause = test_pause(step);
        let drain = Duration::from_secs(self.config().server.drain_seconds);
        let finished = async {
            if let Some(pause) = pause {
                tracing::warn!(
                    step,
                    seconds = pause.as_secs(),
                    "test hook: pausing inside the step"
                );
                tokio::time::sleep(pause).await;
            }
            work.await
        };
        let finished = finished.instrument(tracing::info_span!("step", step));
        tokio::pin!(finished);
        let result = tokio::select! {
            result = &mut finished => result,
            () = async { self.shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
                self.pipeline.metrics.job_step(step, "interrupted", started.elapsed());
                return Err(Stop::Shutdown);
            }
        };
        self.pipeline
            .metrics
            .job_step(step, "finished", started.elapsed());
        if self.lost.load(Ordering::SeqCst) {
            return Err(Stop::LeaseLost);
        }
        Ok(result)
    }

    /// Records the end of `step` with its output and a timeline message.
    pub(crate) async fn finish(
        &self,
        step: &str,
        ok: bool,
        output: &Value,
        message: &str,
    ) -> Result<(), Stop> {
        if self
            .store()
            .finish_step(self.job, self.owner, step, ok, output, message)
            .await?
        {
            Ok(())
        } else {
            Err(Stop::LeaseLost)
        }
    }

    /// Ends the job for good; its incident (if it has one) is failed with
    /// `message`.
    pub(crate) async fn fail(&self, message: &str) -> Result<(), Stop> {
        if self.job.incident_id != 0 {
            self.store()
                .set_incident_state(self.job.incident_id, IncidentState::Failed, message, None)
                .await?;
        }
        if !self
            .store()
            .fail_job(self.job.id, self.owner, message)
            .await?
        {
            return Err(Stop::LeaseLost);
        }
        self.pipeline.metrics.job("failed");
        Err(Stop::Ended)
    }
}

/// Runs blocking work (git, tree-sitter, the sandbox) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(format!("the step panicked: {error}")))
}

/// The test hook's pause for `step`, when one is asked for.
fn test_pause(step: &str) -> Option<Duration> {
    let wanted = std::env::var("SUTURE_TEST_PAUSE_IN_STEP").ok()?;
    if wanted != step {
        return None;
    }
    let seconds = std::env::var("SUTURE_TEST_PAUSE_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(600);
    Some(Duration::from_secs(seconds))
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
    use super::*;

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
        })
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
        let job = store
            .lease_job("w", chrono::Utc::now() + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
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
        let job = pipeline
            .store
            .lease_job("w", chrono::Utc::now() + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
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
                ..Default::default()
            });
        })
        .await;
        let job = pipeline
            .store
            .lease_job("w", chrono::Utc::now() + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
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
