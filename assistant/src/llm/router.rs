//! One place that says which LLM endpoint, model, completion budget and time budget each task
//! gets. Call sites name their [`LlmTask`] and ask the [`LlmRouter`] for its [`Route`]; none of
//! them picks an endpoint or a model on its own.
//!
//! Only the seam lives here: which route a task takes is read from configuration
//! ([`RouterConfig`], several endpoints and a task → endpoint map), with the active persona's
//! `spec.models` pinning models. Choosing routes by cost or quality is a policy for later.
//!
//! With no configuration file, today's flags and `WELLBEING_LLM_*` variables make a router with one
//! endpoint that every task uses ([`LlmRouter::single`]), so behaviour is what it was.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wellbeing_crds::persona::ModelPreferences;

use super::{DEFAULT_MODEL, DEFAULT_RETRIES, DEFAULT_TIMEOUT, LlmClient, LlmConfig, normalize_base_url};
use crate::plugin_gateway::TaskClass;

/// Name of the endpoint a one-endpoint router (today's flags) calls its only endpoint.
pub const DEFAULT_ENDPOINT: &str = "default";
/// Completion cap of an extraction: the check-in JSON with every field filled stays well below.
pub const EXTRACTION_MAX_TOKENS: u32 = 600;
/// Completion cap of a reply: two or three sentences.
pub const REPLY_MAX_TOKENS: u32 = 250;
/// Completion cap of a reply when the persona asks to conserve tokens.
pub const REPLY_MAX_TOKENS_CONSERVE: u32 = 120;
/// Longest time budget a route may ask for; longer than this a hung endpoint holds a worker.
const MAX_TIMEOUT_SECS: f64 = 600.0;

/// What the assistant asks an LLM for. Plugins' requests through the gateway carry their own
/// task class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LlmTask {
    /// A message turned into a structured check-in.
    Extraction,
    /// A reply in the persona's voice, with the plugin tool loop.
    Reply,
    /// The weekly insight rephrased in the persona's voice.
    Insight,
    /// `wellbeing plugin generate`: writing a plugin module.
    PluginCode,
    /// A plugin's request through the LLM gateway.
    PluginTask(TaskClass),
}

impl LlmTask {
    pub const ALL: [LlmTask; 8] = [
        LlmTask::Extraction,
        LlmTask::Reply,
        LlmTask::Insight,
        LlmTask::PluginCode,
        LlmTask::PluginTask(TaskClass::Chat),
        LlmTask::PluginTask(TaskClass::Extraction),
        LlmTask::PluginTask(TaskClass::Summary),
        LlmTask::PluginTask(TaskClass::Code),
    ];

    /// The configuration key: `extraction`, `reply`, `insight`, `plugin-code`, `plugin:<class>`.
    pub fn key(self) -> String {
        match self {
            LlmTask::Extraction => "extraction".into(),
            LlmTask::Reply => "reply".into(),
            LlmTask::Insight => "insight".into(),
            LlmTask::PluginCode => "plugin-code".into(),
            LlmTask::PluginTask(class) => format!("{PLUGIN_PREFIX}{}", class.as_str()),
        }
    }

    /// The persona's `spec.models` pin for this task. Personas name extraction, reply and code
    /// models; insights and plugin chat or summaries are prose, so they take the reply model.
    fn pinned(self, prefs: &ModelPreferences) -> Option<&str> {
        let pin = match self {
            LlmTask::Extraction | LlmTask::PluginTask(TaskClass::Extraction) => prefs.extraction.as_deref(),
            LlmTask::Reply | LlmTask::Insight | LlmTask::PluginTask(TaskClass::Chat | TaskClass::Summary) => {
                prefs.reply.as_deref()
            }
            LlmTask::PluginCode | LlmTask::PluginTask(TaskClass::Code) => prefs.code.as_deref(),
        };
        pin.map(str::trim).filter(|m| !m.is_empty())
    }

