//! A pool of MCP client connections, one per plugin: connect on first use, cache the tool list,
//! call with a timeout, record every invocation, and respawn a child process that died.
//!
//! rmcp has no timeouts of its own (a child that never answers hangs the handshake forever), so
//! every connect and call here runs under `tokio::time::timeout`.

use std::collections::{BTreeMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock, Implementation,
    ProtocolVersion,
};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;
use tracing::{Instrument, debug, info, info_span, instrument, warn};

use crate::tools::{ToolDefinition, ToolRole};
use crate::{PluginEndpoint, PluginTransport};
use wellbeing_common::error_chain;

/// Pinned so a newer rmcp default (2026-07-28 has no initialize handshake) cannot silently change
/// how we talk to servers; 2025-11-25 is the newest revision with the handshake, which the Python
/// SDK (mcp 2.x) and older servers all answer.
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_11_25;
/// `clientInfo.name` in the initialize request.
pub const CLIENT_NAME: &str = "wellbeing-assistant";
/// Lines of a child's stderr kept to explain a failed start.
const STDERR_LINES: usize = 20;
/// Longest plugin error text kept (in errors and invocation records).
const MAX_REASON: usize = 500;

#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Spawning (or reaching) a server, the initialize handshake and the first tool list. A Python
    /// host starts in about a second; a busy two-core machine may need several.
    pub connect_timeout: Duration,
    /// Default for one tool call (the 10 s); `call` can override it.
    pub call_timeout: Duration,
    /// Interval between attempts while an HTTP server does not accept connections yet.
    pub listen_poll: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(10),
            listen_poll: Duration::from_millis(50),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} is not known")]
    UnknownPlugin { plugin: String },
    #[error("plugin {plugin} has no tool {tool}")]
    UnknownTool { plugin: String, tool: String },
    #[error("plugin module {} does not exist", path.display())]
    ModuleMissing { path: std::path::PathBuf },
    #[error("plugin {plugin} is not approved")]
    NotApproved { plugin: String },
    #[error("plugin {plugin} has no endpoint yet (not Ready, and no url or command)")]
    NoEndpoint { plugin: String },
    #[error("failed to start plugin {plugin}")]
    Spawn {
        plugin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to connect to plugin {plugin}{}", stderr_suffix(stderr))]
    Connect {
        plugin: String,
        /// The child's last stderr line, which usually says why it died.
        stderr: Option<String>,
        #[source]
        source: Box<ClientInitializeError>,
    },
    #[error("failed to list the tools of plugin {plugin}")]
    ListTools {
        plugin: String,
        #[source]
        source: ServiceError,
    },
    #[error("plugin {plugin} did not connect within {after:?}{}", stderr_suffix(stderr))]
    ConnectTimeout { plugin: String, after: Duration, stderr: Option<String> },
    #[error("plugin {plugin} tool {tool} did not answer within {after:?}")]
    Timeout { plugin: String, tool: String, after: Duration },
    #[error("failed to call plugin {plugin} tool {tool}")]
    Call {
        plugin: String,
        tool: String,
        #[source]
        source: ServiceError,
    },
    #[error("plugin {plugin} tool {tool} failed: {message}")]
    ToolFailed { plugin: String, tool: String, message: String },
    #[error("plugin {plugin} tool {tool} returned invalid output: {reason}")]
    InvalidOutput { plugin: String, tool: String, reason: String },
}

fn stderr_suffix(stderr: &Option<String>) -> String {
    stderr.as_ref().map(|line| format!(" (stderr: {line})")).unwrap_or_default()
}

impl PluginError {
    fn outcome(&self) -> InvocationOutcome {
        match self {
            PluginError::Timeout { .. } | PluginError::ConnectTimeout { .. } => InvocationOutcome::Timeout,
            _ => InvocationOutcome::Error,
        }
    }
}

/// What a successful call returned.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutcome {
    /// The text blocks of the result, joined by newlines (what an LLM is shown).
    pub text: String,
    /// `structuredContent`, when the server sent it.
    pub structured: Option<Value>,
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationOutcome {
    Ok,
    Error,
    Timeout,
}

impl InvocationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationOutcome::Ok => "ok",
            InvocationOutcome::Error => "error",
            InvocationOutcome::Timeout => "timeout",
        }
    }
}

/// One tool call as recorded. Arguments are never part of it: they carry the user's words and
/// possibly values a plugin should not see twice. `reason` is the error text, which the plugin
/// host has already scrubbed of secret values.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub plugin: String,
    pub version: i32,
    pub tool: String,
    pub duration: Duration,
    pub outcome: InvocationOutcome,
    pub reason: Option<String>,
}

/// Where invocations go (the assistant's store, metrics, a test).
pub trait InvocationSink: Send + Sync {
    fn record(&self, invocation: Invocation);
}

