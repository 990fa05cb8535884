//! Plugin desired state (pure): validation, the SecretRequirements, the workload children
//! (ConfigMap, SecretProviderClass, Deployment, Service, NetworkPolicy) and the status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            CSIVolumeSource, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
            EnvVarSource, PodSpec, PodTemplateSpec, Probe, Secret, SecretKeySelector, Service, ServicePort,
            ServiceSpec, TCPSocketAction, Volume, VolumeMount,
        },
        networking::v1::{
            IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
            NetworkPolicyPort, NetworkPolicySpec,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{Condition, LabelSelector},
        util::intstr::IntOrString,
    },
};
use kube::{
    Resource, ResourceExt,
    api::{ApiResource, DynamicObject, ObjectMeta},
};
use sha2::{Digest, Sha256};
use wellbeing_crds::{
    Plugin, PluginStatus, SecretRequirement, SecretRequirementSpec,
    conditions::{Desired, differ_ignoring_time, find, merge, reasons, time_from_chrono, types},
    plugin::{LlmTask, PluginPhase},
};

use crate::{
    config::{OperatorConfig, SecretDelivery},
    failure::ChildFailure,
    names::{LABEL_NAME, LABEL_PLUGIN, common_labels, requirement_name, truncate_label},
    secret_store::{SECRET_VALUE_KEY, kubernetes_secret_name},
    security::{container_security, pod_security, resources},
};

/// The apiserver refuses a ConfigMap whose keys and values add up to more than 1 MiB.
pub const MAX_CONFIGMAP_BYTES: usize = 1024 * 1024;
/// Port the Python plugin host serves streamable HTTP MCP on.
pub const HOST_PORT: i32 = 8000;
pub const HOST_PATH: &str = "/mcp";
/// Where inline code is mounted; the host loads `WELLBEING_PLUGIN_MODULE` from there.
pub const CODE_DIR: &str = "/srv/plugins";
/// Where the plugin host looks for secret files (its `WELLBEING_SECRETS_DIR` default).
pub const SECRETS_DIR: &str = "/var/run/secrets/wellbeing";
/// Data key of the gateway token Secret.
pub const GATEWAY_TOKEN_KEY: &str = "token";
/// Component label of gateway token Secrets; the assistant's gateway looks tokens up by it.
pub const GATEWAY_TOKEN_COMPONENT: &str = "plugin-gateway-token";
/// Annotation listing the declared egress hosts (see [`network_policy`]).
pub const ANNOTATION_EGRESS_HOSTS: &str = "wellbeing.dev/egress-hosts";
pub const ANNOTATION_SOURCE_HASH: &str = "wellbeing.dev/source-hash";
/// CSI driver of GKE's Secret Manager add-on (the open-source driver is `secrets-store.csi.k8s.io`
/// with provider `gcp`; the add-on is the one Google supports on GKE).
pub const GKE_CSI_DRIVER: &str = "secrets-store-gke.csi.k8s.io";
pub const GKE_CSI_PROVIDER: &str = "gke";

/// Private, link-local (cloud metadata servers live at 169.254.169.254) and carrier-grade NAT
/// ranges: egress to declared ports is allowed to the internet, never into these.
const PRIVATE_V4: [&str; 6] =
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8"];
const PRIVATE_V6: [&str; 3] = ["fc00::/7", "fe80::/10", "::1/128"];

/// Names of a plugin's children. Service names must be DNS labels (63, starting with a letter),
/// which the `plugin-` prefix guarantees.
pub fn workload_name(plugin: &str) -> String {
    let full = format!("plugin-{plugin}");
    if full.len() <= 63 {
        return full;
    }
    let hash = hex::encode(&Sha256::digest(plugin.as_bytes())[..4]);
    format!("plugin-{}-{hash}", plugin[..63 - 7 - 9].trim_end_matches(['-', '.']))
}

pub fn gateway_secret_name(plugin: &str) -> String {
    format!("{}-gateway", workload_name(plugin))
}

pub fn provider_class_name(plugin: &str) -> String {
    format!("{}-secrets", workload_name(plugin))
}

/// Labels selecting a plugin's pods.
pub fn selector_labels(plugin: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "wellbeing-plugin".to_string()),
        (LABEL_PLUGIN.to_string(), truncate_label(plugin)),
    ])
}

/// Label selector for every child the operator made for this plugin.
pub fn children_selector(plugin: &str) -> String {
    format!("{}={},{}", LABEL_PLUGIN, truncate_label(plugin), crate::names::managed_selector())
}

/// Which kinds of children a plugin should have now; the others are deleted, so a plugin that
/// moves from `python` to `mcp.url` (or loses its secrets) leaves nothing behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WantedChildren {
    pub deployment: bool,
    pub service: bool,
    pub config_map: bool,
    pub provider_class: bool,
}

/// Pure: from the validated workload (None when invalid or not approved), whether it may run
/// now, and whether secrets are delivered by the GKE Secret Manager CSI driver.
pub fn wanted_children(workload: Option<&Workload>, runs: bool, csi_secrets: bool) -> WantedChildren {
    let Some(workload) = workload.filter(|_| runs) else { return WantedChildren::default() };
    let deployed = !matches!(workload, Workload::External { .. });
    WantedChildren {
        deployment: deployed,
        service: deployed,
        config_map: matches!(workload, Workload::Python { code: Some(_), .. }),
        provider_class: deployed && csi_secrets,
    }
}

