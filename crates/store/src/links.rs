//! Incidents linked across sources: one failure seen as a PagerDuty page
//! and as a Sentry trace is two incidents (their fingerprints differ), and
//! a link says they are one.
//!
//! A link is kept in both directions (`incident_links`), so each incident
//! reads its own side with one indexed query, and is written with a
//! timeline entry on both incidents in one transaction: a link is never
//! shown on one side only. Which incidents to link is the service's rule;
//! this module stores and finds.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError, begin_write, dispatch, millis};

impl Store {
    /// Links incidents `a` and `b` both ways, with `note_a` on `a`'s
    /// timeline and `note_b` on `b`'s (kind `linked`, the other's id as
    /// data). Answers whether the link is new; an existing link writes
    /// nothing.
    pub async fn link_incidents(
        &self,
        a: i64,
        b: i64,
        note_a: &str,
        note_b: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(Utc::now());
        dispatch!(self, pool => {
            let mut tx = begin_write!(self, pool);
            let mut new = false;
            for (from, to, note) in [(a, b, note_a), (b, a, note_b)] {
                let inserted = sqlx::query(
                    "INSERT INTO incident_links (incident_id, linked_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (incident_id, linked_id) DO NOTHING",
                )
                .bind(from)
                .bind(to)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if inserted {
                    new = true;
                    sqlx::query(
                        "INSERT INTO timeline (incident_id, at, kind, message, data) \
                         VALUES ($1, $2, 'linked', $3, $4)",
                    )
                    .bind(from)
                    .bind(now)
                    .bind(note)
                    .bind(serde_json::json!({"linked": to}).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(new)
        })
    }

    /// The ids of the incidents linked to incident `id`, the most recently
    /// active first.
    pub async fn linked_incidents(&self, id: i64) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT l.linked_id FROM incident_links l JOIN incidents i ON i.id = l.linked_id \
                 WHERE l.incident_id = $1 ORDER BY i.last_seen DESC, i.id DESC",
            )
            .bind(id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Incidents from one of `sources` about one of `projects` (any project
    /// when `None`), in none of `closed_states`, active within `window` of
    /// `around` (seen no earlier than `around - window` and first seen no
    /// later than `around + window`): the candidates for a link, the most
    /// recently active first, at most `limit`.
    pub async fn active_incidents_near(
        &self,
        sources: &[&str],
        projects: Option<&[String]>,
        closed_states: &[&str],
        around: DateTime<Utc>,
        window: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if sources.is_empty() || projects.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        dispatch!(self, pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT id FROM incidents WHERE source IN (");
            let mut list = query.separated(", ");
            for source in sources {
                list.push_bind(source.to_string());
            }
            query.push(")");
            if let Some(projects) = projects {
                query.push(" AND project IN (");
                let mut list = query.separated(", ");
                for project in projects {
                    list.push_bind(project.clone());
                }
                query.push(")");
            }
            if !closed_states.is_empty() {
                query.push(" AND state NOT IN (");
                let mut list = query.separated(", ");
                for state in closed_states {
                    list.push_bind(state.to_string());
                }
                query.push(")");
            }
            query.push(" AND last_seen >= ");
            query.push_bind(millis(around - window));
            query.push(" AND first_seen <= ");
            query.push_bind(millis(around + window));
            query.push(" ORDER BY last_seen DESC, id DESC LIMIT ");
            query.push_bind(limit);
            let ids: Vec<i64> = query.build_query_scalar().fetch_all(pool).await?;
            Ok(ids)
        })
    }
}
