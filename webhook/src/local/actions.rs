//! Buttons of proactive messages on the local page (Done / Snooze 30 min / Skip today on reminders
//! and nudges, Yes / Not now / Never on pillar questions) and `POST /api/local/actions`, which
//! handles a click with the same `goals::actions::handle` as Slack's interactivity endpoint.
//!
//! The page sends only the message id and the action id; the value comes from the stored message,
//! so a click can do nothing a button on that message could not. The answer is stored as the
//! message's reply (`event_id` `action:<message id>`): an answered message shows no buttons, as
//! Slack replaces an answered message's buttons with the answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tracing::instrument;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::{GoalsConfig, SendKind, actions};

use super::{LocalAuth, LocalError, LocalMessage, PAGE_SIZE};
use crate::nudges::{self, Button, LearnedGoals};

/// `event_id` prefix of the reply to a click on a message's buttons.
pub const REPLY_PREFIX: &str = "action:";

/// Kinds of message that may carry buttons.
fn may_have_buttons(kind: &str) -> bool {
    [SendKind::Reminder, SendKind::Nudge, SendKind::Pillar].iter().any(|k| k.as_str() == kind)
}

/// The buttons of a stored message, or none once it was answered.
fn stored_buttons(conn: &Connection, message_id: i64) -> rusqlite::Result<Vec<Button>> {
    let row: Option<(Option<String>, bool)> = conn
        .prepare_cached(
            "SELECT i.event_id, EXISTS (SELECT 1 FROM interactions r WHERE r.event_id = ?2 AND r.direction = 'out')
             FROM interactions i WHERE i.id = ?1",
        )?
        .query_row(params![message_id, format!("{REPLY_PREFIX}{message_id}")], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((Some(key), false)) => nudges::parse_key(&key).map(|k| nudges::buttons_for(&k)).unwrap_or_default(),
        _ => Vec::new(),
    })
}

/// Give the assistant's unanswered reminders, nudges and pillar questions their buttons.
pub fn attach_buttons(conn: &Connection, messages: &mut [LocalMessage]) -> rusqlite::Result<()> {
    for m in messages.iter_mut().filter(|m| m.direction == "out" && may_have_buttons(&m.kind)) {
        m.actions = stored_buttons(conn, m.id)?;
    }
    Ok(())
}

/// What the page posts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionRequest {
    pub message_id: i64,
    pub action_id: String,
}

/// The answer: what the click did, and the messages recorded since (the reply among them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionResponse {
    pub reply: String,
    pub messages: Vec<LocalMessage>,
}

/// State of the actions route.
#[derive(Clone)]
pub struct ActionsState {
    pub auth: LocalAuth,
    pub engine: Assistant,
    /// The local user (one per data dir).
    pub user: String,
    pub config: GoalsConfig,
    /// Where "Yes" on a learned pillar creates its Goal (the manifests folder).
    pub learned: Option<Arc<dyn LearnedGoals>>,
    pub clock: crate::app::Clock,
}

/// `POST /api/local/actions`, behind the same token and origin checks as the rest of the API.
pub fn router(state: ActionsState) -> Router {
    Router::new()
        .route("/api/local/actions", post(click))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024))
        .with_state(state)
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Json(serde_json::json!({ "error": why }))).into_response()
}

/// Why a click is refused before anything is changed.
enum Refusal {
    NotFound,
    Answered,
    NoSuchButton,
}

/// The value of the pressed button, read from the stored message.
fn look_up(conn: &Connection, user: &str, req: &ActionRequest) -> rusqlite::Result<Result<String, Refusal>> {
    let kind: Option<String> = conn
        .query_row(
            "SELECT kind FROM interactions WHERE id = ?1 AND user_id = ?2 AND direction = 'out'",
            params![req.message_id, user],
            |r| r.get(0),
        )
        .optional()?;
    if !kind.is_some_and(|k| may_have_buttons(&k)) {
        return Ok(Err(Refusal::NotFound));
    }
    let answered: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM interactions WHERE event_id = ?1 AND direction = 'out')",
        params![format!("{REPLY_PREFIX}{}", req.message_id)],
        |r| r.get(0),
    )?;
    if answered {
        return Ok(Err(Refusal::Answered));
    }
    Ok(stored_buttons(conn, req.message_id)?
        .into_iter()
        .find(|b| b.action_id == req.action_id)
        .map(|b| b.value)
        .ok_or(Refusal::NoSuchButton))
}

