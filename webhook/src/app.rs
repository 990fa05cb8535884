//! The router and its shared state: Slack endpoints, the internal API, health and metrics.
//! `app(state)` is a plain `Router` that other parts (dashboard, local page) `.merge()` into.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;
use tower_http::timeout::TimeoutLayer;
use tracing::instrument;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::GoalsConfig;

use crate::auth::InternalAuth;
use crate::channel::{self, InboundRequest, Received};
use crate::inbox::{CommandCheckIn, InboxWriter, Inserted, NewRow, Payload, ViewCheckIn};
use crate::metrics::Metrics;
use crate::slack::client::SlackClient;
use crate::slack::commands::{self, CommandAction, InteractionAction, SlashCommand};
use crate::slack::events::user_key;
use crate::slack::inbound::SlackEvents;
use crate::slack::outbound::SlackOutbound;
use crate::slack::signature::SigningSecret;
use crate::worker::Worker;
use crate::{health, internal};

/// Slack's payloads are a few kilobytes; a megabyte is generous and bounds what one request costs.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Slack gives up on an answer after 3 s; nothing here should take longer than the LLM-free path,
/// so a request still running after 10 s is stuck and gets a 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// views.open must be called within 3 s of the slash command's trigger.
const VIEWS_OPEN_TIMEOUT: Duration = Duration::from_millis(2500);

/// Unix time now; tests inject a fixed clock to check Slack's published signature example.
pub type Clock = wellbeing_common::SharedClock;

pub fn system_clock() -> Clock {
    wellbeing_common::clock::system()
}

/// Slack-facing settings and client.
pub struct SlackApp {
    pub signing_secret: SigningSecret,
    pub client: SlackClient,
    /// Posts replies, check-in prompts and proactive messages, each at most once.
    pub outbound: Arc<SlackOutbound>,
    /// The bot's own user id (configured, or from auth.test at start-up).
    pub bot_user_id: Option<String>,
}

/// Twilio-facing settings and the SMS adapter, when this process serves SMS.
pub struct SmsApp {
    pub auth_token: crate::sms::signature::AuthToken,
    /// The public URL Twilio signs (`TWILIO_WEBHOOK_URL`); None: the URL this server sees.
    pub webhook_url: Option<String>,
    pub outbound: Arc<crate::sms::outbound::SmsOutbound>,
}

/// Everything the handlers share.
pub struct Services {
    pub engine: Assistant,
    pub inbox: InboxWriter,
    /// Delivers messages with crash-safe bookkeeping (the inbox worker uses the same).
    pub worker: Arc<Worker>,
    pub slack: SlackApp,
    pub sms: Option<SmsApp>,
    /// Who is served: commands and button clicks are admitted here like messages.
    pub people: crate::people::ServedPeople,
    pub metrics: Metrics,
    pub auth: InternalAuth,
    pub clock: Clock,
    pub goals: GoalsConfig,
    /// Where "Yes" on a learned pillar creates its Goal.
    pub learned_goals: Option<Arc<dyn crate::nudges::LearnedGoals>>,
    /// Work that continues after a request was answered (response_url, exports); drained on
    /// shutdown.
    pub tasks: TaskTracker,
    /// False until the persona watch has listed the cluster's Personas (for /readyz).
    pub personas_synced: Arc<AtomicBool>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    pub fn personas_synced(&self) -> bool {
        self.personas_synced.load(Ordering::Relaxed)
    }
}

/// Every route of the assistant service.
pub fn app(state: AppState) -> Router {
    slack_routes(state.clone()).merge(internal_app(state))
}

/// What Slack and Twilio reach (through the user's Ingress): their endpoints and `/healthz`.
pub fn public_app(state: AppState) -> Router {
    slack_routes(state).route("/healthz", get(health::healthz))
}

fn slack_routes(state: AppState) -> Router {
    Router::new()
        .route("/slack/events", post(slack_events))
        .route("/slack/commands", post(slack_commands))
        .route("/slack/interactivity", post(slack_interactivity))
        .route("/sms/twilio", post(crate::sms::inbound::twilio))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT))
        .with_state(state)
}

/// What only the namespace reaches: the internal API, probes and metrics.
pub fn internal_app(state: AppState) -> Router {
    Router::new()
        .route("/internal/checkins", post(internal::checkins))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(DefaultBodyLimit::max(64 * 1024))
        // A check-in posts to Slack (which retries 429s for up to ~30 s) before it answers.
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(60)))
        .with_state(state)
}

/// Why a Slack request was refused before it was looked at.
enum Refused {
    /// The body could not be read (too large: 413).
    Body(StatusCode),
    Signature,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Body(status) => (status, "request body refused").into_response(),
            Refused::Signature => (StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response(),
        }
    }
}

