//! One leased job being run ([`Ctx`]) and the one step runner: a step is
//! persisted before and after it runs ([`Ctx::run_step`]), a finished step
//! is not run again ([`Ctx::saved`]), and every failure is a typed
//! [`Cause`] judged in one place ([`Ctx::judge`]).
//!
//! The kill switch (`suture pause`) is honoured here too: a step with an
//! outside effect asks [`Ctx::unless_paused`] first, and the LLM agent of a
//! step asks the check of [`Ctx::llm_stop_check`] before each request. A
//! paused job is rescheduled, not failed (its attempt is not counted), and
//! runs again once resumed; a step whose LLM attempt a pause cut short is
//! not saved, so it runs whole after the resume.
//!
//! Test hook ([`StepPause`], documented in README.md): with
//! `SUTURE_TEST_PAUSE_IN_STEP=STEP` a worker sleeps
//! `SUTURE_TEST_PAUSE_SECONDS` (default 600) right after persisting the
//! start of `STEP`, so a test can SIGKILL the binary mid-pipeline;
//! in-process tests hold the step until they release it instead.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use domain::config::Config;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use store::{IncidentState, LeasedJob, Step, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cause::Cause;
use crate::forges::{Forges, RepoForge};
use crate::worker::Pipeline;

/// A test hook (documented in README.md): a worker waits right after
/// persisting the start of `step`, so a test can stop or kill the service
/// in the middle of it.
#[derive(Debug, Clone)]
pub(crate) struct StepPause {
    pub(crate) step: Step,
    pub(crate) until: PauseUntil,
}

/// How long a [`StepPause`] lasts.
#[derive(Debug, Clone)]
pub(crate) enum PauseUntil {
    /// A fixed time: the binary's hook, for tests that kill the process.
    Elapsed(Duration),
    /// Until the test notifies: in-process tests, with no timing at all.
    #[cfg_attr(not(test), allow(dead_code))]
    Released(Arc<tokio::sync::Notify>),
}

impl StepPause {
    /// `SUTURE_TEST_PAUSE_IN_STEP=STEP`, for `SUTURE_TEST_PAUSE_SECONDS`
    /// (default 600).
    pub(crate) fn from_env() -> Option<StepPause> {
        let step = Step::parse(&std::env::var("SUTURE_TEST_PAUSE_IN_STEP").ok()?)?;
        let seconds = std::env::var("SUTURE_TEST_PAUSE_SECONDS")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(600);
        Some(StepPause {
            step,
            until: PauseUntil::Elapsed(Duration::from_secs(seconds)),
        })
    }

    async fn wait(&self) {
        tracing::warn!(step = %self.step, "test hook: pausing inside the step");
        match &self.until {
            PauseUntil::Elapsed(duration) => tokio::time::sleep(*duration).await,
            PauseUntil::Released(release) => release.notified().await,
        }
    }
}

/// How soon a paused job looks at the kill switch again: a resume takes
/// effect within this (plus a poll).
const PAUSE_RECHECK: Duration = Duration::from_secs(5);

/// Why a job stopped before its end.
pub(crate) enum Stop {
    /// The store failed: retry later.
    Store(StoreError),
    /// Something failed, not yet judged: the step runner (or, outside a
    /// step, the job runner) decides whether it is retried or ends the job.
    Failed(Cause),
    /// A failure that may pass (a forge unreachable, rate-limited): retry
    /// the job later.
    Retry(Failure),
    /// A failure for good: end the job (and fail its incident).
    Fail(Failure),
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

impl From<Cause> for Stop {
    fn from(cause: Cause) -> Stop {
        Stop::Failed(cause)
    }
}

/// A judged failure: its cause and the step it ended, if any.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) step: Option<Step>,
    pub(crate) cause: Cause,
}

impl Failure {
    /// What the timeline, the incident and the fix memory say of it.
    pub(crate) fn message(&self, will_retry: bool) -> String {
        match self.step {
            Some(step) => format!(
                "{step} failed{}: {}",
                if will_retry { " (will retry)" } else { "" },
                self.cause.chain()
            ),
            None => self.cause.chain(),
        }
    }
}

/// What a finished step says of itself on the timeline.
pub(crate) trait StepOutput: Serialize + DeserializeOwned {
    /// One line for the timeline.
    fn summary(&self, step: Step) -> String;
}

/// The outputs of effects that say what they did in a `message` key.
impl StepOutput for Value {
    fn summary(&self, step: Step) -> String {
        self.get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} done", step.as_str().replace('_', " ")))
    }
}

