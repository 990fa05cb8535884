//! Slack Web API client: the handful of methods the assistant uses, a configurable base URL (tests
//! point it at a local fake), 429 `Retry-After` honoured, `ok: false` mapped to typed errors.
//! The bot token goes only into the Authorization header; it is never logged.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::metrics::Metrics;

pub const DEFAULT_API_BASE: &str = "https://slack.com/api";

/// Slack asks clients to wait `Retry-After` seconds on 429. Waits up to this long are done here;
/// a longer one is handed back to the caller (the worker reschedules the row instead of blocking).
const MAX_INLINE_RETRY_WAIT: Duration = Duration::from_secs(30);
/// How many 429s in a row one call sits through before giving up.
const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// Slack answers within a few seconds; a hung connection must not hold a worker forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The bot token (`xoxb-...`). Debug never prints it.
#[derive(Clone)]
pub struct BotToken(String);

impl BotToken {
    pub fn new(token: impl Into<String>) -> Self {
        BotToken(token.into().trim().to_string())
    }
}

redacted_debug!(BotToken);

/// Error codes of `ok: false` answers that the assistant treats differently; the rest keep their
/// text in `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiErrorCode {
    InvalidAuth,
    NotAuthed,
    TokenRevoked,
    AccountInactive,
    MissingScope,
    ChannelNotFound,
    NotInChannel,
    UserNotFound,
    InvalidTriggerId,
    ExpiredTriggerId,
    Ratelimited,
    InternalError,
    FatalError,
    ServiceUnavailable,
    RequestTimeout,
    Other(String),
}

impl ApiErrorCode {
    pub fn parse(code: &str) -> ApiErrorCode {
        match code {
            "invalid_auth" => ApiErrorCode::InvalidAuth,
            "not_authed" => ApiErrorCode::NotAuthed,
            "token_revoked" => ApiErrorCode::TokenRevoked,
            "account_inactive" => ApiErrorCode::AccountInactive,
            "missing_scope" => ApiErrorCode::MissingScope,
            "channel_not_found" => ApiErrorCode::ChannelNotFound,
            "not_in_channel" => ApiErrorCode::NotInChannel,
            "user_not_found" => ApiErrorCode::UserNotFound,
            "invalid_trigger_id" => ApiErrorCode::InvalidTriggerId,
            "expired_trigger_id" => ApiErrorCode::ExpiredTriggerId,
            "ratelimited" => ApiErrorCode::Ratelimited,
            "internal_error" => ApiErrorCode::InternalError,
            "fatal_error" => ApiErrorCode::FatalError,
            "service_unavailable" => ApiErrorCode::ServiceUnavailable,
            "request_timeout" => ApiErrorCode::RequestTimeout,
            other => ApiErrorCode::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ApiErrorCode::InvalidAuth => "invalid_auth",
            ApiErrorCode::NotAuthed => "not_authed",
            ApiErrorCode::TokenRevoked => "token_revoked",
            ApiErrorCode::AccountInactive => "account_inactive",
            ApiErrorCode::MissingScope => "missing_scope",
            ApiErrorCode::ChannelNotFound => "channel_not_found",
            ApiErrorCode::NotInChannel => "not_in_channel",
            ApiErrorCode::UserNotFound => "user_not_found",
            ApiErrorCode::InvalidTriggerId => "invalid_trigger_id",
            ApiErrorCode::ExpiredTriggerId => "expired_trigger_id",
            ApiErrorCode::Ratelimited => "ratelimited",
            ApiErrorCode::InternalError => "internal_error",
            ApiErrorCode::FatalError => "fatal_error",
            ApiErrorCode::ServiceUnavailable => "service_unavailable",
            ApiErrorCode::RequestTimeout => "request_timeout",
            ApiErrorCode::Other(s) => s,
        }
    }

    /// Slack-side trouble that a later attempt may not meet; auth and argument errors will.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiErrorCode::Ratelimited
                | ApiErrorCode::InternalError
                | ApiErrorCode::FatalError
                | ApiErrorCode::ServiceUnavailable
                | ApiErrorCode::RequestTimeout
        )
    }
}

