-- Detect and guard: why an incident got a round (or was held back), each
-- admitted round for the limits to count, and the LLM tokens each
-- repository spent per day.
ALTER TABLE incidents ADD COLUMN heal_trigger TEXT;
ALTER TABLE incidents ADD COLUMN held_back TEXT;

-- One row per round that passed its limits: started_at for the hourly
-- rate, ended_at NULL while it runs (the concurrency limit).
CREATE TABLE rounds (
    incident_id BIGINT NOT NULL,
    round BIGINT NOT NULL,
    repo TEXT NOT NULL,
    heal_trigger TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (incident_id, round)
);
CREATE INDEX rounds_repo_started ON rounds (repo, started_at);

-- One row per repository, updated first by every admission so that two
-- workers admitting rounds of one repository take turns (a row lock on
-- PostgreSQL; SQLite's write lock already serialises them).
CREATE TABLE round_gates (
    repo TEXT PRIMARY KEY,
    admitted BIGINT NOT NULL
);

CREATE TABLE llm_usage (
    repo TEXT NOT NULL,
    day TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    PRIMARY KEY (repo, day)
);

-- An incident's event rate over recent windows (spikes).
CREATE INDEX signals_incident_received ON signals (incident_id, received_at)
    WHERE has_event = 1;
