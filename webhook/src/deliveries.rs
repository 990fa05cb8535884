//! What was posted to Slack for which event, so a crash after posting never posts twice.
//!
//! Before a message is sent its delivery is recorded as `posting`; after Slack's answer, as
//! `posted` with the message's ts. A retry skips `posted` messages and, for `posting` ones, looks
//! for the message in its thread by the key carried in the message metadata.

use rusqlite::{Connection, OptionalExtension, params};

use crate::inbox::InboxError;

/// Slack message metadata event type that marks the assistant's own replies.
pub const METADATA_EVENT_TYPE: &str = "wellbeing_delivery";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Recorded before the Web API call; whether Slack got it is unknown.
    Posting {
        channel: Option<String>,
        thread_ts: Option<String>,
    },
    Posted {
        channel: Option<String>,
        ts: Option<String>,
    },
}

pub fn get(conn: &Connection, key: &str, seq: i64) -> Result<Option<Delivery>, InboxError> {
    conn.query_row(
        "SELECT status, channel, thread_ts, ts FROM deliveries WHERE key = ?1 AND seq = ?2",
        params![key, seq],
        |r| {
            let status: String = r.get(0)?;
            Ok(if status == "posted" {
                Delivery::Posted { channel: r.get(1)?, ts: r.get(3)? }
            } else {
                Delivery::Posting { channel: r.get(1)?, thread_ts: r.get(2)? }
            })
        },
    )
    .optional()
    .map_err(InboxError::Query)
}

pub fn begin(
    conn: &Connection,
    key: &str,
    seq: i64,
    user_id: &str,
    channel: &str,
    thread_ts: Option<&str>,
) -> Result<(), InboxError> {
    conn.execute(
        "INSERT INTO deliveries (key, seq, user_id, status, channel, thread_ts, started_at)
         VALUES (?1, ?2, ?3, 'posting', ?4, ?5, ?6)
         ON CONFLICT (key, seq) DO UPDATE SET channel = excluded.channel, thread_ts = excluded.thread_ts",
        params![key, seq, user_id, channel, thread_ts, wellbeing_assistant::store::now_rfc3339()],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

pub fn finish(conn: &Connection, key: &str, seq: i64, ts: Option<&str>) -> Result<(), InboxError> {
    conn.execute(
        "UPDATE deliveries SET status = 'posted', ts = ?3, posted_at = ?4 WHERE key = ?1 AND seq = ?2",
        params![key, seq, ts, wellbeing_assistant::store::now_rfc3339()],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

/// Forget a delivery that certainly did not go out (the API refused it), so a retry sends it.
/// Only a `posting` record: one that was posted stays.
pub fn abandon(conn: &Connection, key: &str, seq: i64) -> Result<(), InboxError> {
    conn.execute("DELETE FROM deliveries WHERE key = ?1 AND seq = ?2 AND status = 'posting'", params![key, seq])
        .map_err(InboxError::Query)?;
    Ok(())
}

/// The metadata payload that identifies delivery (`key`, `seq`).
pub fn metadata(key: &str, seq: i64) -> crate::slack::client::MessageMetadata {
    crate::slack::client::MessageMetadata {
        event_type: METADATA_EVENT_TYPE.to_string(),
        event_payload: serde_json::json!({ "key": key, "seq": seq }),
    }
}

/// Whether a message in a thread is delivery (`key`, `seq`).
pub fn is_delivery(message: &crate::slack::client::HistoryMessage, key: &str, seq: i64) -> bool {
    message.metadata.as_ref().is_some_and(|m| {
        m.event_type == METADATA_EVENT_TYPE
            && m.event_payload.get("key").and_then(|k| k.as_str()) == Some(key)
            && m.event_payload.get("seq").and_then(|s| s.as_i64()) == Some(seq)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::client::HistoryMessage;

    #[test]
    fn a_delivery_goes_from_posting_to_posted() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let conn = store.conn();
        assert_eq!(get(&conn, "Ev1", 0).unwrap(), None);
        begin(&conn, "Ev1", 0, "slack:T1:U1", "D1", Some("1.1")).unwrap();
        assert_eq!(
            get(&conn, "Ev1", 0).unwrap(),
            Some(Delivery::Posting { channel: Some("D1".into()), thread_ts: Some("1.1".into()) })
        );
        finish(&conn, "Ev1", 0, Some("2.2")).unwrap();
        assert_eq!(
            get(&conn, "Ev1", 0).unwrap(),
            Some(Delivery::Posted { channel: Some("D1".into()), ts: Some("2.2".into()) })
        );
        assert_eq!(get(&conn, "Ev1", 1).unwrap(), None);
    }

    #[test]
    fn metadata_identifies_exactly_one_delivery() {
        let m = HistoryMessage { ts: "1".into(), metadata: Some(metadata("Ev1", 1)) };
        assert!(is_delivery(&m, "Ev1", 1));
        assert!(!is_delivery(&m, "Ev1", 0));
        assert!(!is_delivery(&m, "Ev2", 1));
        assert!(!is_delivery(&HistoryMessage { ts: "1".into(), metadata: None }, "Ev1", 1));
    }
}
