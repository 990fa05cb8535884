-- Messages the assistant posted to Slack for an inbox event or a check-in prompt. A row is written
-- as 'posting' before the Web API call and set to 'posted' after it, so a crash between posting
-- and marking the inbox row done never posts a reply twice: a 'posting' row is checked against
-- the thread (the message carries the key in its metadata) before anything is sent again.
CREATE TABLE deliveries (
    key        TEXT NOT NULL,                  -- inbox event_id, or "checkin:<prompt id>"
    seq        INTEGER NOT NULL,               -- position of the message in what the event produced
    user_id    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('posting', 'posted')),
    channel    TEXT,                           -- Slack channel, or "response_url"
    thread_ts  TEXT,                           -- the thread it was posted into
    ts         TEXT,                           -- Slack's ts of the posted message
    started_at TEXT NOT NULL,
    posted_at  TEXT,
    PRIMARY KEY (key, seq)
);
CREATE INDEX deliveries_user ON deliveries (user_id);

-- The worker reads the inbox queue in id order; this index holds only the pending rows, so the
-- read costs the same however many processed rows the table keeps. It replaces inbox_pending
-- (status, user_id, id): every event inserted a key at a random place in that one, which under
-- load made each group commit write a page per row (measured: ~8 KB of WAL per 700-byte event).
CREATE INDEX inbox_queue ON inbox (id) WHERE status = 'pending';
DROP INDEX inbox_pending;
