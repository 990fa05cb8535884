//! A reusable client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama,
//! llama.cpp server), with a bounded time budget and our own retry policy.
//!
//! Extraction, replies, insight phrasing, the plugin LLM gateway and plugin generation all go
//! through [`LlmClient`], so timeouts, retries and token accounting behave the same everywhere;
//! which endpoint, model and budgets each of them gets is [`router`]'s decision.

use std::sync::Arc;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent,
    ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent, ChatCompletionResponseMessage,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest, CreateChatCompletionResponse,
    FinishReason, ResponseFormat,
};
use serde::Serialize;
use tokio::time::Instant;

/// Re-exported so callers build messages and tools without naming async-openai themselves.
pub use async_openai::types::chat as types;

pub mod router;
pub use router::{LlmRouter, LlmTask, Route, RouterConfig, RouterError};

/// Default time budget of one LLM call, retries included. A chat reply that takes longer than this
/// is worse than the offline fallback, and the worker must not stall on a hung endpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Retries after the first attempt, for 429, 5xx, connection errors and undecodable replies.
pub const DEFAULT_RETRIES: u32 = 2;
/// Model used when a base URL is configured but no model is named.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// Endpoint used when only `WELLBEING_LLM_API_KEY` is set.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// First retry delay; doubled per retry, never beyond the remaining budget.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Connecting to a local or cloud endpoint takes milliseconds; a stuck connect should fail fast
/// enough that a retry still fits inside the budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the LLM lives and how long to wait for it.
///
/// Environment (see [`LlmConfig::from_env`]):
/// - `WELLBEING_LLM_BASE_URL`: OpenAI-compatible base URL including `/v1`, e.g.
///   `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`. A bare host
///   (`http://127.0.0.1:8080`) gets `/v1` appended. Unset: no LLM (offline extraction and
///   template replies), unless `WELLBEING_LLM_API_KEY` is set, which means OpenAI.
/// - `WELLBEING_LLM_MODEL`: model name (default [`DEFAULT_MODEL`]).
/// - `WELLBEING_LLM_API_KEY` (or a file named by `WELLBEING_LLM_API_KEY_FILE`; fallback
///   `OPENAI_API_KEY`): bearer token, if the endpoint wants one.
/// - `WELLBEING_LLM_TIMEOUT_SECS`: time budget of one call, retries included (default 20).
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL with `/v1` and no trailing slash.
    pub base_url: String,
    /// Default model; personas may name other models per task.
    pub model: String,
    /// Bearer token; never logged (the `Debug` impl hides it).
    pub api_key: Option<String>,
    /// Time budget of one call, every retry included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl LlmConfig {
    /// A config for `base_url` (normalized as documented on the type) and `model`, with the
    /// default timeout and retries and no API key.
    pub fn new(base_url: &str, model: &str) -> LlmConfig {
        LlmConfig {
            base_url: normalize_base_url(base_url),
            model: model.to_string(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        }
    }

    /// Read the `WELLBEING_LLM_*` variables. `Ok(None)`: no endpoint configured.
    /// `WELLBEING_LLM_API_KEY_FILE` names a file holding the key (a Kubernetes Secret or the
    /// Secret Manager CSI driver mounted as a file); the variable itself wins when both are set.
    pub fn from_env() -> Result<Option<LlmConfig>, LlmError> {
        LlmConfig::from_lookup(|name| {
            std::env::var(name).ok().or_else(|| {
                let path = std::env::var(format!("{name}_FILE")).ok()?;
                (name == "WELLBEING_LLM_API_KEY").then(|| std::fs::read_to_string(path).ok())?
            })
        })
    }

    /// [`LlmConfig::from_env`] over any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<LlmConfig>, LlmError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let explicit_key = get("WELLBEING_LLM_API_KEY");
        // OPENAI_API_KEY alone does not switch the LLM on: a key lying around in the environment
        // for another tool must not start sending wellbeing data to a cloud endpoint.
        let base_url = match (get("WELLBEING_LLM_BASE_URL"), &explicit_key) {
            (Some(url), _) => url,
            (None, Some(_)) => OPENAI_BASE_URL.to_string(),
            (None, None) => return Ok(None),
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(LlmError::Config(format!(
                "WELLBEING_LLM_BASE_URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        let mut config = LlmConfig::new(&base_url, &get("WELLBEING_LLM_MODEL").unwrap_or(DEFAULT_MODEL.to_string()));
        config.api_key = explicit_key.or_else(|| get("OPENAI_API_KEY"));
        if let Some(secs) = get("WELLBEING_LLM_TIMEOUT_SECS") {
            config.timeout = secs
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    LlmError::Config(format!(
                        "WELLBEING_LLM_TIMEOUT_SECS must be a number of seconds between 0 and 600, got {secs:?}"
                    ))
                })?;
        }
        Ok(Some(config))
    }
}

/// `http://host:port` gets `/v1`; a trailing slash is dropped; any other path is kept as given
/// (some gateways serve the API under their own prefix).
fn normalize_base_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') { trimmed.to_string() } else { format!("{trimmed}/v1") }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    #[error("failed to build the LLM HTTP client")]
    HttpClient(#[source] reqwest::Error),
    #[error("LLM endpoint did not answer within {0:?}")]
    Timeout(Duration),
    #[error("failed to call the LLM endpoint")]
    Api(#[source] OpenAIError),
    #[error("LLM reply had no choices")]
    NoChoice,
}

impl LlmError {
    /// A short, low-cardinality label for logs and metrics (never message content).
    pub fn label(&self) -> &'static str {
        match self {
            LlmError::Config(_) => "config",
            LlmError::HttpClient(_) => "http_client",
            LlmError::Timeout(_) => "timeout",
            LlmError::Api(OpenAIError::ApiError(e)) if e.status_code.as_u16() == 429 => "rate_limited",
            LlmError::Api(OpenAIError::ApiError(e)) if e.status_code.is_server_error() => "server_error",
            LlmError::Api(OpenAIError::ApiError(_)) => "client_error",
            LlmError::Api(OpenAIError::JSONDeserialize(..)) => "bad_response",
            LlmError::Api(_) => "transport",
            LlmError::NoChoice => "no_choice",
        }
    }
}

/// Whether another attempt may succeed: rate limits, server errors, transport failures and
/// undecodable bodies (a proxy's HTML error page). 4xx other than 429 are our own mistake.
fn retryable(error: &OpenAIError) -> bool {
    match error {
        OpenAIError::ApiError(e) => {
            let status = e.status_code.as_u16();
            status == 429 && e.api_error.r#type.as_deref() != Some("insufficient_quota") || status >= 500
        }
        OpenAIError::Reqwest(_) | OpenAIError::JSONDeserialize(..) => true,
        _ => false,
    }
}

/// Token usage of one call (all attempts that returned a body are counted once: only the
/// successful attempt reports usage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// One chat-completion request in the shape the rest of the assistant needs.
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    /// Model; `None` uses the configured default.
    pub model: Option<String>,
    pub messages: Vec<ChatCompletionRequestMessage>,
    /// OpenAI tool definitions (e.g. from the plugin pool); empty: no tools offered.
    pub tools: Vec<ChatCompletionTools>,
    pub response_format: Option<ResponseFormat>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// `None`: the endpoint's default (`auto` with tools).
    pub tool_choice: Option<ChatCompletionToolChoiceOption>,
}

