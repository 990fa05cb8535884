//! Reads and writes of the goal tables (migration 0002) and the check-ins they build on.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::gate::PromptRecord;
use super::pause::Pause;
use super::{Event, ManualLog, OutgoingMessage, SendKind};
use crate::{CheckIn, StoreError};

pub(crate) use wellbeing_common::time::rfc3339_secs as ts;

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Read a stored check-in leniently: a field this version cannot read (an unknown pillar, a
/// renamed enum value) is dropped instead of losing the whole row. The raw pillar names are kept
/// separately so learned pillars see them.
pub fn parse_checkin(data: &str) -> (CheckIn, Vec<String>) {
    let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let pillars = value
        .get("pillars")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Ok(c) = serde_json::from_value::<CheckIn>(value.clone()) {
        return (c, pillars);
    }
    let Value::Object(map) = value else { return (CheckIn::default(), pillars) };
    let readable: serde_json::Map<String, Value> = map
        .into_iter()
        .filter_map(|(k, v)| {
            let one = Value::Object([(k.clone(), v.clone())].into_iter().collect());
            if serde_json::from_value::<CheckIn>(one).is_ok() {
                return Some((k, v));
            }
            // A list with one bad element (an unknown pillar) keeps its good elements.
            let Value::Array(items) = v else { return None };
            let good: Vec<Value> = items
                .into_iter()
                .filter(|item| {
                    let one = Value::Object([(k.clone(), Value::Array(vec![item.clone()]))].into_iter().collect());
                    serde_json::from_value::<CheckIn>(one).is_ok()
                })
                .collect();
            Some((k, Value::Array(good)))
        })
        .collect();
    (serde_json::from_value(Value::Object(readable)).unwrap_or_default(), pillars)
}

/// One stored row, before rows of one thread are merged.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub local_date: NaiveDate,
    pub data: String,
    pub thread_ref: Option<String>,
}

/// Turn rows into events: rows of the same thread (a check-in and its follow-up answer) are one
/// event, dated by the first row. Rows are taken in id order.
pub fn merge_rows(mut rows: Vec<Row>) -> Vec<Event> {
    rows.sort_by_key(|r| r.id);
    let mut events: Vec<Event> = Vec::with_capacity(rows.len());
    let mut by_thread: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let (checkin, pillars) = parse_checkin(&row.data);
        if let Some(thread) = row.thread_ref.as_ref().filter(|t| !t.is_empty()) {
            if let Some(&i) = by_thread.get(thread) {
                let e = &mut events[i];
                e.checkin.merge(&checkin);
                for p in pillars {
                    if !e.pillars.contains(&p) {
                        e.pillars.push(p);
                    }
                }
                continue;
            }
            by_thread.insert(thread.clone(), events.len());
        }
        events.push(Event { id: row.id, local_date: row.local_date, created_at: row.created_at, checkin, pillars });
    }
    events
}