/// One leased job being run: what its steps need to persist themselves.
pub(crate) struct Ctx<'a> {
    pub(crate) pipeline: &'a Arc<Pipeline>,
    pub(crate) owner: &'a str,
    pub(crate) job: &'a LeasedJob,
    pub(crate) shutdown: &'a CancellationToken,
    pub(crate) lost: &'a AtomicBool,
    /// What the kill switch knows of this job's LLM use.
    pub(crate) llm: Arc<std::sync::Mutex<LlmUse>>,
}

/// A job's LLM use, as the kill switch sees it.
#[derive(Debug, Default)]
pub(crate) struct LlmUse {
    /// The repository whose LLM agent the job runs, once
    /// [`Ctx::llm_stop_check`] handed it a check: its reproduce and heal
    /// steps then do not start while that repository is paused.
    repo: Option<String>,
    /// The reason of the pause that stopped an LLM attempt of the running
    /// step.
    stopped: Option<String>,
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

    /// The service's metrics.
    pub(crate) fn metrics(&self) -> &ingest::metrics::Metrics {
        &self.pipeline.metrics
    }

    /// Records that `incident` reached `milestone` now.
    pub(crate) fn milestone(&self, milestone: &'static str, incident: &store::Incident) {
        let since = (chrono::Utc::now() - incident.first_seen)
            .to_std()
            .unwrap_or_default();
        self.pipeline.metrics.milestone(milestone, since);
    }

    /// The `[[repos]]` name of the repository `forge` serves (its forge
    /// name when no configured repository has it).
    pub(crate) fn repo_of(&self, forge: &RepoForge) -> String {
        self.config()
            .repos
            .iter()
            .find(|repo| {
                self.forges().for_repo(&repo.name).is_some_and(|served| {
                    served.kind == forge.kind && served.forge_repo == forge.forge_repo
                })
            })
            .map_or_else(|| forge.forge_repo.clone(), |repo| repo.name.clone())
    }

    /// Holds the job while repository `repo` (or everything) is paused:
    /// says `paused: <reason>` on incident `incident_id`'s timeline (once,
    /// however often the job looks again) and reschedules the job. Read
    /// from the store each time, so every replica honours a pause made
    /// anywhere.
    pub(crate) async fn unless_paused(&self, repo: &str, incident_id: i64) -> Result<(), Stop> {
        let pauses = self.store().pauses().await?;
        let Some(pause) = pauses.for_repo(repo) else {
            return Ok(());
        };
        Err(self.paused(incident_id, &pause.reason).await?)
    }

    /// Records a pause with `reason` on incident `incident_id` (0: none)
    /// and answers the reschedule.
    async fn paused(&self, incident_id: i64, reason: &str) -> Result<Stop, Stop> {
        if incident_id != 0 {
            self.store()
                .note_paused(incident_id, &format!("paused: {reason}"))
                .await?;
        }
        tracing::info!(
            reason,
            recheck_seconds = PAUSE_RECHECK.as_secs(),
            "held by the kill switch until resumed"
        );
        let recheck = chrono::Duration::from_std(PAUSE_RECHECK).unwrap_or_default();
        Ok(Stop::Reschedule(chrono::Utc::now() + recheck))
    }

    /// A stop check for the LLM agent of repository `repo`: before each
    /// request it reads the kill switch from the store, and a pause (or a
    /// store that cannot say) stops the attempt and marks this job, so the
    /// step is rescheduled instead of saved. From then on the job's steps
    /// that run the agent (reproduce, heal) wait for a resume before they
    /// start, rather than redo their sandbox work up to the first request
    /// at every look.
    pub(crate) fn llm_stop_check(&self, repo: &str) -> agent::llm::StopCheck {
        lock(&self.llm).repo = Some(repo.to_owned());
        let (store, repo, paused) = (self.store().clone(), repo.to_owned(), self.llm.clone());
        agent::llm::StopCheck::new(move || {
            let (store, repo, paused) = (store.clone(), repo.clone(), paused.clone());
            Box::pin(async move {
                let reason = match store.pauses().await {
                    Ok(pauses) => pauses.for_repo(&repo).map(|pause| pause.reason.clone()),
                    Err(error) => Some(format!(
                        "the kill switch could not be read: {}",
                        crate::worker::error_chain(&error)
                    )),
                };
                if let Some(reason) = &reason {
                    lock(&paused).stopped = Some(reason.clone());
                }
                reason
            })
        })
    }