/// Whether the reconcile must look for children of kinds the plugin no longer wants: after a
/// spec change, and until a reconcile of that spec got through (a failed one writes the new
/// `observedGeneration` too, and may have stopped before the clean-up).
pub fn look_for_unwanted(plugin: &Plugin) -> bool {
    let Some(status) = plugin.status.as_ref() else { return true };
    status.observed_generation != plugin.metadata.generation
        || find(&status.conditions, types::READY).is_some_and(|c| reasons::CHILD_FAILURES.contains(&c.reason.as_str()))
}

fn labels(plugin: &str, component: &str) -> BTreeMap<String, String> {
    let mut l = common_labels(component, plugin);
    l.extend(selector_labels(plugin));
    l
}

fn meta(plugin: &Plugin, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: plugin.namespace(),
        labels: Some(labels(&plugin.name_any(), component)),
        owner_references: plugin.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    }
}

/// What runs the MCP server in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The plugin host image running a Python module; `code` is inline code for the ConfigMap.
    Python { module: String, code: Option<String> },
    /// An MCP server image.
    Image { image: String, port: i32, path: String },
    /// An MCP server that already runs elsewhere: nothing to deploy.
    External { url: String },
}

/// Why a plugin cannot be deployed as written. The message names the field to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
}

/// Check what the CRD's rules cannot: source size, sources that only work in embedded mode,
/// secret names the delivery method cannot express.
pub fn validate(plugin: &Plugin, config: &OperatorConfig) -> Result<Workload, Invalid> {
    let source = &plugin.spec.source;
    if config.secret_delivery == SecretDelivery::KubernetesSecret {
        for s in &plugin.spec.required_secrets {
            if let Err(e) = kubernetes_secret_name(&s.name) {
                return Err(Invalid {
                    reason: REASON_INVALID_SECRET_NAME,
                    message: format!(
                        "spec.requiredSecrets: {e}; rename the secret (Kubernetes Secret names are lowercase)"
                    ),
                });
            }
        }
    }
    if let Some(py) = &source.python {
        if let Some(code) = &py.code {
            let size = module_file(&py.module).len() + code.len();
            if size > MAX_CONFIGMAP_BYTES {
                return Err(Invalid {
                    reason: reasons::SOURCE_TOO_LARGE,
                    message: format!(
                        "spec.source.python.code is {size} bytes; a ConfigMap holds at most {MAX_CONFIGMAP_BYTES}: \
                         ship the module in the plugin image instead"
                    ),
                });
            }
        }
        return Ok(Workload::Python { module: py.module.clone(), code: py.code.clone() });
    }
    if let Some(mcp) = &source.mcp {
        if let Some(image) = &mcp.image {
            return Ok(Workload::Image { image: image.clone(), port: mcp.port, path: mcp.path.clone() });
        }
        if let Some(url) = &mcp.url {
            return Ok(Workload::External { url: url.clone() });
        }
        return Err(Invalid {
            reason: reasons::SOURCE_INVALID,
            message: "spec.source.mcp.command runs only in embedded mode (`wellbeing up`); in a cluster give an image \
                      or a url"
                .into(),
        });
    }
    Err(Invalid { reason: reasons::SOURCE_INVALID, message: "spec.source needs python or mcp".into() })
}

pub const REASON_INVALID_SECRET_NAME: &str = "InvalidSecretName";

/// `hydration/v1.py` -> `v1.py` (ConfigMap keys cannot hold '/').
fn module_file(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

fn module_dir(module: &str) -> &str {
    module.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// The SecretRequirement for one secret id. Shared by every plugin that needs the secret, so it
/// carries no owner reference; the requirement controller removes it when no plugin uses it.
pub fn requirement(namespace: &str, secret_id: &str) -> SecretRequirement {
    let mut req = SecretRequirement::new(
        &requirement_name(secret_id),
        SecretRequirementSpec {
            secret_id: secret_id.to_string(),
            description: "Declared in spec.requiredSecrets of the Plugins listed in status.usedBy".into(),
        },
    );
    req.metadata.namespace = Some(namespace.to_string());
    req.metadata.labels = Some(common_labels("secret-requirement", secret_id));
    req
}

/// Whether an existing requirement already says what [`requirement`] would apply.
pub fn requirement_up_to_date(existing: &SecretRequirement, secret_id: &str) -> bool {
    existing.spec.secret_id == secret_id && crate::requirement::is_managed(existing)
}

/// ConfigMap with the inline Python code.
pub fn config_map(plugin: &Plugin, module: &str, code: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(plugin, workload_name(&plugin.name_any()), "plugin"),
        data: Some(BTreeMap::from([(module_file(module).to_string(), code.to_string())])),
        ..Default::default()
    }
}

/// Bytes of a ConfigMap as the apiserver counts them against [`MAX_CONFIGMAP_BYTES`]: every key
/// and value of `data` and `binaryData`.
pub fn config_map_size(cm: &ConfigMap) -> usize {
    let data = cm.data.iter().flatten().map(|(k, v)| k.len() + v.len());
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| k.len() + v.0.len());
    data.chain(binary).sum()
}

