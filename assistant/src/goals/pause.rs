//! "/wellbeing pause 5d": parse the length, work out when it ends, say so.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Longest pause accepted. A quarter of a year covers long leave; longer than that the user is
/// better served by `/wellbeing forget` or by removing the persona.
pub const MAX_PAUSE_DAYS: i64 = 92;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PauseError {
    #[error(
        "say how long to pause, for example \"/wellbeing pause 5d\", \"pause 2w\", \"pause 12h\" or \"pause until 2026-06-01\""
    )]
    Unparsed,
    #[error("a pause can last at most {MAX_PAUSE_DAYS} days")]
    TooLong,
    #[error("that date is not in the future")]
    InThePast,
}

/// A pause as stored: from `starts_at` until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    pub starts_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Pause {
    pub fn covers(&self, t: DateTime<Utc>) -> bool {
        self.starts_at <= t && t < self.until
    }
}

/// First instant of a local date (midnight, or the first minute that exists on a day whose
/// midnight was skipped by a DST change).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    (0..180)
        .find_map(|m| tz.from_local_datetime(&(date.and_time(NaiveTime::MIN) + Duration::minutes(m))).earliest())
        .expect("a day has a valid minute in its first three hours")
        .with_timezone(&Utc)
}

/// Parse the argument of `/wellbeing pause`. Days and weeks end at a local midnight ("5d" on a
/// Wednesday: Wednesday is day one, things resume on Monday at the start of the day); hours are
/// exact. `until DATE` resumes at the start of that date.
pub fn parse(arg: &str, now: DateTime<Utc>, tz: Tz) -> Result<Pause, PauseError> {
    let arg = arg.trim().to_lowercase();
    let today = now.with_timezone(&tz).date_naive();
    let until = if let Some(date) = arg.strip_prefix("until").map(str::trim) {
        let date: NaiveDate = date.parse().map_err(|_| PauseError::Unparsed)?;
        if date <= today {
            return Err(PauseError::InThePast);
        }
        if (date - today).num_days() > MAX_PAUSE_DAYS {
            return Err(PauseError::TooLong);
        }
        start_of_day(tz, date)
    } else {
        let split = arg.find(|c: char| !c.is_ascii_digit()).ok_or(PauseError::Unparsed)?;
        let (num, unit) = arg.split_at(split);
        let n: i64 = num.parse().map_err(|_| PauseError::Unparsed)?;
        if n <= 0 {
            return Err(PauseError::Unparsed);
        }
        let days = match unit.trim() {
            "h" | "hr" | "hrs" | "hour" | "hours" => {
                if n > MAX_PAUSE_DAYS * 24 {
                    return Err(PauseError::TooLong);
                }
                return Ok(Pause { starts_at: now, until: now + Duration::hours(n) });
            }
            "d" | "day" | "days" => n,
            "w" | "wk" | "week" | "weeks" => n.checked_mul(7).ok_or(PauseError::TooLong)?,
            _ => return Err(PauseError::Unparsed),
        };
        if days > MAX_PAUSE_DAYS {
            return Err(PauseError::TooLong);
        }
        start_of_day(tz, today + Days::new(days as u64))
    };
    Ok(Pause { starts_at: now, until })
}

/// The reply to a pause: when it resumes, in the user's zone.
pub fn confirmation(pause: &Pause, tz: Tz) -> String {
    let local = pause.until.with_timezone(&tz);
    format!(
        "Paused. No check-ins, reminders or nudges until {} at {} ({}). I'll pick up again then; \
         `/wellbeing resume` brings me back sooner.",
        local.format("%A %-d %B"),
        local.format("%H:%M"),
        tz.name()
    )
}

/// Whether any pause covers `now`.
pub fn is_paused(pauses: &[Pause], now: DateTime<Utc>) -> bool {
    pauses.iter().any(|p| p.covers(now))
}

/// Local dates touched by a pause (for streaks and pace: a paused day never breaks a streak).
pub fn paused_days(pauses: &[Pause], tz: Tz) -> BTreeSet<NaiveDate> {
    let mut out = BTreeSet::new();
    for p in pauses {
        if p.until <= p.starts_at {
            continue;
        }
        let first = p.starts_at.with_timezone(&tz).date_naive();
        // The day containing the last paused instant (until is exclusive).
        let last = (p.until - Duration::seconds(1)).with_timezone(&tz).date_naive();
        out.extend(first.iter_days().take_while(|d| *d <= last).take(MAX_PAUSE_DAYS as usize * 4));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::{at, d};

    #[test]
    fn days_end_at_local_midnight_and_say_when() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let now = at("Europe/Berlin", "2026-05-06 15:00"); // Wednesday
        let p = parse("5d", now, tz).unwrap();
        assert_eq!(p.until, at("Europe/Berlin", "2026-05-11 00:00"));
        let text = confirmation(&p, tz);
        assert!(text.contains("Monday 11 May at 00:00 (Europe/Berlin)"), "{text}");
        assert_eq!(parse("1 week", now, tz).unwrap().until, at("Europe/Berlin", "2026-05-13 00:00"));
        assert_eq!(parse("12h", now, tz).unwrap().until, now + Duration::hours(12));
        assert_eq!(parse("until 2026-06-01", now, tz).unwrap().until, at("Europe/Berlin", "2026-06-01 00:00"));
    }

    #[test]
    fn bad_lengths_explain_themselves() {
        let now = at("UTC", "2026-05-06 15:00");
        for bad in ["", "forever", "0d", "-3d", "5x", "d", "5.5d", "until yesterday", "99999999999999999999d"] {
            assert!(parse(bad, now, Tz::UTC).is_err(), "{bad}");
        }
        assert_eq!(parse("100d", now, Tz::UTC), Err(PauseError::TooLong));
        assert_eq!(parse("until 2026-05-06", now, Tz::UTC), Err(PauseError::InThePast));
        assert!(PauseError::Unparsed.to_string().contains("pause 5d"));
    }

    #[test]
    fn a_pause_across_the_dst_change_covers_whole_local_days() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let now = at("America/New_York", "2026-03-07 20:00");
        let p = parse("2d", now, tz).unwrap();
        // Two days: the 7th and the 8th (a 23-hour day); resumes at midnight on the 9th.
        assert_eq!(p.until, at("America/New_York", "2026-03-09 00:00"));
        assert_eq!(p.until - p.starts_at, Duration::hours(27));
        let days = paused_days(&[p], tz);
        assert_eq!(days.into_iter().collect::<Vec<_>>(), vec![d("2026-03-07"), d("2026-03-08")]);
        assert!(is_paused(&[p], at("America/New_York", "2026-03-08 23:59")));
        assert!(!is_paused(&[p], at("America/New_York", "2026-03-09 00:00")));
    }
}
