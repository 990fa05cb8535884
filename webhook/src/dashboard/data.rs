//! What the dashboard shows, read from the database in one pass (the I/O half of the page).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::params;
use wellbeing_assistant::goals::pillars::{self, LearnedPillar};
use wellbeing_assistant::goals::progress::{self, Inputs};
use wellbeing_assistant::goals::{db, gate, pause};
use wellbeing_assistant::insights::{self, StoredInsight, facts};
use wellbeing_assistant::{Store, StoreError};
use wellbeing_crds::Goal;
use wellbeing_crds::goal::GoalProgress;
use wellbeing_crds::persona::PersonaSpec;

use super::svg::SleepEnergy;

/// Days of the sleep and energy chart: three months show a trend without crowding the bars.
pub const SLEEP_DAYS: i64 = 90;
/// Check-ins listed with their words.
pub const RECENT_CHECKINS: usize = 20;

/// What the host supplies besides the database: the live persona, goals, and secret names.
#[derive(Clone, Debug)]
pub struct DashboardContext {
    pub persona: PersonaSpec,
    pub goals: Vec<Goal>,
    /// Names of secrets the system needs and does not have (never their values).
    pub missing_secrets: Vec<String>,
}

/// One recent check-in: what the user wrote and what was understood.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentCheckIn {
    pub id: i64,
    pub local_date: NaiveDate,
    pub created_at: DateTime<Utc>,
    /// The user's words (already redacted when stored); None when only structured data exists.
    pub text: Option<String>,
    pub summary: String,
}

#[derive(Clone, Debug)]
pub struct GoalRow {
    pub name: String,
    pub description: String,
    pub pillar: String,
    pub progress: GoalProgress,
}

/// Everything on the page.
#[derive(Clone, Debug)]
pub struct DashboardData {
    pub user: Option<String>,
    pub today: NaiveDate,
    pub time_zone: String,
    pub mood_by_day: BTreeMap<NaiveDate, f64>,
    pub sleep_energy: BTreeMap<NaiveDate, SleepEnergy>,
    pub goals: Vec<GoalRow>,
    pub pillars: Vec<LearnedPillar>,
    pub recent: Vec<RecentCheckIn>,
    pub insights: Vec<StoredInsight>,
    /// This week's insight computed now (template text), shown until Sunday's is stored.
    pub this_week: String,
    pub missing_secrets: Vec<String>,
    pub paused_until: Option<DateTime<Utc>>,
}

/// The person the page is about when none is asked for: the first person served (the one the
/// installation was set up for), never whoever happened to write last.
pub fn default_user(store: &Store) -> Result<Option<String>, StoreError> {
    Ok(wellbeing_assistant::people::list(&store.conn())?.into_iter().next())
}

fn summary(c: &wellbeing_assistant::CheckIn) -> String {
    use wellbeing_assistant::checkin::{Exercise, Level, SleepQuality, Valence};
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = &c.mood {
        parts.push(format!("mood {m}"));
    } else if c.valence != Valence::Unknown {
        parts.push(format!("mood {:?}", c.valence).to_lowercase());
    }
    if c.energy != Level::Unknown {
        parts.push(format!("energy {:?}", c.energy).to_lowercase());
    }
    if c.stress != Level::Unknown {
        parts.push(format!("stress {:?}", c.stress).to_lowercase());
    }
    match (c.sleep_hours, c.sleep_quality) {
        (Some(h), _) => parts.push(format!("slept {h:.1} h")),
        (None, q) if q != SleepQuality::Unknown => parts.push(format!("sleep {q:?}").to_lowercase()),
        _ => {}
    }
    let eaten = c.meals.iter().filter(|m| m.status == wellbeing_assistant::checkin::MealStatus::Eaten).count();
    let skipped = c.meals.len() - eaten;
    if eaten > 0 {
        parts.push(format!("{eaten} meal(s) eaten"));
    }
    if skipped > 0 {
        parts.push(format!("{skipped} meal(s) skipped"));
    }
    if let Some(w) = c.water {
        parts.push(format!("{w:.0} glass(es) of water"));
    }
    match c.exercise {
        Exercise::Done => parts.push(c.activity.clone().map_or("worked out".into(), |a| format!("worked out ({a})"))),
        Exercise::Planned => parts.push("workout planned".into()),
        _ => {}
    }
    parts.join(", ")
}

