//! The weekly insight: facts computed from the check-ins (`facts`), written from templates
//! (`text`) or rephrased by the LLM in the persona's voice with every number checked against the
//! facts, recorded once per week, sent on Sunday evening.

pub mod facts;
pub mod text;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use rusqlite::{OptionalExtension, params};
use wellbeing_crds::Goal;
use wellbeing_crds::persona::PersonaSpec;

use crate::goals::{OutgoingMessage, SendKind, db, gate, pause};
use crate::llm::{ChatRequest, LlmRouter, LlmTask};
use crate::{Store, StoreError};

pub use facts::WeeklyFacts;

/// Local time of the weekly insight on Sunday when it falls inside the persona's windows. 18:00
/// is "Sunday evening" for most people and leaves the evening to read it.
const INSIGHT_MINUTE: u32 = 18 * 60;
/// The check-ins read for one insight: the 28-day correlation window plus last week.
const HISTORY_DAYS: i64 = facts::CORRELATION_WINDOW_DAYS + 7;
/// The LLM's version may be longer than the template (a friendlier voice), but not a different
/// text: three times the length is a rewrite, not a rephrasing.
const MAX_LENGTH_FACTOR: usize = 3;

/// Who wrote the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhrasedBy {
    Template,
    Llm,
}

impl PhrasedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            PhrasedBy::Template => "template",
            PhrasedBy::Llm => "llm",
        }
    }
}

/// A weekly insight as stored and sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Insight {
    pub user_id: String,
    pub facts: WeeklyFacts,
    pub text: String,
    pub phrased_by: PhrasedBy,
    pub created_at: DateTime<Utc>,
}

/// Compute the facts of the week containing `now` (in the persona's zone) for a user.
pub fn compute(
    store: &Store,
    user: &str,
    persona: &PersonaSpec,
    goals: &[Goal],
    now: DateTime<Utc>,
) -> Result<WeeklyFacts, StoreError> {
    let tz = crate::goals::persona_tz(persona);
    let today = crate::goals::local_date(tz, now);
    let conn = store.conn();
    let since = Some(facts::week_start(today) - Duration::days(HISTORY_DAYS));
    let events = db::load_events(&conn, user, since)?;
    // Goal streaks look further back than the insight's window.
    let all_events;
    let goal_events = if goals.is_empty() {
        &events
    } else {
        all_events = db::load_events(&conn, user, None)?;
        &all_events
    };
    let manual = db::load_manual(&conn, user, None)?;
    let paused: BTreeSet<NaiveDate> = pause::paused_days(&db::load_pauses(&conn, user)?, tz);
    drop(conn);
    let mut f = facts::weekly(goal_events, &manual, goals, &paused, today);
    if !goals.is_empty() {
        // Counts and correlations from the window only, goals from the whole history.
        let windowed = facts::weekly(&events, &manual, &[], &paused, today);
        f = WeeklyFacts { goals: f.goals, ..windowed };
        f.to_try = facts::things_to_try(&f);
    }
    Ok(f)
}

/// The instructions that keep the LLM to rephrasing.
pub fn llm_prompt(persona: &PersonaSpec) -> String {
    format!(
        "{}\nYou are {}. Your tone: {}.\n\
         Rewrite the user's weekly wellbeing summary below in your own voice, speaking to them directly. \
         Keep every number exactly as written; do not add, round, combine or infer any number, date or fact. \
         Keep the things to try. No diagnosis, no medical advice. Plain text, at most 180 words.",
        persona.system_prompt.trim(),
        persona.display_name,
        persona.tone
    )
}

/// The text of an insight: the LLM's rephrasing when one is configured and its numbers all come
/// from the facts, otherwise the template.
pub async fn phrase(llm: &LlmRouter, persona: &PersonaSpec, f: &WeeklyFacts) -> (String, PhrasedBy) {
    let template = text::template(f);
    let Some(route) = llm.route(LlmTask::Insight, &persona.models) else { return (template, PhrasedBy::Template) };
    let request = ChatRequest {
        model: Some(route.model().to_string()),
        max_completion_tokens: route.max_completion_tokens(),
        ..ChatRequest::system_user(&llm_prompt(persona), &template)
    };
    match route.client.chat(request).await {
        Ok(reply) => match reply.text() {
            Some(t) if t.len() <= template.len() * MAX_LENGTH_FACTOR && text::numbers_match(t, &template) => {
                (t.to_string(), PhrasedBy::Llm)
            }
            Some(_) => {
                tracing::warn!("LLM insight used a number not in the facts (or ran long); using the template");
                (template, PhrasedBy::Template)
            }
            None => (template, PhrasedBy::Template),
        },
        Err(e) => {
            tracing::warn!(error = e.label(), "LLM insight failed; using the template");
            (template, PhrasedBy::Template)
        }
    }
}

