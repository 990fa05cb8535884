//! Plugin controller: SecretRequirements for declared secrets, then the MCP server's children
//! once the plugin is approved and every secret is present.

pub mod build;
pub mod tools;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret, Service},
    networking::v1::NetworkPolicy,
    node::v1::RuntimeClass,
};
use kube::{
    Api, ResourceExt,
    api::{DynamicObject, PostParams},
    runtime::controller::Action,
};
use tracing::{Span, debug, field, info, instrument};
use wellbeing_crds::{Plugin, SecretRequirement, plugin::LlmTask, secret_requirement::SecretPhase};

use crate::{
    apply::{apply, apply_status, delete_if_exists, delete_stale},
    config::SecretDelivery,
    context::Context,
    error::{Error, Result, kube_err},
    events, failure,
    names::requirement_name,
};
use build::{Stage, Workload, changed, conditions_of, status, status_patch, validate};

pub const KIND: &str = "Plugin";

/// A Ready plugin is looked at again this often even without events (a safety net; the
/// Deployment watch reports availability changes as they happen).
const READY_RESYNC: Duration = Duration::from_secs(600);

#[instrument(skip_all, fields(namespace = field::Empty, name = %plugin.name_any()))]
pub async fn reconcile(plugin: Arc<Plugin>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(KIND);
    let name = plugin.name_any();
    let ns = plugin.namespace().ok_or_else(|| Error::MissingNamespace { kind: KIND, name: name.clone() })?;
    Span::current().record("namespace", field::display(&ns));
    if plugin.metadata.deletion_timestamp.is_some() {
        // Children go with their owner reference; the requirement controller drops this plugin
        // from `usedBy` (and unused requirements) when it sees the deletion.
        return Ok(Action::await_change());
    }

    // The declared secrets not yet Present, once they were checked (kept when a later step fails).
    let mut missing = None;
    let children = children(&ctx, &ns, &plugin, &mut missing).await;
    let old = plugin.status.as_ref();
    let plugins: Api<Plugin> = Api::namespaced(ctx.client.clone(), &ns);
    let (stage, rollout) = match children {
        Ok(done) => done,
        Err(error) => {
            // Say so in the status, then let the error policy retry with backoff.
            let Some(failure) = failure::of(&error) else { return Err(error) };
            let new = build::failed_status(&plugin, &failure, missing.as_deref(), ctx.now());
            if changed(old, &new) {
                let written = write_status(&ctx, &plugins, &plugin, &new).await;
                if let Err(write) = written {
                    failure::status_write_failed(KIND, &ns, &name, &write);
                }
            }
            return Err(error);
        }
    };

    let mut new = status(&plugin, &stage, missing.as_deref(), ctx.now());
    let listing = tools::refresh(&ctx, &plugin, &stage, rollout).await;
    tools::apply(&mut new, conditions_of(old), &listing, plugin.metadata.generation, ctx.now());
    if changed(old, &new) {
        // A failed write goes to the error policy: logged at warn with the object, retried with backoff.
        write_status(&ctx, &plugins, &plugin, &new).await?;
    }
    Ok(match stage {
        Stage::Ready { .. } => Action::requeue(listing.retry_in().map_or(READY_RESYNC, |r| r.min(READY_RESYNC))),
        // Requirement and Deployment watches bring the news; the poll interval bounds the wait.
        _ => Action::requeue(ctx.config.poll_interval),
    })
}

/// Write the status, then publish the Events of its condition transitions (only once written, so
/// a write that fails and is retried still raises each Event once).
async fn write_status(
    ctx: &Context,
    api: &Api<Plugin>,
    plugin: &Plugin,
    new: &wellbeing_crds::PluginStatus,
) -> Result<()> {
    let name = plugin.name_any();
    apply_status(api, &name, &status_patch(new), KIND).await?;
    let old = plugin.status.as_ref();
    events::publish(ctx, plugin, conditions_of(old), &new.conditions).await;
    let ns = plugin.namespace().unwrap_or_default();
    info!(namespace = %ns, name = %name, phase = ?new.phase, "plugin status updated");
    Ok(())
}

