-- The one record of scheduled work, in the service and in `wellbeing up`: each job (a check-in
-- slot of a persona, a goals-and-insight minute) once it ran, was deliberately skipped, or was
-- missed while the process was down. A key recorded here is never run again, across restarts
-- and replicas; each kind keeps its own finer keys too (checkin_prompts per slot, scheduled_sends
-- per message).
CREATE TABLE scheduler_runs (
    job_key     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sent', 'already_sent', 'skipped', 'missed')),
    finished_at TEXT NOT NULL
);
CREATE INDEX scheduler_runs_due ON scheduler_runs (due_at);
