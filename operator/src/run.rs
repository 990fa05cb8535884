//! Runtime wiring: the four controllers per watch scope, leader election, the HTTP server and
//! shutdown.

use std::{
    fmt::Debug,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::{StreamExt, future::join_all};
use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::CronJob,
    core::v1::{ConfigMap, Service},
    networking::v1::NetworkPolicy,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action, Config as ControllerConfig},
        reflector::{self, ObjectRef},
        watcher,
    },
};
use tokio::{net::TcpListener, sync::watch};
use tracing::{Instrument, info, info_span, warn};
use wellbeing_crds::{Goal, Persona, Plugin, SecretRequirement};

use crate::{
    context::Context,
    error::{Error, Result},
    goal, leader,
    names::{managed_selector, requirement_name},
    persona, plugin, requirement,
    server::{self, Health, WatchErrors},
};

/// Concurrent reconciles per controller. Persona reconciles list their peers, so a few at a time
/// is plenty; requirement reconciles wait on the store and benefit from more.
pub const PERSONA_CONCURRENCY: u16 = 2;
pub const GOAL_CONCURRENCY: u16 = 4;
pub const PLUGIN_CONCURRENCY: u16 = 4;
pub const REQUIREMENT_CONCURRENCY: u16 = 8;

/// Where the controllers watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    AllNamespaces,
    Namespace(String),
}

impl Scope {
    /// Every relation between our kinds stays inside one namespace, so several namespaces are
    /// simply several independent sets of controllers.
    pub fn from_list(namespaces: &[String]) -> Vec<Scope> {
        if namespaces.is_empty() {
            vec![Scope::AllNamespaces]
        } else {
            namespaces.iter().map(|n| Scope::Namespace(n.clone())).collect()
        }
    }

    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self {
            Scope::AllNamespaces => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

fn key<K: Resource>(kind: &str, obj: &K) -> String {
    format!(
        "{kind}/{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Error policy: count, log, back off per object (1 s doubling to 5 min).
fn error_policy<K: Resource>(kind: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, error, ctx| {
        ctx.metrics.failure(kind, error.metric_label());
        let delay = ctx.backoff.failed(&key(kind, obj.as_ref()));
        warn!(
            kind,
            namespace = obj.meta().namespace.as_deref().unwrap_or_default(),
            name = obj.meta().name.as_deref().unwrap_or_default(),
            error = %crate::error_chain(error),
            retry_in_seconds = delay.as_secs(),
            "reconcile failed"
        );
        Action::requeue(delay)
    }
}

/// Wrap a reconcile so a success clears the object's backoff.
fn with_backoff_reset<K, F, Fut>(
    kind: &'static str,
    f: F,
) -> impl FnMut(Arc<K>, Arc<Context>) -> futures::future::BoxFuture<'static, Result<Action>>
where
    K: Resource + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    move |obj, ctx| {
        Box::pin(async move {
            let k = key(kind, obj.as_ref());
            let result = f(obj, ctx.clone()).await;
            if result.is_ok() {
                ctx.backoff.succeeded(&k);
            }
            result
        })
    }
}

/// Consume a controller's results. Reconcile errors are logged by the error policy; errors of
/// the watches and the queue (a 403, a CRD not installed) are logged here at warn, counted, and
/// keep `/readyz` false while they recur.
async fn drain<K, R>(
    kind: &'static str,
    scope: &Scope,
    ctx: &Context,
    watches: &WatchErrors,
    stream: impl futures::Stream<Item = Result<(ObjectRef<K>, Action), controller::Error<R, watcher::Error>>>,
) where
    K: Resource + Debug,
    K::DynamicType: Debug,
    R: std::error::Error + 'static,
{
    let scope_text = scope_text(scope);
    stream
        .for_each(|res| {
            let scope_text = &scope_text;
            async move {
                match res {
                    Ok((obj, _)) => tracing::debug!(kind, object = %obj.name, "reconciled"),
                    Err(controller::Error::QueueError(error)) => {
                        ctx.metrics.watch_error(kind);
                        let error = crate::error_chain(&error);
                        warn!(kind, scope = %scope_text, %error, "watch failed; retrying with backoff");
                        watches.failed(&format!("{kind} watches in {scope_text}"), error);
                    }
                    Err(error) => tracing::debug!(kind, error = %error, "controller event"),
                }
            }
        })
        .await;
}

async fn wait_ready<K>(store: kube::runtime::reflector::Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let _ = store.wait_until_ready().await;
}

/// A future resolving once `stop` turns true, in the shape kube-runtime's graceful shutdown takes.
pub fn stopped(stop: watch::Receiver<bool>) -> impl Future<Output = ()> + Send + Sync + 'static {
    // `Shared` makes the future `Sync`, which kube-runtime's graceful shutdown asks for.
    async move {
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
    }
    .boxed()
    .shared()
}

use futures::FutureExt;

/// Events a slow subscriber may fall behind by before the shared watch waits for it.
const SHARED_BUFFER: usize = 1024;

/// One watch of a kind feeding a shared cache: the cache, a stream of changed objects that
/// controllers subscribe to, and the future that drives the watch (until `stop`). Its errors
/// (a 403, a CRD that is not installed) are logged at warn, counted, and keep `/readyz` false.
#[allow(clippy::type_complexity)]
fn shared_watch<K>(
    kind: &'static str,
    api: Api<K>,
    scope: &Scope,
    ctx: &Arc<Context>,
    watches: &Arc<WatchErrors>,
    stop: watch::Receiver<bool>,
) -> (reflector::Store<K>, reflector::ReflectHandle<K>, futures::future::BoxFuture<'static, ()>)
where
    K: Resource<DynamicType = ()> + Clone + Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store_shared(SHARED_BUFFER);
    let events = writer.subscribe().expect("a shared store hands out subscriptions");
    let scope_text = scope_text(scope);
    let (ctx, watches) = (ctx.clone(), watches.clone());
    let driver = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(trim)
        .reflect_shared(writer)
        .take_until(stopped(stop))
        .for_each(move |event| {
            if let Err(error) = event {
                ctx.metrics.watch_error(kind);
                let error = crate::error_chain(&error);
                warn!(kind, scope = %scope_text, %error, "watch failed; retrying with backoff");
                watches.failed(&format!("{kind} watch in {scope_text}"), error);
            }
            futures::future::ready(())
        })
        .boxed();
    (store, events, driver)
}

/// What the caches drop from every object before storing it. No reconcile reads either, and
/// both can outweigh the rest of the object: `kubectl apply` copies the whole manifest (a
/// Plugin's inline code included) into the annotation, and managed fields list every field
/// again per writer.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn trim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::AllNamespaces => "all namespaces".to_string(),
        Scope::Namespace(ns) => format!("namespace {ns}"),
    }
}

