//! The ingest write path: a batch of deliveries committed in one transaction,
//! each deduplicated, grouped into its incident, and the incident's pipeline
//! job enqueued when it first has an event to diagnose; a forge delivery gets
//! the job that handles it.
//!
//! Batching is what makes "2xx only after a durable commit" affordable: the
//! HTTP layer collects concurrent deliveries and commits them together, one
//! fsync for many. Within a batch, deliveries of one fingerprint update their
//! incident once (`signal_count += n`), so a storm of one error is one row
//! touched per batch, one incident and one job. An event for a resolved
//! incident marks it regressed (its fix held, then the error came back) and
//! queues the job that reopens it.
//!
//! [`Store::commit_signals`] runs in named phases, each a function below,
//! all in the one transaction and in this order: (1) group the batch into
//! incidents, opening new ones; (2) insert the signals, deduplicated, and
//! tally what was new; (3) add the counters, which also returns each
//! incident's state; (4) the state changes an event makes: wake a
//! verifying incident's verification, regress a resolved incident (the one
//! state flip of the write path, checked against the table of transitions
//! in `incident_state.rs`), queue an observed incident's `detect` job so a
//! spike is noticed; (5) settle each incident: drop an empty new
//! one, note a new one opened, enqueue its pipeline; (6) enqueue the forge
//! deliveries' jobs, and the respond jobs of PagerDuty triggers and new
//! Sentry-sourced incidents when the store answers them; (7) note webhook
//! deliveries on the timeline. Every
//! phase that writes is one statement per chunk of rows or only runs for
//! the rare rows it concerns, so a batch costs a handful of round trips
//! whatever its size.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::incident_state::enter_state;
use crate::queue::queue_job;
use crate::{
    Db, FORGE_EVENT_KINDS, FORGE_SOURCES, IncidentState, JobKind, Store, StoreError, begin_write,
    dispatch, from_millis, millis,
};

/// One delivery to store.
#[derive(Debug, Clone)]
pub struct NewSignal {
    /// Where it came from: `sentry_sdk`, `sentry_webhook`, `pagerduty`, `github`.
    pub source: String,
    /// What makes a repeat of it recognisable: the event id or delivery id.
    pub dedup_key: String,
    /// The Sentry project id, PagerDuty service id or GitHub repository.
    pub project: Option<String>,
    /// What it is: `event`, `issue.created`, `incident.triggered`, `pull_request.closed`, ...
    pub kind: String,
    /// A one-line title for the incident list.
    pub title: String,
    /// The incident it groups into; `None` for deliveries that are kept but
    /// describe no failure (GitHub events, installations).
    pub fingerprint: Option<String>,
    /// The upstream issue/incident id, when the sender has one.
    pub upstream_id: Option<String>,
    /// Whether `payload` holds an error event the pipeline can diagnose.
    pub has_event: bool,
    /// The release the event was reported from, when it names one.
    pub release: Option<String>,
    /// The event JSON (SDK) or the raw webhook body, as text.
    pub payload: String,
    /// When suture received it.
    pub received_at: DateTime<Utc>,
}

/// What became of one [`NewSignal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// Stored now.
    Accepted {
        /// The signal's row id.
        signal_id: i64,
        /// The incident it was grouped into.
        incident_id: Option<i64>,
        /// Whether this batch opened that incident.
        new_incident: bool,
        /// Whether this batch enqueued a job for it: the incident's
        /// pipeline job, or for a forge delivery its
        /// [`JobKind::ForgeEvent`] job.
        job_enqueued: bool,
    },
    /// The same (source, dedup_key) was stored before: nothing was written.
    Duplicate,
}

/// A stored signal, as the pipeline reads it back.
#[derive(Debug, Clone)]
pub struct StoredSignal {
    /// Row id.
    pub id: i64,
    /// See [`NewSignal::source`].
    pub source: String,
    /// See [`NewSignal::dedup_key`].
    pub dedup_key: String,
    /// See [`NewSignal::project`].
    pub project: Option<String>,
    /// See [`NewSignal::kind`].
    pub kind: String,
    /// See [`NewSignal::release`].
    pub release: Option<String>,
    /// See [`NewSignal::payload`].
    pub payload: String,
    /// See [`NewSignal::received_at`].
    pub received_at: DateTime<Utc>,
}

