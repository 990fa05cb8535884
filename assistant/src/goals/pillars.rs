//! Learned pillars: a concern the user keeps mentioning becomes a question ("Should I keep track
//! of sleep for you?"), and "Yes" becomes a Goal with a sensible default target.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::{Connection, params};
use wellbeing_crds::goal::{GoalReminder, GoalSpec, GoalTarget, Metric, Period, Priority};

use super::Event;
use super::db::{parse_ts, ts};
use crate::StoreError;

/// An answer to a pillar question, as stored in `pillar_suggestions.answer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    NotNow,
    Never,
}

impl Answer {
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::NotNow => "not_now",
            Answer::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<Answer> {
        [Answer::Yes, Answer::NotNow, Answer::Never].into_iter().find(|a| a.as_str() == s)
    }
}

/// A question asked before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastQuestion {
    pub pillar: String,
    pub asked_at: DateTime<Utc>,
    pub answer: Option<Answer>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// A pillar worth asking about, with the check-ins that mention it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub pillar: String,
    pub mentions: usize,
    /// (check-in id, local date), oldest first.
    pub evidence: Vec<(i64, NaiveDate)>,
}

/// A stored pillar name in canonical form: lowercase letters, digits and dashes (spaces and
/// underscores become dashes), or None when nothing usable is left. Names reach SQL rows, Slack
/// button values, Goal names and HTML, so anything else is never passed on.
pub fn normalize(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if (c == '-' || c == '_' || c == ' ') && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    let out: String = out.chars().take(63).collect::<String>().trim_end_matches('-').to_string();
    wellbeing_crds::is_valid_pillar_name(&out).then_some(out)
}

/// "physical activity" for "physical-activity".
pub fn display_name(pillar: &str) -> String {
    pillar.replace('-', " ")
}

/// Pillars mentioned at least `min_mentions` times in check-ins about the last `window_days` local
/// days (today included), not already tracked by a goal, not refused ("Never"), not answered
/// "Not now" (or left unanswered) less than `wait_days` ago, and not accepted before.
#[allow(clippy::too_many_arguments)]
pub fn suggestions(
    events: &[Event],
    today: NaiveDate,
    now: DateTime<Utc>,
    tracked: &BTreeSet<String>,
    past: &[PastQuestion],
    min_mentions: usize,
    window_days: i64,
    wait_days: i64,
) -> Vec<Suggestion> {
    let from = today - Duration::days(window_days - 1);
    let mut mentions: BTreeMap<String, Vec<(i64, NaiveDate)>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.local_date >= from && e.local_date <= today) {
        let names: BTreeSet<String> = e.pillars.iter().filter_map(|p| normalize(p)).collect();
        for name in names {
            mentions.entry(name).or_default().push((e.id, e.local_date));
        }
    }
    let blocked = |pillar: &str| {
        past.iter().filter(|q| q.pillar == pillar).any(|q| match q.answer {
            Some(Answer::Never) | Some(Answer::Yes) => true,
            Some(Answer::NotNow) => q.answered_at.unwrap_or(q.asked_at) + Duration::days(wait_days) > now,
            None => q.asked_at + Duration::days(wait_days) > now,
        })
    };
    mentions
        .into_iter()
        .filter(|(pillar, ev)| ev.len() >= min_mentions && !tracked.contains(pillar) && !blocked(pillar))
        .map(|(pillar, mut evidence)| {
            evidence.sort_by_key(|(id, date)| (*date, *id));
            Suggestion { pillar, mentions: evidence.len(), evidence }
        })
        .collect()
}

/// The question, e.g. "You've mentioned sleep 3 times this week. Should I keep track of sleep for
/// you?".
pub fn question(s: &Suggestion, window_days: i64) -> String {
    let name = display_name(&s.pillar);
    let when = if window_days == 7 { "this week".to_string() } else { format!("in the last {window_days} days") };
    format!("You've mentioned {name} {} times {when}. Should I keep track of {name} for you?", s.mentions)
}

/// Name of the Goal created for a learned pillar.
pub fn goal_name(pillar: &str) -> String {
    format!("learned-{pillar}")
}

/// A sensible starting goal for a pillar; the user edits it like any other Goal.
pub fn default_goal(pillar: &str) -> GoalSpec {
    let reminder = |at: &str| vec![GoalReminder { at: at.into(), message: String::new() }];
    let (description, metric, count, per, threshold, reminders) = match pillar {
        "sleep" => {
            ("Sleep at least 7 hours on 5 nights a week", Metric::SleepHours, 5, Period::Week, Some(7.0), vec![])
        }
        "physical-activity" => ("Work out 3 times a week", Metric::Exercise, 3, Period::Week, None, vec![]),
        "nutrition" => ("Eat 3 meals a day", Metric::Meal, 3, Period::Day, None, reminder("13:00")),
        "hydration" => ("Drink 6 glasses of water a day", Metric::Water, 6, Period::Day, None, reminder("15:00")),
        "stress" => ("Have 3 low-stress days a week", Metric::LowStress, 3, Period::Week, None, vec![]),
        _ => ("", Metric::Checkin, 3, Period::Week, None, vec![]),
    };
    let description = if description.is_empty() {
        format!("Keep track of {} (3 check-ins a week)", display_name(pillar))
    } else {
        description.into()
    };
    GoalSpec {
        description,
        pillar: pillar.to_string(),
        metric,
        target: GoalTarget { count, per, threshold },
        priority: Priority::Medium,
        reminders,
        rest_days: vec![],
        keywords: vec![],
    }
}

