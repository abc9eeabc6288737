//! Incidents as the read API and the pipeline see them, and their timeline.
//!
//! Incidents are opened by the ingest write path (`signals.rs`); here they
//! are listed, read with their job, steps and timeline, and moved between
//! [`IncidentState`]s by the pipeline, through the one table of allowed
//! moves (`incident_state.rs`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::incident_state::enter_state;
use crate::{IncidentState, Store, StoreError, begin_write, dispatch, from_millis, millis};

/// One incident: a group of signals with one fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// Row id; the API's `{id}`.
    pub id: i64,
    /// What groups signals into this incident.
    pub fingerprint: String,
    /// The first signal's title.
    pub title: String,
    /// Where it is in the loop.
    pub state: IncidentState,
    /// The first signal's source.
    pub source: String,
    /// The first signal's project (Sentry project, PagerDuty service).
    pub project: Option<String>,
    /// The upstream issue or incident id, when the source has one.
    pub upstream_id: Option<String>,
    /// Signals grouped here (repeats of one delivery count once).
    pub count: i64,
    /// The signal the pipeline diagnoses: the first one carrying an event.
    pub event_signal_id: Option<i64>,
    /// Which pipeline run this is: 1 for the first, one more for each retry
    /// after a fix was rejected or did not hold ([`Store::start_round`]).
    pub round: i64,
    /// When the first signal was received.
    pub first_seen: DateTime<Utc>,
    /// When the latest signal was received.
    pub last_seen: DateTime<Utc>,
    /// What started its latest round: `new_release`, `regression`,
    /// `spike` or `manual`; `None` before any round started.
    pub trigger: Option<String>,
    /// Why it waits, while it is `observed` (`{"reason": …}`) or
    /// `deferred` (`{"limit": …}`).
    pub held_back: Option<serde_json::Value>,
}

/// An incident's pipeline job, for the read API.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// Row id.
    pub id: i64,
    /// What it does: a [`crate::JobKind`] as text (`pipeline`, `pipeline/2`, ...).
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Times it has been leased.
    pub attempts: i64,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Its steps in the order they first started.
    pub steps: Vec<StepSummary>,
}

/// One persisted step of a job.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    /// `diagnose`, `heal`, ...
    pub step: String,
    /// `started`, `finished` or `failed`.
    pub state: String,
    /// Times it has started (more than one after a crash or retry).
    pub runs: i64,
    /// When it last started.
    pub started_at: DateTime<Utc>,
    /// When it finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its output JSON, once finished.
    #[serde(skip)]
    pub output: Option<String>,
}

/// One entry of an incident's audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Row id: entries are in id order.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What kind of entry: `opened`, `job_queued`, `step_started`, ...
    pub kind: String,
    /// One lowercase line for humans.
    pub message: String,
    /// Structured detail, when there is any.
    pub data: Option<serde_json::Value>,
}

const INCIDENT_COLUMNS: &str = "id, fingerprint, title, state, source, project, upstream_id, \
     signal_count, event_signal_id, round, first_seen, last_seen, heal_trigger, held_back";

fn incident_from_row<R: Row>(row: &R) -> Result<Incident, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Incident {
        id: row.try_get("id")?,
        fingerprint: row.try_get("fingerprint")?,
        title: row.try_get("title")?,
        state: row.try_get::<String, _>("state")?.parse()?,
        source: row.try_get("source")?,
        project: row.try_get("project")?,
        upstream_id: row.try_get("upstream_id")?,
        count: row.try_get("signal_count")?,
        event_signal_id: row.try_get("event_signal_id")?,
        round: row.try_get("round")?,
        first_seen: from_millis(row.try_get("first_seen")?),
        last_seen: from_millis(row.try_get("last_seen")?),
        trigger: row.try_get("heal_trigger")?,
        held_back: row
            .try_get::<Option<String>, _>("held_back")?
            .and_then(|text| serde_json::from_str(&text).ok()),
    })
}

impl Store {
    /// The `limit` incidents seen most recently, newest first.
    pub async fn list_incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY last_seen DESC, id DESC LIMIT $1"
        );
        dispatch!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?;
            rows.iter().map(incident_from_row).collect()
        })
    }

    /// The incident with row id `id`.
    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(incident_from_row).transpose()
        })
    }

    /// How many incidents are in each state (states with none are left out).
    pub async fn incident_counts(&self) -> Result<Vec<(IncidentState, i64)>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM incidents GROUP BY state")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| Ok((row.try_get::<String, _>("state")?.parse()?, row.try_get("n")?)))
                .collect()
        })
    }

    /// Moves incident `id` to `state` and records why on its timeline, in
    /// one transaction.
    ///
    /// The move must be one the table of transitions allows from the
    /// incident's current state ([`IncidentState::can_become`]); otherwise
    /// nothing is written and the answer is [`StoreError::Transition`].
    /// For an incident that does not exist, only the timeline entry is
    /// written (as it always was).
    pub async fn set_incident_state(
        &self,
        id: i64,
        state: IncidentState,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let now = millis(Utc::now());
        let data = data.map(|data| data.to_string());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            enter_state!(tx, id, state, now)?;
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'state', $3, $4)",
            )
            .bind(id)
            .bind(now)
            .bind(message)
            .bind(data)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Appends an entry to incident `id`'s timeline.
    pub async fn add_timeline(
        &self,
        id: i64,
        kind: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let data = data.map(|data| data.to_string());
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(millis(Utc::now()))
            .bind(kind)
            .bind(message)
            .bind(data)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Incident `id`'s timeline, oldest first.
    pub async fn timeline(&self, id: i64) -> Result<Vec<TimelineEntry>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, at, kind, message, data FROM timeline WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let data: Option<String> = row.try_get("data")?;
                    Ok(TimelineEntry {
                        id: row.try_get("id")?,
                        at: from_millis(row.try_get("at")?),
                        kind: row.try_get("kind")?,
                        message: row.try_get("message")?,
                        data: data.and_then(|data| serde_json::from_str(&data).ok()),
                    })
                })
                .collect()
        })
    }

    /// Incident `id`'s jobs with their steps.
    pub async fn incident_jobs(&self, id: i64) -> Result<Vec<JobSummary>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, kind, state, attempts, last_error FROM jobs WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut jobs = Vec::with_capacity(rows.len());
            for row in &rows {
                let job_id: i64 = row.try_get("id")?;
                jobs.push(JobSummary {
                    id: job_id,
                    kind: row.try_get("kind")?,
                    state: row.try_get("state")?,
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                    steps: self.steps(job_id).await?,
                });
            }
            Ok(jobs)
        })
    }

    /// Job `job_id`'s steps, in the order they first started.
    pub async fn steps(&self, job_id: i64) -> Result<Vec<StepSummary>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT step, state, runs, output, started_at, finished_at FROM job_steps \
                 WHERE job_id = $1 ORDER BY started_at, step",
            )
            .bind(job_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(StepSummary {
                        step: row.try_get("step")?,
                        state: row.try_get("state")?,
                        runs: row.try_get("runs")?,
                        output: row.try_get("output")?,
                        started_at: from_millis(row.try_get("started_at")?),
                        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_millis),
                    })
                })
                .collect()
        })
    }
}
