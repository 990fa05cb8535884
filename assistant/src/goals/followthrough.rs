//! Follow-through: when a check-in says "exhausted" or "going to bed early", a later check-in
//! asks how that went.

use chrono::{DateTime, Duration, Utc};

use super::Event;

/// A check-in earlier than this before the next check-in is left alone: asking "how did that go"
/// an hour later is nagging, and after a day and a half it is stale.
const MIN_AGE: Duration = Duration::hours(2);
const MAX_AGE: Duration = Duration::hours(36);

/// Mood words that mean running on empty.
const EXHAUSTED: &[&str] =
    &["exhausted", "drained", "wiped", "burnt out", "burned out", "knackered", "shattered", "spent"];
/// Intentions about resting that deserve a "how did it go".
const REST_PLANS: &[&str] =
    &["bed early", "early night", "sleep early", "sleep in", "nap", "rest", "take it easy", "day off"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowThrough {
    /// The check-in it follows up (the slot: asked once per check-in).
    pub checkin_id: i64,
    pub question: String,
}

/// What, in an event, deserves a follow-through question, phrased as the question.
pub fn question_for(event: &Event) -> Option<String> {
    let plan = event.checkin.intentions.iter().find(|i| REST_PLANS.iter().any(|p| i.to_lowercase().contains(p)));
    if let Some(plan) = plan {
        let plan = plan.trim().trim_end_matches('.');
        return Some(format!("You said you were {}. How did that go?", lowercase_first(plan)));
    }
    let mood = event.checkin.mood.as_deref().unwrap_or("").to_lowercase();
    if EXHAUSTED.iter().any(|w| mood.contains(w)) {
        return Some(format!("Earlier you said you felt {mood}. How are you doing now?"));
    }
    None
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The follow-through questions a check-in at `checkin_at` should ask: from events between 2 and
/// 36 hours old, oldest first, not yet asked, at most `remaining_today`.
pub fn due(
    events: &[Event],
    checkin_at: DateTime<Utc>,
    already_asked: &dyn Fn(i64) -> bool,
    remaining_today: usize,
) -> Vec<FollowThrough> {
    let mut candidates: Vec<&Event> = events
        .iter()
        .filter(|e| e.created_at <= checkin_at - MIN_AGE && e.created_at >= checkin_at - MAX_AGE)
        .filter(|e| !already_asked(e.id))
        .collect();
    candidates.sort_by_key(|e| (e.created_at, e.id));
    candidates
        .into_iter()
        .filter_map(|e| question_for(e).map(|question| FollowThrough { checkin_id: e.id, question }))
        .take(remaining_today)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckIn;
    use crate::goals::testutil::event;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn bed_early_and_exhausted_are_followed_up_once_and_at_most_three_a_day() {
        let mut events = Vec::new();
        for i in 0..5 {
            let mut e =
                event(i, "2026-05-04", CheckIn { intentions: vec!["Going to bed early".into()], ..Default::default() });
            e.created_at = at("2026-05-04T20:00:00Z") + Duration::minutes(i);
            events.push(e);
        }
        let mut tired = event(10, "2026-05-05", CheckIn { mood: Some("Exhausted".into()), ..Default::default() });
        tired.created_at = at("2026-05-05T08:00:00Z");
        events.push(tired);
        let mut plain = event(11, "2026-05-05", CheckIn { mood: Some("fine".into()), ..Default::default() });
        plain.created_at = at("2026-05-05T07:00:00Z");
        events.push(plain);

        let next_checkin = at("2026-05-05T12:00:00Z");
        let q = due(&events, next_checkin, &|_| false, 3);
        assert_eq!(q.len(), 3);
        assert_eq!(
            q[0],
            FollowThrough { checkin_id: 0, question: "You said you were going to bed early. How did that go?".into() }
        );
        let q = due(&events, next_checkin, &|id| id < 5, 3);
        assert_eq!(
            q,
            vec![FollowThrough {
                checkin_id: 10,
                question: "Earlier you said you felt exhausted. How are you doing now?".into()
            }]
        );
        // Too fresh, or too old.
        assert!(due(&events, at("2026-05-05T09:00:00Z"), &|id| id < 5, 3).is_empty());
        assert!(due(&events, at("2026-05-07T12:00:00Z"), &|_| false, 3).is_empty());
        assert!(due(&events, next_checkin, &|_| false, 0).is_empty());
    }
}