/// Check-in events of a user about days from `since` on (all when None).
pub fn load_events(conn: &Connection, user: &str, since: Option<NaiveDate>) -> Result<Vec<Event>, StoreError> {
    let since = since.map(|d| d.to_string()).unwrap_or_default();
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, local_date, data, thread_ref FROM checkins
         WHERE user_id = ?1 AND local_date >= ?2 ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![user, since], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?))
        })?
        .filter_map(|r| match r {
            Ok((id, created, date, data, thread_ref)) => {
                // A row with an unreadable date cannot be placed in any period; skip it.
                let local_date = date.parse().ok()?;
                let created_at = parse_ts(&created).unwrap_or_default();
                Some(Ok(Row { id, created_at, local_date, data, thread_ref }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_rows(rows))
}

/// The people the assistant serves (their ids are the `user_id` of every per-person table).
pub fn users(conn: &Connection) -> Result<Vec<String>, StoreError> {
    crate::people::list(conn)
}

pub fn load_manual(conn: &Connection, user: &str, since: Option<NaiveDate>) -> Result<Vec<ManualLog>, StoreError> {
    let since = since.map(|d| d.to_string()).unwrap_or_default();
    let mut stmt =
        conn.prepare_cached("SELECT goal, local_date FROM goal_logs WHERE user_id = ?1 AND local_date >= ?2")?;
    let logs = stmt
        .query_map(params![user, since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(|r| match r {
            Ok((goal, date)) => date.parse().ok().map(|local_date| Ok(ManualLog { goal, local_date })),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(logs)
}

/// Record a "Done". Pressing it twice for the same reminder counts once.
pub fn add_manual(
    conn: &Connection,
    user: &str,
    goal: &str,
    date: NaiveDate,
    slot: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO goal_logs (user_id, goal, local_date, created_at, slot) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user, goal, date.to_string(), ts(now), slot],
    )?;
    Ok(n == 1)
}

/// Pauses of a user, with an early resume applied.
pub fn load_pauses(conn: &Connection, user: &str) -> Result<Vec<Pause>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT starts_at, until, ended_at FROM pauses WHERE user_id = ?1")?;
    let pauses = stmt
        .query_map(params![user], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })?
        .filter_map(|r| match r {
            Ok((s, u, e)) => {
                let starts_at = parse_ts(&s)?;
                let mut until = parse_ts(&u)?;
                if let Some(ended) = e.as_deref().and_then(parse_ts) {
                    until = until.min(ended);
                }
                Some(Ok(Pause { starts_at, until }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pauses)
}

pub fn add_pause(conn: &Connection, user: &str, pause: &Pause, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO pauses (user_id, starts_at, until, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![user, ts(pause.starts_at), ts(pause.until), ts(now)],
    )?;
    Ok(())
}

/// End every running pause now ("/wellbeing resume"). Returns how many were running.
pub fn end_pauses(conn: &Connection, user: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE pauses SET ended_at = ?2 WHERE user_id = ?1 AND ended_at IS NULL AND until > ?2 AND starts_at <= ?2",
        params![user, ts(now)],
    )?)
}

/// What was already sent on a local date: (kind, goal, slot).
pub fn sends_on(conn: &Connection, user: &str, date: NaiveDate) -> Result<Vec<(SendKind, String, String)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT kind, goal, slot FROM scheduled_sends WHERE user_id = ?1 AND local_date = ?2")?;
    let rows = stmt
        .query_map(params![user, date.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
        .filter_map(|r| match r {
            Ok((k, g, s)) => SendKind::parse(&k).map(|k| Ok((k, g, s))),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn was_sent(conn: &Connection, user: &str, kind: SendKind, goal: &str, slot: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM scheduled_sends WHERE user_id = ?1 AND kind = ?2 AND goal = ?3 AND slot = ?4",
            params![user, kind.as_str(), goal, slot],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Record a send before it is handed to a channel. False when it was already recorded (another
/// tick, or before a restart): the caller must not send it again.
pub fn record_send(
    conn: &Connection,
    msg: &OutgoingMessage,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO scheduled_sends (user_id, kind, goal, slot, local_date, sent_at, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![msg.user_id, msg.kind.as_str(), msg.goal, msg.slot, date.to_string(), ts(now), msg.text],
    )?;
    Ok(n == 1)
}

/// A pressed "Snooze" or "Skip today".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snooze {
    pub goal: String,
    pub skip: bool,
    pub local_date: NaiveDate,
    pub until: DateTime<Utc>,
}

pub fn snoozes_on(conn: &Connection, user: &str, date: NaiveDate) -> Result<Vec<Snooze>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT goal, kind, until FROM snoozes WHERE user_id = ?1 AND local_date = ?2")?;
    let rows = stmt
        .query_map(params![user, date.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?
        .filter_map(|r| match r {
            Ok((goal, kind, until)) => {
                parse_ts(&until).map(|until| Ok(Snooze { goal, skip: kind == "skip", local_date: date, until }))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn add_snooze(conn: &Connection, user: &str, s: &Snooze, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO snoozes (user_id, goal, kind, local_date, until, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![user, s.goal, if s.skip { "skip" } else { "snooze" }, s.local_date.to_string(), ts(s.until), ts(now)],
    )?;
    Ok(())
}

/// Check-in prompts sent since `since`, for the backoff.
pub fn prompts_since(conn: &Connection, user: &str, since: DateTime<Utc>) -> Result<Vec<PromptRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, sent_at, answered_at IS NOT NULL FROM checkin_prompts WHERE user_id = ?1 AND sent_at >= ?2",
    )?;
    let rows = stmt
        .query_map(params![user, ts(since)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
        })?
        .filter_map(|r| match r {
            Ok((id, sent, answered)) => parse_ts(&sent).map(|sent_at| Ok(PromptRecord { id, sent_at, answered })),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// When the user last wrote anything (a check-in, or any inbound message).
pub fn last_user_activity(conn: &Connection, user: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let last: Option<String> = conn.query_row(
        "SELECT MAX(t) FROM (
            SELECT MAX(created_at) AS t FROM checkins WHERE user_id = ?1
            UNION ALL SELECT MAX(created_at) FROM interactions WHERE user_id = ?1 AND direction = 'in')",
        params![user],
        |r| r.get(0),
    )?;
    Ok(last.as_deref().and_then(parse_ts))
}

/// Check-in prompts sent during a local date.
pub fn prompts_sent_on(conn: &Connection, user: &str, tz: Tz, date: NaiveDate) -> Result<usize, StoreError> {
    let start = super::pause::start_of_day(tz, date);
    let end = super::pause::start_of_day(tz, date.succ_opt().unwrap_or(date));
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM checkin_prompts WHERE user_id = ?1 AND sent_at >= ?2 AND sent_at < ?3",
        params![user, ts(start), ts(end)],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

/// Delete everything these tables hold about a user (part of "forget me").
pub fn delete_user(conn: &Connection, user: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM pillar_evidence WHERE suggestion_id IN (SELECT id FROM pillar_suggestions WHERE user_id = ?1)",
        params![user],
    )?;
    for table in ["scheduled_sends", "snoozes", "goal_logs", "pauses", "pillar_suggestions", "insights"] {
        conn.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), params![user])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::checkin::{Exercise, Level, Pillar};

    fn insert_checkin(store: &Store, user: &str, date: &str, data: &str, thread: Option<&str>) -> i64 {
        let conn = store.conn();
        conn.execute(
            "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, persona_name, persona_version, thread_ref)
             VALUES (?1, ?2, ?3, ?4, 'offline', 'p', 'v', ?5)",
            params![user, format!("{date}T12:00:00Z"), date, data, thread],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn a_check_in_and_its_follow_up_are_one_event() {
        let store = Store::in_memory().unwrap();
        let first =
            insert_checkin(&store, "u", "2026-05-04", r#"{"energy":"low","pillars":["sleep"]}"#, Some("C1:111"));
        insert_checkin(
            &store,
            "u",
            "2026-05-04",
            r#"{"exercise":"done","pillars":["physical-activity"]}"#,
            Some("C1:111"),
        );
        insert_checkin(&store, "u", "2026-05-04", r#"{"exercise":"done"}"#, Some("C1:222"));
        insert_checkin(&store, "other", "2026-05-04", r#"{"exercise":"done"}"#, None);
        let events = load_events(&store.conn(), "u", None).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id, first);
        assert_eq!((events[0].checkin.energy, events[0].checkin.exercise), (Level::Low, Exercise::Done));
        assert_eq!(events[0].pillars, vec!["sleep", "physical-activity"]);
        assert_eq!(events[0].checkin.pillars, vec![Pillar::PhysicalActivity, Pillar::Sleep]);
    }

    #[test]
    fn odd_rows_are_read_leniently() {
        let (c, pillars) =
            parse_checkin(r#"{"energy":"low","pillars":["sleep","Sleep😴 & <b>naps</b>"],"exercise":"sideways"}"#);
        assert_eq!(c.energy, Level::Low);
        assert_eq!(c.exercise, Exercise::Unknown);
        assert_eq!(c.pillars, vec![Pillar::Sleep]);
        assert_eq!(pillars, vec!["sleep", "Sleep😴 & <b>naps</b>"]);
        assert_eq!(parse_checkin("not json").0, CheckIn::default());
    }

    #[test]
    fn sends_are_recorded_once_and_pauses_end_early() {
        let store = Store::in_memory().unwrap();
        let conn = store.conn();
        let now: DateTime<Utc> = "2026-05-04T12:00:00Z".parse().unwrap();
        let msg = OutgoingMessage {
            user_id: "u".into(),
            kind: SendKind::Reminder,
            goal: "meals".into(),
            slot: "2026-05-04T12:00".into(),
            text: "No meal logged yet today.".into(),
            actions: Vec::new(),
        };
        let date: NaiveDate = "2026-05-04".parse().unwrap();
        assert!(record_send(&conn, &msg, date, now).unwrap());
        assert!(!record_send(&conn, &msg, date, now).unwrap());
        assert!(was_sent(&conn, "u", SendKind::Reminder, "meals", "2026-05-04T12:00").unwrap());
        assert_eq!(sends_on(&conn, "u", date).unwrap().len(), 1);

        let pause = Pause { starts_at: now, until: now + chrono::Duration::days(5) };
        add_pause(&conn, "u", &pause, now).unwrap();
        let later = now + chrono::Duration::days(1);
        assert_eq!(end_pauses(&conn, "u", later).unwrap(), 1);
        assert_eq!(load_pauses(&conn, "u").unwrap(), vec![Pause { starts_at: now, until: later }]);
        assert!(add_manual(&conn, "u", "meals", date, "slot-1", now).unwrap());
        assert!(!add_manual(&conn, "u", "meals", date, "slot-1", now).unwrap());
        assert_eq!(load_manual(&conn, "u", None).unwrap().len(), 1);
        delete_user(&conn, "u").unwrap();
        assert!(load_pauses(&conn, "u").unwrap().is_empty());
        assert!(sends_on(&conn, "u", date).unwrap().is_empty());
    }
}
