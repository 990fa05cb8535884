//! End-to-end suite against a real kube-apiserver: `cargo test -p wellbeing-operator --test e2e`.
//!
//! Runs only when `WELLBEING_E2E_KUBECONFIG` names a kubeconfig (cluster-admin: it installs the
//! CRDs), and says it was skipped otherwise. It works on a cluster with a controller-manager but
//! no nodes: pods stay Pending there, so plugin phases are asserted up to `Deploying`.
//!
//! In a fresh namespace it installs the CRDs, runs the operator in-process (leader Lease, HTTP
//! endpoints, the four controllers, the Kubernetes secret store), applies examples/, and follows
//! the story: CronJobs and status for the Persona, one SecretRequirement for the missing
//! secret, the secret-free plugins' children, the waiting plugin deployed once its Kubernetes
//! Secret exists, a Persona conflict and its resolution, a plugin whose Service a ResourceQuota
//! refuses (and its recovery), invalid manifests refused at apply time, and cleanup when
//! everything is deleted.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::CronJob,
        coordination::v1::Lease,
        core::v1::{Namespace, ResourceQuota, Secret, Service},
        events::v1::Event,
        networking::v1::NetworkPolicy,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;
use tokio::sync::oneshot;
use wellbeing_crds::{
    Goal, Persona, Plugin, SecretRequirement,
    conditions::{find, is_true, types},
    plugin::PluginPhase,
    secret_requirement::SecretPhase,
};
use wellbeing_operator::{
    Context, LeaderOptions, OperatorConfig, RunOptions, Scope,
    context::StoreFor,
    metrics::Metrics,
    secret_store::{KubernetesStore, SecretStore},
};

const WAIT: Duration = Duration::from_secs(90);
const MANAGER: &str = "wellbeing-e2e";

/// Poll `f` until it returns `Ok`, or fail with its last complaint.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

async fn client() -> Option<Client> {
    let Ok(path) = std::env::var("WELLBEING_E2E_KUBECONFIG") else {
        eprintln!("e2e skipped: WELLBEING_E2E_KUBECONFIG is not set");
        return None;
    };
    // kube uses ring, the Google SDK aws-lc-rs: pick one before the first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("kubeconfig");
    Some(Client::try_from(config).expect("client"))
}

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in wellbeing_crds::all_crds() {
        let name = crd.name_any();
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&crd)).await.expect("CRD applies");
        eventually(&format!("CRD {name} established"), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
                if established { Ok(()) } else { Err("not established".into()) }
            }
        })
        .await;
    }
}

/// Apply every wellbeing.dev document of examples/*.yaml into `ns`; returns (kind, name) pairs.
async fn apply_examples(client: &Client, ns: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("examples/").map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut applied = Vec::new();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in wellbeing_crds::manifest::parse_documents(&text) {
            let doc = doc.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let pp = PatchParams::apply(MANAGER).force();
            let (kind, name) = (doc.kind().to_string(), doc.name());
            match doc {
                wellbeing_crds::manifest::Resource::Persona(o) => Api::<Persona>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&o))
                    .await
                    .map(|_| ()),
                wellbeing_crds::manifest::Resource::Goal(o) => {
                    Api::<Goal>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&o)).await.map(|_| ())
                }
                wellbeing_crds::manifest::Resource::Plugin(o) => {
                    Api::<Plugin>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&o)).await.map(|_| ())
                }
                wellbeing_crds::manifest::Resource::SecretRequirement(o) => {
                    Api::<SecretRequirement>::namespaced(client.clone(), ns)
                        .patch(&name, &pp, &Patch::Apply(&o))
                        .await
                        .map(|_| ())
                }
            }
            .unwrap_or_else(|e| panic!("apply {name} from {}: {e}", file.display()));
            applied.push((kind, name));
        }
    }
    applied
}