impl ChatRequest {
    /// A system prompt plus one user message.
    pub fn system_user(system: &str, user: &str) -> ChatRequest {
        ChatRequest { messages: vec![system_message(system), user_message(user)], ..Default::default() }
    }
}

/// The first choice of a completion plus what it cost.
#[derive(Clone, Debug)]
pub struct ChatCompletion {
    pub message: ChatCompletionResponseMessage,
    pub finish_reason: Option<FinishReason>,
    /// Model as reported by the endpoint (may be more specific than the one asked for).
    pub model: String,
    pub usage: Usage,
    /// Attempts made, 1 when the first one succeeded.
    pub attempts: u32,
}

impl ChatCompletion {
    /// The text content, trimmed; `None` when the model sent only tool calls or a refusal.
    pub fn text(&self) -> Option<&str> {
        self.message.content.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
}

/// A system message.
pub fn system_message(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
        content: ChatCompletionRequestSystemMessageContent::Text(text.to_string()),
        name: None,
    })
}

/// A user message.
pub fn user_message(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: ChatCompletionRequestUserMessageContent::Text(text.to_string()),
        name: None,
    })
}

/// The HTTP client LLM calls use (one per process is enough; several endpoints share it).
pub fn http_client() -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).build().map_err(LlmError::HttpClient)
}

/// A cheap-to-clone client for one endpoint.
#[derive(Clone)]
pub struct LlmClient {
    client: async_openai::Client<OpenAIConfig>,
    config: Arc<LlmConfig>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient").field("config", &self.config).finish()
    }
}

impl LlmClient {
    /// A client with its own pooled HTTP client.
    pub fn new(config: LlmConfig) -> Result<LlmClient, LlmError> {
        Ok(LlmClient::with_http_client(config, http_client()?))
    }