/// Read everything for one user. Events are read once and shared by every section.
pub fn load(
    store: &Store,
    user: Option<&str>,
    ctx: &DashboardContext,
    now: DateTime<Utc>,
) -> Result<DashboardData, StoreError> {
    let user = match user {
        Some(u) => Some(u.to_string()),
        None => default_user(store)?,
    };
    let tz = wellbeing_assistant::goals::persona_tz(&ctx.persona);
    let today = wellbeing_assistant::goals::local_date(tz, now);
    let mut data = DashboardData {
        user: user.clone(),
        today,
        time_zone: tz.name().to_string(),
        mood_by_day: BTreeMap::new(),
        sleep_energy: BTreeMap::new(),
        goals: Vec::new(),
        pillars: Vec::new(),
        recent: Vec::new(),
        insights: Vec::new(),
        this_week: String::new(),
        missing_secrets: ctx.missing_secrets.clone(),
        paused_until: None,
    };
    let Some(user) = user else {
        data.goals = goal_rows(ctx, &[], &[], &BTreeSet::new(), today, 0.0);
        return Ok(data);
    };

    let (events, manual, pauses) = {
        let conn = store.conn();
        (db::load_events(&conn, &user, None)?, db::load_manual(&conn, &user, None)?, db::load_pauses(&conn, &user)?)
    };
    let paused_days = pause::paused_days(&pauses, tz);
    data.paused_until = pauses.iter().filter(|p| p.covers(now)).map(|p| p.until).max();

    let year_ago = today - Duration::days(364);
    let recent_events: Vec<_> = events.iter().filter(|e| e.local_date >= year_ago).cloned().collect();
    let days = facts::days(&recent_events);
    let sleep_from = today - Duration::days(SLEEP_DAYS - 1);
    for (date, day) in &days {
        if let Some(m) = day.mood {
            data.mood_by_day.insert(*date, m);
        }
        if *date >= sleep_from && (day.sleep_hours.is_some() || day.energy.is_some()) {
            data.sleep_energy.insert(*date, SleepEnergy { sleep_hours: day.sleep_hours, energy: day.energy });
        }
    }

    let fraction = gate::window_fraction(&ctx.persona, tz, now);
    data.goals = goal_rows(ctx, &events, &manual, &paused_days, today, fraction);

    let week_events: Vec<_> = events
        .iter()
        .filter(|e| e.local_date >= today - Duration::days(facts::CORRELATION_WINDOW_DAYS + 7))
        .cloned()
        .collect();
    let mut week = facts::weekly(&week_events, &manual, &[], &paused_days, today);
    week.goals = facts::weekly(&events, &manual, &ctx.goals, &paused_days, today).goals;
    week.to_try = facts::things_to_try(&week);
    data.this_week = insights::text::template(&week);

    data.pillars = pillars::learned(&store.conn(), &user)?;
    data.insights = insights::recent(store, &user, 4)?;
    data.recent = recent_checkins(store, &user, &events)?;
    Ok(data)
}

fn goal_rows(
    ctx: &DashboardContext,
    events: &[wellbeing_assistant::goals::Event],
    manual: &[wellbeing_assistant::goals::ManualLog],
    paused: &BTreeSet<NaiveDate>,
    today: NaiveDate,
    fraction: f64,
) -> Vec<GoalRow> {
    let inputs = Inputs { events, manual, paused_days: paused };
    ctx.goals
        .iter()
        .filter_map(|g| {
            let name = g.metadata.name.clone()?;
            Some(GoalRow {
                progress: progress::progress(&name, &g.spec, &inputs, today, fraction),
                description: g.spec.description.clone(),
                pillar: g.spec.pillar.clone(),
                name,
            })
        })
        .collect()
}

fn recent_checkins(
    store: &Store,
    user: &str,
    events: &[wellbeing_assistant::goals::Event],
) -> Result<Vec<RecentCheckIn>, StoreError> {
    let conn = store.conn();
    let mut words = conn.prepare_cached(
        "SELECT group_concat(text, ' / ') FROM (SELECT text FROM interactions
         WHERE user_id = ?1 AND checkin_id = ?2 AND direction = 'in' ORDER BY id)",
    )?;
    let mut out = Vec::with_capacity(RECENT_CHECKINS);
    for e in events.iter().rev().take(RECENT_CHECKINS) {
        let text: Option<String> = words.query_row(params![user, e.id], |r| r.get(0))?;
        out.push(RecentCheckIn {
            id: e.id,
            local_date: e.local_date,
            created_at: e.created_at,
            text,
            summary: summary(&e.checkin),
        });
    }
    Ok(out)
}
