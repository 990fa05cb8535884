//! Test harness: a fake Slack Web API and a fake OpenAI-compatible LLM on 127.0.0.1, speaking
//! their real wire formats, and the assistant service started on a temporary data dir.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::{Assistant, AssistantConfig};
use wellbeing_assistant::llm::{LlmClient, LlmConfig};
use wellbeing_assistant::persona::PersonaRegistry;
use wellbeing_webhook::app::{Clock, system_clock};
use wellbeing_webhook::auth::{AllowedCallers, DEFAULT_AUDIENCE, InternalAuth, TokenReviewer};
use wellbeing_webhook::config::SlackConfig;
use wellbeing_webhook::server::{Running, ServerConfig, start};
use wellbeing_webhook::slack::client::BotToken;
use wellbeing_webhook::slack::signature::{SigningSecret, sign};
use wellbeing_webhook::worker::WorkerOptions;

pub const SECRET: &str = "test-signing-secret";
pub const BOT_TOKEN: &str = "xoxb-test-token";
pub const BOT_USER: &str = "UBOT";
pub const TEAM: &str = "T1";
pub const INTERNAL_TOKEN: &str = "internal-test-token";

/// One call the fake Slack received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct SlackBehaviour {
    /// chat.postMessage answers HTTP 500 this many more times.
    pub post_failures: AtomicUsize,
    /// chat.postMessage answers 429 with this Retry-After (seconds) once.
    pub rate_limit_once: Mutex<Option<u64>>,
    /// chat.postMessage answers `ok:false` with this error from now on.
    pub post_error: Mutex<Option<String>>,
    /// chat.postMessage never answers; `record_before_hang` says whether Slack "got" the message.
    pub hang_posts: AtomicBool,
    pub record_before_hang: AtomicBool,
}