    /// The completion cap when the configuration sets none: what each call site used before the
    /// router. Insights, plugin code and plugin tasks had none (the gateway caps plugins by their
    /// daily token budget).
    fn default_max_tokens(self, prefs: &ModelPreferences) -> Option<u32> {
        match self {
            LlmTask::Extraction => Some(EXTRACTION_MAX_TOKENS),
            LlmTask::Reply if prefs.conserve_tokens => Some(REPLY_MAX_TOKENS_CONSERVE),
            LlmTask::Reply => Some(REPLY_MAX_TOKENS),
            LlmTask::Insight | LlmTask::PluginCode | LlmTask::PluginTask(_) => None,
        }
    }
}

const PLUGIN_PREFIX: &str = "plugin:";
/// A route key for every plugin task class at once (`plugin:<class>` wins over it).
const ANY_PLUGIN_TASK: &str = "plugin";

impl fmt::Display for LlmTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl FromStr for LlmTask {
    type Err = RouterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase();
        LlmTask::ALL.into_iter().find(|t| t.key() == key).ok_or_else(|| RouterError::UnknownTask(s.to_string()))
    }
}

impl TryFrom<String> for LlmTask {
    type Error = RouterError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LlmTask> for String {
    fn from(task: LlmTask) -> String {
        task.key()
    }
}

/// The `--llm-config` file (YAML or JSON): named endpoints, the one tasks use by default, and
/// per-task routes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterConfig {
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// The endpoint of tasks without a route (or whose route names none). May be left out when
    /// there is exactly one endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Keys: `extraction`, `reply`, `insight`, `plugin-code`, `plugin:chat`, `plugin:extraction`,
    /// `plugin:summary`, `plugin:code`, or `plugin` for every plugin task class.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
}

/// One OpenAI-compatible endpoint. The key is named, never written here: a config file is not a
/// secret store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointConfig {
    /// With `/v1`; a bare `http://host:port` gets `/v1` appended.
    pub base_url: String,
    /// The endpoint's default model (default `gpt-4o-mini`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Environment variable holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// File holding the bearer token (a mounted Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Time budget of one call, retries included (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    /// Retries after the first attempt (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// Where one task goes; every field falls back (to the default endpoint, the endpoint's model,
/// the task's usual cap, the endpoint's time budget).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Max completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
}

/// Where an endpoint's bearer token comes from (shown in logs and `up`'s banner; the value never is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    None,
    Env(String),
    File(PathBuf),
    /// Read by the caller before the router existed: today's `WELLBEING_LLM_API_KEY`
    /// (or `_FILE`) or `OPENAI_API_KEY`.
    Legacy,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::None => f.write_str("no key"),
            KeySource::Env(name) => write!(f, "key from ${name}"),
            KeySource::File(path) => write!(f, "key from {}", path.display()),
            KeySource::Legacy => f.write_str("key from WELLBEING_LLM_API_KEY / OPENAI_API_KEY"),
        }
    }
}

/// An endpoint as the pure resolution sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointInfo {
    pub name: String,
    pub base_url: String,
    pub model: String,
    pub key: KeySource,
    pub timeout: Duration,
}

/// What [`RouteTable::resolve`] decides for a task: no I/O, no client.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRoute {
    pub task: LlmTask,
    pub endpoint: EndpointInfo,
    pub model: String,
    /// Max completion tokens; `None`: the endpoint's default.
    pub max_completion_tokens: Option<u32>,
    /// Time budget of one call, retries included.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(
        "unknown LLM task {0:?}; expected one of extraction, reply, insight, plugin-code, plugin, plugin:chat, plugin:extraction, plugin:summary, plugin:code"
    )]
    UnknownTask(String),
    #[error("LLM route {route} names endpoint {endpoint:?}, which is not among the endpoints")]
    UnknownEndpoint { route: String, endpoint: String },
    #[error("the LLM configuration has {0} endpoints and no `default`: name the endpoint tasks without a route use")]
    NoDefault(usize),
    #[error("LLM endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("LLM route {route}: {reason}")]
    Route { route: String, reason: String },
    #[error("failed to read the LLM configuration {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the LLM configuration {} is not valid YAML or JSON", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("LLM endpoint {endpoint}: failed to read its key from {source_name}")]
    Key {
        endpoint: String,
        source_name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("LLM endpoint {endpoint}: ${name} is not set")]
    KeyMissing { endpoint: String, name: String },
}

