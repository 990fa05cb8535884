//! The internal API: `POST /internal/checkins`, called by `wellbeing checkin trigger` from the
//! persona's CronJobs. Sends the persona's check-in prompt to each person (Slack DM, or SMS when
//! the persona speaks by SMS) and records it.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;
use wellbeing_assistant::engine::{Channel, SentPrompt};
use wellbeing_assistant::goals::gate::CheckinDecision;
use wellbeing_assistant::goals::runner::{Context, checkin_gate};
use wellbeing_assistant::people;
use wellbeing_crds::Persona;
use wellbeing_crds::schedule;

use crate::app::AppState;
use crate::sms::outbound::Sent;

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
    /// With several people served: each one's answer (the fields above are the first one's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<CheckinResponse>,
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
    let store = state.engine.store().clone();
    let people = match tokio::task::spawn_blocking(move || people::list(&store.conn())).await {
        Ok(Ok(people)) => people,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to read who is served: {e}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to read who is served: {e}")),
    };
    if people.is_empty() {
        return error(
            StatusCode::CONFLICT,
            "nobody to check in with: name them in WELLBEING_PEOPLE or SLACK_USER_ID, or write to the bot once",
        );
    }
    let mut results = Vec::new();
    for person in people {
        match check_in_person(&state, &active.persona, &person, request.slot).await {
            Ok(result) => results.push(result),
            Err(response) => return response,
        }
    }
    let combined = CheckinResponse::combine(results);
    record_job(&state, &active.persona, request.slot, &combined).await;
    Json(combined).into_response()
}

/// Note the slot's job in the scheduler's record (`scheduler_runs`), beside `wellbeing up`'s
/// and the goals minutes, once every person has been handled. The record is informational here:
/// a retried Job is answered from each person's prompt record, which says more than one row can.
async fn record_job(state: &AppState, persona: &Persona, slot: Option<usize>, combined: &CheckinResponse) {
    let now = state.clock.now();
    let Some(due) = slot.and_then(|i| slot_time(persona, i, now)) else { return };
    let namespace = persona.metadata.namespace.as_deref().unwrap_or("default");
    let key = crate::job_log::checkin_key(&format!("{namespace}/{}", kube::ResourceExt::name_any(persona)), due);
    let outcome = match combined.status.as_str() {
        "sent" => crate::job_log::JobOutcome::Sent,
        "already_sent" => crate::job_log::JobOutcome::AlreadySent,
        _ => crate::job_log::JobOutcome::Skipped,
    };
    let log = crate::job_log::JobLog::new(state.engine.store().clone());
    if let Err(error) = log.record(&key, "checkin", due, outcome, now).await {
        tracing::warn!(error = %crate::nudges::error_chain(&error), "failed to record the check-in job");
    }
}

impl CheckinResponse {
    fn skipped(person: &str, reason: &str) -> CheckinResponse {
        CheckinResponse {
            status: "skipped".into(),
            reason: Some(reason.into()),
            user_id: Some(person.to_string()),
            prompt_id: None,
            channel: None,
            ts: None,
            people: Vec::new(),
        }
    }

    /// One answer for a check-in to every person served: sent when any was sent, then
    /// already_sent, else skipped; the first person's details at the top, everyone's in
    /// `people` when there are several.
    fn combine(mut results: Vec<CheckinResponse>) -> CheckinResponse {
        let rank = |r: &CheckinResponse| match r.status.as_str() {
            "sent" => 0,
            "already_sent" => 1,
            _ => 2,
        };
        let best = results.iter().map(rank).min().unwrap_or(2);
        let mut top = results.first().cloned().unwrap_or_else(|| CheckinResponse::skipped("", "nobody"));
        top.status = ["sent", "already_sent", "skipped"][best].to_string();
        if results.len() > 1 {
            top.people = std::mem::take(&mut results);
        }
        top
    }
}

/// Where one person's check-in prompt goes.
enum Destination {
    /// Their Slack DM (`dm` when it is known already).
    Slack { user: String, dm: Option<String> },
    /// A text to this number: the persona speaks by SMS, Twilio is configured, and the person
    /// has an `sms:` identity.
    Sms { number: String },
}

fn internal_error(what: &str, e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to {what}: {e}"))
}

