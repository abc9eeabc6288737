-- The review → verify → close loop: rounds, job input, fix memory and a
-- small document table. Same dialect rules as 0001 (@ID@ is the key).

-- Each pipeline run of an incident is a round: 1 for the first, one more
-- for every retry after a rejected or regressed fix.
ALTER TABLE incidents ADD COLUMN round BIGINT NOT NULL DEFAULT 1;

-- A job's input as JSON (guidance for a retry round), when it has one.
ALTER TABLE jobs ADD COLUMN payload TEXT;

-- Every fix suture proposed, one per (incident, round), and what became of
-- it: the fix memory a fingerprint's later rounds read (a patch that did not
-- hold is never proposed again).
CREATE TABLE fix_attempts (
    id @ID@,
    incident_id BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    round BIGINT NOT NULL,
    strategy TEXT NOT NULL,
    patch_sha TEXT NOT NULL,
    mode TEXT NOT NULL,
    forge TEXT NOT NULL,
    forge_repo TEXT NOT NULL,
    branch TEXT,
    pr_number BIGINT,
    pr_url TEXT,
    tracking_issue BIGINT,
    state TEXT NOT NULL,
    releases_before TEXT,
    merged_at BIGINT,
    verify_until BIGINT,
    closed_at BIGINT,
    note TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (incident_id, round)
);
CREATE INDEX fix_attempts_fingerprint ON fix_attempts (fingerprint, id);
CREATE INDEX fix_attempts_pr ON fix_attempts (forge, forge_repo, pr_number);
CREATE INDEX fix_attempts_issue ON fix_attempts (forge, forge_repo, tracking_issue);

-- Small named JSON documents updated under a lock (the local forge's pull
-- request records).
CREATE TABLE documents (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
