//! The pipeline workers of `suture serve`: lease a job, run diagnose → heal
//! for its incident, persist each step, and give the job back done, failed
//! or for a retry.
//!
//! Each worker owns its loop: lease (or wait `poll_millis`), run the job
//! while a heartbeat task renews the lease, repeat until shutdown. A step
//! whose output is already persisted is not run again, so a job resumed
//! after a crash picks up at the first unfinished step. Failures split two
//! ways: the store failing is transient (retry with backoff: the job goes
//! back to the queue), the pipeline failing (an unreadable event, a
//! repository that cannot be opened, heal unable to run) is recorded on the
//! timeline and ends the job, so it never loops. On shutdown a worker gets
//! `drain_seconds` to finish its step; past that it releases the lease for
//! the next process to resume.
//!
//! Test hook (documented in README.md): with `SUTURE_TEST_PAUSE_IN_STEP=STEP`
//! a worker sleeps `SUTURE_TEST_PAUSE_SECONDS` (default 600) right after
//! persisting the start of `STEP`, so a test can SIGKILL it mid-pipeline.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent::diagnose::DiagnoseOptions;
use domain::config::{Config, RepoConfig};
use ingest::metrics::Metrics;
use repo::pathmap::CodeMapping;
use serde_json::{Value, json};
use store::{IncidentState, LeasedJob, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What every worker shares.
pub(crate) struct Pipeline {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) metrics: Arc<Metrics>,
    /// Unique to this process: workers append their index.
    pub(crate) owner_prefix: String,
}

/// Why a job stopped before its end.
enum Stop {
    /// The store failed: retry later.
    Store(StoreError),
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
    let result = run_steps(pipeline, owner, &job, shutdown, &lost).await;
    heartbeat.abort();
    let store = &pipeline.store;
    let ended = match result {
        Ok(()) => store
            .complete_job(job.id, owner)
            .await
            .map(|held| (held, "done")),
        Err(Stop::LeaseLost) => Ok((false, "lease_lost")),
        Err(Stop::Ended) => return,
        Err(Stop::Shutdown) => {
            tracing::info!("drain timed out: releasing the job");
            store
                .release_job(job.id, owner)
                .await
                .map(|held| (held, "released"))
        }
        Err(Stop::Store(error)) => {
            let delay = backoff(&pipeline.config, job.attempt);
            tracing::warn!(error = %error_chain(&error), retry_in_seconds = delay.as_secs(), "job failed on the store, retrying");
            let run_after =
                chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            store
                .retry_job(job.id, owner, &error_chain(&error), run_after)
                .await
                .map(|held| (held, "retried"))
        }
    };
    match ended {
        Ok((_, outcome)) => pipeline.metrics.job(outcome),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "recording the end of a job failed; its lease will expire")
        }
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

