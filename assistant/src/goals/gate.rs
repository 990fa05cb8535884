//! The scheduling rules every proactive send goes through: the persona's windows (outside them are
//! quiet hours), quiet days, pauses, the daily cap, the check-in backoff, and "due now or dropped".

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use wellbeing_crds::persona::{CheckInSchedule, PersonaSpec};
use wellbeing_crds::schedule;

/// Whether the local time at `now` is inside one of the persona's check-in windows. Outside the
/// windows are the quiet hours: nothing proactive is sent there.
pub fn in_windows(persona: &PersonaSpec, tz: Tz, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&tz);
    let minute = local.hour() * 60 + local.minute();
    persona.check_ins.windows.iter().any(|w| {
        matches!((schedule::parse_hhmm(&w.start), schedule::parse_hhmm(&w.end)), (Some(a), Some(b)) if (a..b).contains(&minute))
    })
}

/// Share of the day's window time already past at `now` (0.0 before the first window opens, 1.0
/// after the last closes). Used for the expected pace of goals: the user's day is their windows.
pub fn window_fraction(persona: &PersonaSpec, tz: Tz, now: DateTime<Utc>) -> f64 {
    let local = now.with_timezone(&tz);
    let minute = f64::from(local.hour() * 60 + local.minute());
    let (mut total, mut past) = (0.0, 0.0);
    for w in &persona.check_ins.windows {
        if let (Some(a), Some(b)) = (schedule::parse_hhmm(&w.start), schedule::parse_hhmm(&w.end))
            && a < b
        {
            let (a, b) = (f64::from(a), f64::from(b));
            total += b - a;
            past += (minute.clamp(a, b)) - a;
        }
    }
    if total > 0.0 { past / total } else { 1.0 }
}

/// One instant inside the windows of `date` for a proactive send identified by `key` (a goal's
/// nudge, a pillar question): drawn by the same function as check-in times, seeded by the persona
/// uid and the key, so it is stable across restarts and differs per goal. None on quiet days or
/// when the persona's schedule is invalid.
pub fn proactive_slot(persona: &PersonaSpec, uid: &str, key: &str, date: NaiveDate) -> Option<DateTime<Utc>> {
    let one = CheckInSchedule { per_day: 1, min_gap_minutes: 0, ..persona.check_ins.clone() };
    schedule::draw(&one, &format!("{uid}/{key}"), date).ok()?.first().map(|t| t.with_timezone(&Utc))
}

/// The check-in times planned for `date` (after the backoff, if active).
pub fn planned_checkins(persona: &PersonaSpec, uid: &str, date: NaiveDate, backoff: bool) -> Vec<DateTime<Utc>> {
    let all: Vec<DateTime<Utc>> = schedule::draw(&persona.check_ins, uid, date)
        .map(|v| v.into_iter().map(|t| t.with_timezone(&Utc)).collect())
        .unwrap_or_default();
    if backoff { keep_half(&all) } else { all }
}

/// Half of the slots (at least one), spread over the day: the first, then evenly spaced.
pub fn keep_half<T: Clone>(slots: &[T]) -> Vec<T> {
    let n = slots.len();
    if n == 0 {
        return Vec::new();
    }
    let k = (n / 2).max(1);
    (0..k).map(|j| slots[j * n / k].clone()).collect()
}

/// When a tick sees a planned send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    NotYet,
    Now,
    /// Its time passed more than the grace period ago: dropped, never sent late.
    Missed,
}

pub fn due(slot: DateTime<Utc>, now: DateTime<Utc>, grace_minutes: i64) -> Due {
    if now < slot {
        Due::NotYet
    } else if now < slot + Duration::minutes(grace_minutes) {
        Due::Now
    } else {
        Due::Missed
    }
}

/// How many capped sends (nudges, reminders, pillar questions) are still allowed today. Planned
/// check-ins are counted for the whole day up front so nudges never crowd out a later check-in.
pub fn cap_remaining(daily_cap: u32, planned_checkins: usize, sent_checkins: usize, capped_sent: usize) -> usize {
    (daily_cap as usize).saturating_sub(planned_checkins.max(sent_checkins) + capped_sent)
}

/// One sent check-in prompt, for the backoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRecord {
    pub id: i64,
    pub sent_at: DateTime<Utc>,
    pub answered: bool,
}

