//! Plugin `status.tools`: the tools a Ready plugin's MCP server offers the LLM, listed once per
//! rollout and kept in the status with a `ToolsListed` condition.
//!
//! Pure: which server is running ([`ServerKey`], [`rollout_of`]), whether to ask it again
//! ([`decide`]), which tools count ([`offered`]) and how the outcome enters the status
//! ([`apply`]). I/O: the [`ToolLister`] trait (the MCP client in production, a fake in tests) and
//! the per-plugin cache on the [`Context`], driven by [`refresh`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::{api::apps::v1::Deployment, apimachinery::pkg::apis::meta::v1::Condition};
use kube::ResourceExt;
use tracing::{debug, info, instrument, warn};
use wellbeing_crds::{
    Plugin, PluginStatus,
    conditions::{Desired, Status, find, merge, time_from_chrono},
    plugin::ToolInfo,
};
use wellbeing_mcp::{MemorySink, PluginEndpoint, PluginPool, PluginTransport, PoolConfig, ToolDefinition, ToolRole};

use super::build::Stage;
use crate::{backoff, context::Context};

/// Condition type saying whether `status.tools` reflects the running server.
pub const TOOLS_LISTED: &str = "ToolsListed";
pub const REASON_LISTED: &str = "ToolsListed";
pub const REASON_UNAVAILABLE: &str = "ToolsUnavailable";
pub const REASON_ROLLOUT: &str = "RolloutInProgress";

/// Connect, initialize and list, all within this. The plugin host answers in milliseconds once
/// its pod is Ready (the readiness probe waits for the listening socket); a server that needs
/// longer is retried with backoff rather than holding one of the controller's few workers.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// An external server (`spec.source.mcp.url`) may change its tools without any object changing,
/// so its list is refreshed this often (the Ready resync interval brings the reconcile).
pub const EXTERNAL_REFRESH: Duration = Duration::from_secs(600);
/// Longest error text kept in the condition message.
const MAX_MESSAGE: usize = 500;
/// Cached listings kept at most; the oldest go first. Plugins deleted without a final reconcile
/// would otherwise stay in the map for the life of the process.
const MAX_CACHED: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("failed to list the tools of plugin {plugin} at {endpoint}")]
pub struct ListError {
    pub plugin: String,
    pub endpoint: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Asks a running MCP server for the tools it offers the LLM.
#[async_trait]
pub trait ToolLister: Send + Sync {
    async fn list(&self, plugin: &Plugin, endpoint: &str) -> Result<Vec<ToolInfo>, ListError>;
}

/// The tools to show in `status.tools`: those offered to the LLM. The plugin host tags its
/// `match` tool (it answers "is this plugin relevant?", the LLM never calls it) in `_meta`; tools
/// of servers we did not write carry no role and are offered.
pub fn offered(tools: &[ToolDefinition]) -> Vec<ToolInfo> {
    tools
        .iter()
        .filter(|t| t.role == ToolRole::Run)
        .map(|t| ToolInfo { name: t.tool.clone(), description: t.description.clone() })
        .collect()
}

/// Lists over streamable HTTP with the assistant's MCP client (same pinned protocol version and
/// role tags as the assistant that will call the tools), one short-lived connection per listing.
pub struct McpToolLister {
    timeout: Duration,
    /// Built on first use: most reconciles never list, and tests never build it.
    http: OnceLock<reqwest::Client>,
}

impl McpToolLister {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout, http: OnceLock::new() }
    }
}

impl Default for McpToolLister {
    fn default() -> Self {
        Self::new(LIST_TIMEOUT)
    }
}

#[async_trait]
impl ToolLister for McpToolLister {
    async fn list(&self, plugin: &Plugin, endpoint: &str) -> Result<Vec<ToolInfo>, ListError> {
        let name = plugin.name_any();
        let http = self.http.get_or_init(reqwest::Client::new).clone();
        let target = PluginEndpoint {
            name: name.clone(),
            version: plugin.spec.version,
            transport: PluginTransport::Http { url: endpoint.to_string() },
            triggers: plugin.spec.triggers.clone(),
        };
        let config = PoolConfig { connect_timeout: self.timeout, ..PoolConfig::default() };
        // Listing calls no tool, so the sink never records anything.
        let pool = PluginPool::new(vec![target], Arc::new(MemorySink::default()), http, config);
        let listed = pool.tools(&name).await;
        pool.shutdown().await;
        match listed {
            Ok(tools) => Ok(offered(&tools)),
            Err(e) => Err(ListError { plugin: name, endpoint: endpoint.to_string(), source: Box::new(e) }),
        }
    }
}