impl RouterConfig {
    /// Read a YAML or JSON file (JSON is YAML) and check it.
    pub fn from_file(path: &Path) -> Result<RouterConfig, RouterError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RouterError::Read { path: path.to_path_buf(), source })?;
        let config: RouterConfig =
            serde_yaml::from_str(&text).map_err(|source| RouterError::Parse { path: path.to_path_buf(), source })?;
        config.table()?;
        Ok(config)
    }

    /// The checked, pure form: endpoints with their defaults filled, routes keyed by task.
    pub fn table(&self) -> Result<RouteTable, RouterError> {
        let mut endpoints = BTreeMap::new();
        for (name, e) in &self.endpoints {
            let bad = |reason: String| RouterError::Endpoint { endpoint: name.clone(), reason };
            let base_url = e.base_url.trim();
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(bad(format!("baseUrl must start with http:// or https://, got {base_url:?}")));
            }
            let key = match (&e.api_key_env, &e.api_key_file) {
                (Some(_), Some(_)) => return Err(bad("set apiKeyEnv or apiKeyFile, not both".into())),
                (Some(var), None) => KeySource::Env(var.clone()),
                (None, Some(path)) => KeySource::File(path.clone()),
                (None, None) => KeySource::None,
            };
            let timeout = match e.timeout_secs {
                Some(secs) => seconds(secs).map_err(bad)?,
                None => DEFAULT_TIMEOUT,
            };
            let model = e.model.as_deref().map(str::trim).filter(|m| !m.is_empty()).unwrap_or(DEFAULT_MODEL);
            let info = EndpointInfo {
                name: name.clone(),
                base_url: normalize_base_url(base_url),
                model: model.to_string(),
                key,
                timeout,
            };
            endpoints.insert(name.clone(), (info, e.retries.unwrap_or(DEFAULT_RETRIES)));
        }
        let default = match (&self.default, endpoints.len()) {
            (Some(name), _) => Some(name.clone()),
            (None, 0) => None,
            (None, 1) => endpoints.keys().next().cloned(),
            (None, n) => return Err(RouterError::NoDefault(n)),
        };
        if let Some(name) = &default
            && !endpoints.contains_key(name)
        {
            return Err(RouterError::UnknownEndpoint { route: "default".into(), endpoint: name.clone() });
        }
        let mut routes = BTreeMap::new();
        for (key, route) in &self.routes {
            let bad = |reason: String| RouterError::Route { route: key.clone(), reason };
            if let Some(endpoint) = &route.endpoint
                && !endpoints.contains_key(endpoint)
            {
                return Err(RouterError::UnknownEndpoint { route: key.clone(), endpoint: endpoint.clone() });
            }
            if route.endpoint.is_none() && default.is_none() {
                return Err(bad("names no endpoint and there is no default endpoint".into()));
            }
            let timeout = route.timeout_secs.map(seconds).transpose().map_err(bad)?;
            let keys: Vec<RouteKey> = if key.trim().eq_ignore_ascii_case(ANY_PLUGIN_TASK) {
                vec![RouteKey::AnyPlugin]
            } else {
                vec![RouteKey::Task(key.parse()?)]
            };
            if keys == [RouteKey::Task(LlmTask::Extraction)] && route.max_tokens.is_some() {
                // The offline-extractor work owns the extraction request; until it takes its cap
                // from the route, a configured one would be silently ignored.
                return Err(bad(format!(
                    "maxTokens is not supported for extraction yet (it is {EXTRACTION_MAX_TOKENS})"
                )));
            }
            for k in keys {
                routes.insert(
                    k,
                    RouteEntry {
                        endpoint: route.endpoint.clone(),
                        model: route.model.clone(),
                        max_tokens: route.max_tokens,
                        timeout,
                    },
                );
            }
        }
        Ok(RouteTable { endpoints, default, routes })
    }
}

