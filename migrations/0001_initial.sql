-- Core tables of the assistant. Times are RFC 3339 UTC text; local dates are YYYY-MM-DD in the
-- persona's time zone at the time of the event. Message text is stored only after redaction.

CREATE TABLE users (
    user_id          TEXT PRIMARY KEY,          -- e.g. "slack:T123:U456", "local:me"
    channel          TEXT NOT NULL,             -- slack | sms | email | local
    dm_channel       TEXT,                      -- Slack DM channel id once opened
    first_seen       TEXT NOT NULL,
    disclaimer_shown INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE persona_versions (
    version    TEXT PRIMARY KEY,                -- Persona::version(): generation-hash
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,                   -- JSON of the PersonaSpec
    first_seen TEXT NOT NULL
);

-- Durable inbox: every accepted event is written here before it is acknowledged.
CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL UNIQUE,       -- Slack event_id (or a generated id): dedup key
    source          TEXT NOT NULL,              -- slack_event | slack_command | local | internal
    user_id         TEXT NOT NULL,
    payload         TEXT NOT NULL,              -- JSON
    received_at     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    processed_at    TEXT
);
CREATE INDEX inbox_pending ON inbox (status, user_id, id);

-- Check-in prompts the assistant sent (CronJob / scheduler), so replies can be linked to them.
CREATE TABLE checkin_prompts (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT NOT NULL,
    persona_name    TEXT NOT NULL,
    persona_version TEXT NOT NULL,
    prompt          TEXT NOT NULL,
    channel_ref     TEXT,                       -- where it was posted (Slack channel + ts)
    thread_ref      TEXT,
    sent_at         TEXT NOT NULL,
    slot            TEXT,                       -- scheduled slot (RFC 3339) when from the schedule
    answered_at     TEXT
);
CREATE UNIQUE INDEX checkin_prompts_slot ON checkin_prompts (user_id, slot) WHERE slot IS NOT NULL;

CREATE TABLE checkins (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    local_date      TEXT NOT NULL,              -- the day the check-in is about (backfill aware)
    data            TEXT NOT NULL,              -- JSON of assistant::CheckIn
    extractor       TEXT NOT NULL,              -- llm | offline
    model           TEXT,                       -- model name when extractor = llm
    persona_name    TEXT NOT NULL,
    persona_version TEXT NOT NULL,
    prompt_id       INTEGER REFERENCES checkin_prompts (id) ON DELETE SET NULL,
    thread_ref      TEXT,
    crisis          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX checkins_user_date ON checkins (user_id, local_date);

CREATE TABLE interactions (
    id              INTEGER PRIMARY KEY,
    user_id         TEXT NOT NULL,
    channel         TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT NOT NULL,              -- message | reply | followup | checkin_prompt | crisis | command | nudge
    text            TEXT NOT NULL,              -- redacted
    created_at      TEXT NOT NULL,
    thread_ref      TEXT,
    persona_name    TEXT NOT NULL,
    persona_version TEXT NOT NULL,
    checkin_id      INTEGER REFERENCES checkins (id) ON DELETE SET NULL,
    event_id        TEXT,                       -- inbox event that produced it (idempotency)
    flagged         INTEGER NOT NULL DEFAULT 0, -- crisis language
    redacted        INTEGER NOT NULL DEFAULT 0  -- a credential-like part was removed
);
CREATE INDEX interactions_user_time ON interactions (user_id, created_at);
CREATE UNIQUE INDEX interactions_event ON interactions (event_id, direction, kind) WHERE event_id IS NOT NULL;

-- At most one follow-up per check-in.
CREATE TABLE followups (
    id          INTEGER PRIMARY KEY,
    checkin_id  INTEGER NOT NULL UNIQUE REFERENCES checkins (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    fields      TEXT NOT NULL,                  -- JSON array of the fields asked about
    question    TEXT NOT NULL,
    thread_ref  TEXT,
    asked_at    TEXT NOT NULL,
    answered_at TEXT
);
