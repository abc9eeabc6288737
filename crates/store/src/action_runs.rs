//! Runs of recovery actions (`[[actions]]`): planned when an incident
//! matches, approved, started, finished, each step on the incident's
//! timeline in the transaction that records it.
//!
//! A run is unique per (signal, action), so the job that plans runs for a
//! delivery can be retried without planning twice. A run's outside effect
//! (the command or request) is recorded as begun ([`Store::start_action_run`])
//! before it happens, and only a `queued` run can begin: a run found
//! `running` by a resumed job is never started again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::queue::queue_job;
use crate::{Db, JobKind, Store, StoreError, begin_write, dispatch, from_millis, millis};

/// The first key of the PostgreSQL advisory locks runs of one action begin
/// under (the second is a hash of the action's name).
const ACTION_LOCK_CLASS: i32 = 0x5375_4163; // "SuAc"

/// Where a run is.
pub mod run_state {
    /// Waits for `/suture approve` or `suture action approve`.
    pub const AWAITING_APPROVAL: &str = "awaiting_approval";
    /// Its job is queued.
    pub const QUEUED: &str = "queued";
    /// Its command or request began.
    pub const RUNNING: &str = "running";
    /// Ended; `result` says how.
    pub const DONE: &str = "done";
}

/// One run of a recovery action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRun {
    /// Row id: what `suture action approve` takes.
    pub id: i64,
    /// The incident it answers.
    pub incident_id: i64,
    /// The delivery that made the incident match.
    pub signal_id: i64,
    /// The action's `name`.
    pub action: String,
    /// `auto`, `approve` or `dry_run`, as configured when planned.
    pub mode: String,
    /// Who or what triggered it (the delivery).
    pub triggered_by: String,
    /// See [`run_state`].
    pub state: String,
    /// Once done: `ok`, `failed`, `check_failed`, `skipped_limit`,
    /// `dry_run` or `not_needed`.
    pub result: Option<String>,
    /// Who approved it, for `approve` runs.
    pub approved_by: Option<String>,
    /// The record: request or command (secrets redacted), status, output
    /// tail, the checks before and after.
    pub detail: Option<serde_json::Value>,
    /// When it was planned.
    pub created_at: DateTime<Utc>,
    /// When its command or request began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run to plan.
#[derive(Debug, Clone)]
pub struct NewActionRun<'a> {
    /// See [`ActionRun::incident_id`].
    pub incident_id: i64,
    /// See [`ActionRun::signal_id`].
    pub signal_id: i64,
    /// See [`ActionRun::action`].
    pub action: &'a str,
    /// See [`ActionRun::mode`].
    pub mode: &'a str,
    /// See [`ActionRun::triggered_by`].
    pub triggered_by: &'a str,
    /// [`run_state::QUEUED`] (its job is queued with it),
    /// [`run_state::AWAITING_APPROVAL`] or [`run_state::DONE`].
    pub state: &'a str,
    /// The result of a run planned as done.
    pub result: Option<&'a str>,
    /// See [`ActionRun::detail`].
    pub detail: Option<serde_json::Value>,
    /// What the incident's timeline says.
    pub message: &'a str,
}

const RUN_COLUMNS: &str = "id, incident_id, signal_id, action, mode, triggered_by, state, result, \
     approved_by, detail, created_at, started_at, finished_at";

fn run_from_row<R: Row>(row: &R) -> Result<ActionRun, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row.try_get("id")?;
    let detail = row
        .try_get::<Option<String>, _>("detail")?
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|error| StoreError::Corrupt(format!("action run {id}: {error}")))
        })
        .transpose()?;
    Ok(ActionRun {
        id,
        incident_id: row.try_get("incident_id")?,
        signal_id: row.try_get("signal_id")?,
        action: row.try_get("action")?,
        mode: row.try_get("mode")?,
        triggered_by: row.try_get("triggered_by")?,
        state: row.try_get("state")?,
        result: row.try_get("result")?,
        approved_by: row.try_get("approved_by")?,
        detail,
        created_at: from_millis(row.try_get("created_at")?),
        started_at: row
            .try_get::<Option<i64>, _>("started_at")?
            .map(from_millis),
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at")?
            .map(from_millis),
    })
}

/// Inserts a timeline entry of kind `action` about run `run_id` in `$tx`.
macro_rules! note_run {
    ($tx:expr, $incident_id:expr, $now:expr, $message:expr, $run_id:expr) => {
        sqlx::query(
            "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'action', $3, $4)",
        )
        .bind($incident_id)
        .bind($now)
        .bind($message)
        .bind(serde_json::json!({"action_run": $run_id}).to_string())
        .execute(&mut *$tx)
        .await?;
    };
}

