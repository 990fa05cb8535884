//! `wellbeing checkins --since 7d [--json]`: the stored check-ins, read straight from the
//! database (reads never get in the way of a running instance: SQLite in WAL mode lets readers
//! and the writer work at once).

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::embedded::{self, DataDirArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDirArg,
    /// How far back: a duration (30m, 12h, 7d, 2w) or a date (2026-05-01) or an RFC 3339 time.
    #[arg(long, default_value = "7d", value_parser = parse_since, value_name = "WHEN")]
    since: Since,
    /// Print a JSON array (one object per check-in) instead of a table.
    #[arg(long)]
    json: bool,
}

/// A parsed `--since`: relative to now, or absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Since {
    Ago(Duration),
    At(DateTime<Utc>),
}

impl Since {
    pub fn instant(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::Ago(d) => now - *d,
            Since::At(t) => *t,
        }
    }
}

pub fn parse_since(s: &str) -> Result<Since, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Since::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = s.parse::<NaiveDate>() {
        return Ok(Since::At(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: i64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 7d or a date like 2026-05-01"))?;
    let d = match unit {
        "m" | "min" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        "w" => Duration::weeks(n),
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use m, h, d or w")),
    };
    Ok(Since::Ago(d))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.resolve()?;
    let db = data_dir.join(wellbeing_assistant::store::DB_FILE);
    if !db.exists() {
        if args.json {
            println!("[]");
        } else {
            println!("No check-ins yet ({} does not exist).", db.display());
        }
        return Ok(());
    }
    let store = wellbeing_assistant::Store::open(&db).context("failed to open the database")?;
    let assistant = embedded::assistant(store, embedded::persona_registry(), None);
    let since = args.since.instant(Utc::now());
    let rows = assistant.checkins_since(None, since).context("failed to read the check-ins")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No check-ins since {}.", since.format("%Y-%m-%d %H:%M UTC"));
        return Ok(());
    }
    for row in &rows {
        let fields: Vec<String> =
            wellbeing_webhook::local::summary(&row.checkin).into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let what = if fields.is_empty() { "(nothing recognised)".to_string() } else { fields.join(" · ") };
        println!("#{:<5} {} {}  {what}", row.id, row.local_date, row.created_at.format("%H:%M"));
    }
    if rows.len() > 1 {
        println!("{} check-ins since {}.", rows.len(), since.format("%Y-%m-%d %H:%M UTC"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_times() {
        assert_eq!(parse_since("7d"), Ok(Since::Ago(Duration::days(7))));
        assert_eq!(parse_since("12h"), Ok(Since::Ago(Duration::hours(12))));
        assert_eq!(parse_since("30m"), Ok(Since::Ago(Duration::minutes(30))));
        assert_eq!(parse_since("2w"), Ok(Since::Ago(Duration::weeks(2))));
        assert_eq!(parse_since("2026-05-01"), Ok(Since::At("2026-05-01T00:00:00Z".parse().unwrap())));
        assert_eq!(parse_since("2026-05-01T10:00:00+02:00"), Ok(Since::At("2026-05-01T08:00:00Z".parse().unwrap())));
        assert!(parse_since("7y").unwrap_err().contains("unknown unit"));
        assert!(parse_since("soon").is_err());
        let now: DateTime<Utc> = "2026-05-08T00:00:00Z".parse().unwrap();
        assert_eq!(parse_since("7d").unwrap().instant(now), "2026-05-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