/// The backoff state: how many check-ins in a row went unanswered, and the first of them (which
/// names the streak, so its notice is said once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub unanswered: usize,
    pub streak_start: Option<i64>,
    pub active: bool,
}

/// Count the unanswered prompts since the user last said anything. A prompt is answered when a
/// reply was linked to it or the user wrote anything after it was sent.
pub fn backoff(prompts: &[PromptRecord], last_user_activity: Option<DateTime<Utc>>, after: usize) -> Backoff {
    let mut sorted: Vec<&PromptRecord> = prompts.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.sent_at));
    let mut unanswered = 0;
    let mut streak_start = None;
    for p in sorted {
        let answered = p.answered || last_user_activity.is_some_and(|t| t >= p.sent_at);
        if answered {
            break;
        }
        unanswered += 1;
        streak_start = Some(p.id);
    }
    Backoff { unanswered, streak_start, active: unanswered >= after }
}

/// Text of the one notice said when check-ins are halved.
pub fn backoff_notice(per_day: usize) -> String {
    let n = per_day.max(1);
    let plural = if n == 1 { "check-in" } else { "check-ins" };
    format!(
        "I haven't heard from you for a few check-ins, so I'll ask less often for now ({n} {plural} a day). \
         Reply any time and I'll go back to the usual rhythm."
    )
}

/// What to do with a check-in at its slot. Called by the embedded scheduler and the internal
/// check-in endpoint before they post a prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckinDecision {
    /// Post the prompt; `notice` (the backoff notice, said once) goes with it when set.
    Send {
        notice: Option<String>,
    },
    Skip(SkipReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    Paused,
    QuietDay,
    /// Dropped by the backoff (every other check-in until the user answers).
    BackedOff,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Paused => "paused",
            SkipReason::QuietDay => "quiet_day",
            SkipReason::BackedOff => "backed_off",
        }
    }
}

