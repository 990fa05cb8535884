//! The check-in schedule: a pure function of (persona settings, persona uid, local date).
//!
//! Both the operator (one CronJob per slot) and the embedded scheduler of `wellbeing up` call
//! [`draw`], so a day's times are the same wherever the assistant runs, and a restart never
//! reshuffles them: the random generator is seeded by the uid and the local date.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng, seq::index};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::persona::{CheckInSchedule, TimeWindow, Weekday};

/// Why a persona's check-in settings cannot be met. The message ends up in the `ScheduleInvalid`
/// condition, so it names the field and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("spec.checkIns.timeZone {0:?} is not an IANA time zone (for example Europe/Berlin)")]
    UnknownTimeZone(String),
    #[error("spec.checkIns.windows[{index}]: {reason}")]
    BadWindow { index: usize, reason: String },
    #[error("spec.checkIns.perDay must be between 1 and 24, got {0}")]
    PerDayOutOfRange(i32),
    #[error("spec.checkIns.minGapMinutes must be between 0 and 720, got {0}")]
    GapOutOfRange(i32),
    #[error(
        "{per_day} check-ins at least {min_gap_minutes} minutes apart do not fit in the windows on {date} \
         ({available_minutes} minutes available, at most {fits} fit): lower perDay or minGapMinutes, or widen the windows"
    )]
    DoesNotFit { per_day: i32, min_gap_minutes: i32, date: NaiveDate, available_minutes: usize, fits: usize },
}

/// Parse an IANA time zone name.
pub fn time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>().map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

/// Parse "HH:MM" into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn window_minutes(index: usize, w: &TimeWindow) -> Result<std::ops::Range<u32>, ScheduleError> {
    let bad = |reason: String| ScheduleError::BadWindow { index, reason };
    let start = parse_hhmm(&w.start).ok_or_else(|| bad(format!("start {:?} is not HH:MM", w.start)))?;
    let end = parse_hhmm(&w.end).ok_or_else(|| bad(format!("end {:?} is not HH:MM", w.end)))?;
    if start >= end {
        return Err(bad(format!("start {} must be before end {}", w.start, w.end)));
    }
    Ok(start..end)
}

/// Check everything that does not depend on the date: zone, windows, ranges.
pub fn validate(spec: &CheckInSchedule) -> Result<Tz, ScheduleError> {
    if !(1..=24).contains(&spec.per_day) {
        return Err(ScheduleError::PerDayOutOfRange(spec.per_day));
    }
    if !(0..=720).contains(&spec.min_gap_minutes) {
        return Err(ScheduleError::GapOutOfRange(spec.min_gap_minutes));
    }
    if spec.windows.is_empty() {
        return Err(ScheduleError::BadWindow { index: 0, reason: "at least one window is needed".into() });
    }
    for (i, w) in spec.windows.iter().enumerate() {
        window_minutes(i, w)?;
    }
    time_zone(&spec.time_zone)
}

/// Whether the persona is quiet on this local date.
pub fn is_quiet_day(spec: &CheckInSchedule, date: NaiveDate) -> bool {
    spec.quiet_days.contains(&Weekday::from_chrono(date.weekday()))
}