/// Store an insight. False when one already exists for that user and week (it is sent once).
pub fn record(store: &Store, insight: &Insight) -> Result<bool, StoreError> {
    let n = store.conn().execute(
        "INSERT OR IGNORE INTO insights (user_id, week_start, created_at, facts, text, phrased_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            insight.user_id,
            insight.facts.week_start.to_string(),
            db::ts(insight.created_at),
            serde_json::to_string(&insight.facts)?,
            insight.text,
            insight.phrased_by.as_str()
        ],
    )?;
    Ok(n == 1)
}

/// A stored insight, for the dashboard and the CLI.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredInsight {
    pub week_start: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub text: String,
    pub phrased_by: String,
}

/// Most recent insights of a user, newest first.
pub fn recent(store: &Store, user: &str, limit: usize) -> Result<Vec<StoredInsight>, StoreError> {
    let conn = store.conn();
    let mut stmt = conn.prepare_cached(
        "SELECT week_start, created_at, text, phrased_by FROM insights WHERE user_id = ?1 ORDER BY week_start DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![user, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .filter_map(|r| match r {
            Ok((w, c, text, by)) => w.parse().ok().map(|week_start| {
                Ok(StoredInsight { week_start, created_at: db::parse_ts(&c).unwrap_or_default(), text, phrased_by: by })
            }),
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn stored_text(store: &Store, user: &str, week_start: NaiveDate) -> Result<Option<String>, StoreError> {
    Ok(store
        .conn()
        .query_row(
            "SELECT text FROM insights WHERE user_id = ?1 AND week_start = ?2",
            params![user, week_start.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Compute, phrase and record the insight of the current week for a user. Returns the insight
/// and whether it is new (false: this week's was already made; its stored text is returned).
pub async fn weekly(
    store: &Store,
    user: &str,
    persona: &PersonaSpec,
    goals: &[Goal],
    llm: &LlmRouter,
    now: DateTime<Utc>,
) -> Result<(Insight, bool), StoreError> {
    let f = compute(store, user, persona, goals, now)?;
    let (text, phrased_by) = phrase(llm, persona, &f).await;
    let insight = Insight { user_id: user.to_string(), facts: f, text, phrased_by, created_at: now };
    if record(store, &insight)? {
        return Ok((insight, true));
    }
    let text = stored_text(store, user, insight.facts.week_start)?.unwrap_or(insight.text.clone());
    Ok((Insight { text, ..insight }, false))
}

/// When this week's insight is due: Sunday 18:00 local, moved inside the persona's windows (to the
/// last window's final hour when 18:00 is outside them). None on a quiet Sunday.
pub fn due_at(persona: &PersonaSpec, date: NaiveDate) -> Option<DateTime<Utc>> {
    if date.weekday() != Weekday::Sun || wellbeing_crds::schedule::is_quiet_day(&persona.check_ins, date) {
        return None;
    }
    let tz = crate::goals::persona_tz(persona);
    let windows: Vec<(u32, u32)> = persona
        .check_ins
        .windows
        .iter()
        .filter_map(|w| {
            Some((wellbeing_crds::schedule::parse_hhmm(&w.start)?, wellbeing_crds::schedule::parse_hhmm(&w.end)?))
        })
        .filter(|(a, b)| a < b)
        .collect();
    let minute = if windows.iter().any(|(a, b)| (*a..*b).contains(&INSIGHT_MINUTE)) {
        INSIGHT_MINUTE
    } else {
        let (a, b) = windows.iter().max_by_key(|(_, b)| *b)?;
        (*b).saturating_sub(60).max(*a)
    };
    crate::goals::nudge::local_instant(tz, date, minute)
}

/// Scheduler tick: the weekly insight of every user whose Sunday-evening time is due now (and not
/// paused), as messages to send. Recorded before it is returned, so it is sent once.
#[tracing::instrument(skip_all)]
pub async fn tick(
    store: &Store,
    persona: &PersonaSpec,
    goals: &[Goal],
    llm: &LlmRouter,
    grace_minutes: i64,
    now: DateTime<Utc>,
) -> Result<Vec<OutgoingMessage>, StoreError> {
    let tz = crate::goals::persona_tz(persona);
    let today = crate::goals::local_date(tz, now);
    let Some(at) = due_at(persona, today) else { return Ok(Vec::new()) };
    if gate::due(at, now, grace_minutes) != gate::Due::Now {
        return Ok(Vec::new());
    }
    let users = db::users(&store.conn())?;
    let mut out = Vec::new();
    for user in users {
        if crate::goals::runner::is_paused(store, &user, now)? {
            continue;
        }
        let (insight, new) = weekly(store, &user, persona, goals, llm, now).await?;
        if new {
            tracing::info!(user = %user, phrased_by = insight.phrased_by.as_str(), "weekly insight due");
            out.push(OutgoingMessage {
                user_id: user,
                kind: SendKind::Insight,
                goal: String::new(),
                slot: insight.facts.week_start.to_string(),
                text: insight.text,
                actions: Vec::new(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goals::testutil::{at, d, persona};
    use crate::llm::{LlmClient, LlmConfig};

    fn seed(store: &Store) {
        let conn = store.conn();
        conn.execute("INSERT INTO people (person_id, created_at) VALUES ('u', '2026-01-01T00:00:00Z')", []).unwrap();
        for (i, day) in (4..=9).enumerate() {
            let data = if i % 2 == 0 {
                r#"{"valence":"negative","sleep_quality":"poor","meals":[{"meal":"breakfast","status":"skipped"}]}"#
            } else {
                r#"{"valence":"positive","sleep_quality":"good","exercise":"done"}"#
            };
            conn.execute(
                "INSERT INTO checkins (user_id, created_at, local_date, data, extractor, persona_name, persona_version)
                 VALUES ('u', ?1, ?2, ?3, 'offline', 'p', 'v')",
                params![format!("2026-05-{day:02}T10:00:00Z"), format!("2026-05-{day:02}"), data],
            )
            .unwrap();
        }
    }

    /// A local OpenAI-compatible server answering every chat completion with `reply`.
    async fn fake_llm(reply: &'static str) -> LlmClient {
        use axum::{Json, Router, routing::post};
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move || async move {
                Json(serde_json::json!({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
                    "choices": [{ "index": 0, "finish_reason": "stop",
                        "message": { "role": "assistant", "content": reply } }],
                    "usage": { "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2 }
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        LlmClient::new(LlmConfig::new(&format!("http://{addr}/v1"), "fake")).unwrap()
    }

    #[tokio::test]
    async fn llm_text_is_used_only_when_its_numbers_are_the_facts() {
        let store = Store::in_memory().unwrap();
        seed(&store);
        let p = persona("UTC");
        let now = at("UTC", "2026-05-10 18:00");
        let f = compute(&store, "u", &p, &[], now).unwrap();
        assert_eq!(f.this_week.checkins, 6);

        let good = fake_llm("Six check-ins this week and 3 skipped meals. Try a fixed bedtime!").await;
        let (t, by) = phrase(&LlmRouter::single(good), &p, &f).await;
        assert_eq!(
            (t.as_str(), by),
            ("Six check-ins this week and 3 skipped meals. Try a fixed bedtime!", PhrasedBy::Llm)
        );

        let liar = fake_llm("You checked in 7 times and slept 20% better!").await;
        let (t, by) = phrase(&LlmRouter::single(liar), &p, &f).await;
        assert_eq!(by, PhrasedBy::Template);
        assert_eq!(t, text::template(&f));
    }

    #[tokio::test]
    async fn sent_on_sunday_evening_once() {
        let store = Store::in_memory().unwrap();
        seed(&store);
        let p = persona("Europe/Berlin");
        assert_eq!(due_at(&p, d("2026-05-09")), None);
        let at_six = due_at(&p, d("2026-05-10")).unwrap();
        assert_eq!(at_six, at("Europe/Berlin", "2026-05-10 18:00"));
        assert!(
            tick(&store, &p, &[], &LlmRouter::offline(), 10, at_six - Duration::minutes(1)).await.unwrap().is_empty()
        );
        let sent = tick(&store, &p, &[], &LlmRouter::offline(), 10, at_six).await.unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].text.starts_with("Your week, 4 May to 10 May:"), "{}", sent[0].text);
        assert!(
            tick(&store, &p, &[], &LlmRouter::offline(), 10, at_six + Duration::minutes(1)).await.unwrap().is_empty()
        );
        assert_eq!(recent(&store, "u", 5).unwrap().len(), 1);
        // Windows ending at 17:00: the insight moves to 16:00.
        let mut early = persona("UTC");
        early.check_ins.windows[0].end = "17:00".into();
        assert_eq!(due_at(&early, d("2026-05-10")), Some(at("UTC", "2026-05-10 16:00")));
    }
}
