//! Rounds and what holds them back: the facts the service's triage and
//! limits read (an incident's event rate, a project's first sighting, the
//! rounds a repository runs and ran, its open pull requests, its LLM
//! tokens), and the writes that admit a round or hold an incident back.
//!
//! A round passes its limits once: [`Store::admit_round`] records it in
//! `rounds` and a resumed job finds it there. The admission of one
//! repository's rounds is serialised on its `round_gates` row, so two
//! workers never both take the last slot of a limit.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::incident_state::enter_state;
use crate::{IncidentState, Store, StoreError, begin_write, dispatch, from_millis, millis};

/// How long a round waits before it asks again for a concurrency slot.
const CONCURRENCY_RECHECK_MS: i64 = 5_000;

/// One hour, in milliseconds: the window of `max_rounds_per_hour`.
const HOUR_MS: i64 = 3_600_000;

/// The limits [`Store::admit_round`] enforces for a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundLimits {
    /// Most rounds started in any hour.
    pub per_hour: u32,
    /// Most rounds running at once.
    pub concurrent: u32,
}

/// What [`Store::admit_round`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The round may run (now, or again after a restart).
    Admitted,
    /// Over `limit` (a `repos[]` key); ask again at `retry_at`.
    Held {
        /// The limit's configuration key, e.g. `max_rounds_per_hour`.
        limit: &'static str,
        /// When the limit may allow it.
        retry_at: DateTime<Utc>,
    },
}