/// Questions asked before, for every pillar of a user.
pub fn past_questions(conn: &Connection, user: &str) -> Result<Vec<PastQuestion>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT pillar, asked_at, answer, answered_at FROM pillar_suggestions WHERE user_id = ?1")?;
    let rows = stmt
        .query_map(params![user], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .filter_map(|r| match r {
            Ok((pillar, asked, answer, answered)) => parse_ts(&asked).map(|asked_at| {
                Ok(PastQuestion {
                    pillar,
                    asked_at,
                    answer: answer.as_deref().and_then(Answer::parse),
                    answered_at: answered.as_deref().and_then(parse_ts),
                })
            }),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Store a question and its evidence; returns its id (the value of its buttons).
pub fn record_question(conn: &Connection, user: &str, s: &Suggestion, now: DateTime<Utc>) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO pillar_suggestions (user_id, pillar, mentions, asked_at) VALUES (?1, ?2, ?3, ?4)",
        params![user, s.pillar, s.mentions as i64, ts(now)],
    )?;
    let id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO pillar_evidence (suggestion_id, checkin_id, local_date) VALUES (?1, ?2, ?3)",
    )?;
    for (checkin, date) in &s.evidence {
        stmt.execute(params![id, checkin, date.to_string()])?;
    }
    Ok(id)
}

/// Record an answer. Returns the pillar, or None when the question is not this user's or was
/// already answered (a double click, a forged payload).
pub fn record_answer(
    conn: &Connection,
    user: &str,
    id: i64,
    answer: Answer,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let pillar: Option<String> = rusqlite::OptionalExtension::optional(conn.query_row(
        "UPDATE pillar_suggestions SET answer = ?3, answered_at = ?4
         WHERE id = ?1 AND user_id = ?2 AND answer IS NULL RETURNING pillar",
        params![id, user, answer.as_str(), ts(now)],
        |r| r.get(0),
    ))?;
    Ok(pillar)
}

pub fn set_goal_name(conn: &Connection, id: i64, goal: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE pillar_suggestions SET goal_name = ?2 WHERE id = ?1", params![id, goal])?;
    Ok(())
}

/// A learned pillar with its evidence, for the dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct LearnedPillar {
    pub pillar: String,
    pub mentions: i64,
    pub asked_at: DateTime<Utc>,
    pub answer: Option<Answer>,
    pub goal_name: Option<String>,
    /// (check-in id, local date, the user's words when stored).
    pub evidence: Vec<(i64, NaiveDate, Option<String>)>,
}

