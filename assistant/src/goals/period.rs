//! Goal periods (day, ISO week starting Monday, calendar month) as ranges of local dates.

use chrono::{Datelike, Days, NaiveDate};
use wellbeing_crds::goal::Period;

/// A period as inclusive local dates. Periods are made of dates, not instants, so a DST change
/// (a 23- or 25-hour day) never moves a check-in into another day or week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Span {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.start.iter_days().take_while(|d| *d <= self.end)
    }

    pub fn len(&self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }
}

/// The period of `per` that contains `date`.
pub fn span_of(per: Period, date: NaiveDate) -> Span {
    match per {
        Period::Day => Span { start: date, end: date },
        Period::Week => {
            let start = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
            Span { start, end: start + Days::new(6) }
        }
        Period::Month => {
            let start = date.with_day(1).expect("day 1 exists");
            let next = start.checked_add_months(chrono::Months::new(1)).expect("date in range");
            Span { start, end: next.pred_opt().expect("date in range") }
        }
    }
}

/// The period just before `span`.
pub fn previous(per: Period, span: Span) -> Span {
    span_of(per, span.start.pred_opt().expect("date in range"))
}

/// "today", "this week", "this month".
pub fn this_period(per: Period) -> &'static str {
    match per {
        Period::Day => "today",
        Period::Week => "this week",
        Period::Month => "this month",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::d;

    #[test]
    fn weeks_are_iso_and_start_on_monday() {
        // 2026-01-01 is a Thursday; its ISO week starts on Monday 2025-12-29.
        let w = span_of(Period::Week, d("2026-01-01"));
        assert_eq!((w.start, w.end), (d("2025-12-29"), d("2026-01-04")));
        let sunday = span_of(Period::Week, d("2026-05-10"));
        assert_eq!((sunday.start, sunday.end), (d("2026-05-04"), d("2026-05-10")));
        assert_eq!(span_of(Period::Week, d("2026-05-04")), sunday);
        assert_eq!(previous(Period::Week, sunday).start, d("2026-04-27"));
    }

    #[test]
    fn months_have_their_real_length() {
        let feb = span_of(Period::Month, d("2028-02-15"));
        assert_eq!((feb.start, feb.end, feb.len()), (d("2028-02-01"), d("2028-02-29"), 29));
        let dec = span_of(Period::Month, d("2026-12-31"));
        assert_eq!(dec.end, d("2026-12-31"));
        assert_eq!(previous(Period::Month, dec).start, d("2026-11-01"));
        assert_eq!(span_of(Period::Day, d("2026-03-29")).len(), 1);
    }
}