const SIGNAL_COLUMNS: &str = "id, source, dedup_key, project, kind, release, payload, received_at";

fn signal_from_row<R: Row>(row: &R) -> Result<StoredSignal, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredSignal {
        id: row.try_get("id")?,
        source: row.try_get("source")?,
        dedup_key: row.try_get("dedup_key")?,
        project: row.try_get("project")?,
        kind: row.try_get("kind")?,
        release: row.try_get("release")?,
        payload: row.try_get("payload")?,
        received_at: from_millis(row.try_get("received_at")?),
    })
}

/// Per-fingerprint state while a batch is committed.
struct Group {
    incident_id: i64,
    new_incident: bool,
    had_event_signal: bool,
    accepted: i64,
    last_seen: i64,
    first_event_signal: Option<i64>,
}

impl Group {
    /// Incident `incident_id` before any of the batch's signals is counted.
    fn new(incident_id: i64, new_incident: bool, had_event_signal: bool) -> Group {
        Group {
            incident_id,
            new_incident,
            had_event_signal,
            accepted: 0,
            last_seen: 0,
            first_event_signal: None,
        }
    }

    /// The event the incident is to be diagnosed from, when this batch
    /// gives it its first.
    fn event_signal(&self) -> Option<i64> {
        if self.had_event_signal {
            None
        } else {
            self.first_event_signal
        }
    }
}

/// What phase 2 stored of each signal of the batch, in order: its row id
/// and its incident, or `None` for a repeat.
type Inserted = Vec<Option<(i64, Option<i64>)>>;

/// The source of SDK events, whose deliveries only count on the timeline.
const SDK_SOURCE: &str = "sentry_sdk";

/// Signals per multi-row insert: 10 parameters each stays far below
/// SQLite's and PostgreSQL's parameter limits.
const SIGNALS_PER_INSERT: usize = 256;

/// Most fingerprints the write path remembers; past that it starts over.
const INCIDENT_CACHE_MAX: usize = 100_000;

/// The write path's one state flip, an event for a resolved incident, is
/// a move the table of transitions allows.
const _: () = assert!(IncidentState::Resolved.can_become(IncidentState::Regressed));

/// The write path's transaction on whichever database is open, so that
/// each phase of [`Store::commit_signals`] can be a function of its own
/// while all of them share the one transaction.
enum WriteTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the connection of the [`WriteTx`]
/// `$tx`: like `dispatch!` for pools, the body is compiled once per
/// database, so each statement is still written once.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            WriteTx::Sqlite(tx) => {
                let $conn: &mut sqlx::SqliteConnection = tx;
                $body
            }
            WriteTx::Postgres(tx) => {
                let $conn: &mut sqlx::PgConnection = tx;
                $body
            }
        }
    };
}