async fn run_steps(
    pipeline: &Arc<Pipeline>,
    owner: &str,
    job: &LeasedJob,
    shutdown: &CancellationToken,
    lost: &AtomicBool,
) -> Result<(), Stop> {
    let store = &pipeline.store;
    let config = &pipeline.config;
    let incident_id = job.incident_id;
    if job.attempt > config.queue.max_attempts {
        let message = format!("gave up after {} attempts", config.queue.max_attempts);
        store
            .set_incident_state(incident_id, IncidentState::Failed, &message, None)
            .await?;
        if !store.fail_job(job.id, owner, &message).await? {
            return Err(Stop::LeaseLost);
        }
        pipeline.metrics.job("failed");
        return Err(Stop::Ended);
    }
    let Some(incident) = store.incident(incident_id).await? else {
        return Ok(());
    };
    let signal = match incident.event_signal_id {
        Some(id) => store.signal(id).await?,
        None => None,
    };
    let Some(signal) = signal else {
        store
            .add_timeline(
                incident_id,
                "skipped",
                "no event with a stack trace to diagnose",
                None,
            )
            .await?;
        return Ok(());
    };
    let Some(repo_config) = config
        .repo_for(&signal.source, signal.project.as_deref())
        .cloned()
    else {
        let message = format!(
            "no repository is configured for {} project {}: add one under [[repos]] in suture.toml",
            signal.source,
            signal.project.as_deref().unwrap_or("-")
        );
        store
            .set_incident_state(incident_id, IncidentState::NoRepo, &message, None)
            .await?;
        return Ok(());
    };
    let event = match domain::event::parse_event(signal.payload.as_bytes()) {
        Ok(parsed) => parsed.event,
        Err(error) => {
            return fail(
                pipeline,
                owner,
                job,
                &format!("the stored event cannot be read: {error}"),
            )
            .await;
        }
    };
    let options = diagnose_options(&repo_config);

    // Step 1: diagnose.
    if store
        .step(job.id, "diagnose")
        .await?
        .is_none_or(|step| step.state != "finished")
    {
        store
            .set_incident_state(
                incident_id,
                IncidentState::Diagnosing,
                &format!("diagnosing against {}", repo_config.name),
                None,
            )
            .await?;
        let repo_path = repo_config.path.clone();
        let event = event.clone();
        let options = options.clone();
        let work = tokio::task::spawn_blocking(move || -> Result<Value, String> {
            let repo = repo::git::Repo::open(std::path::Path::new(&repo_path))
                .map_err(|e| error_chain(&e))?;
            let mut index = repo::index::CodeIndex::new();
            let diagnosis = agent::diagnose::diagnose(&repo, &mut index, &event, &options)
                .map_err(|e| error_chain(&e))?;
            serde_json::to_value(&diagnosis).map_err(|e| e.to_string())
        });
        let output = run_step(pipeline, owner, job, "diagnose", shutdown, lost, work).await?;
        match output {
            Ok(diagnosis) => {
                let message = match diagnosis.get("culprit").and_then(Value::as_str) {
                    Some(culprit) => {
                        format!("diagnosed: culprit {}", &culprit[..culprit.len().min(10)])
                    }
                    None => "diagnosed: no culprit with confidence".to_owned(),
                };
                finish(pipeline, owner, job, "diagnose", true, &diagnosis, &message).await?;
            }
            Err(error) => {
                finish(
                    pipeline,
                    owner,
                    job,
                    "diagnose",
                    false,
                    &json!({"error": error}),
                    &format!("diagnose failed: {error}"),
                )
                .await?;
                return fail(pipeline, owner, job, &format!("diagnose failed: {error}")).await;
            }
        }
    }
    if repo_config.mode == "observe" {
        store
            .set_incident_state(
                incident_id,
                IncidentState::Diagnosed,
                "diagnosed; the repository is in observe mode",
                None,
            )
            .await?;
        return Ok(());
    }

    // Step 2: heal.
    if store
        .step(job.id, "heal")
        .await?
        .is_none_or(|step| step.state != "finished")
    {
        store
            .set_incident_state(
                incident_id,
                IncidentState::Healing,
                "looking for the smallest safe fix",
                None,
            )
            .await?;
        let heal_options = heal_options(&repo_config, options);
        let repo_path = repo_config.path.clone();
        let runtime = tokio::runtime::Handle::current();
        let work = tokio::task::spawn_blocking(move || -> Result<Value, String> {
            let repo = repo::git::Repo::open(std::path::Path::new(&repo_path))
                .map_err(|e| error_chain(&e))?;
            let mut index = repo::index::CodeIndex::new();
            let (report, transcript) =
                agent::heal::heal(&repo, &mut index, &event, &heal_options, &runtime)
                    .map_err(|e| error_chain(&e))?;
            let mut output = serde_json::to_value(&report).map_err(|e| e.to_string())?;
            if let Some(transcript) = transcript {
                output["transcript"] =
                    serde_json::to_value(&transcript).map_err(|e| e.to_string())?;
            }
            Ok(output)
        });
        let output = run_step(pipeline, owner, job, "heal", shutdown, lost, work).await?;
        match output {
            Ok(report) => {
                let outcome = report
                    .get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned();
                finish(
                    pipeline,
                    owner,
                    job,
                    "heal",
                    true,
                    &report,
                    &format!("heal finished: {outcome}"),
                )
                .await?;
                let (state, message) = if outcome == "proven" {
                    (IncidentState::Fixed, "a fix was proven in the sandbox")
                } else {
                    (
                        IncidentState::Unfixed,
                        "no proven fix: a human takes it from here",
                    )
                };
                store
                    .set_incident_state(incident_id, state, message, None)
                    .await?;
            }
            Err(error) => {
                finish(
                    pipeline,
                    owner,
                    job,
                    "heal",
                    false,
                    &json!({"error": error}),
                    &format!("heal failed: {error}"),
                )
                .await?;
                return fail(pipeline, owner, job, &format!("heal failed: {error}")).await;
            }
        }
    }
    Ok(())
}

