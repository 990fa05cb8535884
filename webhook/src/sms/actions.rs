//! A reminder's buttons by SMS: a reminder or nudge sent by text ends with "Reply DONE, SNOOZE or
//! SKIP", and a text that is just one of those words answers the latest one sent to the person by
//! SMS in the last day, with the same `goals::actions::handle` as a Slack or page button.
//!
//! A pillar question's buttons (Yes / Not now / Never) are not offered by SMS: YES is one of the
//! carrier keywords that lift a STOP, so it cannot mean anything else in a text.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};
use wellbeing_assistant::goals::SendKind;
use wellbeing_assistant::goals::actions::{GOAL_DONE, GOAL_SKIP, GOAL_SNOOZE};
use wellbeing_assistant::message::Action;

use crate::inbox::InboxError;
use crate::nudges::parse_key;

/// The line that stands in for a reminder's buttons.
pub const HINT: &str = "Reply DONE, SNOOZE or SKIP.";
/// How long after it was sent a reminder can still be answered by a word.
const ANSWERABLE_FOR: Duration = Duration::hours(24);

/// The action a whole message (trimmed, any case) stands for, if it is one of the words.
pub fn action_word(text: &str) -> Option<&'static str> {
    let word = text.trim();
    [("DONE", GOAL_DONE), ("SNOOZE", GOAL_SNOOZE), ("SKIP", GOAL_SKIP)]
        .into_iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|(_, id)| id)
}

/// A proactive message's text as sent by SMS: with [`HINT`] when it carries a reminder's buttons.
pub fn with_hint(text: &str, actions: &[Action]) -> String {
    if actions.iter().any(|a| a.id == GOAL_DONE) { format!("{text}\n{HINT}") } else { text.to_string() }
}

/// The buttons' value (`goal|slot`) of the latest reminder or nudge sent to `person` by SMS in
/// the last day, if any.
pub fn latest_reminder(conn: &Connection, person: &str, now: DateTime<Utc>) -> Result<Option<String>, InboxError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, posted_at FROM deliveries
             WHERE user_id = ?1 AND channel = 'sms' AND status = 'posted' AND key LIKE 'proactive:%'
             ORDER BY posted_at DESC LIMIT 20",
        )
        .map_err(InboxError::Query)?;
    let rows = stmt
        .query_map(params![person], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
        .map_err(InboxError::Query)?;
    for row in rows {
        let (key, posted_at) = row.map_err(InboxError::Query)?;
        let recent = posted_at
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .is_some_and(|t| now - t.with_timezone(&Utc) <= ANSWERABLE_FOR);
        if !recent {
            // Newest first: the rest are older still.
            break;
        }
        match parse_key(&key) {
            Some(k) if matches!(k.kind, SendKind::Reminder | SendKind::Nudge) && k.value.contains('|') => {
                return Ok(Some(k.value));
            }
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use wellbeing_assistant::goals::actions::{goal_actions, pillar_actions};
    use wellbeing_assistant::goals::{OutgoingMessage, SendKind};

    use super::*;
    use crate::deliveries;
    use crate::nudges::message_key;

    #[test]
    fn words_stand_for_a_reminders_buttons_only() {
        assert_eq!(action_word(" done "), Some(GOAL_DONE));
        assert_eq!(action_word("Snooze"), Some(GOAL_SNOOZE));
        assert_eq!(action_word("SKIP"), Some(GOAL_SKIP));
        assert_eq!(action_word("done for today"), None);
        assert_eq!(action_word("yes"), None, "YES lifts a STOP");
        assert_eq!(with_hint("Lunch?", &goal_actions("meals", "s")), "Lunch?\nReply DONE, SNOOZE or SKIP.");
        assert_eq!(with_hint("Sleep?", &pillar_actions(1)), "Sleep?");
        assert_eq!(with_hint("Insight", &[]), "Insight");
    }

    #[test]
    fn the_latest_recent_reminder_sent_by_sms_is_the_one_answered() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let conn = store.conn();
        let now = Utc::now();
        let msg = |kind, goal: &str, slot: &str, actions| OutgoingMessage {
            user_id: "ana".into(),
            kind,
            goal: goal.into(),
            slot: slot.into(),
            text: "t".into(),
            actions,
        };
        assert_eq!(latest_reminder(&conn, "ana", now).unwrap(), None);
        let send = |m: &OutgoingMessage, channel: &str, at: DateTime<Utc>| {
            let key = message_key(m);
            deliveries::begin(&conn, &key, 0, "ana", channel, None).unwrap();
            deliveries::finish(&conn, &key, 0, Some("SM1")).unwrap();
            conn.execute(
                "UPDATE deliveries SET posted_at = ?2 WHERE key = ?1",
                params![key, wellbeing_common::time::rfc3339_millis(at)],
            )
            .unwrap();
        };
        send(
            &msg(SendKind::Reminder, "meals", "13:00", goal_actions("meals", "13:00")),
            "sms",
            now - Duration::hours(30),
        );
        assert_eq!(latest_reminder(&conn, "ana", now).unwrap(), None, "more than a day ago");
        send(&msg(SendKind::Nudge, "water", "15:00", goal_actions("water", "15:00")), "sms", now - Duration::hours(2));
        send(&msg(SendKind::Insight, "", "w1", Vec::new()), "sms", now - Duration::hours(1));
        send(&msg(SendKind::Reminder, "walk", "16:00", goal_actions("walk", "16:00")), "D1", now);
        assert_eq!(latest_reminder(&conn, "ana", now).unwrap().as_deref(), Some("water|15:00"));
        assert_eq!(latest_reminder(&conn, "bo", now).unwrap(), None);
    }
}
