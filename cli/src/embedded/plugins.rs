//! Plugins in both run modes: which endpoints the engine's `PluginPool` should hold (pure), and
//! the `wellbeing up` shell that keeps the pool in step with the manifests folder, running each
//! approved Python plugin as a local child of the plugin host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, instrument, warn};
use wellbeing_assistant::Store;
use wellbeing_assistant::plugin_gateway::{LocalPluginTokens, StoreInvocationSink, gateway_env};
use wellbeing_assistant::plugins::{LocalRuntime, PluginEndpoint, PluginPool, PluginTransport, PoolConfig};
use wellbeing_crds::Plugin;
use wellbeing_crds::plugin::PluginPhase;
use wellbeing_operator::secret_store::{LocalStore, SecretValue, StoreError};

use super::manifests::ManifestSet;

/// Where `wellbeing up` finds the plugin host and the plugin modules.
#[derive(clap::Args, Clone, Debug)]
pub struct PluginArgs {
    /// The plugins folder: the plugin host in host/ and modules as <id>/v<N>.py
    /// [default: ./plugins, else plugins/ beside the manifests folder].
    #[arg(long, env = "WELLBEING_PLUGINS_DIR", value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Python 3.11+ with the plugin host's requirements (`make python-deps`).
    #[arg(long = "plugin-python", env = "WELLBEING_PYTHON", default_value = "python3", value_name = "PATH")]
    pub python: String,
}

impl PluginArgs {
    /// The plugins folder to use: the flag, `./plugins`, or `plugins/` next to the manifests
    /// folder (the repository layout, where `examples/` and `plugins/` are siblings).
    pub fn resolve_dir(&self, manifests_dir: Option<&Path>) -> PathBuf {
        if let Some(dir) = &self.plugins_dir {
            return dir.clone();
        }
        let beside = manifests_dir.and_then(Path::parent).map(|p| p.join("plugins"));
        [Some(PathBuf::from("plugins")), beside].into_iter().flatten().find(|d| d.is_dir()).unwrap_or("plugins".into())
    }
}

/// What to change in the pool so it serves exactly the plugins wanted now.
#[derive(Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// New plugins, and plugins whose version, transport or triggers changed.
    pub upsert: Vec<PluginEndpoint>,
    /// Plugins in the pool that are no longer wanted.
    pub remove: Vec<String>,
    /// Plugins left out, with why (not approved, no module, not Ready yet, a duplicate name).
    pub skipped: Vec<(String, String)>,
}

impl SyncPlan {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

/// Decide the pool's changes. `local` is embedded mode (Python modules and MCP commands run as
/// children); `None` is the cluster, where only a Ready plugin with `status.endpoint` is used, as
/// the operator has then deployed it and its Service answers. `env` adds what a local child needs
/// besides the host's own variables (the LLM gateway's URL and the plugin's token).
pub fn plan<E>(plugins: &[Plugin], local: Option<&LocalRuntime>, current: &[PluginEndpoint], mut env: E) -> SyncPlan
where
    E: FnMut(&str) -> Result<BTreeMap<String, String>, String>,
{
    let mut out = SyncPlan::default();
    let mut wanted: BTreeMap<String, PluginEndpoint> = BTreeMap::new();
    for plugin in plugins {
        let name = plugin.metadata.name.clone().unwrap_or_default();
        if wanted.contains_key(&name) {
            // The pool is keyed by name (the tools' function names start with it), so a second
            // namespace's plugin of the same name cannot be served beside the first.
            out.skipped.push((name, "another plugin has the same name".into()));
            continue;
        }
        if local.is_none() {
            let status = plugin.status.as_ref();
            let ready = status.is_some_and(|s| s.phase == PluginPhase::Ready && s.endpoint.is_some());
            if !ready {
                out.skipped.push((name, "not Ready with an endpoint".into()));
                continue;
            }
        }
        let mut endpoint = match PluginEndpoint::from_plugin(plugin, local) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                out.skipped.push((name, e.to_string()));
                continue;
            }
        };
        if let PluginTransport::Stdio { env: child_env, .. } = &mut endpoint.transport {
            match env(&name) {
                Ok(extra) => child_env.extend(extra),
                Err(reason) => {
                    out.skipped.push((name, reason));
                    continue;
                }
            }
        }
        wanted.insert(name, endpoint);
    }
    let have: BTreeMap<&str, &PluginEndpoint> = current.iter().map(|e| (e.name.as_str(), e)).collect();
    out.remove = have.keys().filter(|name| !wanted.contains_key(**name)).map(|name| name.to_string()).collect();
    out.upsert = wanted.into_values().filter(|e| have.get(e.name.as_str()).is_none_or(|old| *old != e)).collect();
    out
}