/// SecretProviderClass telling GKE's Secret Manager add-on which secrets to mount as files.
pub fn secret_provider_class(plugin: &Plugin, project: &str) -> DynamicObject {
    let secrets: String = plugin
        .spec
        .secret_names()
        .iter()
        .map(|id| format!("- resourceName: \"projects/{project}/secrets/{id}/versions/latest\"\n  path: \"{id}\"\n"))
        .collect();
    let mut obj = DynamicObject::new(&provider_class_name(&plugin.name_any()), &provider_class_resource())
        .data(serde_json::json!({ "spec": { "provider": GKE_CSI_PROVIDER, "parameters": { "secrets": secrets } } }));
    let m = meta(plugin, provider_class_name(&plugin.name_any()), "plugin");
    obj.metadata = m;
    obj
}

pub fn provider_class_resource() -> ApiResource {
    ApiResource {
        group: "secrets-store.csi.x-k8s.io".into(),
        version: "v1".into(),
        api_version: "secrets-store.csi.x-k8s.io/v1".into(),
        kind: "SecretProviderClass".into(),
        plural: "secretproviderclasses".into(),
    }
}

/// Port and path of the MCP endpoint.
pub fn port_and_path(workload: &Workload) -> (i32, String) {
    match workload {
        Workload::Image { port, path, .. } => (*port, path.clone()),
        _ => (HOST_PORT, HOST_PATH.to_string()),
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: secret.into(), key: key.into(), optional: Some(false) }),
            ..Default::default()
        }),
    }
}

