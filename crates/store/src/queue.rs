//! The durable job queue: jobs leased with a deadline, heart-beaten, retried
//! with backoff, and their steps persisted so a crash resumes where it was.
//!
//! A worker [`Store::lease_job`]s the next ready job (queued and due, or
//! running under a lease that expired because its worker died); PostgreSQL
//! takes it with `FOR UPDATE SKIP LOCKED` so replicas never block on or
//! share a job, SQLite's single writer serialises the same statement. Every
//! write a worker makes afterwards is fenced by its lease: if the lease was
//! lost (it expired and another worker took the job), the write is refused
//! with `Ok(false)` and the worker stops, so a step never finishes twice.
//!
//! A job is unique per (incident, [`JobKind`]), which makes enqueueing
//! idempotent: the pipeline of each round, the handling of each forge
//! delivery and the verification of each merged fix run once however often
//! they are asked for.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::incident_state::enter_state;
use crate::{Db, StepState, Store, StoreError, begin_write, dispatch, millis};

/// The kind of the per-incident diagnose → heal job of round 1 (later
/// rounds are `pipeline/<n>`, see [`JobKind`]).
pub const PIPELINE_JOB: &str = "pipeline";

/// The kind of an incident's [`JobKind::Detect`] job.
const DETECT_JOB: &str = "detect";

/// The signal sources whose deliveries are forge events (pull requests
/// merged or closed, review comments): each accepted one of a kind in
/// [`FORGE_EVENT_KINDS`] gets a [`JobKind::ForgeEvent`] job in the
/// transaction that stores it, so an acknowledged delivery is never lost.
pub const FORGE_SOURCES: &[&str] = &["github", "local_forge"];

/// The forge deliveries (`<event>.<action>`) the service acts on; others
/// (pushes, check runs, …) are kept with no job.
pub const FORGE_EVENT_KINDS: &[&str] = &[
    "pull_request.closed",
    "issue_comment.created",
    "pull_request_review.submitted",
    "pull_request_review_comment.created",
];

/// What a job does, as stored in `jobs.kind`. The text is what makes a job
/// unique per incident, so each variant's text names exactly one piece of
/// work.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Diagnose → heal → propose for round `round` of its incident:
    /// `pipeline` for round 1 (the kind jobs had before rounds existed),
    /// `pipeline/<n>` after.
    Pipeline {
        /// The incident's round this run serves.
        round: i64,
    },
    /// Handle the forge delivery stored as signal `signal_id`
    /// (`forge_event/<signal_id>`); its job has incident 0 until the worker
    /// finds which incident the delivery is about.
    ForgeEvent {
        /// The signal row holding the delivery.
        signal_id: i64,
    },
    /// Check, once its quiet window is over, whether fix attempt
    /// `attempt_id` held (`verify/<attempt_id>`).
    Verify {
        /// The [`crate::FixAttempt`] to verify.
        attempt_id: i64,
    },
    /// The error came back after fix attempt `attempt_id` held and its
    /// incident was resolved: reopen and escalate (`regressed/<attempt_id>`).
    Regressed {
        /// The [`crate::FixAttempt`] that had held.
        attempt_id: i64,
    },
    /// Look again at an `observed` incident that received events: has it
    /// spiked, or reached `min_events`? (`detect`). One row per incident,
    /// queued again by the write path each time it is done.
    Detect,
    /// Answer the incident delivery stored as signal `signal_id` (a
    /// PagerDuty incident triggered, a Sentry-sourced incident opened):
    /// link it across sources and plan the recovery actions it matches
    /// (`respond/<signal_id>`).
    Respond {
        /// The signal row holding the delivery.
        signal_id: i64,
    },
    /// Run recovery action run `run_id` (`action/<run_id>`).
    Action {
        /// The [`crate::ActionRun`].
        run_id: i64,
    },
    /// A kind this build does not know, kept verbatim so such jobs can be
    /// failed with a reason rather than lost.
    Other(String),
}