    /// A client over a caller's pooled HTTP client.
    pub fn with_http_client(config: LlmConfig, http: reqwest::Client) -> LlmClient {
        // The config is built explicitly so OPENAI_* variables never leak in. An empty key would
        // send "Authorization: Bearer " which some servers reject, so local endpoints without a
        // key get a harmless placeholder that they ignore.
        let openai = OpenAIConfig::new()
            .with_api_base(config.base_url.clone())
            .with_api_key(config.api_key.clone().unwrap_or_else(|| "none".to_string()));
        // async-openai's default executor retries 429/5xx/connect errors 3 times on its own,
        // honouring Retry-After without a cap. Serving requests through the bare ReqwestService
        // switches that off, so `create` alone decides retries inside one time budget.
        let client = async_openai::Client::with_config(openai)
            .with_http_client(http.clone())
            .with_http_service(ReqwestService::new(http));
        LlmClient { client, config: Arc::new(config) }
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// The same endpoint and connection pool with another default model and time budget (a
    /// route's); the inner client is shared, so this is cheap.
    pub fn with_defaults(&self, model: &str, timeout: Duration) -> LlmClient {
        if self.config.model == model && self.config.timeout == timeout {
            return self.clone();
        }
        let config = LlmConfig { model: model.to_string(), timeout, ..(*self.config).clone() };
        LlmClient { client: self.client.clone(), config: Arc::new(config) }
    }

    /// The configured default model.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Send one chat completion, retrying retryable failures, all within `config.timeout`.
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatCompletion, LlmError> {
        let ChatRequest { model, messages, tools, response_format, max_completion_tokens, temperature, tool_choice } =
            request;
        let request = CreateChatCompletionRequest {
            model: model.unwrap_or_else(|| self.config.model.clone()),
            messages,
            tools: if tools.is_empty() { None } else { Some(tools) },
            response_format,
            max_completion_tokens,
            temperature,
            tool_choice,
            ..Default::default()
        };
        let (response, attempts) = self.create_counted(request).await?;
        let usage = response
            .usage
            .as_ref()
            .map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
            })
            .unwrap_or_default();
        let choice = response.choices.into_iter().next().ok_or(LlmError::NoChoice)?;
        Ok(ChatCompletion {
            message: choice.message,
            finish_reason: choice.finish_reason,
            model: response.model,
            usage,
            attempts,
        })
    }

    /// Send a complete request as given (used by the plugin LLM gateway, which forwards what a
    /// plugin asked for), with the same retries and time budget as [`LlmClient::chat`].
    pub async fn create(&self, request: CreateChatCompletionRequest) -> Result<CreateChatCompletionResponse, LlmError> {
        self.create_counted(request).await.map(|(response, _)| response)
    }

    async fn create_counted(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<(CreateChatCompletionResponse, u32), LlmError> {
        let budget = self.config.timeout;
        let deadline = Instant::now() + budget;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = tokio::time::timeout(remaining, self.client.chat().create(request.clone())).await;
            let error = match result {
                Ok(Ok(response)) => return Ok((response, attempt)),
                // A hung endpoint has used the whole budget: nothing left to retry with.
                Err(_) => return Err(LlmError::Timeout(budget)),
                Ok(Err(error)) => error,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !retryable(&error) || attempt > self.config.retries || remaining <= backoff {
                return Err(LlmError::Api(error));
            }
            tracing::debug!(attempt, error = %LlmError::Api(error).label(), "retrying LLM call");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_base_url_and_no_explicit_key_means_no_llm() {
        assert!(LlmConfig::from_lookup(lookup(&[])).unwrap().is_none());
        // A stray OpenAI key alone does not send data anywhere.
        assert!(LlmConfig::from_lookup(lookup(&[("OPENAI_API_KEY", "sk-x")])).unwrap().is_none());
    }

    #[test]
    fn env_is_read_and_normalized() {
        let c = LlmConfig::from_lookup(lookup(&[
            ("WELLBEING_LLM_BASE_URL", "http://127.0.0.1:11434/"),
            ("WELLBEING_LLM_MODEL", "llama3.2"),
            ("OPENAI_API_KEY", "fallback-key"),
            ("WELLBEING_LLM_TIMEOUT_SECS", "2.5"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(c.model, "llama3.2");
        assert_eq!(c.api_key.as_deref(), Some("fallback-key"));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.retries, DEFAULT_RETRIES);
        assert!(!format!("{c:?}").contains("fallback-key"), "Debug must not print the key");
    }

    #[test]
    fn explicit_key_alone_means_openai_and_wins_over_fallback() {
        let c = LlmConfig::from_lookup(lookup(&[("WELLBEING_LLM_API_KEY", "k1"), ("OPENAI_API_KEY", "k2")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.base_url, OPENAI_BASE_URL);
        assert_eq!(c.model, DEFAULT_MODEL);
        assert_eq!(c.api_key.as_deref(), Some("k1"));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_name() {
        let err = LlmConfig::from_lookup(lookup(&[
            ("WELLBEING_LLM_BASE_URL", "http://x/v1"),
            ("WELLBEING_LLM_TIMEOUT_SECS", "soon"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("WELLBEING_LLM_TIMEOUT_SECS"), "{err}");
        let err = LlmConfig::from_lookup(lookup(&[("WELLBEING_LLM_BASE_URL", "localhost:8080")])).unwrap_err();
        assert!(err.to_string().contains("WELLBEING_LLM_BASE_URL"), "{err}");
    }

    #[test]
    fn base_url_paths_are_kept() {
        assert_eq!(normalize_base_url("https://gw.example/openai/v1/"), "https://gw.example/openai/v1");
        assert_eq!(normalize_base_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080/v1");
    }
}