/// The plugin host's name for a secret's env variable (`slack-token` -> `SLACK_TOKEN`).
fn upper_snake(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

fn source_hash(workload: &Workload) -> String {
    let text = match workload {
        Workload::Python { module, code } => format!("{module}\0{}", code.as_deref().unwrap_or_default()),
        Workload::Image { image, port, path } => format!("{image}\0{port}\0{path}"),
        Workload::External { url } => url.clone(),
    };
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// The Deployment running the MCP server (none for an external server). `runtime_class` is set only when the class exists
/// (the reconcile checks) or is required (then the plugin is not deployed without it).
pub fn deployment(
    plugin: &Plugin,
    workload: &Workload,
    config: &OperatorConfig,
    runtime_class: Option<String>,
) -> Option<Deployment> {
    let name = plugin.name_any();
    let (port, path) = port_and_path(workload);
    let mut env_vars = vec![
        env("WELLBEING_PLUGIN_NAME", name.clone()),
        env("WELLBEING_MCP_PORT", port.to_string()),
        env("WELLBEING_MCP_PATH", path),
        // Read-only root filesystem: everything writable lives in /tmp.
        env("HOME", "/tmp"),
        env("PYTHONDONTWRITEBYTECODE", "1"),
    ];
    let mut mounts = vec![VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource { size_limit: Some(Quantity("64Mi".into())), ..Default::default() }),
        ..Default::default()
    }];
    let image = match workload {
        Workload::Python { module, code } => {
            if code.is_some() {
                env_vars.push(env("WELLBEING_PLUGIN_MODULE", format!("{CODE_DIR}/{module}")));
                mounts.push(VolumeMount {
                    name: "code".into(),
                    mount_path: format!("{CODE_DIR}/{}", module_dir(module)),
                    read_only: Some(true),
                    ..Default::default()
                });
                volumes.push(Volume {
                    name: "code".into(),
                    config_map: Some(ConfigMapVolumeSource { name: workload_name(&name), ..Default::default() }),
                    ..Default::default()
                });
            } else {
                // Relative: the host resolves it against the plugins directory baked into its image.
                env_vars.push(env("WELLBEING_PLUGIN_MODULE", module.clone()));
            }
            config.plugin.host_image.clone()
        }
        Workload::Image { image, .. } => image.clone(),
        Workload::External { .. } => return None,
    };
    match &config.secret_delivery {
        SecretDelivery::KubernetesSecret => {
            for s in &plugin.spec.required_secrets {
                // `validate` refused names that are not Secret names.
                let secret = kubernetes_secret_name(&s.name).unwrap_or_else(|_| s.name.clone());
                env_vars.push(secret_env(&s.env, &secret, SECRET_VALUE_KEY));
                env_vars.push(env(&format!("WELLBEING_SECRET_ENV_{}", upper_snake(&s.name)), s.env.clone()));
            }
        }
        SecretDelivery::GkeSecretManager { .. } if !plugin.spec.required_secrets.is_empty() => {
            env_vars.push(env("WELLBEING_SECRETS_DIR", SECRETS_DIR));
            for s in &plugin.spec.required_secrets {
                env_vars.push(env(&format!("{}_FILE", s.env), format!("{SECRETS_DIR}/{}", s.name)));
            }
            mounts.push(VolumeMount {
                name: "secrets".into(),
                mount_path: SECRETS_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            });
            volumes.push(Volume {
                name: "secrets".into(),
                csi: Some(CSIVolumeSource {
                    driver: GKE_CSI_DRIVER.into(),
                    read_only: Some(true),
                    volume_attributes: Some(BTreeMap::from([(
                        "secretProviderClass".to_string(),
                        provider_class_name(&name),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        SecretDelivery::GkeSecretManager { .. } => {}
    }
    if plugin.spec.llm != LlmTask::None {
        env_vars.push(env("WELLBEING_LLM_GATEWAY", config.llm_gateway_url()));
        env_vars.push(secret_env("WELLBEING_PLUGIN_TOKEN", &gateway_secret_name(&name), GATEWAY_TOKEN_KEY));
    }
    let p = &config.plugin;
    let container = Container {
        name: "plugin".into(),
        image: Some(image),
        ports: Some(vec![ContainerPort {
            name: Some("mcp".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env_vars),
        volume_mounts: Some(mounts),
        resources: Some(resources(&p.cpu_request, &p.memory_request, &p.cpu_limit, &p.memory_limit)),
        security_context: Some(container_security()),
        // MCP has no health endpoint; a listening socket is what "ready" can mean here.
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::String("mcp".into()), host: None }),
            period_seconds: Some(5),
            ..Default::default()
        }),
        ..Default::default()
    };
    let selector = selector_labels(&name);
    let mut pod_labels = labels(&name, "plugin");
    pod_labels.extend(selector.clone());
    Some(Deployment {
        metadata: meta(plugin, workload_name(&name), "plugin"),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(selector), match_expressions: None },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    // Changed code must roll the pods; the ConfigMap alone would not.
                    annotations: Some(BTreeMap::from([(ANNOTATION_SOURCE_HASH.to_string(), source_hash(workload))])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    runtime_class_name: runtime_class,
                    security_context: Some(pod_security()),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    })
}

pub fn service(plugin: &Plugin, workload: &Workload) -> Service {
    let name = plugin.name_any();
    let (port, _) = port_and_path(workload);
    Service {
        metadata: meta(plugin, workload_name(&name), "plugin"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some("mcp".into()),
                port,
                target_port: Some(IntOrString::String("mcp".into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn assistant_peer(config: &OperatorConfig) -> NetworkPolicyPeer {
    release_peer(config, &config.assistant_pod_labels)
}

/// The operator lists a Ready plugin's tools for `status.tools` (see `tools.rs`).
fn operator_peer(config: &OperatorConfig) -> NetworkPolicyPeer {
    release_peer(config, &config.operator_pod_labels)
}

/// Pods of the release, in the assistant's namespace (the chart installs the operator there too).
fn release_peer(config: &OperatorConfig, labels: &[(String, String)]) -> NetworkPolicyPeer {
    let labels: BTreeMap<String, String> = labels.iter().cloned().collect();
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector { match_labels: Some(labels), match_expressions: None }),
        namespace_selector: config.assistant_namespace.as_ref().map(|ns| LabelSelector {
            match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.clone())])),
            match_expressions: None,
        }),
        ip_block: None,
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(port)), protocol: Some("TCP".into()), end_port: None }
}

/// Ingress only from the assistant and the operator on the MCP port; egress only to DNS, to the assistant's LLM
/// gateway when the plugin uses one, and to the declared ports.
///
/// A NetworkPolicy cannot name DNS hosts, only addresses: declared hosts are allowed as their
/// ports on public addresses (never the cluster's private ranges or the metadata server). The
/// host list is kept in an annotation for FQDN-aware policy engines (Cilium, GKE FQDN policies).
pub fn network_policy(plugin: &Plugin, workload: &Workload, config: &OperatorConfig) -> NetworkPolicy {
    let name = plugin.name_any();
    let (port, _) = port_and_path(workload);
    let mut egress = vec![NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![
            NetworkPolicyPort { port: Some(IntOrString::Int(53)), protocol: Some("UDP".into()), end_port: None },
            tcp(53),
        ]),
    }];
    if plugin.spec.llm != LlmTask::None {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![assistant_peer(config)]),
            ports: Some(vec![tcp(config.assistant_port())]),
        });
    }
    let mut ports: Vec<i32> = plugin.spec.egress.iter().map(|h| h.port).collect();
    ports.sort_unstable();
    ports.dedup();
    if !ports.is_empty() {
        let public = |cidr: &str, except: &[&str]| NetworkPolicyPeer {
            ip_block: Some(IPBlock { cidr: cidr.into(), except: Some(except.iter().map(|s| s.to_string()).collect()) }),
            ..Default::default()
        };
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![public("0.0.0.0/0", &PRIVATE_V4), public("::/0", &PRIVATE_V6)]),
            ports: Some(ports.into_iter().map(tcp).collect()),
        });
    }
    let mut m = meta(plugin, workload_name(&name), "plugin");
    let hosts: Vec<String> = plugin.spec.egress.iter().map(|h| format!("{}:{}", h.host, h.port)).collect();
    m.annotations = Some(BTreeMap::from([(ANNOTATION_EGRESS_HOSTS.to_string(), hosts.join(","))]));
    NetworkPolicy {
        metadata: m,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(selector_labels(&name)), match_expressions: None }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![assistant_peer(config), operator_peer(config)]),
                ports: Some(vec![tcp(port)]),
            }]),
            egress: Some(egress),
        }),
    }
}

