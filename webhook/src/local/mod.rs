//! The local channel of `wellbeing up`: a chat page at `/` and the JSON API under `/api/local/`
//! that the page and `wellbeing chat` use.
//!
//! Guard: the API needs the instance's bearer token (in the data dir's instance file, and in the
//! page). The page, which carries the token, is only served when the request's Host is the local
//! address it listens on (so a DNS-rebinding page cannot fetch it) or the request brings the token
//! itself. A request with an `Origin` from anywhere else is refused, so other local web pages can
//! neither read nor post. Browsers cannot send the `Authorization` header cross-origin without a
//! CORS preflight, which this router never approves.

pub mod actions;
pub mod engine;
pub mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tracing::{instrument, warn};
use wellbeing_assistant::checkin::{CheckIn, Exercise, Hunger, Level, MealKind, MealStatus, SleepQuality, Valence};
use wellbeing_assistant::error_chain;

/// The local user's id in the database.
pub const LOCAL_USER: &str = "local:me";
/// The local user's identity on the page: `local:me`.
pub const LOCAL_NAME: &str = "me";

/// Longest message accepted, in characters: a check-in is a few sentences; this bounds what one
/// request can make the extractor and the database do.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Messages the page shows when it loads, and the most one poll returns.
pub const PAGE_SIZE: usize = 200;

/// One line of the conversation, as the page and `wellbeing chat` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalMessage {
    /// The interaction's id: increases with time, used as the poll cursor.
    pub id: i64,
    /// `in` (from the user) or `out` (from the assistant).
    pub direction: String,
    /// message | reply | followup | checkin_prompt | crisis | command, or a proactive message:
    /// nudge | reminder | pillar | followthrough | insight | backoff_notice
    pub kind: String,
    pub text: String,
    pub created_at: String,
    /// The check-in this message produced (set on the user's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkin: Option<StoredCheckIn>,
    /// Buttons of an unanswered reminder, nudge or pillar question (`POST /api/local/actions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<crate::nudges::Button>,
}

/// A stored check-in row, with a readable summary of its known fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCheckIn {
    pub id: i64,
    pub data: CheckIn,
    /// (field, value) pairs of what the check-in says; unknown fields are left out.
    #[serde(default)]
    pub summary: Vec<(String, String)>,
}

impl StoredCheckIn {
    pub fn new(id: i64, data: CheckIn) -> StoredCheckIn {
        let summary = summary(&data).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        StoredCheckIn { id, data, summary }
    }
}

