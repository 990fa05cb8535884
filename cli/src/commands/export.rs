//! `wellbeing export --format json|csv [--output FILE]`: everything the assistant stores.
//! JSON holds every table (the same document `/wellbeing export` gives a Slack user); CSV holds
//! the check-ins, one row each, for spreadsheets.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use wellbeing_assistant::engine::StoredCheckIn;

use crate::embedded::{self, DataDirArg};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataDirArg,
    /// json: every table; csv: one row per check-in.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write to this file (created readable only by you) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.resolve()?;
    let db = data_dir.join(wellbeing_assistant::store::DB_FILE);
    if !db.exists() {
        anyhow::bail!("nothing to export: {} does not exist", db.display());
    }
    let store = wellbeing_assistant::Store::open(&db).context("failed to open the database")?;
    let assistant = embedded::assistant(store, embedded::persona_registry(), None);
    let bytes = match args.format {
        Format::Json => {
            let doc = assistant.export_user(None).context("failed to export the data")?;
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            s.into_bytes()
        }
        Format::Csv => {
            let epoch = DateTime::<Utc>::UNIX_EPOCH;
            let rows = assistant.checkins_since(None, epoch).context("failed to read the check-ins")?;
            checkins_csv(&rows).into_bytes()
        }
    };
    match &args.output {
        None => std::io::stdout().write_all(&bytes).context("failed to write to standard output")?,
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            f.write_all(&bytes).with_context(|| format!("failed to write {}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
    }
    Ok(())
}

const CSV_COLUMNS: [&str; 23] = [
    "id",
    "user_id",
    "created_at",
    "local_date",
    "mood",
    "valence",
    "energy",
    "stress",
    "sleep_quality",
    "sleep_hours",
    "hunger",
    "meals",
    "water",
    "exercise",
    "activity",
    "intentions",
    "pillars",
    "crisis",
    "missing",
    "extractor",
    "model",
    "persona_name",
    "persona_version",
];

/// One row per check-in; list fields joined with "; ". Enum values are their JSON names.
pub fn checkins_csv(rows: &[StoredCheckIn]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let c = serde_json::to_value(&r.checkin).unwrap_or_default();
        let text = |key: &str| match &c[key] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let list = |key: &str| {
            c[key]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Object(m) => {
                                m.values().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")
                            }
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        let fields = [
            r.id.to_string(),
            r.user_id.clone(),
            r.created_at.to_rfc3339(),
            r.local_date.to_string(),
            text("mood"),
            text("valence"),
            text("energy"),
            text("stress"),
            text("sleep_quality"),
            text("sleep_hours"),
            text("hunger"),
            list("meals"),
            text("water"),
            text("exercise"),
            text("activity"),
            list("intentions"),
            list("pillars"),
            r.crisis.to_string(),
            list("missing"),
            r.extractor.clone(),
            r.model.clone().unwrap_or_default(),
            r.persona_name.clone(),
            r.persona_version.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting; a leading =, +, - or @ is prefixed with ' so a spreadsheet never runs a
/// user's words as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use wellbeing_assistant::checkin::{CheckIn, Meal, MealKind, MealStatus, Pillar};

    use super::*;

    #[test]
    fn csv_rows_quote_and_flatten() {
        let row = StoredCheckIn {
            id: 3,
            user_id: "local:me".into(),
            created_at: "2026-05-04T10:00:00Z".parse().unwrap(),
            local_date: "2026-05-04".parse().unwrap(),
            checkin: CheckIn {
                mood: Some("meh, \"ok\"".into()),
                meals: vec![
                    Meal { meal: MealKind::Breakfast, status: MealStatus::Skipped },
                    Meal { meal: MealKind::Lunch, status: MealStatus::Eaten },
                ],
                pillars: vec![Pillar::Nutrition, Pillar::Sleep],
                sleep_hours: Some(5.5),
                intentions: vec!["=HYPERLINK(1)".into()],
                ..Default::default()
            },
            extractor: "offline".into(),
            model: None,
            persona_name: "coach".into(),
            persona_version: "0-abc".into(),
            prompt_id: None,
            thread_ref: None,
            crisis: false,
        };
        let csv = checkins_csv(&[row]);
        let mut lines = csv.lines();
        assert_eq!(lines.next().unwrap().split(',').count(), CSV_COLUMNS.len());
        let line = lines.next().unwrap();
        assert!(
            line.starts_with("3,local:me,2026-05-04T10:00:00+00:00,2026-05-04,\"meh, \"\"ok\"\"\",unknown,"),
            "{line}"
        );
        assert!(line.contains(",5.5,"), "{line}");
        assert!(line.contains(",breakfast skipped; lunch eaten,"), "{line}");
        assert!(line.contains(",'=HYPERLINK(1),"), "{line}");
        assert!(line.contains(",nutrition; sleep,false,,offline,,coach,0-abc"), "{line}");
        assert_eq!(csv_field("-3"), "-3");
    }
}
