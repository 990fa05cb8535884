//! Server-side SVG charts: pure functions from numbers to markup, no JavaScript.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDate};

use super::html::escape;

/// Colour of a day by mean valence (-1 negative .. 1 positive), on a red-yellow-green scale
/// (ColorBrewer RdYlGn end points, readable for most colour-vision types with the labels).
pub fn valence_colour(valence: Option<f64>) -> String {
    let Some(v) = valence.filter(|v| v.is_finite()) else { return "#ebedf0".into() };
    let v = v.clamp(-1.0, 1.0);
    let (red, yellow, green) = ((215.0, 48.0, 39.0), (254.0, 224.0, 139.0), (26.0, 152.0, 80.0));
    let (a, b, t) = if v < 0.0 { (red, yellow, v + 1.0) } else { (yellow, green, v) };
    let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

const CELL: i64 = 12;
const GAP: i64 = 2;

/// A year of days as a calendar (weeks as columns, Monday on top), each day coloured by mood.
/// `days` maps dates to mean valence; days without a check-in are grey.
pub fn mood_calendar(days: &BTreeMap<NaiveDate, f64>, end: NaiveDate) -> String {
    let start = end - Duration::days(364);
    // Align the first column on a Monday.
    let first_monday = start - Duration::days(i64::from(start.weekday().num_days_from_monday()));
    let weeks = (end - first_monday).num_days() / 7 + 1;
    let (left, top) = (28, 16);
    let width = left + weeks * (CELL + GAP);
    let height = top + 7 * (CELL + GAP) + 4;
    let mut s = String::with_capacity(64 * 400);
    let _ = write!(
        s,
        r#"<svg class="chart mood-calendar" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="mood-cal-title"><title id="mood-cal-title">Mood calendar, {} to {}</title>"#,
        start, end
    );
    for (row, label) in [(0, "Mon"), (2, "Wed"), (4, "Fri")] {
        let _ = write!(s, r#"<text x="0" y="{}" font-size="9">{label}</text>"#, top + row * (CELL + GAP) + 10);
    }
    let mut last_month = 0;
    let mut day = start;
    while day <= end {
        let offset = (day - first_monday).num_days();
        let (col, row) = (offset / 7, offset % 7);
        let x = left + col * (CELL + GAP);
        if day.month() != last_month && row <= 1 {
            last_month = day.month();
            let _ = write!(s, r#"<text x="{x}" y="10" font-size="9">{}</text>"#, day.format("%b"));
        }
        let v = days.get(&day).copied();
        let label = match v {
            Some(v) if v > 0.33 => "good",
            Some(v) if v < -0.33 => "low",
            Some(_) => "mixed",
            None => "no check-in",
        };
        let _ = write!(
            s,
            r#"<rect class="day" x="{x}" y="{}" width="{CELL}" height="{CELL}" rx="2" fill="{}"><title>{day}: {label}</title></rect>"#,
            top + row * (CELL + GAP),
            valence_colour(v)
        );
        day += Duration::days(1);
    }
    s.push_str("</svg>");
    s
}

/// One point of the sleep and energy chart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SleepEnergy {
    pub sleep_hours: Option<f64>,
    /// 1 low .. 3 high.
    pub energy: Option<f64>,
}

/// Sleep hours (bars, 0-12 h) and energy (line, low-high) per day over a date range.
pub fn sleep_energy(series: &BTreeMap<NaiveDate, SleepEnergy>, start: NaiveDate, end: NaiveDate) -> String {
    let days = (end - start).num_days().max(0) + 1;
    let (left, top, plot_h, step) = (34.0, 10.0, 150.0, 8.0);
    let width = left + days as f64 * step + 40.0;
    let height = top + plot_h + 24.0;
    let y_sleep = |h: f64| top + plot_h - (h.clamp(0.0, 12.0) / 12.0) * plot_h;
    let y_energy = |e: f64| top + plot_h - ((e.clamp(1.0, 3.0) - 1.0) / 2.0) * plot_h;
    let mut s = String::with_capacity(100 * days as usize);
    let _ = write!(
        s,
        r#"<svg class="chart sleep-energy" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-labelledby="sleep-title"><title id="sleep-title">Sleep hours and energy, {start} to {end}</title>"#
    );
    for h in [0.0, 4.0, 8.0, 12.0] {
        let y = y_sleep(h);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="2" y="{:.1}" font-size="9">{h:.0} h</text>"##,
            width - 40.0,
            y + 3.0
        );
    }
    for (label, e) in [("high", 3.0), ("low", 1.0)] {
        let _ = write!(
            s,
            r#"<text x="{:.0}" y="{:.1}" font-size="9" fill="currentColor">{label}</text>"#,
            width - 36.0,
            y_energy(e) + 3.0
        );
    }
    let mut line = String::new();
    for (i, day) in start.iter_days().take(days as usize).enumerate() {
        let x = left + i as f64 * step;
        let Some(p) = series.get(&day) else { continue };
        if let Some(h) = p.sleep_hours {
            let y = y_sleep(h);
            let _ = write!(
                s,
                r##"<rect class="sleep" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#6a8fd8"><title>{day}: slept {h:.1} h</title></rect>"##,
                step - 2.0,
                top + plot_h - y
            );
        }
        if let Some(e) = p.energy {
            let _ = write!(
                line,
                "{}{:.1},{:.1}",
                if line.is_empty() { "" } else { " " },
                x + step / 2.0 - 1.0,
                y_energy(e)
            );
        }
    }
    if !line.is_empty() {
        let _ =
            write!(s, r##"<polyline class="energy" points="{line}" fill="none" stroke="#e08a1e" stroke-width="2"/>"##);
    }
    let _ = write!(s, r#"<text x="{left}" y="{:.0}" font-size="9">{start}</text>"#, height - 4.0);
    let _ = write!(
        s,
        r#"<text x="{:.0}" y="{:.0}" font-size="9" text-anchor="end">{end}</text>"#,
        width - 40.0,
        height - 4.0
    );
    s.push_str("</svg>");
    s
}

/// A horizontal progress bar for a goal.
pub fn progress_bar(label: &str, current: i32, target: i32, on_track: bool) -> String {
    let (w, h) = (240.0, 14.0);
    let frac = if target > 0 { (f64::from(current) / f64::from(target)).clamp(0.0, 1.0) } else { 0.0 };
    let colour = if current >= target {
        "#1a9850"
    } else if on_track {
        "#91cf60"
    } else {
        "#fc8d59"
    };
    format!(
        r##"<svg class="chart progress" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{}: {current} of {target}</title><rect width="{w}" height="{h}" rx="3" fill="#eee"/><rect class="done" width="{:.1}" height="{h}" rx="3" fill="{colour}"/></svg>"##,
        escape(label),
        w * frac
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn colours_run_from_red_through_yellow_to_green() {
        assert_eq!(valence_colour(Some(-1.0)), "#d73027");
        assert_eq!(valence_colour(Some(0.0)), "#fee08b");
        assert_eq!(valence_colour(Some(1.0)), "#1a9850");
        assert_eq!(valence_colour(Some(7.0)), "#1a9850");
        assert_eq!(valence_colour(None), "#ebedf0");
        assert_eq!(valence_colour(Some(f64::NAN)), "#ebedf0");
    }

    #[test]
    fn the_calendar_has_a_cell_per_day_of_the_year() {
        let days: BTreeMap<NaiveDate, f64> = [(d("2026-05-10"), 1.0), (d("2026-01-01"), -1.0)].into();
        let svg = mood_calendar(&days, d("2026-05-10"));
        assert_eq!(svg.matches(r#"class="day""#).count(), 365);
        assert!(svg.contains("2026-05-10: good"));
        assert!(svg.contains("2026-01-01: low"));
        assert!(svg.contains(r##"fill="#d73027"><title>2026-01-01"##));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn sleep_bars_and_energy_line() {
        let series: BTreeMap<NaiveDate, SleepEnergy> = [
            (d("2026-05-01"), SleepEnergy { sleep_hours: Some(6.0), energy: Some(1.0) }),
            (d("2026-05-03"), SleepEnergy { sleep_hours: None, energy: Some(3.0) }),
            (d("2026-05-04"), SleepEnergy { sleep_hours: Some(30.0), energy: None }),
        ]
        .into();
        let svg = sleep_energy(&series, d("2026-05-01"), d("2026-05-10"));
        assert_eq!(svg.matches(r#"class="sleep""#).count(), 2);
        assert!(svg.contains("2026-05-01: slept 6.0 h"));
        // Energy low sits at the bottom of the plot (y = 160), high at the top (y = 10).
        assert!(svg.contains(r#"points="37.0,160.0 53.0,10.0""#), "{svg}");
        let empty = sleep_energy(&BTreeMap::new(), d("2026-05-01"), d("2026-05-10"));
        assert!(!empty.contains("polyline"));
    }

    #[test]
    fn progress_bars_fill_to_the_share_and_escape_labels() {
        let bar = progress_bar("<Work out>", 1, 3, false);
        assert!(bar.contains(r#"class="done" width="80.0""#), "{bar}");
        assert!(bar.contains("&lt;Work out&gt;: 1 of 3"));
        assert!(progress_bar("x", 5, 3, true).contains(r#"width="240.0""#));
        assert!(progress_bar("x", 0, 0, true).contains(r#"class="done" width="0.0""#));
    }
}
