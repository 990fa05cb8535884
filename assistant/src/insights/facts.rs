//! The weekly insight's numbers: counts and trends, goal progress, correlations between factors
//! and mood, and things to try. A pure function of the events; every number any text shows is
//! computed here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use wellbeing_crds::Goal;

use crate::checkin::{Exercise, Level, MealStatus, SleepQuality, Valence};
use crate::goals::period::{Span, span_of};
use crate::goals::progress::{self, Inputs};
use crate::goals::{Event, ManualLog};

/// Nights below this many hours count as poor sleep when the quality is not stated. Six hours is
/// the usual line for short sleep in sleep research.
pub const SHORT_SLEEP_HOURS: f64 = 6.0;
/// Days a correlation must rest on, with the factor and without it (the rule).
pub const MIN_DAYS_EACH_SIDE: usize = 3;
/// Difference in mean mood (valence -1..1) that makes a pattern worth mentioning: a third of the
/// way from neutral to good. Smaller gaps are noise at a few days of data.
pub const MIN_MOOD_GAP: f64 = 0.3;
/// Days the correlations look back: one week rarely has 3 days on each side.
pub const CORRELATION_WINDOW_DAYS: i64 = 28;

/// One day of check-ins, reduced to what the insight needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Day {
    pub checkins: usize,
    /// Mean valence of the day's check-ins that state one (-1 negative, 0 neutral, 1 positive).
    pub mood: Option<f64>,
    pub sleep_hours: Option<f64>,
    /// Some(true) slept badly, Some(false) slept fine, None not said.
    pub poor_sleep: Option<bool>,
    pub skipped_meals: usize,
    pub eaten_meals: usize,
    pub high_stress: Option<bool>,
    pub exercised: Option<bool>,
    pub low_energy: Option<bool>,
    /// Energy 1 low, 2 medium, 3 high (mean), for the dashboard chart.
    pub energy: Option<f64>,
}

impl Day {
    pub fn skipped_meal(&self) -> Option<bool> {
        if self.skipped_meals > 0 {
            Some(true)
        } else if self.eaten_meals > 0 {
            Some(false)
        } else {
            None
        }
    }

    pub fn good_mood(&self) -> Option<bool> {
        self.mood.map(|m| m > 0.0)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Aggregate events per local date.
pub fn days(events: &[Event]) -> BTreeMap<NaiveDate, Day> {
    let mut grouped: BTreeMap<NaiveDate, Vec<&Event>> = BTreeMap::new();
    for e in events {
        grouped.entry(e.local_date).or_default().push(e);
    }
    grouped
        .into_iter()
        .map(|(date, evs)| {
            let c = |e: &&Event| e.checkin.clone();
            let all: Vec<_> = evs.iter().map(c).collect();
            let mood = mean(all.iter().filter_map(|c| match c.valence {
                Valence::Positive => Some(1.0),
                Valence::Neutral => Some(0.0),
                Valence::Negative => Some(-1.0),
                Valence::Unknown => None,
            }));
            let sleep_hours = all
                .iter()
                .filter_map(|c| c.sleep_hours)
                .filter(|h| h.is_finite() && (0.0..=24.0).contains(h))
                .reduce(f64::max);
            let poor = all.iter().any(|c| c.sleep_quality == SleepQuality::Poor)
                || sleep_hours.is_some_and(|h| h < SHORT_SLEEP_HOURS);
            let fine = all.iter().any(|c| matches!(c.sleep_quality, SleepQuality::Good | SleepQuality::Average))
                || sleep_hours.is_some_and(|h| h >= SHORT_SLEEP_HOURS);
            let tri = |yes: bool, no: bool| {
                if yes {
                    Some(true)
                } else if no {
                    Some(false)
                } else {
                    None
                }
            };
            let energy = mean(all.iter().filter_map(|c| match c.energy {
                Level::Low => Some(1.0),
                Level::Medium => Some(2.0),
                Level::High => Some(3.0),
                Level::Unknown => None,
            }));
            let day = Day {
                checkins: all.len(),
                mood,
                sleep_hours,
                poor_sleep: tri(poor, fine),
                skipped_meals: all.iter().flat_map(|c| &c.meals).filter(|m| m.status == MealStatus::Skipped).count(),
                eaten_meals: all.iter().flat_map(|c| &c.meals).filter(|m| m.status == MealStatus::Eaten).count(),
                high_stress: tri(
                    all.iter().any(|c| c.stress == Level::High),
                    all.iter().any(|c| matches!(c.stress, Level::Low | Level::Medium)),
                ),
                exercised: tri(
                    all.iter().any(|c| c.exercise == Exercise::Done),
                    all.iter().any(|c| c.exercise == Exercise::None),
                ),
                low_energy: tri(
                    all.iter().any(|c| c.energy == Level::Low),
                    all.iter().any(|c| matches!(c.energy, Level::Medium | Level::High)),
                ),
                energy,
            };
            (date, day)
        })
        .collect()
}

/// A factor that may go with better or worse days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    PoorSleep,
    SkippedMeal,
    HighStress,
    Exercise,
    LowEnergy,
}

impl Factor {
    pub const ALL: [Factor; 5] =
        [Factor::PoorSleep, Factor::SkippedMeal, Factor::HighStress, Factor::Exercise, Factor::LowEnergy];