/// The candidate instants of a day: every whole local minute inside a window that exists on that
/// date. A minute skipped by a spring-forward change does not exist and is never a candidate; a
/// minute repeated by a fall-back change counts once, at its first occurrence.
fn candidates(spec: &CheckInSchedule, tz: Tz, date: NaiveDate) -> Result<Vec<DateTime<Tz>>, ScheduleError> {
    let mut minutes = BTreeSet::new();
    for (i, w) in spec.windows.iter().enumerate() {
        minutes.extend(window_minutes(i, w)?);
    }
    let mut out = Vec::with_capacity(minutes.len());
    for m in minutes {
        let local = date.and_time(NaiveTime::from_hms_opt(m / 60, m % 60, 0).expect("minute of day"));
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => out.push(t),
            LocalResult::Ambiguous(first, _) => out.push(first),
            LocalResult::None => {}
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn rng_for(seed: &str, date: NaiveDate) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update(b"/");
    hasher.update(date.to_string().as_bytes());
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

/// Draw the check-in times of one local date. `seed` is the persona's uid.
///
/// Times are whole minutes, inside the windows, at least `minGapMinutes` apart (in real elapsed
/// time, so DST changes count), `perDay` of them, sorted; none on a quiet day. The same inputs
/// always give the same times.
pub fn draw(spec: &CheckInSchedule, seed: &str, date: NaiveDate) -> Result<Vec<DateTime<Tz>>, ScheduleError> {
    let tz = validate(spec)?;
    if is_quiet_day(spec, date) {
        return Ok(Vec::new());
    }
    let cands = candidates(spec, tz, date)?;
    let k = spec.per_day as usize;
    let gap = Duration::minutes(spec.min_gap_minutes as i64);

    // fits[j]: how many check-ins fit greedily when the first is at candidate j. Greedy is optimal
    // for "as many points as possible with a minimum gap", so fits[0] decides feasibility.
    let next: Vec<usize> = cands.iter().map(|c| cands.partition_point(|x| *x < *c + gap)).collect();
    let mut fits = vec![0usize; cands.len() + 1];
    for j in (0..cands.len()).rev() {
        fits[j] = 1 + fits[next[j]];
    }
    let best = fits.first().copied().unwrap_or(0);
    if best < k {
        return Err(ScheduleError::DoesNotFit {
            per_day: spec.per_day,
            min_gap_minutes: spec.min_gap_minutes,
            date,
            available_minutes: cands.len(),
            fits: best,
        });
    }

    let mut rng = rng_for(seed, date);
    // Rejection sampling is exactly uniform over valid sets; it succeeds quickly unless the
    // settings are tight, where the sequential draw below takes over.
    for _ in 0..256 {
        let mut picked: Vec<usize> = index::sample(&mut rng, cands.len(), k).into_vec();
        picked.sort_unstable();
        if picked.windows(2).all(|p| cands[p[1]] - cands[p[0]] >= gap) {
            return Ok(picked.into_iter().map(|i| cands[i]).collect());
        }
    }
    let mut out = Vec::with_capacity(k);
    let mut from = 0usize;
    for remaining in (1..=k).rev() {
        let allowed: Vec<usize> = (from..cands.len()).filter(|&j| fits[j] >= remaining).collect();
        let j = allowed[rng.random_range(0..allowed.len())];
        out.push(cands[j]);
        from = next[j];
    }
    Ok(out)
}

/// The local date at an instant.
pub fn local_date(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The first instant of the next local day: when a new set of times must be drawn.
pub fn next_local_midnight(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = local_date(tz, now).succ_opt().expect("date in range");
    // Midnight may not exist (some zones change at 00:00); take the first minute that does.
    (0..180)
        .find_map(|m| {
            let local = tomorrow.and_time(NaiveTime::MIN) + Duration::minutes(m);
            tz.from_local_datetime(&local).earliest()
        })
        .expect("a day has a valid minute in its first three hours")
        .with_timezone(&Utc)
}

/// Cron expression firing daily at a local time (`M H * * *`); the CronJob's `timeZone` supplies
/// the zone.
pub fn cron_expression(t: &DateTime<Tz>) -> String {
    format!("{} {} * * *", t.minute(), t.hour())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::Channel;
    use proptest::prelude::*;

    fn spec(tz: &str, windows: &[(&str, &str)], per_day: i32, gap: i32) -> CheckInSchedule {
        CheckInSchedule {
            time_zone: tz.into(),
            windows: windows.iter().map(|(s, e)| TimeWindow { start: s.to_string(), end: e.to_string() }).collect(),
            per_day,
            min_gap_minutes: gap,
            quiet_days: vec![],
            channel: Channel::Slack,
            prompts: vec![],
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn in_windows(s: &CheckInSchedule, t: &DateTime<Tz>) -> bool {
        let m = t.hour() * 60 + t.minute();
        s.windows.iter().any(|w| {
            let (a, b) = (parse_hhmm(&w.start).unwrap(), parse_hhmm(&w.end).unwrap());
            (a..b).contains(&m)
        })
    }

    #[test]
    fn same_inputs_same_times_and_new_day_new_times() {
        let s = spec("Europe/Berlin", &[("09:00", "21:00")], 3, 90);
        let a = draw(&s, "uid-1", d("2026-05-04")).unwrap();
        assert_eq!(a, draw(&s, "uid-1", d("2026-05-04")).unwrap());
        assert_ne!(a, draw(&s, "uid-1", d("2026-05-05")).unwrap());
        assert_ne!(a, draw(&s, "uid-2", d("2026-05-04")).unwrap());
    }

    #[test]
    fn impossible_settings_say_why() {
        let s = spec("Europe/Berlin", &[("09:00", "10:00")], 3, 60);
        let err = draw(&s, "u", d("2026-05-04")).unwrap_err();
        assert!(matches!(err, ScheduleError::DoesNotFit { fits: 1, .. }), "{err}");
        assert!(err.to_string().contains("lower perDay"));
        let bad_tz = spec("Mars/Olympus", &[("09:00", "10:00")], 1, 0);
        assert_eq!(
            draw(&bad_tz, "u", d("2026-05-04")).unwrap_err(),
            ScheduleError::UnknownTimeZone("Mars/Olympus".into())
        );
        let backwards = spec("UTC", &[("10:00", "09:00")], 1, 0);
        assert!(matches!(draw(&backwards, "u", d("2026-05-04")), Err(ScheduleError::BadWindow { index: 0, .. })));
    }

    #[test]
    fn tight_settings_still_drawn_exactly() {
        // 3 slots of 60 minutes in a 121-minute window: only a few arrangements exist.
        let s = spec("UTC", &[("09:00", "11:01")], 3, 60);
        let t = draw(&s, "u", d("2026-05-04")).unwrap();
        assert_eq!(t.len(), 3);
        assert!(t.windows(2).all(|p| p[1] - p[0] >= Duration::minutes(60)));
    }

    #[test]
    fn quiet_day_has_no_check_ins() {
        let mut s = spec("UTC", &[("09:00", "21:00")], 3, 60);
        s.quiet_days = vec![Weekday::Sunday];
        assert!(draw(&s, "u", d("2026-05-03")).unwrap().is_empty());
        assert_eq!(draw(&s, "u", d("2026-05-04")).unwrap().len(), 3);
    }

    #[test]
    fn spring_forward_gap_is_never_drawn() {
        // 2026-03-08 02:00-02:59 does not exist in New York.
        let s = spec("America/New_York", &[("01:30", "03:30")], 2, 10);
        for seed in 0..200 {
            for t in draw(&s, &seed.to_string(), d("2026-03-08")).unwrap() {
                assert_ne!(t.hour(), 2, "{t}");
            }
        }
    }

    #[test]
    fn next_midnight_in_zone() {
        let tz = time_zone("Asia/Tokyo").unwrap();
        let now = "2026-05-04T20:00:00Z".parse::<DateTime<Utc>>().unwrap(); // 05:00 on the 5th in Tokyo
        assert_eq!(next_local_midnight(tz, now), "2026-05-05T15:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn cron_is_minute_hour() {
        let tz = time_zone("Europe/Berlin").unwrap();
        let t = tz.with_ymd_and_hms(2026, 5, 4, 9, 7, 0).unwrap();
        assert_eq!(cron_expression(&t), "7 9 * * *");
    }

    const ZONES: [&str; 6] =
        ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"];

    proptest! {
        #[test]
        fn drawn_times_keep_every_rule(
            zone in 0usize..ZONES.len(),
            start in 0u32..(23 * 60),
            len in 1u32..(24 * 60),
            per_day in 1i32..8,
            gap in 0i32..240,
            day in 0i64..730,
            seed in "[a-z0-9-]{1,36}",
        ) {
            let end = (start + len).min(24 * 60 - 1);
            prop_assume!(end > start);
            let fmt = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
            let s = spec(ZONES[zone], &[(&fmt(start), &fmt(end))], per_day, gap);
            let date = d("2026-01-01") + Duration::days(day);
            match draw(&s, &seed, date) {
                Ok(times) => {
                    prop_assert_eq!(times.len(), per_day as usize);
                    prop_assert_eq!(&times, &draw(&s, &seed, date).unwrap());
                    for t in &times {
                        prop_assert_eq!(t.date_naive(), date);
                        prop_assert!(in_windows(&s, t));
                        // The local time exists on that day (no spring-forward minute).
                        let back = t.timezone().from_local_datetime(&t.naive_local());
                        prop_assert!(!matches!(back, LocalResult::None));
                    }
                    prop_assert!(times.windows(2).all(|p| p[1] - p[0] >= Duration::minutes(gap as i64)));
                }
                Err(ScheduleError::DoesNotFit { fits, .. }) => prop_assert!(fits < per_day as usize),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