impl std::fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("failed to call Slack {method}")]
    Http {
        method: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Slack {method} answered HTTP {status}")]
    Status { method: &'static str, status: u16 },
    #[error("Slack {method} is rate limited, retry after {retry_after:?}")]
    RateLimited { method: &'static str, retry_after: Duration },
    #[error("Slack {method} refused the call: {code}")]
    Api { method: &'static str, code: ApiErrorCode },
    #[error("failed to decode the answer of Slack {method}")]
    Decode {
        method: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl SlackError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SlackError::Http { .. } | SlackError::RateLimited { .. } => true,
            SlackError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            SlackError::Api { code, .. } => code.is_transient(),
            SlackError::Decode { .. } => false,
        }
    }

    /// How long Slack asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SlackError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            SlackError::Http { method, .. }
            | SlackError::Status { method, .. }
            | SlackError::RateLimited { method, .. }
            | SlackError::Api { method, .. }
            | SlackError::Decode { method, .. } => method,
        }
    }

    /// Label for the Slack API errors metric.
    pub fn label(&self) -> String {
        match self {
            SlackError::Http { .. } => "http".into(),
            SlackError::Status { status, .. } => format!("status_{status}"),
            SlackError::RateLimited { .. } => "ratelimited".into(),
            SlackError::Api { code, .. } => code.as_str().to_string(),
            SlackError::Decode { .. } => "decode".into(),
        }
    }
}

/// `chat.postMessage` arguments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PostMessage {
    pub channel: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Value>,
    /// Message metadata: lets the assistant find its own message again after a crash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MessageMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageMetadata {
    pub event_type: String,
    pub event_payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthInfo {
    pub user_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
}

/// A message as `conversations.replies` lists it (the parts the assistant reads).
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryMessage {
    pub ts: String,
    #[serde(default)]
    pub metadata: Option<MessageMetadata>,
}

#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    base: String,
    token: BotToken,
    metrics: Metrics,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient").field("base", &self.base).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Ack {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
}

enum Body<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