async fn cronjob_names(client: &Client, ns: &str) -> Vec<String> {
    let api: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels("wellbeing.dev/persona=coach"))
        .await
        .map(|l| l.items.iter().filter(|c| c.metadata.deletion_timestamp.is_none()).map(|c| c.name_any()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_end_to_end() {
    let Some(client) = client().await else { return };
    let ns = format!("wellbeing-e2e-{}", &hex::encode(rand::random::<[u8; 4]>()));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace { metadata: ObjectMeta { name: Some(ns.clone()), ..Default::default() }, ..Default::default() },
        )
        .await
        .expect("namespace");
    eprintln!("e2e namespace {ns}");
    install_crds(&client).await;

    // The operator, in-process, with leader election and the Kubernetes secret store.
    let store_client = client.clone();
    let store_for: StoreFor = Arc::new(move |namespace: &str| {
        let store: Arc<dyn SecretStore> = Arc::new(KubernetesStore::new(store_client.clone(), namespace));
        Ok(store)
    });
    let config = OperatorConfig { poll_interval: Duration::from_secs(2), ..OperatorConfig::default() };
    let ctx =
        Arc::new(Context::new(client.clone(), store_for, Arc::new(Metrics::default()), config, Some("e2e".into())));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let opts = RunOptions {
        listen,
        scopes: vec![Scope::Namespace(ns.clone())],
        leader: Some(LeaderOptions { namespace: ns.clone(), identity: "e2e-operator".into() }),
    };
    let operator = tokio::spawn(wellbeing_operator::run(ctx, opts, async move {
        let _ = stop_rx.await;
    }));

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    eventually("the leader Lease", || {
        let leases = leases.clone();
        async move {
            let l = leases.get_opt("wellbeing-operator").await.map_err(|e| e.to_string())?.ok_or("no lease")?;
            let holder = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            if holder == "e2e-operator" { Ok(()) } else { Err(format!("held by {holder:?}")) }
        }
    })
    .await;

    let applied = apply_examples(&client, &ns).await;
    assert!(applied.iter().any(|(k, n)| k == "Persona" && n == "coach"), "{applied:?}");

    // Persona: one CronJob per check-in, status with the times.
    let personas: Api<Persona> = Api::namespaced(client.clone(), &ns);
    eventually("three check-in CronJobs and the persona status", || {
        let (client, ns, personas) = (client.clone(), ns.clone(), personas.clone());
        async move {
            let names = cronjob_names(&client, &ns).await;
            if names != ["coach-checkin-0", "coach-checkin-1", "coach-checkin-2"] {
                return Err(format!("cronjobs {names:?}"));
            }
            let p = personas.get("coach").await.map_err(|e| e.to_string())?;
            let s = p.status.ok_or("no status")?;
            // Only the times still to come are listed; the draw holds three, and there is always a next one.
            if s.check_ins_today == 3
                && s.next_check_ins.len() <= 3
                && s.next_check_in.is_some()
                && is_true(&s.conditions, types::READY)
            {
                Ok(())
            } else {
                Err(format!("status {s:?}"))
            }
        }
    })
    .await;
    let cj = Api::<CronJob>::namespaced(client.clone(), &ns).get("coach-checkin-0").await.unwrap();
    let spec = cj.spec.unwrap();
    assert_eq!(spec.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(cj.metadata.owner_references.unwrap()[0].name, "coach");

    // The missing secret: one requirement, the plugin waits, nothing of it runs.
    let reqs: Api<SecretRequirement> = Api::namespaced(client.clone(), &ns);
    let plugins: Api<Plugin> = Api::namespaced(client.clone(), &ns);
    eventually("the SecretRequirement, Missing, used by weather-walks", || {
        let reqs = reqs.clone();
        async move {
            let r = reqs.get_opt("openweather-api-key").await.map_err(|e| e.to_string())?.ok_or("absent")?;
            let s = r.status.ok_or("no status")?;
            if s.phase == SecretPhase::Missing && s.used_by == ["weather-walks"] && s.last_checked.is_some() {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        }
    })
    .await;
    assert_eq!(reqs.list(&ListParams::default()).await.unwrap().items.len(), 1, "one requirement per secret");
    eventually("weather-walks WaitingForSecrets", || {
        let plugins = plugins.clone();
        async move {
            let s = plugins.get("weather-walks").await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
            if s.phase == PluginPhase::WaitingForSecrets && s.missing_secrets == ["openweather-api-key"] {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        }
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(deployments.get_opt("plugin-weather-walks").await.unwrap().is_none());

    // Secret-free plugins: children applied, phase Deploying (no nodes to run pods).
    for name in ["hydration", "sleep-winddown"] {
        let (plugins, client, ns) = (plugins.clone(), client.clone(), ns.clone());
        eventually(&format!("{name} Deploying with its children"), move || {
            let (plugins, client, ns) = (plugins.clone(), client.clone(), ns.clone());
            async move {
                let s = plugins.get(name).await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
                if s.phase != PluginPhase::Deploying {
                    return Err(format!("{s:?}"));
                }
                // Nothing serves yet, so no tools are claimed (they are listed once a replica is up).
                if !s.tools.is_empty() || s.conditions.iter().any(|c| c.type_ == "ToolsListed") {
                    return Err(format!("tools before the server runs: {s:?}"));
                }
                let child = format!("plugin-{name}");
                Api::<Deployment>::namespaced(client.clone(), &ns).get(&child).await.map_err(|e| e.to_string())?;
                Api::<Service>::namespaced(client.clone(), &ns).get(&child).await.map_err(|e| e.to_string())?;
                Api::<NetworkPolicy>::namespaced(client.clone(), &ns).get(&child).await.map_err(|e| e.to_string())?;
                Ok(())
            }
        })
        .await;
    }
    let d = deployments.get("plugin-hydration").await.unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    // sleep-winddown asks the LLM gateway: its token Secret exists.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert!(secrets.get_opt("plugin-sleep-winddown-gateway").await.unwrap().is_some());

    // Goals: coverage and no Uncovered.
    let goals: Api<Goal> = Api::namespaced(client.clone(), &ns);
    for (goal, plugin) in [("hydration", "hydration"), ("workouts", "weather-walks")] {
        let goals = goals.clone();
        eventually(&format!("goal {goal} covered by {plugin}"), move || {
            let goals = goals.clone();
            async move {
                let s = goals.get(goal).await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
                let uncovered = find(&s.conditions, types::UNCOVERED).map(|c| c.status.clone());
                if s.covered_by.iter().any(|p| p == plugin) && uncovered.as_deref() == Some("False") {
                    Ok(())
                } else {
                    Err(format!("{s:?}"))
                }
            }
        })
        .await;
    }

    // The secret appears in the store (a Kubernetes Secret): the plugin is deployed.
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "openweather-api-key", "namespace": ns},
        "stringData": {"value": "e2e-not-a-real-key"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.expect("secret");
    eventually("the requirement Present and weather-walks Deploying", || {
        let (reqs, plugins, deployments) = (reqs.clone(), plugins.clone(), deployments.clone());
        async move {
            let r = reqs.get("openweather-api-key").await.map_err(|e| e.to_string())?;
            if r.status.as_ref().map(|s| s.phase) != Some(SecretPhase::Present) {
                return Err(format!("requirement {:?}", r.status));
            }
            let s = plugins.get("weather-walks").await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
            if s.phase != PluginPhase::Deploying {
                return Err(format!("plugin {s:?}"));
            }
            deployments.get("plugin-weather-walks").await.map_err(|e| e.to_string())?;
            Ok(())
        }
    })
    .await;
    let d = deployments.get("plugin-weather-walks").await.unwrap();
    let env = d.spec.unwrap().template.spec.unwrap().containers[0].env.clone().unwrap();
    let key = env.iter().find(|e| e.name == "OPENWEATHER_API_KEY").expect("secret env");
    let sel = key.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!((sel.name.as_str(), sel.key.as_str()), ("openweather-api-key", "value"));

    // A second active Persona: both conflict, no CronJobs; removing it restores the schedule.
    let mut second: Persona = serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Persona",
        "metadata": {"name": "second"},
        "spec": {"displayName": "Second", "active": true,
                 "checkIns": {"timeZone": "UTC", "windows": [{"start": "08:00", "end": "20:00"}], "perDay": 1}}
    }))
    .unwrap();
    second.metadata.namespace = Some(ns.clone());
    personas.patch("second", &PatchParams::apply(MANAGER).force(), &Patch::Apply(&second)).await.unwrap();
    eventually("both personas in Conflict, no CronJobs", || {
        let (personas, client, ns) = (personas.clone(), client.clone(), ns.clone());
        async move {
            for name in ["coach", "second"] {
                let s = personas.get(name).await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
                if !is_true(&s.conditions, types::CONFLICT) {
                    return Err(format!("{name}: {s:?}"));
                }
            }
            let left = cronjob_names(&client, &ns).await;
            if left.is_empty() { Ok(()) } else { Err(format!("cronjobs left {left:?}")) }
        }
    })
    .await;
    personas.delete("second", &DeleteParams::default()).await.unwrap();
    eventually("coach scheduled again", || {
        let (personas, client, ns) = (personas.clone(), client.clone(), ns.clone());
        async move {
            let s = personas.get("coach").await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
            let n = cronjob_names(&client, &ns).await.len();
            if !is_true(&s.conditions, types::CONFLICT) && n == 3 {
                Ok(())
            } else {
                Err(format!("{n} cronjobs, {s:?}"))
            }
        }
    })
    .await;

    // A Service the apiserver refuses (a ResourceQuota with no room for another Service): the
    // plugin says so in its status, with one Warning Event, and recovers once there is room.
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let quota: ResourceQuota = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "no-more-services", "namespace": ns},
        "spec": {"hard": {"services": "0"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.expect("quota");
    // Until the quota controller has counted, admission refuses with "status unknown for quota".
    eventually("the quota counted", || {
        let quotas = quotas.clone();
        async move {
            let q = quotas.get("no-more-services").await.map_err(|e| e.to_string())?;
            let used = q.status.and_then(|s| s.used).unwrap_or_default();
            if used.contains_key("services") { Ok(()) } else { Err("no usage yet".into()) }
        }
    })
    .await;
    let mut blocked: Plugin = serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Plugin",
        "metadata": {"name": "no-room"},
        "spec": {"description": "A plugin whose Service finds no room",
                 "source": {"python": {"module": "no-room/v1.py", "code": "def run(args):\n    return {}\n"}}}
    }))
    .unwrap();
    blocked.metadata.namespace = Some(ns.clone());
    plugins.patch("no-room", &PatchParams::apply(MANAGER).force(), &Patch::Apply(&blocked)).await.unwrap();
    eventually("no-room Failed with QuotaExceeded naming its Service", || {
        let plugins = plugins.clone();
        async move {
            let p = plugins.get("no-room").await.map_err(|e| e.to_string())?;
            let s = p.status.ok_or("no status")?;
            let ready = find(&s.conditions, types::READY).ok_or("no Ready")?;
            if s.phase == PluginPhase::Failed
                && ready.status == "False"
                && ready.reason == "QuotaExceeded"
                && ready.message.contains("Service plugin-no-room")
                && ready.message.contains("exceeded quota")
                && s.observed_generation == p.metadata.generation
            {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        }
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let quota_events = |list: Vec<Event>| {
        list.into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("no-room"))
            .filter(|e| e.reason.as_deref() == Some("QuotaExceeded"))
            .collect::<Vec<_>>()
    };
    eventually("one QuotaExceeded Event", || {
        let events = events.clone();
        async move {
            let found = quota_events(events.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items);
            // The recorder folds repeats into the Event's series; one object either way.
            if found.len() == 1 { Ok(()) } else { Err(format!("{} events", found.len())) }
        }
    })
    .await;
    quotas.delete("no-more-services", &DeleteParams::default()).await.expect("quota deleted");
    eventually("no-room Deploying once the quota is gone", || {
        let plugins = plugins.clone();
        async move {
            let s = plugins.get("no-room").await.map_err(|e| e.to_string())?.status.ok_or("no status")?;
            if s.phase == PluginPhase::Deploying { Ok(()) } else { Err(format!("{s:?}")) }
        }
    })
    .await;
    plugins.delete("no-room", &DeleteParams::default()).await.expect("no-room deleted");

    // Invalid manifests are refused at apply time, naming the field.
    let bad_goal = json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Goal", "metadata": {"name": "bad"},
        "spec": {"description": "nothing", "pillar": "sleep", "metric": "good_sleep", "target": {"count": 0, "per": "week"}}
    });
    let err = goals.patch("bad", &PatchParams::apply(MANAGER), &Patch::Apply(&bad_goal)).await.unwrap_err();
    assert!(err.to_string().contains("spec.target.count"), "{err}");
    let bad_period = json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Goal", "metadata": {"name": "bad"},
        "spec": {"description": "nothing", "pillar": "sleep", "metric": "good_sleep", "target": {"count": 1, "per": "fortnight"}}
    });
    let err = goals.patch("bad", &PatchParams::apply(MANAGER), &Patch::Apply(&bad_period)).await.unwrap_err();
    assert!(err.to_string().contains("per"), "{err}");

    // Delete everything: children and requirements go, the store's Secret stays.
    for (kind, name) in &applied {
        let dp = DeleteParams::default();
        let r = match kind.as_str() {
            "Persona" => personas.delete(name, &dp).await.map(|_| ()),
            "Goal" => goals.delete(name, &dp).await.map(|_| ()),
            "Plugin" => plugins.delete(name, &dp).await.map(|_| ()),
            "SecretRequirement" => reqs.delete(name, &dp).await.map(|_| ()),
            other => panic!("unexpected kind {other}"),
        };
        r.unwrap_or_else(|e| panic!("delete {kind} {name}: {e}"));
    }
    eventually("cleanup of requirements and children", || {
        let (reqs, deployments, client, ns) = (reqs.clone(), deployments.clone(), client.clone(), ns.clone());
        async move {
            let r = reqs.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
            let d = deployments
                .list(&ListParams::default().labels("app.kubernetes.io/managed-by=wellbeing-operator"))
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            let c = cronjob_names(&client, &ns).await.len();
            if (r, d, c) == (0, 0, 0) {
                Ok(())
            } else {
                Err(format!("{r} requirements, {d} deployments, {c} cronjobs"))
            }
        }
    })
    .await;
    assert!(secrets.get_opt("openweather-api-key").await.unwrap().is_some(), "the store's secret is never touched");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(30), operator).await.expect("graceful stop").unwrap().expect("clean exit");
    // The CRDs stay: other namespaces of the cluster may use them.
    namespaces.delete(&ns, &DeleteParams::default()).await.expect("namespace deleted");
}