fn seconds(secs: f64) -> Result<Duration, String> {
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("timeoutSecs must be a number of seconds between 0 and {MAX_TIMEOUT_SECS}, got {secs}"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RouteKey {
    Task(LlmTask),
    AnyPlugin,
}

/// One configured route, its endpoint checked to exist.
#[derive(Clone, Debug, PartialEq)]
struct RouteEntry {
    endpoint: Option<String>,
    model: Option<String>,
    max_tokens: Option<u32>,
    timeout: Option<Duration>,
}

/// A checked configuration: what [`LlmRouter`] resolves against, testable without clients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteTable {
    /// With each endpoint's retries (the client needs them; resolution does not).
    endpoints: BTreeMap<String, (EndpointInfo, u32)>,
    default: Option<String>,
    routes: BTreeMap<RouteKey, RouteEntry>,
}

impl RouteTable {
    /// Where `task` goes for a persona with these `spec.models` preferences; `None` when no
    /// endpoint is configured (offline extraction and template replies).
    ///
    /// Endpoint: the task's route, else (plugin tasks) the `plugin` route, else the default.
    /// Model: the persona's pin for the task, else the route's, else the endpoint's. The persona
    /// wins because it is the user's own, most specific choice.
    pub fn resolve(&self, task: LlmTask, prefs: &ModelPreferences) -> Option<ResolvedRoute> {
        let route = self.routes.get(&RouteKey::Task(task)).or_else(|| match task {
            LlmTask::PluginTask(_) => self.routes.get(&RouteKey::AnyPlugin),
            _ => None,
        });
        let endpoint_name = route.and_then(|r| r.endpoint.as_ref()).or(self.default.as_ref())?;
        let (endpoint, _) = self.endpoints.get(endpoint_name)?;
        let model = task
            .pinned(prefs)
            .or_else(|| route.and_then(|r| r.model.as_deref()).map(str::trim).filter(|m| !m.is_empty()))
            .unwrap_or(&endpoint.model)
            .to_string();
        let max_completion_tokens = route.and_then(|r| r.max_tokens).or_else(|| task.default_max_tokens(prefs));
        let timeout = route.and_then(|r| r.timeout).unwrap_or(endpoint.timeout);
        Some(ResolvedRoute { task, endpoint: endpoint.clone(), model, max_completion_tokens, timeout })
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointInfo> {
        self.endpoints.values().map(|(e, _)| e)
    }
}

/// A task's route with a client for it: the client's default model and time budget are the
/// route's, so `client.chat` with `model: None` already does the right thing.
#[derive(Clone, Debug)]
pub struct Route {
    pub resolved: ResolvedRoute,
    pub client: LlmClient,
}

impl Route {
    pub fn model(&self) -> &str {
        &self.resolved.model
    }

    pub fn max_completion_tokens(&self) -> Option<u32> {
        self.resolved.max_completion_tokens
    }

    pub fn base_url(&self) -> &str {
        &self.resolved.endpoint.base_url
    }

    pub fn endpoint(&self) -> &str {
        &self.resolved.endpoint.name
    }
}

/// The routes of every task, with one pooled client per endpoint. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct LlmRouter {
    table: RouteTable,
    clients: BTreeMap<String, LlmClient>,
}

impl LlmRouter {
    /// No endpoint: every task is offline.
    pub fn offline() -> LlmRouter {
        LlmRouter::default()
    }

    /// Today's one-endpoint setup (`--llm-base-url`, `--llm-model`, the key variables): every
    /// task goes to this client, models pinned by personas as before.
    pub fn single(client: LlmClient) -> LlmRouter {
        let config = client.config();
        let info = EndpointInfo {
            name: DEFAULT_ENDPOINT.into(),
            base_url: config.base_url.clone(),
            model: config.model.clone(),
            key: if config.api_key.is_some() { KeySource::Legacy } else { KeySource::None },
            timeout: config.timeout,
        };
        let table = RouteTable {
            endpoints: BTreeMap::from([(DEFAULT_ENDPOINT.to_string(), (info, config.retries))]),
            default: Some(DEFAULT_ENDPOINT.into()),
            routes: BTreeMap::new(),
        };
        LlmRouter { table, clients: BTreeMap::from([(DEFAULT_ENDPOINT.to_string(), client)]) }
    }

    /// A router from a configuration file's contents; keys are looked up with `env` (tests pass
    /// a map) or read from their files now, so a missing key fails at start, not mid-message.
    pub fn from_config(
        config: &RouterConfig,
        http: reqwest::Client,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<LlmRouter, RouterError> {
        let table = config.table()?;
        let mut clients = BTreeMap::new();
        for (name, (info, retries)) in &table.endpoints {
            let api_key = match &info.key {
                KeySource::None | KeySource::Legacy => None,
                KeySource::Env(var) => Some(
                    env(var)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| RouterError::KeyMissing { endpoint: name.clone(), name: var.clone() })?,
                ),
                KeySource::File(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|source| RouterError::Key {
                            endpoint: name.clone(),
                            source_name: path.display().to_string(),
                            source,
                        })?
                        .trim()
                        .to_string(),
                ),
            };
            let mut llm = LlmConfig::new(&info.base_url, &info.model);
            llm.api_key = api_key;
            llm.timeout = info.timeout;
            llm.retries = *retries;
            clients.insert(name.clone(), LlmClient::with_http_client(llm, http.clone()));
        }
        Ok(LlmRouter { table, clients })
    }

    /// The route of `task` for a persona's `spec.models`; `None`: offline.
    pub fn route(&self, task: LlmTask, prefs: &ModelPreferences) -> Option<Route> {
        let resolved = self.table.resolve(task, prefs)?;
        let client = self.clients.get(&resolved.endpoint.name)?;
        let client = client.with_defaults(&resolved.model, resolved.timeout);
        tracing::debug!(task = %task, endpoint = %resolved.endpoint.name, model = %resolved.model, "LLM route");
        Some(Route { resolved, client })
    }

    /// Whether any endpoint is configured.
    pub fn is_online(&self) -> bool {
        !self.clients.is_empty()
    }

    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// One line for logs and `up`'s banner: endpoints, models and key sources, never keys.
    pub fn describe(&self) -> Option<String> {
        // With one endpoint "(default)" says nothing, and `up`'s banner stays as it was.
        let default = self.table.default.as_deref().filter(|_| self.table.endpoints.len() > 1);
        let parts: Vec<String> = self
            .table
            .endpoints()
            .map(|e| {
                let marker = if Some(e.name.as_str()) == default { " (default)" } else { "" };
                format!("{} at {}{marker}", e.model, e.base_url)
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

impl From<Option<LlmClient>> for LlmRouter {
    fn from(client: Option<LlmClient>) -> LlmRouter {
        client.map_or_else(LlmRouter::offline, LlmRouter::single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
endpoints:
  local:
    baseUrl: http://127.0.0.1:11434
    model: llama3.2
    timeoutSecs: 30
  cloud:
    baseUrl: https://api.openai.com/v1
    model: gpt-4o-mini
    apiKeyEnv: OPENAI_API_KEY
default: local
routes:
  reply: {endpoint: cloud, model: gpt-4o, maxTokens: 300}
  plugin-code: {endpoint: cloud, model: o4-mini, timeoutSecs: 120}
  plugin: {endpoint: cloud}
  plugin:summary: {model: qwen2.5}
"#;

    fn table() -> RouteTable {
        serde_yaml::from_str::<RouterConfig>(CONFIG).unwrap().table().unwrap()
    }

    fn resolve(task: LlmTask, prefs: &ModelPreferences) -> (String, String, Option<u32>, Duration) {
        let r = table().resolve(task, prefs).unwrap();
        (r.endpoint.name, r.model, r.max_completion_tokens, r.timeout)
    }

    #[test]
    fn tasks_take_their_route_and_fall_back_to_the_default_endpoint() {
        let none = ModelPreferences::default();
        assert_eq!(resolve(LlmTask::Reply, &none), ("cloud".into(), "gpt-4o".into(), Some(300), DEFAULT_TIMEOUT));
        assert_eq!(
            resolve(LlmTask::PluginCode, &none),
            ("cloud".into(), "o4-mini".into(), None, Duration::from_secs(120))
        );
        // No route: the default endpoint, its model and time budget, the task's usual cap.
        assert_eq!(
            resolve(LlmTask::Extraction, &none),
            ("local".into(), "llama3.2".into(), Some(EXTRACTION_MAX_TOKENS), Duration::from_secs(30))
        );
        assert_eq!(resolve(LlmTask::Insight, &none).0, "local");
        let local = table().resolve(LlmTask::Insight, &none).unwrap().endpoint;
        assert_eq!(local.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(local.key, KeySource::None);
    }

    #[test]
    fn plugin_tasks_use_their_class_route_then_the_plugin_route() {
        let none = ModelPreferences::default();
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Chat), &none).0, "cloud", "the `plugin` route");
        // `plugin:summary` names no endpoint: the default one, with its own model.
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Summary), &none).0, "local");
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Summary), &none).1, "qwen2.5");
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Code), &none).2, None, "the gateway caps plugins");
    }

    #[test]
    fn persona_pins_override_the_route_model_but_not_the_endpoint() {
        let prefs = ModelPreferences {
            extraction: Some("small-extractor".into()),
            reply: Some("  ".into()),
            code: Some("coder".into()),
            conserve_tokens: true,
        };
        assert_eq!(resolve(LlmTask::Extraction, &prefs).1, "small-extractor");
        assert_eq!(
            resolve(LlmTask::PluginCode, &prefs),
            ("cloud".into(), "coder".into(), None, Duration::from_secs(120))
        );
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Code), &prefs).1, "coder");
        assert_eq!(resolve(LlmTask::PluginTask(TaskClass::Extraction), &prefs).1, "small-extractor");
        let reply_pin = ModelPreferences { reply: Some("voice".into()), ..Default::default() };
        for class in [TaskClass::Chat, TaskClass::Summary] {
            assert_eq!(resolve(LlmTask::PluginTask(class), &reply_pin).1, "voice", "{class:?} is prose");
        }
        assert_eq!(resolve(LlmTask::Insight, &reply_pin).1, "voice");
        // A blank pin is no pin; the route's explicit cap wins over conserveTokens.
        assert_eq!(resolve(LlmTask::Reply, &prefs).1, "gpt-4o");
        assert_eq!(resolve(LlmTask::Reply, &prefs).2, Some(300));
    }

    #[test]
    fn one_endpoint_router_keeps_todays_models_and_caps() {
        let mut config = LlmConfig::new("http://127.0.0.1:8080", "base");
        config.timeout = Duration::from_secs(7);
        let router = LlmRouter::single(LlmClient::new(config).unwrap());
        let none = ModelPreferences::default();
        for task in LlmTask::ALL {
            let route = router.route(task, &none).unwrap();
            assert_eq!((route.endpoint(), route.model()), (DEFAULT_ENDPOINT, "base"), "{task}");
            assert_eq!(route.resolved.timeout, Duration::from_secs(7));
            assert_eq!(route.client.model(), "base");
            assert_eq!(route.client.config().timeout, Duration::from_secs(7));
        }
        let conserve = ModelPreferences { reply: Some("voice".into()), conserve_tokens: true, ..Default::default() };
        let reply = router.route(LlmTask::Reply, &conserve).unwrap();
        assert_eq!((reply.model(), reply.max_completion_tokens()), ("voice", Some(REPLY_MAX_TOKENS_CONSERVE)));
        assert_eq!(reply.client.model(), "voice", "the route's client defaults to the route's model");
        assert_eq!(router.route(LlmTask::Reply, &none).unwrap().max_completion_tokens(), Some(REPLY_MAX_TOKENS));
        assert!(LlmRouter::offline().route(LlmTask::Reply, &none).is_none());
    }

    #[test]
    fn task_keys_round_trip_and_unknown_ones_are_refused() {
        for task in LlmTask::ALL {
            assert_eq!(task.key().parse::<LlmTask>().unwrap(), task);
        }
        assert!("poems".parse::<LlmTask>().is_err());
        let bad: RouterConfig =
            serde_yaml::from_str("endpoints: {a: {baseUrl: 'http://x'}}\nroutes: {poems: {}}").unwrap();
        assert!(matches!(bad.table(), Err(RouterError::UnknownTask(t)) if t == "poems"));
    }

    #[test]
    fn bad_configurations_are_refused_with_what_is_wrong() {
        let err = |yaml: &str| serde_yaml::from_str::<RouterConfig>(yaml).unwrap().table().unwrap_err().to_string();
        assert!(
            err("endpoints: {a: {baseUrl: 'http://x'}}\nroutes: {reply: {endpoint: b}}").contains("endpoint \"b\"")
        );
        assert!(err("endpoints: {a: {baseUrl: 'http://x'}, b: {baseUrl: 'http://y'}}").contains("no `default`"));
        assert!(err("endpoints: {a: {baseUrl: 'localhost:1'}}").contains("baseUrl"));
        assert!(err("endpoints: {a: {baseUrl: 'http://x', timeoutSecs: 0}}").contains("timeoutSecs"));
        assert!(err("endpoints: {a: {baseUrl: 'http://x', apiKeyEnv: K, apiKeyFile: /k}}").contains("not both"));
        assert!(
            err("endpoints: {a: {baseUrl: 'http://x'}}\nroutes: {extraction: {maxTokens: 10}}").contains("maxTokens")
        );
        assert!(serde_yaml::from_str::<RouterConfig>("endpoint: {}").is_err(), "unknown fields are refused");
        // One endpoint needs no `default`; none at all is an offline router.
        let one: RouterConfig = serde_yaml::from_str("endpoints: {only: {baseUrl: 'http://x'}}").unwrap();
        assert_eq!(
            one.table().unwrap().resolve(LlmTask::Reply, &ModelPreferences::default()).unwrap().endpoint.name,
            "only"
        );
        assert!(
            RouterConfig::default().table().unwrap().resolve(LlmTask::Reply, &ModelPreferences::default()).is_none()
        );
    }

    #[test]
    fn keys_come_from_the_named_variable_and_a_missing_one_fails_at_start() {
        let config: RouterConfig = serde_yaml::from_str(CONFIG).unwrap();
        let http = reqwest::Client::new();
        let err = LlmRouter::from_config(&config, http.clone(), |_| None).unwrap_err();
        assert!(err.to_string().contains("$OPENAI_API_KEY is not set"), "{err}");
        let router =
            LlmRouter::from_config(&config, http, |name| (name == "OPENAI_API_KEY").then(|| "sk-test".into())).unwrap();
        let none = ModelPreferences::default();
        let reply = router.route(LlmTask::Reply, &none).unwrap();
        assert_eq!(reply.client.config().api_key.as_deref(), Some("sk-test"));
        assert_eq!(router.route(LlmTask::Extraction, &none).unwrap().client.config().api_key, None);
        let described = router.describe().unwrap();
        assert!(described.contains("llama3.2 at http://127.0.0.1:11434/v1 (default)"), "{described}");
        assert!(!described.contains("sk-test") && !format!("{router:?}").contains("sk-test"), "keys are never shown");
        let single = LlmRouter::single(LlmClient::new(LlmConfig::new("http://127.0.0.1:8080", "base")).unwrap());
        assert_eq!(single.describe().as_deref(), Some("base at http://127.0.0.1:8080/v1"), "the banner as before");
    }
}