/// Persists the start of `step`, runs `work`, and returns its result; on
/// shutdown the step gets the drain time to finish.
async fn run_step(
    pipeline: &Pipeline,
    owner: &str,
    job: &LeasedJob,
    step: &str,
    shutdown: &CancellationToken,
    lost: &AtomicBool,
    work: tokio::task::JoinHandle<Result<Value, String>>,
) -> Result<Result<Value, String>, Stop> {
    // Shutting down: start nothing new; the job resumes here elsewhere.
    if shutdown.is_cancelled() {
        return Err(Stop::Shutdown);
    }
    if lost.load(Ordering::SeqCst) || !pipeline.store.start_step(job, owner, step).await? {
        return Err(Stop::LeaseLost);
    }
    let started = Instant::now();
    let pause = test_pause(step);
    let drain = Duration::from_secs(pipeline.config.server.drain_seconds);
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
            .unwrap_or_else(|error| Err(format!("the step panicked: {error}")))
    };
    let finished = finished.instrument(tracing::info_span!("step", step));
    tokio::pin!(finished);
    let result = tokio::select! {
        result = &mut finished => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => {
            pipeline.metrics.job_step(step, "interrupted", started.elapsed());
            return Err(Stop::Shutdown);
        }
    };
    pipeline.metrics.job_step(
        step,
        if result.is_ok() { "finished" } else { "failed" },
        started.elapsed(),
    );
    if lost.load(Ordering::SeqCst) {
        return Err(Stop::LeaseLost);
    }
    Ok(result)
}

async fn finish(
    pipeline: &Pipeline,
    owner: &str,
    job: &LeasedJob,
    step: &str,
    ok: bool,
    output: &Value,
    message: &str,
) -> Result<(), Stop> {
    if pipeline
        .store
        .finish_step(job, owner, step, ok, output, message)
        .await?
    {
        Ok(())
    } else {
        Err(Stop::LeaseLost)
    }
}

/// Ends the job for good: the incident is failed with `message`.
async fn fail(
    pipeline: &Pipeline,
    owner: &str,
    job: &LeasedJob,
    message: &str,
) -> Result<(), Stop> {
    pipeline
        .store
        .set_incident_state(job.incident_id, IncidentState::Failed, message, None)
        .await?;
    if !pipeline.store.fail_job(job.id, owner, message).await? {
        return Err(Stop::LeaseLost);
    }
    pipeline.metrics.job("failed");
    Err(Stop::Ended)
}

fn diagnose_options(repo: &RepoConfig) -> DiagnoseOptions {
    DiagnoseOptions {
        days: repo.days,
        max_commits: repo.max_commits,
        code_mappings: repo
            .code_mappings
            .iter()
            .filter_map(|mapping| CodeMapping::from_str(mapping).ok())
            .collect(),
        ..DiagnoseOptions::default()
    }
}

fn heal_options(repo: &RepoConfig, diagnose: DiagnoseOptions) -> agent::heal::HealOptions {
    use repo::sandbox::{Backend, SandboxConfig};
    let backend = match repo.sandbox.as_str() {
        "process" => Backend::Process,
        "docker" => Backend::Docker {
            image: repo.docker_image.clone().unwrap_or_default(),
        },
        _ => Backend::Bubblewrap,
    };
    let mut scope = repo::scope::ScopePolicy::default();
    scope.deny.extend(repo.deny.iter().cloned());
    agent::heal::HealOptions {
        diagnose,
        test_command: repo.test_command.clone(),
        sandbox: SandboxConfig {
            backend,
            timeout: Duration::from_secs(repo.test_timeout_seconds),
            memory_bytes: repo.test_memory_mib.saturating_mul(1 << 20),
            ..SandboxConfig::default()
        },
        scope,
        llm: agent::llm::LlmConfig::from_env(),
        guidance: None,
    }
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
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
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