    pub fn of(self, day: &Day) -> Option<bool> {
        match self {
            Factor::PoorSleep => day.poor_sleep,
            Factor::SkippedMeal => day.skipped_meal(),
            Factor::HighStress => day.high_stress,
            Factor::Exercise => day.exercised,
            Factor::LowEnergy => day.low_energy,
        }
    }

    /// "you slept badly", "you skipped a meal"...
    pub fn with_phrase(self) -> &'static str {
        match self {
            Factor::PoorSleep => "you slept badly",
            Factor::SkippedMeal => "you skipped a meal",
            Factor::HighStress => "you were very stressed",
            Factor::Exercise => "you worked out",
            Factor::LowEnergy => "your energy was low",
        }
    }

    pub fn without_phrase(self) -> &'static str {
        match self {
            Factor::PoorSleep => "you slept well",
            Factor::SkippedMeal => "you ate all your meals",
            Factor::HighStress => "stress was lower",
            Factor::Exercise => "you didn't",
            Factor::LowEnergy => "it wasn't",
        }
    }
}

/// A factor that went with a different mood, on enough days each way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub factor: Factor,
    pub days_with: usize,
    pub good_with: usize,
    pub days_without: usize,
    pub good_without: usize,
    /// Mean mood with minus mean mood without (valence scale, -2..2).
    pub mood_gap: f64,
}

impl Correlation {
    pub fn days_supporting(&self) -> usize {
        self.days_with + self.days_without
    }
}

/// Correlations between each factor and mood over the given days: only those with at least
/// [`MIN_DAYS_EACH_SIDE`] days each way and a mean gap of at least [`MIN_MOOD_GAP`], strongest
/// first.
pub fn correlations(days: &BTreeMap<NaiveDate, Day>, span: Span) -> Vec<Correlation> {
    let mut out: Vec<Correlation> = Factor::ALL
        .into_iter()
        .filter_map(|factor| {
            let (mut with, mut without) = (Vec::new(), Vec::new());
            for (_, day) in days.range(span.start..=span.end) {
                let (Some(mood), Some(present)) = (day.mood, factor.of(day)) else { continue };
                if present { with.push(mood) } else { without.push(mood) }
            }
            if with.len() < MIN_DAYS_EACH_SIDE || without.len() < MIN_DAYS_EACH_SIDE {
                return None;
            }
            let gap = mean(with.iter().copied())? - mean(without.iter().copied())?;
            (gap.abs() >= MIN_MOOD_GAP).then(|| Correlation {
                factor,
                days_with: with.len(),
                good_with: with.iter().filter(|m| **m > 0.0).count(),
                days_without: without.len(),
                good_without: without.iter().filter(|m| **m > 0.0).count(),
                mood_gap: (gap * 100.0).round() / 100.0,
            })
        })
        .collect();
    out.sort_by(|a, b| b.mood_gap.abs().total_cmp(&a.mood_gap.abs()).then(a.factor.cmp(&b.factor)));
    out
}

/// Counts of one week, for this week and the one before.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeekCounts {
    pub checkins: usize,
    pub days_logged: usize,
    pub workouts: usize,
    pub skipped_meals: usize,
    pub poor_sleep_nights: usize,
    /// Mean of the nights with hours stated, one decimal.
    pub avg_sleep_hours: Option<f64>,
    pub mood_days: usize,
    pub good_mood_days: usize,
    pub high_stress_days: usize,
}

fn week_counts(days: &BTreeMap<NaiveDate, Day>, events: &[Event], span: Span) -> WeekCounts {
    let in_span: Vec<&Day> = days.range(span.start..=span.end).map(|(_, d)| d).collect();
    WeekCounts {
        checkins: in_span.iter().map(|d| d.checkins).sum(),
        days_logged: in_span.len(),
        workouts: events.iter().filter(|e| span.contains(e.local_date) && e.checkin.exercise == Exercise::Done).count(),
        skipped_meals: in_span.iter().map(|d| d.skipped_meals).sum(),
        poor_sleep_nights: in_span.iter().filter(|d| d.poor_sleep == Some(true)).count(),
        avg_sleep_hours: mean(in_span.iter().filter_map(|d| d.sleep_hours)).map(|h| (h * 10.0).round() / 10.0),
        mood_days: in_span.iter().filter(|d| d.mood.is_some()).count(),
        good_mood_days: in_span.iter().filter(|d| d.good_mood() == Some(true)).count(),
        high_stress_days: in_span.iter().filter(|d| d.high_stress == Some(true)).count(),
    }
}