/// Store the reply to message `message_id`; returns its id (None when one was stored already).
fn store_reply(
    conn: &Connection,
    user: &str,
    message_id: i64,
    text: &str,
    persona: (&str, &str),
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<i64>> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO interactions (user_id, channel, direction, kind, text, created_at, persona_name,
             persona_version, event_id)
         VALUES (?1, 'local', 'out', 'reply', ?2, ?3, ?4, ?5, ?6)",
        params![
            user,
            text,
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            persona.0,
            persona.1,
            format!("{REPLY_PREFIX}{message_id}")
        ],
    )?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

#[instrument(name = "local_action", skip_all, fields(action_id = tracing::field::Empty))]
async fn click(State(state): State<ActionsState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = state.auth.check_api(&headers) {
        return r.into_response();
    }
    let Ok(req) = serde_json::from_slice::<ActionRequest>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "expected JSON {\"message_id\": N, \"action_id\": \"...\"}");
    };
    tracing::Span::current().record("action_id", req.action_id.as_str());
    let active = state.engine.personas().active();
    let (tz, persona_name, persona_version) = (active.time_zone(), active.name().to_string(), active.version());
    let now = state.clock.now();

    let (store, user, config, r) =
        (state.engine.store().clone(), state.user.clone(), state.config.clone(), req.clone());
    let handled = tokio::task::spawn_blocking(move || -> Result<_, LocalError> {
        let value = match look_up(&store.conn(), &user, &r).map_err(|e| LocalError::backend("read the message", e))? {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let outcome = actions::handle(&store, &config, &r.action_id, &value, &user, tz, now)
            .map_err(|e| LocalError::backend("record the answer", e))?;
        Ok(Ok(outcome))
    })
    .await;
    let outcome = match handled {
        Ok(Ok(Ok(Some(outcome)))) => outcome,
        Ok(Ok(Ok(None))) | Ok(Ok(Err(Refusal::NoSuchButton))) => {
            return refuse(StatusCode::BAD_REQUEST, "that message has no such button");
        }
        Ok(Ok(Err(Refusal::NotFound))) => return refuse(StatusCode::NOT_FOUND, "no such message with buttons"),
        Ok(Ok(Err(Refusal::Answered))) => return refuse(StatusCode::CONFLICT, "that message was already answered"),
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return LocalError::backend("handle the click", e).into_response(),
    };
    let reply = nudges::finish_action(state.learned.as_deref(), outcome).await;

    let (store, user, text) = (state.engine.store().clone(), state.user.clone(), reply.clone());
    let stored = tokio::task::spawn_blocking(move || -> Result<Vec<LocalMessage>, LocalError> {
        let id = store_reply(&store.conn(), &user, req.message_id, &text, (&persona_name, &persona_version), now)
            .map_err(|e| LocalError::backend("store the answer", e))?;
        match id {
            Some(id) => super::engine::history(&store, &user, Some(id - 1), PAGE_SIZE),
            None => Ok(Vec::new()),
        }
    })
    .await;
    match stored {
        Ok(Ok(messages)) => Json(ActionResponse { reply, messages }).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => LocalError::backend("store the answer", e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use chrono::TimeZone as _;
    use http::Request;
    use http_body_util::BodyExt as _;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;
    use wellbeing_assistant::engine::AssistantConfig;
    use wellbeing_assistant::goals::{OutgoingMessage, db, pillars};
    use wellbeing_assistant::message::Action;
    use wellbeing_assistant::persona::PersonaRegistry;
    use wellbeing_assistant::store::Store;
    use wellbeing_crds::manifest::{Resource, parse_documents};

    use super::*;
    use crate::local::LOCAL_USER;
    use crate::nudges::ManifestGoals;

    const TOKEN: &str = "local-test-token";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 8, 11, 0, 0).unwrap()
    }

    fn setup(manifests: Option<&std::path::Path>) -> (Router, Assistant) {
        let engine =
            Assistant::new(Store::in_memory().unwrap(), PersonaRegistry::default(), None, AssistantConfig::default());
        let state = ActionsState {
            auth: LocalAuth::new(TOKEN, "127.0.0.1:8080".parse().unwrap()),
            engine: engine.clone(),
            user: LOCAL_USER.into(),
            config: GoalsConfig::default(),
            learned: manifests.map(|d| Arc::new(ManifestGoals { dir: d.to_path_buf() }) as Arc<dyn LearnedGoals>),
            clock: Arc::new(now),
        };
        (router(state), engine)
    }

    /// A proactive message on the page, as the scheduler delivers it; returns its id.
    fn deliver(engine: &Assistant, kind: SendKind, goal: &str, slot: &str, actions: Vec<Action>) -> i64 {
        let msg = OutgoingMessage {
            user_id: LOCAL_USER.into(),
            kind,
            goal: goal.into(),
            slot: slot.into(),
            text: "a proactive message".into(),
            actions,
        };
        nudges::store_on_page(&engine.store().conn(), &msg, "coach", "1-abc", now()).unwrap().unwrap()
    }

    async fn press(app: &Router, message_id: i64, action_id: &str) -> (StatusCode, Value) {
        let req = Request::post("/api/local/actions")
            .header("host", "127.0.0.1:8080")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({ "message_id": message_id, "action_id": action_id }).to_string()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn page(engine: &Assistant) -> Vec<LocalMessage> {
        super::super::engine::history(engine.store(), LOCAL_USER, None, PAGE_SIZE).unwrap()
    }

    #[tokio::test]
    async fn done_snooze_and_skip_do_what_slack_buttons_do_and_answered_messages_lose_their_buttons() {
        let (app, engine) = setup(None);
        let slot = "2026-05-08T13:00";
        let blocks = actions::goal_actions("meals", slot);
        let done_msg = deliver(&engine, SendKind::Reminder, "meals", slot, blocks.clone());
        let labels: Vec<String> = page(&engine)[0].actions.iter().map(|b| b.label.clone()).collect();
        assert_eq!(labels, ["Done", "Snooze 30 min", "Skip today"]);

        let (status, body) = press(&app, done_msg, actions::GOAL_DONE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["reply"], "Nice one, counted for today.");
        assert_eq!(body["messages"][0]["kind"], "reply");
        assert_eq!(db::load_manual(&engine.store().conn(), LOCAL_USER, None).unwrap().len(), 1);
        assert!(page(&engine)[0].actions.is_empty(), "an answered message shows no buttons");
        assert_eq!(press(&app, done_msg, actions::GOAL_DONE).await.0, StatusCode::CONFLICT);

        let snooze_msg = deliver(&engine, SendKind::Nudge, "meals", "2026-05-08T15:00", {
            actions::goal_actions("meals", "2026-05-08T15:00")
        });
        let (status, body) = press(&app, snooze_msg, actions::GOAL_SNOOZE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // 11:00 UTC is 11:00 in the built-in persona's zone (UTC): back at 11:30.
        assert_eq!(body["reply"], "OK, I'll remind you again at 11:30.");

        let skip_msg = deliver(&engine, SendKind::Reminder, "water", "2026-05-08T16:00", {
            actions::goal_actions("water", "2026-05-08T16:00")
        });
        let (status, _) = press(&app, skip_msg, actions::GOAL_SKIP).await;
        assert_eq!(status, StatusCode::OK);
        let snoozes = db::snoozes_on(&engine.store().conn(), LOCAL_USER, "2026-05-08".parse().unwrap()).unwrap();
        assert!(snoozes.iter().any(|s| s.goal == "meals" && !s.skip));
        assert!(snoozes.iter().any(|s| s.goal == "water" && s.skip));
    }

    #[tokio::test]
    async fn yes_on_a_pillar_writes_a_goal_manifest_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let (app, engine) = setup(Some(dir.path()));
        let suggestion = pillars::Suggestion { pillar: "sleep".into(), mentions: 3, evidence: vec![] };
        let id = pillars::record_question(&engine.store().conn(), LOCAL_USER, &suggestion, now()).unwrap();
        let msg = deliver(&engine, SendKind::Pillar, "sleep", "2026-05-08", actions::pillar_actions(id));
        let labels: Vec<String> = page(&engine)[0].actions.iter().map(|b| b.label.clone()).collect();
        assert_eq!(labels, ["Yes", "Not now", "Never"]);

        let (status, body) = press(&app, msg, actions::PILLAR_YES).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["reply"].as_str().unwrap().contains("learned-sleep"), "{body}");
        let text = std::fs::read_to_string(dir.path().join("learned-sleep.yaml")).unwrap();
        let docs: Vec<Resource> = parse_documents(&text).into_iter().collect::<Result<_, _>>().unwrap();
        match &docs[..] {
            [Resource::Goal(goal)] => {
                assert_eq!(goal.metadata.name.as_deref(), Some("learned-sleep"));
                assert_eq!(goal.spec.pillar, "sleep");
            }
            other => panic!("expected one Goal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn clicks_are_checked_against_the_stored_message() {
        let (app, engine) = setup(None);
        let insight = deliver(&engine, SendKind::Insight, "", "2026-05-04", Vec::new());
        assert_eq!(press(&app, insight, actions::GOAL_DONE).await.0, StatusCode::NOT_FOUND);
        assert_eq!(press(&app, 9999, actions::GOAL_DONE).await.0, StatusCode::NOT_FOUND);
        let reminder = deliver(&engine, SendKind::Reminder, "meals", "s", actions::goal_actions("meals", "s"));
        // A pillar button on a reminder is not one of its buttons.
        assert_eq!(press(&app, reminder, actions::PILLAR_YES).await.0, StatusCode::BAD_REQUEST);
        // Another user's message is not the local user's to answer.
        engine
            .store()
            .conn()
            .execute("UPDATE interactions SET user_id = 'slack:T1:U1' WHERE id = ?1", [reminder])
            .unwrap();
        assert_eq!(press(&app, reminder, actions::GOAL_DONE).await.0, StatusCode::NOT_FOUND);

        let no_token = Request::post("/api/local/actions")
            .header("host", "127.0.0.1:8080")
            .header("content-type", "application/json")
            .body(Body::from(json!({ "message_id": reminder, "action_id": actions::GOAL_DONE }).to_string()))
            .unwrap();
        assert_eq!(app.clone().oneshot(no_token).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert!(db::load_manual(&engine.store().conn(), LOCAL_USER, None).unwrap().is_empty(), "nothing counted");
    }

    #[test]
    fn the_page_renders_the_buttons_as_real_buttons() {
        let mut m = LocalMessage {
            id: 5,
            direction: "out".into(),
            kind: "reminder".into(),
            text: "Eat".into(),
            created_at: String::new(),
            checkin: None,
            actions: Vec::new(),
        };
        m.actions = actions::goal_actions("meals", "s").iter().map(nudges::Button::from).collect();
        let html = super::super::page::render("Sunny", &[m], "t");
        assert!(html.contains(r#"<div class="actions" data-message-id="5">"#), "{html}");
        assert!(html.contains(
            r#"<button type="button" class="action primary" data-action-id="wellbeing.goal.done">Done</button>"#
        ));
        assert!(html.contains(r#"data-action-id="wellbeing.goal.skip">Skip today</button>"#));
    }
}
