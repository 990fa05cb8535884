//! Goals, reminders, nudges, pauses, follow-through questions and learned pillars.
//!
//! Everything that decides is a pure function of stored data and a clock (`progress`, `nudge`,
//! `gate`, `pillars`, `pause`, `followthrough`); `db` reads and records, `runner` and `actions`
//! are the thin shells the scheduler and Slack's interactivity call.

pub mod actions;
pub mod db;
pub mod followthrough;
pub mod gate;
pub mod manifest;
pub mod nudge;
pub mod pause;
pub mod period;
pub mod pillars;
pub mod progress;
pub mod runner;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use wellbeing_crds::persona::PersonaSpec;

use crate::CheckIn;

/// One check-in event as the goal logic sees it: a stored check-in, with its follow-up answer
/// already merged in (a check-in and its follow-up are one event), dated by the day it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Id of the first `checkins` row of the event.
    pub id: i64,
    /// The day the check-in is about (`local_date`, so "yesterday I went for a run" counts for
    /// yesterday).
    pub local_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub checkin: CheckIn,
    /// Pillar names as stored. Usually the extractor's built-in names, but read leniently: a row
    /// written by another version (or edited by hand) may carry any text.
    pub pillars: Vec<String>,
}

/// A "Done" pressed on a reminder: one counted event for one goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualLog {
    pub goal: String,
    pub local_date: NaiveDate,
}

/// Kinds of proactive message, as stored in `scheduled_sends.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    Nudge,
    Reminder,
    FollowThrough,
    Pillar,
    BackoffNotice,
    Insight,
}

impl SendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Nudge => "nudge",
            SendKind::Reminder => "reminder",
            SendKind::FollowThrough => "followthrough",
            SendKind::Pillar => "pillar",
            SendKind::BackoffNotice => "backoff_notice",
            SendKind::Insight => "insight",
        }
    }

    pub fn parse(s: &str) -> Option<SendKind> {
        [
            SendKind::Nudge,
            SendKind::Reminder,
            SendKind::FollowThrough,
            SendKind::Pillar,
            SendKind::BackoffNotice,
            SendKind::Insight,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether a send of this kind counts against the daily cap. Follow-through questions ride
    /// along with a check-in (they have their own limit of 3 a day), the backoff notice is said
    /// once, and the weekly insight is once a week: none of them is notification fatigue.
    pub fn counts_against_cap(self) -> bool {
        matches!(self, SendKind::Nudge | SendKind::Reminder | SendKind::Pillar)
    }
}

/// A message the assistant wants to send on its own initiative, with the actions the person can
/// answer with (each channel renders them its own way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub user_id: String,
    pub kind: SendKind,
    /// The goal or pillar it is about ('' when none).
    pub goal: String,
    /// Which occasion (unique with user, kind and goal).
    pub slot: String,
    pub text: String,
    /// Buttons (none for a plain message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<crate::message::Action>,
}

/// Tunables, with the defaults the issue asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct GoalsConfig {
    /// Nudges, reminders and pillar questions plus planned check-ins, per local day.
    pub daily_cap: u32,
    /// How late a tick may still deliver a due send. Later than this it is dropped, not sent late.
    pub grace_minutes: i64,
    pub snooze_minutes: i64,
    /// Follow-through questions per local day.
    pub follow_through_per_day: u32,
    /// Mentions of a pillar within `pillar_window_days` that make it worth asking about.
    pub pillar_mentions: usize,
    pub pillar_window_days: i64,
    /// How long "Not now" keeps a pillar question away.
    pub not_now_days: i64,
    /// Unanswered check-ins in a row after which check-ins are halved.
    pub backoff_after: usize,
}

impl Default for GoalsConfig {
    fn default() -> Self {
        GoalsConfig {
            daily_cap: 4,
            // The embedded scheduler ticks every minute; ten minutes covers a slow tick or a
            // short restart without turning a morning reminder into an evening one.
            grace_minutes: 10,
            snooze_minutes: 30,
            follow_through_per_day: 3,
            pillar_mentions: 3,
            pillar_window_days: 7,
            not_now_days: 14,
            backoff_after: 3,
        }
    }
}

/// The persona's time zone; an unknown name (already reported on the Persona's conditions by the
/// operator) falls back to UTC so goals keep working.
pub fn persona_tz(persona: &PersonaSpec) -> Tz {
    wellbeing_crds::schedule::time_zone(&persona.check_ins.time_zone).unwrap_or(Tz::UTC)
}

/// Local date of an instant in a zone.
pub fn local_date(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

#[cfg(test)]
pub(crate) mod testutil {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use chrono_tz::Tz;
    use wellbeing_crds::goal::{GoalReminder, GoalSpec, GoalTarget, Metric, Period, Priority};
    use wellbeing_crds::persona::{Channel, CheckInSchedule, PersonaSpec, TimeWindow};

    use super::Event;
    use crate::CheckIn;

    pub fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// A local wall-clock time in a zone, as UTC.
    pub fn at(tz: &str, local: &str) -> DateTime<Utc> {
        let tz: Tz = tz.parse().unwrap();
        let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
    }

    pub fn persona(tz: &str) -> PersonaSpec {
        PersonaSpec {
            display_name: "Sam".into(),
            system_prompt: String::new(),
            tone: "warm".into(),
            active: true,
            check_ins: CheckInSchedule {
                time_zone: tz.into(),
                windows: vec![TimeWindow { start: "09:00".into(), end: "21:00".into() }],
                per_day: 2,
                min_gap_minutes: 60,
                quiet_days: vec![],
                channel: Channel::Slack,
                prompts: vec![],
            },
            required_fields: vec![],
            models: Default::default(),
            crisis_resources: vec![],
        }
    }

    pub fn goal(metric: Metric, count: i32, per: Period) -> GoalSpec {
        GoalSpec {
            description: "test goal".into(),
            pillar: "physical-activity".into(),
            metric,
            target: GoalTarget { count, per, threshold: None },
            priority: Priority::Medium,
            reminders: Vec::<GoalReminder>::new(),
            rest_days: vec![],
            keywords: vec![],
        }
    }

    pub fn event(id: i64, date: &str, checkin: CheckIn) -> Event {
        let local_date = d(date);
        let created_at = Utc.from_utc_datetime(&local_date.and_hms_opt(12, 0, 0).unwrap());
        let pillars = checkin.pillars.iter().map(|p| p.as_str().to_string()).collect();
        Event { id, local_date, created_at, checkin, pillars }
    }
}