#[derive(Clone, Default)]
pub struct FakeSlack {
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Posted messages per channel, as conversations.replies/history list them.
    pub messages: Arc<Mutex<Vec<Value>>>,
    pub uploads: Arc<Mutex<Vec<Vec<u8>>>>,
    pub behaviour: Arc<SlackBehaviour>,
    pub addr: Arc<Mutex<Option<SocketAddr>>>,
    ts: Arc<AtomicUsize>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let fake = FakeSlack::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *fake.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let router = Router::new()
            .route("/api/{method}", post(api))
            .route("/upload/{id}", post(upload))
            .route("/respond/{id}", post(respond))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        fake
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }

    pub fn api_base(&self) -> String {
        format!("{}/api", self.base())
    }

    pub fn response_url(&self, id: &str) -> String {
        format!("{}/respond/{id}", self.base())
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.calls.lock().unwrap().iter().filter(|c| c.method == method).cloned().collect()
    }

    /// Wait until `method` was called `n` times (or panic after `timeout`).
    pub async fn wait_for(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls(method);
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{method} called {} times, expected {n}; all calls: {:?}",
                    calls.len(),
                    self.calls.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn next_ts(&self) -> String {
        format!("1800000000.{:06}", self.ts.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Value {
    let json =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json"));
    if json {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else {
        let pairs: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        serde_json::to_value(pairs).unwrap()
    }
}

async fn api(
    State(fake): State<FakeSlack>,
    UrlPath(method): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse_body(&headers, &body);
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    if authorization.as_deref() != Some(&format!("Bearer {BOT_TOKEN}")) {
        return axum::Json(json!({"ok": false, "error": "not_authed"})).into_response();
    }
    let call = Call { method: method.clone(), body: body.clone(), authorization };
    match method.as_str() {
        "auth.test" => {
            fake.calls.lock().unwrap().push(call);
            axum::Json(json!({"ok": true, "user_id": BOT_USER, "team_id": TEAM, "bot_id": "B1"})).into_response()
        }
        "chat.postMessage" => {
            let b = &fake.behaviour;
            if b.post_failures.load(Ordering::SeqCst) > 0 {
                b.post_failures.fetch_sub(1, Ordering::SeqCst);
                fake.calls.lock().unwrap().push(Call { method: "chat.postMessage.failed".into(), ..call });
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            if let Some(secs) = b.rate_limit_once.lock().unwrap().take() {
                fake.calls.lock().unwrap().push(Call { method: "chat.postMessage.ratelimited".into(), ..call });
                return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())]).into_response();
            }
            if let Some(error) = b.post_error.lock().unwrap().clone() {
                fake.calls.lock().unwrap().push(Call { method: "chat.postMessage.refused".into(), ..call });
                return axum::Json(json!({"ok": false, "error": error})).into_response();
            }
            let ts = fake.next_ts();
            let hang = b.hang_posts.load(Ordering::SeqCst);
            if !hang || b.record_before_hang.load(Ordering::SeqCst) {
                let mut message = json!({"ts": ts, "text": body["text"], "channel": body["channel"]});
                if let Some(thread) = body.get("thread_ts") {
                    message["thread_ts"] = thread.clone();
                }
                if let Some(metadata) = body.get("metadata") {
                    message["metadata"] = metadata.clone();
                }
                fake.messages.lock().unwrap().push(message);
                fake.calls.lock().unwrap().push(call);
            }
            if hang {
                std::future::pending::<()>().await;
            }
            axum::Json(json!({"ok": true, "channel": body["channel"], "ts": ts})).into_response()
        }
        "conversations.open" => {
            let user = body["users"].as_str().unwrap_or_default().to_string();
            fake.calls.lock().unwrap().push(call);
            axum::Json(json!({"ok": true, "channel": {"id": format!("D-{user}")}})).into_response()
        }
        "conversations.replies" | "conversations.history" => {
            let channel = body["channel"].as_str().unwrap_or_default().to_string();
            let thread = body.get("ts").and_then(Value::as_str).map(str::to_string);
            fake.calls.lock().unwrap().push(call);
            let messages: Vec<Value> = fake
                .messages
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m["channel"] == channel.as_str())
                .filter(|m| thread.as_ref().is_none_or(|t| m["thread_ts"] == t.as_str() || m["ts"] == t.as_str()))
                .cloned()
                .collect();
            axum::Json(json!({"ok": true, "messages": messages})).into_response()
        }
        "views.open" => {
            fake.calls.lock().unwrap().push(call);
            axum::Json(json!({"ok": true, "view": {"id": "V1"}})).into_response()
        }
        "files.getUploadURLExternal" => {
            fake.calls.lock().unwrap().push(call);
            axum::Json(json!({"ok": true, "upload_url": format!("{}/upload/F1", fake.base()), "file_id": "F1"}))
                .into_response()
        }
        "files.completeUploadExternal" => {
            fake.calls.lock().unwrap().push(call);
            axum::Json(json!({"ok": true, "files": [{"id": "F1"}]})).into_response()
        }
        _ => axum::Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    }
}

async fn upload(State(fake): State<FakeSlack>, body: Bytes) -> StatusCode {
    fake.uploads.lock().unwrap().push(body.to_vec());
    fake.calls.lock().unwrap().push(Call { method: "upload".into(), body: Value::Null, authorization: None });
    StatusCode::OK
}

async fn respond(State(fake): State<FakeSlack>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.calls.lock().unwrap().push(Call { method: format!("respond:{id}"), body, authorization: None });
    StatusCode::OK
}

/// How the fake LLM misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum LlmMode {
    /// Never answers in time.
    Hang,
    /// HTTP 500.
    ServerError,
    /// 200 with a body that is not a chat completion.
    InvalidJson,
}

/// An OpenAI-compatible endpoint that fails in `mode`; counts requests.
pub async fn fake_llm(mode: LlmMode) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let handler = move |_body: Bytes| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            match mode {
                LlmMode::Hang => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
                LlmMode::ServerError => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"error": {"message": "boom", "type": "server_error"}})),
                )
                    .into_response(),
                LlmMode::InvalidJson => {
                    ([("content-type", "application/json")], "{\"id\": \"x\", \"choices\": [{\"message\": ")
                        .into_response()
                }
            }
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/v1/chat/completions", post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/v1"), hits)
}