/// How far the plugin's Deployment has rolled out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Every pod runs the current template (of this Deployment generation) and one is available.
    Complete { generation: i64 },
    /// Old pods may still answer: what they list may not be what the new ones will offer.
    InProgress,
}

/// Read the rollout state from a Deployment as the apiserver returned it.
pub fn rollout_of(d: &Deployment) -> Rollout {
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(s) = d.status.as_ref() else { return Rollout::InProgress };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = s.updated_replicas.unwrap_or(0);
    let complete = s.observed_generation.unwrap_or(0) >= generation
        && updated >= desired
        // Pods of the old ReplicaSet are gone (`replicas` counts every pod of the Deployment).
        && s.replicas.unwrap_or(0) <= updated
        && s.available_replicas.unwrap_or(0) >= 1;
    if complete { Rollout::Complete { generation } } else { Rollout::InProgress }
}

/// What identifies the running server: its tool list can only change when this changes (or,
/// for an external server, over time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKey {
    pub uid: String,
    pub generation: i64,
    pub endpoint: String,
    /// Generation of the Deployment serving it; `None` for a server the operator does not run.
    pub deployment: Option<i64>,
}

/// What the reconcile should do about the tool list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The plugin is not serving: no tools, no condition.
    NotServing,
    /// Serving, but a rollout is under way: keep what the status says until it completes (the
    /// Deployment watch brings the reconcile).
    RollingOut,
    /// Serving this server.
    Serving(ServerKey),
}

/// Decide the target from the reconcile's stage and the Deployment's rollout (`None` when the
/// operator runs no Deployment for this plugin).
pub fn target(plugin: &Plugin, stage: &Stage, rollout: Option<Rollout>) -> Target {
    let Stage::Ready { endpoint } = stage else { return Target::NotServing };
    let deployment = match rollout {
        Some(Rollout::InProgress) => return Target::RollingOut,
        Some(Rollout::Complete { generation }) => Some(generation),
        None => None,
    };
    Target::Serving(ServerKey {
        uid: plugin.uid().unwrap_or_default(),
        generation: plugin.metadata.generation.unwrap_or(0),
        endpoint: endpoint.clone(),
        deployment,
    })
}

/// The outcome of the last listing of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    Listed(Vec<ToolInfo>),
    /// `attempts` failures in a row; `message` is the error chain.
    Failed {
        message: String,
        attempts: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: ServerKey,
    pub at: DateTime<Utc>,
    pub listing: Listing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ask the server; `attempt` counts from 1 for this key.
    List { attempt: u32 },
    /// Use the cached outcome; a failure is retried after `retry_in`.
    Reuse { listing: Listing, retry_in: Option<Duration> },
}

/// Whether to ask the server again. A successful listing stands until the server changes (an
/// external one: until [`EXTERNAL_REFRESH`] passes); a failed one is retried with the
/// controllers' backoff (1 s doubling to 5 min).
pub fn decide(key: &ServerKey, cached: Option<&Entry>, now: DateTime<Utc>) -> Decision {
    let Some(entry) = cached.filter(|e| &e.key == key) else { return Decision::List { attempt: 1 } };
    let age = (now - entry.at).to_std().unwrap_or(Duration::ZERO);
    match &entry.listing {
        Listing::Listed(_) if key.deployment.is_none() && age >= EXTERNAL_REFRESH => Decision::List { attempt: 1 },
        Listing::Listed(_) => Decision::Reuse { listing: entry.listing.clone(), retry_in: None },
        Listing::Failed { attempts, .. } => {
            let wait = backoff::delay(*attempts);
            if age >= wait {
                Decision::List { attempt: attempts.saturating_add(1) }
            } else {
                Decision::Reuse { listing: entry.listing.clone(), retry_in: Some(wait - age) }
            }
        }
    }
}

/// What [`refresh`] found, for [`apply`] and the requeue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    NotServing,
    RollingOut,
    Listed(Vec<ToolInfo>),
    Failed { message: String, retry_in: Duration },
}

impl Outcome {
    /// When to reconcile again to retry a failed listing.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Outcome::Failed { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }
}