impl WriteTx {
    /// Commits the batch: every signal of it is durable, or none is.
    async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await?,
            WriteTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Store {
    fn cached_incident(&self, fingerprint: &str) -> Option<(i64, bool)> {
        let cache = self
            .incident_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(fingerprint).copied()
    }

    fn cache_incidents(&self, entries: impl Iterator<Item = (String, i64, bool)>) {
        let mut cache = self
            .incident_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (fingerprint, incident_id, has_event_signal) in entries {
            if cache.len() >= INCIDENT_CACHE_MAX {
                cache.clear();
            }
            cache.insert(fingerprint, (incident_id, has_event_signal));
        }
    }

    /// Commits `batch` in one transaction and says what became of each
    /// signal, in order. Either every signal of the batch is durable when
    /// this returns `Ok`, or none is.
    ///
    /// The phases, in the order their statements run: group the batch into
    /// incidents, insert the signals (deduplicated), count them into their
    /// incidents, the state changes an event makes (wake a verification,
    /// regress a resolved incident), settle each incident (drop an empty
    /// new one, note it opened, enqueue its pipeline), enqueue the forge
    /// deliveries' jobs and the respond jobs, note webhook deliveries on
    /// the timeline.
    pub async fn commit_signals(
        &self,
        batch: &[NewSignal],
    ) -> Result<Vec<SignalOutcome>, StoreError> {
        let now = millis(Utc::now());
        let mut tx = self.begin_write_path().await?;
        let mut groups = self.group_into_incidents(&mut tx, batch, now).await?;
        let new_ids = insert_signals(&mut tx, batch, &groups).await?;
        let inserted = tally(batch, new_ids, &mut groups);
        let states = add_counters(&mut tx, &groups, now).await?;
        let with_events = events_by_state(&groups, &states);
        wake_verifications(&mut tx, &with_events, now).await?;
        regress_resolved(&mut tx, &with_events, now).await?;
        rearm_detection(&mut tx, &with_events, now).await?;
        let enqueued = settle_incidents(&mut tx, &groups, now).await?;
        let forge_jobs = enqueue_forge_jobs(&mut tx, batch, &inserted, now).await?;
        if self.answers_incidents {
            enqueue_responses(&mut tx, batch, &inserted, &groups, now).await?;
        }
        note_deliveries(&mut tx, batch, &inserted).await?;
        tx.commit().await?;
        self.cache_incidents(
            groups
                .iter()
                .filter(|(_, g)| g.accepted > 0 || !g.new_incident)
                .map(|(fingerprint, g)| {
                    (
                        fingerprint.to_string(),
                        g.incident_id,
                        g.had_event_signal || g.first_event_signal.is_some(),
                    )
                }),
        );
        Ok(outcomes(&groups, inserted, &enqueued, &forge_jobs))
    }

    /// Begins the write path's transaction (`BEGIN IMMEDIATE` on SQLite,
    /// see `begin_write!`).
    async fn begin_write_path(&self) -> Result<WriteTx, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(pool) => WriteTx::Sqlite(begin_write!(self, pool)),
            Db::Postgres(pool) => WriteTx::Postgres(begin_write!(self, pool)),
        })
    }

    /// Phase 1, grouping: the incident of every fingerprint of the batch,
    /// opened when new, before any signal is written, because each signal
    /// row names its incident.
    ///
    /// Existing incidents (the common case under load) cost one read, or
    /// none when the fingerprint is cached from an earlier commit; a new
    /// one is inserted, and a concurrent insert by another replica is read
    /// back. An incident opened here whose signals all turn out to be
    /// repeats is deleted again in phase 5.
    async fn group_into_incidents<'b>(
        &self,
        tx: &mut WriteTx,
        batch: &'b [NewSignal],
        now: i64,
    ) -> Result<HashMap<&'b str, Group>, StoreError> {
        let mut groups: HashMap<&str, Group> = HashMap::new();
        for signal in batch {
            let Some(fingerprint) = signal.fingerprint.as_deref() else {
                continue;
            };
            if groups.contains_key(fingerprint) {
                continue;
            }
            let select = "SELECT id, event_signal_id FROM incidents WHERE fingerprint = $1";
            if let Some((incident_id, had_event_signal)) = self.cached_incident(fingerprint) {
                groups.insert(
                    fingerprint,
                    Group::new(incident_id, false, had_event_signal),
                );
                continue;
            }
            let group = on_tx!(tx, tx => {
                let mut existing = sqlx::query(select).bind(fingerprint).fetch_optional(&mut *tx).await?;
                let mut opened: Option<i64> = None;
                if existing.is_none() {
                    opened = sqlx::query_scalar(
                        "INSERT INTO incidents (fingerprint, title, state, source, project, upstream_id, \
                         signal_count, event_signal_id, first_seen, last_seen, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, $7, $8) \
                         ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                    )
                    .bind(fingerprint)
                    .bind(&signal.title)
                    .bind(IncidentState::New.as_str())
                    .bind(&signal.source)
                    .bind(&signal.project)
                    .bind(&signal.upstream_id)
                    .bind(millis(signal.received_at))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if opened.is_none() {
                        existing = Some(sqlx::query(select).bind(fingerprint).fetch_one(&mut *tx).await?);
                    }
                }
                match (opened, existing) {
                    (Some(incident_id), _) => Group::new(incident_id, true, false),
                    (None, Some(row)) => Group::new(
                        row.try_get("id")?,
                        false,
                        row.try_get::<Option<i64>, _>("event_signal_id")?.is_some(),
                    ),
                    (None, None) => unreachable!("an incident row was either inserted or read"),
                }
            });
            groups.insert(fingerprint, group);
        }
        Ok(groups)
    }
}