/// Apply a plan; returns whether a plugin was added or replaced (then worth discovering).
pub fn apply(pool: &PluginPool, plan: &SyncPlan) -> bool {
    if plan.is_empty() {
        return false;
    }
    for name in &plan.remove {
        pool.remove(name);
        info!(plugin = %name, "plugin removed");
    }
    let mut added = false;
    for endpoint in &plan.upsert {
        // Names and versions only: a local child's env holds its gateway token.
        info!(plugin = %endpoint.name, version = endpoint.version, stdio = endpoint.is_stdio(), "plugin ready to use");
        added |= pool.upsert(endpoint.clone());
    }
    added
}

/// Connect to every plugin not connected yet, in the background, so start-up and the manifests
/// watch never wait for a Python host to import its SDK; the first message then finds the tools
/// cached.
pub fn discover_in_background(pool: &Arc<PluginPool>) {
    let pool = pool.clone();
    tokio::spawn(
        async move {
            for (plugin, result) in pool.discover().await {
                match result {
                    Ok(tools) => info!(plugin = %plugin, tools, "plugin connected"),
                    Err(error) => warn!(plugin = %plugin, error = %error, "plugin did not start"),
                }
            }
        }
        .instrument(info_span!("plugin_discovery")),
    );
}

/// A pool that records every invocation in the database (`plugin_invocations`).
pub fn pool(store: &Store) -> Arc<PluginPool> {
    Arc::new(PluginPool::new(
        Vec::new(),
        StoreInvocationSink::new(store.clone()),
        reqwest::Client::new(),
        PoolConfig::default(),
    ))
}

/// The embedded plugins: a pool following the manifests folder, and the task that keeps it so.
pub struct LocalPlugins {
    pub pool: Arc<PluginPool>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalPlugins {
    /// Load the folder's plugins into a new pool now (no child starts yet), start connecting
    /// them in the background, and follow the folder until `cancel`.
    pub fn start(
        runtime: LocalRuntime,
        manifests: watch::Receiver<Arc<ManifestSet>>,
        store: &Store,
        tokens: Arc<LocalPluginTokens>,
        secrets: Arc<LocalStore>,
        assistant_url: String,
        cancel: CancellationToken,
    ) -> LocalPlugins {
        let pool = pool(store);
        let env = ChildEnv { tokens, secrets, url: assistant_url };
        sync(&pool, &manifests.borrow(), &runtime, &env);
        let task =
            tokio::spawn(follow(pool.clone(), manifests, runtime, env, cancel).instrument(info_span!("plugin_sync")));
        LocalPlugins { pool, task }
    }

    /// After `cancel`: wait for the sync task, then shut every child down. Call it once messages
    /// in flight are done, since a call on a shut-down pool would start its child again.
    pub async fn stop(self) {
        if let Err(error) = self.task.await {
            warn!(error = %error, "the plugin sync task failed");
        }
        self.pool.shutdown().await;
        info!("plugins stopped");
    }
}

/// What a local child gets besides the host's own environment: its gateway token and URL, and
/// the values of the secrets it declares, read from the local store (the cluster's equivalent is
/// the operator's `secretKeyRef` env).
struct ChildEnv {
    tokens: Arc<LocalPluginTokens>,
    secrets: Arc<LocalStore>,
    url: String,
}

/// The env of a plugin's declared secrets, as the operator sets it in the cluster: the value
/// under `spec.requiredSecrets[].env`, and `WELLBEING_SECRET_ENV_<NAME>` naming that variable for
/// the host. A missing secret keeps the plugin from running, like `WaitingForSecrets`.
pub fn secret_env(
    plugin: &Plugin,
    mut value: impl FnMut(&str) -> Result<Option<SecretValue>, StoreError>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for secret in &plugin.spec.required_secrets {
        match value(&secret.name) {
            Ok(Some(v)) => {
                env.insert(secret.env.clone(), v.expose().to_string());
                let key: String = secret
                    .name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
                    .collect();
                env.insert(format!("WELLBEING_SECRET_ENV_{key}"), secret.env.clone());
            }
            Ok(None) => {
                return Err(format!(
                    "waiting for secret {:?} (run `wellbeing secrets resolve --store local`)",
                    secret.name
                ));
            }
            Err(e) => return Err(format!("failed to read secret {:?} from the local store: {e}", secret.name)),
        }
    }
    Ok(env)
}

#[instrument(skip_all, fields(plugins = set.plugins.len()))]
fn sync(pool: &Arc<PluginPool>, set: &ManifestSet, runtime: &LocalRuntime, child: &ChildEnv) {
    let plan = plan(&set.plugins, Some(runtime), &pool.endpoints(), |name| {
        let mut env = gateway_env(&child.tokens, name, &child.url)
            .map_err(|e| format!("failed to give it a gateway token: {e}"))?;
        if let Some(plugin) = set.plugins.iter().find(|p| p.metadata.name.as_deref() == Some(name)) {
            env.extend(secret_env(plugin, |id| child.secrets.value(id))?);
        }
        Ok(env)
    });
    for (plugin, reason) in &plan.skipped {
        info!(plugin = %plugin, reason = %reason, "plugin not run");
    }
    if apply(pool, &plan) {
        discover_in_background(pool);
    }
}

async fn follow(
    pool: Arc<PluginPool>,
    mut manifests: watch::Receiver<Arc<ManifestSet>>,
    runtime: LocalRuntime,
    env: ChildEnv,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = manifests.changed() => {
                if changed.is_err() {
                    // The watcher is gone (shutdown): keep the plugins until cancelled.
                    cancel.cancelled().await;
                    break;
                }
                let set = manifests.borrow_and_update().clone();
                sync(&pool, &set, &runtime, &env);
            }
        }
    }
}