/// Fetch, build and apply what the plugin needs; delete what it no longer wants. Returns where
/// the plugin stands and, when a Deployment was applied, how far it has rolled out. Every child
/// error comes back as it is, for the status to name.
async fn children(
    ctx: &Context,
    ns: &str,
    plugin: &Plugin,
    missing_out: &mut Option<Vec<String>>,
) -> Result<(Stage, Option<tools::Rollout>)> {
    let name = plugin.name_any();
    // The Deployment's rollout, when this reconcile applied one (for the tool listing).
    let mut rollout = None;
    let validated = validate(plugin, &ctx.config);
    // What may run, for deciding which children to keep: nothing when invalid or unapproved.
    let valid = validated.as_ref().ok().filter(|_| plugin.spec.approved).cloned();
    let stage = match validated {
        Err(invalid) => Stage::Invalid(invalid),
        Ok(_) if !plugin.spec.approved => Stage::NotApproved,
        Ok(workload) => {
            let missing = ensure_requirements(ctx, ns, plugin).await?;
            let waiting = !missing.is_empty();
            *missing_out = Some(missing);
            if waiting {
                Stage::WaitingForSecrets
            } else if let Workload::External { url } = &workload {
                Stage::Ready { endpoint: url.clone() }
            } else {
                match sandbox(ctx).await? {
                    Sandbox::Missing { runtime_class } if ctx.config.plugin.require_sandbox => {
                        Stage::SandboxUnavailable { runtime_class }
                    }
                    found => {
                        let (stage, r) = deploy(ctx, ns, plugin, &workload, found.runtime_class()).await?;
                        rollout = r;
                        stage
                    }
                }
            }
        }
    };
    let runs = match &stage {
        Stage::Deploying => true,
        Stage::Ready { .. } => has_workload(plugin),
        _ => false,
    };
    // A spec change may have dropped a kind of child (python -> mcp, secrets removed): look for
    // them by label then. An unchanged plugin's reconcile stays free of LIST calls.
    if build::look_for_unwanted(plugin) {
        let csi = matches!(ctx.config.secret_delivery, SecretDelivery::GkeSecretManager { .. })
            && !plugin.spec.required_secrets.is_empty();
        let wanted = build::wanted_children(valid.as_ref(), runs, csi);
        delete_unwanted(ctx, ns, &name, wanted).await?;
    } else if !runs {
        // Nothing may run that is not approved, valid, sandboxed and supplied with its secrets.
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
        if delete_if_exists(&deployments, &build::workload_name(&name), "Deployment").await? {
            info!(namespace = %ns, name = %name, "stopped plugin that may not run");
        }
    }
    Ok((stage, rollout))
}

/// Delete the kinds of children the plugin no longer wants, found by its label.
async fn delete_unwanted(ctx: &Context, ns: &str, name: &str, wanted: build::WantedChildren) -> Result<()> {
    let selector = build::children_selector(name);
    let client = &ctx.client;
    let mut deleted = Vec::new();
    if !wanted.deployment {
        deleted.extend(
            delete_stale(&Api::<Deployment>::namespaced(client.clone(), ns), &selector, &[], "Deployment").await?,
        );
    }
    if !wanted.service {
        deleted.extend(delete_stale(&Api::<Service>::namespaced(client.clone(), ns), &selector, &[], "Service").await?);
    }
    if !wanted.config_map {
        deleted.extend(
            delete_stale(&Api::<ConfigMap>::namespaced(client.clone(), ns), &selector, &[], "ConfigMap").await?,
        );
    }
    if !wanted.provider_class && matches!(ctx.config.secret_delivery, SecretDelivery::GkeSecretManager { .. }) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &build::provider_class_resource());
        deleted.extend(delete_stale(&api, &selector, &[], "SecretProviderClass").await?);
    }
    if !deleted.is_empty() {
        info!(namespace = %ns, name = %name, deleted = ?deleted, "removed plugin children no longer wanted");
    }
    Ok(())
}

fn has_workload(plugin: &Plugin) -> bool {
    let mcp = plugin.spec.source.mcp.as_ref();
    !mcp.is_some_and(|m| m.image.is_none() && m.url.is_some())
}

