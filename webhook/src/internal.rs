//! The internal API: `POST /internal/checkins`, called by `wellbeing checkin trigger` from the
//! persona's CronJobs. Opens the user's DM, posts the persona's check-in prompt, records it.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use tracing::instrument;
use wellbeing_assistant::engine::{Channel, SentPrompt};
use wellbeing_assistant::goals::gate::CheckinDecision;
use wellbeing_assistant::goals::runner::{Context, checkin_gate};
use wellbeing_crds::Persona;
use wellbeing_crds::schedule;

use crate::app::AppState;
use crate::slack::events::user_key;

/// What `wellbeing checkin trigger` sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckinRequest {
    /// The Persona whose CronJob fired.
    pub persona: String,
    /// Index of the day's check-in slot (the CronJob's `WELLBEING_CHECKIN_SLOT`). With it, a
    /// retried Job finds the prompt already sent instead of sending a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<usize>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckinResponse {
    /// sent | already_sent | skipped
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

/// Error bodies are `{"error": "..."}` so the CLI can print them.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// How late a slot may be compared with the Job that serves it: a Job retried after local
/// midnight still belongs to yesterday's draw, and one started a little early to today's.
const SLOT_EARLY_TOLERANCE_MINUTES: i64 = 10;

/// The scheduled time of check-in `slot` that a Job running at `now` serves: today's draw (the
/// same draw the operator made, seeded by the persona's uid and the local date), or yesterday's
/// when today's is still ahead.
pub fn slot_time(persona: &Persona, slot: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let spec = &persona.spec.check_ins;
    let tz = schedule::validate(spec).ok()?;
    let seed = persona.metadata.uid.clone().unwrap_or_default();
    let today = schedule::local_date(tz, now);
    for date in [Some(today), today.pred_opt()].into_iter().flatten() {
        let times = schedule::draw(spec, &seed, date).ok()?;
        if let Some(t) = times.get(slot).map(|t| t.with_timezone(&Utc))
            && t <= now + Duration::minutes(SLOT_EARLY_TOLERANCE_MINUTES)
        {
            return Some(t);
        }
    }
    None
}

/// `POST /internal/checkins`
#[instrument(skip_all, fields(persona, slot))]
pub async fn checkins(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CheckinRequest>, JsonRejection>,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match state.auth.authenticate(authorization).await {
        Ok(caller) => caller,
        Err(denied) => {
            tracing::warn!(reason = %denied, "internal API call refused");
            return error(denied.status(), denied.to_string());
        }
    };
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let span = tracing::Span::current();
    span.record("persona", request.persona.as_str());
    if let Some(slot) = request.slot {
        span.record("slot", slot);
    }
    tracing::debug!(?caller, "internal check-in request");

    let active = state.engine.personas().active();
    if active.name() != request.persona {
        return error(
            StatusCode::CONFLICT,
            format!(
                "persona {} is not the active persona ({} speaks{})",
                request.persona,
                active.name(),
                if active.is_default() { ", the built-in default" } else { "" }
            ),
        );
    }
    let Some(user) = target_user(&state).await else {
        return error(
            StatusCode::CONFLICT,
            "no Slack user to check in with: set SLACK_USER_ID, or write to the bot once",
        );
    };
    let now = state.clock.now();
    let slot = request.slot.and_then(|i| slot_time(&active.persona, i, now));

    // Paused, a quiet day, or backed off after unanswered check-ins: skip (and say so).
    let (store, goals, persona, u) =
        (state.engine.store().clone(), state.goals.clone(), active.persona.clone(), user.key.clone());
    let gate = tokio::task::spawn_blocking(move || {
        let uid = persona.metadata.uid.clone().unwrap_or_default();
        let ctx = Context { persona: &persona.spec, persona_uid: &uid, goals: &[], config: &goals };
        checkin_gate(&store, &u, &ctx, slot.unwrap_or(now), now)
    })
    .await;
    let notice = match gate {
        Ok(Ok(CheckinDecision::Send { notice })) => notice,
        Ok(Ok(CheckinDecision::Skip(reason))) => {
            tracing::info!(reason = reason.as_str(), "check-in skipped");
            return Json(CheckinResponse {
                status: "skipped".into(),
                reason: Some(reason.as_str().into()),
                user_id: Some(user.key),
                prompt_id: None,
                channel: None,
                ts: None,
            })
            .into_response();
        }
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to check the schedule: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to check the schedule: {e}")),
    };

    let (engine, u) = (state.engine.clone(), user.key.clone());
    let recorded = tokio::task::spawn_blocking(move || engine.record_checkin_prompt(&u, Channel::Slack, slot)).await;
    let sent = match recorded {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to record the prompt: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to record the prompt: {e}")),
    };
    let prompt = sent.prompt().clone();
    if let SentPrompt::AlreadySent(p) = &sent
        && p.delivered()
    {
        return Json(CheckinResponse {
            status: "already_sent".into(),
            reason: None,
            user_id: Some(user.key),
            prompt_id: Some(p.id),
            channel: p.channel_ref.clone(),
            ts: p.thread_ref.clone(),
        })
        .into_response();
    }

    let channel = match state.slack.client.open_conversation(&user.slack_user).await {
        Ok(channel) => channel,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("failed to open the DM: {e}")),
    };
    let key = format!("checkin:{}", prompt.id);
    if let Some(notice) = notice
        && let Err(e) = state.worker.post_once(&key, 0, &user.key, &channel, None, &notice).await
    {
        return error(StatusCode::BAD_GATEWAY, format!("failed to post the notice: {e}"));
    }
    let ts = match state.worker.post_once(&key, 1, &user.key, &channel, None, &prompt.text).await {
        Ok(ts) => ts,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("failed to post the prompt: {e}")),
    };
    let (engine, c, t) = (state.engine.clone(), channel.clone(), ts.clone());
    let marked = tokio::task::spawn_blocking(move || engine.mark_prompt_delivered(prompt.id, Some(c), Some(t))).await;
    if !matches!(marked, Ok(Ok(()))) {
        // Posted but not linked: replies still link by time (the prompt window), so say so and go on.
        tracing::warn!(prompt_id = prompt.id, "failed to record where the prompt was posted");
    }
    tracing::info!(prompt_id = prompt.id, "check-in prompt sent");
    Json(CheckinResponse {
        status: "sent".into(),
        reason: None,
        user_id: Some(user.key),
        prompt_id: Some(prompt.id),
        channel: Some(channel),
        ts: Some(ts),
    })
    .into_response()
}