#[cfg(test)]
mod secret_env_tests {
    use super::*;

    fn plugin_needing(name: &str, env: &str) -> Plugin {
        let yaml = format!(
            "apiVersion: wellbeing.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: weather}}\nspec:\n  description: d\n  source: {{python: {{module: weather/v1.py}}}}\n  requiredSecrets: [{{name: {name}, env: {env}}}]\n"
        );
        match wellbeing_crds::manifest::parse_documents(&yaml).remove(0) {
            Ok(wellbeing_crds::manifest::Resource::Plugin(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn declared_secrets_reach_the_child_as_the_operator_sets_them() {
        let p = plugin_needing("openweather-api-key", "OPENWEATHER_API_KEY");
        let env = secret_env(&p, |id| {
            assert_eq!(id, "openweather-api-key");
            Ok(Some(SecretValue::new("v4lue")))
        })
        .unwrap();
        assert_eq!(env["OPENWEATHER_API_KEY"], "v4lue");
        assert_eq!(env["WELLBEING_SECRET_ENV_OPENWEATHER_API_KEY"], "OPENWEATHER_API_KEY");
    }

    #[test]
    fn a_missing_secret_keeps_the_plugin_waiting_and_names_it() {
        let p = plugin_needing("openweather-api-key", "OPENWEATHER_API_KEY");
        let err = secret_env(&p, |_| Ok(None)).unwrap_err();
        assert!(err.contains("openweather-api-key") && err.contains("secrets resolve"), "{err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_crds::manifest::{Resource, parse_documents};
    use wellbeing_crds::plugin::PluginStatus;

    fn plugin(yaml: &str) -> Plugin {
        match parse_documents(yaml).pop().expect("one document").expect("valid") {
            Resource::Plugin(p) => p,
            other => panic!("not a plugin: {}", other.kind()),
        }
    }

    fn python_plugin(name: &str, version: i32, approved: bool) -> Plugin {
        plugin(&format!(
            "apiVersion: wellbeing.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}}}\nspec:\n  description: d\n  \
             version: {version}\n  approved: {approved}\n  source: {{python: {{module: {name}/v{version}.py}}}}\n"
        ))
    }

    fn ready(mut p: Plugin, endpoint: &str) -> Plugin {
        p.status =
            Some(PluginStatus { phase: PluginPhase::Ready, endpoint: Some(endpoint.into()), ..Default::default() });
        p
    }

    /// A plugins dir with the given modules (empty files: the plan only checks they exist).
    fn runtime(modules: &[&str]) -> (tempfile::TempDir, LocalRuntime) {
        let dir = tempfile::tempdir().unwrap();
        for module in modules {
            let path = dir.path().join(module);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let rt = LocalRuntime { python: "python3".into(), plugins_dir: dir.path().to_path_buf() };
        (dir, rt)
    }

    fn token(name: &str) -> Result<BTreeMap<String, String>, String> {
        Ok(BTreeMap::from([("WELLBEING_PLUGIN_TOKEN".to_string(), format!("token-of-{name}"))]))
    }

    fn names_of(endpoints: &[PluginEndpoint]) -> Vec<&str> {
        endpoints.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn embedded_runs_approved_modules_with_their_gateway_env_and_skips_the_rest() {
        let (_dir, rt) = runtime(&["hydration/v1.py", "draft/v1.py"]);
        let plugins =
            [python_plugin("hydration", 1, true), python_plugin("draft", 1, false), python_plugin("lost", 1, true)];
        let plan = plan(&plugins, Some(&rt), &[], token);
        assert_eq!(names_of(&plan.upsert), ["hydration"]);
        assert!(plan.remove.is_empty());
        let PluginTransport::Stdio { command, args, env } = &plan.upsert[0].transport else { panic!("stdio expected") };
        assert_eq!(command, "python3");
        assert!(args.iter().any(|a| a.ends_with("hydration/v1.py")), "{args:?}");
        assert_eq!(env["WELLBEING_PLUGIN_TOKEN"], "token-of-hydration");
        assert!(env.contains_key("PYTHONPATH"), "the host's own env is kept: {env:?}");
        let skipped: BTreeMap<_, _> = plan.skipped.into_iter().collect();
        assert!(skipped["draft"].contains("not approved"), "{skipped:?}");
        assert!(skipped["lost"].contains("does not exist"), "{skipped:?}");
    }

    #[test]
    fn an_unchanged_plugin_is_left_alone_a_new_version_replaced_and_a_gone_one_removed() {
        let (_dir, rt) = runtime(&["hydration/v1.py", "hydration/v2.py", "sleep/v1.py"]);
        let first =
            plan(&[python_plugin("hydration", 1, true), python_plugin("sleep", 1, true)], Some(&rt), &[], token);
        let current = first.upsert.clone();
        assert_eq!(names_of(&current), ["hydration", "sleep"]);

        let again =
            plan(&[python_plugin("hydration", 1, true), python_plugin("sleep", 1, true)], Some(&rt), &current, token);
        assert!(again.is_empty(), "{again:?}");

        let next = plan(&[python_plugin("hydration", 2, true)], Some(&rt), &current, token);
        assert_eq!(names_of(&next.upsert), ["hydration"]);
        assert_eq!(next.upsert[0].version, 2);
        assert_eq!(next.remove, ["sleep"]);

        // Unapproving a running plugin stops it.
        let unapproved =
            plan(&[python_plugin("hydration", 1, false), python_plugin("sleep", 1, true)], Some(&rt), &current, token);
        assert_eq!(unapproved.remove, ["hydration"]);
        assert!(unapproved.upsert.is_empty());
    }

    #[test]
    fn a_plugin_whose_token_cannot_be_made_is_not_run() {
        let (_dir, rt) = runtime(&["hydration/v1.py"]);
        let plan = plan(&[python_plugin("hydration", 1, true)], Some(&rt), &[], |_| Err("disk full".to_string()));
        assert!(plan.upsert.is_empty());
        assert_eq!(plan.skipped, [("hydration".to_string(), "disk full".to_string())]);
    }

    #[test]
    fn the_cluster_uses_ready_plugins_at_their_endpoint_and_drops_those_no_longer_ready() {
        let url = "http://plugin-hydration.wellbeing.svc:8000/mcp";
        let plugins = [ready(python_plugin("hydration", 1, true), url), python_plugin("sleep", 1, true), {
            let mut p = ready(python_plugin("walks", 1, true), "http://x/mcp");
            p.status.as_mut().unwrap().phase = PluginPhase::WaitingForSecrets;
            p
        }];
        let plan = plan(&plugins, None, &[], |_| panic!("no env in the cluster"));
        assert_eq!(names_of(&plan.upsert), ["hydration"]);
        assert_eq!(plan.upsert[0].transport, PluginTransport::Http { url: url.into() });
        assert_eq!(plan.skipped.len(), 2, "{:?}", plan.skipped);

        // The same plugin, now failing: removed from the pool.
        let mut failing = plugins[0].clone();
        failing.status.as_mut().unwrap().phase = PluginPhase::Failed;
        let later = super::plan(&[failing], None, &plan.upsert, |_| panic!("no env in the cluster"));
        assert_eq!(later.remove, ["hydration"]);
        assert!(later.upsert.is_empty());
    }

    #[test]
    fn the_same_name_twice_is_served_once() {
        let (_dir, rt) = runtime(&["hydration/v1.py"]);
        let mut other = python_plugin("hydration", 1, true);
        other.metadata.namespace = Some("elsewhere".into());
        let plan = plan(&[python_plugin("hydration", 1, true), other], Some(&rt), &[], token);
        assert_eq!(plan.upsert.len(), 1);
        assert_eq!(plan.skipped.len(), 1);
    }

    #[test]
    fn the_plugins_dir_defaults_to_the_flag_then_plugins_beside_the_manifests() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
        std::fs::create_dir_all(tmp.path().join("examples")).unwrap();
        let args = PluginArgs { plugins_dir: None, python: "python3".into() };
        let found = args.resolve_dir(Some(&tmp.path().join("examples")));
        // ./plugins wins when the working directory has one (the repository root).
        if !Path::new("plugins").is_dir() {
            assert_eq!(found, tmp.path().join("plugins"));
        }
        let explicit = PluginArgs { plugins_dir: Some("/p".into()), python: "python3".into() };
        assert_eq!(explicit.resolve_dir(Some(&tmp.path().join("examples"))), PathBuf::from("/p"));
    }
}