impl SlackClient {
    pub fn new(base: impl Into<String>, token: BotToken, metrics: Metrics) -> SlackClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("wellbeing/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with a timeout and rustls builds");
        SlackClient { http, base: base.into().trim_end_matches('/').to_string(), token, metrics }
    }

    /// Who the token belongs to; the bot's own user id comes from here.
    pub async fn auth_test(&self) -> Result<AuthInfo, SlackError> {
        self.call("auth.test", Body::Form(&[])).await
    }

    pub async fn post_message(&self, message: &PostMessage) -> Result<Posted, SlackError> {
        let body = serde_json::to_value(message).expect("PostMessage serializes");
        self.call("chat.postMessage", Body::Json(&body)).await
    }

    /// Open (or find) the DM channel with a user.
    pub async fn open_conversation(&self, user: &str) -> Result<String, SlackError> {
        #[derive(Deserialize)]
        struct Opened {
            channel: Channel,
        }
        #[derive(Deserialize)]
        struct Channel {
            id: String,
        }
        let opened: Opened = self.call("conversations.open", Body::Json(&json!({ "users": user }))).await?;
        Ok(opened.channel.id)
    }

    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SlackError> {
        let _: Value = self.call("views.open", Body::Json(&json!({ "trigger_id": trigger_id, "view": view }))).await?;
        Ok(())
    }

    /// The messages of a thread, metadata included.
    pub async fn thread_replies(&self, channel: &str, ts: &str) -> Result<Vec<HistoryMessage>, SlackError> {
        #[derive(Deserialize)]
        struct Replies {
            #[serde(default)]
            messages: Vec<HistoryMessage>,
        }
        let form = [("channel", channel), ("ts", ts), ("include_all_metadata", "true"), ("limit", "200")];
        let replies: Replies = self.call("conversations.replies", Body::Form(&form)).await?;
        Ok(replies.messages)
    }

    /// The channel's latest messages, metadata included (for messages that are not in a thread).
    pub async fn recent_history(&self, channel: &str) -> Result<Vec<HistoryMessage>, SlackError> {
        #[derive(Deserialize)]
        struct History {
            #[serde(default)]
            messages: Vec<HistoryMessage>,
        }
        let form = [("channel", channel), ("include_all_metadata", "true"), ("limit", "100")];
        let history: History = self.call("conversations.history", Body::Form(&form)).await?;
        Ok(history.messages)
    }

    /// Upload a file into a channel with Slack's current three-step flow:
    /// files.getUploadURLExternal, POST the bytes to the returned URL, files.completeUploadExternal.
    pub async fn upload_file(
        &self,
        channel: &str,
        filename: &str,
        title: &str,
        content: Vec<u8>,
        initial_comment: &str,
    ) -> Result<String, SlackError> {
        #[derive(Deserialize)]
        struct UploadUrl {
            upload_url: String,
            file_id: String,
        }
        let length = content.len().to_string();
        let target: UploadUrl =
            self.call("files.getUploadURLExternal", Body::Form(&[("filename", filename), ("length", &length)])).await?;
        const UPLOAD: &str = "files.upload_url";
        let response = self
            .http
            .post(&target.upload_url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(content)
            .send()
            .await
            .map_err(|source| self.fail(SlackError::Http { method: UPLOAD, source }))?;
        if !response.status().is_success() {
            return Err(self.fail(SlackError::Status { method: UPLOAD, status: response.status().as_u16() }));
        }
        let files = json!([{ "id": target.file_id, "title": title }]).to_string();
        let form = [("files", files.as_str()), ("channel_id", channel), ("initial_comment", initial_comment)];
        let _: Value = self.call("files.completeUploadExternal", Body::Form(&form)).await?;
        Ok(target.file_id)
    }

    /// Answer a slash command or interaction later through its `response_url` (no token: the URL
    /// itself is the credential, valid for 30 minutes and five uses).
    pub async fn respond(&self, response_url: &str, message: &Value) -> Result<(), SlackError> {
        const METHOD: &str = "response_url";
        let response = self
            .http
            .post(response_url)
            .json(message)
            .send()
            .await
            .map_err(|source| self.fail(SlackError::Http { method: METHOD, source }))?;
        if !response.status().is_success() {
            return Err(self.fail(SlackError::Status { method: METHOD, status: response.status().as_u16() }));
        }
        Ok(())
    }

    async fn call<T: DeserializeOwned>(&self, method: &'static str, body: Body<'_>) -> Result<T, SlackError> {
        let url = format!("{}/{method}", self.base);
        let mut rate_limited = 0;
        loop {
            let request = self.http.post(&url).bearer_auth(&self.token.0);
            let request = match &body {
                Body::Json(value) => request.json(value),
                Body::Form(form) => request.form(form),
            };
            let response = request.send().await.map_err(|source| self.fail(SlackError::Http { method, source }))?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let retry_after = retry_after(response.headers());
                if rate_limited < MAX_RATE_LIMIT_RETRIES && retry_after <= MAX_INLINE_RETRY_WAIT {
                    rate_limited += 1;
                    tracing::debug!(method, ?retry_after, "Slack rate limit, waiting");
                    tokio::time::sleep(retry_after).await;
                    continue;
                }
                return Err(self.fail(SlackError::RateLimited { method, retry_after }));
            }
            if !status.is_success() {
                return Err(self.fail(SlackError::Status { method, status: status.as_u16() }));
            }
            let bytes = response.bytes().await.map_err(|source| self.fail(SlackError::Http { method, source }))?;
            let ack: Ack =
                serde_json::from_slice(&bytes).map_err(|source| self.fail(SlackError::Decode { method, source }))?;
            if !ack.ok {
                let code = ApiErrorCode::parse(ack.error.as_deref().unwrap_or("unknown_error"));
                return Err(self.fail(SlackError::Api { method, code }));
            }
            return serde_json::from_slice(&bytes).map_err(|source| self.fail(SlackError::Decode { method, source }));
        }
    }

    fn fail(&self, error: SlackError) -> SlackError {
        self.metrics.slack_error(error.method(), &error.label());
        tracing::warn!(method = error.method(), error = %error, "Slack API call failed");
        error
    }
}

/// `Retry-After` in seconds; Slack always sends seconds. Missing or unreadable: one second.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_retryable_and_auth_errors_are_not() {
        let api = |code: &str| SlackError::Api { method: "chat.postMessage", code: ApiErrorCode::parse(code) };
        assert!(api("ratelimited").is_retryable());
        assert!(api("internal_error").is_retryable());
        assert!(!api("invalid_auth").is_retryable());
        assert!(!api("channel_not_found").is_retryable());
        assert_eq!(api("something_new").label(), "something_new");
        assert!(SlackError::Status { method: "x", status: 503 }.is_retryable());
        assert!(!SlackError::Status { method: "x", status: 404 }.is_retryable());
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(7));
    }

    #[test]
    fn debug_hides_the_token() {
        let c = SlackClient::new("http://127.0.0.1:1", BotToken::new("xoxb-secret"), Metrics::new());
        assert!(!format!("{c:?}").contains("xoxb"));
        assert!(!format!("{:?}", BotToken::new("xoxb-secret")).contains("xoxb"));
    }
}
