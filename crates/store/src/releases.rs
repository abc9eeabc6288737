//! Each project's releases, learnt from the events that name them.
//!
//! There is no table of releases: a release exists once an event reported
//! from it is stored, and its first and last sighting and its count are
//! aggregates over those signals (the partial index
//! `signals_project_release` serves every query here). So nothing can
//! drift from the events themselves, and a release sent by anyone holding
//! the DSN key costs no more than the events it came with.
//!
//! Diagnosis reads two things from here: the release an incident was first
//! seen on (R) and the project's release first seen just before R (R0);
//! R0..R is the deploy that brought the error.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError, dispatch, from_millis};

/// One release of a project, as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStats {
    /// The release as the events name it (`shop@1.4.2`, a sha, a tag).
    pub release: String,
    /// When suture received the release's first event.
    pub first_seen: DateTime<Utc>,
    /// When suture received its latest event.
    pub last_seen: DateTime<Utc>,
    /// How many events name it.
    pub events: i64,
}

impl Store {
    /// The latest `limit` releases of `project` by first sighting, oldest
    /// first.
    pub async fn releases(
        &self,
        project: &str,
        limit: i64,
    ) -> Result<Vec<ReleaseStats>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT release, first_seen, last_seen, events FROM (\
                 SELECT release, MIN(received_at) AS first_seen, MAX(received_at) AS last_seen, \
                 COUNT(*) AS events FROM signals \
                 WHERE project = $1 AND has_event = 1 AND release IS NOT NULL \
                 GROUP BY release ORDER BY first_seen DESC, release DESC LIMIT $2\
                 ) AS latest ORDER BY first_seen, release",
            )
            .bind(project)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ReleaseStats {
                        release: row.try_get("release")?,
                        first_seen: from_millis(row.try_get("first_seen")?),
                        last_seen: from_millis(row.try_get("last_seen")?),
                        events: row.try_get("events")?,
                    })
                })
                .collect()
        })
    }

    /// The release of incident `incident_id`'s earliest event, when that
    /// event names one: the release the error arrived with.
    pub async fn first_release(&self, incident_id: i64) -> Result<Option<String>, StoreError> {
        dispatch!(self, pool => {
            let release: Option<Option<String>> = sqlx::query_scalar(
                "SELECT release FROM signals WHERE incident_id = $1 AND has_event = 1 \
                 ORDER BY received_at, id LIMIT 1",
            )
            .bind(incident_id)
            .fetch_optional(pool)
            .await?;
            Ok(release.flatten())
        })
    }

    /// The newest release of `project` as of `at`: the one first seen
    /// last among those seen by then. `None` before any release was seen.
    pub async fn newest_release_at(
        &self,
        project: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT release FROM signals \
                 WHERE project = $1 AND has_event = 1 AND release IS NOT NULL \
                 GROUP BY release HAVING MIN(received_at) <= $2 \
                 ORDER BY MIN(received_at) DESC, release DESC LIMIT 1",
            )
            .bind(project)
            .bind(crate::millis(at))
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The release of `project` first seen last before `release` was: the
    /// one deployed before it. `None` when `release` is the project's
    /// first, or has no event in it.
    pub async fn release_before(
        &self,
        project: &str,
        release: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT release FROM signals \
                 WHERE project = $1 AND has_event = 1 AND release IS NOT NULL AND release <> $2 \
                 GROUP BY release \
                 HAVING MIN(received_at) < (SELECT MIN(received_at) FROM signals \
                 WHERE project = $1 AND has_event = 1 AND release IS NOT NULL AND release = $2) \
                 ORDER BY MIN(received_at) DESC, release DESC LIMIT 1",
            )
            .bind(project)
            .bind(release)
            .fetch_optional(pool)
            .await?)
        })
    }
}