/// Keeps invocations in memory (tests, `wellbeing chat`).
#[derive(Debug, Default)]
pub struct MemorySink {
    invocations: StdMutex<Vec<Invocation>>,
}

impl MemorySink {
    pub fn invocations(&self) -> Vec<Invocation> {
        self.invocations.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl InvocationSink for MemorySink {
    fn record(&self, invocation: Invocation) {
        self.invocations.lock().unwrap_or_else(|e| e.into_inner()).push(invocation);
    }
}

/// Logs each invocation at info level: names, timing and outcome only.
#[derive(Debug, Default)]
pub struct TracingSink;

impl InvocationSink for TracingSink {
    fn record(&self, i: Invocation) {
        info!(
            plugin = %i.plugin,
            version = i.version,
            tool = %i.tool,
            duration_ms = i.duration.as_secs_f64() * 1000.0,
            outcome = i.outcome.as_str(),
            "plugin invocation"
        );
    }
}

type Client = RunningService<RoleClient, ClientConfig>;

struct Connection {
    client: Client,
    tools: Vec<ToolDefinition>,
}

impl Connection {
    fn is_closed(&self) -> bool {
        self.client.is_closed() || self.client.peer().is_transport_closed()
    }
}

struct Slot {
    endpoint: PluginEndpoint,
    /// Held across a connect so concurrent first calls spawn one child, not several.
    conn: Mutex<Option<Arc<Connection>>>,
}

/// MCP connections to every known plugin.
pub struct PluginPool {
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Child processes starting at once. A Python host spends about a second of CPU importing the
    /// MCP SDK; starting more children than there are cores only makes each slower (20 at once on
    /// two cores took 27 s, near the connect timeout), so starts queue here and each one's connect
    /// timeout counts from when it actually starts.
    spawns: tokio::sync::Semaphore,
    http: reqwest::Client,
    sink: Arc<dyn InvocationSink>,
    config: PoolConfig,
}

fn client_config() -> ClientConfig {
    ClientConfig::new(ClientCapabilities::default(), Implementation::new(CLIENT_NAME, env!("CARGO_PKG_VERSION")))
        .with_protocol_version(PROTOCOL_VERSION)
}

impl PluginPool {
    /// `http` is shared by every streamable-HTTP connection, so its connection pool is too.
    pub fn new(
        endpoints: Vec<PluginEndpoint>,
        sink: Arc<dyn InvocationSink>,
        http: reqwest::Client,
        config: PoolConfig,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = Self {
            slots: RwLock::new(BTreeMap::new()),
            spawns: tokio::sync::Semaphore::new(cores),
            http,
            sink,
            config,
        };
        for endpoint in endpoints {
            pool.upsert(endpoint);
        }
        pool
    }

    /// Add a plugin, or replace it when its version, transport or triggers changed (its old
    /// connection closes once in-flight calls finish). Returns whether anything changed.
    pub fn upsert(&self, endpoint: PluginEndpoint) -> bool {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        if slots.get(&endpoint.name).is_some_and(|s| s.endpoint == endpoint) {
            return false;
        }
        let slot = Arc::new(Slot { endpoint: endpoint.clone(), conn: Mutex::new(None) });
        slots.insert(endpoint.name, slot);
        true
    }

    /// Forget a plugin; its connection closes once in-flight calls finish.
    pub fn remove(&self, plugin: &str) -> bool {
        self.slots.write().unwrap_or_else(|e| e.into_inner()).remove(plugin).is_some()
    }

    /// The known plugins (the assistant picks relevant ones by their triggers).
    pub fn endpoints(&self) -> Vec<PluginEndpoint> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).values().map(|s| s.endpoint.clone()).collect()
    }