pub struct Options {
    pub worker: Option<WorkerOptions>,
    pub clock: Clock,
    pub llm: Option<LlmConfig>,
    pub reviewer: Option<Arc<dyn TokenReviewer>>,
    pub shared_token: Option<String>,
    pub checkin_user: Option<String>,
    /// The people served (`WELLBEING_PEOPLE`); empty: the first writer is enrolled.
    pub people: Vec<wellbeing_assistant::people::PersonConfig>,
    /// Twilio (SMS), off by default.
    pub sms: Option<wellbeing_webhook::config::SmsConfig>,
}

/// Slack users of the test workspace as served people, each named by their identity's key the
/// way `SLACK_USER_ID` names its person.
pub fn slack_people(users: &[&str]) -> Vec<wellbeing_assistant::people::PersonConfig> {
    users
        .iter()
        .map(|user| {
            let identity = wellbeing_assistant::people::Identity::slack(Some(TEAM), user);
            wellbeing_assistant::people::PersonConfig { name: identity.key(), identities: vec![identity] }
        })
        .collect()
}

impl Default for Options {
    fn default() -> Self {
        Options {
            worker: Some(fast_worker()),
            clock: system_clock(),
            llm: None,
            reviewer: None,
            shared_token: Some(INTERNAL_TOKEN.into()),
            checkin_user: None,
            people: Vec::new(),
            sms: None,
        }
    }
}

/// Retries in milliseconds so tests do not wait for real backoff.
pub fn fast_worker() -> WorkerOptions {
    WorkerOptions {
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        poll: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerOptions::default()
    }
}

pub fn engine(dir: &Path, llm: Option<LlmConfig>) -> Assistant {
    let store = Store::open_in(dir).unwrap();
    let llm = llm.map(|c| LlmClient::new(c).unwrap());
    Assistant::new(store, PersonaRegistry::default(), llm, AssistantConfig::default())
}

pub async fn start_service(dir: &Path, slack: &FakeSlack, options: Options) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        sms: options.sms,
        slack: SlackConfig {
            signing_secret: SigningSecret::new(SECRET),
            bot_token: BotToken::new(BOT_TOKEN),
            api_base: slack.api_base(),
            bot_user_id: None,
            checkin_user: options.checkin_user,
            team_id: None,
        },
        worker: options.worker,
        auth: InternalAuth::new(options.shared_token, options.reviewer, DEFAULT_AUDIENCE, AllowedCallers::default()),
        goals: Default::default(),
        clock: options.clock,
        personas_synced: Arc::new(AtomicBool::new(true)),
        extra_routes: None,
        learned_goals: None,
        people: options.people,
    };
    start(listener, None, engine(dir, options.llm), config).await.unwrap()
}

pub fn now_ts() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// A signed POST to the service.
pub async fn post_signed(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let ts = now_ts();
    let signature = sign(&SigningSecret::new(SECRET), &ts, body);
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.to_vec());
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