/// Decide a check-in at `slot`. `notice_already_said` is whether the backoff notice for the
/// current streak was recorded.
pub fn checkin_decision(
    persona: &PersonaSpec,
    uid: &str,
    slot: DateTime<Utc>,
    paused: bool,
    backoff: &Backoff,
    notice_already_said: bool,
) -> CheckinDecision {
    if paused {
        return CheckinDecision::Skip(SkipReason::Paused);
    }
    let tz = super::persona_tz(persona);
    let date = super::local_date(tz, slot);
    if schedule::is_quiet_day(&persona.check_ins, date) {
        return CheckinDecision::Skip(SkipReason::QuietDay);
    }
    if !backoff.active {
        return CheckinDecision::Send { notice: None };
    }
    let kept = planned_checkins(persona, uid, date, true);
    // A slot that is not one of the drawn times (a manual trigger) is kept: the user asked for it.
    let drawn = planned_checkins(persona, uid, date, false);
    let same_minute = |a: &DateTime<Utc>| (*a - slot).num_seconds().abs() < 60;
    if drawn.iter().any(same_minute) && !kept.iter().any(same_minute) {
        return CheckinDecision::Skip(SkipReason::BackedOff);
    }
    let notice = (!notice_already_said).then(|| backoff_notice(kept.len()));
    CheckinDecision::Send { notice }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::{at, d, persona};
    use wellbeing_crds::persona::{TimeWindow, Weekday};

    #[test]
    fn windows_follow_the_persona_zone_across_dst() {
        let p = persona("Europe/Berlin");
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // 08:30 UTC is 09:30 in winter (inside) but 10:30 in summer; 07:30 UTC is 08:30 in winter.
        assert!(!in_windows(&p, tz, "2026-03-28T07:30:00Z".parse().unwrap()));
        assert!(in_windows(&p, tz, "2026-03-29T07:30:00Z".parse().unwrap()), "09:30 CEST after the change");
        assert!(!in_windows(&p, tz, at("Europe/Berlin", "2026-03-29 21:00")));
        assert!(in_windows(&p, tz, at("Europe/Berlin", "2026-03-29 20:59")));
    }

    #[test]
    fn window_fraction_spans_several_windows() {
        let mut p = persona("UTC");
        p.check_ins.windows = vec![
            TimeWindow { start: "08:00".into(), end: "10:00".into() },
            TimeWindow { start: "18:00".into(), end: "20:00".into() },
        ];
        let f = |s: &str| window_fraction(&p, Tz::UTC, at("UTC", s));
        assert_eq!(f("2026-05-04 07:00"), 0.0);
        assert_eq!(f("2026-05-04 09:00"), 0.25);
        assert_eq!(f("2026-05-04 12:00"), 0.5);
        assert_eq!(f("2026-05-04 23:00"), 1.0);
    }

    #[test]
    fn proactive_slots_are_stable_inside_windows_and_absent_on_quiet_days() {
        let mut p = persona("America/New_York");
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08 is the spring-forward day in New York.
        for day in ["2026-03-07", "2026-03-08", "2026-11-01"] {
            let a = proactive_slot(&p, "uid", "nudge/workouts", d(day)).unwrap();
            assert_eq!(a, proactive_slot(&p, "uid", "nudge/workouts", d(day)).unwrap());
            assert!(in_windows(&p, tz, a), "{a}");
            assert_eq!(super::super::local_date(tz, a), d(day));
        }
        p.check_ins.quiet_days = vec![Weekday::Sunday];
        assert_eq!(proactive_slot(&p, "uid", "nudge/workouts", d("2026-03-08")), None);
    }

    #[test]
    fn due_now_or_dropped() {
        let slot: DateTime<Utc> = "2026-05-04T12:00:00Z".parse().unwrap();
        assert_eq!(due(slot, slot - Duration::seconds(1), 10), Due::NotYet);
        assert_eq!(due(slot, slot, 10), Due::Now);
        assert_eq!(due(slot, slot + Duration::minutes(9), 10), Due::Now);
        assert_eq!(due(slot, slot + Duration::minutes(10), 10), Due::Missed);
    }

    #[test]
    fn cap_counts_the_whole_days_check_ins_first() {
        assert_eq!(cap_remaining(4, 3, 1, 0), 1);
        assert_eq!(cap_remaining(4, 3, 3, 1), 0);
        assert_eq!(cap_remaining(4, 5, 0, 0), 0);
        assert_eq!(cap_remaining(4, 0, 0, 0), 4);
    }

    #[test]
    fn three_unanswered_in_a_row_halve_check_ins_until_an_answer() {
        let t = |h: u32| -> DateTime<Utc> { format!("2026-05-04T{h:02}:00:00Z").parse().unwrap() };
        let prompts = vec![
            PromptRecord { id: 1, sent_at: t(9), answered: true },
            PromptRecord { id: 2, sent_at: t(12), answered: false },
            PromptRecord { id: 3, sent_at: t(15), answered: false },
            PromptRecord { id: 4, sent_at: t(18), answered: false },
        ];
        let b = backoff(&prompts, Some(t(10)), 3);
        assert_eq!(b, Backoff { unanswered: 3, streak_start: Some(2), active: true });
        // The user wrote something after the last prompt: no backoff.
        assert!(!backoff(&prompts, Some(t(19)), 3).active);
        assert!(!backoff(&prompts[..3], None, 3).active);

        let mut p = persona("UTC");
        p.check_ins.per_day = 4;
        let drawn = planned_checkins(&p, "uid", d("2026-05-05"), false);
        let kept = planned_checkins(&p, "uid", d("2026-05-05"), true);
        assert_eq!((drawn.len(), kept.len()), (4, 2));
        let decisions: Vec<_> = drawn.iter().map(|s| checkin_decision(&p, "uid", *s, false, &b, false)).collect();
        let sent = decisions.iter().filter(|d| matches!(d, CheckinDecision::Send { .. })).count();
        assert_eq!(sent, 2);
        assert!(decisions.contains(&CheckinDecision::Skip(SkipReason::BackedOff)));
        let CheckinDecision::Send { notice: Some(n) } = checkin_decision(&p, "uid", kept[0], false, &b, false) else {
            panic!("the first kept check-in carries the notice")
        };
        assert!(n.contains("2 check-ins a day"), "{n}");
        assert_eq!(checkin_decision(&p, "uid", kept[0], false, &b, true), CheckinDecision::Send { notice: None });
        assert_eq!(checkin_decision(&p, "uid", kept[0], true, &b, true), CheckinDecision::Skip(SkipReason::Paused));
        assert_eq!(keep_half(&[1, 2, 3]), vec![1]);
        assert_eq!(keep_half(&[1]), vec![1]);
    }
}
