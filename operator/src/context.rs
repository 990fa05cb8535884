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