/// A message.im event as Slack sends it.
pub fn dm_event(event_id: &str, user: &str, text: &str, ts: &str) -> Value {
    json!({
        "token": "verification-token-unused",
        "team_id": TEAM,
        "api_app_id": "A1",
        "event": {
            "type": "message", "channel": format!("D-{user}"), "user": user, "text": text,
            "ts": ts, "event_ts": ts, "channel_type": "im", "team": TEAM
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1700000000,
        "authorizations": [{"enterprise_id": null, "team_id": TEAM, "user_id": BOT_USER, "is_bot": true}]
    })
}

pub async fn post_event(addr: SocketAddr, event: &Value) -> reqwest::Response {
    post_signed(addr, "/slack/events", "application/json", event.to_string().as_bytes(), &[]).await
}

pub fn inbox_status(dir: &Path, event_id: &str) -> Option<(String, i64)> {
    let store = Store::open_in(dir).unwrap();
    let conn = store.conn();
    wellbeing_webhook::inbox::status_of(&conn, event_id).unwrap()
}

pub fn count(dir: &Path, sql: &str) -> i64 {
    let store = Store::open_in(dir).unwrap();
    let conn = store.conn();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Wait until the inbox row of `event_id` reaches `status`.
pub async fn wait_status(dir: &Path, event_id: &str, status: &str, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if inbox_status(dir, event_id).is_some_and(|(s, _)| s == status) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("row {event_id} is {:?}, expected {status}", inbox_status(dir, event_id));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio-test-auth-token";
pub const TWILIO_FROM: &str = "+15005550006";

/// One request the fake Twilio received: its form fields and Authorization header.
#[derive(Debug, Clone)]
pub struct TwilioCall {
    pub path: String,
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

/// A fake of Twilio's Messages resource on 127.0.0.1: `POST
/// /2010-04-01/Accounts/{sid}/Messages.json` answers 201 with a message SID, or the errors queued
/// in `failures` (HTTP status, Twilio error code), one per request, first.
#[derive(Clone, Default)]
pub struct FakeTwilio {
    pub calls: Arc<Mutex<Vec<TwilioCall>>>,
    pub failures: Arc<Mutex<Vec<(u16, i64)>>>,
    pub addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let fake = FakeTwilio::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *fake.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let router = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_messages))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        fake
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }

    pub fn calls(&self) -> Vec<TwilioCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Wait until `n` messages were asked for (or panic after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<TwilioCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("Twilio asked {} times, expected {n}: {calls:?}", calls.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The settings of a service that uses this fake (`webhook_url`: TWILIO_WEBHOOK_URL).
    pub fn config(&self, webhook_url: Option<&str>) -> wellbeing_webhook::config::SmsConfig {
        wellbeing_webhook::config::SmsConfig {
            account_sid: TWILIO_SID.into(),
            auth_token: wellbeing_webhook::sms::signature::AuthToken::new(TWILIO_TOKEN),
            sender: wellbeing_webhook::sms::client::Sender::From(TWILIO_FROM.into()),
            webhook_url: webhook_url.map(str::to_string),
            api_base: self.base(),
        }
    }
}

async fn twilio_messages(
    State(fake): State<FakeTwilio>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let n = {
        let mut calls = fake.calls.lock().unwrap();
        calls.push(TwilioCall {
            path: format!("/2010-04-01/Accounts/{sid}/Messages.json"),
            form: form.clone(),
            authorization,
        });
        calls.len()
    };
    let failure = {
        let mut failures = fake.failures.lock().unwrap();
        (!failures.is_empty()).then(|| failures.remove(0))
    };
    if let Some((status, code)) = failure {
        let body = json!({"code": code, "message": "refused by the fake", "more_info": "", "status": status});
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    let body = json!({
        "sid": format!("SM{n:032}"),
        "account_sid": sid,
        "to": form.get("To"),
        "from": form.get("From"),
        "body": form.get("Body"),
        "status": "queued",
        "num_segments": "1",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// Sign `params` as Twilio does for `url` with the test auth token.
pub fn twilio_sign(url: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    wellbeing_webhook::sms::signature::compute(
        &wellbeing_webhook::sms::signature::AuthToken::new(TWILIO_TOKEN),
        url,
        &owned,
    )
}

/// The fields of an inbound text as Twilio's Messaging webhook posts them.
pub fn sms_params<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", TWILIO_FROM),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", TWILIO_SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}

/// POST a text to `/sms/twilio`, signed over `signed_url` (None: unsigned).
pub async fn post_sms(addr: SocketAddr, params: &[(&str, &str)], signed_url: Option<&str>) -> reqwest::Response {
    let body = serde_urlencoded::to_string(params).unwrap();
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/sms/twilio"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(url) = signed_url {
        request = request.header("x-twilio-signature", twilio_sign(url, params));
    }
    request.send().await.unwrap()
}
