//! The weekly insight as text: a template over the facts, and the check that an LLM's rephrasing
//! only uses numbers the facts contain.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::facts::{Correlation, WeekCounts, WeeklyFacts};

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn trend(now: usize, before: usize) -> String {
    format!(
        "last week: {before}{}",
        if now > before {
            ", up"
        } else if now < before {
            ", down"
        } else {
            ""
        }
    )
}

fn correlation_line(c: &Correlation) -> String {
    let better = c.mood_gap > 0.0;
    format!(
        "On the {} {}, your mood was good on {}; on the {} {} it was good on {}. That pattern rests on {} days of check-ins{}.",
        plural(c.days_with, "day", "days"),
        c.factor.with_phrase(),
        c.good_with,
        plural(c.days_without, "day", "days"),
        c.factor.without_phrase(),
        c.good_without,
        c.days_supporting(),
        if better { " and points the good way" } else { "" }
    )
}

fn counts_lines(out: &mut String, w: &WeekCounts, prev: &WeekCounts, f: &WeeklyFacts) {
    let _ = writeln!(
        out,
        "- You checked in {} on {} ({}).",
        plural(w.checkins, "time", "times"),
        plural(w.days_logged, "day", "days"),
        trend(w.checkins, prev.checkins)
    );
    if w.workouts > 0 || prev.workouts > 0 {
        let _ = writeln!(out, "- Workouts: {} ({}).", w.workouts, trend(w.workouts, prev.workouts));
    }
    if w.skipped_meals > 0 {
        let s = &f.skipped_meals;
        let mostly = if s.on_poor_sleep_days * 2 > s.skipped_days && s.on_poor_sleep_days >= 2 {
            format!(", mostly on days you slept badly ({} of {} days)", s.on_poor_sleep_days, s.skipped_days)
        } else {
            String::new()
        };
        let _ = writeln!(out, "- You skipped meals {}{mostly}.", plural(w.skipped_meals, "time", "times"));
    }
    if w.poor_sleep_nights > 0 || w.avg_sleep_hours.is_some() {
        let mut line = format!("- Sleep: {} of poor sleep", plural(w.poor_sleep_nights, "night", "nights"));
        if let Some(h) = w.avg_sleep_hours {
            let _ = write!(line, ", {h:.1} hours on average");
            if let Some(p) = prev.avg_sleep_hours {
                let _ = write!(line, " (last week {p:.1})");
            }
        }
        let _ = writeln!(out, "{line}.");
    }
    if w.mood_days > 0 {
        let _ = writeln!(out, "- Mood: good on {} of {}.", w.good_mood_days, plural(w.mood_days, "day", "days"));
    }
}

/// The insight written from templates. Also the text the LLM is asked to rephrase.
pub fn template(f: &WeeklyFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Your week, {} to {}:", f.week_start.format("%-d %B"), f.week_end.format("%-d %B"));
    counts_lines(&mut out, &f.this_week, &f.last_week, f);
    if !f.goals.is_empty() {
        let _ = writeln!(out, "\nGoals:");
        for g in &f.goals {
            let state = if g.met {
                "met"
            } else if g.on_track {
                "on track"
            } else {
                "behind"
            };
            let streak = if g.streak > 0 { format!(", streak {}", g.streak) } else { String::new() };
            let _ = writeln!(out, "- {}: {}/{} ({state}{streak}).", g.description, g.current, g.target);
        }
    }
    if !f.correlations.is_empty() {
        let _ = writeln!(out, "\nWhat your last {} days show:", f.correlation_days);
        for c in f.correlations.iter().take(3) {
            let _ = writeln!(out, "- {}", correlation_line(c));
        }
    }
    if !f.to_try.is_empty() {
        let _ = writeln!(out, "\nThings to try:");
        for t in &f.to_try {
            let _ = writeln!(out, "- {t}");
        }
    }
    out.trim_end().to_string()
}

/// Number words an LLM may use instead of digits.
const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];
/// Words that often carry a number ("twice", "half") and could state one the facts do not hold.
const NUMERIC_WORDS: &[&str] = &["once", "twice", "thrice", "half", "double", "triple", "dozen", "percent"];

