//! A database with years of realistic check-ins, for the dashboard's browser test and benchmark.
//! Deterministic (a fixed-seed generator), so figures are comparable between runs.

#![allow(dead_code)]

use chrono::{Duration, NaiveDate};
use rusqlite::params;
use serde_json::json;
use wellbeing_assistant::Store;
use wellbeing_crds::Goal;
use wellbeing_crds::persona::PersonaSpec;
use wellbeing_webhook::dashboard::DashboardContext;

pub const USER: &str = "slack:T1:U1";

/// xorshift64*: enough randomness for plausible data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Fill `store` with `days` days of `per_day` check-ins ending on `end`. Returns the row count.
pub fn seed(store: &Store, end: NaiveDate, days: i64, per_day: usize) -> usize {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut conn = store.conn();
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT OR IGNORE INTO people (person_id, created_at) VALUES (?1, '2020-01-01T00:00:00Z')",
        params![USER],
    )
    .unwrap();
    let mut rows = 0;
    let mut sleep_ids = Vec::new();
    for d in 0..days {
        let date = end - Duration::days(days - 1 - d);
        let poor_sleep = rng.below(4) == 0;
        for slot in 0..per_day {
            let valence = match (poor_sleep, rng.below(10)) {
                (true, 0..=5) | (false, 0..=1) => "negative",
                (_, 6..=7) => "neutral",
                _ => "positive",
            };
            let mut data = json!({ "valence": valence, "pillars": [] });
            let mut text = String::new();
            if slot == 0 {
                let hours =
                    if poor_sleep { 4.5 + rng.below(15) as f64 / 10.0 } else { 6.5 + rng.below(25) as f64 / 10.0 };
                data["sleep_hours"] = json!(hours);
                data["sleep_quality"] = json!(if poor_sleep { "poor" } else { "good" });
                text.push_str(&format!("slept {hours:.1} hours. "));
                if poor_sleep {
                    data["pillars"] = json!(["sleep"]);
                }
                let skipped = poor_sleep && rng.below(2) == 0;
                data["meals"] = json!([{ "meal": "breakfast", "status": if skipped { "skipped" } else { "eaten" } }]);
                text.push_str(if skipped { "skipped breakfast. " } else { "had breakfast. " });
            }
            data["energy"] = json!(["low", "medium", "high"][rng.below(3) as usize]);
            data["stress"] = json!(["low", "medium", "high"][rng.below(3) as usize]);
            if slot == 1 && rng.below(7) < 3 {
                data["exercise"] = json!("done");
                data["activity"] = json!("run");
                text.push_str("went for a run <3 & felt \"great\". ");
            }
            if slot == 2 {
                data["water"] = json!(rng.below(8));
            }
            text.push_str(&format!("feeling {valence}"));
            let created = format!("{date}T{:02}:{:02}:00Z", 8 + slot * 5, rng.below(60));
            tx.execute(
                "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, persona_name, persona_version)
                 VALUES (?1, ?2, ?3, ?4, 'offline', 'coach', 'v1')",
                params![USER, created, date.to_string(), data.to_string()],
            )
            .unwrap();
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO interactions (user_id, channel, direction, kind, text, created_at, persona_name, persona_version, checkin_id)
                 VALUES (?1, 'slack', 'in', 'message', ?2, ?3, 'coach', 'v1', ?4)",
                params![USER, text, created, id],
            )
            .unwrap();
            if poor_sleep && slot == 0 && d >= days - 7 {
                sleep_ids.push((id, date));
            }
            rows += 1;
        }
    }
    tx.execute(
        "INSERT INTO pillar_suggestions (user_id, pillar, mentions, asked_at) VALUES (?1, 'sleep', ?2, ?3)",
        params![USER, sleep_ids.len().max(3) as i64, format!("{end}T18:00:00Z")],
    )
    .unwrap();
    let sid = tx.last_insert_rowid();
    for (cid, date) in &sleep_ids {
        tx.execute(
            "INSERT INTO pillar_evidence (suggestion_id, checkin_id, local_date) VALUES (?1, ?2, ?3)",
            params![sid, cid, date.to_string()],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    rows
}

pub fn persona() -> PersonaSpec {
    serde_json::from_value(json!({
        "displayName": "Coach",
        "active": true,
        "checkIns": { "timeZone": "Europe/Berlin", "windows": [{ "start": "08:00", "end": "22:00" }], "perDay": 3 }
    }))
    .unwrap()
}

pub fn goals() -> Vec<Goal> {
    let workouts: Goal = serde_yaml_like(json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Goal", "metadata": { "name": "workouts" },
        "spec": { "description": "Work out 3 times a week", "pillar": "physical-activity", "metric": "exercise",
                  "target": { "count": 3, "per": "week" } }
    }));
    let sleep: Goal = serde_yaml_like(json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Goal", "metadata": { "name": "sleep" },
        "spec": { "description": "Sleep 7+ hours on 5 nights a week", "pillar": "sleep", "metric": "sleep_hours",
                  "target": { "count": 5, "per": "week", "threshold": 7.0 }, "restDays": ["Saturday"] }
    }));
    vec![workouts, sleep]
}

fn serde_yaml_like(v: serde_json::Value) -> Goal {
    serde_json::from_value(v).unwrap()
}

pub fn context() -> DashboardContext {
    DashboardContext { persona: persona(), goals: goals(), missing_secrets: vec!["openweather-api-key".into()] }
}