    /// The output of step `step` of this job when it already finished (it
    /// is then not run again).
    pub(crate) async fn saved<O: StepOutput>(&self, step: Step) -> Result<Option<O>, Stop> {
        let Some(record) = self.store().step(self.job.id, step.as_str()).await? else {
            return Ok(None);
        };
        if !record.finished() {
            return Ok(None);
        }
        let output = record.output.as_deref().unwrap_or("null");
        serde_json::from_str(output)
            .map(Some)
            .map_err(|error| self.judge(Some(step), Cause::Output(error)))
    }

    /// Whether the failure `cause` (of `step`, if any) is retried or ends
    /// the job: the one policy. A failure that may pass is retried until the
    /// last attempt; any other ends the job at once.
    pub(crate) fn judge(&self, step: Option<Step>, cause: Cause) -> Stop {
        let retry = cause.is_transient() && self.job.attempt < self.config().queue.max_attempts;
        let failure = Failure { step, cause };
        if retry {
            Stop::Retry(failure)
        } else {
            Stop::Fail(failure)
        }
    }

    /// Runs `work` as step `step`: persists its start, runs it (on shutdown
    /// it gets the drain time to finish), and persists its end with its
    /// output, or with its failure judged by [`Ctx::judge`]. Other stops
    /// (the store, a lost lease) leave the step started, to run again.
    pub(crate) async fn run_step<O: StepOutput>(
        &self,
        step: Step,
        work: impl Future<Output = Result<O, Stop>>,
    ) -> Result<O, Stop> {
        // Shutting down: start nothing new; the job resumes here elsewhere.
        if self.shutdown.is_cancelled() {
            return Err(Stop::Shutdown);
        }
        let llm_repo = match step {
            Step::Reproduce | Step::Heal => lock(&self.llm).repo.clone(),
            _ => None,
        };
        if let Some(repo) = llm_repo {
            self.unless_paused(&repo, self.job.incident_id).await?;
        }
        let name = step.as_str();
        if self.lost.load(Ordering::SeqCst)
            || !self.store().start_step(self.job, self.owner, name).await?
        {
            return Err(Stop::LeaseLost);
        }
        let started = Instant::now();
        let pause = self
            .pipeline
            .pause
            .as_ref()
            .filter(|pause| pause.step == step);
        let drain = Duration::from_secs(self.config().server.drain_seconds);
        let finished = async {
            if let Some(pause) = pause {
                pause.wait().await;
            }
            work.await
        };
        let finished = finished.instrument(tracing::info_span!("step", step = name));
        let Some(result) = within_drain(finished, self.shutdown, drain).await else {
            self.pipeline
                .metrics
                .job_step(name, "interrupted", started.elapsed());
            return Err(Stop::Shutdown);
        };
        self.pipeline
            .metrics
            .job_step(name, "finished", started.elapsed());
        if self.lost.load(Ordering::SeqCst) {
            return Err(Stop::LeaseLost);
        }
        let stopped = lock(&self.llm).stopped.take();
        if let Some(reason) = stopped {
            // The step's LLM attempt was cut short by a pause: its result is
            // not the step's; the step stays started and runs again.
            return Err(self.paused(self.job.incident_id, &reason).await?);
        }
        let output = match result {
            Ok(output) => output,
            Err(Stop::Failed(cause)) => {
                let judged = self.judge(Some(step), cause);
                let (Stop::Retry(failure) | Stop::Fail(failure)) = &judged else {
                    unreachable!("judge returns a retry or a failure");
                };
                let message = failure.message(matches!(judged, Stop::Retry(_)));
                self.finish(step, false, &json!({ "error": message }), &message)
                    .await?;
                return Err(judged);
            }
            Err(stop) => return Err(stop),
        };
        let value = match serde_json::to_value(&output) {
            Ok(value) => value,
            Err(error) => return Err(self.judge(Some(step), Cause::Output(error))),
        };
        self.finish(step, true, &value, &output.summary(step))
            .await?;
        Ok(output)
    }

