//! Fix attempts: every fix suture proposed, one per (incident, round), and
//! what the forge and production made of it.
//!
//! Two readers need them. The pipeline reads a fingerprint's attempts before
//! it proposes anything (the fix memory: a patch that was rejected or did not
//! hold is never proposed again), and the forge-event and verify jobs find
//! the attempt a pull request, a tracking issue or a quiet window is about,
//! and move it on.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError, dispatch, from_millis, millis};

/// What became of a fix attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// Recorded; the branch, pull request or issue is being created.
    Proposing,
    /// A pull request is open for review.
    Open,
    /// A tracking issue carries the diff (`suggest` mode).
    Suggested,
    /// Merged; its quiet window runs.
    Merged,
    /// The error stayed away through the quiet window: the fix held.
    Held,
    /// The error recurred after the merge: the fix did not hold.
    Failed,
    /// The pull request was closed unmerged.
    Rejected,
    /// Dropped without a verdict on the patch (stopped by a human, or the
    /// proposal could not be made).
    Abandoned,
}

impl AttemptState {
    /// Every state.
    pub const ALL: [AttemptState; 8] = [
        AttemptState::Proposing,
        AttemptState::Open,
        AttemptState::Suggested,
        AttemptState::Merged,
        AttemptState::Held,
        AttemptState::Failed,
        AttemptState::Rejected,
        AttemptState::Abandoned,
    ];

    /// The state's name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Proposing => "proposing",
            AttemptState::Open => "open",
            AttemptState::Suggested => "suggested",
            AttemptState::Merged => "merged",
            AttemptState::Held => "held",
            AttemptState::Failed => "failed",
            AttemptState::Rejected => "rejected",
            AttemptState::Abandoned => "abandoned",
        }
    }

    /// Whether the attempt's patch is known bad for its fingerprint (it
    /// recurred, or a human rejected it): never propose it again.
    pub fn did_not_hold(self) -> bool {
        matches!(self, AttemptState::Failed | AttemptState::Rejected)
    }
}

impl FromStr for AttemptState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<AttemptState, StoreError> {
        AttemptState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown attempt state {text:?}")))
    }
}