/// Phase 2, dedup: the signals themselves, each at most once. Multi-row
/// inserts (a round trip per chunk, not per signal) that skip a
/// (source, dedup_key) already stored; what they return says which were
/// new. Answers the new rows' ids by (source, dedup_key).
async fn insert_signals(
    tx: &mut WriteTx,
    batch: &[NewSignal],
    groups: &HashMap<&str, Group>,
) -> Result<HashMap<(String, String), i64>, StoreError> {
    let mut new_ids: HashMap<(String, String), i64> = HashMap::new();
    for chunk in batch.chunks(SIGNALS_PER_INSERT) {
        on_tx!(tx, tx => {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO signals (source, dedup_key, project, kind, title, fingerprint, \
                 incident_id, has_event, release, payload, received_at) ",
            );
            insert.push_values(chunk, |mut row, signal| {
                let incident_id = signal.fingerprint.as_deref().and_then(|f| groups.get(f)).map(|g| g.incident_id);
                row.push_bind(signal.source.clone())
                    .push_bind(signal.dedup_key.clone())
                    .push_bind(signal.project.clone())
                    .push_bind(signal.kind.clone())
                    .push_bind(signal.title.clone())
                    .push_bind(signal.fingerprint.clone())
                    .push_bind(incident_id)
                    .push_bind(i64::from(signal.has_event))
                    .push_bind(signal.release.clone())
                    .push_bind(signal.payload.clone())
                    .push_bind(millis(signal.received_at));
            });
            insert.push(" ON CONFLICT (source, dedup_key) DO NOTHING RETURNING id, source, dedup_key");
            for row in insert.build().fetch_all(&mut *tx).await? {
                new_ids.insert((row.try_get("source")?, row.try_get("dedup_key")?), row.try_get("id")?);
            }
        });
    }
    Ok(new_ids)
}

/// Phase 2, counted (no statement): which signal of the batch was stored,
/// and per incident how many were, the latest time and the first event.
/// The first of repeats within the batch is the stored one.
fn tally(
    batch: &[NewSignal],
    mut new_ids: HashMap<(String, String), i64>,
    groups: &mut HashMap<&str, Group>,
) -> Inserted {
    let mut inserted: Inserted = Vec::with_capacity(batch.len());
    for signal in batch {
        let signal_id = new_ids.remove(&(signal.source.clone(), signal.dedup_key.clone()));
        let group = signal
            .fingerprint
            .as_deref()
            .and_then(|f| groups.get_mut(f));
        let incident_id = group.as_ref().map(|g| g.incident_id);
        if let (Some(signal_id), Some(group)) = (signal_id, group) {
            group.accepted += 1;
            group.last_seen = group.last_seen.max(millis(signal.received_at));
            if signal.has_event
                && group
                    .first_event_signal
                    .is_none_or(|first| signal_id < first)
            {
                group.first_event_signal = Some(signal_id);
            }
        }
        inserted.push(signal_id.map(|id| (id, incident_id)));
    }
    inserted
}