impl JobKind {
    /// Reads a stored kind; anything unrecognised is [`JobKind::Other`], so
    /// `JobKind::parse(text).to_string() == text` for every `text`.
    pub fn parse(text: &str) -> JobKind {
        /// `text` as a number when it is written the way `Display` writes one.
        fn number(text: &str) -> Option<i64> {
            text.parse::<i64>().ok().filter(|n| n.to_string() == text)
        }
        if text == PIPELINE_JOB {
            return JobKind::Pipeline { round: 1 };
        }
        if text == DETECT_JOB {
            return JobKind::Detect;
        }
        let parsed = match text.split_once('/') {
            Some(("pipeline", round)) => number(round)
                .filter(|round| *round >= 2)
                .map(|round| JobKind::Pipeline { round }),
            Some(("forge_event", id)) => {
                number(id).map(|signal_id| JobKind::ForgeEvent { signal_id })
            }
            Some(("verify", id)) => number(id).map(|attempt_id| JobKind::Verify { attempt_id }),
            Some(("regressed", id)) => {
                number(id).map(|attempt_id| JobKind::Regressed { attempt_id })
            }
            Some(("respond", id)) => number(id).map(|signal_id| JobKind::Respond { signal_id }),
            Some(("action", id)) => number(id).map(|run_id| JobKind::Action { run_id }),
            _ => None,
        };
        parsed.unwrap_or_else(|| JobKind::Other(text.to_owned()))
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobKind::Pipeline { round: 1 } => f.write_str(PIPELINE_JOB),
            JobKind::Pipeline { round } => write!(f, "pipeline/{round}"),
            JobKind::ForgeEvent { signal_id } => write!(f, "forge_event/{signal_id}"),
            JobKind::Verify { attempt_id } => write!(f, "verify/{attempt_id}"),
            JobKind::Regressed { attempt_id } => write!(f, "regressed/{attempt_id}"),
            JobKind::Respond { signal_id } => write!(f, "respond/{signal_id}"),
            JobKind::Action { run_id } => write!(f, "action/{run_id}"),
            JobKind::Detect => f.write_str(DETECT_JOB),
            JobKind::Other(text) => f.write_str(text),
        }
    }
}

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedJob {
    /// Row id.
    pub id: i64,
    /// The incident it works on; 0 for a forge event not yet tied to one.
    pub incident_id: i64,
    /// What kind of job, as stored (read it with [`LeasedJob::job_kind`]).
    pub kind: String,
    /// This lease is attempt number `attempt` (1 for the first).
    pub attempt: i64,
    /// The job's input, when it was enqueued with one (guidance for a
    /// retry round).
    pub payload: Option<serde_json::Value>,
}

impl LeasedJob {
    /// What the job does.
    pub fn job_kind(&self) -> JobKind {
        JobKind::parse(&self.kind)
    }
}

/// Inserts a queued job into transaction `$tx` unless (incident, kind)
/// exists; evaluates to the new job's id (`None` when it existed). One text
/// for every caller, so the write path, rounds and `enqueue_job` queue jobs
/// identically.
macro_rules! insert_job {
    ($tx:expr, $incident_id:expr, $kind:expr, $run_after:expr, $payload:expr, $now:expr) => {{
        let job: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (incident_id, kind, state, attempts, run_after, created_at, \
             updated_at, payload) VALUES ($1, $2, 'queued', 0, $3, $4, $4, $5) \
             ON CONFLICT (incident_id, kind) DO NOTHING RETURNING id",
        )
        .bind($incident_id)
        .bind($kind.to_string())
        .bind($run_after)
        .bind($now)
        .bind($payload)
        .fetch_optional(&mut *$tx)
        .await?;
        job
    }};
}
pub(crate) use insert_job;

/// [`insert_job!`], and for a real incident (not 0) a `job_queued` entry on
/// its timeline when the job is new.
macro_rules! queue_job {
    ($tx:expr, $incident_id:expr, $kind:expr, $run_after:expr, $payload:expr, $now:expr) => {{
        let incident_id: i64 = $incident_id;
        let kind: &crate::JobKind = $kind;
        let now: i64 = $now;
        let job = crate::queue::insert_job!($tx, incident_id, kind, $run_after, $payload, now);
        if let (Some(job_id), true) = (job, incident_id != 0) {
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) \
                 VALUES ($1, $2, 'job_queued', $3, $4)",
            )
            .bind(incident_id)
            .bind(now)
            .bind(format!("{kind} job queued"))
            .bind(serde_json::json!({"job_id": job_id, "kind": kind.to_string()}).to_string())
            .execute(&mut *$tx)
            .await?;
        }
        job
    }};
}
pub(crate) use queue_job;

/// A step as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// `started`, `finished` or `failed`.
    pub state: String,
    /// Times it has started.
    pub runs: i64,
    /// Its output JSON, once finished.
    pub output: Option<String>,
}

impl StepRecord {
    /// Whether the step ended well (its output is kept).
    pub fn finished(&self) -> bool {
        StepState::parse(&self.state) == Some(StepState::Finished)
    }
}

const LEASE_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $3) \
     OR (state = 'running' AND lease_until < $3) ORDER BY run_after, id LIMIT 1) \
     RETURNING id, incident_id, kind, attempts, payload";

