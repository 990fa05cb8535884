//! The context every reconcile shares: client, secret store, metrics, events, settings, clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::{
    Client,
    runtime::events::{Recorder, Reporter},
};

use crate::{
    backoff::Backoff,
    config::OperatorConfig,
    metrics::Metrics,
    names::FIELD_MANAGER,
    plugin::tools::{ToolLister, Tools},
    secret_store::{SecretStore, StoreError},
};

/// Current time, so tests run on a fixed clock.
pub type Clock = wellbeing_common::SharedClock;

/// The secret store for a namespace. The Kubernetes store is per namespace (plugin pods can only
/// reference Secrets in their own namespace); GCP and local stores are one for all.
pub type StoreFor = Arc<dyn Fn(&str) -> Result<Arc<dyn SecretStore>, StoreError> + Send + Sync>;

pub struct Context {
    pub client: Client,
    pub store_for: StoreFor,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub config: OperatorConfig,
    pub clock: Clock,
    pub backoff: Backoff,
    /// Lists the tools of Ready plugins for `status.tools`, with what it last found.
    pub tools: Tools,
    /// When this replica last had an answer from the secret store, per requirement.
    pub store_checks: StoreChecks,
    /// The controllers' shared caches, for reconciles that need other objects of a namespace.
    pub caches: Caches,
}

/// The shared caches of the running controllers (one per watch scope). Empty when no controller
/// runs (tests and one-off reconciles): callers then list from the apiserver.
#[derive(Default)]
pub struct Caches {
    personas: std::sync::RwLock<Vec<kube::runtime::reflector::Store<wellbeing_crds::Persona>>>,
    plugins: std::sync::RwLock<Vec<kube::runtime::reflector::Store<wellbeing_crds::Plugin>>>,
}

impl Caches {
    pub fn add_personas(&self, store: kube::runtime::reflector::Store<wellbeing_crds::Persona>) {
        self.personas.write().unwrap_or_else(|e| e.into_inner()).push(store);
    }

    pub fn add_plugins(&self, store: kube::runtime::reflector::Store<wellbeing_crds::Plugin>) {
        self.plugins.write().unwrap_or_else(|e| e.into_inner()).push(store);
    }

    /// Every Persona of `namespace` from the caches (after their first full list), or `None`
    /// when there are no caches.
    pub async fn personas_in(&self, namespace: &str) -> Option<Vec<wellbeing_crds::Persona>> {
        let stores = self.personas.read().unwrap_or_else(|e| e.into_inner()).clone();
        in_namespace(stores, namespace).await
    }

    pub async fn plugins_in(&self, namespace: &str) -> Option<Vec<wellbeing_crds::Plugin>> {
        let stores = self.plugins.read().unwrap_or_else(|e| e.into_inner()).clone();
        in_namespace(stores, namespace).await
    }
}

async fn in_namespace<K>(stores: Vec<kube::runtime::reflector::Store<K>>, namespace: &str) -> Option<Vec<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    if stores.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for store in stores {
        // A cache still on its first list would miss objects: wait for it.
        let _ = store.wait_until_ready().await;
        out.extend(
            store
                .state()
                .into_iter()
                .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
                .map(|o| o.as_ref().clone()),
        );
    }
    Some(out)
}

/// Last store answer per `namespace/name`, kept in memory: writing it into the status on every
/// poll would re-trigger every Plugin that watches the requirement.
#[derive(Debug, Default)]
pub struct StoreChecks(std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<Utc>>>);

impl StoreChecks {
    pub fn last(&self, key: &str) -> Option<chrono::DateTime<Utc>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied()
    }

    pub fn record(&self, key: &str, at: chrono::DateTime<Utc>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), at);
    }
}

impl Context {
    /// `instance` names this replica in Events (the pod name).
    pub fn new(
        client: Client,
        store_for: StoreFor,
        metrics: Arc<Metrics>,
        config: OperatorConfig,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter { controller: FIELD_MANAGER.to_string(), instance };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            store_for,
            metrics,
            config,
            clock: wellbeing_common::clock::system(),
            backoff: Backoff::default(),
            tools: Tools::default(),
            store_checks: StoreChecks::default(),
            caches: Caches::default(),
        }
    }

    /// Replace the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Replace the MCP tool lister (tests).
    pub fn with_tool_lister(mut self, lister: Arc<dyn ToolLister>) -> Self {
        self.tools = Tools::new(lister);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// One store shared by every namespace.
    pub fn shared_store(store: Arc<dyn SecretStore>) -> StoreFor {
        Arc::new(move |_| Ok(store.clone()))
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher::Event};
    use wellbeing_crds::Plugin;

    use super::*;

    fn plugin(ns: &str, name: &str) -> Plugin {
        let mut p = crate::test_support::plugin(name, &[]);
        p.metadata.namespace = Some(ns.into());
        p
    }

    #[tokio::test]
    async fn caches_answer_per_namespace_and_stand_aside_when_absent() {
        let caches = Caches::default();
        assert!(caches.plugins_in("ns").await.is_none(), "no cache: the reconcile lists");
        let (reader, mut writer) = reflector::store::<Plugin>();
        writer.apply_watcher_event(&Event::Init);
        for p in [plugin("ns", "a"), plugin("other", "b"), plugin("ns", "c")] {
            writer.apply_watcher_event(&Event::InitApply(p));
        }
        writer.apply_watcher_event(&Event::InitDone);
        caches.add_plugins(reader);
        let mut names: Vec<String> =
            caches.plugins_in("ns").await.unwrap().into_iter().map(|p| p.metadata.name.unwrap()).collect();
        names.sort();
        assert_eq!(names, ["a", "c"]);
    }
}