/// Phase 3, counters: each incident's `signal_count += n`, its last seen
/// time and the event to diagnose, in one statement per chunk of
/// incidents, sorted so replicas lock rows in one order. The statement
/// returns each touched incident's state, which phase 4 reads instead of
/// a statement of its own.
async fn add_counters(
    tx: &mut WriteTx,
    groups: &HashMap<&str, Group>,
    now: i64,
) -> Result<HashMap<i64, String>, StoreError> {
    let mut counted: Vec<&Group> = groups.values().filter(|group| group.accepted > 0).collect();
    let mut states: HashMap<i64, String> = HashMap::new();
    counted.sort_by_key(|group| group.incident_id);
    for chunk in counted.chunks(SIGNALS_PER_INSERT) {
        on_tx!(tx, tx => {
            let mut update = sqlx::QueryBuilder::new(
                "UPDATE incidents SET signal_count = incidents.signal_count + v.column2, \
                 last_seen = CASE WHEN incidents.last_seen < v.column3 THEN v.column3 ELSE incidents.last_seen END, \
                 event_signal_id = COALESCE(incidents.event_signal_id, v.column4), updated_at = ",
            );
            update.push_bind(now);
            update.push(" FROM (VALUES ");
            for (idx, group) in chunk.iter().enumerate() {
                if idx > 0 {
                    update.push(", ");
                }
                update.push("(CAST(");
                update.push_bind(group.incident_id);
                update.push(" AS BIGINT), CAST(");
                update.push_bind(group.accepted);
                update.push(" AS BIGINT), CAST(");
                update.push_bind(group.last_seen);
                update.push(" AS BIGINT), CAST(");
                update.push_bind(group.event_signal());
                update.push(" AS BIGINT))");
            }
            update.push(") AS v WHERE incidents.id = v.column1 RETURNING incidents.id, incidents.state");
            for row in update.build().fetch_all(&mut *tx).await? {
                states.insert(row.try_get("id")?, row.try_get("state")?);
            }
        });
    }
    Ok(states)
}

/// Phase 4, read (no statement): the incidents that already existed and
/// received an event in this batch, with the state phase 3 returned,
/// sorted by id: the only ones an event can change something in.
fn events_by_state<'s>(
    groups: &HashMap<&str, Group>,
    states: &'s HashMap<i64, String>,
) -> Vec<(i64, &'s str)> {
    let mut with_events: Vec<(i64, &str)> = groups
        .values()
        .filter(|group| !group.new_incident && group.first_event_signal.is_some())
        .filter_map(|group| {
            states
                .get(&group.incident_id)
                .map(|state| (group.incident_id, state.as_str()))
        })
        .collect();
    with_events.sort_unstable();
    with_events
}

/// Phase 4, wake: an event during a verifying incident's quiet window
/// makes its queued verification due now, so a recurrence escalates at
/// once, not at the window's end. One statement per chunk of incidents,
/// none in the common case.
async fn wake_verifications(
    tx: &mut WriteTx,
    with_events: &[(i64, &str)],
    now: i64,
) -> Result<(), StoreError> {
    let verifying: Vec<i64> = with_events
        .iter()
        .filter(|(_, state)| *state == IncidentState::Verifying.as_str())
        .map(|(id, _)| *id)
        .collect();
    for chunk in verifying.chunks(SIGNALS_PER_INSERT) {
        on_tx!(tx, tx => {
            let mut wake = sqlx::QueryBuilder::new("UPDATE jobs SET run_after = ");
            wake.push_bind(now);
            wake.push(" WHERE state = 'queued' AND run_after > ");
            wake.push_bind(now);
            wake.push(" AND kind LIKE 'verify/%' AND incident_id IN (");
            let mut ids = wake.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            wake.push(")");
            wake.build().execute(&mut *tx).await?;
        });
    }
    Ok(())
}

/// Phase 4, regress: a resolved incident that receives an event again
/// regressed after its fix held. It is flipped here, in the commit,
/// through the table of transitions (`enter_state!`), and the job that
/// reopens its tracking issue is queued with it, so the recurrence is
/// acted on even if the process dies right after answering. Rare: a few
/// statements per such incident.
async fn regress_resolved(
    tx: &mut WriteTx,
    with_events: &[(i64, &str)],
    now: i64,
) -> Result<(), StoreError> {
    let resolved = with_events
        .iter()
        .filter(|(_, state)| *state == IncidentState::Resolved.as_str())
        .map(|(id, _)| *id);
    for incident_id in resolved {
        on_tx!(tx, tx => {
            enter_state!(tx, incident_id, IncidentState::Regressed, now)?;
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM fix_attempts WHERE incident_id = $1 AND state = 'held' \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO timeline (incident_id, at, kind, message, data) \
                 VALUES ($1, $2, 'state', 'the error recurred after its fix held', $3)",
            )
            .bind(incident_id)
            .bind(now)
            .bind(serde_json::json!({"attempt_id": held}).to_string())
            .execute(&mut *tx)
            .await?;
            if let Some(attempt_id) = held {
                let kind = JobKind::Regressed { attempt_id };
                queue_job!(tx, incident_id, &kind, now, None::<String>, now);
            }
        });
    }
    Ok(())
}