    fn slot(&self, plugin: &str) -> Result<Arc<Slot>, PluginError> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.get(plugin).cloned().ok_or_else(|| PluginError::UnknownPlugin { plugin: plugin.to_string() })
    }

    fn all_slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Connect to every plugin at once and cache its tools; per plugin, the number of tools or
    /// why it failed. Plugins already connected are not contacted again.
    #[instrument(skip(self))]
    pub async fn discover(&self) -> BTreeMap<String, Result<usize, PluginError>> {
        let slots = self.all_slots();
        let results = futures::future::join_all(slots.iter().map(|slot| async move {
            let result = self.connection(slot).await.map(|c| c.tools.len());
            (slot.endpoint.name.clone(), result)
        }))
        .await;
        results.into_iter().collect()
    }

    /// A plugin's tools (connecting first if needed).
    pub async fn tools(&self, plugin: &str) -> Result<Vec<ToolDefinition>, PluginError> {
        let slot = self.slot(plugin)?;
        Ok(self.connection(&slot).await?.tools.clone())
    }

    /// Tools of connected plugins to offer the LLM: "run" tools only, in plugin order. Call
    /// [`Self::discover`] first to include plugins not used yet.
    pub async fn tool_definitions(&self) -> Vec<ToolDefinition> {
        let mut out = Vec::new();
        for slot in self.all_slots() {
            if let Some(conn) = slot.conn.lock().await.as_ref() {
                out.extend(conn.tools.iter().filter(|t| t.role == ToolRole::Run).cloned());
            }
        }
        out
    }

    /// The (plugin, tool) behind a function name from [`Self::tool_definitions`].
    pub async fn resolve(&self, function_name: &str) -> Option<(String, String)> {
        self.tool_definitions().await.into_iter().find(|t| t.function_name == function_name).map(|t| (t.plugin, t.tool))
    }

    /// Call one tool. `timeout` defaults to [`PoolConfig::call_timeout`]; connecting, when needed,
    /// has its own [`PoolConfig::connect_timeout`]. Every call is recorded in the sink.
    #[instrument(skip(self, arguments, timeout))]
    pub async fn call(
        &self,
        plugin: &str,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<ToolOutcome, PluginError> {
        let started = Instant::now();
        let slot = self.slot(plugin);
        let version = slot.as_ref().map(|s| s.endpoint.version).unwrap_or_default();
        let result = match slot {
            Ok(slot) => self.call_slot(&slot, tool, arguments, timeout.unwrap_or(self.config.call_timeout)).await,
            Err(e) => Err(e),
        };
        let duration = started.elapsed();
        let (outcome, reason) = match &result {
            Ok(_) => (InvocationOutcome::Ok, None),
            Err(e) => (e.outcome(), Some(truncate(&error_chain(e)))),
        };
        self.sink.record(Invocation {
            plugin: plugin.to_string(),
            version,
            tool: tool.to_string(),
            duration,
            outcome,
            reason,
        });
        result.map(|mut r| {
            r.duration = duration;
            r
        })
    }

    /// Ask a plugin's match tool whether it fits a message: `None` when it has none (its
    /// triggers decide then).
    pub async fn matches(&self, plugin: &str, text: &str, pillars: &[String]) -> Result<Option<bool>, PluginError> {
        let tools = self.tools(plugin).await?;
        let Some(tool) = tools.iter().find(|t| t.role == ToolRole::Match) else { return Ok(None) };
        let args = json!({"text": text, "pillars": pillars});
        let args = args.as_object().cloned().unwrap_or_default();
        let outcome = self.call(plugin, &tool.tool, args, None).await?;
        match outcome.structured.as_ref().and_then(|s| s.get("match")).and_then(Value::as_bool) {
            Some(m) => Ok(Some(m)),
            None => Err(PluginError::InvalidOutput {
                plugin: plugin.to_string(),
                tool: tool.tool.clone(),
                reason: "match tool did not return {\"match\": bool}".into(),
            }),
        }
    }

    /// Close every connection (children get the MCP stdio shutdown: stdin closed, then SIGTERM).
    pub async fn shutdown(&self) {
        for slot in self.all_slots() {
            let taken = slot.conn.lock().await.take();
            if let Some(conn) = taken.and_then(|c| Arc::try_unwrap(c).ok()) {
                let _ = conn.client.cancel().await;
            }
        }
    }

    async fn call_slot(
        &self,
        slot: &Arc<Slot>,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<ToolOutcome, PluginError> {
        let plugin = &slot.endpoint.name;
        let conn = self.connection(slot).await?;
        if !conn.tools.iter().any(|t| t.tool == tool) {
            return Err(PluginError::UnknownTool { plugin: plugin.clone(), tool: tool.to_string() });
        }
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let peer = conn.client.peer().clone();
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => {
                // A child stuck in a busy loop answers nothing else either: replace it. An HTTP
                // server handles other requests meanwhile, so its connection stays.
                if slot.endpoint.is_stdio() {
                    self.invalidate(slot, &conn).await;
                }
                Err(PluginError::Timeout { plugin: plugin.clone(), tool: tool.to_string(), after: timeout })
            }
            Ok(Err(source)) => {
                if conn.is_closed() || matches!(source, ServiceError::TransportClosed | ServiceError::TransportSend(_))
                {
                    self.invalidate(slot, &conn).await;
                }
                Err(PluginError::Call { plugin: plugin.clone(), tool: tool.to_string(), source })
            }
            Ok(Ok(result)) => outcome(plugin, tool, result),
        }
    }

    /// The live connection of a slot; (re)connects when there is none or the old one closed
    /// (a child that exited is respawned here, on the next call after it died).
    async fn connection(&self, slot: &Slot) -> Result<Arc<Connection>, PluginError> {
        let mut guard = slot.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
            info!(plugin = %slot.endpoint.name, "plugin connection closed; reconnecting");
        }
        *guard = None;
        let conn = Arc::new(self.connect(&slot.endpoint).await?);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn invalidate(&self, slot: &Slot, conn: &Arc<Connection>) {
        let mut guard = slot.conn.lock().await;
        if guard.as_ref().is_some_and(|current| Arc::ptr_eq(current, conn)) {
            *guard = None;
        }
    }

    #[instrument(skip(self, endpoint), fields(plugin = %endpoint.name))]
    async fn connect(&self, endpoint: &PluginEndpoint) -> Result<Connection, PluginError> {
        let plugin = endpoint.name.clone();
        // The semaphore is never closed, so acquiring only waits.
        let _permit = match endpoint.is_stdio() {
            true => self.spawns.acquire().await.ok(),
            false => None,
        };
        let stderr_tail: Arc<StdMutex<VecDeque<String>>> = Arc::default();
        let mut stderr_task = None;
        let attempt = async {
            let client = match &endpoint.transport {
                PluginTransport::Stdio { command, args, env } => {
                    let mut cmd = tokio::process::Command::new(command);
                    cmd.args(args).envs(env).kill_on_drop(true);
                    let (transport, stderr) = TokioChildProcess::builder(cmd)
                        .stderr(Stdio::piped())
                        .spawn()
                        .map_err(|source| PluginError::Spawn { plugin: plugin.clone(), source })?;
                    if let Some(stderr) = stderr {
                        stderr_task = Some(tokio::spawn(
                            forward_stderr(stderr, stderr_tail.clone())
                                .instrument(info_span!("plugin_stderr", plugin = %plugin)),
                        ));
                    }
                    client_config().serve(transport).await
                }
                PluginTransport::Http { url } => {
                    wait_until_listening(url, self.config.listen_poll).await;
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
                    client_config().serve(transport).await
                }
            };
            let client = match client {
                Ok(client) => client,
                Err(source) => {
                    return Err(PluginError::Connect {
                        plugin: plugin.clone(),
                        stderr: None,
                        source: Box::new(source),
                    });
                }
            };
            let tools = client
                .peer()
                .list_all_tools()
                .await
                .map_err(|source| PluginError::ListTools { plugin: plugin.clone(), source })?;
            let tools = tools.iter().map(|t| ToolDefinition::new(&plugin, t)).collect();
            Ok(Connection { client, tools })
        };
        let result = match tokio::time::timeout(self.config.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(PluginError::ConnectTimeout {
                plugin: plugin.clone(),
                after: self.config.connect_timeout,
                stderr: None,
            }),
        };
        match result {
            Ok(conn) => {
                debug!(tools = conn.tools.len(), "plugin connected");
                Ok(conn)
            }
            Err(mut e) => {
                // A child that died usually said why on stderr; give the reader a moment to reach EOF.
                if let Some(task) = stderr_task {
                    let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
                }
                let last = stderr_tail.lock().unwrap_or_else(|p| p.into_inner()).back().cloned();
                if let PluginError::Connect { stderr, .. } | PluginError::ConnectTimeout { stderr, .. } = &mut e {
                    *stderr = last;
                }
                warn!(error = %error_chain(&e), "plugin connect failed");
                Err(e)
            }
        }
    }
}