/// Make sure one SecretRequirement exists per declared secret; return the ids not yet Present.
/// An existing, correct requirement is only read, so an unchanged plugin writes nothing.
async fn ensure_requirements(ctx: &Context, ns: &str, plugin: &Plugin) -> Result<Vec<String>> {
    let api: Api<SecretRequirement> = Api::namespaced(ctx.client.clone(), ns);
    let mut missing = Vec::new();
    for id in plugin.spec.secret_names() {
        let req_name = requirement_name(&id);
        let existing = api.get_opt(&req_name).await.map_err(kube_err("get", "SecretRequirement", &req_name))?;
        let current = match existing {
            Some(r) if build::requirement_up_to_date(&r, &id) => r,
            _ => {
                let desired = build::requirement(ns, &id);
                info!(namespace = %ns, requirement = %req_name, "applying secret requirement");
                apply(&api, &req_name, &desired, "SecretRequirement").await?
            }
        };
        let present = current.status.as_ref().is_some_and(|s| s.phase == SecretPhase::Present);
        if !present {
            missing.push(id);
        }
    }
    Ok(missing)
}

enum Sandbox {
    NotConfigured,
    Available { runtime_class: String },
    Missing { runtime_class: String },
}

impl Sandbox {
    fn runtime_class(self) -> Option<String> {
        match self {
            Sandbox::Available { runtime_class } => Some(runtime_class),
            // Not required: run without the sandbox rather than not at all.
            Sandbox::NotConfigured | Sandbox::Missing { .. } => None,
        }
    }
}

async fn sandbox(ctx: &Context) -> Result<Sandbox> {
    let Some(rc) = ctx.config.plugin.runtime_class.clone() else { return Ok(Sandbox::NotConfigured) };
    let api: Api<RuntimeClass> = Api::all(ctx.client.clone());
    Ok(match api.get_opt(&rc).await.map_err(kube_err("get", "RuntimeClass", &rc))? {
        Some(_) => Sandbox::Available { runtime_class: rc },
        None => Sandbox::Missing { runtime_class: rc },
    })
}

/// Apply the children. The NetworkPolicy goes first so no plugin pod ever runs unconfined.
/// Returns the stage and, when a Deployment was applied, how far it has rolled out.
async fn deploy(
    ctx: &Context,
    ns: &str,
    plugin: &Plugin,
    workload: &Workload,
    runtime_class: Option<String>,
) -> Result<(Stage, Option<tools::Rollout>)> {
    let client = &ctx.client;
    let name = plugin.name_any();
    let wname = build::workload_name(&name);

    let np = build::network_policy(plugin, workload, &ctx.config);
    apply(&Api::<NetworkPolicy>::namespaced(client.clone(), ns), &wname, &np, "NetworkPolicy").await?;

    if plugin.spec.llm != LlmTask::None {
        ensure_gateway_token(ctx, ns, plugin).await?;
    }
    if let Workload::Python { module, code: Some(code) } = workload {
        let cm = build::config_map(plugin, module, code);
        // `validate` refuses code that cannot fit; this holds for the object as built, so the
        // status says why rather than the apiserver's 422.
        let size = build::config_map_size(&cm);
        if size > build::MAX_CONFIGMAP_BYTES {
            return Err(Error::TooLarge { kind: "ConfigMap", name: wname, size, limit: build::MAX_CONFIGMAP_BYTES });
        }
        apply(&Api::<ConfigMap>::namespaced(client.clone(), ns), &wname, &cm, "ConfigMap").await?;
    }
    if let SecretDelivery::GkeSecretManager { project } = &ctx.config.secret_delivery
        && !plugin.spec.required_secrets.is_empty()
    {
        let spc = build::secret_provider_class(plugin, project);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &build::provider_class_resource());
        apply(&api, &build::provider_class_name(&name), &spc, "SecretProviderClass").await?;
    }
    let Some(deployment) = build::deployment(plugin, workload, &ctx.config, runtime_class) else {
        return Ok((Stage::Ready { endpoint: build::endpoint(plugin, workload) }, None));
    };
    let applied = apply(&Api::<Deployment>::namespaced(client.clone(), ns), &wname, &deployment, "Deployment").await?;
    let svc = build::service(plugin, workload);
    apply(&Api::<Service>::namespaced(client.clone(), ns), &wname, &svc, "Service").await?;

    // Ready when the current rollout is done, not when any replica is up: after a code change
    // the available pod may still be the old version.
    let rollout = tools::rollout_of(&applied);
    debug!(namespace = %ns, name = %name, ?rollout, "plugin deployment applied");
    let stage = match rollout {
        tools::Rollout::Complete { .. } => Stage::Ready { endpoint: build::endpoint(plugin, workload) },
        tools::Rollout::InProgress => Stage::Deploying,
    };
    Ok((stage, Some(rollout)))
}