const LEASE_POSTGRES: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $3) \
     OR (state = 'running' AND lease_until < $3) ORDER BY run_after, id LIMIT 1 \
     FOR UPDATE SKIP LOCKED) \
     RETURNING id, incident_id, kind, attempts, payload";

impl Store {
    /// Leases the next ready job to `owner` until `lease_until`: a queued job
    /// that is due, or a running one whose lease expired (its worker died).
    pub async fn lease_job(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<LeasedJob>, StoreError> {
        let sql = match self.db {
            Db::Sqlite(_) => LEASE_SQLITE,
            Db::Postgres(_) => LEASE_POSTGRES,
        };
        dispatch!(self, pool => {
            let row = sqlx::query(sql)
                .bind(owner)
                .bind(millis(lease_until))
                .bind(millis(Utc::now()))
                .fetch_optional(pool)
                .await?;
            row.map(|row| {
                let id: i64 = row.try_get("id")?;
                let payload = row
                    .try_get::<Option<String>, _>("payload")?
                    .map(|text| {
                        serde_json::from_str(&text).map_err(|error| {
                            StoreError::Corrupt(format!("job {id}: payload is not JSON: {error}"))
                        })
                    })
                    .transpose()?;
                Ok(LeasedJob {
                    id,
                    incident_id: row.try_get("incident_id")?,
                    kind: row.try_get("kind")?,
                    attempt: row.try_get("attempts")?,
                    payload,
                })
            })
            .transpose()
        })
    }

    /// Queues a `kind` job for incident `incident_id` (0 for none) to run
    /// from `run_after`, with `payload` as its input. Idempotent on
    /// (incident, kind): when that job exists, nothing is written and the
    /// answer is `None`; otherwise the new job's id, noted on the incident's
    /// timeline in the same transaction.
    pub async fn enqueue_job(
        &self,
        incident_id: i64,
        kind: &JobKind,
        run_after: DateTime<Utc>,
        payload: Option<&serde_json::Value>,
    ) -> Result<Option<i64>, StoreError> {
        let now = millis(Utc::now());
        let payload = payload.map(|payload| payload.to_string());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let job = queue_job!(tx, incident_id, kind, millis(run_after), payload.clone(), now);
            tx.commit().await?;
            Ok(job)
        })
    }

    /// Starts the next round of incident `incident_id` (a fix was rejected
    /// or did not hold, and suture tries again): in one transaction the
    /// state goes back to `new` (through the table of transitions, which
    /// allows it from every state), the round up by one, the round's
    /// pipeline job is queued due now with `payload` (guidance for the
    /// retry), and `message` goes on the timeline. Returns the new round.
    /// Fails with `RowNotFound` when there is no such incident.
    pub async fn start_round(
        &self,
        incident_id: i64,
        payload: Option<&serde_json::Value>,
        message: &str,
    ) -> Result<i64, StoreError> {
        let now = millis(Utc::now());
        let payload = payload.map(|payload| payload.to_string());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            enter_state!(tx, incident_id, crate::IncidentState::New, now)?;
            let round: i64 = sqlx::query_scalar(
                "UPDATE incidents SET round = round + 1 WHERE id = $1 RETURNING round",
            )
            .bind(incident_id)
            .fetch_one(&mut *tx)
            .await?;
            let kind = JobKind::Pipeline { round };
            // The `round` entry below says which job: no `job_queued` too.
            let job_id = insert_job!(tx, incident_id, kind, now, payload.clone(), now);
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'round', $3, $4)",
            )
            .bind(incident_id)
            .bind(now)
            .bind(message)
            .bind(serde_json::json!({"round": round, "job_id": job_id}).to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(round)
        })
    }

    /// Extends `owner`'s lease on job `job_id` to `lease_until`; `false` when
    /// the lease was lost.
    pub async fn heartbeat(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            job_id,
            owner,
            millis(lease_until),
            None,
        )
        .await
    }

    /// Marks job `job_id` done; `false` when `owner` no longer holds it.
    pub async fn complete_job(&self, job_id: i64, owner: &str) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, \
             updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running' AND $3 = $3",
            job_id,
            owner,
            0,
            None,
        )
        .await
    }

    /// Puts job `job_id` back in the queue to run again at `run_after`
    /// (backoff), recording `error`; `false` when `owner` no longer holds it.
    pub async fn retry_job(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        run_after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             run_after = $3, updated_at = $4, last_error = $5 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            job_id,
            owner,
            millis(run_after),
            Some(error),
        )
        .await
    }

    /// Marks job `job_id` failed for good with `error`; `false` when `owner`
    /// no longer holds it.
    pub async fn fail_job(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_until = NULL, \
             updated_at = $4, last_error = $5 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running' AND $3 = $3",
            job_id,
            owner,
            0,
            Some(error),
        )
        .await
    }

    /// Gives job `job_id` back untouched (shutdown): queued again at once,
    /// and this lease does not count as an attempt.
    pub async fn release_job(&self, job_id: i64, owner: &str) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             attempts = attempts - 1, run_after = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            job_id,
            owner,
            millis(Utc::now()),
            None,
        )
        .await
    }

    /// Puts job `job_id` back to run again at `run_after` without counting
    /// this lease as an attempt: a job that ran early (woken by a signal)
    /// and has to wait for its time after all. `false` when `owner` no
    /// longer holds it.
    pub async fn reschedule_job(
        &self,
        job_id: i64,
        owner: &str,
        run_after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_leased(
            "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
             attempts = attempts - 1, run_after = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            job_id,
            owner,
            millis(run_after),
            None,
        )
        .await
    }

    /// One fenced update of a leased job: `$1` id, `$2` owner, `$3` `value`,
    /// `$4` now, `$5` `error` (when given).
    async fn update_leased(
        &self,
        sql: &'static str,
        job_id: i64,
        owner: &str,
        value: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, pool => {
            let mut query = sqlx::query(sql)
                .bind(job_id)
                .bind(owner)
                .bind(value)
                .bind(millis(Utc::now()));
            if let Some(error) = error {
                query = query.bind(error);
            }
            Ok(query.execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Jobs waiting to run (queued, due or not): the queue depth metric.
    pub async fn queued_jobs(&self) -> Result<i64, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
                .fetch_one(pool)
                .await?)
        })
    }

    /// Jobs by state, for tests and metrics.
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| Ok((row.try_get("state")?, row.try_get("n")?))).collect()
        })
    }

    /// Step `step` of job `job_id` as persisted, if it ever started.
    pub async fn step(&self, job_id: i64, step: &str) -> Result<Option<StepRecord>, StoreError> {
        dispatch!(self, pool => {
            let row = sqlx::query("SELECT state, runs, output FROM job_steps WHERE job_id = $1 AND step = $2")
                .bind(job_id)
                .bind(step)
                .fetch_optional(pool)
                .await?;
            row.map(|row| {
                Ok(StepRecord {
                    state: row.try_get("state")?,
                    runs: row.try_get("runs")?,
                    output: row.try_get("output")?,
                })
            })
            .transpose()
        })
    }

    /// Records that `owner` starts step `step` of `job`, with a timeline
    /// entry when the job has an incident; `false`, writing nothing, when
    /// `owner` no longer holds the job.
    pub async fn start_step(
        &self,
        job: &LeasedJob,
        owner: &str,
        step: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(Utc::now());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let held = sqlx::query(
                "UPDATE jobs SET updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(job.id)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !held {
                return Ok(false);
            }
            let runs: i64 = sqlx::query_scalar(
                "INSERT INTO job_steps (job_id, step, state, runs, output, started_at, finished_at) \
                 VALUES ($1, $2, 'started', 1, NULL, $3, NULL) \
                 ON CONFLICT (job_id, step) DO UPDATE SET state = 'started', runs = job_steps.runs + 1, \
                 output = NULL, started_at = $3, finished_at = NULL RETURNING runs",
            )
            .bind(job.id)
            .bind(step)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            // A forge event's job has no incident (yet): no timeline row.
            if job.incident_id != 0 {
                sqlx::query(
                    "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'step_started', $3, $4)",
                )
                .bind(job.incident_id)
                .bind(now)
                .bind(format!("{step} started"))
                .bind(serde_json::json!({"job_id": job.id, "step": step, "run": runs, "attempt": job.attempt}).to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records that step `step` ended (`finished`, or `failed` when `ok` is
    /// false) with `output`, and `message` on the timeline when the job has
    /// an incident; `false`, writing nothing, when `owner` no longer holds
    /// the job.
    pub async fn finish_step(
        &self,
        job: &LeasedJob,
        owner: &str,
        step: &str,
        ok: bool,
        output: &serde_json::Value,
        message: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(Utc::now());
        let state = if ok {
            StepState::Finished
        } else {
            StepState::Failed
        }
        .as_str();
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let held = sqlx::query(
                "UPDATE jobs SET updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(job.id)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !held {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE job_steps SET state = $3, output = $4, finished_at = $5 WHERE job_id = $1 AND step = $2",
            )
            .bind(job.id)
            .bind(step)
            .bind(state)
            .bind(output.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if job.incident_id != 0 {
                sqlx::query(
                    "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(job.incident_id)
                .bind(now)
                .bind(if ok { "step_finished" } else { "step_failed" })
                .bind(message)
                .bind(serde_json::json!({"job_id": job.id, "step": step}).to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