/// Child stderr goes to debug logs (a server we did not write may log arguments) and the last
/// lines are kept to explain a failed start.
async fn forward_stderr(stderr: tokio::process::ChildStderr, tail: Arc<StdMutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        debug!(line = %line, "plugin stderr");
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// Poll until the URL's host:port accepts TCP connections; the caller's connect timeout bounds it.
async fn wait_until_listening(url: &str, every: Duration) {
    let Ok(parsed) = reqwest::Url::parse(url) else { return };
    let (Some(host), Some(port)) = (parsed.host_str().map(str::to_string), parsed.port_or_known_default()) else {
        return;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    while tokio::net::TcpStream::connect((host.as_str(), port)).await.is_err() {
        tokio::time::sleep(every).await;
    }
}

fn outcome(plugin: &str, tool: &str, result: CallToolResult) -> Result<ToolOutcome, PluginError> {
    let text = result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    if result.is_error == Some(true) {
        let message = if text.is_empty() { "no error text".to_string() } else { truncate(&text) };
        return Err(PluginError::ToolFailed { plugin: plugin.to_string(), tool: tool.to_string(), message });
    }
    if text.is_empty() && result.structured_content.is_none() {
        return Err(PluginError::InvalidOutput {
            plugin: plugin.to_string(),
            tool: tool.to_string(),
            reason: "neither text nor structured content".into(),
        });
    }
    Ok(ToolOutcome { text, structured: result.structured_content, duration: Duration::ZERO })
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_REASON {
        return text.to_string();
    }
    let mut end = MAX_REASON;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