/// Put the outcome into a freshly computed status. `old` are the conditions before this
/// reconcile (for transition times); the phase and the other conditions are left alone: a server
/// that does not answer its tool list is still Ready as far as the deployment goes.
pub fn apply(
    status: &mut PluginStatus,
    old: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: DateTime<Utc>,
) {
    let desired = match outcome {
        Outcome::NotServing => {
            // Nothing answers at the endpoint: listing yesterday's tools would promise calls that fail.
            status.tools.clear();
            return;
        }
        Outcome::RollingOut => match find(old, TOOLS_LISTED) {
            Some(previous) => {
                status.conditions.push(previous.clone());
                return;
            }
            None => Desired::new(
                TOOLS_LISTED,
                Status::Unknown,
                REASON_ROLLOUT,
                "waiting for the rollout to finish before listing tools",
            ),
        },
        Outcome::Listed(tools) => {
            status.tools = tools.clone();
            Desired::new(TOOLS_LISTED, true, REASON_LISTED, listed_message(tools))
        }
        // The tools of the last listing stay: the same code most likely still offers them.
        Outcome::Failed { message, .. } => Desired::new(TOOLS_LISTED, false, REASON_UNAVAILABLE, message.clone()),
    };
    status.conditions.extend(merge(old, &[desired], generation, time_from_chrono(now)));
}

fn listed_message(tools: &[ToolInfo]) -> String {
    match tools.len() {
        1 => "1 tool offered to the LLM".to_string(),
        n => format!("{n} tools offered to the LLM"),
    }
}

/// The lister and what it last found per plugin uid.
pub struct Tools {
    lister: Arc<dyn ToolLister>,
    cache: Mutex<HashMap<String, Entry>>,
}

