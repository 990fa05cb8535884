//! Goal progress per period, streaks and the on-track judgement: pure functions of the events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use wellbeing_crds::goal::{GoalProgress, GoalSpec, Metric, Period};
use wellbeing_crds::persona::Weekday;

use super::period::{Span, previous, span_of};
use super::{Event, ManualLog};
use crate::checkin::{Exercise, Level, MealStatus, SleepQuality, Valence};

/// Hours of sleep that make a night count for a `sleep_hours` goal without a threshold: the lower
/// end of the 7-9 hours adults are generally advised to sleep.
pub const DEFAULT_SLEEP_HOURS: f64 = 7.0;

/// How far back a streak is followed. Ten years of daily periods is far more than any stored
/// history and keeps the walk bounded whatever the data.
const STREAK_HORIZON_DAYS: i64 = 3660;

/// What the goal logic needs besides the goal itself.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub events: &'a [Event],
    pub manual: &'a [ManualLog],
    /// Local dates on which the user had paused the assistant.
    pub paused_days: &'a BTreeSet<NaiveDate>,
}

/// How much one day contributes to a goal: events counted (workouts, meals, check-ins...) or, for
/// measured metrics, 1 when the day reaches the threshold.
pub fn day_counts(goal_name: &str, spec: &GoalSpec, inputs: &Inputs<'_>) -> BTreeMap<NaiveDate, i32> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&Event>> = BTreeMap::new();
    for e in inputs.events {
        by_day.entry(e.local_date).or_default().push(e);
    }
    let mut manual: BTreeMap<NaiveDate, i32> = BTreeMap::new();
    for m in inputs.manual.iter().filter(|m| m.goal == goal_name) {
        *manual.entry(m.local_date).or_default() += 1;
    }
    let days: BTreeSet<NaiveDate> = by_day.keys().chain(manual.keys()).copied().collect();
    days.into_iter()
        .map(|day| {
            let events = by_day.get(&day).map(Vec::as_slice).unwrap_or(&[]);
            let done = manual.get(&day).copied().unwrap_or(0);
            (day, count_day(spec, events, done))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn count_day(spec: &GoalSpec, events: &[&Event], manual: i32) -> i32 {
    let count = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count() as i32;
    let reached = |yes: bool| i32::from(yes || manual > 0);
    match spec.metric {
        Metric::Exercise => count(&|e| e.checkin.exercise == Exercise::Done) + manual,
        Metric::Meal => {
            // A meal named twice in one event (message and follow-up) is one meal.
            let meals: i32 = events
                .iter()
                .map(|e| {
                    let mut kinds: Vec<_> =
                        e.checkin.meals.iter().filter(|m| m.status == MealStatus::Eaten).map(|m| m.meal).collect();
                    kinds.sort_by_key(|k| *k as u8);
                    kinds.dedup();
                    kinds.len() as i32
                })
                .sum();
            meals + manual
        }
        Metric::Water => {
            let glasses: f64 =
                events.iter().filter_map(|e| e.checkin.water).filter(|w| w.is_finite() && *w > 0.0).sum();
            match spec.target.threshold {
                Some(t) => reached(glasses >= t),
                None => glasses.floor() as i32 + manual,
            }
        }
        Metric::SleepHours => {
            let threshold = spec.target.threshold.unwrap_or(DEFAULT_SLEEP_HOURS);
            reached(events.iter().filter_map(|e| e.checkin.sleep_hours).any(|h| h.is_finite() && h >= threshold))
        }
        Metric::GoodSleep => reached(events.iter().any(|e| e.checkin.sleep_quality == SleepQuality::Good)),
        Metric::Checkin => events.len() as i32 + manual,
        Metric::PositiveMood => count(&|e| e.checkin.valence == Valence::Positive) + manual,
        Metric::LowStress => count(&|e| e.checkin.stress == Level::Low) + manual,
    }
}

/// Sum of day counts inside a span.
pub fn total_in(counts: &BTreeMap<NaiveDate, i32>, span: Span) -> i32 {
    counts.range(span.start..=span.end).map(|(_, n)| *n).sum()
}

fn is_rest_day(spec: &GoalSpec, date: NaiveDate) -> bool {
    spec.rest_days.contains(&Weekday::from_chrono(date.weekday()))
}

/// Days of a span on which the user can be expected to work on the goal: not a rest day, not
/// paused. When every day is excused, all days count (a week of rest days still has a target).
fn active_days(spec: &GoalSpec, span: Span, paused: &BTreeSet<NaiveDate>) -> Vec<NaiveDate> {
    let active: Vec<NaiveDate> = span.days().filter(|d| !is_rest_day(spec, *d) && !paused.contains(d)).collect();
    if active.is_empty() { span.days().collect() } else { active }
}

/// The count expected by now at an even pace: the target spread over the period's active days,
/// with today counting by the share of today's check-in windows already past (`today_fraction`,
/// 0.0 before the first window, 1.0 after the last).
pub fn expected_by_now(
    spec: &GoalSpec,
    span: Span,
    today: NaiveDate,
    today_fraction: f64,
    paused: &BTreeSet<NaiveDate>,
) -> f64 {
    let active = active_days(spec, span, paused);
    let elapsed: f64 = active
        .iter()
        .map(|d| match d.cmp(&today) {
            std::cmp::Ordering::Less => 1.0,
            std::cmp::Ordering::Equal => today_fraction.clamp(0.0, 1.0),
            std::cmp::Ordering::Greater => 0.0,
        })
        .sum();
    f64::from(spec.target.count) * elapsed / active.len() as f64
}

/// On track: the goal is met, or the count is at least the expected pace rounded to the nearest
/// whole event (so Friday noon with 1 of 3 workouts, where 1.8 are expected, is behind).
pub fn on_track(current: i32, target: i32, expected: f64) -> bool {
    current >= target || f64::from(current) >= expected.round()
}

/// Consecutive periods met, counting back from the current one. The current period adds one
/// when already met and never breaks the streak while it is still running. A period that was not
/// met is skipped, not counted, when it is excused: a rest day (daily goals) or a period with a
/// paused day in it.
pub fn streak(
    spec: &GoalSpec,
    counts: &BTreeMap<NaiveDate, i32>,
    today: NaiveDate,
    paused: &BTreeSet<NaiveDate>,
) -> i32 {
    let per = spec.target.per;
    let target = spec.target.count;
    let first_day = counts.keys().next().copied().into_iter().chain(paused.iter().next().copied()).min();
    let Some(first_day) = first_day else { return 0 };
    let horizon = today - chrono::Duration::days(STREAK_HORIZON_DAYS);
    let stop = first_day.max(horizon);

    let mut span = span_of(per, today);
    let mut streak = 0;
    let mut current = true;
    while span.end >= stop {
        let met = total_in(counts, span) >= target;
        let excused =
            || (per == Period::Day && is_rest_day(spec, span.start)) || span.days().any(|d| paused.contains(&d));
        if met {
            streak += 1;
        } else if !current && !excused() {
            break;
        }
        current = false;
        span = previous(per, span);
    }
    streak
}

/// Progress of one goal in the period containing `today`, as written to `Goal.status.progress`.
pub fn progress(
    goal_name: &str,
    spec: &GoalSpec,
    inputs: &Inputs<'_>,
    today: NaiveDate,
    today_fraction: f64,
) -> GoalProgress {
    let counts = day_counts(goal_name, spec, inputs);
    progress_from_counts(spec, &counts, inputs.paused_days, today, today_fraction)
}

pub fn progress_from_counts(
    spec: &GoalSpec,
    counts: &BTreeMap<NaiveDate, i32>,
    paused: &BTreeSet<NaiveDate>,
    today: NaiveDate,
    today_fraction: f64,
) -> GoalProgress {
    let span = span_of(spec.target.per, today);
    let current = total_in(counts, span);
    let target = spec.target.count;
    let expected = expected_by_now(spec, span, today, today_fraction, paused);
    GoalProgress {
        current,
        target,
        summary: format!("{current}/{target}"),
        period_start: span.start.to_string(),
        period_end: span.end.to_string(),
        on_track: on_track(current, target, expected),
        streak: streak(spec, counts, today, paused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckIn;
    use crate::checkin::{Meal, MealKind};
    use crate::goals::testutil::{d, event, goal};

    fn workout() -> CheckIn {
        CheckIn { exercise: Exercise::Done, ..Default::default() }
    }

    fn inputs<'a>(events: &'a [Event], manual: &'a [ManualLog], paused: &'a BTreeSet<NaiveDate>) -> Inputs<'a> {
        Inputs { events, manual, paused_days: paused }
    }

    #[test]
    fn workouts_count_per_iso_week() {
        let g = goal(Metric::Exercise, 3, Period::Week);
        let events = [
            event(1, "2026-05-03", workout()), // Sunday: previous week
            event(2, "2026-05-04", workout()), // Monday
            event(3, "2026-05-06", CheckIn { exercise: Exercise::Planned, ..Default::default() }),
            event(4, "2026-05-06", CheckIn { exercise: Exercise::None, ..Default::default() }),
        ];
        let none = BTreeSet::new();
        let p = progress("g", &g, &inputs(&events, &[], &none), d("2026-05-08"), 0.5);
        assert_eq!((p.current, p.target, p.summary.as_str()), (1, 3, "1/3"));
        assert_eq!((p.period_start.as_str(), p.period_end.as_str()), ("2026-05-04", "2026-05-10"));
        // Friday noon: (4 + 0.5) / 7 * 3 = 1.93 expected, rounds to 2: behind.
        assert!(!p.on_track);
        let monday = progress("g", &g, &inputs(&events, &[], &none), d("2026-05-04"), 0.5);
        assert!(monday.on_track);
    }

    #[test]
    fn a_backfilled_run_counts_for_its_day() {
        // Written on Monday about Sunday: counts for the week that ended on Sunday.
        let g = goal(Metric::Exercise, 1, Period::Week);
        let mut e = event(1, "2026-05-10", workout());
        e.created_at = "2026-05-11T08:00:00Z".parse().unwrap();
        let none = BTreeSet::new();
        let counts = day_counts("g", &g, &inputs(std::slice::from_ref(&e), &[], &none));
        assert_eq!(total_in(&counts, span_of(Period::Week, d("2026-05-10"))), 1);
        assert_eq!(total_in(&counts, span_of(Period::Week, d("2026-05-11"))), 0);
    }

    #[test]
    fn measured_metrics_use_the_threshold() {
        let mut g = goal(Metric::SleepHours, 5, Period::Week);
        let sleep = |h: f64| CheckIn { sleep_hours: Some(h), ..Default::default() };
        let events = [
            event(1, "2026-05-04", sleep(6.5)),
            event(2, "2026-05-05", sleep(7.0)),
            event(3, "2026-05-05", sleep(8.0)),
        ];
        let none = BTreeSet::new();
        assert_eq!(progress("g", &g, &inputs(&events, &[], &none), d("2026-05-06"), 0.0).current, 1);
        g.target.threshold = Some(6.0);
        assert_eq!(progress("g", &g, &inputs(&events, &[], &none), d("2026-05-06"), 0.0).current, 2);

        let mut water = goal(Metric::Water, 6, Period::Day);
        let glasses = |n: f64| CheckIn { water: Some(n), ..Default::default() };
        let w = [
            event(1, "2026-05-04", glasses(2.0)),
            event(2, "2026-05-04", glasses(3.5)),
            event(3, "2026-05-04", glasses(f64::NAN)),
        ];
        assert_eq!(progress("g", &water, &inputs(&w, &[], &none), d("2026-05-04"), 1.0).current, 5);
        water.target = wellbeing_crds::goal::GoalTarget { count: 1, per: Period::Day, threshold: Some(5.0) };
        assert_eq!(progress("g", &water, &inputs(&w, &[], &none), d("2026-05-04"), 1.0).current, 1);
    }

    #[test]
    fn meals_count_once_per_kind_per_event_and_done_buttons_count() {
        let g = goal(Metric::Meal, 3, Period::Day);
        let eaten = |k| Meal { meal: k, status: MealStatus::Eaten };
        let c = CheckIn {
            meals: vec![
                eaten(MealKind::Breakfast),
                eaten(MealKind::Breakfast),
                Meal { meal: MealKind::Lunch, status: MealStatus::Skipped },
            ],
            ..Default::default()
        };
        let events = [event(1, "2026-05-04", c)];
        let manual = [
            ManualLog { goal: "g".into(), local_date: d("2026-05-04") },
            ManualLog { goal: "other".into(), local_date: d("2026-05-04") },
        ];
        let none = BTreeSet::new();
        assert_eq!(progress("g", &g, &inputs(&events, &manual, &none), d("2026-05-04"), 0.5).current, 2);
    }

    #[test]
    fn streaks_survive_rest_days_and_pauses() {
        let mut g = goal(Metric::Checkin, 1, Period::Day);
        g.rest_days = vec![Weekday::Sunday];
        let c = CheckIn::default;
        // Mon 4 .. Sat 9 every day except Sunday 3 (a rest day); nothing on Thu 7 (paused).
        let events: Vec<Event> =
            ["2026-05-01", "2026-05-02", "2026-05-04", "2026-05-05", "2026-05-06", "2026-05-08", "2026-05-09"]
                .iter()
                .enumerate()
                .map(|(i, day)| event(i as i64, day, c()))
                .collect();
        let paused: BTreeSet<NaiveDate> = [d("2026-05-07")].into();
        let counts = day_counts("g", &g, &inputs(&events, &[], &paused));
        // Today Sunday 10 (a rest day, nothing yet): 9, 8, (7 paused), 6, 5, 4, (3 rest), 2, 1.
        assert_eq!(streak(&g, &counts, d("2026-05-10"), &paused), 7);
        // Without the pause, Thursday breaks it.
        assert_eq!(streak(&g, &counts, d("2026-05-10"), &BTreeSet::new()), 2);
        // A missed Saturday ends it even on a running Sunday.
        let counts_without_sat: BTreeMap<_, _> =
            counts.iter().filter(|(k, _)| **k != d("2026-05-09")).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(streak(&g, &counts_without_sat, d("2026-05-10"), &paused), 0);
    }

    #[test]
    fn weekly_streak_counts_met_weeks_and_running_week() {
        let g = goal(Metric::Exercise, 2, Period::Week);
        let w = workout;
        let events = [
            event(1, "2026-04-20", w()),
            event(2, "2026-04-22", w()),
            event(3, "2026-04-27", w()),
            event(4, "2026-04-29", w()),
            event(5, "2026-05-04", w()),
        ];
        let none = BTreeSet::new();
        let p = progress("g", &g, &inputs(&events, &[], &none), d("2026-05-05"), 0.5);
        assert_eq!((p.current, p.streak), (1, 2));
    }

    #[test]
    fn rest_days_do_not_lower_the_pace() {
        let mut g = goal(Metric::Exercise, 3, Period::Week);
        g.rest_days = vec![Weekday::Saturday, Weekday::Sunday];
        let none = BTreeSet::new();
        let span = span_of(Period::Week, d("2026-05-08"));
        // Friday evening: all five active days are done, so the whole target is expected.
        assert!((expected_by_now(&g, span, d("2026-05-08"), 1.0, &none) - 3.0).abs() < 1e-9);
        assert!(on_track(3, 3, 3.0));
        assert!(!on_track(2, 3, 3.0));
    }
}
