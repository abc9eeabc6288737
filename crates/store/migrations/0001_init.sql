-- suture's schema, one text for SQLite and PostgreSQL.
--
-- Portable by construction: integers are BIGINT, times are Unix milliseconds
-- (BIGINT), JSON is TEXT. The one dialect difference, the auto-assigned
-- primary key, is written @ID@ and replaced by the migration runner
-- (`INTEGER PRIMARY KEY` on SQLite, `BIGSERIAL PRIMARY KEY` on PostgreSQL).

-- Every accepted delivery, exactly once: (source, dedup_key) is the event id
-- or the delivery id, so a repeated delivery is a no-op.
CREATE TABLE signals (
    id @ID@,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    project TEXT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    fingerprint TEXT,
    incident_id BIGINT,
    has_event BIGINT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (source, dedup_key)
);
CREATE INDEX signals_incident ON signals (incident_id, id);

-- Signals grouped by fingerprint: one row per distinct failure.
CREATE TABLE incidents (
    id @ID@,
    fingerprint TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    project TEXT,
    upstream_id TEXT,
    signal_count BIGINT NOT NULL,
    event_signal_id BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX incidents_last_seen ON incidents (last_seen);

-- The durable queue: one job per (incident, kind), leased with a deadline.
CREATE TABLE jobs (
    id @ID@,
    incident_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (incident_id, kind)
);
CREATE INDEX jobs_ready ON jobs (state, run_after);

-- Each pipeline step of a job, persisted before and after it runs.
CREATE TABLE job_steps (
    job_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    runs BIGINT NOT NULL,
    output TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (job_id, step)
);

-- The audit trail of an incident.
CREATE TABLE timeline (
    id @ID@,
    incident_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX timeline_incident ON timeline (incident_id, id);