/// The body, or why it could not be read (too large: 413).
fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refused> {
    body.map_err(|rejection| {
        let status = rejection.status();
        state.metrics.event("rejected", if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "body" });
        Refused::Body(status)
    })
}

/// Body read and signature checked (commands and interactivity), or why the request is refused.
fn verified(state: &AppState, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refused> {
    let body = read_body(state, body)?;
    let request = InboundRequest { headers, body: &body, now: state.clock.now() };
    crate::slack::inbound::verify_signature(&state.slack.signing_secret, &request).map_err(|refusal| {
        state.metrics.event("rejected", refusal.reason);
        tracing::info!(reason = refusal.reason, "refused an unsigned or badly signed Slack request");
        Refused::Signature
    })?;
    Ok(body)
}

fn bad_request(state: &AppState, what: &'static str) -> Response {
    state.metrics.event("rejected", what);
    (StatusCode::BAD_REQUEST, what).into_response()
}

fn inbox_failed(state: &AppState, error: &crate::inbox::InboxError) -> Response {
    state.metrics.event("rejected", "inbox");
    tracing::error!(error = %error, "failed to write the inbox; Slack will retry");
    (StatusCode::INTERNAL_SERVER_ERROR, "could not record the event").into_response()
}

/// `POST /slack/events`: verify, classify, commit to the inbox, then acknowledge.
#[instrument(level = "debug", skip_all, fields(event_id, retry = tracing::field::Empty))]
async fn slack_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(&state, body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    if let Some(retry) = headers.get("x-slack-retry-num").and_then(|v| v.to_str().ok()) {
        tracing::Span::current().record("retry", retry);
    }
    let adapter = SlackEvents { secret: &state.slack.signing_secret, bot_user_id: state.slack.bot_user_id.as_deref() };
    let request = InboundRequest { headers: &headers, body: &body, now: state.clock.now() };
    match channel::receive(&adapter, &state.inbox, &state.metrics, request).await {
        Received::Refused(refusal) if refusal.status == StatusCode::UNAUTHORIZED => Refused::Signature.into_response(),
        Received::Refused(refusal) => (refusal.status, refusal.reason).into_response(),
        Received::Answer(answer) => axum::Json(answer).into_response(),
        Received::Ignored(_) => StatusCode::OK.into_response(),
        Received::Stored(rows) => {
            if let Some((event_id, _)) = rows.first() {
                tracing::Span::current().record("event_id", event_id.as_str());
            }
            StatusCode::OK.into_response()
        }
        Received::Failed(_) => {
            // Not acknowledged: Slack retries.
            (StatusCode::INTERNAL_SERVER_ERROR, "could not record the event").into_response()
        }
    }
}

/// `POST /slack/commands`: `/checkin` and `/wellbeing`. Answers at once; slower work goes on in
/// the background (or through the inbox) and reports through `response_url`.
#[instrument(skip_all, fields(command))]
async fn slack_commands(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match verified(&state, &headers, body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Ok(cmd) = serde_urlencoded::from_bytes::<SlashCommand>(&body) else {
        return bad_request(&state, "malformed_form");
    };
    tracing::Span::current().record("command", cmd.command.as_str());
    let user = user_key(&cmd.team_id, &cmd.user_id);
    match commands::parse(&cmd.command, &cmd.text) {
        CommandAction::CheckIn(text) => {
            let row = NewRow {
                event_id: format!("command:{}", cmd.trigger_id),
                user_id: user,
                payload: Payload::SlackCommand(CommandCheckIn {
                    team: cmd.team_id.clone(),
                    user: cmd.user_id.clone(),
                    text,
                    response_url: cmd.response_url.clone(),
                }),
            };
            match state.inbox.insert(row).await {
                Ok(inserted) => {
                    state
                        .metrics
                        .event(if inserted == Inserted::Duplicate { "duplicate" } else { "accepted" }, "commands");
                    ephemeral_response("Got it, logging your check-in…")
                }
                Err(error) => inbox_failed(&state, &error),
            }
        }
        CommandAction::OpenCheckInForm => open_checkin_form(&state, &cmd).await,
        CommandAction::Help => ephemeral_response(&state.engine.help_text()),
        CommandAction::Export => {
            let person = match person_of(&state, &cmd.team_id, &cmd.user_id).await {
                Ok(person) => person,
                Err(refused) => return refused,
            };
            let s = state.clone();
            state.tasks.spawn(async move { export(s, cmd, person).await });
            ephemeral_response("Preparing your export; I'll send you a JSON file in a direct message.")
        }
        CommandAction::Forget => axum::Json(commands::forget_confirmation()).into_response(),
        CommandAction::Pause(arg) => match person_of(&state, &cmd.team_id, &cmd.user_id).await {
            Ok(person) => pause(&state, &person, Some(&arg)).await,
            Err(refused) => refused,
        },
        CommandAction::Resume => match person_of(&state, &cmd.team_id, &cmd.user_id).await {
            Ok(person) => pause(&state, &person, None).await,
            Err(refused) => refused,
        },
        CommandAction::Unknown(word) => ephemeral_response(&format!(
            "I don't know `{}`. Here is what I can do:\n\n{}",
            word.replace('`', "'"),
            state.engine.help_text()
        )),
    }
}

/// The person a Slack user is, or the ephemeral answer for someone not served (or a failed look-up).
async fn person_of(state: &AppState, team: &str, user: &str) -> Result<String, Response> {
    match state.people.admit(wellbeing_assistant::people::Identity::slack(Some(team), user)).await {
        Ok(Some(person)) => Ok(person),
        Ok(None) => {
            tracing::info!("command from someone this installation does not serve: refused");
            Err(ephemeral_response(wellbeing_assistant::people::NOT_SERVED_REPLY))
        }
        Err(error) => {
            tracing::error!(error = %wellbeing_common::error_chain(&error), "failed to tell who sent a command");
            Err(ephemeral_response("Sorry, I couldn't do that right now. Please try again."))
        }
    }
}

fn ephemeral_response(text: &str) -> Response {
    axum::Json(commands::ephemeral(text)).into_response()
}

async fn open_checkin_form(state: &AppState, cmd: &SlashCommand) -> Response {
    let active = state.engine.personas().active();
    let prompt = active.spec().check_ins.prompts.first().cloned().unwrap_or_else(|| "How are you doing?".to_string());
    let view = commands::checkin_view(&active.spec().display_name, &prompt);
    match tokio::time::timeout(VIEWS_OPEN_TIMEOUT, state.slack.client.open_view(&cmd.trigger_id, &view)).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        _ => ephemeral_response("I couldn't open the check-in form. Write `/checkin how you're doing` instead."),
    }
}

/// `/wellbeing pause ARG` (`Some`) or `/wellbeing resume` (`None`).
async fn pause(state: &AppState, user: &str, arg: Option<&str>) -> Response {
    let (store, user, arg) = (state.engine.store().clone(), user.to_string(), arg.map(str::to_string));
    let tz = state.engine.personas().active().time_zone();
    let now = state.clock.now();
    let answer = tokio::task::spawn_blocking(move || match arg {
        Some(arg) => wellbeing_assistant::goals::runner::pause_command(&store, &user, &arg, tz, now),
        None => wellbeing_assistant::goals::runner::resume_command(&store, &user, now),
    })
    .await;
    match answer {
        Ok(Ok(text)) => ephemeral_response(&text),
        Ok(Err(error)) => {
            tracing::error!(error = %error, "failed to store the pause");
            ephemeral_response("Sorry, I couldn't change that right now. Please try again.")
        }
        Err(_) => ephemeral_response("Sorry, I couldn't change that right now. Please try again."),
    }
}

/// `/wellbeing export`: the user's data as a JSON file in their DM.
#[instrument(skip_all)]
async fn export(state: AppState, cmd: SlashCommand, user: String) {
    let engine = state.engine.clone();
    let u = user.clone();
    let data = tokio::task::spawn_blocking(move || engine.export_user(Some(&u))).await;
    let result = match data {
        Ok(Ok(data)) => {
            let bytes = serde_json::to_vec_pretty(&data).unwrap_or_default();
            let name = format!("wellbeing-export-{}.json", state.clock.now().format("%Y-%m-%d"));
            match state.slack.client.open_conversation(&cmd.user_id).await {
                Ok(channel) => state
                    .slack
                    .client
                    .upload_file(
                        &channel,
                        &name,
                        "Your wellbeing data",
                        bytes,
                        "Here is everything I have stored about you.",
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let text = match result {
        Ok(()) => "Your export is in our direct messages.".to_string(),
        Err(error) => {
            tracing::error!(error = %error, "export failed");
            "Sorry, the export failed. Please try again in a few minutes.".to_string()
        }
    };
    if let Err(error) = state.slack.client.respond(&cmd.response_url, &commands::ephemeral(&text)).await {
        tracing::warn!(error = %error, "failed to report the export result");
    }
}

/// `POST /slack/interactivity`: button clicks (forget, goal reminders) and the check-in form.
#[instrument(skip_all, fields(kind))]
async fn slack_interactivity(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match verified(&state, &headers, body) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Form>(&body) else {
        return bad_request(&state, "malformed_form");
    };
    let Ok(interaction) = serde_json::from_str::<commands::Interaction>(&form.payload) else {
        return bad_request(&state, "malformed_json");
    };
    tracing::Span::current().record("kind", interaction.kind.as_str());
    let Some(team) = interaction.team_id().map(str::to_string) else {
        return bad_request(&state, "no_team");
    };
    let user = user_key(&team, &interaction.user.id);
    match commands::interpret(&interaction) {
        InteractionAction::ForgetConfirmed { response_url } => {
            let person = match person_of(&state, &team, &interaction.user.id).await {
                Ok(person) => person,
                Err(_) => {
                    let text = wellbeing_assistant::people::NOT_SERVED_REPLY;
                    respond_later(&state, response_url, commands::replace_original(text));
                    return StatusCode::OK.into_response();
                }
            };
            let engine = state.engine.clone();
            let u = person;
            let forgotten = tokio::task::spawn_blocking(move || engine.forget_user(Some(&u))).await;
            let text = match forgotten {
                Ok(Ok(report)) => {
                    tracing::info!(rows = report.total(), "deleted a user's data on request");
                    "Done. Everything I had stored about you is deleted.".to_string()
                }
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "forget failed");
                    "Sorry, deleting your data failed. Nothing was changed; please try again.".to_string()
                }
                Err(_) => "Sorry, deleting your data failed. Please try again.".to_string(),
            };
            respond_later(&state, response_url, commands::replace_original(&text));
            StatusCode::OK.into_response()
        }
        InteractionAction::ForgetCancelled { response_url } => {
            respond_later(&state, response_url, commands::replace_original("OK, nothing was deleted."));
            StatusCode::OK.into_response()
        }
        InteractionAction::CheckInSubmitted { view_id, text } => {
            if text.is_empty() {
                return axum::Json(json!({
                    "response_action": "errors",
                    "errors": { "checkin": "Tell me a little about how you're doing." }
                }))
                .into_response();
            }
            let row = NewRow {
                event_id: format!("view:{view_id}"),
                user_id: user,
                payload: Payload::SlackView(ViewCheckIn { team, user: interaction.user.id.clone(), text }),
            };
            match state.inbox.insert(row).await {
                Ok(inserted) => {
                    state
                        .metrics
                        .event(if inserted == Inserted::Duplicate { "duplicate" } else { "accepted" }, "views");
                    // An empty 200 closes the modal.
                    StatusCode::OK.into_response()
                }
                Err(error) => inbox_failed(&state, &error),
            }
        }
        InteractionAction::Other(action_id) => {
            if let Ok(person) = person_of(&state, &team, &interaction.user.id).await {
                goal_action(&state, &interaction, &action_id, &person).await;
            }
            StatusCode::OK.into_response()
        }
    }
}

/// Buttons on reminders, nudges and pillar questions belong to the goals module.
async fn goal_action(state: &AppState, interaction: &commands::Interaction, action_id: &str, user: &str) {
    if !wellbeing_assistant::goals::actions::is_ours(action_id) {
        state.metrics.event("ignored", "unknown_action");
        return;
    }
    let value = interaction.actions.first().and_then(|a| a.value.clone()).unwrap_or_default();
    let (store, goals, action, u) =
        (state.engine.store().clone(), state.goals.clone(), action_id.to_string(), user.to_string());
    let tz = state.engine.personas().active().time_zone();
    let now = state.clock.now();
    let handled = tokio::task::spawn_blocking(move || {
        wellbeing_assistant::goals::actions::handle(&store, &goals, &action, &value, &u, tz, now)
    })
    .await;
    let reply = match handled {
        Ok(Ok(Some(outcome))) => crate::nudges::finish_action(state.learned_goals.as_deref(), outcome).await,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            tracing::error!(error = %error, "goal action failed");
            "Sorry, that didn't work. Please try again.".to_string()
        }
        Err(_) => "Sorry, that didn't work. Please try again.".to_string(),
    };
    respond_later(state, interaction.response_url.clone(), commands::replace_original(&reply));
}

/// Post to a `response_url` in the background (tracked, so shutdown waits for it).
fn respond_later(state: &AppState, response_url: Option<String>, message: Value) {
    let Some(url) = response_url else { return };
    let client = state.slack.client.clone();
    state.tasks.spawn(async move {
        if let Err(error) = client.respond(&url, &message).await {
            tracing::warn!(error = %error, "failed to answer through response_url");
        }
    });
}
