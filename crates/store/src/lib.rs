//! suture's store: signals, incidents, the audit timeline and the durable
//! job queue, on embedded SQLite or PostgreSQL behind one schema.
//!
//! [`Store`] is the one handle the service holds. It hides which database is
//! underneath: every query is written once, with `$N` placeholders that both
//! drivers read, and `dispatch!` runs it on whichever pool is open. The
//! schema is one SQL text (`migrations/`) applied at start by
//! [`Store::open`], with the single dialect difference (the auto-assigned
//! key) substituted.
//!
//! What lives where: `signals.rs` commits batches of deliveries and groups
//! them into incidents (the ingest write path), `incidents.rs` reads them and
//! writes the timeline, `incident_state.rs` the incident states and the one
//! table of moves between them that every state change is checked against,
//! `queue.rs` is the job queue (lease, heartbeat, steps, retry, rounds),
//! `attempts.rs` the fix attempts (the fix memory and what the forge did
//! with each), `releases.rs` each project's releases as its events name
//! them, `documents.rs` small named documents updated under a lock,
//! `pauses.rs` the kill switch (kept as one of them), `links.rs`
//! incidents linked across sources, `action_runs.rs` the runs of recovery
//! actions,
//! `schema.rs` the migrations, `testing.rs` (feature `testing`) fresh
//! databases for tests.
//!
//! **Invariant:** the store knows nothing about HTTP, git or LLMs; it speaks
//! in rows. Times are Unix milliseconds in the database and `DateTime<Utc>`
//! at this crate's surface.

mod action_runs;
mod attempts;
mod documents;
mod incident_state;
mod incidents;
mod links;
mod pauses;
mod queue;
mod releases;
mod rounds;
mod schema;
mod signals;
mod step;
#[cfg(feature = "testing")]
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use action_runs::{ActionRun, NewActionRun, run_state};
pub use attempts::{AttemptState, FixAttempt, NewFixAttempt};
pub use incident_state::IncidentState;
pub use incidents::{Incident, JobSummary, StepSummary, TimelineEntry};
pub use pauses::{Pause, Pauses};
pub use queue::{FORGE_EVENT_KINDS, FORGE_SOURCES, JobKind, LeasedJob, PIPELINE_JOB, StepRecord};
pub use releases::ReleaseStats;
pub use rounds::{Admission, RoundLimits};
pub use signals::{NewSignal, SignalOutcome, StoredSignal};
pub use step::{Step, StepState};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this store can open.
    #[error("unsupported database url {url:?}: expected sqlite:PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL as given, with any password removed.
        url: String,
    },
    /// The database could not be reached or opened.
    #[error("connecting to {what}")]
    Connect {
        /// Which database, without secrets.
        what: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed to apply.
    #[error("applying migration {version}")]
    Migrate {
        /// The migration's version.
        version: i64,
        /// What the database said.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds migrations this build does not know: it was
    /// migrated by a newer suture.
    #[error("database schema version {found} is newer than this build's {known}")]
    SchemaTooNew {
        /// The highest version in the database.
        found: i64,
        /// The highest version this build has.
        known: i64,
    },
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
    /// A row held something this build cannot read.
    #[error("unreadable row: {0}")]
    Corrupt(String),
    /// The table of incident states does not allow this move from the
    /// state the incident is in ([`IncidentState::can_become`]): nothing
    /// was written.
    #[error("incident {incident_id} cannot move from {from} to {to}")]
    Transition {
        /// The incident.
        incident_id: i64,
        /// The state it is in, and stays in.
        from: IncidentState,
        /// The state that was asked for.
        to: IncidentState,
    },
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file in WAL mode.
    Sqlite,
    /// A PostgreSQL server, possibly shared by several suture replicas.
    Postgres,
}

/// The open pool, one variant per database.
#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the store; cheap to clone (it shares the pool).
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// What to call this database in logs and errors (no secrets).
    description: String,
    /// Committed incidents by fingerprint: (id, has an event signal). Spares
    /// the write path a read per fingerprint per batch. Filled only after a
    /// commit, and ids never change, so a hit is always a real row; a stale
    /// `false` only costs an idempotent update.
    incident_ids: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (i64, bool)>>>,
    /// Whether the write path queues a [`JobKind::Respond`] job for a
    /// PagerDuty trigger and a new Sentry-sourced incident: only when
    /// something answers them (recovery actions, services mapped to
    /// repositories), see [`Store::answer_incidents`].
    answers_incidents: bool,
}

/// Runs `$body` with `$pool` bound to the open pool, whichever it is: the
/// body is compiled once per database, so one query text serves both.
macro_rules! dispatch {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            crate::Db::Sqlite($pool) => $body,
            crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// Begins a write transaction on `$pool` (bound by `dispatch!`). On SQLite
/// it is `BEGIN IMMEDIATE`: a deferred transaction that reads first cannot
/// upgrade to a write once another connection has committed (WAL answers
/// `SQLITE_BUSY` at once, without waiting), so writers take the lock up
/// front and queue on the busy timeout instead.
macro_rules! begin_write {
    ($store:expr, $pool:ident) => {
        if matches!($store.db, crate::Db::Sqlite(_)) {
            $pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            $pool.begin().await?
        }
    };
}
pub(crate) use begin_write;

/// Knobs for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a query waits for a connection or, on SQLite, for the write
    /// lock, before failing.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

impl Store {
    /// Opens the database named by `url` (`sqlite:PATH`, `sqlite://PATH`,
    /// `postgres://…` or `postgresql://…`) and applies the migrations.
    ///
    /// SQLite files are created when missing and run in WAL mode with
    /// `synchronous=FULL`, so a committed write survives a crash of the
    /// process and of the machine.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let store = Store::connect(url, options).await?;
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// Opens the pool of [`Store::open`] without migrating: `testing` starts
    /// upgrade tests from an older schema with it.
    pub(crate) async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let description = redact_url(url);
        let db = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let connect = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(options.busy_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.busy_timeout)
                .connect_with(connect)
                .await
                .map_err(|source| StoreError::Connect {
                    what: description.clone(),
                    source,
                })?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect =
                PgConnectOptions::from_str(url).map_err(|source| StoreError::Connect {
                    what: description.clone(),
                    source,
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.busy_timeout)
                .connect_with(connect)
                .await
                .map_err(|source| StoreError::Connect {
                    what: description.clone(),
                    source,
                })?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl { url: description });
        };
        Ok(Store {
            db,
            description,
            incident_ids: Default::default(),
            answers_incidents: false,
        })
    }

    /// Makes the write path queue a [`JobKind::Respond`] job for each
    /// PagerDuty trigger and new Sentry-sourced incident (links across
    /// sources, recovery actions); off by default, so a service with
    /// nothing to answer them queues nothing.
    pub fn answer_incidents(&mut self, on: bool) {
        self.answers_incidents = on;
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database's URL with any password removed, for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the database answers a trivial query: what `/readyz` asks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }
}

/// `url` with the password of a `user:password@` part replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Unix milliseconds of `time`.
pub(crate) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// The time of Unix milliseconds `ms` (the epoch for an impossible value).
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords never reach logs; other URLs pass through.
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://suture:hunter2@db:5432/suture"),
            "postgres://suture:***@db:5432/suture"
        );
        assert_eq!(
            redact_url("postgres://suture@db/suture"),
            "postgres://suture@db/suture"
        );
        assert_eq!(redact_url("sqlite:/tmp/a.db"), "sqlite:/tmp/a.db");
    }
}
