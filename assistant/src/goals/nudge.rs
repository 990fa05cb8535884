//! Which nudges and reminders a goal needs today, and when: pure decisions on the goal's counts.
//! Timing rules shared by every send (windows, quiet days, pause, cap) are applied by the runner
//! through `gate`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use wellbeing_crds::goal::{GoalSpec, Metric, Period, Priority};
use wellbeing_crds::persona::{PersonaSpec, Weekday};
use wellbeing_crds::schedule;

use super::SendKind;
use super::gate;
use super::period::{span_of, this_period};
use super::progress::{expected_by_now, on_track, total_in};

/// A send a goal wants at a given time, before the shared timing rules and the cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub kind: SendKind,
    pub goal: String,
    pub slot: String,
    pub at: DateTime<Utc>,
    pub text: String,
    pub priority: Priority,
}

/// Everything about today the decisions need.
#[derive(Clone, Copy, Debug)]
pub struct Today<'a> {
    pub persona: &'a PersonaSpec,
    pub uid: &'a str,
    pub tz: Tz,
    pub date: NaiveDate,
    pub paused_days: &'a BTreeSet<NaiveDate>,
}

/// "workouts", "meals"...: what the metric counts, in the plural.
pub fn metric_noun(spec: &GoalSpec) -> String {
    match spec.metric {
        Metric::Exercise => "workouts".into(),
        Metric::Meal => "meals".into(),
        Metric::Water => match spec.target.threshold {
            Some(t) => format!("days with {} glasses of water", fmt_num(t)),
            None => "glasses of water".into(),
        },
        Metric::SleepHours => {
            let t = spec.target.threshold.unwrap_or(super::progress::DEFAULT_SLEEP_HOURS);
            format!("nights of {}+ hours' sleep", fmt_num(t))
        }
        Metric::GoodSleep => "good nights".into(),
        Metric::Checkin => "check-ins".into(),
        Metric::PositiveMood => "good-mood check-ins".into(),
        Metric::LowStress => "low-stress check-ins".into(),
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}

/// Whether at most one event a day can count (so a target needs that many days).
fn once_a_day(spec: &GoalSpec) -> bool {
    match spec.metric {
        Metric::Exercise | Metric::SleepHours | Metric::GoodSleep => true,
        Metric::Water => spec.target.threshold.is_some(),
        Metric::Meal | Metric::Checkin | Metric::PositiveMood | Metric::LowStress => false,
    }
}

fn is_rest_day(spec: &GoalSpec, date: NaiveDate) -> bool {
    spec.rest_days.contains(&Weekday::from_chrono(date.weekday()))
}

/// The nudge a weekly or monthly goal wants today, if any: the goal is not met, behind the
/// expected pace at the nudge's time, nothing was counted today, today is not a rest day, and the
/// target can still be reached. Daily goals get reminders instead.
pub fn nudge(name: &str, spec: &GoalSpec, counts: &BTreeMap<NaiveDate, i32>, today: &Today<'_>) -> Option<Candidate> {
    if spec.target.per == Period::Day || is_rest_day(spec, today.date) {
        return None;
    }
    let span = span_of(spec.target.per, today.date);
    let current = total_in(counts, span);
    let target = spec.target.count;
    if current >= target || counts.get(&today.date).copied().unwrap_or(0) > 0 {
        return None;
    }
    let at = gate::proactive_slot(today.persona, today.uid, &format!("nudge/{name}"), today.date)?;
    let fraction = gate::window_fraction(today.persona, today.tz, at);
    let expected = expected_by_now(spec, span, today.date, fraction, today.paused_days);
    if on_track(current, target, expected) {
        return None;
    }
    let needed = target - current;
    let days_left = span.days().filter(|d| *d >= today.date && !today.paused_days.contains(d)).count() as i32;
    if once_a_day(spec) && needed > days_left {
        // Out of reach: a nudge now would only nag.
        return None;
    }
    let weekday = today.date.format("%A");
    let noun = metric_noun(spec);
    let ask = match spec.metric {
        Metric::Exercise => "Could you fit one in today?",
        Metric::Meal => "Could you make time for a proper meal today?",
        Metric::Water => "A glass of water now would help.",
        Metric::SleepHours | Metric::GoodSleep => "An early night tonight?",
        Metric::Checkin | Metric::PositiveMood | Metric::LowStress => "Anything small you can do for it today?",
    };
    let text =
        format!("It's {weekday} and you've done {current} of {target} {noun} {}. {ask}", this_period(spec.target.per));
    Some(Candidate {
        kind: SendKind::Nudge,
        goal: name.to_string(),
        slot: today.date.to_string(),
        at,
        text,
        priority: spec.priority,
    })
}

/// A local wall-clock time on a date as an instant. A time skipped by a spring-forward change
/// moves to the first minute that exists after it; a repeated one takes its first occurrence.
pub fn local_instant(tz: Tz, date: NaiveDate, minute_of_day: u32) -> Option<DateTime<Utc>> {
    let base = date.and_hms_opt(minute_of_day / 60, minute_of_day % 60, 0)?;
    (0..180)
        .find_map(|m| tz.from_local_datetime(&(base + Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// Whether a reminder is needed at `at`: the goal is not met, nothing counted today, and for
/// weekly and monthly goals only when behind the expected pace (a workout reminder is for when
/// the week is slipping, not for every day).
pub fn reminder_needed(
    spec: &GoalSpec,
    counts: &BTreeMap<NaiveDate, i32>,
    today: &Today<'_>,
    at: DateTime<Utc>,
) -> bool {
    let span = span_of(spec.target.per, today.date);
    let current = total_in(counts, span);
    if current >= spec.target.count || counts.get(&today.date).copied().unwrap_or(0) > 0 {
        return false;
    }
    if spec.target.per == Period::Day {
        return true;
    }
    if is_rest_day(spec, today.date) {
        return false;
    }
    let fraction = gate::window_fraction(today.persona, today.tz, at);
    !on_track(current, spec.target.count, expected_by_now(spec, span, today.date, fraction, today.paused_days))
}

/// The built-in reminder text for a goal.
pub fn reminder_text(spec: &GoalSpec, counts: &BTreeMap<NaiveDate, i32>, date: NaiveDate) -> String {
    let current = total_in(counts, span_of(spec.target.per, date));
    match (spec.metric, spec.target.per) {
        (Metric::Meal, _) => "No meal logged yet today. Time for something to eat?".into(),
        (Metric::Water, _) => "No water logged yet today. How about a glass now?".into(),
        (Metric::Exercise, Period::Day) => "No workout logged yet today. Still time for a short one?".into(),
        (Metric::Exercise, per) => format!(
            "You're at {current} of {} workouts {}. Still time for a short one today?",
            spec.target.count,
            this_period(per)
        ),
        (Metric::SleepHours | Metric::GoodSleep, _) => "Time to start winding down for the night?".into(),
        _ => format!("A reminder for your goal: {}", spec.description),
    }
}

/// Reminders of one goal due to be considered today (each at its configured local time, plus a
/// snoozed one coming back), with their need already checked.
pub fn reminders(
    name: &str,
    spec: &GoalSpec,
    counts: &BTreeMap<NaiveDate, i32>,
    today: &Today<'_>,
    snoozed_until: &[DateTime<Utc>],
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let candidate = |slot: String, at: DateTime<Utc>, text: String| Candidate {
        kind: SendKind::Reminder,
        goal: name.to_string(),
        slot,
        at,
        text,
        priority: spec.priority,
    };
    for r in &spec.reminders {
        let Some(minute) = schedule::parse_hhmm(&r.at) else { continue };
        let Some(at) = local_instant(today.tz, today.date, minute) else { continue };
        if !reminder_needed(spec, counts, today, at) {
            continue;
        }
        let text =
            if r.message.trim().is_empty() { reminder_text(spec, counts, today.date) } else { r.message.clone() };
        out.push(candidate(format!("{}T{}", today.date, r.at), at, text));
    }
    for until in snoozed_until {
        if super::local_date(today.tz, *until) == today.date && reminder_needed(spec, counts, today, *until) {
            let slot = format!("snooze:{}", until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            out.push(candidate(slot, *until, reminder_text(spec, counts, today.date)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::{at, d, goal, persona};
    use wellbeing_crds::goal::GoalReminder;

    fn today<'a>(p: &'a PersonaSpec, date: &str, paused: &'a BTreeSet<NaiveDate>) -> Today<'a> {
        Today { persona: p, uid: "uid", tz: p.check_ins.time_zone.parse().unwrap(), date: d(date), paused_days: paused }
    }

    #[test]
    fn friday_with_one_of_three_workouts_asks_to_fit_one_in() {
        let p = persona("Europe/Berlin");
        let g = goal(Metric::Exercise, 3, Period::Week);
        let none = BTreeSet::new();
        let counts: BTreeMap<_, _> = [(d("2026-05-05"), 1)].into();
        let n = nudge("workouts", &g, &counts, &today(&p, "2026-05-08", &none)).expect("a nudge on Friday");
        assert_eq!(n.text, "It's Friday and you've done 1 of 3 workouts this week. Could you fit one in today?");
        assert_eq!((n.kind, n.slot.as_str()), (SendKind::Nudge, "2026-05-08"));
        assert!(gate::in_windows(&p, "Europe/Berlin".parse().unwrap(), n.at));
        // Met: never. Out of reach (Sunday with 1 of 3): never. Done today already: not today.
        let met: BTreeMap<_, _> = [(d("2026-05-04"), 1), (d("2026-05-05"), 1), (d("2026-05-06"), 1)].into();
        assert_eq!(nudge("workouts", &g, &met, &today(&p, "2026-05-08", &none)), None);
        assert_eq!(nudge("workouts", &g, &counts, &today(&p, "2026-05-10", &none)), None);
        let today_done: BTreeMap<_, _> = [(d("2026-05-08"), 1)].into();
        assert_eq!(nudge("workouts", &g, &today_done, &today(&p, "2026-05-08", &none)), None);
        // Monday with nothing is not behind yet.
        assert_eq!(nudge("workouts", &g, &BTreeMap::new(), &today(&p, "2026-05-04", &none)), None);
    }

    #[test]
    fn rest_days_and_daily_goals_get_no_nudge() {
        let p = persona("UTC");
        let none = BTreeSet::new();
        let mut g = goal(Metric::Exercise, 3, Period::Week);
        g.rest_days = vec![Weekday::Friday];
        let counts: BTreeMap<_, _> = [(d("2026-05-05"), 1)].into();
        assert_eq!(nudge("w", &g, &counts, &today(&p, "2026-05-08", &none)), None);
        let daily = goal(Metric::Water, 6, Period::Day);
        assert_eq!(nudge("w", &daily, &BTreeMap::new(), &today(&p, "2026-05-08", &none)), None);
    }

    #[test]
    fn meal_reminder_only_when_nothing_logged() {
        let p = persona("Asia/Kolkata");
        let none = BTreeSet::new();
        let mut g = goal(Metric::Meal, 3, Period::Day);
        g.reminders = vec![GoalReminder { at: "13:30".into(), message: String::new() }];
        let t = today(&p, "2026-05-08", &none);
        let r = reminders("meals", &g, &BTreeMap::new(), &t, &[]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].at, at("Asia/Kolkata", "2026-05-08 13:30"));
        assert_eq!(r[0].slot, "2026-05-08T13:30");
        assert!(r[0].text.starts_with("No meal logged yet today"));
        let ate: BTreeMap<_, _> = [(d("2026-05-08"), 1)].into();
        assert!(reminders("meals", &g, &ate, &t, &[]).is_empty());
    }

    #[test]
    fn workout_reminder_only_when_behind() {
        let p = persona("UTC");
        let none = BTreeSet::new();
        let mut g = goal(Metric::Exercise, 3, Period::Week);
        g.reminders = vec![GoalReminder { at: "17:00".into(), message: "Gym?".into() }];
        let ahead: BTreeMap<_, _> = [(d("2026-05-04"), 1), (d("2026-05-05"), 1)].into();
        assert!(reminders("w", &g, &ahead, &today(&p, "2026-05-07", &none), &[]).is_empty());
        let behind: BTreeMap<_, _> = [(d("2026-05-04"), 1)].into();
        let r = reminders("w", &g, &behind, &today(&p, "2026-05-07", &none), &[]);
        assert_eq!(r.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), vec!["Gym?"]);
    }

    #[test]
    fn reminder_in_a_dst_gap_moves_to_the_first_real_minute_and_snoozes_come_back() {
        let p = persona("America/New_York");
        let none = BTreeSet::new();
        let mut g = goal(Metric::Water, 1, Period::Day);
        g.reminders = vec![GoalReminder { at: "02:30".into(), message: String::new() }];
        let t = today(&p, "2026-03-08", &none);
        let until = at("America/New_York", "2026-03-08 15:00");
        let r = reminders("water", &g, &BTreeMap::new(), &t, &[until]);
        assert_eq!(r[0].at, at("America/New_York", "2026-03-08 03:00"));
        assert_eq!(r[1].at, until);
        assert!(r[1].slot.starts_with("snooze:2026-03-08T19:00:00Z"), "{}", r[1].slot);
    }
}