/// Run the four controllers for one scope until `stop` turns true. `synced` is incremented once
/// all four caches hold their first full list.
pub async fn run_controllers(
    ctx: Arc<Context>,
    scope: Scope,
    stop: watch::Receiver<bool>,
    synced: Arc<AtomicUsize>,
    watches: Arc<WatchErrors>,
) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default().labels(&managed_selector());

    // One watch and one cache per kind, shared by every controller that needs the kind (the
    // Persona controller and its peers, Plugins for three controllers, SecretRequirements for
    // two), and handed to the reconciles so they read the cache instead of listing.
    let (persona_store, persona_events, persona_watch) =
        shared_watch(persona::KIND, scope.api::<Persona>(&client), &scope, &ctx, &watches, stop.clone());
    let (goal_store, goal_events, goal_watch) =
        shared_watch(goal::KIND, scope.api::<Goal>(&client), &scope, &ctx, &watches, stop.clone());
    let (plugin_store, plugin_events, plugin_watch) =
        shared_watch(plugin::KIND, scope.api::<Plugin>(&client), &scope, &ctx, &watches, stop.clone());
    let (requirement_store, requirement_events, requirement_watch) =
        shared_watch(requirement::KIND, scope.api::<SecretRequirement>(&client), &scope, &ctx, &watches, stop.clone());
    ctx.caches.add_personas(persona_store.clone());
    ctx.caches.add_plugins(plugin_store.clone());

    // Personas: a change to one re-reconciles the others of its namespace (conflicts).
    let peers = persona_store.clone();
    let personas = Controller::for_shared_stream(persona_events.clone(), persona_store.clone())
        .owns(scope.api::<CronJob>(&client), managed.clone())
        .watches_shared_stream(persona_events, move |changed: Arc<Persona>| {
            let ns = changed.namespace();
            let name = changed.name_any();
            peers
                .state()
                .into_iter()
                .filter(|p| p.namespace() == ns && p.name_any() != name)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(ControllerConfig::default().concurrency(PERSONA_CONCURRENCY))
        .graceful_shutdown_on(stopped(stop.clone()));

    // Goals: coverage depends on every Plugin of the namespace.
    let goals_of_ns = goal_store.clone();
    let goals = Controller::for_shared_stream(goal_events, goal_store.clone())
        .watches_shared_stream(plugin_events.clone(), move |p: Arc<Plugin>| {
            let ns = p.namespace();
            goals_of_ns
                .state()
                .into_iter()
                .filter(|g| g.namespace() == ns)
                .map(|g| ObjectRef::from_obj(g.as_ref()))
                .collect::<Vec<_>>()
        })
        .with_config(ControllerConfig::default().concurrency(GOAL_CONCURRENCY))
        .graceful_shutdown_on(stopped(stop.clone()));

    // Plugins: children, and the requirements they wait for.
    let users = plugin_store.clone();
    let plugins = Controller::for_shared_stream(plugin_events.clone(), plugin_store.clone())
        .owns(scope.api::<Deployment>(&client), managed.clone())
        .owns(scope.api::<Service>(&client), managed.clone())
        .owns(scope.api::<ConfigMap>(&client), managed.clone())
        .owns(scope.api::<NetworkPolicy>(&client), managed.clone())
        .watches_shared_stream(requirement_events.clone(), move |req: Arc<SecretRequirement>| {
            let ns = req.namespace();
            let mut names: Vec<String> = req.status.as_ref().map(|s| s.used_by.clone()).unwrap_or_default();
            names.extend(
                users
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == ns)
                    .filter(|p| p.spec.required_secrets.iter().any(|s| s.name == req.spec.secret_id))
                    .map(|p| p.name_any()),
            );
            names.sort();
            names.dedup();
            let ns = ns.unwrap_or_default();
            names.into_iter().map(|n| ObjectRef::new(&n).within(&ns)).collect::<Vec<_>>()
        })
        .with_config(ControllerConfig::default().concurrency(PLUGIN_CONCURRENCY))
        .graceful_shutdown_on(stopped(stop.clone()));

    // SecretRequirements: `usedBy` follows the Plugins, including their deletion.
    let requirements = Controller::for_shared_stream(requirement_events, requirement_store.clone())
        .watches_shared_stream(plugin_events, |p: Arc<Plugin>| {
            let ns = p.namespace().unwrap_or_default();
            p.spec
                .secret_names()
                .into_iter()
                .map(|id| ObjectRef::new(&requirement_name(&id)).within(&ns))
                .collect::<Vec<_>>()
        })
        .with_config(ControllerConfig::default().concurrency(REQUIREMENT_CONCURRENCY))
        .graceful_shutdown_on(stopped(stop.clone()));

    let ready = {
        let synced = synced.clone();
        let scope = scope.clone();
        async move {
            futures::join!(
                wait_ready(persona_store),
                wait_ready(goal_store),
                wait_ready(plugin_store),
                wait_ready(requirement_store)
            );
            synced.fetch_add(1, Ordering::AcqRel);
            info!(?scope, "controller caches synced");
        }
    };
    let ready = tokio::spawn(ready.in_current_span());

    futures::join!(
        persona_watch,
        goal_watch,
        plugin_watch,
        requirement_watch,
        drain(
            persona::KIND,
            &scope,
            &ctx,
            &watches,
            personas.run(
                with_backoff_reset(persona::KIND, persona::reconcile),
                error_policy(persona::KIND),
                ctx.clone()
            )
        ),
        drain(
            goal::KIND,
            &scope,
            &ctx,
            &watches,
            goals.run(with_backoff_reset(goal::KIND, goal::reconcile), error_policy(goal::KIND), ctx.clone())
        ),
        drain(
            plugin::KIND,
            &scope,
            &ctx,
            &watches,
            plugins.run(with_backoff_reset(plugin::KIND, plugin::reconcile), error_policy(plugin::KIND), ctx.clone())
        ),
        drain(
            requirement::KIND,
            &scope,
            &ctx,
            &watches,
            requirements.run(
                with_backoff_reset(requirement::KIND, requirement::reconcile),
                error_policy(requirement::KIND),
                ctx.clone()
            )
        ),
    );
    ready.abort();
}

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub listen: SocketAddr,
    pub scopes: Vec<Scope>,
    /// `None`: no election, this replica always leads (one replica, or tests).
    pub leader: Option<LeaderOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to keep leadership")]
    Leadership(#[source] leader::LeaseError),
    #[error("failed to keep the leader election task running")]
    LeaderTask(#[source] tokio::task::JoinError),
}

/// Run the operator until `shutdown` resolves (graceful: in-flight reconciles finish) or the
/// lease is lost (an error: the caller must exit the process).
pub async fn run(
    ctx: Arc<Context>,
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::result::Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (lead_tx, lead_rx) = watch::channel(opts.leader.is_none());
    let synced = Arc::new(AtomicUsize::new(0));
    let watches = Arc::new(WatchErrors::default());
    let health = Health {
        watches: watches.clone(),
        metrics: ctx.metrics.clone(),
        leading: lead_rx.clone(),
        synced: synced.clone(),
        scopes: opts.scopes.len(),
    };

    let listener =
        TcpListener::bind(opts.listen).await.map_err(|source| RunError::Bind { addr: opts.listen, source })?;
    info!(addr = %opts.listen, "serving /healthz, /readyz and /metrics");
    let server =
        tokio::spawn(server::serve(listener, health, stopped(stop_rx.clone())).instrument(info_span!("http_server")));

    let mut lease_task: Option<tokio::task::AbortHandle> = None;
    let lease: futures::future::BoxFuture<'static, RunError> = match opts.leader.clone() {
        Some(l) => {
            let task = tokio::spawn(
                leader::run(ctx.client.clone(), l.namespace, l.identity, lead_tx)
                    .instrument(info_span!("leader_election")),
            );
            lease_task = Some(task.abort_handle());
            Box::pin(async move {
                match task.await {
                    Ok(lost) => RunError::Leadership(lost),
                    Err(join) => RunError::LeaderTask(join),
                }
            })
        }
        None => {
            drop(lead_tx);
            Box::pin(futures::future::pending())
        }
    };
    tokio::pin!(shutdown);
    let mut lease = lease;

    let mut leading = lead_rx.clone();
    // The watch guard `wait_for` returns is not `Send`: drop it inside the block.
    let became_leader = async move {
        let _ = leading.wait_for(|l| *l).await;
    };
    tokio::select! {
        _ = &mut shutdown => {
            stop_tx.send_replace(true);
            let _ = server.await;
            return Ok(());
        }
        lost = &mut lease => return Err(lost),
        _ = became_leader => {}
    }

    info!(scopes = ?opts.scopes, "leading: starting controllers");
    let controllers = tokio::spawn(
        join_all(opts.scopes.iter().cloned().map(|scope| {
            let span = info_span!("controllers", scope = ?scope);
            run_controllers(ctx.clone(), scope, stop_rx.clone(), synced.clone(), watches.clone()).instrument(span)
        }))
        .map(|_| ()),
    );

    tokio::select! {
        _ = &mut shutdown => {
            info!("shutting down: letting in-flight reconciles finish");
            stop_tx.send_replace(true);
            let _ = controllers.await;
            // Nothing reconciles any more: stop renewing, then hand the lease over at once.
            if let Some(task) = &lease_task {
                task.abort();
            }
            drop(lease);
            if let Some(l) = &opts.leader
                && let Err(error) = leader::release(ctx.client.clone(), &l.namespace, &l.identity).await
            {
                warn!(error = %crate::error_chain(&error), "could not release the leader lease; it expires on its own");
            }
            let _ = server.await;
            Ok(())
        }
        // No graceful path here: another replica may already be reconciling, and only ending
        // this process guarantees this one stops writing.
        lost = &mut lease => Err(lost),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    #[test]
    fn caches_keep_what_reconciles_read() {
        let mut p = crate::test_support::plugin("p", &[]);
        p.metadata.managed_fields =
            Some(vec![ManagedFieldsEntry { manager: Some("kubectl".into()), ..Default::default() }]);
        p.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED.to_string(), "{\"spec\":{}}".to_string()),
            ("team".to_string(), "sleep".to_string()),
        ]));
        let before = p.clone();
        trim(&mut p);
        assert_eq!(p.metadata.managed_fields, None);
        assert_eq!(p.metadata.annotations, Some(BTreeMap::from([("team".to_string(), "sleep".to_string())])));
        assert_eq!(p.spec, before.spec);
        assert_eq!(p.metadata.name, before.metadata.name);
    }
}