/// The answer to one message from the local user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    /// What the assistant said back (reply, and follow-up question when there is one).
    pub reply: String,
    /// The check-in the message was stored as (merged with the one it follows up, if so).
    pub checkin: Option<StoredCheckIn>,
    /// Every message recorded since the request arrived, the user's own first.
    pub messages: Vec<LocalMessage>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("message is empty")]
    Empty,
    #[error("message is longer than {MAX_MESSAGE_CHARS} characters")]
    TooLong,
    #[error("the assistant is shutting down")]
    ShuttingDown,
    /// Recorded, and still being handled when the request stopped waiting.
    #[error("still working on it: the answer will appear in the conversation")]
    Pending,
    #[error("the message was recorded but could not be handled (the assistant's log says why)")]
    Failed,
    #[error("failed to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl LocalError {
    pub fn backend(action: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> LocalError {
        LocalError::Backend { action, source: Box::new(source) }
    }

    fn status(&self) -> StatusCode {
        match self {
            LocalError::Empty => StatusCode::BAD_REQUEST,
            LocalError::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
            LocalError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            LocalError::Pending => StatusCode::ACCEPTED,
            LocalError::Failed => StatusCode::INTERNAL_SERVER_ERROR,
            LocalError::Backend { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for LocalError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The error chain names the failing step, never the message text.
            warn!(error = %error_chain(&self), "local API request failed");
        }
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// What the local channel needs from the assistant: the engine in `wellbeing up`, fakes in tests.
#[async_trait]
pub trait LocalBackend: Send + Sync + 'static {
    /// Name the assistant speaks under (the active persona's display name).
    fn assistant_name(&self) -> String;
    /// Handle one message from the local user to the end: stored, answered, recorded. `row` is
    /// what the local channel's inbound adapter made of the request; the same idempotency key
    /// sent again returns the first answer and records nothing new.
    async fn send(&self, row: crate::inbox::NewRow) -> Result<SendResult, LocalError>;
    /// Messages with an id above `after`, oldest first; `None`: the newest `limit`, oldest first.
    async fn messages(&self, after: Option<i64>, limit: usize) -> Result<Vec<LocalMessage>, LocalError>;
    /// Delete everything the assistant stores. Returns the number of rows deleted.
    async fn forget_everything(&self) -> Result<u64, LocalError>;
}

/// Who may use the local page and API.
#[derive(Clone)]
pub struct LocalAuth {
    token: Arc<str>,
    hosts: Arc<[String]>,
}

impl LocalAuth {
    /// Accept the `Host` names that reach `listen` from this machine: the address itself and, for
    /// a loopback or unspecified address, `localhost` / `127.0.0.1` / `[::1]` with its port.
    pub fn new(token: impl Into<String>, listen: SocketAddr) -> LocalAuth {
        let port = listen.port();
        let mut hosts = vec![listen.to_string()];
        if listen.ip().is_loopback() || listen.ip().is_unspecified() {
            for h in ["localhost", "127.0.0.1", "[::1]"] {
                hosts.push(format!("{h}:{port}"));
            }
        }
        if port == 80 {
            let bare: Vec<String> = hosts.iter().filter_map(|h| h.strip_suffix(":80").map(str::to_string)).collect();
            hosts.extend(bare);
        }
        hosts.sort();
        hosts.dedup();
        LocalAuth { token: Arc::from(token.into()), hosts: hosts.into() }
    }

    fn token_matches(&self, candidate: &str) -> bool {
        candidate.as_bytes().ct_eq(self.token.as_bytes()).into()
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// An `Origin`, when a browser sends one, must be this server as the browser reached it.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        origin.strip_prefix("http://").is_some_and(|o| o.eq_ignore_ascii_case(host))
    }

    pub(crate) fn check_api(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        if !self.origin_allowed(headers) {
            return Err(Rejection::Forbidden("requests from other origins are not accepted"));
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if bearer.is_empty() || !self.token_matches(bearer) {
            return Err(Rejection::Unauthorized);
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) enum Rejection {
    Unauthorized,
    Forbidden(&'static str),
}

impl Rejection {
    pub(crate) fn refusal(&self) -> crate::channel::Refusal {
        match self {
            Rejection::Unauthorized => crate::channel::Refusal::new(StatusCode::UNAUTHORIZED, "token"),
            Rejection::Forbidden(_) => crate::channel::Refusal::new(StatusCode::FORBIDDEN, "origin"),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({ "error": "a valid bearer token is required (see instance.json in the data dir)" })),
            )
                .into_response(),
            Rejection::Forbidden(why) => (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": why }))).into_response(),
        }
    }
}

/// State of the local routes.
#[derive(Clone)]
pub struct LocalState {
    pub backend: Arc<dyn LocalBackend>,
    pub auth: LocalAuth,
}

/// The page at `/` and the API under `/api/local/`.
pub fn router(state: LocalState) -> Router {
    Router::new()
        .route("/", get(page_handler))
        .route("/api/local/messages", get(list_messages).post(send_message))
        .route("/api/local/forget", post(forget))
        // A message is at most MAX_MESSAGE_CHARS characters of up to 4 bytes, plus JSON framing.
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_CHARS * 4 + 1024))
        .with_state(state)
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
}

#[instrument(name = "local_page", skip_all)]
async fn page_handler(State(state): State<LocalState>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    let token_ok = q.token.as_deref().is_some_and(|t| state.auth.token_matches(t));
    if !(state.auth.host_allowed(&headers) || token_ok) || !state.auth.origin_allowed(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "open the page through the address `wellbeing up` printed (or add ?token=... from instance.json)\n",
        )
            .into_response();
    }
    match state.backend.messages(None, PAGE_SIZE).await {
        Ok(messages) => {
            let html = page::render(&state.backend.assistant_name(), &messages, &state.auth.token);
            // The page embeds the token: never cache it, never let another site frame it.
            (
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::X_FRAME_OPTIONS, "DENY"),
                    (header::CONTENT_SECURITY_POLICY, "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"),
                ],
                Html(html),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct MessagesQuery {
    after: Option<i64>,
}

#[derive(Serialize, Deserialize)]
pub struct MessagesResponse {
    pub messages: Vec<LocalMessage>,
}

#[instrument(name = "local_messages", skip_all, fields(after = q.after))]
async fn list_messages(
    State(state): State<LocalState>,
    headers: HeaderMap,
    Query(q): Query<MessagesQuery>,
) -> Response {
    if let Err(r) = state.auth.check_api(&headers) {
        return r.into_response();
    }
    match state.backend.messages(Some(q.after.unwrap_or(0)), PAGE_SIZE).await {
        Ok(messages) => Json(MessagesResponse { messages }).into_response(),
        Err(e) => e.into_response(),
    }
}

pub use crate::channel::local::SendRequest;

#[instrument(name = "local_send", skip_all)]
async fn send_message(State(state): State<LocalState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    use crate::channel::{InboundAdapter, InboundRequest, Parsed};
    let adapter = crate::channel::local::LocalInbound {
        auth: state.auth.clone(),
        identity: wellbeing_assistant::people::Identity::local(LOCAL_NAME),
        person: LOCAL_USER.to_string(),
    };
    let request = InboundRequest { headers: &headers, body: &body, now: chrono::Utc::now() };
    if let Err(refusal) = adapter.verify(&request) {
        return match refusal.status {
            StatusCode::UNAUTHORIZED => Rejection::Unauthorized.into_response(),
            _ => Rejection::Forbidden("requests from other origins are not accepted").into_response(),
        };
    }
    let row = match adapter.parse(&request) {
        Ok(Parsed::Rows(mut rows)) if rows.len() == 1 => rows.remove(0),
        Ok(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Err(refusal) => return refused(refusal),
    };
    match state.backend.send(row).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A malformed local request, said the way the page shows errors.
fn refused(refusal: crate::channel::Refusal) -> Response {
    let error = match refusal.reason {
        "empty" => LocalError::Empty.to_string(),
        "too_long" => LocalError::TooLong.to_string(),
        "key" => format!(
            "key must be at most {} characters, none of them control characters",
            crate::channel::local::MAX_KEY_CHARS
        ),
        _ => "expected JSON {\"text\": \"...\", \"key\": \"...\"}".to_string(),
    };
    (refusal.status, Json(serde_json::json!({ "error": error }))).into_response()
}

#[derive(Serialize, Deserialize)]
pub struct ForgetRequest {
    /// Must be true: deleting everything is never a default.
    pub confirm: bool,
}

#[derive(Serialize, Deserialize)]
pub struct ForgetResponse {
    pub deleted: u64,
}

#[instrument(name = "local_forget", skip_all)]
async fn forget(State(state): State<LocalState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = state.auth.check_api(&headers) {
        return r.into_response();
    }
    let confirmed = serde_json::from_slice::<ForgetRequest>(&body).is_ok_and(|r| r.confirm);
    if !confirmed {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "send {\"confirm\": true} to delete everything" })),
        )
            .into_response();
    }
    match state.backend.forget_everything().await {
        Ok(deleted) => Json(ForgetResponse { deleted }).into_response(),
        Err(e) => e.into_response(),
    }
}

/// What a check-in says, as (field, value) pairs for people; fields the message did not answer
/// are left out. The page, `wellbeing chat` and `wellbeing checkins` all show this.
pub fn summary(c: &CheckIn) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(mood) = c.mood.as_deref().filter(|m| !m.is_empty()) {
        out.push(("mood", mood.to_string()));
    }
    let valence = match c.valence {
        Valence::Positive => Some("positive"),
        Valence::Neutral => Some("neutral"),
        Valence::Negative => Some("negative"),
        Valence::Unknown => None,
    };
    if let Some(v) = valence {
        out.push(("valence", v.to_string()));
    }
    let level = |l: Level| match l {
        Level::Low => Some("low"),
        Level::Medium => Some("medium"),
        Level::High => Some("high"),
        Level::Unknown => None,
    };
    if let Some(v) = level(c.energy) {
        out.push(("energy", v.to_string()));
    }
    if let Some(v) = level(c.stress) {
        out.push(("stress", v.to_string()));
    }
    let quality = match c.sleep_quality {
        SleepQuality::Good => Some("good"),
        SleepQuality::Average => Some("average"),
        SleepQuality::Poor => Some("poor"),
        SleepQuality::Unknown => None,
    };
    match (quality, c.sleep_hours) {
        (Some(q), Some(h)) => out.push(("sleep", format!("{q}, {h} h"))),
        (Some(q), None) => out.push(("sleep", q.to_string())),
        (None, Some(h)) => out.push(("sleep", format!("{h} h"))),
        (None, None) => {}
    }
    match c.hunger {
        Hunger::Hungry => out.push(("hunger", "hungry".into())),
        Hunger::NotHungry => out.push(("hunger", "not hungry".into())),
        Hunger::Unknown => {}
    }
    if !c.meals.is_empty() {
        let meals: Vec<String> = c
            .meals
            .iter()
            .map(|m| {
                let kind = match m.meal {
                    MealKind::Breakfast => "breakfast",
                    MealKind::Lunch => "lunch",
                    MealKind::Dinner => "dinner",
                    MealKind::Snack => "snack",
                    MealKind::Meal => "a meal",
                };
                let status = match m.status {
                    MealStatus::Eaten => "eaten",
                    MealStatus::Skipped => "skipped",
                };
                format!("{kind} {status}")
            })
            .collect();
        out.push(("meals", meals.join(", ")));
    }
    if let Some(w) = c.water {
        out.push(("water", format!("{w} glasses")));
    }
    let exercise = match c.exercise {
        Exercise::Done => Some("done"),
        Exercise::Planned => Some("planned"),
        Exercise::None => Some("none"),
        Exercise::Unknown => None,
    };
    match (exercise, c.activity.as_deref()) {
        (Some(e), Some(a)) => out.push(("exercise", format!("{e} ({a})"))),
        (Some(e), None) => out.push(("exercise", e.to_string())),
        (None, Some(a)) => out.push(("exercise", a.to_string())),
        (None, None) => {}
    }
    if !c.intentions.is_empty() {
        out.push(("intentions", c.intentions.join("; ")));
    }
    if !c.pillars.is_empty() {
        out.push(("pillars", c.pillars.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")));
    }
    if c.day_offset == -1 {
        out.push(("about", "yesterday".into()));
    }
    if c.crisis {
        out.push(("crisis", "yes: crisis resources were shown".into()));
    }
    if !c.missing.is_empty() {
        out.push(("missing", c.missing.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests;
