//! The plugins' LLM gateway: `POST /internal/llm/v1/chat/completions`, OpenAI's wire format in and
//! out (non-streaming), so plugins reach a model without holding a key or naming a model.
//!
//! - Authentication: `Authorization: Bearer <token>`, one token per plugin. In the cluster the
//!   tokens are the operator's Secrets `plugin-<name>-gateway` (label
//!   `app.kubernetes.io/component=plugin-gateway-token`, key `token`), listed in the assistant's
//!   namespace and cached ([`KubeTokens`]); in embedded mode they are the data dir's
//!   `plugin-tokens.json` ([`LocalPluginTokens`]).
//! - Reach: mounted on the internal router only (the internal port in the cluster, which the
//!   chart's NetworkPolicy keeps to the namespaces plugins run in; 127.0.0.1 in embedded mode). A
//!   request that came through a proxy (`Forwarded` / `X-Forwarded-For`) is refused, so an Ingress
//!   or a tunnel that exposes the Slack endpoints never exposes the gateway with them.
//! - Model: from the request's task class (`metadata.task`, else `model: "task:<class>"`, see
//!   plugins/README.md) through the active persona's `spec.models`, else the configured default.
//! - Budget: tokens per plugin per day (the active persona's day), checked before each request;
//!   a request's completion is capped to what remains. Spent: 429 with an OpenAI-style error.
//! - Records: every request, answered or refused, in `plugin_llm_requests` (names and counts only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use serde_json::{Value, json};
use tracing::instrument;
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::llm::types::CreateChatCompletionRequest;
use wellbeing_assistant::llm::{LlmError, LlmRouter, LlmTask};
use wellbeing_assistant::persona::PersonaRegistry;
use wellbeing_assistant::plugin_gateway::{
    self as usage, BudgetCheck, Budgets, LocalPluginTokens, RequestOutcome, RequestRecord, TaskClass,
};

use crate::app::Clock;

/// Path of the endpoint, under the base URL plugins get as `WELLBEING_LLM_GATEWAY`.
pub const COMPLETIONS_PATH: &str = "/internal/llm/v1/chat/completions";
/// The base URL plugins are given (`WELLBEING_LLM_GATEWAY`), relative to the assistant's address.
pub const BASE_PATH: &str = "/internal/llm/v1";
/// Label of the operator's per-plugin token Secrets.
pub const TOKEN_SELECTOR: &str = "app.kubernetes.io/component=plugin-gateway-token";
/// Data key of the token in those Secrets.
pub const TOKEN_KEY: &str = "token";
/// A plugin's prompt is a few kilobytes; this bounds what one request costs to parse.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayConfig {
    pub budgets: Budgets,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    #[error("WELLBEING_GATEWAY_DAILY_TOKENS must be a whole number of tokens, got {0:?}")]
    DailyTokens(String),
    #[error("WELLBEING_GATEWAY_BUDGETS is not a list of <plugin>=<tokens>: {0}")]
    Budgets(String),
}

impl GatewayConfig {
    /// `WELLBEING_GATEWAY_DAILY_TOKENS` (default 50,000) and `WELLBEING_GATEWAY_BUDGETS`
    /// (`hydration=20000,sleep-winddown=5000`), read through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<GatewayConfig, GatewayConfigError> {
        let get = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut budgets = Budgets::default();
        if let Some(v) = get("WELLBEING_GATEWAY_DAILY_TOKENS") {
            budgets.default_daily = v.parse().map_err(|_| GatewayConfigError::DailyTokens(v.clone()))?;
        }
        if let Some(v) = get("WELLBEING_GATEWAY_BUDGETS") {
            budgets.per_plugin = Budgets::parse_overrides(&v).map_err(GatewayConfigError::Budgets)?;
        }
        Ok(GatewayConfig { budgets })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("failed to list the plugin token Secrets")]
    List(#[source] kube::Error),
}

/// Which plugin a bearer token belongs to.
#[async_trait]
pub trait PluginTokens: Send + Sync {
    async fn plugin_for(&self, token: &str) -> Result<Option<String>, TokenError>;
}

#[async_trait]
impl PluginTokens for LocalPluginTokens {
    async fn plugin_for(&self, token: &str) -> Result<Option<String>, TokenError> {
        Ok(LocalPluginTokens::plugin_for(self, token))
    }
}

