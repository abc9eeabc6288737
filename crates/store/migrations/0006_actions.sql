-- One incident across sources, and recovery actions. Same dialect rules as
-- 0001 (@ID@ is the key).

-- Incidents that are one failure seen by two sources (a PagerDuty page and
-- a Sentry trace), one row per direction so either side reads its own.
CREATE TABLE incident_links (
    incident_id BIGINT NOT NULL,
    linked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (incident_id, linked_id)
);

-- Every run of a recovery action (`[[actions]]`): one per (signal,
-- action), so a retried job never plans a run twice. `state` is where it
-- is (awaiting_approval, queued, running, done); `result` what came of it
-- once done; `detail` the record (the request or command with secrets
-- redacted, status, output tail, the checks before and after).
CREATE TABLE action_runs (
    id @ID@,
    incident_id BIGINT NOT NULL,
    signal_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    mode TEXT NOT NULL,
    triggered_by TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    approved_by TEXT,
    detail TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (signal_id, action)
);
CREATE INDEX action_runs_incident ON action_runs (incident_id, id);
CREATE INDEX action_runs_action ON action_runs (action, started_at);
