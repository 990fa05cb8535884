//! Numbers that texted STOP: nothing is sent to them (no reply, check-in or nudge) until they
//! text START. Keyed by the number, not the person, so it holds for numbers nobody is served at.

use rusqlite::{Connection, OptionalExtension, params};

use crate::inbox::InboxError;

/// Record that `number` opted out (`source`: "keyword", or "twilio_21610" when Twilio refused a
/// send because the number had opted out with it).
pub fn record_stop(conn: &Connection, number: &str, source: &str, now: &str) -> Result<(), InboxError> {
    conn.execute(
        "INSERT INTO sms_opt_outs (address, opted_out_at, source) VALUES (?1, ?2, ?3)
         ON CONFLICT (address) DO NOTHING",
        params![number, now, source],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

/// Sending to `number` may resume. True when it had opted out.
pub fn record_start(conn: &Connection, number: &str) -> Result<bool, InboxError> {
    let n = conn.execute("DELETE FROM sms_opt_outs WHERE address = ?1", params![number]).map_err(InboxError::Query)?;
    Ok(n > 0)
}

/// Whether keyword message `message_sid` is seen for the first time (and remember it). A replay of
/// a signed STOP or START (Twilio's signature carries no timestamp) is then ignored.
pub fn first_time(conn: &Connection, message_sid: &str, now: &str) -> Result<bool, InboxError> {
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO sms_keywords_seen (message_sid, seen_at) VALUES (?1, ?2)",
            params![message_sid, now],
        )
        .map_err(InboxError::Query)?;
    Ok(n == 1)
}

pub fn is_opted_out(conn: &Connection, number: &str) -> Result<bool, InboxError> {
    conn.query_row("SELECT 1 FROM sms_opt_outs WHERE address = ?1", params![number], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(InboxError::Query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_holds_until_start() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let conn = store.conn();
        assert!(!is_opted_out(&conn, "+4915112345678").unwrap());
        record_stop(&conn, "+4915112345678", "keyword", "2026-05-08T10:00:00Z").unwrap();
        record_stop(&conn, "+4915112345678", "keyword", "2026-05-08T10:01:00Z").unwrap();
        assert!(is_opted_out(&conn, "+4915112345678").unwrap());
        assert!(!is_opted_out(&conn, "+4915100000000").unwrap());
        assert!(record_start(&conn, "+4915112345678").unwrap());
        assert!(!record_start(&conn, "+4915112345678").unwrap());
        assert!(!is_opted_out(&conn, "+4915112345678").unwrap());
        assert!(first_time(&conn, "SM1", "2026-05-08T10:00:00Z").unwrap());
        assert!(!first_time(&conn, "SM1", "2026-05-08T10:05:00Z").unwrap(), "a replay");
    }
}