    /// Records the end of `step` with its output and a timeline message.
    async fn finish(
        &self,
        step: Step,
        ok: bool,
        output: &Value,
        message: &str,
    ) -> Result<(), Stop> {
        if self
            .store()
            .finish_step(self.job, self.owner, step.as_str(), ok, output, message)
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

/// Locks `mutex`, ignoring poisoning: the state behind it is a plain note.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `work` to its end, unless `shutdown` is cancelled and `drain` then
/// passes first: a step under way gets the drain time to finish, and is
/// given up (None) after it.
async fn within_drain<T>(
    work: impl Future<Output = T>,
    shutdown: &CancellationToken,
    drain: Duration,
) -> Option<T> {
    tokio::select! {
        result = work => Some(result),
        () = async { shutdown.cancelled().await; tokio::time::sleep(drain).await } => None,
    }
}

/// Runs blocking work (git, tree-sitter, the sandbox) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Cause> + Send + 'static,
) -> Result<T, Stop> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(Cause::Panicked(error.to_string())))
        .map_err(Stop::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On shutdown a step keeps running for exactly the drain time, then
    /// is given up; one that ends within it keeps its result. The clock is
    /// paused: the drain is measured in virtual time, not waited for.
    #[tokio::test(start_paused = true)]
    async fn a_step_gets_the_drain_time_after_shutdown() {
        let drain = Duration::from_secs(30);
        let shutdown = CancellationToken::new();
        let begun = tokio::time::Instant::now();
        let stuck = within_drain(std::future::pending::<()>(), &shutdown, drain);
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            shutdown.cancel();
        };
        let (given_up, ()) = tokio::join!(stuck, cancel);
        assert_eq!(given_up, None);
        assert_eq!(begun.elapsed(), Duration::from_secs(35));

        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let begun = tokio::time::Instant::now();
        let quick = async {
            tokio::time::sleep(Duration::from_secs(29)).await;
            "finished"
        };
        assert_eq!(
            within_drain(quick, &shutdown, drain).await,
            Some("finished")
        );
        assert_eq!(begun.elapsed(), Duration::from_secs(29));
    }

    /// A job on incident 1 of a fresh store, leased by worker `w`.
    async fn leased(dir: &std::path::Path) -> (Arc<Pipeline>, LeasedJob) {
        let store = store::testing::fresh_sqlite(dir).await;
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
                payload: "{}".into(),
                received_at: chrono::Utc::now(),
            }])
            .await
            .unwrap();
        let job = store
            .lease_job("w", chrono::Utc::now() + chrono::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        let pipeline = Arc::new(Pipeline {
            store,
            config: Arc::default(),
            metrics: Arc::default(),
            forges: Arc::default(),
            owner_prefix: "test".into(),
            pause: None,
        });
        (pipeline, job)
    }

    /// A step whose LLM attempt the kill switch stopped is not saved: the
    /// job is rescheduled with `paused: <reason>` on the timeline and the
    /// step stays started. While paused, the step does not start again;
    /// once resumed it runs and is saved.
    #[tokio::test]
    async fn a_step_cut_short_by_a_pause_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (pipeline, job) = leased(dir.path()).await;
        let (shutdown, lost) = (CancellationToken::new(), AtomicBool::new(false));
        let ctx = Ctx {
            pipeline: &pipeline,
            owner: "w",
            job: &job,
            shutdown: &shutdown,
            lost: &lost,
            llm: Arc::default(),
        };
        let store = &pipeline.store;
        let check = ctx.llm_stop_check("app");
        let agent = || async {
            // What the agent loop does before each request.
            let stopped = check.reason().await;
            Ok::<_, Stop>(json!({ "message": format!("stopped: {stopped:?}") }))
        };
        // An operator pauses while the step runs.
        let paused_midway = async {
            store.pause(Some("app"), "freeze", None).await.unwrap();
            agent().await
        };
        let first = ctx.run_step(Step::Heal, paused_midway).await;
        assert!(matches!(first, Err(Stop::Reschedule(_))));
        let record = store.step(job.id, "heal").await.unwrap().unwrap();
        assert_eq!((record.state.as_str(), record.runs), ("started", 1));
        let again = ctx.run_step(Step::Heal, agent()).await;
        assert!(matches!(again, Err(Stop::Reschedule(_))));
        let record = store.step(job.id, "heal").await.unwrap().unwrap();
        assert_eq!(record.runs, 1, "a paused step does not start");
        let paused: Vec<String> = store
            .timeline(job.incident_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.kind == "paused")
            .map(|entry| entry.message)
            .collect();
        assert_eq!(paused, ["paused: freeze"]);

        store.resume(Some("app")).await.unwrap();
        let output = ctx.run_step(Step::Heal, agent()).await.ok().unwrap();
        assert_eq!(output["message"], "stopped: None");
        assert!(
            store
                .step(job.id, "heal")
                .await
                .unwrap()
                .unwrap()
                .finished()
        );
        // Other repositories and other steps were never held.
        assert_eq!(
            ctx.unless_paused("other", job.incident_id).await.ok(),
            Some(())
        );
    }

    /// Without a shutdown, the drain never cuts a step short, however long
    /// it takes.
    #[tokio::test(start_paused = true)]
    async fn without_shutdown_a_step_runs_to_its_end() {
        let shutdown = CancellationToken::new();
        let long = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            7
        };
        assert_eq!(within_drain(long, &shutdown, Duration::ZERO).await, Some(7));
    }
}