/// Every number in a text, normalized ("7.0" and "7" are the same number; "three" is 3). Numeric
/// words without a fixed value are returned as themselves so they can be refused.
pub fn numbers(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut BTreeSet<String>| {
        let s = current.trim_end_matches('.');
        if !s.is_empty()
            && let Ok(v) = s.parse::<f64>()
        {
            out.insert(normalize_number(v));
        }
        current.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '.' && !current.is_empty()) {
            current.push(c);
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    for word in text.split(|c: char| !c.is_alphabetic()).map(str::to_lowercase) {
        if let Some(n) = NUMBER_WORDS.iter().position(|w| *w == word) {
            out.insert(n.to_string());
        } else if NUMERIC_WORDS.contains(&word.as_str()) {
            out.insert(word);
        }
    }
    out
}

fn normalize_number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{}", (v * 100.0).round() / 100.0) }
}

/// Whether `candidate` uses only numbers that `facts_text` contains.
pub fn numbers_match(candidate: &str, facts_text: &str) -> bool {
    let allowed = numbers(facts_text);
    numbers(candidate).iter().all(|n| allowed.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::facts::{Factor, GoalFact, SkippedMealPattern};

    pub(crate) fn sample() -> WeeklyFacts {
        WeeklyFacts {
            week_start: "2026-05-04".parse().unwrap(),
            week_end: "2026-05-10".parse().unwrap(),
            this_week: WeekCounts {
                checkins: 12,
                days_logged: 6,
                workouts: 2,
                skipped_meals: 4,
                poor_sleep_nights: 3,
                avg_sleep_hours: Some(6.8),
                mood_days: 6,
                good_mood_days: 4,
                high_stress_days: 1,
            },
            last_week: WeekCounts { checkins: 9, workouts: 3, avg_sleep_hours: Some(7.1), ..Default::default() },
            skipped_meals: SkippedMealPattern { skipped_days: 4, on_poor_sleep_days: 3 },
            goals: vec![GoalFact {
                name: "workouts".into(),
                description: "Work out 3 times a week".into(),
                current: 2,
                target: 3,
                met: false,
                on_track: false,
                streak: 4,
                weekly: true,
            }],
            correlation_days: 28,
            correlations: vec![Correlation {
                factor: Factor::PoorSleep,
                days_with: 5,
                good_with: 1,
                days_without: 9,
                good_without: 6,
                mood_gap: -0.8,
            }],
            to_try: vec!["Pick a fixed bedtime.".into(), "Keep a snack ready.".into()],
        }
    }

    #[test]
    fn template_states_the_computed_numbers() {
        let t = template(&sample());
        assert!(t.starts_with("Your week, 4 May to 10 May:"), "{t}");
        assert!(t.contains("- You checked in 12 times on 6 days (last week: 9, up)."), "{t}");
        assert!(t.contains("- You skipped meals 4 times, mostly on days you slept badly (3 of 4 days)."), "{t}");
        assert!(t.contains("6.8 hours on average (last week 7.1)"), "{t}");
        assert!(t.contains("- Work out 3 times a week: 2/3 (behind, streak 4)."), "{t}");
        assert!(t.contains("On the 5 days you slept badly, your mood was good on 1; on the 9 days you slept well it was good on 6. That pattern rests on 14 days"), "{t}");
        assert!(t.contains("Things to try:\n- Pick a fixed bedtime."), "{t}");
    }

    #[test]
    fn numbers_are_found_in_digits_and_words() {
        let n = numbers("You slept 6.8 hours, three bad nights, 12 check-ins, twice. 7.0 and 2/3.");
        let expected: BTreeSet<String> = ["6.8", "3", "12", "twice", "7", "2"].iter().map(|s| s.to_string()).collect();
        assert_eq!(n, expected);
    }

    #[test]
    fn llm_text_with_an_invented_number_is_refused() {
        let facts = template(&sample());
        assert!(numbers_match(
            "Twelve check-ins on six days, and 4 skipped meals: mostly after poor sleep (3 of 4).",
            &facts
        ));
        assert!(!numbers_match("You checked in 13 times.", &facts));
        assert!(!numbers_match("Your mood improved by 40 percent.", &facts));
        assert!(!numbers_match("You worked out twice.", &facts), "'twice' is not in the facts");
    }
}