/// The gateway token Secret, created once. `token` comes from the caller's random source.
pub fn gateway_secret(plugin: &Plugin, token: String) -> Secret {
    let mut m = meta(plugin, gateway_secret_name(&plugin.name_any()), GATEWAY_TOKEN_COMPONENT);
    m.labels.get_or_insert_default().insert(crate::names::LABEL_COMPONENT.into(), GATEWAY_TOKEN_COMPONENT.into());
    Secret {
        metadata: m,
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([(GATEWAY_TOKEN_KEY.to_string(), token)])),
        ..Default::default()
    }
}

/// `http://<svc>.<ns>.svc:<port><path>`
pub fn endpoint(plugin: &Plugin, workload: &Workload) -> String {
    let (port, path) = port_and_path(workload);
    let ns = plugin.namespace().unwrap_or_default();
    format!("http://{}.{ns}.svc:{port}{path}", workload_name(&plugin.name_any()))
}

/// Where a plugin stands, as the reconcile found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    Invalid(Invalid),
    NotApproved,
    WaitingForSecrets,
    SandboxUnavailable { runtime_class: String },
    Deploying,
    Ready { endpoint: String },
}

/// The conditions a plugin's status carries besides `Ready`: its approval, and its secrets when
/// they were checked.
fn facts(plugin: &Plugin, missing: Option<&[String]>) -> Vec<Desired> {
    let approved = if plugin.spec.approved {
        Desired::new(types::APPROVED, true, reasons::APPROVED, "approved")
    } else {
        Desired::new(
            types::APPROVED,
            false,
            reasons::NOT_APPROVED,
            "set spec.approved to true to deploy this plugin (generated plugins wait for review)",
        )
    };
    let mut desired = vec![approved];
    if let Some(missing) = missing {
        desired.push(if missing.is_empty() {
            Desired::new(
                types::SECRETS_PRESENT,
                true,
                reasons::SECRETS_PRESENT,
                "every declared secret is in the store",
            )
        } else {
            Desired::new(
                types::SECRETS_PRESENT,
                false,
                reasons::WAITING_FOR_SECRETS,
                format!("missing in the store: {}; run `wellbeing secrets resolve`", missing.join(", ")),
            )
        });
    }
    desired
}

/// The status after a child could not be fetched, built or applied: `Failed`, `Ready=False` with
/// the failure, the approval and secrets as far as the reconcile got, and the previous tool
/// listing kept (it is refreshed once the children are in place again). No endpoint: the
/// assistant serves only Ready plugins.
pub fn failed_status(
    plugin: &Plugin,
    failure: &ChildFailure,
    missing: Option<&[String]>,
    now: DateTime<Utc>,
) -> PluginStatus {
    let old = plugin.status.clone().unwrap_or_default();
    let generation = plugin.metadata.generation;
    let now = time_from_chrono(now);
    let facts = merge(&old.conditions, &facts(plugin, missing), generation, now.clone());
    let conditions = crate::failure::conditions(&old.conditions, &facts, failure, generation, now);
    PluginStatus {
        phase: PluginPhase::Failed,
        endpoint: None,
        missing_secrets: missing.map_or(old.missing_secrets, <[String]>::to_vec),
        tools: old.tools,
        conditions,
        observed_generation: generation,
    }
}

/// The status for a stage. `missing` are the declared secrets not yet Present (checked only for
/// approved, valid plugins: `None` otherwise).
pub fn status(plugin: &Plugin, stage: &Stage, missing: Option<&[String]>, now: DateTime<Utc>) -> PluginStatus {
    let old = plugin.status.clone().unwrap_or_default();
    let mut desired = facts(plugin, missing);
    let (phase, ready, endpoint) = match stage {
        Stage::Invalid(i) => {
            (PluginPhase::Failed, Desired::new(types::READY, false, i.reason, i.message.clone()), None)
        }
        Stage::NotApproved => (
            PluginPhase::NotApproved,
            Desired::new(types::READY, false, reasons::NOT_APPROVED, "not deployed until approved"),
            None,
        ),
        Stage::WaitingForSecrets => (
            PluginPhase::WaitingForSecrets,
            Desired::new(types::READY, false, reasons::WAITING_FOR_SECRETS, "waiting for declared secrets"),
            None,
        ),
        Stage::SandboxUnavailable { runtime_class } => (
            PluginPhase::Failed,
            Desired::new(
                types::READY,
                false,
                reasons::SANDBOX_MISSING,
                format!("RuntimeClass {runtime_class:?} is required for plugins but not installed in the cluster"),
            ),
            None,
        ),
        Stage::Deploying => (
            PluginPhase::Deploying,
            Desired::new(types::READY, false, reasons::DEPLOYING, "waiting for an available replica"),
            None,
        ),
        Stage::Ready { endpoint } => (
            PluginPhase::Ready,
            Desired::new(types::READY, true, reasons::AVAILABLE, format!("serving MCP at {endpoint}")),
            Some(endpoint.clone()),
        ),
    };
    desired.insert(0, ready);
    let generation = plugin.metadata.generation;
    PluginStatus {
        phase,
        endpoint,
        missing_secrets: missing.map(<[String]>::to_vec).unwrap_or_default(),
        tools: old.tools.clone(),
        conditions: merge(&old.conditions, &desired, generation, time_from_chrono(now)),
        observed_generation: generation,
    }
}

