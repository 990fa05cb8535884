//! Plugins of `wellbeing webhook` in the cluster: a watch on the namespace's Plugins keeps the
//! engine's `PluginPool` serving exactly the Ready ones, each at its `status.endpoint`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument, warn};
use wellbeing_assistant::plugins::PluginPool;
use wellbeing_crds::Plugin;

use crate::embedded::plugins::{apply, discover_in_background, plan};

/// The namespace's Plugins as last seen, by name.
#[derive(Debug, Default)]
pub struct Known {
    plugins: BTreeMap<String, Plugin>,
    /// A (re-)list in progress: replaces everything at `InitDone`, so a re-list also forgets
    /// Plugins deleted while the watch was disconnected.
    relist: Option<BTreeMap<String, Plugin>>,
}

impl Known {
    /// Apply one watch event; whether the set of Plugins may have changed.
    pub fn apply(&mut self, event: Event<Plugin>) -> bool {
        let name = |p: &Plugin| p.metadata.name.clone().unwrap_or_default();
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                false
            }
            Event::InitApply(plugin) => {
                self.relist.get_or_insert_with(BTreeMap::new).insert(name(&plugin), plugin);
                false
            }
            Event::InitDone => {
                self.plugins = self.relist.take().unwrap_or_default();
                true
            }
            Event::Apply(plugin) => {
                self.plugins.insert(name(&plugin), plugin);
                true
            }
            Event::Delete(plugin) => self.plugins.remove(&name(&plugin)).is_some(),
        }
    }

    pub fn plugins(&self) -> Vec<Plugin> {
        self.plugins.values().cloned().collect()
    }
}

/// Bring the pool in line with the Plugins known now; new endpoints are connected in the background.
#[instrument(skip_all, fields(plugins = known.plugins.len()))]
pub fn sync(pool: &Arc<PluginPool>, known: &Known) {
    // The operator hands plugin pods their gateway token; the assistant adds no env in the cluster.
    let plan = plan(&known.plugins(), None, &pool.endpoints(), |_| Ok(BTreeMap::new()));
    for (plugin, reason) in &plan.skipped {
        debug!(plugin = %plugin, reason = %reason, "plugin not used");
    }
    if apply(pool, &plan) {
        discover_in_background(pool);
    }
}

/// Watch Plugins in `namespace` until `stop`, then close the pool's connections; errors are
/// retried with kube's default backoff.
pub async fn watch(client: kube::Client, namespace: String, pool: Arc<PluginPool>, stop: CancellationToken) {
    let api: kube::Api<Plugin> = kube::Api::namespaced(client, &namespace);
    let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut known = Known::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            next = events.next() => match next {
                Some(Ok(event)) => {
                    if known.apply(event) {
                        sync(&pool, &known);
                    }
                }
                Some(Err(error)) => warn!(error = %error, namespace = %namespace, "plugin watch failed; retrying"),
                None => break,
            },
        }
    }
    pool.shutdown().await;
    info!("plugin watch stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_assistant::plugins::PluginTransport;
    use wellbeing_crds::plugin::{PluginPhase, PluginStatus};

    fn plugin(name: &str, phase: PluginPhase) -> Plugin {
        let yaml = format!(
            "apiVersion: wellbeing.dev/v1alpha1\nkind: Plugin\nmetadata: {{name: {name}, namespace: wellbeing}}\n\
             spec: {{description: d, source: {{python: {{module: {name}/v1.py}}}}}}\n"
        );
        let mut p: Plugin = serde_yaml::from_str(&yaml).unwrap();
        p.status = Some(PluginStatus {
            phase,
            endpoint: Some(format!("http://plugin-{name}.wellbeing.svc:8000/mcp")),
            ..Default::default()
        });
        p
    }

    fn pool() -> Arc<PluginPool> {
        let sink = Arc::new(wellbeing_assistant::plugins::MemorySink::default());
        Arc::new(PluginPool::new(Vec::new(), sink, reqwest::Client::new(), Default::default()))
    }

    fn served(pool: &PluginPool) -> Vec<(String, PluginTransport)> {
        pool.endpoints().into_iter().map(|e| (e.name, e.transport)).collect()
    }

    #[tokio::test]
    async fn the_pool_follows_the_watch_ready_in_and_everything_else_out() {
        let pool = pool();
        let mut known = Known::default();
        for event in [
            Event::Init,
            Event::InitApply(plugin("hydration", PluginPhase::Ready)),
            Event::InitApply(plugin("walks", PluginPhase::WaitingForSecrets)),
        ] {
            assert!(!known.apply(event), "nothing changes before the list is complete");
        }
        assert!(known.apply(Event::InitDone));
        sync(&pool, &known);
        let url = "http://plugin-hydration.wellbeing.svc:8000/mcp".to_string();
        assert_eq!(served(&pool), [("hydration".to_string(), PluginTransport::Http { url })]);

        // The secret arrives and walks becomes Ready; hydration fails.
        assert!(known.apply(Event::Apply(plugin("walks", PluginPhase::Ready))));
        assert!(known.apply(Event::Apply(plugin("hydration", PluginPhase::Failed))));
        sync(&pool, &known);
        assert_eq!(served(&pool).into_iter().map(|(n, _)| n).collect::<Vec<_>>(), ["walks"]);

        // Deleted while disconnected: the re-list forgets it.
        known.apply(Event::Init);
        assert!(known.apply(Event::InitDone));
        sync(&pool, &known);
        assert!(served(&pool).is_empty());
    }
}