/// The operator's token Secrets in one namespace, listed by label and cached.
pub struct KubeTokens {
    api: kube::Api<Secret>,
    cache: tokio::sync::Mutex<TokenCache>,
    /// How long a listing is trusted for known tokens (a deleted plugin loses access this late).
    ttl: Duration,
    /// An unknown token triggers a fresh listing (a plugin created seconds ago), but not more
    /// often than this, so a caller guessing tokens cannot hammer the API server.
    miss_refresh: Duration,
}

#[derive(Default)]
struct TokenCache {
    /// (plugin, token)
    entries: Vec<(String, String)>,
    listed_at: Option<Instant>,
}

impl KubeTokens {
    pub fn new(client: kube::Client, namespace: &str) -> KubeTokens {
        KubeTokens {
            api: kube::Api::namespaced(client, namespace),
            cache: Default::default(),
            ttl: Duration::from_secs(60),
            miss_refresh: Duration::from_secs(5),
        }
    }

    async fn list(&self) -> Result<Vec<(String, String)>, TokenError> {
        let secrets = self.api.list(&ListParams::default().labels(TOKEN_SELECTOR)).await.map_err(TokenError::List)?;
        Ok(secrets.items.iter().filter_map(token_entry).collect())
    }
}

/// (plugin, token) of one token Secret. The plugin is the Secret's owning Plugin, else its
/// `wellbeing.dev/plugin` label, else the name between `plugin-` and `-gateway`.
pub fn token_entry(secret: &Secret) -> Option<(String, String)> {
    let token = secret.data.as_ref()?.get(TOKEN_KEY).map(|b| String::from_utf8_lossy(&b.0).trim().to_string())?;
    if token.is_empty() {
        return None;
    }
    let meta = &secret.metadata;
    let owner = meta.owner_references.iter().flatten().find(|o| o.kind == "Plugin").map(|o| o.name.clone());
    let label = meta.labels.as_ref().and_then(|l| l.get("wellbeing.dev/plugin")).cloned();
    let from_name = meta
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix("plugin-"))
        .and_then(|n| n.strip_suffix("-gateway"))
        .map(str::to_string);
    Some((owner.or(label).or(from_name)?, token))
}

#[async_trait]
impl PluginTokens for KubeTokens {
    async fn plugin_for(&self, token: &str) -> Result<Option<String>, TokenError> {
        let mut cache = self.cache.lock().await;
        let fresh = cache.listed_at.is_some_and(|t| t.elapsed() < self.ttl);
        let lookup = |c: &TokenCache| usage::find_token(c.entries.iter().map(|(p, t)| (p.as_str(), t.as_str())), token);
        if fresh && let Some(plugin) = lookup(&cache) {
            return Ok(Some(plugin));
        }
        let may_list = !fresh || cache.listed_at.is_none_or(|t| t.elapsed() >= self.miss_refresh);
        if may_list {
            match self.list().await {
                Ok(entries) => {
                    tracing::debug!(tokens = entries.len(), "listed plugin gateway tokens");
                    *cache = TokenCache { entries, listed_at: Some(Instant::now()) };
                }
                // With an earlier listing, known plugins keep working through an API hiccup.
                Err(error) if cache.listed_at.is_some() => {
                    tracing::warn!(error = %error, "failed to refresh plugin gateway tokens; using the cached ones");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(lookup(&cache))
    }
}

/// Everything the handler needs.
pub struct Gateway {
    pub tokens: Arc<dyn PluginTokens>,
    /// Routes of the plugin task classes (`LlmTask::PluginTask`); a class without one (no LLM
    /// configured) gets a 503.
    pub llm: LlmRouter,
    pub personas: PersonaRegistry,
    pub store: Store,
    pub config: GatewayConfig,
    pub clock: Clock,
}

impl Gateway {
    /// A gateway over the engine's store, personas and LLM client.
    pub fn for_engine(engine: &Assistant, tokens: Arc<dyn PluginTokens>, config: GatewayConfig) -> Gateway {
        Gateway {
            tokens,
            llm: engine.llm().clone(),
            personas: engine.personas().clone(),
            store: engine.store().clone(),
            config,
            clock: crate::app::system_clock(),
        }
    }
}

/// The routes `wellbeing webhook` and `wellbeing up` serve: the engine's LLM and store, budgets
/// from `WELLBEING_GATEWAY_*`.
pub fn routes_for(engine: &Assistant, tokens: Arc<dyn PluginTokens>) -> Result<Router, GatewayConfigError> {
    let config = GatewayConfig::from_env(|name| std::env::var(name).ok())?;
    Ok(router(Arc::new(Gateway::for_engine(engine, tokens, config))))
}

/// The gateway's routes, ready to be merged into the internal router.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(COMPLETIONS_PATH, post(chat_completions))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
fn openai_error(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "message": message.into(), "type": kind, "param": null, "code": code } });
    (status, axum::Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Whether a proxy (an Ingress, a tunnel) forwarded the request.
fn proxied(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip"].iter().any(|h| headers.contains_key(*h))
}

/// What the pure part of the handler decided about a request body.
#[derive(Debug)]
pub struct Prepared {
    pub task: TaskClass,
    pub request: CreateChatCompletionRequest,
    /// Characters of message text, for estimating tokens when the upstream reports none.
    pub prompt_chars: usize,
}

/// Why a body was refused (400).
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest {
    pub code: &'static str,
    pub message: String,
}

/// Which request field carries the completion cap upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapField {
    /// `max_tokens`: what vLLM, Ollama and llama.cpp's server understand.
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's, whose reasoning models refuse `max_tokens`.
    MaxCompletionTokens,
}

impl CapField {
    /// The field for an upstream base URL: OpenAI's own API gets `max_completion_tokens`.
    pub fn for_base_url(base_url: &str) -> CapField {
        let host = base_url.split("://").nth(1).unwrap_or(base_url).split(['/', ':']).next().unwrap_or_default();
        if host.eq_ignore_ascii_case("api.openai.com") { CapField::MaxCompletionTokens } else { CapField::MaxTokens }
    }