/// Every pillar question of a user, newest first, with its evidence.
pub fn learned(conn: &Connection, user: &str) -> Result<Vec<LearnedPillar>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, pillar, mentions, asked_at, answer, goal_name FROM pillar_suggestions
         WHERE user_id = ?1 ORDER BY asked_at DESC, id DESC",
    )?;
    let heads = stmt
        .query_map(params![user], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut ev = conn.prepare_cached(
        "SELECT e.checkin_id, e.local_date,
                (SELECT i.text FROM interactions i WHERE i.checkin_id = e.checkin_id AND i.direction = 'in' ORDER BY i.id LIMIT 1)
         FROM pillar_evidence e WHERE e.suggestion_id = ?1 ORDER BY e.local_date, e.checkin_id",
    )?;
    let mut out = Vec::with_capacity(heads.len());
    for (id, pillar, mentions, asked, answer, goal_name) in heads {
        let evidence = ev
            .query_map(params![id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })?
            .filter_map(|r| match r {
                Ok((cid, date, text)) => date.parse().ok().map(|d| Ok((cid, d, text))),
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        out.push(LearnedPillar {
            pillar,
            mentions,
            asked_at: parse_ts(&asked).unwrap_or_default(),
            answer: answer.as_deref().and_then(Answer::parse),
            goal_name,
            evidence,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckIn;
    use crate::goals::testutil::{d, event};

    fn mention(id: i64, date: &str, pillars: &[&str]) -> Event {
        let mut e = event(id, date, CheckIn::default());
        e.pillars = pillars.iter().map(|s| s.to_string()).collect();
        e
    }

    fn now() -> DateTime<Utc> {
        "2026-05-10T18:00:00Z".parse().unwrap()
    }

    #[test]
    fn three_mentions_in_seven_days_ask_once() {
        let events = [
            mention(1, "2026-05-03", &["sleep"]), // 8 days ago: outside the window
            mention(2, "2026-05-04", &["sleep", "sleep"]),
            mention(3, "2026-05-07", &["sleep", "stress"]),
            mention(4, "2026-05-10", &["Sleep"]),
        ];
        let s = suggestions(&events, d("2026-05-10"), now(), &BTreeSet::new(), &[], 3, 7, 14);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].evidence, vec![(2, d("2026-05-04")), (3, d("2026-05-07")), (4, d("2026-05-10"))]);
        assert_eq!(
            question(&s[0], 7),
            "You've mentioned sleep 3 times this week. Should I keep track of sleep for you?"
        );
        // Already tracked by a goal: no question.
        let tracked: BTreeSet<String> = ["sleep".to_string()].into();
        assert!(suggestions(&events, d("2026-05-10"), now(), &tracked, &[], 3, 7, 14).is_empty());
    }

    #[test]
    fn not_now_waits_fourteen_days_and_never_is_final() {
        let events = [
            mention(1, "2026-05-08", &["sleep"]),
            mention(2, "2026-05-09", &["sleep"]),
            mention(3, "2026-05-10", &["sleep"]),
        ];
        let asked = |answer, days_ago: i64| PastQuestion {
            pillar: "sleep".into(),
            asked_at: now() - Duration::days(days_ago),
            answer,
            answered_at: Some(now() - Duration::days(days_ago)),
        };
        let run = |past: &[PastQuestion]| {
            suggestions(&events, d("2026-05-10"), now(), &BTreeSet::new(), past, 3, 7, 14).len()
        };
        assert_eq!(run(&[asked(Some(Answer::NotNow), 13)]), 0);
        assert_eq!(run(&[asked(Some(Answer::NotNow), 15)]), 1);
        assert_eq!(run(&[asked(Some(Answer::Never), 400)]), 0);
        assert_eq!(run(&[asked(None, 3)]), 0, "an unanswered question is not repeated right away");
        assert_eq!(run(&[asked(Some(Answer::Yes), 30)]), 0);
    }

    #[test]
    fn odd_pillar_names_are_normalized_or_dropped() {
        assert_eq!(normalize("Work Balance").as_deref(), Some("work-balance"));
        assert_eq!(normalize("  deep_focus  ").as_deref(), Some("deep-focus"));
        assert_eq!(normalize("Sleep😴").as_deref(), Some("sleep"));
        assert_eq!(normalize("<script>alert(1)</script>").as_deref(), Some("scriptalert1script"));
        assert_eq!(normalize("😴😴"), None);
        assert_eq!(normalize("---"), None);
        assert_eq!(normalize(&"a".repeat(300)).map(|s| s.len()), Some(63));
        let events = [
            mention(1, "2026-05-08", &["😴"]),
            mention(2, "2026-05-09", &["😴"]),
            mention(3, "2026-05-10", &["😴", "Ω"]),
        ];
        assert!(suggestions(&events, d("2026-05-10"), now(), &BTreeSet::new(), &[], 3, 7, 14).is_empty());
    }

    #[test]
    fn default_goals_are_valid_goals() {
        for pillar in wellbeing_crds::BUILTIN_PILLARS.iter().copied().chain(["gardening"]) {
            let spec = default_goal(pillar);
            let yaml = crate::goals::manifest::goal_yaml(&goal_name(pillar), None, &spec);
            let parsed = wellbeing_crds::manifest::parse_documents(&yaml);
            assert!(matches!(parsed.as_slice(), [Ok(_)]), "{pillar}: {parsed:?}\n{yaml}");
        }
        assert_eq!(default_goal("physical-activity").target.count, 3);
        assert_eq!(default_goal("sleep").target.threshold, Some(7.0));
    }

    #[test]
    fn answers_are_recorded_once_and_only_by_their_user() {
        let store = crate::Store::in_memory().unwrap();
        let conn = store.conn();
        let s = Suggestion { pillar: "sleep".into(), mentions: 3, evidence: vec![] };
        let id = record_question(&conn, "u", &s, now()).unwrap();
        assert_eq!(record_answer(&conn, "intruder", id, Answer::Yes, now()).unwrap(), None);
        assert_eq!(record_answer(&conn, "u", id, Answer::NotNow, now()).unwrap().as_deref(), Some("sleep"));
        assert_eq!(record_answer(&conn, "u", id, Answer::Yes, now()).unwrap(), None);
        let past = past_questions(&conn, "u").unwrap();
        assert_eq!(past[0].answer, Some(Answer::NotNow));
        assert_eq!(learned(&conn, "u").unwrap()[0].pillar, "sleep");
    }
}
