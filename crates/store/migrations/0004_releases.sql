-- Releases are learnt from the events that name them: each project's
-- releases (first and last seen, counts) and the release seen before
-- another are aggregates over this index, not scans of every payload.
CREATE INDEX signals_project_release ON signals (project, release, received_at)
    WHERE has_event = 1 AND release IS NOT NULL;