    fn key(self) -> &'static str {
        match self {
            CapField::MaxTokens => "max_tokens",
            CapField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// Parse a plugin's body and rewrite it for the upstream: the task class read, streaming refused,
/// caller metadata dropped (it is ours, and OpenAI refuses `metadata` without `store`), the model
/// chosen, the completion capped to `max_completion` in the upstream's `field`.
pub fn prepare(
    body: &[u8],
    choose: impl Fn(TaskClass) -> String,
    max_completion: impl Fn(Option<u32>) -> u32,
    field: CapField,
) -> Result<Prepared, BadRequest> {
    let bad = |code, message: String| BadRequest { code, message };
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| bad("invalid_json", format!("the body is not JSON: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(bad("invalid_json", "the body must be a JSON object".into()));
    };
    if object.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(bad(
            "stream_unsupported",
            "streaming is not supported by the wellbeing LLM gateway; send \"stream\": false or leave it out".into(),
        ));
    }
    let metadata_task = object.get("metadata").and_then(|m| m.get("task")).and_then(Value::as_str).map(str::to_string);
    let model = object.get("model").and_then(Value::as_str).map(str::to_string);
    let task =
        usage::task_of(metadata_task.as_deref(), model.as_deref()).map_err(|e| bad("invalid_task", e.to_string()))?;
    for key in ["metadata", "store", "stream", "stream_options"] {
        object.remove(key);
    }
    object.insert("model".into(), Value::String(choose(task)));
    // Whatever the plugin asked for, in either field, becomes one cap in the upstream's field.
    let asked = ["max_tokens", "max_completion_tokens"]
        .into_iter()
        .filter_map(|key| object.remove(key))
        .filter_map(|v| v.as_u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
        .min();
    object.insert(field.key().into(), Value::from(max_completion(asked)));
    let prompt_chars = object
        .get("messages")
        .and_then(Value::as_array)
        .map(|messages| messages.iter().map(|m| text_chars(m.get("content"))).sum())
        .unwrap_or(0);
    let request: CreateChatCompletionRequest = serde_json::from_value(value)
        .map_err(|e| bad("invalid_request", format!("the body is not a chat completion request: {e}")))?;
    if request.messages.is_empty() {
        return Err(bad("invalid_request", "messages must not be empty".into()));
    }
    Ok(Prepared { task, request, prompt_chars })
}

/// Characters of a message's content: a string, or the text parts of a list.
fn text_chars(content: Option<&Value>) -> usize {
    match content {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).map(|s| s.chars().count()).sum()
        }
        _ => 0,
    }
}

/// `POST /internal/llm/v1/chat/completions`
#[instrument(skip_all, fields(plugin = tracing::field::Empty, task = tracing::field::Empty, model = tracing::field::Empty))]
async fn chat_completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if proxied(&headers) {
        tracing::info!("refused a proxied request to the LLM gateway");
        return openai_error(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "not_reachable_here",
            "the LLM gateway serves plugins inside the cluster or on this machine, not through a proxy",
        );
    }
    let Some(token) = bearer(&headers) else {
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "missing_api_key",
            "send the plugin's token as Authorization: Bearer <WELLBEING_PLUGIN_TOKEN>",
        );
    };
    let plugin = match gw.tokens.plugin_for(token).await {
        Ok(Some(plugin)) => plugin,
        Ok(None) => {
            tracing::info!("refused an unknown plugin token");
            return openai_error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "the token is not a plugin's gateway token",
            );
        }
        Err(error) => {
            tracing::error!(error = %error, "failed to check a plugin token");
            return openai_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "tokens_unavailable",
                "the gateway cannot check tokens right now; try again",
            );
        }
    };
    let span = tracing::Span::current();
    span.record("plugin", plugin.as_str());
    let started = Instant::now();
    let now = gw.clock.now();
    let active = gw.personas.active();
    let tz = active.time_zone();
    let mut record = RequestRecord {
        plugin: plugin.clone(),
        task: TaskClass::Chat,
        model: String::new(),
        outcome: RequestOutcome::BadRequest,
        prompt_tokens: 0,
        completion_tokens: 0,
        total_tokens: 0,
        estimated: false,
        duration: Duration::ZERO,
        at: now,
    };

    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return openai_error(rejection.status(), "invalid_request_error", "body_rejected", rejection.body_text());
        }
    };
    let limit = gw.config.budgets.limit_for(&plugin);
    let since = usage::day_start(now, tz);
    let used = match blocking(&gw.store, {
        let plugin = plugin.clone();
        move |store| usage::tokens_used_since(store, &plugin, since)
    })
    .await
    {
        Ok(used) => used,
        Err(error) => {
            tracing::error!(error = %error, "failed to read plugin token usage");
            return openai_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "usage_unavailable", "try again");
        }
    };
    let remaining = match usage::check_budget(used, limit) {
        BudgetCheck::Allowed { remaining } => remaining,
        BudgetCheck::Exhausted { used, limit } => {
            record.outcome = RequestOutcome::OverBudget;
            record.task = prepare_task(&body);
            save(&gw, record).await;
            let resets = usage::next_day_start(now, tz);
            tracing::info!(used, limit, "refused a plugin over its daily token budget");
            let mut response = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "daily_token_budget_exceeded",
                format!(
                    "plugin {plugin} has used its daily LLM budget ({used} of {limit} tokens); it resets at {} ({})",
                    resets.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                    tz.name()
                ),
            );
            let wait = (resets - now).num_seconds().max(1);
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    };

    let prefs = active.spec().models.clone();
    // The class is read leniently first to pick the route (and so the cap field); a body whose
    // class is invalid is refused by `prepare` below, whatever route was picked for it.
    let route = gw.llm.route(LlmTask::PluginTask(prepare_task(&body)), &prefs);
    let field = route.as_ref().map_or(CapField::MaxTokens, |r| CapField::for_base_url(r.base_url()));
    let route_cap = route.as_ref().and_then(|r| r.max_completion_tokens());
    let prepared = match prepare(
        &body,
        |task| gw.llm.route(LlmTask::PluginTask(task), &prefs).map(|r| r.model().to_string()).unwrap_or_default(),
        |asked| {
            let asked = match (asked, route_cap) {
                (Some(a), Some(cap)) => Some(a.min(cap)),
                (a, cap) => a.or(cap),
            };
            usage::cap_completion(asked, remaining)
        },
        field,
    ) {
        Ok(p) => p,
        Err(bad) => {
            record.task = prepare_task(&body);
            save(&gw, record).await;
            return openai_error(StatusCode::BAD_REQUEST, "invalid_request_error", bad.code, bad.message);
        }
    };
    record.task = prepared.task;
    record.model = prepared.request.model.clone();
    span.record("task", prepared.task.as_str());
    span.record("model", record.model.as_str());

    let Some(route) = route else {
        record.outcome = RequestOutcome::NoLlm;
        save(&gw, record).await;
        return openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_llm",
            "the assistant has no LLM configured (WELLBEING_LLM_BASE_URL)",
        );
    };
    let result = route.client.create(prepared.request).await;
    record.duration = started.elapsed();
    match result {
        Ok(response) => {
            match &response.usage {
                Some(u) => {
                    record.prompt_tokens = u.prompt_tokens;
                    record.completion_tokens = u.completion_tokens;
                    record.total_tokens = u.total_tokens;
                }
                None => {
                    let completion: usize = response
                        .choices
                        .iter()
                        .map(|c| c.message.content.as_deref().map_or(0, |t| t.chars().count()))
                        .sum();
                    record.prompt_tokens = usage::estimate_tokens(prepared.prompt_chars);
                    record.completion_tokens = usage::estimate_tokens(completion);
                    record.total_tokens = record.prompt_tokens.saturating_add(record.completion_tokens);
                    record.estimated = true;
                }
            }
            record.outcome = RequestOutcome::Ok;
            let tokens = record.total_tokens;
            save(&gw, record).await;
            tracing::info!(tokens, duration_ms = started.elapsed().as_millis() as u64, "plugin LLM request answered");
            match serde_json::to_value(&response) {
                Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
                Err(error) => {
                    tracing::error!(error = %error, "failed to encode the completion");
                    openai_error(StatusCode::BAD_GATEWAY, "server_error", "encode", "failed to encode the completion")
                }
            }
        }
        Err(error) => {
            record.outcome = RequestOutcome::UpstreamError;
            save(&gw, record).await;
            tracing::warn!(error = %error, label = error.label(), "plugin LLM request failed upstream");
            let status = if matches!(error, LlmError::Timeout(_)) {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            openai_error(
                status,
                "server_error",
                error.label(),
                format!("failed to get a completion: {}", error.label()),
            )
        }
    }
}