/// Skipped meals against poor sleep: on how many of the days with a skipped meal the user had
/// also slept badly ("mostly on days you slept badly").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SkippedMealPattern {
    pub skipped_days: usize,
    pub on_poor_sleep_days: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoalFact {
    pub name: String,
    pub description: String,
    pub current: i32,
    pub target: i32,
    pub met: bool,
    pub on_track: bool,
    pub streak: i32,
    /// True when the goal's period is a week (so "this week" numbers line up).
    pub weekly: bool,
}

/// Everything the weekly insight says, as numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeeklyFacts {
    pub week_start: NaiveDate,
    pub week_end: NaiveDate,
    pub this_week: WeekCounts,
    pub last_week: WeekCounts,
    pub skipped_meals: SkippedMealPattern,
    pub goals: Vec<GoalFact>,
    pub correlation_days: i64,
    pub correlations: Vec<Correlation>,
    pub to_try: Vec<String>,
}

/// Compute the weekly facts for the ISO week containing `today` (the insight is sent on Sunday
/// evening, so that is the week just ending).
pub fn weekly(
    events: &[Event],
    manual: &[ManualLog],
    goals: &[Goal],
    paused: &BTreeSet<NaiveDate>,
    today: NaiveDate,
) -> WeeklyFacts {
    let week = span_of(wellbeing_crds::goal::Period::Week, today);
    let prev = span_of(wellbeing_crds::goal::Period::Week, week.start - Duration::days(1));
    let all_days = days(events);
    let this_week = week_counts(&all_days, events, week);
    let last_week = week_counts(&all_days, events, prev);

    let skipped: Vec<&Day> =
        all_days.range(week.start..=week.end).map(|(_, d)| d).filter(|d| d.skipped_meals > 0).collect();
    let skipped_meals = SkippedMealPattern {
        skipped_days: skipped.len(),
        on_poor_sleep_days: skipped.iter().filter(|d| d.poor_sleep == Some(true)).count(),
    };

    let inputs = Inputs { events, manual, paused_days: paused };
    let goal_facts: Vec<GoalFact> = goals
        .iter()
        .filter_map(|g| {
            let name = g.metadata.name.clone()?;
            // Judged at the end of the week: the whole week's pace is expected.
            let p = progress::progress(&name, &g.spec, &inputs, week.end.min(today.max(week.start)), 1.0);
            Some(GoalFact {
                description: g.spec.description.clone(),
                met: p.current >= p.target,
                current: p.current,
                target: p.target,
                on_track: p.on_track,
                streak: p.streak,
                weekly: g.spec.target.per == wellbeing_crds::goal::Period::Week,
                name,
            })
        })
        .collect();

    let window = Span { start: week.end - Duration::days(CORRELATION_WINDOW_DAYS - 1), end: week.end };
    let correlations = correlations(&all_days, window);
    let mut facts = WeeklyFacts {
        week_start: week.start,
        week_end: week.end,
        this_week,
        last_week,
        skipped_meals,
        goals: goal_facts,
        correlation_days: CORRELATION_WINDOW_DAYS,
        correlations,
        to_try: Vec::new(),
    };
    facts.to_try = things_to_try(&facts);
    facts
}

/// Two or three concrete things to try, chosen from what the numbers show.
pub fn things_to_try(f: &WeeklyFacts) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let worse = |factor: Factor| f.correlations.iter().any(|c| c.factor == factor && c.mood_gap < 0.0);
    let better = |factor: Factor| f.correlations.iter().any(|c| c.factor == factor && c.mood_gap > 0.0);
    if worse(Factor::PoorSleep) || f.this_week.poor_sleep_nights >= 3 {
        out.push("Pick a fixed bedtime for the weeknights and set a wind-down alarm 30 minutes before it.".into());
    }
    if f.this_week.skipped_meals >= 2 || worse(Factor::SkippedMeal) {
        out.push(
            "Keep an easy breakfast or snack ready for busy mornings so a meal is never skipped by default.".into(),
        );
    }
    if worse(Factor::HighStress) || f.this_week.high_stress_days >= 3 {
        out.push("Block a 10-minute walk or breathing break after lunch on your busiest days.".into());
    }
    if let Some(g) = f.goals.iter().find(|g| !g.met && g.weekly) {
        out.push(format!("Put two fixed slots in your calendar next week for \"{}\".", g.description));
    }
    if better(Factor::Exercise) {
        out.push("Your better days often had a workout: plan short sessions on the days that look hardest.".into());
    }
    for fallback in [
        "Get ten minutes of daylight outside each morning.",
        "Check in once a day, even briefly: more days make next week's patterns clearer.",
    ] {
        if out.len() >= 2 {
            break;
        }
        out.push(fallback.into());
    }
    out.truncate(3);
    out
}