/// Create the plugin's gateway token once. It is never updated (a rotation would cut running
/// pods off the gateway) and never logged.
async fn ensure_gateway_token(ctx: &Context, ns: &str, plugin: &Plugin) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret_name = build::gateway_secret_name(&plugin.name_any());
    if api.get_opt(&secret_name).await.map_err(kube_err("get", "Secret", &secret_name))?.is_some() {
        return Ok(());
    }
    let token = wellbeing_common::id::new_token();
    match api
        .create(
            &PostParams { field_manager: Some(crate::names::FIELD_MANAGER.into()), ..Default::default() },
            &build::gateway_secret(plugin, token),
        )
        .await
    {
        Ok(_) => {
            info!(namespace = %ns, secret = %secret_name, "created plugin gateway token");
            Ok(())
        }
        // Another replica or an earlier attempt won the race: the existing token stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(kube_err("create", "Secret", &secret_name)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::OperatorConfig,
        test_support::{
            FakeStore, Fixture, Routes, api_error, at, echo, fixture, list, not_found, plugin, requirement, to_json,
            with_status,
        },
    };
    use http::Method;
    use serde_json::json;
    use tools::FakeLister;

    const NOW: &str = "2026-05-04T10:00:00Z";
    const REQS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/secretrequirements";
    const PLUGINS: &str = "/apis/wellbeing.dev/v1alpha1/namespaces/ns/plugins";
    const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments";

    #[tokio::test]
    async fn missing_secret_creates_one_requirement_and_waits() {
        let p = plugin("weather", &["owm-key"]);
        let routes = Routes::new()
            .no_children("ns")
            .on(Method::GET, REQS, |_| not_found())
            .on(Method::PATCH, REQS, echo)
            .on(Method::GET, DEPLOYMENTS, |_| not_found())
            .on(Method::PATCH, PLUGINS, with_status(to_json(&p)));
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();

        assert_eq!(
            f.lines(),
            [
                format!("GET {REQS}/owm-key"),
                format!("PATCH {REQS}/owm-key"),
                // A new generation: children of kinds it no longer wants are looked for by label.
                format!("GET {DEPLOYMENTS}"),
                "GET /api/v1/namespaces/ns/services".into(),
                "GET /api/v1/namespaces/ns/configmaps".into(),
                format!("PATCH {PLUGINS}/weather/status"),
                "POST /apis/events.k8s.io/v1/namespaces/ns/events".into(),
            ]
        );
        let listed = &f.find(Method::GET, "/api/v1/namespaces/ns/services")[0];
        assert!(listed.query().contains("labelSelector=wellbeing.dev%2Fplugin%3Dweather"), "{}", listed.uri);
        let apply = &f.find(Method::PATCH, REQS)[0];
        assert!(apply.query().contains("fieldManager=wellbeing-operator"));
        assert_eq!(apply.body["spec"]["secretId"], "owm-key");
        assert_eq!(apply.body["metadata"]["labels"]["app.kubernetes.io/managed-by"], "wellbeing-operator");
        assert!(apply.body["metadata"].get("ownerReferences").is_none(), "shared by every plugin that needs it");
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "WaitingForSecrets");
        assert_eq!(s["missingSecrets"], json!(["owm-key"]));
        assert!(f.store_calls.lock().unwrap().is_empty(), "presence is the requirement controller's job");
    }

    fn deploy_routes(p: &Plugin, available: i32) -> Routes {
        deploy_routes_with(
            p,
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": available}),
        )
    }

    fn deploy_routes_with(p: &Plugin, deployment_status: serde_json::Value) -> Routes {
        let stored = to_json(p);
        let present = to_json(&requirement("owm-key", Some("Present")));
        Routes::new()
            .on(Method::GET, REQS, move |_| (200, present.clone()))
            .on(Method::GET, "/secrets/plugin-weather-gateway", |_| not_found())
            .on(Method::POST, "/api/v1/namespaces/ns/secrets", echo)
            .on(Method::PATCH, DEPLOYMENTS, move |body| {
                // As the apiserver answers once the Deployment controller has rolled it out.
                let mut d = body.clone();
                d["metadata"]["generation"] = json!(1);
                d["status"] = deployment_status.clone();
                (200, d)
            })
            .on(Method::PATCH, "/status", with_status(stored))
            .on(Method::PATCH, "/namespaces/ns/", echo)
    }

    /// The fixture with a scripted tool lister in place of the MCP client.
    fn with_lister(mut f: Fixture, lister: Arc<FakeLister>) -> Fixture {
        Arc::get_mut(&mut f.ctx).expect("fresh fixture").tools = tools::Tools::new(lister);
        f
    }

    #[tokio::test]
    async fn a_plugin_moved_to_an_external_server_leaves_no_children_behind() {
        let mut p = plugin("weather", &[]);
        p.spec.source = serde_json::from_value(json!({"mcp": {"url": "http://mcp.example:8000/mcp"}})).unwrap();
        p.metadata.generation = Some(2);
        p.status = Some(wellbeing_crds::PluginStatus { observed_generation: Some(1), ..Default::default() });
        let child = |kind: &str| json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "plugin-weather", "namespace": "ns"}});
        let (svc, cm) = (child("Service"), child("ConfigMap"));
        let mut dep = child("Deployment");
        dep["apiVersion"] = json!("apps/v1");
        let gone = |_: &serde_json::Value| (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let routes = Routes::new()
            .on(Method::GET, &format!("={DEPLOYMENTS}"), move |_| list(vec![dep.clone()]))
            .on(Method::GET, "=/api/v1/namespaces/ns/services", move |_| list(vec![svc.clone()]))
            .on(Method::GET, "=/api/v1/namespaces/ns/configmaps", move |_| list(vec![cm.clone()]))
            .on(Method::DELETE, "/namespaces/ns/", gone)
            .on(Method::PATCH, "/networkpolicies/", echo)
            .on(Method::PATCH, PLUGINS, with_status(to_json(&p)))
            .on(Method::POST, "/events", echo);
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder()),
            FakeLister::replying([Ok(vec![])]),
        );
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        let mut deleted: Vec<String> =
            f.find(Method::DELETE, "/namespaces/ns/").iter().map(|r| r.path().to_string()).collect();
        deleted.sort();
        assert_eq!(
            deleted,
            [
                "/api/v1/namespaces/ns/configmaps/plugin-weather",
                "/api/v1/namespaces/ns/services/plugin-weather",
                &format!("{DEPLOYMENTS}/plugin-weather"),
            ]
        );
    }

    #[tokio::test]
    async fn an_old_replica_still_answering_is_not_ready() {
        let p = plugin("weather", &["owm-key"]);
        // A code change is rolling out: the old pod is available, the new one is not yet.
        let rolling = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1});
        let f = with_lister(
            fixture(
                OperatorConfig::default(),
                FakeStore::default(),
                at(NOW),
                deploy_routes_with(&p, rolling).into_responder(),
            ),
            FakeLister::replying([]),
        );
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert_eq!(f.find(Method::PATCH, "/status")[0].body["status"]["phase"], "Deploying");
    }

    #[tokio::test]
    async fn present_secrets_deploy_the_children_then_ready() {
        let p = plugin("weather", &["owm-key"]);
        let lister = FakeLister::replying([Ok(vec![tools::tool("weather", "Forecast for outdoor plans")])]);
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), deploy_routes(&p, 0).into_responder()),
            lister.clone(),
        );
        reconcile(Arc::new(p.clone()), f.ctx.clone()).await.unwrap();
        assert_eq!(
            f.lines(),
            [
                format!("GET {REQS}/owm-key"),
                "PATCH /apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/plugin-weather".into(),
                "GET /api/v1/namespaces/ns/secrets/plugin-weather-gateway".into(),
                "POST /api/v1/namespaces/ns/secrets".into(),
                "PATCH /api/v1/namespaces/ns/configmaps/plugin-weather".into(),
                format!("PATCH {DEPLOYMENTS}/plugin-weather"),
                "PATCH /api/v1/namespaces/ns/services/plugin-weather".into(),
                format!("PATCH {PLUGINS}/weather/status"),
                "POST /apis/events.k8s.io/v1/namespaces/ns/events".into(),
            ]
        );
        for r in f.find(Method::PATCH, "/namespaces/ns/") {
            assert!(r.query().contains("fieldManager=wellbeing-operator"), "{}", r.uri);
            if !r.path().ends_with("/status") {
                assert_eq!(r.body["metadata"]["ownerReferences"][0]["uid"], "uid-weather", "{}", r.path());
            }
        }
        let token = &f.find(Method::POST, "/secrets")[0].body;
        let value = token["stringData"]["token"].as_str().unwrap();
        assert_eq!(value.len(), 64, "32 random bytes, hex");
        assert_eq!(token["metadata"]["labels"]["app.kubernetes.io/component"], "plugin-gateway-token");
        let cm = &f.find(Method::PATCH, "/configmaps/")[0].body;
        assert_eq!(cm["data"]["v1.py"], "def run(args):\n    return {}\n");
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "Deploying");
        assert!(s.get("endpoint").is_none());

        assert_eq!(s["tools"], json!([]));
        assert!(lister.calls().is_empty(), "nothing to ask before a replica is available");

        // The Deployment reports an available replica: Ready, with the endpoint and the tools.
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), deploy_routes(&p, 1).into_responder()),
            lister.clone(),
        );
        let action = reconcile(Arc::new(p.clone()), f.ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(READY_RESYNC));
        let patched = f.find(Method::PATCH, "/status")[0].body.clone();
        let s = &patched["status"];
        assert_eq!(s["phase"], "Ready");
        assert_eq!(s["endpoint"], "http://plugin-weather.ns.svc:8000/mcp");
        assert_eq!(s["missingSecrets"], json!([]));
        assert_eq!(s["tools"], json!([{"name": "weather", "description": "Forecast for outdoor plans"}]));
        let listed = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == tools::TOOLS_LISTED).unwrap();
        assert_eq!((&listed["status"], &listed["reason"]), (&json!("True"), &json!(tools::REASON_LISTED)));
        assert_eq!(lister.calls(), ["http://plugin-weather.ns.svc:8000/mcp"]);

        // Reconciled again with that status, by the same operator: nothing to list, nothing to write.
        let mut p = p;
        p.status = Some(serde_json::from_value(patched["status"].clone()).unwrap());
        let before = f.requests().len();
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert!(f.requests()[before..].iter().all(|r| !r.path().ends_with("/status")), "{:?}", f.lines());
        assert_eq!(lister.calls().len(), 1, "cached per plugin, generation and rollout");
    }

    const SERVICES: &str = "/api/v1/namespaces/ns/services";

    /// The Ready condition of a written status.
    fn ready_of(status: &serde_json::Value) -> serde_json::Value {
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").cloned().unwrap()
    }

    /// Reconcile a plugin whose children meet `failing` (answered ahead of the usual routes);
    /// returns the fixture and the reconcile's error.
    async fn reconcile_failing(p: &Plugin, failing: Routes) -> (Fixture, Error) {
        let routes = failing.then(deploy_routes(p, 1));
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder()),
            FakeLister::replying([]),
        );
        let error = reconcile(Arc::new(p.clone()), f.ctx.clone()).await.unwrap_err();
        (f, error)
    }

    /// The retry with the status the failure wrote: the same failure writes nothing and raises no
    /// second Event, and still goes back to the error policy for backoff.
    async fn retry_is_quiet(p: &Plugin, written: &serde_json::Value, failing: Routes) {
        let mut p = p.clone();
        p.status = Some(serde_json::from_value(written.clone()).unwrap());
        let (f, _) = reconcile_failing(&p, failing).await;
        assert!(f.find(Method::PATCH, "/status").is_empty(), "{:?}", f.lines());
        assert!(f.find(Method::POST, "/events").is_empty(), "{:?}", f.lines());
    }

    #[tokio::test]
    async fn a_service_the_apiserver_cannot_allocate_fails_ready_with_apply_failed() {
        let p = plugin("weather", &["owm-key"]);
        let failing = || {
            Routes::new().on(Method::PATCH, SERVICES, |_| {
                api_error(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP")
            })
        };
        let (f, error) = reconcile_failing(&p, failing()).await;
        assert!(matches!(&error, Error::Kube { kind: "Service", .. }), "{error:?}");
        assert_eq!(f.find(Method::PATCH, DEPLOYMENTS).len(), 1, "the Deployment went through");
        let status = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["observedGeneration"], 1);
        assert!(status.get("endpoint").is_none());
        let ready = ready_of(status);
        assert_eq!((&ready["status"], &ready["reason"]), (&json!("False"), &json!("ApplyFailed")));
        assert_eq!(
            ready["message"],
            "failed to apply Service plugin-weather: Internal error occurred: failed to allocate a serviceIP"
        );
        assert_eq!(ready["observedGeneration"], 1);
        let secrets = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "SecretsPresent").cloned();
        assert_eq!(secrets.unwrap()["status"], "True", "what the reconcile found before the failure stands");
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!(events[0].body["type"], "Warning");
        assert_eq!(events[0].body["reason"], "ApplyFailed");
        assert!(events[0].body["note"].as_str().unwrap().contains("Service plugin-weather"), "{}", events[0].body);
        retry_is_quiet(&p, status, failing()).await;
    }

    #[tokio::test]
    async fn a_deployment_refused_with_403_fails_ready_with_forbidden() {
        let p = plugin("weather", &["owm-key"]);
        let refusal = "admission webhook \"images.policy.example\" denied the request: image registry not allowed";
        let failing =
            move || Routes::new().on(Method::PATCH, DEPLOYMENTS, move |_| api_error(403, "Forbidden", refusal));
        let (f, error) = reconcile_failing(&p, failing()).await;
        assert!(matches!(&error, Error::Kube { kind: "Deployment", .. }), "{error:?}");
        assert!(f.find(Method::PATCH, SERVICES).is_empty(), "nothing after the refused Deployment");
        let status = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["observedGeneration"], 1);
        let ready = ready_of(status);
        assert_eq!((&ready["status"], &ready["reason"]), (&json!("False"), &json!("Forbidden")));
        assert_eq!(ready["message"], format!("failed to apply Deployment plugin-weather: {refusal}"));
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!((&events[0].body["type"], &events[0].body["reason"]), (&json!("Warning"), &json!("Forbidden")));
        retry_is_quiet(&p, status, failing()).await;
    }

    #[tokio::test]
    async fn a_field_owned_by_another_manager_fails_a_ready_plugin_with_conflict() {
        // Ready at generation 1; the code changed (generation 2) and someone else owns the key.
        let mut p = plugin("weather", &["owm-key"]);
        let ready_status = build::status(&p, &Stage::Ready { endpoint: "http://x/mcp".into() }, Some(&[]), at(NOW));
        p.status = Some(ready_status);
        p.metadata.generation = Some(2);
        let conflict = "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.v1.py";
        let failing =
            move || Routes::new().on(Method::PATCH, "/configmaps/", move |_| api_error(409, "Conflict", conflict));
        let (f, error) = reconcile_failing(&p, failing()).await;
        assert!(matches!(&error, Error::Kube { kind: "ConfigMap", .. }), "{error:?}");
        assert!(f.find(Method::PATCH, DEPLOYMENTS).is_empty());
        let status = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(status["phase"], "Failed");
        assert_eq!(status["observedGeneration"], 2);
        let ready = ready_of(status);
        assert_eq!((&ready["status"], &ready["reason"]), (&json!("False"), &json!("Conflict")));
        assert_eq!(ready["message"], format!("failed to apply ConfigMap plugin-weather: {conflict}"));
        assert_eq!(ready["observedGeneration"], 2);
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!((&events[0].body["type"], &events[0].body["reason"]), (&json!("Warning"), &json!("Conflict")));
        retry_is_quiet(&p, status, failing()).await;
    }

    #[tokio::test]
    async fn a_failed_status_write_is_retried_and_the_event_waits_for_it() {
        let p = plugin("weather", &["owm-key"]);
        let service_down =
            || Routes::new().on(Method::PATCH, SERVICES, |_| api_error(500, "InternalError", "etcdserver: timeout"));
        let status_down = service_down()
            .on(Method::PATCH, "/status", |_| api_error(503, "ServiceUnavailable", "the server is shutting down"));
        let (f, error) = reconcile_failing(&p, status_down).await;
        assert!(
            matches!(&error, Error::Kube { kind: "Service", .. }),
            "the child's error goes to the backoff: {error:?}"
        );
        assert_eq!(f.find(Method::PATCH, "/status").len(), 1, "tried once");
        assert!(f.find(Method::POST, "/events").is_empty(), "no Event for a status nobody can see");
        // The retry (same object: nothing was written) writes the status and raises the Event.
        let (f, _) = reconcile_failing(&p, service_down()).await;
        assert_eq!(ready_of(&f.find(Method::PATCH, "/status")[0].body["status"])["reason"], "ApplyFailed");
        assert_eq!(f.find(Method::POST, "/events").len(), 1);
    }

    #[tokio::test]
    async fn a_recovered_plugin_clears_the_failure_with_one_event() {
        let mut p = plugin("weather", &["owm-key"]);
        let failure =
            crate::failure::ChildFailure { reason: "ApplyFailed", message: "failed to apply Service x".into() };
        p.status = Some(build::failed_status(&p, &failure, Some(&[]), at(NOW)));
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), deploy_routes(&p, 0).into_responder()),
            FakeLister::replying([]),
        );
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        let status = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(status["phase"], "Deploying");
        assert_eq!(ready_of(status)["reason"], "Deploying");
        let events = f.find(Method::POST, "/events");
        assert_eq!(events.len(), 1, "{:?}", f.lines());
        assert_eq!(events[0].body["reason"], "Deploying");
    }

    #[tokio::test]
    async fn unreachable_tool_list_keeps_ready_and_retries() {
        let p = plugin("weather", &["owm-key"]);
        let lister = FakeLister::replying([Err("connection refused".to_string())]);
        let f = with_lister(
            fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), deploy_routes(&p, 1).into_responder()),
            lister.clone(),
        );
        let action = reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(crate::backoff::BASE_DELAY), "retry the listing soon, not in 10 min");
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "Ready");
        assert_eq!(s["tools"], json!([]));
        let listed = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == tools::TOOLS_LISTED).unwrap();
        assert_eq!((&listed["status"], &listed["reason"]), (&json!("False"), &json!(tools::REASON_UNAVAILABLE)));
        assert_eq!(
            listed["message"],
            "failed to list the tools of plugin weather at http://plugin-weather.ns.svc:8000/mcp: connection refused"
        );
    }

    #[tokio::test]
    async fn unapproved_plugin_is_stopped_and_asks_for_nothing() {
        let mut p = plugin("weather", &["owm-key"]);
        p.spec.approved = false;
        let running = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "plugin-weather", "namespace": "ns"}, "spec": {"selector": {}, "template": {}}});
        let routes = Routes::new()
            .on(Method::GET, &format!("={DEPLOYMENTS}"), move |_| list(vec![running.clone()]))
            .on(Method::GET, "=/api/v1/namespaces/ns/services", |_| list(vec![]))
            .on(Method::GET, "=/api/v1/namespaces/ns/configmaps", |_| list(vec![]))
            .on(Method::DELETE, DEPLOYMENTS, |_| {
                (200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))
            })
            .on(Method::PATCH, PLUGINS, with_status(to_json(&p)));
        let f = fixture(OperatorConfig::default(), FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert!(f.find(Method::GET, REQS).is_empty() && f.find(Method::PATCH, REQS).is_empty());
        assert_eq!(f.find(Method::DELETE, DEPLOYMENTS)[0].path(), format!("{DEPLOYMENTS}/plugin-weather"));
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "NotApproved");
    }

    #[tokio::test]
    async fn required_sandbox_missing_blocks_the_deployment() {
        let p = plugin("weather", &[]);
        let mut config = OperatorConfig::default();
        config.plugin.runtime_class = Some("gvisor".into());
        config.plugin.require_sandbox = true;
        let routes = Routes::new()
            .no_children("ns")
            .on(Method::GET, "/apis/node.k8s.io/v1/runtimeclasses/gvisor", |_| not_found())
            .on(Method::GET, DEPLOYMENTS, |_| not_found())
            .on(Method::PATCH, PLUGINS, with_status(to_json(&p)));
        let f = fixture(config, FakeStore::default(), at(NOW), routes.into_responder());
        reconcile(Arc::new(p), f.ctx.clone()).await.unwrap();
        assert!(f.find(Method::PATCH, DEPLOYMENTS).is_empty());
        let s = &f.find(Method::PATCH, "/status")[0].body["status"];
        assert_eq!(s["phase"], "Failed");
        assert_eq!(s["conditions"][0]["reason"], "SandboxUnavailable");
    }
}
