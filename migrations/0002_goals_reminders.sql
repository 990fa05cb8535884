-- Goals, reminders, learned pillars and insights. Times are RFC 3339 UTC text; local dates are
-- YYYY-MM-DD in the persona's time zone.

-- Every proactive message the assistant sent (nudges, reminders, follow-through questions, pillar
-- questions, the backoff notice, weekly insights). The unique key makes "never sent twice" and the
-- daily cap hold across restarts: a send is recorded before it is handed to the channel.
CREATE TABLE scheduled_sends (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('nudge', 'reminder', 'followthrough', 'pillar', 'backoff_notice', 'insight')),
    goal       TEXT NOT NULL DEFAULT '',    -- goal name, pillar name, or '' when not about one
    slot       TEXT NOT NULL,               -- which occasion: e.g. "2026-05-08T12:30" or a check-in id
    local_date TEXT NOT NULL,               -- the user's day it belongs to (for the daily cap)
    sent_at    TEXT NOT NULL,
    text       TEXT NOT NULL                -- what the assistant said (never the user's words)
);
CREATE UNIQUE INDEX scheduled_sends_once ON scheduled_sends (user_id, kind, goal, slot);
CREATE INDEX scheduled_sends_day ON scheduled_sends (user_id, local_date);

-- "Snooze 30 min" and "Skip today" on a reminder or nudge.
CREATE TABLE snoozes (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    goal       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('snooze', 'skip')),
    local_date TEXT NOT NULL,               -- the day it was pressed
    until      TEXT NOT NULL,               -- snooze: when the reminder may come back
    created_at TEXT NOT NULL
);
CREATE INDEX snoozes_user_goal ON snoozes (user_id, goal, local_date);

-- "Done" on a reminder: one counted event for the goal, as if a check-in had said so.
CREATE TABLE goal_logs (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    goal       TEXT NOT NULL,
    local_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    slot       TEXT NOT NULL DEFAULT ''     -- the reminder it answered; pressing Done twice counts once
);
CREATE UNIQUE INDEX goal_logs_once ON goal_logs (user_id, goal, slot) WHERE slot <> '';
CREATE INDEX goal_logs_user_date ON goal_logs (user_id, local_date);

-- "/wellbeing pause 5d": nothing proactive is sent from starts_at until `until` (or until resumed).
CREATE TABLE pauses (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    until      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ended_at   TEXT                         -- set by "/wellbeing resume"
);
CREATE INDEX pauses_user ON pauses (user_id, until);

-- Learned pillars: the question asked, its answer, and the check-ins that led to it.
CREATE TABLE pillar_suggestions (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    pillar      TEXT NOT NULL,
    mentions    INTEGER NOT NULL,
    asked_at    TEXT NOT NULL,
    answer      TEXT CHECK (answer IN ('yes', 'not_now', 'never')),
    answered_at TEXT,
    goal_name   TEXT                        -- the Goal created for "yes"
);
CREATE INDEX pillar_suggestions_user ON pillar_suggestions (user_id, pillar, asked_at);

CREATE TABLE pillar_evidence (
    suggestion_id INTEGER NOT NULL REFERENCES pillar_suggestions (id) ON DELETE CASCADE,
    checkin_id    INTEGER NOT NULL REFERENCES checkins (id) ON DELETE CASCADE,
    local_date    TEXT NOT NULL,
    PRIMARY KEY (suggestion_id, checkin_id)
);

-- Weekly insights as computed (facts JSON) and as sent (text).
CREATE TABLE insights (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    week_start TEXT NOT NULL,               -- Monday of the week (local date)
    created_at TEXT NOT NULL,
    facts      TEXT NOT NULL,               -- JSON of insights::WeeklyFacts
    text       TEXT NOT NULL,
    phrased_by TEXT NOT NULL CHECK (phrased_by IN ('template', 'llm')),
    UNIQUE (user_id, week_start)
);