impl Store {
    /// Plans a run: inserts it with its timeline entry and, for a
    /// [`run_state::QUEUED`] run, its job, in one transaction. Answers the
    /// new run's id; `None` when (signal, action) was planned before.
    pub async fn plan_action_run(&self, run: &NewActionRun<'_>) -> Result<Option<i64>, StoreError> {
        let now = millis(Utc::now());
        let finished = (run.state == run_state::DONE).then_some(now);
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO action_runs (incident_id, signal_id, action, mode, triggered_by, state, \
                 result, detail, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (signal_id, action) DO NOTHING RETURNING id",
            )
            .bind(run.incident_id)
            .bind(run.signal_id)
            .bind(run.action)
            .bind(run.mode)
            .bind(run.triggered_by)
            .bind(run.state)
            .bind(run.result)
            .bind(run.detail.as_ref().map(ToString::to_string))
            .bind(now)
            .bind(finished)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                tx.rollback().await?;
                return Ok(None);
            };
            note_run!(tx, run.incident_id, now, run.message, id);
            if run.state == run_state::QUEUED {
                queue_job!(tx, run.incident_id, &JobKind::Action { run_id: id }, now, None::<String>, now);
            }
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// Approves run `id` by `by`: an [`run_state::AWAITING_APPROVAL`] run
    /// becomes queued, with its job and `message` on the timeline, in one
    /// transaction. Answers the run as it was before; `None` when there is
    /// no such run. A run in another state is left as it is.
    pub async fn approve_action_run(
        &self,
        id: i64,
        by: &str,
        message: &str,
    ) -> Result<Option<ActionRun>, StoreError> {
        let now = millis(Utc::now());
        let sql = format!("SELECT {RUN_COLUMNS} FROM action_runs WHERE id = $1");
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *tx).await?;
            let Some(run) = row.as_ref().map(run_from_row).transpose()? else {
                tx.rollback().await?;
                return Ok(None);
            };
            if run.state != run_state::AWAITING_APPROVAL {
                tx.rollback().await?;
                return Ok(Some(run));
            }
            sqlx::query("UPDATE action_runs SET state = $2, approved_by = $3 WHERE id = $1")
                .bind(id)
                .bind(run_state::QUEUED)
                .bind(by)
                .execute(&mut *tx)
                .await?;
            note_run!(tx, run.incident_id, now, message, id);
            queue_job!(tx, run.incident_id, &JobKind::Action { run_id: id }, now, None::<String>, now);
            tx.commit().await?;
            Ok(Some(run))
        })
    }

    /// Records that run `id` begins now, unless another run of the same
    /// action began within `cooldown` (two jobs racing past the limits
    /// check): answers `false`, writing nothing, unless it was queued and
    /// no such run began (a run that began once never begins again). Runs
    /// of one action begin one at a time (SQLite's write lock; a
    /// transaction-scoped advisory lock on the action's name on
    /// PostgreSQL).
    pub async fn start_action_run(
        &self,
        id: i64,
        cooldown: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let action: Option<String> =
                sqlx::query_scalar("SELECT action FROM action_runs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(action) = action else {
                tx.rollback().await?;
                return Ok(false);
            };
            if matches!(self.db, Db::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                    .bind(ACTION_LOCK_CLASS)
                    .bind(crate::documents::lock_key(&action))
                    .execute(&mut *tx)
                    .await?;
            }
            let began = sqlx::query(
                "UPDATE action_runs SET state = $2, started_at = $3 WHERE id = $1 AND state = $4 \
                 AND NOT EXISTS (SELECT 1 FROM action_runs other WHERE other.action = $5 \
                 AND other.id <> $1 AND other.started_at IS NOT NULL AND other.started_at > $6)",
            )
            .bind(id)
            .bind(run_state::RUNNING)
            .bind(millis(now))
            .bind(run_state::QUEUED)
            .bind(&action)
            .bind(millis(now - cooldown))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            tx.commit().await?;
            Ok(began)
        })
    }

    /// Ends run `id` with `result` and `detail`, and `message` on its
    /// incident's timeline (with the detail), in one transaction; a run
    /// already done is left as it is (answers `false`).
    pub async fn finish_action_run(
        &self,
        id: i64,
        result: &str,
        detail: &serde_json::Value,
        message: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(Utc::now());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let incident_id: Option<i64> = sqlx::query_scalar(
                "UPDATE action_runs SET state = $2, result = $3, detail = $4, finished_at = $5 \
                 WHERE id = $1 AND state <> $2 RETURNING incident_id",
            )
            .bind(id)
            .bind(run_state::DONE)
            .bind(result)
            .bind(detail.to_string())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(incident_id) = incident_id else {
                tx.rollback().await?;
                return Ok(false);
            };
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) VALUES ($1, $2, 'action', $3, $4)",
            )
            .bind(incident_id)
            .bind(now)
            .bind(message)
            .bind(serde_json::json!({"action_run": id, "result": result, "detail": detail}).to_string())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Run `id`.
    pub async fn action_run(&self, id: i64) -> Result<Option<ActionRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM action_runs WHERE id = $1");
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(run_from_row).transpose()
        })
    }

    /// The runs of incident `incident_id`, oldest first.
    pub async fn incident_action_runs(
        &self,
        incident_id: i64,
    ) -> Result<Vec<ActionRun>, StoreError> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM action_runs WHERE incident_id = $1 ORDER BY id");
        dispatch!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(incident_id).fetch_all(pool).await?;
            rows.iter().map(run_from_row).collect()
        })
    }

    /// The latest `limit` runs, newest first: `GET /api/actions`.
    pub async fn recent_action_runs(&self, limit: i64) -> Result<Vec<ActionRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM action_runs ORDER BY id DESC LIMIT $1");
        dispatch!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(limit).fetch_all(pool).await?;
            rows.iter().map(run_from_row).collect()
        })
    }

    /// How often action `action` began since `since`, and when it last
    /// began (ever): what its limits are checked against.
    pub async fn action_usage(
        &self,
        action: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        dispatch!(self, pool => {
            let row = sqlx::query(
                "SELECT COUNT(CASE WHEN started_at >= $2 THEN 1 END) AS n, MAX(started_at) AS last \
                 FROM action_runs WHERE action = $1 AND started_at IS NOT NULL",
            )
            .bind(action)
            .bind(millis(since))
            .fetch_one(pool)
            .await?;
            Ok((
                row.try_get("n")?,
                row.try_get::<Option<i64>, _>("last")?.map(from_millis),
            ))
        })
    }
}
