//! The email channel's SQL, in one place: the replay cache of Mailgun tokens (`email_tokens_seen`,
//! migration 0010).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::email::signature::FRESHNESS;
use crate::inbox::InboxError;

/// Whether the token of a request signed at `signed_at` is seen for the first time (and
/// remember it). Tokens of requests older than twice the freshness window are pruned on the way:
/// such a request is refused as stale before its token is asked about.
pub fn first_time(
    conn: &Connection,
    token: &str,
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, InboxError> {
    let horizon = (now - FRESHNESS * 2).timestamp();
    conn.execute("DELETE FROM email_tokens_seen WHERE signed_at < ?1", params![horizon]).map_err(InboxError::Query)?;
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO email_tokens_seen (token, signed_at, seen_at) VALUES (?1, ?2, ?3)",
            params![token, signed_at.timestamp(), now.timestamp()],
        )
        .map_err(InboxError::Query)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_token_is_accepted_once_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let now = at(1_770_920_800);
        {
            let store = wellbeing_assistant::Store::open(&path).unwrap();
            let conn = store.conn();
            assert!(first_time(&conn, "tok-1", at(1_770_920_772), now).unwrap());
            assert!(!first_time(&conn, "tok-1", at(1_770_920_772), now).unwrap(), "a replay");
            assert!(first_time(&conn, "tok-2", at(1_770_920_772), now).unwrap());
        }
        let reopened = wellbeing_assistant::Store::open(&path).unwrap();
        let conn = reopened.conn();
        assert!(!first_time(&conn, "tok-1", at(1_770_920_772), now + chrono::Duration::seconds(60)).unwrap());
    }

    #[test]
    fn tokens_past_the_window_are_pruned() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let conn = store.conn();
        let sent = at(1_770_920_772);
        assert!(first_time(&conn, "old", sent, sent).unwrap());
        let later = sent + FRESHNESS * 2 + chrono::Duration::seconds(1);
        assert!(first_time(&conn, "new", later, later).unwrap());
        let left: Vec<String> = conn
            .prepare("SELECT token FROM email_tokens_seen ORDER BY token")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, ["new"]);
    }
}
