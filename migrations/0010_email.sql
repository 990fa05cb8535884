-- The token of every signed Mailgun request accepted (webhook/src/email/store.rs). A request
-- inside the freshness window could be captured and sent again with its good signature; a token
-- already here is refused with 403 and nothing is stored. Kept in the database so a restart does
-- not reopen the window; rows older than the window are pruned, since a request that old is
-- refused as stale before its token is looked at.
CREATE TABLE email_tokens_seen (
    token     TEXT PRIMARY KEY,
    signed_at INTEGER NOT NULL,    -- the request's timestamp, seconds since 1970
    seen_at   INTEGER NOT NULL     -- our clock when it was accepted, seconds since 1970
);
CREATE INDEX email_tokens_seen_by_time ON email_tokens_seen (signed_at);
