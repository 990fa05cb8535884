//! A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the `llm_*` and `engine_*`
//! tests. It speaks the real wire format (`POST /v1/chat/completions`, `chat.completion` bodies,
//! OpenAI error objects) and records every request body as received.

#![allow(dead_code)] // each test binary uses a different part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake answers to one request.
pub enum Reply {
    /// 200 with a `chat.completion` whose message content is this text.
    Content(String),
    /// 200 with a `chat.completion` asking for these tool calls: (id, function name, arguments JSON).
    ToolCalls(Vec<(String, String, String)>),
    /// This status with an OpenAI error object (or the raw body for 5xx).
    Status(u16, String),
    /// 200 with this raw body.
    Raw(String),
    /// Wait, then answer.
    After(Duration, Box<Reply>),
}

type Script = dyn Fn(&Value, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct AppState {
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<Seen>>>,
    model: String,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: String,
    pub json: Value,
    pub authorization: Option<String>,
}

pub struct FakeLlm {
    /// Base URL with `/v1`, as `LlmConfig::new` takes it.
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeLlm {
    /// Serve `script(request_json, index)` for every request; completions report `model`.
    pub async fn start(model: &str, script: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> FakeLlm {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = AppState { script: Arc::new(script), seen: Arc::clone(&seen), model: model.to_string() };
        let app = Router::new().route("/v1/chat/completions", post(handle)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake LLM server");
        });
        FakeLlm { base_url: format!("http://{addr}/v1"), seen }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let index = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            body: text,
            json: json.clone(),
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
        });
        seen.len() - 1
    };
    let mut reply = (state.script)(&json, index);
    loop {
        match reply {
            Reply::After(delay, next) => {
                tokio::time::sleep(delay).await;
                reply = *next;
            }
            Reply::Content(content) => {
                return axum::Json(completion(&state.model, json!({"role": "assistant", "content": content})))
                    .into_response();
            }
            Reply::ToolCalls(calls) => {
                let calls: Vec<Value> = calls
                    .into_iter()
                    .map(|(id, name, arguments)| {
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                let mut body =
                    completion(&state.model, json!({"role": "assistant", "content": null, "tool_calls": calls}));
                body["choices"][0]["finish_reason"] = json!("tool_calls");
                return axum::Json(body).into_response();
            }
            Reply::Status(code, message) => {
                let status = StatusCode::from_u16(code).unwrap();
                let body = if status.is_server_error() {
                    message
                } else {
                    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
                        .to_string()
                };
                let mut response = (status, [("content-type", "application/json")], body).into_response();
                if code == 429 {
                    // A long Retry-After must not stretch the caller's time budget.
                    response.headers_mut().insert("retry-after", "30".parse().unwrap());
                }
                return response;
            }
            Reply::Raw(body) => return (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        }
    }
}

/// A `chat.completion` body with one choice.
pub fn completion(model: &str, message: Value) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59},
    })
}

/// Whether a request asked for structured output (an extraction) rather than a reply.
pub fn is_extraction(request: &Value) -> bool {
    request["response_format"]["type"] == "json_schema"
}

/// The text of the last user message of a request.
pub fn last_user_text(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A full check-in JSON as a strict-mode model would send it, with `overrides` applied.
pub fn checkin_json(overrides: Value) -> String {
    let mut base = json!({
        "mood": null, "valence": "unknown", "energy": "unknown", "stress": "unknown",
        "sleep_quality": "unknown", "sleep_hours": null, "hunger": "unknown", "meals": [],
        "water": null, "exercise": "unknown", "activity": null, "intentions": [], "pillars": [],
        "crisis": false, "day_offset": 0, "missing": []
    });
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    base.to_string()
}
