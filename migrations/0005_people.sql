-- People the assistant serves, and the addresses they write from. Every per-person table's
-- `user_id` column holds a person's id (people.person_id): one history per person, whichever
-- channel a message came by.
--
-- A person's id is opaque and never changes. People created by this migration keep their old
-- user key ("slack:T123:U456", "local:me") as their id, so no history is rewritten; people enrolled
-- later get the name they were configured with, or the key of the identity they were enrolled by.

CREATE TABLE people (
    person_id        TEXT PRIMARY KEY,
    created_at       TEXT NOT NULL,
    disclaimer_shown INTEGER NOT NULL DEFAULT 0
);

-- One row per address a person is reached at. `address` is channel-specific:
--   slack: "TEAM:USER" ("*:USER" until the workspace is known), sms: E.164 "+4915112345678",
--   email: the lowercased address, local: the local user's name ("me").
CREATE TABLE identities (
    channel     TEXT NOT NULL CHECK (channel IN ('slack', 'sms', 'email', 'local')),
    address     TEXT NOT NULL,
    person_id   TEXT NOT NULL REFERENCES people (person_id) ON DELETE CASCADE,
    private_ref TEXT,                       -- the private conversation on that channel (Slack DM id)
    first_seen  TEXT NOT NULL,
    PRIMARY KEY (channel, address)
);
CREATE INDEX identities_person ON identities (person_id);

INSERT INTO people (person_id, created_at, disclaimer_shown)
    SELECT user_id, first_seen, disclaimer_shown FROM users;
INSERT INTO identities (channel, address, person_id, private_ref, first_seen)
    SELECT channel, substr(user_id, instr(user_id, ':') + 1), user_id, dm_channel, first_seen
    FROM users WHERE channel IN ('slack', 'sms', 'email', 'local') AND instr(user_id, ':') > 0;

DROP TABLE users;
