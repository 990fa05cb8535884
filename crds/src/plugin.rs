//! Plugin: a tool the assistant can use, served as an MCP server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounds;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wellbeing.dev",
    version = "v1alpha1",
    kind = "Plugin",
    namespaced,
    status = "PluginStatus",
    shortname = "plug",
    cel,
    derive = "PartialEq",
    doc = "A tool the assistant can use, served as an MCP server.",
    printcolumn(name = "Version", type_ = "integer", json_path = ".spec.version"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Missing secrets", type_ = "string", json_path = ".status.missingSecrets"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint", priority = 1),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    /// What the tool does; the LLM reads this to decide when to use it.
    #[schemars(length(max = bounds::DESCRIPTION))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("spec.description must not be empty"))]
    pub description: String,
    /// Version of the plugin's code (plugins/<id>/v<version>.py for Python plugins).
    #[serde(default = "default_version")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.version must be at least 1"))]
    pub version: i32,
    /// When the plugin is relevant.
    #[serde(default)]
    pub triggers: Triggers,
    /// Where the MCP server comes from.
    pub source: PluginSource,
    /// Secrets the plugin needs, by store name, and the env variable each is exposed as.
    #[serde(default)]
    #[schemars(length(max = bounds::PLUGIN_LIST))]
    pub required_secrets: Vec<SecretRef>,
    /// Task class the plugin asks the assistant's LLM gateway for; `none` when it needs no LLM.
    #[serde(default)]
    pub llm: LlmTask,
    /// Hosts the plugin may reach (egress is denied elsewhere).
    #[serde(default)]
    #[schemars(length(max = bounds::PLUGIN_LIST))]
    pub egress: Vec<EgressHost>,
    /// Generated plugins start unapproved and are not deployed until approved.
    #[serde(default = "default_true")]
    pub approved: bool,
}

fn default_version() -> i32 {
    1
}

fn default_true() -> bool {
    true
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    /// Pillars the plugin serves.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::DNS_LABEL)))]
    pub pillars: Vec<String>,
    /// Goal names the plugin serves.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::DNS_SUBDOMAIN)))]
    pub goals: Vec<String>,
    /// Words in a message or goal that make the plugin relevant.
    #[serde(default)]
    #[schemars(length(max = bounds::HAND_LIST), inner(length(max = bounds::DNS_LABEL)))]
    pub keywords: Vec<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.python) != has(self.mcp)").message("spec.source needs exactly one of python or mcp"))]
pub struct PluginSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpSource>,
}

/// A module for the plugin host.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PythonSource {
    /// Path of the module relative to the plugins directory, e.g. "hydration/v1.py".
    #[schemars(length(max = bounds::MODULE_PATH))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9][a-z0-9_-]*/v[0-9]+\\\\.py$')").message("spec.source.python.module must look like <id>/v<N>.py"))]
    pub module: String,
    /// The module's code inline. In the cluster it becomes the plugin's ConfigMap; without it
    /// the module is loaded from the plugin image's own plugins directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::PLUGIN_CODE))]
    pub code: Option<String>,
}

/// An existing MCP server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.image) || has(self.command) || has(self.url)").message("spec.source.mcp needs an image, a command or a url"))]
pub struct McpSource {
    /// Container image serving MCP over streamable HTTP (cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::IMAGE))]
    pub image: Option<String>,
    /// Command serving MCP over stdio (embedded mode), e.g. ["python3", "-m", "server"].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::PLUGIN_LIST), inner(length(max = bounds::ARG)))]
    pub command: Option<Vec<String>>,
    /// URL of an already running streamable-HTTP MCP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::URL))]
    pub url: Option<String>,
    /// Port the image listens on.
    #[serde(default = "default_mcp_port")]
    pub port: i32,
    /// HTTP path of the MCP endpoint.
    #[serde(default = "default_mcp_path")]
    #[schemars(length(max = bounds::URL))]
    pub path: String,
}

fn default_mcp_port() -> i32 {
    8000
}

fn default_mcp_path() -> String {
    "/mcp".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name in the store; one SecretRequirement exists per distinct name.
    #[schemars(length(max = bounds::SECRET_ID))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z0-9_-]{1,255}$')").message("requiredSecrets[].name must be letters, digits, '-' or '_'"))]
    pub name: String,
    /// Environment variable the value is exposed as inside the plugin.
    #[schemars(length(max = bounds::ENV_NAME))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Z_][A-Z0-9_]*$')").message("requiredSecrets[].env must be an upper-case environment variable name"))]
    pub env: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EgressHost {
    /// DNS name the plugin may connect to.
    #[schemars(length(max = bounds::DNS_SUBDOMAIN))]
    pub host: String,
    #[serde(default = "default_https_port")]
    pub port: i32,
}

fn default_https_port() -> i32 {
    443
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmTask {
    #[default]
    None,
    Chat,
    Extraction,
    Summary,
    Code,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PluginPhase {
    #[default]
    Pending,
    NotApproved,
    WaitingForSecrets,
    Deploying,
    Ready,
    Failed,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    #[serde(default)]
    pub phase: PluginPhase,
    /// In-cluster URL of the MCP endpoint once Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::URL))]
    pub endpoint: Option<String>,
    /// Names of declared secrets not yet in the store.
    #[serde(default)]
    #[schemars(length(max = bounds::PLUGIN_LIST), inner(length(max = bounds::SECRET_ID)))]
    pub missing_secrets: Vec<String>,
    /// Tools the running server offers.
    #[serde(default)]
    #[schemars(length(max = bounds::TOOLS))]
    pub tools: Vec<ToolInfo>,
    #[serde(default)]
    #[schemars(length(max = bounds::CONDITIONS))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    #[schemars(length(max = bounds::TOOL_NAME))]
    pub name: String,
    #[serde(default)]
    #[schemars(length(max = bounds::DESCRIPTION))]
    pub description: String,
}

impl PluginSpec {
    /// Distinct secret names this plugin needs, sorted.
    pub fn secret_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.required_secrets.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether this plugin serves a goal, by the goal's name, pillar or words.
    pub fn covers_goal(&self, goal_name: &str, goal: &crate::GoalSpec) -> bool {
        let t = &self.triggers;
        if t.goals.iter().any(|g| g == goal_name) || t.pillars.iter().any(|p| p == &goal.pillar) {
            return true;
        }
        let haystack = format!("{} {} {}", goal_name, goal.description, goal.keywords.join(" ")).to_lowercase();
        t.keywords.iter().any(|k| !k.is_empty() && haystack.contains(&k.to_lowercase()))
    }
}