/// How long the write path lets a burst land before an observed incident
/// is looked at again: one look per burst, not one per event.
const DETECT_DELAY_MS: i64 = 3_000;

/// Phase 4, detect: an `observed` incident that receives events gets its
/// `detect` job queued (again, once the last one is done), due shortly, so
/// the service sees a spike or the `min_events`-th event. One statement
/// per such incident; the row is reused, so a noisy old error leaves one
/// job, not one per look.
async fn rearm_detection(
    tx: &mut WriteTx,
    with_events: &[(i64, &str)],
    now: i64,
) -> Result<(), StoreError> {
    let observed = with_events
        .iter()
        .filter(|(_, state)| *state == IncidentState::Observed.as_str())
        .map(|(id, _)| *id);
    for incident_id in observed {
        on_tx!(tx, tx => {
            sqlx::query(
                "INSERT INTO jobs (incident_id, kind, state, attempts, run_after, created_at, \
                 updated_at) VALUES ($1, $2, 'queued', 0, $3, $4, $4) \
                 ON CONFLICT (incident_id, kind) DO UPDATE SET state = 'queued', attempts = 0, \
                 run_after = excluded.run_after, last_error = NULL, lease_owner = NULL, \
                 lease_until = NULL, updated_at = excluded.updated_at \
                 WHERE jobs.state IN ('done', 'failed')",
            )
            .bind(incident_id)
            .bind(JobKind::Detect.to_string())
            .bind(now + DETECT_DELAY_MS)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
    }
    Ok(())
}

/// Phase 5, settle each incident: one whose signals were all repeats is
/// deleted if this batch opened it (its dedup keys were seen under another
/// fingerprint); a new one is noted `opened` on its timeline; one that
/// gets its first event has its round-1 pipeline job enqueued (once:
/// `UNIQUE (incident_id, kind)`). Answers, per incident, whether a job
/// was enqueued. Rare writes: nothing for an incident seen before.
async fn settle_incidents(
    tx: &mut WriteTx,
    groups: &HashMap<&str, Group>,
    now: i64,
) -> Result<HashMap<i64, bool>, StoreError> {
    let mut enqueued: HashMap<i64, bool> = HashMap::new();
    for group in groups.values() {
        on_tx!(tx, tx => {
            if group.accepted == 0 {
                if group.new_incident {
                    sqlx::query("DELETE FROM incidents WHERE id = $1")
                        .bind(group.incident_id)
                        .execute(&mut *tx)
                        .await?;
                }
                continue;
            }
            if group.new_incident {
                sqlx::query(
                    "INSERT INTO timeline (incident_id, at, kind, message, data) \
                     VALUES ($1, $2, 'opened', 'incident opened', NULL)",
                )
                .bind(group.incident_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let mut job_enqueued = false;
            if group.event_signal().is_some() {
                let kind = JobKind::Pipeline { round: 1 };
                let job = queue_job!(tx, group.incident_id, &kind, now, None::<String>, now);
                job_enqueued = job.is_some();
            }
            enqueued.insert(group.incident_id, job_enqueued);
        });
    }
    Ok(enqueued)
}

/// Phase 6, forge jobs: each forge delivery of a kind suture acts on gets
/// the job that handles it, in this transaction, so a delivery answered
/// 2xx is never lost. Rare: one insert each. Answers the signals that got
/// a new job.
async fn enqueue_forge_jobs(
    tx: &mut WriteTx,
    batch: &[NewSignal],
    inserted: &Inserted,
    now: i64,
) -> Result<HashSet<i64>, StoreError> {
    let mut forge_jobs = HashSet::new();
    for (signal, row) in batch.iter().zip(inserted) {
        let Some((signal_id, _)) = row else { continue };
        if FORGE_SOURCES.contains(&signal.source.as_str())
            && FORGE_EVENT_KINDS.contains(&signal.kind.as_str())
        {
            let kind = JobKind::ForgeEvent {
                signal_id: *signal_id,
            };
            let job = on_tx!(tx, tx => queue_job!(tx, 0, &kind, now, None::<String>, now));
            if job.is_some() {
                forge_jobs.insert(*signal_id);
            }
        }
    }
    Ok(forge_jobs)
}

/// Phase 6, responses: a PagerDuty incident triggered, and a
/// Sentry-sourced incident opened by this batch, get the job that links
/// it across sources and plans its recovery actions
/// ([`JobKind::Respond`]), in this transaction. Rare: one insert each.
async fn enqueue_responses(
    tx: &mut WriteTx,
    batch: &[NewSignal],
    inserted: &Inserted,
    groups: &HashMap<&str, Group>,
    now: i64,
) -> Result<(), StoreError> {
    let mut answered = HashSet::new();
    for (signal, row) in batch.iter().zip(inserted) {
        let Some((signal_id, Some(incident_id))) = row else {
            continue;
        };
        let opened = || {
            signal
                .fingerprint
                .as_deref()
                .and_then(|f| groups.get(f))
                .is_some_and(|group| group.new_incident)
        };
        let respond = match signal.source.as_str() {
            "pagerduty" => signal.kind == "incident.triggered",
            "sentry_sdk" | "sentry_webhook" => opened() && answered.insert(*incident_id),
            _ => false,
        };
        if respond {
            let kind = JobKind::Respond {
                signal_id: *signal_id,
            };
            on_tx!(tx, tx => queue_job!(tx, *incident_id, &kind, now, None::<String>, now));
        }
    }
    Ok(())
}

/// Phase 7, timeline notes: webhook deliveries about an incident (an issue
/// resolved, a PagerDuty incident acknowledged) go on its timeline, in
/// multi-row inserts; SDK events only count, or a storm would flood it.
async fn note_deliveries(
    tx: &mut WriteTx,
    batch: &[NewSignal],
    inserted: &Inserted,
) -> Result<(), StoreError> {
    let noted: Vec<(i64, i64, &NewSignal)> = batch
        .iter()
        .zip(inserted)
        .filter(|(signal, _)| signal.source != SDK_SOURCE)
        .filter_map(|(signal, row)| match row {
            Some((signal_id, Some(incident_id))) => Some((*incident_id, *signal_id, signal)),
            _ => None,
        })
        .collect();
    for chunk in noted.chunks(SIGNALS_PER_INSERT) {
        on_tx!(tx, tx => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO timeline (incident_id, at, kind, message, data) ");
            insert.push_values(chunk, |mut row, (incident_id, signal_id, signal)| {
                row.push_bind(*incident_id)
                    .push_bind(millis(signal.received_at))
                    .push_bind("signal")
                    .push_bind(format!("{} {}", signal.source, signal.kind))
                    .push_bind(serde_json::json!({"signal_id": signal_id}).to_string());
            });
            insert.build().execute(&mut *tx).await?;
        });
    }
    Ok(())
}

/// The answer (no statement): what became of each signal, in order. Only
/// the first accepted signal of an incident reports it as new and its job
/// as enqueued; a forge delivery reports its own job.
fn outcomes(
    groups: &HashMap<&str, Group>,
    inserted: Inserted,
    enqueued: &HashMap<i64, bool>,
    forge_jobs: &HashSet<i64>,
) -> Vec<SignalOutcome> {
    let new_incidents: HashMap<i64, bool> = groups
        .values()
        .map(|g| (g.incident_id, g.new_incident))
        .collect();
    let mut reported_new = HashSet::new();
    inserted
        .into_iter()
        .map(|row| match row {
            None => SignalOutcome::Duplicate,
            Some((signal_id, incident_id)) => {
                let first = incident_id.is_some_and(|id| reported_new.insert(id));
                SignalOutcome::Accepted {
                    signal_id,
                    incident_id,
                    new_incident: first
                        && incident_id
                            .and_then(|id| new_incidents.get(&id).copied())
                            .unwrap_or(false),
                    job_enqueued: forge_jobs.contains(&signal_id)
                        || (first
                            && incident_id
                                .and_then(|id| enqueued.get(&id).copied())
                                .unwrap_or(false)),
                }
            }
        })
        .collect()
}

impl Store {
    /// The signal with row id `id`.
    pub async fn signal(&self, id: i64) -> Result<Option<StoredSignal>, StoreError> {
        let sql = format!("SELECT {SIGNAL_COLUMNS} FROM signals WHERE id = $1");
        dispatch!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(signal_from_row).transpose()
        })
    }

    /// Up to `limit` of incident `incident_id`'s signals that carry an
    /// event, received strictly after `after`, except those reported from
    /// one of `except_releases`, oldest first: the recurrences verification
    /// looks for after a fix was merged (an event without a release always
    /// counts).
    ///
    /// It walks the incident's signals by `signals_incident`; verification
    /// runs once per merged fix, so that beats a further index that every
    /// delivery would pay for.
    pub async fn event_signals(
        &self,
        incident_id: i64,
        after: DateTime<Utc>,
        except_releases: &[String],
        limit: i64,
    ) -> Result<Vec<StoredSignal>, StoreError> {
        self.events_after(incident_id, after, except_releases, true, limit)
            .await
    }

    /// As [`Store::event_signals`], but only events that name a release:
    /// an event without one cannot tell old code from new, so by default it
    /// does not fail a fix (anyone holding the DSN key could send one).
    pub async fn released_event_signals(
        &self,
        incident_id: i64,
        after: DateTime<Utc>,
        except_releases: &[String],
        limit: i64,
    ) -> Result<Vec<StoredSignal>, StoreError> {
        self.events_after(incident_id, after, except_releases, false, limit)
            .await
    }

    /// How many of incident `incident_id`'s events received after `after`
    /// name no release: shown when they did not count.
    pub async fn unreleased_event_count(
        &self,
        incident_id: i64,
        after: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM signals WHERE incident_id = $1 AND has_event = 1 \
                 AND received_at > $2 AND release IS NULL",
            )
            .bind(incident_id)
            .bind(millis(after))
            .fetch_one(pool)
            .await?)
        })
    }

    /// The query behind [`Store::event_signals`] and
    /// [`Store::released_event_signals`]: the filter is in SQL, before the
    /// limit, so a storm of events that do not count cannot hide one that
    /// does.
    async fn events_after(
        &self,
        incident_id: i64,
        after: DateTime<Utc>,
        except_releases: &[String],
        unreleased: bool,
        limit: i64,
    ) -> Result<Vec<StoredSignal>, StoreError> {
        dispatch!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {SIGNAL_COLUMNS} FROM signals WHERE has_event = 1 AND incident_id = "
            ));
            query.push_bind(incident_id);
            query.push(" AND received_at > ");
            query.push_bind(millis(after));
            if !unreleased {
                query.push(" AND release IS NOT NULL");
            }
            if !except_releases.is_empty() {
                query.push(" AND (release IS NULL OR release NOT IN (");
                let mut releases = query.separated(", ");
                for release in except_releases {
                    releases.push_bind(release.clone());
                }
                query.push("))");
            }
            query.push(" ORDER BY received_at, id LIMIT ");
            query.push_bind(limit);
            let rows = query.build().fetch_all(pool).await?;
            rows.iter().map(signal_from_row).collect()
        })
    }

    /// The releases incident `incident_id`'s events were reported from
    /// before `before`, sorted: those a fix merged then was not in.
    pub async fn event_releases(
        &self,
        incident_id: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT release FROM signals WHERE incident_id = $1 AND has_event = 1 \
                 AND received_at < $2 AND release IS NOT NULL ORDER BY release",
            )
            .bind(incident_id)
            .bind(millis(before))
            .fetch_all(pool)
            .await?)
        })
    }

    /// How many signals are stored.
    pub async fn count_signals(&self) -> Result<i64, StoreError> {
        dispatch!(self, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM signals").fetch_one(pool).await?)
        })
    }

    /// Every stored (source, dedup_key) with how many rows it has: what the
    /// crash test checks against the deliveries that were answered 2xx.
    pub async fn signal_keys(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT source, dedup_key, COUNT(*) AS n FROM signals GROUP BY source, dedup_key",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get("source")?, row.try_get("dedup_key")?, row.try_get("n")?)))
                .collect()
        })
    }
}