impl fmt::Display for AttemptState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One proposed fix and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixAttempt {
    /// Row id; `verify/<id>` jobs name it.
    pub id: i64,
    /// The incident it fixes.
    pub incident_id: i64,
    /// The incident's fingerprint, so later incidents of the same failure
    /// share the memory.
    pub fingerprint: String,
    /// The incident's round it was proposed in.
    pub round: i64,
    /// How the fix was made: `revert`, `agent`, ...
    pub strategy: String,
    /// A hash of the patch, so the same patch is recognised again.
    pub patch_sha: String,
    /// The repository's mode when it was proposed: `propose`, `suggest`, ...
    pub mode: String,
    /// Which forge: `github`, `local_forge`.
    pub forge: String,
    /// The repository on the forge (`owner/name`).
    pub forge_repo: String,
    /// The branch the fix was pushed to.
    pub branch: Option<String>,
    /// The pull request's number, once opened.
    pub pr_number: Option<i64>,
    /// The pull request's web address.
    pub pr_url: Option<String>,
    /// The tracking issue's number (suggest mode, or an escalation).
    pub tracking_issue: Option<i64>,
    /// What became of it.
    pub state: AttemptState,
    /// The releases seen with the error before the fix, so verification
    /// tells events of old releases from a real recurrence.
    pub releases_before: Vec<String>,
    /// When it was merged.
    pub merged_at: Option<DateTime<Utc>>,
    /// When the quiet window after the merge ends.
    pub verify_until: Option<DateTime<Utc>>,
    /// When it reached its final state.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it is in its state, for humans.
    pub note: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What is known of an attempt when it is first recorded, before the forge
/// is touched.
#[derive(Debug, Clone)]
pub struct NewFixAttempt {
    /// See [`FixAttempt::incident_id`].
    pub incident_id: i64,
    /// See [`FixAttempt::fingerprint`].
    pub fingerprint: String,
    /// See [`FixAttempt::round`].
    pub round: i64,
    /// See [`FixAttempt::strategy`].
    pub strategy: String,
    /// See [`FixAttempt::patch_sha`].
    pub patch_sha: String,
    /// See [`FixAttempt::mode`].
    pub mode: String,
    /// See [`FixAttempt::forge`].
    pub forge: String,
    /// See [`FixAttempt::forge_repo`].
    pub forge_repo: String,
}

const ATTEMPT_COLUMNS: &str = "id, incident_id, fingerprint, round, strategy, patch_sha, mode, \
     forge, forge_repo, branch, pr_number, pr_url, tracking_issue, state, releases_before, \
     merged_at, verify_until, closed_at, note, created_at, updated_at";

fn attempt_from_row<R: Row>(row: &R) -> Result<FixAttempt, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row.try_get("id")?;
    let releases_before = match row.try_get::<Option<String>, _>("releases_before")? {
        None => Vec::new(),
        Some(text) => serde_json::from_str(&text).map_err(|error| {
            StoreError::Corrupt(format!(
                "fix attempt {id}: releases_before is not a JSON array of strings: {error}"
            ))
        })?,
    };
    let time = |column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
    };
    Ok(FixAttempt {
        id,
        incident_id: row.try_get("incident_id")?,
        fingerprint: row.try_get("fingerprint")?,
        round: row.try_get("round")?,
        strategy: row.try_get("strategy")?,
        patch_sha: row.try_get("patch_sha")?,
        mode: row.try_get("mode")?,
        forge: row.try_get("forge")?,
        forge_repo: row.try_get("forge_repo")?,
        branch: row.try_get("branch")?,
        pr_number: row.try_get("pr_number")?,
        pr_url: row.try_get("pr_url")?,
        tracking_issue: row.try_get("tracking_issue")?,
        state: row.try_get::<String, _>("state")?.parse()?,
        releases_before,
        merged_at: time("merged_at")?,
        verify_until: time("verify_until")?,
        closed_at: time("closed_at")?,
        note: row.try_get("note")?,
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

impl Store {
    /// Records a new attempt in state `proposing`, before anything is pushed
    /// to the forge. Idempotent across restarts: when the incident's round
    /// already has an attempt, that row is returned unchanged, so a job that
    /// resumes after a crash picks up the attempt it had started.
    pub async fn record_attempt(&self, new: &NewFixAttempt) -> Result<FixAttempt, StoreError> {
        let now = millis(Utc::now());
        let insert = format!(
            "INSERT INTO fix_attempts (incident_id, fingerprint, round, strategy, patch_sha, mode, \
             forge, forge_repo, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (incident_id, round) DO NOTHING RETURNING {ATTEMPT_COLUMNS}"
        );
        let inserted = dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(new.incident_id)
                .bind(&new.fingerprint)
                .bind(new.round)
                .bind(&new.strategy)
                .bind(&new.patch_sha)
                .bind(&new.mode)
                .bind(&new.forge)
                .bind(&new.forge_repo)
                .bind(AttemptState::Proposing.as_str())
                .bind(now)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(attempt_from_row).transpose()?
        });
        match inserted {
            Some(attempt) => Ok(attempt),
            // Rows are never deleted, so the conflicting one is there.
            None => self
                .attempt_for_round(new.incident_id, new.round)
                .await?
                .ok_or_else(|| sqlx::Error::RowNotFound.into()),
        }
    }

    /// Writes what can change of `attempt` (branch, pull request, tracking
    /// issue, state, releases, times and note) and stamps `updated_at`.
    /// Fails with `RowNotFound` when there is no such attempt.
    pub async fn save_attempt(&self, attempt: &FixAttempt) -> Result<(), StoreError> {
        let releases = serde_json::to_string(&attempt.releases_before)
            .map_err(|error| StoreError::Corrupt(format!("releases_before: {error}")))?;
        let updated = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE fix_attempts SET branch = $2, pr_number = $3, pr_url = $4, \
                 tracking_issue = $5, state = $6, releases_before = $7, merged_at = $8, \
                 verify_until = $9, closed_at = $10, note = $11, updated_at = $12 WHERE id = $1",
            )
            .bind(attempt.id)
            .bind(&attempt.branch)
            .bind(attempt.pr_number)
            .bind(&attempt.pr_url)
            .bind(attempt.tracking_issue)
            .bind(attempt.state.as_str())
            .bind(releases)
            .bind(attempt.merged_at.map(millis))
            .bind(attempt.verify_until.map(millis))
            .bind(attempt.closed_at.map(millis))
            .bind(&attempt.note)
            .bind(millis(Utc::now()))
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(sqlx::Error::RowNotFound.into());
        }
        Ok(())
    }

    /// The attempt with row id `id`.
    pub async fn attempt(&self, id: i64) -> Result<Option<FixAttempt>, StoreError> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM fix_attempts WHERE id = $1");
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(attempt_from_row).transpose()
        })
    }

    /// The attempt of round `round` of incident `incident_id`, if one was
    /// recorded.
    pub async fn attempt_for_round(
        &self,
        incident_id: i64,
        round: i64,
    ) -> Result<Option<FixAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM fix_attempts WHERE incident_id = $1 AND round = $2"
        );
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(incident_id)
                .bind(round)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(attempt_from_row).transpose()
        })
    }

    /// Every attempt at fingerprint `fingerprint`, oldest first: the fix
    /// memory the pipeline reads before proposing again.
    pub async fn attempts_for_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Vec<FixAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM fix_attempts WHERE fingerprint = $1 ORDER BY id"
        );
        dispatch!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(fingerprint).fetch_all(pool).await?;
            rows.iter().map(attempt_from_row).collect()
        })
    }

    /// The attempt whose pull request or tracking issue is number `number`
    /// in repository `forge_repo` on `forge`: what a forge event is about.
    /// Should several match (an issue number reused as a pull request
    /// number on another forge's numbering), the newest wins.
    pub async fn attempt_by_number(
        &self,
        forge: &str,
        forge_repo: &str,
        number: i64,
    ) -> Result<Option<FixAttempt>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM fix_attempts WHERE forge = $1 AND forge_repo = $2 \
             AND (pr_number = $3 OR tracking_issue = $3) ORDER BY id DESC LIMIT 1"
        );
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(forge)
                .bind(forge_repo)
                .bind(number)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(attempt_from_row).transpose()
        })
    }

    /// How many attempts there are per strategy and state (pairs with none
    /// are left out): the metrics of what suture proposes and what holds.
    pub async fn attempt_counts(&self) -> Result<Vec<(String, AttemptState, i64)>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT strategy, state, COUNT(*) AS n FROM fix_attempts \
                 GROUP BY strategy, state ORDER BY strategy, state",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get("strategy")?,
                        row.try_get::<String, _>("state")?.parse()?,
                        row.try_get("n")?,
                    ))
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state reads back from its name; only the two verdicts against
    /// the patch forbid proposing it again.
    #[test]
    fn states_round_trip() {
        for state in AttemptState::ALL {
            assert_eq!(state.as_str().parse::<AttemptState>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::json!(state.as_str())
            );
        }
        let bad: Vec<_> = AttemptState::ALL
            .into_iter()
            .filter(|state| state.did_not_hold())
            .collect();
        assert_eq!(bad, [AttemptState::Failed, AttemptState::Rejected]);
        assert!("merged ".parse::<AttemptState>().is_err());
    }
}
