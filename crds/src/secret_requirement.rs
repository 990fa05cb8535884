//! SecretRequirement: a secret the system needs and may not have yet. Never holds a value.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounds;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "wellbeing.dev",
    version = "v1alpha1",
    kind = "SecretRequirement",
    namespaced,
    status = "SecretRequirementStatus",
    shortname = "secreq",
    cel,
    derive = "PartialEq",
    doc = "A secret some plugin needs. Its value lives only in the secret store; `wellbeing secrets resolve` puts it there.",
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Used by", type_ = "string", json_path = ".status.usedBy"),
    printcolumn(name = "Last checked", type_ = "date", json_path = ".status.lastChecked")
)]
#[serde(rename_all = "camelCase")]
pub struct SecretRequirementSpec {
    /// Name of the secret in the store (Secret Manager secret id or Kubernetes Secret name).
    #[schemars(length(max = bounds::SECRET_ID))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z0-9_-]{1,255}$')").message("spec.secretId must be letters, digits, '-' or '_' (Secret Manager's rule)"))]
    pub secret_id: String,
    /// What the secret is for, shown when someone resolves it.
    #[serde(default)]
    #[schemars(length(max = bounds::SHORT_TEXT))]
    pub description: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecretPhase {
    #[default]
    Missing,
    Present,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRequirementStatus {
    #[serde(default)]
    pub phase: SecretPhase,
    /// Plugins that declare this secret.
    #[serde(default)]
    #[schemars(length(max = bounds::NAME_LIST), inner(length(max = bounds::DNS_SUBDOMAIN)))]
    pub used_by: Vec<String>,
    /// When the store was last asked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::TIMESTAMP))]
    pub last_checked: Option<String>,
    #[serde(default)]
    #[schemars(length(max = bounds::CONDITIONS))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