struct Target {
    /// "slack:T:U"
    key: String,
    slack_user: String,
}

/// Who check-ins go to: `SLACK_USER_ID`, else the last Slack user who wrote to the bot.
async fn target_user(state: &AppState) -> Option<Target> {
    if let Some(user) = &state.slack.checkin_user {
        let team = state.slack.team_id.clone().or_else(|| team_of(state, user))?;
        return Some(Target { key: user_key(&team, user), slack_user: user.clone() });
    }
    let store = state.engine.store().clone();
    let last: Option<String> = tokio::task::spawn_blocking(move || {
        let conn = store.conn();
        let from_inbox: Option<String> = conn
            .query_row("SELECT user_id FROM inbox WHERE user_id LIKE 'slack:%' ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .ok()
            .flatten();
        from_inbox.or_else(|| {
            conn.query_row(
                "SELECT user_id FROM interactions WHERE direction = 'in' AND user_id LIKE 'slack:%' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten()
        })
    })
    .await
    .ok()
    .flatten();
    let key = last?;
    let slack_user = key.rsplit(':').next()?.to_string();
    Some(Target { key, slack_user })
}

/// The team of a known user id, from earlier messages.
fn team_of(state: &AppState, user: &str) -> Option<String> {
    let conn = state.engine.store().conn();
    let key: Option<String> = conn
        .query_row(
            "SELECT user_id FROM users WHERE user_id LIKE 'slack:%:' || ?1 ORDER BY first_seen DESC LIMIT 1",
            [user],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten();
    key.and_then(|k| k.split(':').nth(1).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_crds::PersonaSpec;

    fn persona() -> Persona {
        let mut p = wellbeing_assistant::persona::default_persona("Europe/Berlin");
        p.metadata.uid = Some("uid-1".into());
        p
    }

    #[test]
    fn the_slot_is_todays_draw_or_yesterdays_after_midnight() {
        let p = persona();
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let date = chrono::NaiveDate::from_ymd_opt(2026, 5, 8).unwrap();
        let today = schedule::draw(&p.spec.check_ins, "uid-1", date).unwrap();
        let yesterday = schedule::draw(&p.spec.check_ins, "uid-1", date.pred_opt().unwrap()).unwrap();
        // At the slot's own time: today's.
        let at = today[1].with_timezone(&Utc);
        assert_eq!(slot_time(&p, 1, at), Some(at));
        // A retry an hour later: still today's.
        assert_eq!(slot_time(&p, 1, at + Duration::hours(1)), Some(at));
        // Just after local midnight, today's slots are ahead: yesterday's.
        let after_midnight = chrono::TimeZone::from_local_datetime(&tz, &date.and_hms_opt(0, 5, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(slot_time(&p, 2, after_midnight), Some(yesterday[2].with_timezone(&Utc)));
        // No such slot.
        assert_eq!(slot_time(&p, 9, at), None);
    }

    #[test]
    fn a_persona_without_a_valid_schedule_has_no_slots() {
        let mut p = persona();
        p.spec = PersonaSpec { ..p.spec.clone() };
        p.spec.check_ins.time_zone = "Mars/Olympus".into();
        assert_eq!(slot_time(&p, 0, Utc::now()), None);
    }
}