pub fn changed(old: Option<&PluginStatus>, new: &PluginStatus) -> bool {
    let Some(old) = old else { return true };
    let PluginStatus { phase, endpoint, missing_secrets, tools, conditions, observed_generation } = new;
    &old.phase != phase
        || &old.endpoint != endpoint
        || &old.missing_secrets != missing_secrets
        || &old.tools != tools
        || differ_ignoring_time(&old.conditions, conditions)
        || &old.observed_generation != observed_generation
}

/// Apply body with every status field the operator owns (`tools` included: see `tools.rs`).
pub fn status_patch(status: &PluginStatus) -> serde_json::Value {
    let mut s = serde_json::json!({
        "phase": status.phase,
        "missingSecrets": status.missing_secrets,
        "tools": status.tools,
        "conditions": status.conditions,
        "observedGeneration": status.observed_generation,
    });
    if let Some(e) = &status.endpoint {
        s["endpoint"] = serde_json::Value::String(e.clone());
    }
    serde_json::json!({ "apiVersion": Plugin::api_version(&()), "kind": Plugin::kind(&()), "status": s })
}

pub fn conditions_of(status: Option<&PluginStatus>) -> &[Condition] {
    status.map(|s| s.conditions.as_slice()).unwrap_or_default()
}

#[cfg(test)]
mod wanted_tests {
    use super::*;

    #[test]
    fn a_plugin_that_moves_to_an_external_server_wants_no_children() {
        let python = Workload::Python { module: "w/v1.py".into(), code: Some("x".into()) };
        let external = Workload::External { url: "http://mcp.example:8000/mcp".into() };
        let all = wanted_children(Some(&python), true, true);
        assert!(all.deployment && all.service && all.config_map && all.provider_class);
        assert_eq!(wanted_children(Some(&external), true, true), WantedChildren::default());
        assert_eq!(wanted_children(Some(&python), false, true), WantedChildren::default());
        assert_eq!(wanted_children(None, true, true), WantedChildren::default());
        let image = Workload::Image { image: "ghcr.io/x/y:1".into(), port: 8000, path: "/mcp".into() };
        let img = wanted_children(Some(&image), true, false);
        assert!(img.deployment && img.service && !img.config_map && !img.provider_class);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, plugin};
    use serde_json::{Value, json};
    use wellbeing_crds::conditions::find;

    fn config() -> OperatorConfig {
        OperatorConfig {
            assistant_url: "http://wellbeing-assistant.wellbeing.svc:8080".into(),
            assistant_namespace: Some("wellbeing".into()),
            ..Default::default()
        }
    }

