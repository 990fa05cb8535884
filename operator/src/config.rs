//! Operator settings: what the `wellbeing operator` flags and the Helm chart decide.

use std::time::Duration;

/// How plugin pods receive their secret values. Values never pass through the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretDelivery {
    /// `env.valueFrom.secretKeyRef` on a Kubernetes Secret named after the secret id (the
    /// `kubernetes` store's convention).
    KubernetesSecret,
    /// A SecretProviderClass for GKE's Secret Manager add-on (Secrets Store CSI driver); the
    /// values appear as files in the pod, read by the plugin host.
    GkeSecretManager { project: String },
}

/// Images, resources and security knobs of plugin pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginDefaults {
    /// The Python plugin host image (runs `spec.source.python` modules).
    pub host_image: String,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: String,
    pub memory_limit: String,
    /// `runtimeClassName` for plugin pods (gVisor, Kata ...), when the cluster offers one.
    pub runtime_class: Option<String>,
    /// Refuse to deploy plugins when `runtime_class` is not installed, instead of running them
    /// without the sandbox.
    pub require_sandbox: bool,
}

impl Default for PluginDefaults {
    fn default() -> Self {
        PluginDefaults {
            host_image: "ghcr.io/wellbeing-dev/wellbeing-plugin-host:latest".into(),
            cpu_request: "50m".into(),
            memory_request: "64Mi".into(),
            cpu_limit: "500m".into(),
            memory_limit: "256Mi".into(),
            runtime_class: None,
            require_sandbox: false,
        }
    }
}

/// Everything the controllers need to know that is not in the custom resources.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Image of the `wellbeing` binary; check-in CronJobs run it.
    pub image: String,
    /// The assistant's in-cluster base URL, e.g. `http://wellbeing-assistant.wellbeing.svc:8080`.
    pub assistant_url: String,
    /// Namespace the assistant runs in; `None`: the same namespace as the plugin. Plugin
    /// NetworkPolicies admit traffic only from assistant pods there.
    pub assistant_namespace: Option<String>,
    /// Labels of the assistant pods (NetworkPolicy peers).
    pub assistant_pod_labels: Vec<(String, String)>,
    /// Labels of the operator pods, admitted to plugin pods to list their tools; matched in the
    /// assistant's namespace, where the chart runs the operator too.
    pub operator_pod_labels: Vec<(String, String)>,
    /// Audience of the projected ServiceAccount token check-in Jobs present to the assistant
    /// (checked with a TokenReview).
    pub checkin_token_audience: String,
    /// ServiceAccount of check-in Jobs; `None`: the namespace's default.
    pub checkin_service_account: Option<String>,
    /// How often SecretRequirements ask the store.
    pub poll_interval: Duration,
    pub plugin: PluginDefaults,
    pub secret_delivery: SecretDelivery,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            image: "ghcr.io/wellbeing-dev/wellbeing:latest".into(),
            assistant_url: "http://wellbeing-assistant:8080".into(),
            assistant_namespace: None,
            assistant_pod_labels: vec![
                ("app.kubernetes.io/name".into(), "wellbeing".into()),
                ("app.kubernetes.io/component".into(), "assistant".into()),
            ],
            operator_pod_labels: vec![
                ("app.kubernetes.io/name".into(), "wellbeing".into()),
                ("app.kubernetes.io/component".into(), "operator".into()),
            ],
            checkin_token_audience: "wellbeing-assistant".into(),
            checkin_service_account: None,
            poll_interval: Duration::from_secs(60),
            plugin: PluginDefaults::default(),
            secret_delivery: SecretDelivery::KubernetesSecret,
        }
    }
}

impl OperatorConfig {
    /// Port of the assistant URL (explicit, or the scheme's default), for NetworkPolicy egress.
    pub fn assistant_port(&self) -> i32 {
        let url = self.assistant_url.as_str();
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let port = authority.rsplit_once(':').and_then(|(_, p)| p.parse::<i32>().ok());
        port.unwrap_or(if scheme == "https" { 443 } else { 80 })
    }

    /// Base URL of the assistant's OpenAI-compatible LLM gateway for plugins.
    pub fn llm_gateway_url(&self) -> String {
        format!("{}/internal/llm/v1", self.assistant_url.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assistant_port_from_url() {
        let mut c = OperatorConfig { assistant_url: "http://a.b.svc:8080/".into(), ..Default::default() };
        assert_eq!(c.assistant_port(), 8080);
        assert_eq!(c.llm_gateway_url(), "http://a.b.svc:8080/internal/llm/v1");
        c.assistant_url = "https://a.b.svc".into();
        assert_eq!(c.assistant_port(), 443);
        c.assistant_url = "http://a".into();
        assert_eq!(c.assistant_port(), 80);
    }
}
