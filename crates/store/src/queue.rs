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

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Db, Store, StoreError, begin_write, dispatch, millis};

/// The kind of the per-incident diagnose → heal job.
pub const PIPELINE_JOB: &str = "pipeline";

/// A job a worker holds the lease of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedJob {
    /// Row id.
    pub id: i64,
    /// The incident it works on.
    pub incident_id: i64,
    /// What kind of job ([`PIPELINE_JOB`]).
    pub kind: String,
    /// This lease is attempt number `attempt` (1 for the first).
    pub attempt: i64,
}

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

const LEASE_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $3) \
     OR (state = 'running' AND lease_until < $3) ORDER BY run_after, id LIMIT 1) \
     RETURNING id, incident_id, kind, attempts";

const LEASE_POSTGRES: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
     attempts = attempts + 1, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_after <= $3) \
     OR (state = 'running' AND lease_until < $3) ORDER BY run_after, id LIMIT 1 \
     FOR UPDATE SKIP LOCKED) \
     RETURNING id, incident_id, kind, attempts";

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
                Ok(LeasedJob {
                    id: row.try_get("id")?,
                    incident_id: row.try_get("incident_id")?,
                    kind: row.try_get("kind")?,
                    attempt: row.try_get("attempts")?,
                })
            })
            .transpose()
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

    /// Records that `owner` starts step `step` of job `job_id` (of incident
    /// `incident_id`), with a timeline entry; `false`, writing nothing, when
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
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'step_started', $3, $4)",
            )
            .bind(job.incident_id)
            .bind(now)
            .bind(format!("{step} started"))
            .bind(serde_json::json!({"job_id": job.id, "step": step, "run": runs, "attempt": job.attempt}).to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Records that step `step` ended (`finished`, or `failed` when `ok` is
    /// false) with `output`, and `message` on the timeline; `false`,
    /// writing nothing, when `owner` no longer holds the job.
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
        let state = if ok { "finished" } else { "failed" };
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
            tx.commit().await?;
            Ok(true)
        })
    }
}