    fn json_of<T: serde::Serialize>(v: &T) -> Value {
        // Through YAML, as `kubectl get -o yaml` would show it.
        let yaml = serde_yaml::to_string(v).unwrap();
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn deployment_runs_restricted_with_secrets_from_kubernetes() {
        let p = plugin("weather", &["owm-key"]);
        let w = validate(&p, &config()).unwrap();
        let d = json_of(&deployment(&p, &w, &config(), Some("gvisor".into())).unwrap());
        assert_eq!(d["metadata"]["name"], "plugin-weather");
        assert_eq!(d["metadata"]["ownerReferences"][0]["kind"], "Plugin");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["runtimeClassName"], "gvisor");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let c = &pod["containers"][0];
        assert_eq!(c["image"], config().plugin.host_image);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
        assert_eq!(c["resources"]["requests"]["cpu"], "50m");
        let env = c["env"].as_array().unwrap();
        let by_name = |n: &str| env.iter().find(|e| e["name"] == n).cloned().unwrap_or(Value::Null);
        assert_eq!(
            by_name("OWM_KEY")["valueFrom"]["secretKeyRef"],
            json!({"name": "owm-key", "key": "value", "optional": false})
        );
        assert_eq!(by_name("WELLBEING_SECRET_ENV_OWM_KEY")["value"], "OWM_KEY");
        assert_eq!(by_name("WELLBEING_PLUGIN_MODULE")["value"], "/srv/plugins/weather/v1.py");
        assert_eq!(
            by_name("WELLBEING_LLM_GATEWAY")["value"],
            "http://wellbeing-assistant.wellbeing.svc:8080/internal/llm/v1"
        );
        assert_eq!(by_name("WELLBEING_PLUGIN_TOKEN")["valueFrom"]["secretKeyRef"]["name"], "plugin-weather-gateway");
        // Code from the ConfigMap, mounted where the module path says.
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["name"] == "code" && m["mountPath"] == "/srv/plugins/weather"));
        assert!(mounts.iter().any(|m| m["name"] == "tmp" && m["mountPath"] == "/tmp"));
        assert!(d["spec"]["template"]["metadata"]["annotations"][ANNOTATION_SOURCE_HASH].is_string());
    }

    #[test]
    fn code_change_rolls_the_pods() {
        let p = plugin("weather", &[]);
        let mut q = p.clone();
        q.spec.source.python.as_mut().unwrap().code = Some("def run(a):\n    return {'v': 2}\n".into());
        let hash = |p: &Plugin| {
            let d = deployment(p, &validate(p, &config()).unwrap(), &config(), None).unwrap();
            d.spec.unwrap().template.metadata.unwrap().annotations.unwrap()[ANNOTATION_SOURCE_HASH].clone()
        };
        assert_ne!(hash(&p), hash(&q));
    }

    #[test]
    fn network_policy_admits_only_the_assistant_and_declared_egress() {
        let p = plugin("weather", &["owm-key"]);
        let w = validate(&p, &config()).unwrap();
        let np = json_of(&network_policy(&p, &w, &config()));
        let spec = &np["spec"];
        assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(spec["podSelector"]["matchLabels"]["wellbeing.dev/plugin"], "weather");
        let ingress = spec["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"], "assistant");
        assert_eq!(
            ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "wellbeing"
        );
        assert_eq!(ingress[0]["from"][1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"], "operator");
        assert_eq!(ingress[0]["from"][1]["namespaceSelector"], ingress[0]["from"][0]["namespaceSelector"]);
        assert_eq!(ingress[0]["from"].as_array().unwrap().len(), 2, "nobody else");
        assert_eq!(ingress[0]["ports"], json!([{"port": 8000, "protocol": "TCP"}]));
        let egress = spec["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3, "{egress:#?}");
        assert_eq!(egress[0]["ports"], json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]));
        assert_eq!(egress[1]["ports"], json!([{"port": 8080, "protocol": "TCP"}]), "LLM gateway");
        assert_eq!(egress[2]["ports"], json!([{"port": 443, "protocol": "TCP"}]));
        let v4 = &egress[2]["to"][0]["ipBlock"];
        assert_eq!(v4["cidr"], "0.0.0.0/0");
        assert!(v4["except"].as_array().unwrap().contains(&json!("169.254.0.0/16")), "metadata server stays closed");
        assert!(v4["except"].as_array().unwrap().contains(&json!("10.0.0.0/8")));
        assert_eq!(np["metadata"]["annotations"][ANNOTATION_EGRESS_HOSTS], "api.openweathermap.org:443");

        let mut quiet = p.clone();
        quiet.spec.egress.clear();
        quiet.spec.llm = LlmTask::None;
        let np = json_of(&network_policy(&quiet, &w, &config()));
        assert_eq!(np["spec"]["egress"].as_array().unwrap().len(), 1, "DNS only");
    }

    #[test]
    fn service_and_endpoint_agree() {
        let p = plugin("weather", &[]);
        let w = validate(&p, &config()).unwrap();
        let s = json_of(&service(&p, &w));
        assert_eq!(s["spec"]["ports"][0]["port"], 8000);
        assert_eq!(s["spec"]["selector"], json!(selector_labels("weather")));
        assert_eq!(endpoint(&p, &w), "http://plugin-weather.ns.svc:8000/mcp");
    }

    #[test]
    fn oversized_code_is_refused() {
        let mut p = plugin("weather", &[]);
        let py = p.spec.source.python.as_mut().unwrap();
        py.code = Some("#".repeat(MAX_CONFIGMAP_BYTES - "v1.py".len()));
        assert!(validate(&p, &config()).is_ok(), "exactly 1 MiB fits");
        p.spec.source.python.as_mut().unwrap().code = Some("#".repeat(MAX_CONFIGMAP_BYTES));
        let err = validate(&p, &config()).unwrap_err();
        assert_eq!(err.reason, reasons::SOURCE_TOO_LARGE);
        let st = status(&p, &Stage::Invalid(err), None, at("2026-05-04T10:00:00Z"));
        assert_eq!(st.phase, PluginPhase::Failed);
        assert_eq!(find(&st.conditions, types::READY).unwrap().reason, reasons::SOURCE_TOO_LARGE);
    }

    #[test]
    fn sources_that_cannot_run_in_a_cluster_are_refused() {
        let mut p = plugin("cli", &[]);
        p.spec.source = serde_json::from_value(json!({"mcp": {"command": ["python3", "-m", "srv"]}})).unwrap();
        assert_eq!(validate(&p, &config()).unwrap_err().reason, reasons::SOURCE_INVALID);
        p.spec.source = serde_json::from_value(json!({"mcp": {"url": "http://mcp.example:9000/mcp"}})).unwrap();
        assert_eq!(validate(&p, &config()), Ok(Workload::External { url: "http://mcp.example:9000/mcp".into() }));
        let upper = plugin("upper", &["OWM_KEY"]);
        assert_eq!(validate(&upper, &config()).unwrap_err().reason, REASON_INVALID_SECRET_NAME);
        let gke =
            OperatorConfig { secret_delivery: SecretDelivery::GkeSecretManager { project: "p".into() }, ..config() };
        assert!(validate(&upper, &gke).is_ok(), "Secret Manager ids may be upper case");
    }

    #[test]
    fn gke_delivery_mounts_files_from_a_secret_provider_class() {
        let cfg = OperatorConfig {
            secret_delivery: SecretDelivery::GkeSecretManager { project: "my-proj".into() },
            ..config()
        };
        let p = plugin("weather", &["owm-key"]);
        let spc = json_of(&secret_provider_class(&p, "my-proj"));
        assert_eq!(spc["apiVersion"], "secrets-store.csi.x-k8s.io/v1");
        assert_eq!(spc["kind"], "SecretProviderClass");
        assert_eq!(spc["metadata"]["name"], "plugin-weather-secrets");
        assert_eq!(spc["spec"]["provider"], "gke");
        let secrets: Value = serde_yaml::from_str(spc["spec"]["parameters"]["secrets"].as_str().unwrap()).unwrap();
        assert_eq!(
            secrets,
            json!([{"resourceName": "projects/my-proj/secrets/owm-key/versions/latest", "path": "owm-key"}])
        );
        let d = json_of(&deployment(&p, &validate(&p, &cfg).unwrap(), &cfg, None).unwrap());
        let pod = &d["spec"]["template"]["spec"];
        let vol = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "secrets").unwrap().clone();
        assert_eq!(vol["csi"]["driver"], GKE_CSI_DRIVER);
        assert_eq!(vol["csi"]["volumeAttributes"]["secretProviderClass"], "plugin-weather-secrets");
        let env = pod["containers"][0]["env"].as_array().unwrap();
        assert!(env.iter().all(|e| e.get("valueFrom").is_none_or(|v| v["secretKeyRef"]["name"] != "owm-key")));
        assert!(env.iter().any(|e| e["name"] == "OWM_KEY_FILE" && e["value"] == "/var/run/secrets/wellbeing/owm-key"));
    }

    #[test]
    fn requirement_is_shared_and_unowned() {
        let r = requirement("ns", "owm-key");
        assert_eq!(r.metadata.name.as_deref(), Some("owm-key"));
        assert!(r.metadata.owner_references.is_none());
        assert!(requirement_up_to_date(&r, "owm-key"));
        assert!(!requirement_up_to_date(&r, "other"));
    }

    #[test]
    fn statuses_per_stage() {
        let p = plugin("weather", &["owm-key"]);
        let now = at("2026-05-04T10:00:00Z");
        let missing = vec!["owm-key".to_string()];
        let waiting = status(&p, &Stage::WaitingForSecrets, Some(&missing), now);
        assert_eq!(waiting.phase, PluginPhase::WaitingForSecrets);
        assert_eq!(waiting.missing_secrets, missing);
        assert_eq!(find(&waiting.conditions, types::SECRETS_PRESENT).unwrap().status, "False");
        let ready = status(&p, &Stage::Ready { endpoint: "http://x/mcp".into() }, Some(&[]), now);
        assert_eq!(ready.endpoint.as_deref(), Some("http://x/mcp"));
        assert_eq!(find(&ready.conditions, types::READY).unwrap().status, "True");
        let patch = status_patch(&ready);
        assert_eq!(patch["status"]["endpoint"], "http://x/mcp");
        assert_eq!(patch["status"]["tools"], json!([]), "always applied, so an emptied list is cleared");
        assert!(status_patch(&waiting)["status"].get("endpoint").is_none());
        let mut unapproved = p.clone();
        unapproved.spec.approved = false;
        let na = status(&unapproved, &Stage::NotApproved, None, now);
        assert_eq!(na.phase, PluginPhase::NotApproved);
        assert_eq!(find(&na.conditions, types::APPROVED).unwrap().status, "False");
    }

    #[test]
    fn a_failed_child_fails_the_plugin_and_keeps_what_was_found() {
        let mut p = plugin("weather", &["owm-key"]);
        let now = at("2026-05-04T10:00:00Z");
        let mut ready = status(&p, &Stage::Ready { endpoint: "http://x/mcp".into() }, Some(&[]), now);
        ready.tools = vec![wellbeing_crds::plugin::ToolInfo { name: "forecast".into(), description: String::new() }];
        p.status = Some(ready);
        assert!(!look_for_unwanted(&p), "an unchanged, settled plugin lists nothing");
        p.metadata.generation = Some(2);
        let failure =
            ChildFailure { reason: reasons::APPLY_FAILED, message: "failed to apply Service plugin-weather: x".into() };
        let failed = failed_status(&p, &failure, None, at("2026-05-04T10:05:00Z"));
        assert_eq!(failed.phase, PluginPhase::Failed);
        assert_eq!(failed.endpoint, None, "the assistant serves only Ready plugins");
        assert_eq!(failed.observed_generation, Some(2));
        assert_eq!(failed.tools.len(), 1, "the last listing stays until the next one");
        let r = find(&failed.conditions, types::READY).unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str(), r.message.as_str()),
            ("False", reasons::APPLY_FAILED, "failed to apply Service plugin-weather: x")
        );
        // The secrets were not checked this time: their condition stays as it was.
        let secrets = find(&failed.conditions, types::SECRETS_PRESENT).unwrap();
        assert_eq!((secrets.status.as_str(), secrets.observed_generation), ("True", Some(1)));
        assert_eq!(find(&failed.conditions, types::APPROVED).unwrap().observed_generation, Some(2));
        // The failure wrote generation 2; the clean-up of unwanted kinds still happens on the retry.
        p.status = Some(failed);
        assert!(look_for_unwanted(&p));
    }

    #[test]
    fn config_map_size_counts_keys_and_values() {
        let p = plugin("weather", &[]);
        let cm = config_map(&p, "weather/v1.py", "abc");
        assert_eq!(config_map_size(&cm), "v1.py".len() + 3);
    }

    #[test]
    fn long_names_stay_valid() {
        let n = workload_name(&"a".repeat(200));
        assert!(n.len() <= 63, "{n}");
        assert!(gateway_secret_name(&"a".repeat(200)).len() <= 253);
    }
}