/// The task class a refused body asked for, for the record (chat when it cannot be told).
fn prepare_task(body: &[u8]) -> TaskClass {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let task = value.get("metadata").and_then(|m| m.get("task")).and_then(Value::as_str);
    usage::task_of(task, value.get("model").and_then(Value::as_str)).unwrap_or(TaskClass::Chat)
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, wellbeing_assistant::StoreError> + Send + 'static,
) -> Result<T, wellbeing_assistant::StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store)).await.unwrap_or_else(|e| {
        Err(wellbeing_assistant::StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(e.into())))
    })
}

async fn save(gw: &Gateway, record: RequestRecord) {
    if let Err(error) = blocking(&gw.store, move |store| usage::record_request(store, &record)).await {
        tracing::error!(error = %error, "failed to record a plugin LLM request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn choose(task: TaskClass) -> String {
        format!("model-for-{}", task.as_str())
    }

    #[test]
    fn prepare_rewrites_the_plugin_body_for_the_upstream() {
        let body = br#"{"model": "task:summary", "messages": [{"role": "user", "content": "sum up my week"}],
            "metadata": {"task": "summary", "plugin": "weekly"}, "max_tokens": 900, "store": true}"#;
        let p = prepare(body, choose, |asked| asked.unwrap_or(5000).min(300), CapField::MaxTokens).unwrap();
        assert_eq!(p.task, TaskClass::Summary);
        assert_eq!(p.request.model, "model-for-summary");
        let sent = serde_json::to_value(&p.request).unwrap();
        assert_eq!(sent["max_tokens"], 300, "capped to what the budget leaves");
        assert!(p.request.metadata.is_none(), "caller metadata is not forwarded");
        assert_eq!(p.request.store, None);
        assert_eq!(p.prompt_chars, "sum up my week".len());
        assert!(sent.get("metadata").is_none(), "{sent}");

        let body =
            br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 10}"#;
        let p = prepare(body, choose, |asked| asked.unwrap_or(99), CapField::MaxTokens).unwrap();
        assert_eq!(p.task, TaskClass::Chat, "a real model name never picks the model");
        assert_eq!(p.request.model, "model-for-chat");
        let sent = serde_json::to_value(&p.request).unwrap();
        assert_eq!(sent["max_tokens"], 10, "moved to the field the upstream understands");
        assert!(sent.get("max_completion_tokens").is_none());

        // OpenAI gets max_completion_tokens (its reasoning models refuse max_tokens).
        let body = br#"{"model": "task:chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 40}"#;
        let p = prepare(body, choose, |asked| asked.unwrap_or(99), CapField::MaxCompletionTokens).unwrap();
        assert_eq!(p.request.max_completion_tokens, Some(40));
        assert!(serde_json::to_value(&p.request).unwrap().get("max_tokens").is_none());
        let p = prepare(&body[..], choose, |asked| asked.map_or(7, |a| a.min(7)), CapField::MaxCompletionTokens);
        assert_eq!(p.unwrap().request.max_completion_tokens, Some(7), "capped to the budget");
        assert_eq!(CapField::for_base_url("https://api.openai.com/v1"), CapField::MaxCompletionTokens);
        assert_eq!(CapField::for_base_url("http://127.0.0.1:11434/v1"), CapField::MaxTokens);
        assert_eq!(CapField::for_base_url("https://gw.example/openai/v1"), CapField::MaxTokens);
    }

    #[test]
    fn prepare_refuses_streaming_unknown_tasks_and_non_requests() {
        let stream = br#"{"model": "task:chat", "stream": true, "messages": [{"role": "user", "content": "x"}]}"#;
        let err = prepare(stream, choose, |_| 1, CapField::MaxTokens).unwrap_err();
        assert_eq!(err.code, "stream_unsupported");
        assert!(err.message.contains("streaming is not supported"), "{}", err.message);
        let err =
            prepare(br#"{"model": "task:poems", "messages": []}"#, choose, |_| 1, CapField::MaxTokens).unwrap_err();
        assert_eq!(err.code, "invalid_task");
        assert!(err.message.contains("poems"));
        assert_eq!(prepare(b"not json", choose, |_| 1, CapField::MaxTokens).unwrap_err().code, "invalid_json");
        assert_eq!(prepare(b"[1]", choose, |_| 1, CapField::MaxTokens).unwrap_err().code, "invalid_json");
        assert_eq!(
            prepare(br#"{"model": "task:chat"}"#, choose, |_| 1, CapField::MaxTokens).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            prepare(br#"{"messages": []}"#, choose, |_| 1, CapField::MaxTokens).unwrap_err().code,
            "invalid_request"
        );
    }

    #[test]
    fn config_reads_budgets_and_names_bad_values() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let c = GatewayConfig::from_env(env(&[])).unwrap();
        assert_eq!(c.budgets.default_daily, usage::DEFAULT_DAILY_TOKENS);
        let c = GatewayConfig::from_env(env(&[
            ("WELLBEING_GATEWAY_DAILY_TOKENS", "1000"),
            ("WELLBEING_GATEWAY_BUDGETS", "hydration=10"),
        ]))
        .unwrap();
        assert_eq!(c.budgets.limit_for("hydration"), 10);
        assert_eq!(c.budgets.limit_for("other"), 1000);
        let err = GatewayConfig::from_env(env(&[("WELLBEING_GATEWAY_DAILY_TOKENS", "lots")])).unwrap_err();
        assert!(err.to_string().contains("WELLBEING_GATEWAY_DAILY_TOKENS"), "{err}");
    }

    #[test]
    fn token_secrets_name_their_plugin() {
        use k8s_openapi::ByteString;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
        let mut s = Secret::default();
        s.metadata.name = Some("plugin-weather-gateway".into());
        s.data = Some(BTreeMap::from([(TOKEN_KEY.to_string(), ByteString(b"abc\n".to_vec()))]));
        assert_eq!(token_entry(&s), Some(("weather".into(), "abc".into())));
        s.metadata.labels = Some(BTreeMap::from([("wellbeing.dev/plugin".to_string(), "weather-label".to_string())]));
        assert_eq!(token_entry(&s).unwrap().0, "weather-label");
        s.metadata.owner_references = Some(vec![OwnerReference {
            kind: "Plugin".into(),
            name: "a-very-long-plugin-name".into(),
            ..Default::default()
        }]);
        assert_eq!(token_entry(&s).unwrap().0, "a-very-long-plugin-name");
        s.data = Some(BTreeMap::from([(TOKEN_KEY.to_string(), ByteString(Vec::new()))]));
        assert_eq!(token_entry(&s), None, "an empty token authenticates nobody");
    }

    #[test]
    fn bearer_and_proxy_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  tok "));
        assert_eq!(bearer(&h), Some("tok"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic tok"));
        assert_eq!(bearer(&h), None);
        assert!(!proxied(&h));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert!(proxied(&h));
    }
}