impl Store {
    /// Admits round `round` of incident `incident_id` for repository
    /// `repo`, started by `trigger`, unless `limits` hold it back: in one
    /// transaction the round is recorded as running and the incident's
    /// trigger set (its `held_back` cleared). A round already admitted
    /// (a resumed job) is admitted again without counting twice.
    pub async fn admit_round(
        &self,
        incident_id: i64,
        round: i64,
        repo: &str,
        trigger: &str,
        limits: RoundLimits,
    ) -> Result<Admission, StoreError> {
        let now = millis(Utc::now());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            sqlx::query(
                "INSERT INTO round_gates (repo, admitted) VALUES ($1, 0) ON CONFLICT (repo) DO NOTHING",
            )
            .bind(repo)
            .execute(&mut *tx)
            .await?;
            // Taken first: the row lock that makes admissions take turns.
            sqlx::query("UPDATE round_gates SET admitted = admitted WHERE repo = $1")
                .bind(repo)
                .execute(&mut *tx)
                .await?;
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT round FROM rounds WHERE incident_id = $1 AND round = $2",
            )
            .bind(incident_id)
            .bind(round)
            .fetch_optional(&mut *tx)
            .await?;
            if known.is_some() {
                tx.commit().await?;
                return Ok(Admission::Admitted);
            }
            let running: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM rounds WHERE repo = $1 AND ended_at IS NULL",
            )
            .bind(repo)
            .fetch_one(&mut *tx)
            .await?;
            if running >= i64::from(limits.concurrent) {
                tx.commit().await?;
                return Ok(Admission::Held {
                    limit: "max_concurrent_rounds",
                    retry_at: from_millis(now + CONCURRENCY_RECHECK_MS),
                });
            }
            let (started, oldest): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(started_at) FROM rounds WHERE repo = $1 AND started_at > $2",
            )
            .bind(repo)
            .bind(now - HOUR_MS)
            .fetch_one(&mut *tx)
            .await?;
            if started >= i64::from(limits.per_hour) {
                tx.commit().await?;
                return Ok(Admission::Held {
                    limit: "max_rounds_per_hour",
                    retry_at: from_millis(oldest.unwrap_or(now) + HOUR_MS),
                });
            }
            sqlx::query(
                "INSERT INTO rounds (incident_id, round, repo, heal_trigger, started_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(incident_id)
            .bind(round)
            .bind(repo)
            .bind(trigger)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE round_gates SET admitted = admitted + 1 WHERE repo = $1")
                .bind(repo)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE incidents SET heal_trigger = $2, held_back = NULL WHERE id = $1")
                .bind(incident_id)
                .bind(trigger)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Admission::Admitted)
        })
    }

    /// The trigger round `round` of incident `incident_id` was admitted
    /// with, once it was.
    pub async fn round_trigger(
        &self,
        incident_id: i64,
        round: i64,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT heal_trigger FROM rounds WHERE incident_id = $1 AND round = $2",
            )
            .bind(incident_id)
            .bind(round)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Marks round `round` of incident `incident_id` as no longer running
    /// (its job ended, whatever the outcome): it frees a concurrency slot.
    pub async fn end_round(&self, incident_id: i64, round: i64) -> Result<(), StoreError> {
        let now = millis(Utc::now());
        dispatch!(self, pool => {
            sqlx::query(
                "UPDATE rounds SET ended_at = $3 WHERE incident_id = $1 AND round = $2 \
                 AND ended_at IS NULL",
            )
            .bind(incident_id)
            .bind(round)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Holds incident `incident_id` back in `state` (`observed` or
    /// `deferred`) with `why` (`{"reason": …}` or `{"limit": …}`), and
    /// says so on its timeline with `message`, unless it is already held
    /// there for the same reason. Answers whether anything changed, so a
    /// round asking again does not repeat its timeline entry.
    pub async fn hold_back(
        &self,
        incident_id: i64,
        state: IncidentState,
        why: &Value,
        message: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(Utc::now());
        let why_text = why.to_string();
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let current: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT state, held_back FROM incidents WHERE id = $1",
            )
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((current_state, current_why)) = current else {
                return Ok(false);
            };
            if current_state == state.as_str() && current_why.as_deref() == Some(why_text.as_str()) {
                return Ok(false);
            }
            enter_state!(tx, incident_id, state, now)?;
            sqlx::query("UPDATE incidents SET held_back = $2 WHERE id = $1")
                .bind(incident_id)
                .bind(&why_text)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) \
                 VALUES ($1, $2, 'held_back', $3, $4)",
            )
            .bind(incident_id)
            .bind(now)
            .bind(message)
            .bind(&why_text)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// When suture first saw `project`: its oldest incident's first
    /// sighting. `None` for a project it has not seen.
    pub async fn project_first_seen(
        &self,
        project: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, pool => {
            let first: Option<i64> =
                sqlx::query_scalar("SELECT MIN(first_seen) FROM incidents WHERE project = $1")
                    .bind(project)
                    .fetch_one(pool)
                    .await?;
            Ok(first.map(from_millis))
        })
    }

    /// Incident `incident_id`'s events in each of the `windows` windows of
    /// `window_ms` ending at `now`, oldest first: the last count is the
    /// current window's.
    pub async fn event_windows(
        &self,
        incident_id: i64,
        now: DateTime<Utc>,
        window_ms: i64,
        windows: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let end = millis(now);
        let window_ms = window_ms.max(1);
        let count = windows.max(1) as i64;
        let start = end - window_ms * count;
        let rows: Vec<(i64, i64)> = dispatch!(self, pool => {
            sqlx::query_as(
                "SELECT (received_at - $2) / $3 AS bucket, COUNT(*) FROM signals \
                 WHERE incident_id = $1 AND has_event = 1 AND received_at > $2 \
                 AND received_at <= $4 GROUP BY bucket",
            )
            .bind(incident_id)
            .bind(start)
            .bind(window_ms)
            .bind(end)
            .fetch_all(pool)
            .await?
        });
        let mut counts = vec![0; count as usize];
        for (bucket, events) in rows {
            // `received_at == end` falls one past the last bucket.
            let index = bucket.clamp(0, count - 1) as usize;
            counts[index] += events;
        }
        Ok(counts)
    }

    /// Pull requests open for rounds of repository `repo`.
    pub async fn open_pull_requests(&self, repo: &str) -> Result<i64, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM fix_attempts a JOIN rounds r \
                 ON a.incident_id = r.incident_id AND a.round = r.round \
                 WHERE r.repo = $1 AND a.state = 'open'",
            )
            .bind(repo)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The final states of repository `repo`'s latest `limit` fixes that
    /// reached one (`held`, `failed`, `rejected`), newest first: what the
    /// circuit breaker reads.
    pub async fn latest_verdicts(
        &self,
        repo: &str,
        limit: i64,
    ) -> Result<Vec<crate::AttemptState>, StoreError> {
        let states: Vec<String> = dispatch!(self, pool => {
            sqlx::query_scalar(
                "SELECT a.state FROM fix_attempts a JOIN rounds r \
                 ON a.incident_id = r.incident_id AND a.round = r.round \
                 WHERE r.repo = $1 AND a.state IN ('held', 'failed', 'rejected') \
                 ORDER BY a.updated_at DESC, a.id DESC LIMIT $2",
            )
            .bind(repo)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        states.iter().map(|state| state.parse()).collect()
    }

    /// Adds `tokens` to what repository `repo` spent with the LLM on UTC
    /// day `day` (`YYYY-MM-DD`); answers the day's total.
    pub async fn add_llm_tokens(
        &self,
        repo: &str,
        day: &str,
        tokens: u64,
    ) -> Result<u64, StoreError> {
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        dispatch!(self, pool => {
            let total: i64 = sqlx::query_scalar(
                "INSERT INTO llm_usage (repo, day, tokens) VALUES ($1, $2, $3) \
                 ON CONFLICT (repo, day) DO UPDATE SET tokens = llm_usage.tokens + excluded.tokens \
                 RETURNING tokens",
            )
            .bind(repo)
            .bind(day)
            .bind(tokens)
            .fetch_one(pool)
            .await?;
            Ok(total.max(0) as u64)
        })
    }

    /// What repository `repo` spent with the LLM on UTC day `day`.
    pub async fn llm_tokens(&self, repo: &str, day: &str) -> Result<u64, StoreError> {
        dispatch!(self, pool => {
            let total: Option<i64> =
                sqlx::query_scalar("SELECT tokens FROM llm_usage WHERE repo = $1 AND day = $2")
                    .bind(repo)
                    .bind(day)
                    .fetch_optional(pool)
                    .await?;
            Ok(total.unwrap_or(0).max(0) as u64)
        })
    }
}