impl Tools {
    pub fn new(lister: Arc<dyn ToolLister>) -> Self {
        Self { lister, cache: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, uid: &str) -> Option<Entry> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    fn store(&self, entry: Entry) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED && !cache.contains_key(&entry.key.uid) {
            let oldest = cache.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(entry.key.uid.clone(), entry);
    }
}

impl Default for Tools {
    fn default() -> Self {
        Self::new(Arc::new(McpToolLister::default()))
    }
}

/// Find the tool list for the plugin's current server: from the cache, or by asking the server.
/// Never fails the reconcile: a failed listing is an outcome with a retry time.
#[instrument(skip_all, fields(name = %plugin.name_any()))]
pub async fn refresh(ctx: &Context, plugin: &Plugin, stage: &Stage, rollout: Option<Rollout>) -> Outcome {
    let key = match target(plugin, stage, rollout) {
        Target::NotServing => return Outcome::NotServing,
        Target::RollingOut => return Outcome::RollingOut,
        Target::Serving(key) => key,
    };
    let now = ctx.now();
    let attempt = match decide(&key, ctx.tools.cached(&key.uid).as_ref(), now) {
        Decision::Reuse { listing: Listing::Listed(tools), .. } => return Outcome::Listed(tools),
        Decision::Reuse { listing: Listing::Failed { message, .. }, retry_in } => {
            return Outcome::Failed { message, retry_in: retry_in.unwrap_or(backoff::BASE_DELAY) };
        }
        Decision::List { attempt } => attempt,
    };
    let (listing, outcome) = match ctx.tools.lister.list(plugin, &key.endpoint).await {
        Ok(tools) => {
            info!(endpoint = %key.endpoint, tools = tools.len(), "listed plugin tools");
            (Listing::Listed(tools.clone()), Outcome::Listed(tools))
        }
        Err(e) => {
            let message = truncate(&crate::error_chain(&e));
            let retry_in = backoff::delay(attempt);
            warn!(error = %message, attempt, retry_in_seconds = retry_in.as_secs(), "plugin tools unavailable");
            (Listing::Failed { message: message.clone(), attempts: attempt }, Outcome::Failed { message, retry_in })
        }
    };
    debug!(attempt, "tool listing cached");
    ctx.tools.store(Entry { key, at: now, listing });
    outcome
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A lister answering from a script, recording every endpoint it was asked about.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FakeLister {
    /// Replies in order; `Err` carries the cause's text. When empty, listing fails.
    pub replies: Mutex<std::collections::VecDeque<Result<Vec<ToolInfo>, String>>>,
    pub calls: Mutex<Vec<String>>,
}

#[cfg(test)]
impl FakeLister {
    pub fn replying(replies: impl IntoIterator<Item = Result<Vec<ToolInfo>, String>>) -> Arc<Self> {
        Arc::new(Self { replies: Mutex::new(replies.into_iter().collect()), calls: Mutex::default() })
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[cfg(test)]
#[async_trait]
impl ToolLister for FakeLister {
    async fn list(&self, plugin: &Plugin, endpoint: &str) -> Result<Vec<ToolInfo>, ListError> {
        self.calls.lock().unwrap().push(endpoint.to_string());
        let reply = self.replies.lock().unwrap().pop_front().unwrap_or_else(|| Err("no reply scripted".into()));
        reply.map_err(|cause| ListError {
            plugin: plugin.name_any(),
            endpoint: endpoint.to_string(),
            source: cause.into(),
        })
    }
}

#[cfg(test)]
pub(crate) fn tool(name: &str, description: &str) -> ToolInfo {
    ToolInfo { name: name.into(), description: description.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::OperatorConfig,
        test_support::{FakeStore, at, fixture, plugin},
    };
    use serde_json::json;
    use wellbeing_crds::conditions::{reasons, types};

    const NOW: &str = "2026-05-04T10:00:00Z";
    const ENDPOINT: &str = "http://plugin-weather.ns.svc:8000/mcp";

    fn definition(tool: &str, role: ToolRole) -> ToolDefinition {
        ToolDefinition {
            function_name: format!("weather__{tool}"),
            plugin: "weather".into(),
            tool: tool.into(),
            description: format!("{tool} description"),
            parameters: json!({"type": "object"}),
            role,
        }
    }

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "plugin-weather", "generation": generation},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    fn key(deployment: Option<i64>) -> ServerKey {
        ServerKey { uid: "uid-weather".into(), generation: 1, endpoint: ENDPOINT.into(), deployment }
    }

    fn ready() -> Stage {
        Stage::Ready { endpoint: ENDPOINT.into() }
    }

    #[test]
    fn only_tools_offered_to_the_llm_are_listed() {
        let tools = [definition("weather", ToolRole::Run), definition("weather_match", ToolRole::Match)];
        assert_eq!(offered(&tools), [tool("weather", "weather description")]);
        assert!(offered(&[definition("weather_match", ToolRole::Match)]).is_empty());
    }

    #[test]
    fn rollout_completes_when_only_new_pods_run_and_one_is_available() {
        let done = json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        assert_eq!(rollout_of(&deployment(3, done.clone())), Rollout::Complete { generation: 3 });
        assert_eq!(rollout_of(&deployment(4, done)), Rollout::InProgress, "controller has not seen the new spec");
        let old_pod_left =
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1});
        assert_eq!(rollout_of(&deployment(3, old_pod_left)), Rollout::InProgress);
        let only_old = json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 0, "availableReplicas": 1});
        assert_eq!(rollout_of(&deployment(3, only_old)), Rollout::InProgress);
        let unavailable = json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1});
        assert_eq!(rollout_of(&deployment(3, unavailable)), Rollout::InProgress);
        let mut fresh = deployment(1, json!({}));
        fresh.status = None;
        assert_eq!(rollout_of(&fresh), Rollout::InProgress);
    }

    #[test]
    fn target_follows_stage_and_rollout() {
        let p = plugin("weather", &[]);
        assert_eq!(target(&p, &Stage::Deploying, None), Target::NotServing);
        assert_eq!(target(&p, &Stage::NotApproved, Some(Rollout::Complete { generation: 1 })), Target::NotServing);
        assert_eq!(target(&p, &ready(), Some(Rollout::InProgress)), Target::RollingOut);
        assert_eq!(target(&p, &ready(), Some(Rollout::Complete { generation: 7 })), Target::Serving(key(Some(7))));
        assert_eq!(target(&p, &ready(), None), Target::Serving(key(None)), "external server");
    }

    #[test]
    fn listed_tools_stand_until_the_server_changes() {
        let now = at(NOW);
        let entry = Entry { key: key(Some(2)), at: now, listing: Listing::Listed(vec![tool("weather", "Forecast")]) };
        let reuse = Decision::Reuse { listing: entry.listing.clone(), retry_in: None };
        assert_eq!(decide(&key(Some(2)), None, now), Decision::List { attempt: 1 });
        assert_eq!(decide(&key(Some(2)), Some(&entry), now + chrono::Duration::days(30)), reuse);
        assert_eq!(decide(&key(Some(3)), Some(&entry), now), Decision::List { attempt: 1 }, "new rollout");
        let newer_plugin = ServerKey { generation: 2, ..key(Some(2)) };
        assert_eq!(decide(&newer_plugin, Some(&entry), now), Decision::List { attempt: 1 });
        let recreated = ServerKey { uid: "uid-other".into(), ..key(Some(2)) };
        assert_eq!(decide(&recreated, Some(&entry), now), Decision::List { attempt: 1 });
    }

    #[test]
    fn external_servers_are_listed_again_after_a_while() {
        let now = at(NOW);
        let entry = Entry { key: key(None), at: now, listing: Listing::Listed(vec![]) };
        let almost = now + chrono::Duration::seconds(EXTERNAL_REFRESH.as_secs() as i64 - 1);
        assert!(matches!(decide(&key(None), Some(&entry), almost), Decision::Reuse { .. }));
        let after = now + chrono::Duration::seconds(EXTERNAL_REFRESH.as_secs() as i64);
        assert_eq!(decide(&key(None), Some(&entry), after), Decision::List { attempt: 1 });
    }

    #[test]
    fn failed_listings_are_retried_with_backoff() {
        let now = at(NOW);
        let failed = |attempts| Entry {
            key: key(Some(1)),
            at: now,
            listing: Listing::Failed { message: "refused".into(), attempts },
        };
        let later = |s: i64| now + chrono::Duration::seconds(s);
        // After the 3rd failure the wait is 4 s.
        assert_eq!(
            decide(&key(Some(1)), Some(&failed(3)), later(1)),
            Decision::Reuse { listing: failed(3).listing, retry_in: Some(Duration::from_secs(3)) }
        );
        assert_eq!(decide(&key(Some(1)), Some(&failed(3)), later(4)), Decision::List { attempt: 4 });
        assert_eq!(decide(&key(Some(1)), Some(&failed(1)), later(1)), Decision::List { attempt: 2 });
        // A new rollout starts counting again.
        assert_eq!(decide(&key(Some(2)), Some(&failed(9)), later(0)), Decision::List { attempt: 1 });
    }

    fn ready_status(p: &Plugin) -> PluginStatus {
        super::super::build::status(p, &ready(), Some(&[]), at(NOW))
    }

    #[test]
    fn listed_tools_enter_the_status_with_a_condition() {
        let p = plugin("weather", &[]);
        let mut s = ready_status(&p);
        let tools = vec![tool("weather", "Forecast for outdoor plans")];
        apply(&mut s, &[], &Outcome::Listed(tools.clone()), Some(1), at(NOW));
        assert_eq!(s.tools, tools);
        let c = find(&s.conditions, TOOLS_LISTED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", REASON_LISTED));
        assert_eq!(c.message, "1 tool offered to the LLM");
        assert_eq!(c.observed_generation, Some(1));
        assert_eq!(find(&s.conditions, types::READY).unwrap().reason, reasons::AVAILABLE);
        assert_eq!(s.conditions.len(), 4, "Ready, Approved, SecretsPresent, ToolsListed");
    }

    #[test]
    fn a_failed_listing_keeps_the_phase_and_the_last_tools() {
        let mut p = plugin("weather", &[]);
        let before = vec![tool("weather", "Forecast")];
        let mut s = ready_status(&p);
        apply(&mut s, &[], &Outcome::Listed(before.clone()), Some(1), at(NOW));
        p.status = Some(s);
        let mut s = ready_status(&p);
        let failed = Outcome::Failed { message: "connection refused".into(), retry_in: Duration::from_secs(1) };
        let later = at("2026-05-04T10:05:00Z");
        apply(&mut s, &p.status.as_ref().unwrap().conditions, &failed, Some(1), later);
        assert_eq!(s.phase, wellbeing_crds::plugin::PluginPhase::Ready);
        assert_eq!(s.tools, before);
        let c = find(&s.conditions, TOOLS_LISTED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", REASON_UNAVAILABLE));
        assert_eq!(c.message, "connection refused");
        assert_eq!(c.last_transition_time, time_from_chrono(later));
        assert_eq!(failed.retry_in(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn rollouts_keep_the_condition_and_stopped_plugins_drop_the_tools() {
        let mut p = plugin("weather", &[]);
        let mut s = ready_status(&p);
        apply(&mut s, &[], &Outcome::Listed(vec![tool("weather", "")]), Some(1), at(NOW));
        let listed = find(&s.conditions, TOOLS_LISTED).unwrap().clone();
        p.status = Some(s);
        let old = p.status.as_ref().unwrap().conditions.clone();

        let mut rolling = ready_status(&p);
        apply(&mut rolling, &old, &Outcome::RollingOut, Some(2), at("2026-05-04T11:00:00Z"));
        assert_eq!(find(&rolling.conditions, TOOLS_LISTED), Some(&listed), "unchanged, timestamps included");
        assert_eq!(rolling.tools.len(), 1);

        let mut first = ready_status(&plugin("weather", &[]));
        apply(&mut first, &[], &Outcome::RollingOut, Some(1), at(NOW));
        let c = find(&first.conditions, TOOLS_LISTED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", REASON_ROLLOUT));

        let mut stopped = super::super::build::status(&p, &Stage::Deploying, Some(&[]), at(NOW));
        apply(&mut stopped, &old, &Outcome::NotServing, Some(1), at(NOW));
        assert!(stopped.tools.is_empty());
        assert!(find(&stopped.conditions, TOOLS_LISTED).is_none());
    }

    #[test]
    fn long_errors_are_cut_at_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_MESSAGE + "…".len());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    fn ctx_with(lister: Arc<FakeLister>) -> crate::test_support::Fixture {
        let mut f = fixture(
            OperatorConfig::default(),
            FakeStore::default(),
            at(NOW),
            |_: &http::Method, uri: &str, _: &serde_json::Value| panic!("refresh makes no apiserver request ({uri})"),
        );
        Arc::get_mut(&mut f.ctx).expect("fresh context").tools = Tools::new(lister);
        f
    }

    #[tokio::test]
    async fn refresh_lists_once_per_server_and_retries_failures() {
        let lister = FakeLister::replying([
            Err("connection refused".to_string()),
            Ok(vec![tool("weather", "Forecast")]),
            Ok(vec![tool("weather", "Forecast"), tool("alerts", "Storm alerts")]),
        ]);
        let f = ctx_with(lister.clone());
        let p = plugin("weather", &[]);
        let done = Some(Rollout::Complete { generation: 1 });

        let first = refresh(&f.ctx, &p, &ready(), done).await;
        let Outcome::Failed { message, retry_in } = &first else { panic!("{first:?}") };
        assert_eq!(
            message,
            "failed to list the tools of plugin weather at http://plugin-weather.ns.svc:8000/mcp: connection refused"
        );
        assert_eq!(*retry_in, backoff::BASE_DELAY);
        // The fixed clock has not moved: the failure is reused, the server not asked again.
        assert_eq!(refresh(&f.ctx, &p, &ready(), done).await, first);
        assert_eq!(lister.calls().len(), 1);

        // Once the backoff has passed, it is asked again.
        let later = at("2026-05-04T10:00:05Z");
        let mut ctx = Arc::try_unwrap(f.ctx).ok().expect("only owner");
        ctx = ctx.with_clock(Arc::new(move || later));
        let listed = refresh(&ctx, &p, &ready(), done).await;
        assert_eq!(listed, Outcome::Listed(vec![tool("weather", "Forecast")]));
        assert_eq!(refresh(&ctx, &p, &ready(), done).await, listed, "cached");
        assert_eq!(refresh(&ctx, &p, &Stage::Deploying, None).await, Outcome::NotServing);
        assert_eq!(refresh(&ctx, &p, &ready(), Some(Rollout::InProgress)).await, Outcome::RollingOut);
        assert_eq!(lister.calls().len(), 2);

        // A new rollout is a new server.
        let next = refresh(&ctx, &p, &ready(), Some(Rollout::Complete { generation: 2 })).await;
        assert_eq!(next, Outcome::Listed(vec![tool("weather", "Forecast"), tool("alerts", "Storm alerts")]));
        assert_eq!(lister.calls(), [ENDPOINT; 3]);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let tools = Tools::new(FakeLister::replying([]));
        let now = at(NOW);
        for i in 0..MAX_CACHED + 10 {
            let key = ServerKey { uid: format!("uid-{i}"), ..key(Some(1)) };
            let at = now + chrono::Duration::seconds(i as i64);
            tools.store(Entry { key, at, listing: Listing::Listed(vec![]) });
        }
        let cache = tools.cache.lock().unwrap();
        assert_eq!(cache.len(), MAX_CACHED);
        assert!(!cache.contains_key("uid-0"), "oldest evicted");
        assert!(cache.contains_key(&format!("uid-{}", MAX_CACHED + 9)));
    }
}