/// Monday of the ISO week containing `date`.
pub fn week_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckIn;
    use crate::checkin::{Meal, MealKind};
    use crate::goals::testutil::{d, event, goal};
    use wellbeing_crds::goal::{Metric, Period};

    fn day_checkin(valence: Valence, sleep: SleepQuality) -> CheckIn {
        CheckIn { valence, sleep_quality: sleep, ..Default::default() }
    }

    #[test]
    fn a_correlation_needs_three_days_each_way() {
        let mut events = Vec::new();
        let start = d("2026-04-13");
        // 4 poor nights with bad mood, 2 good nights with good mood: not enough "without" days.
        for i in 0..6 {
            let poor = i < 4;
            let c = day_checkin(
                if poor { Valence::Negative } else { Valence::Positive },
                if poor { SleepQuality::Poor } else { SleepQuality::Good },
            );
            events.push(event(i, &(start + Duration::days(i)).to_string(), c));
        }
        let span = Span { start, end: start + Duration::days(27) };
        assert!(correlations(&days(&events), span).is_empty());
        // A third good night makes it hold.
        events.push(event(
            7,
            &(start + Duration::days(7)).to_string(),
            day_checkin(Valence::Positive, SleepQuality::Good),
        ));
        let c = correlations(&days(&events), span);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].factor, c[0].days_with, c[0].good_with, c[0].days_without, c[0].good_without, c[0].days_supporting()),
            (Factor::PoorSleep, 4, 0, 3, 3, 7)
        );
        assert_eq!(c[0].mood_gap, -2.0);
    }

    #[test]
    fn no_correlation_when_mood_does_not_differ() {
        let start = d("2026-04-13");
        let events: Vec<Event> = (0..8)
            .map(|i| {
                event(
                    i,
                    &(start + Duration::days(i)).to_string(),
                    day_checkin(Valence::Positive, if i % 2 == 0 { SleepQuality::Poor } else { SleepQuality::Good }),
                )
            })
            .collect();
        assert!(correlations(&days(&events), Span { start, end: start + Duration::days(27) }).is_empty());
    }

    #[test]
    fn weekly_counts_trends_goals_and_things_to_try() {
        let skipped = |valence| CheckIn {
            valence,
            sleep_quality: SleepQuality::Poor,
            meals: vec![Meal { meal: MealKind::Breakfast, status: MealStatus::Skipped }],
            ..Default::default()
        };
        let workout = CheckIn {
            exercise: Exercise::Done,
            valence: Valence::Positive,
            sleep_hours: Some(7.5),
            ..Default::default()
        };
        let events = vec![
            event(1, "2026-04-28", workout.clone()), // last week
            event(2, "2026-05-04", skipped(Valence::Negative)),
            event(3, "2026-05-05", skipped(Valence::Negative)),
            event(4, "2026-05-06", workout.clone()),
            event(5, "2026-05-07", skipped(Valence::Neutral)),
            event(
                6,
                "2026-05-08",
                CheckIn {
                    meals: vec![Meal { meal: MealKind::Lunch, status: MealStatus::Skipped }],
                    sleep_hours: Some(8.0),
                    ..Default::default()
                },
            ),
        ];
        let goals = [Goal::new("workouts", goal(Metric::Exercise, 3, Period::Week))];
        let f = weekly(&events, &[], &goals, &BTreeSet::new(), d("2026-05-10"));
        assert_eq!((f.week_start, f.week_end), (d("2026-05-04"), d("2026-05-10")));
        assert_eq!((f.this_week.checkins, f.last_week.checkins), (5, 1));
        assert_eq!((f.this_week.workouts, f.this_week.skipped_meals, f.this_week.poor_sleep_nights), (1, 4, 3));
        assert_eq!(f.this_week.avg_sleep_hours, Some(7.8));
        assert_eq!(f.skipped_meals, SkippedMealPattern { skipped_days: 4, on_poor_sleep_days: 3 });
        assert_eq!(f.goals[0].current, 1);
        assert!(!f.goals[0].met && !f.goals[0].on_track);
        assert!((2..=3).contains(&f.to_try.len()), "{:?}", f.to_try);
        assert!(f.to_try[0].contains("bedtime"));
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<WeeklyFacts>(&json).unwrap(), f);
    }

    #[test]
    fn an_empty_week_still_has_things_to_try() {
        let f = weekly(&[], &[], &[], &BTreeSet::new(), d("2026-05-10"));
        assert_eq!(f.this_week, WeekCounts::default());
        assert_eq!(f.to_try.len(), 2);
    }
}