/// Send the check-in of `slot` to one person, by SMS when that is the persona's channel and the
/// person has a number, else by their Slack DM, unless the gate says skip.
async fn check_in_person(
    state: &AppState,
    persona: &Persona,
    person: &str,
    slot_index: Option<usize>,
) -> Result<CheckinResponse, Response> {
    let now = state.clock.now();
    let slot = slot_index.and_then(|i| slot_time(persona, i, now));
    let by_sms = persona.spec.check_ins.channel == Channel::Sms && state.sms.is_some();
    let (store, p) = (state.engine.store().clone(), person.to_string());
    let found = tokio::task::spawn_blocking(move || -> Result<Option<Destination>, wellbeing_assistant::StoreError> {
        let conn = store.conn();
        if by_sms && let Some((identity, _)) = people::identities_on(&conn, &p, Channel::Sms)?.into_iter().next() {
            return Ok(Some(Destination::Sms { number: identity.address }));
        }
        let slack = people::identities_on(&conn, &p, Channel::Slack)?.into_iter().next();
        Ok(slack.map(|(identity, dm)| Destination::Slack {
            user: identity.slack_user().unwrap_or_default().to_string(),
            dm,
        }))
    })
    .await;
    let destination = match found {
        Ok(Ok(Some(destination))) => destination,
        Ok(Ok(None)) => {
            tracing::info!("check-in skipped: the person has no Slack identity");
            return Ok(CheckinResponse::skipped(person, "no_slack_identity"));
        }
        Ok(Err(e)) => return Err(internal_error("read identities", e)),
        Err(e) => return Err(internal_error("read identities", e)),
    };
    if let (Destination::Sms { number }, Some(sms)) = (&destination, &state.sms) {
        // A number that texted STOP gets nothing, and no prompt is recorded as asked.
        match sms.outbound.opted_out(number).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!("check-in skipped: the person's number texted STOP");
                return Ok(CheckinResponse::skipped(person, "sms_opted_out"));
            }
            Err(e) => return Err(internal_error("read the SMS opt-outs", wellbeing_common::error_chain(&e))),
        }
    }

    // Paused, a quiet day, or backed off after unanswered check-ins: skip (and say so).
    let (store, goals, persona, u) =
        (state.engine.store().clone(), state.goals.clone(), persona.clone(), person.to_string());
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
            return Ok(CheckinResponse::skipped(person, reason.as_str()));
        }
        Ok(Err(e)) => return Err(internal_error("check the schedule", e)),
        Err(e) => return Err(internal_error("check the schedule", e)),
    };

    let channel = match destination {
        Destination::Slack { .. } => Channel::Slack,
        Destination::Sms { .. } => Channel::Sms,
    };
    let (engine, u) = (state.engine.clone(), person.to_string());
    let recorded = tokio::task::spawn_blocking(move || engine.record_checkin_prompt(&u, channel, slot)).await;
    let sent = match recorded {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => return Err(internal_error("record the prompt", e)),
        Err(e) => return Err(internal_error("record the prompt", e)),
    };
    let prompt = sent.prompt().clone();
    if let SentPrompt::AlreadySent(p) = &sent
        && p.delivered()
    {
        return Ok(CheckinResponse {
            status: "already_sent".into(),
            reason: None,
            user_id: Some(person.to_string()),
            prompt_id: Some(p.id),
            channel: p.channel_ref.clone(),
            ts: p.thread_ref.clone(),
            people: Vec::new(),
        });
    }

    let key = format!("checkin:{}", prompt.id);
    let (channel, ts) = match destination {
        Destination::Slack { user, dm } => {
            let channel = match dm {
                Some(dm) => dm,
                None => match state.slack.client.open_conversation(&user).await {
                    Ok(channel) => channel,
                    Err(e) => return Err(error(StatusCode::BAD_GATEWAY, format!("failed to open the DM: {e}"))),
                },
            };
            if let Some(notice) = notice
                && let Err(e) = state.slack.outbound.post_once(&key, 0, person, &channel, None, &notice).await
            {
                return Err(error(StatusCode::BAD_GATEWAY, format!("failed to post the notice: {e}")));
            }
            let ts = match state.slack.outbound.post_once(&key, 1, person, &channel, None, &prompt.text).await {
                Ok(ts) => ts,
                Err(e) => return Err(error(StatusCode::BAD_GATEWAY, format!("failed to post the prompt: {e}"))),
            };
            (channel, ts)
        }
        Destination::Sms { number } => {
            let Some(sms) = &state.sms else { return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "SMS is off")) };
            let failed = |what: &str, e: crate::sms::outbound::SendError| {
                error(
                    StatusCode::BAD_GATEWAY,
                    format!("failed to send the {what}: {}", wellbeing_common::error_chain(&e)),
                )
            };
            if let Some(notice) = notice
                && let Err(e) = sms.outbound.send_once(&key, 0, person, &number, &notice).await
            {
                return Err(failed("notice", e));
            }
            let sid = match sms.outbound.send_once(&key, 1, person, &number, &prompt.text).await {
                Ok(Sent::Sid(sid)) => sid,
                Ok(Sent::Unknown) => String::new(),
                Ok(Sent::OptedOut) => return Ok(CheckinResponse::skipped(person, "sms_opted_out")),
                Err(e) => return Err(failed("prompt", e)),
            };
            ("sms".to_string(), sid)
        }
    };
    let (engine, c, t) = (state.engine.clone(), channel.clone(), ts.clone());
    let marked = tokio::task::spawn_blocking(move || engine.mark_prompt_delivered(prompt.id, Some(c), Some(t))).await;
    if !matches!(marked, Ok(Ok(()))) {
        // Posted but not linked: replies still link by time (the prompt window), so say so and go on.
        tracing::warn!(prompt_id = prompt.id, "failed to record where the prompt was posted");
    }
    tracing::info!(prompt_id = prompt.id, "check-in prompt sent");
    Ok(CheckinResponse {
        status: "sent".into(),
        reason: None,
        user_id: Some(person.to_string()),
        prompt_id: Some(prompt.id),
        channel: Some(channel),
        ts: Some(ts),
        people: Vec::new(),
    })
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
