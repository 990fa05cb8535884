//! Secret stores: where secret values live. The operator only asks whether a secret is there
//! (never its value); `wellbeing secrets resolve` is the only writer.
//!
//! Three stores share one trait: GCP Secret Manager (GKE with Workload Identity), Kubernetes
//! Secrets (any cluster) and a local file (embedded mode, `wellbeing up`).

use std::{fmt, path::PathBuf, str::FromStr, sync::Arc};

use async_trait::async_trait;

pub mod gcp;
#[cfg(test)]
mod gcp_fake;
pub mod kubernetes;
pub mod local;

pub use gcp::GcpStore;
pub use kubernetes::{KubernetesStore, SECRET_VALUE_KEY, kubernetes_secret_name};
pub use local::LocalStore;

/// Boxed error from a client library, kept as the `#[source]` of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Whether a secret can be used: it exists and holds a usable value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Present,
    Missing,
}

impl Presence {
    pub fn is_present(self) -> bool {
        self == Presence::Present
    }
}

/// A secret value on its way to a store. It prints as `[redacted]` in every format, so a value
/// can never reach a log line or an error message by accident; [`SecretValue::expose`] is the
/// one (greppable) way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself, for the store that writes it. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What can go wrong when talking to a store. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to reach the {store} secret store")]
    Unreachable {
        store: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("failed to access secret {secret_id:?} in the {store} secret store: permission denied")]
    PermissionDenied {
        store: &'static str,
        secret_id: String,
        #[source]
        source: BoxError,
    },
    #[error("invalid secret id {id:?}: {reason}")]
    InvalidId { id: String, reason: String },
    #[error("refusing an empty value for secret {secret_id:?}")]
    EmptyValue { secret_id: String },
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {} (the file was left untouched: fix or move it, then retry)", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("refusing to read {}: its mode {mode:03o} lets group or others read it (run `chmod 600` on it)", path.display())]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("failed to configure the {store} secret store: {reason}")]
    Config { store: &'static str, reason: String },
    #[error("failed to {action} secret {secret_id:?} in the {store} secret store")]
    Api {
        store: &'static str,
        action: &'static str,
        secret_id: String,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// A CamelCase reason for conditions and Events, and a bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Unreachable { .. } => "StoreUnreachable",
            StoreError::PermissionDenied { .. } => "StorePermissionDenied",
            StoreError::InvalidId { .. } => "InvalidSecretId",
            StoreError::EmptyValue { .. } => "EmptySecretValue",
            StoreError::Io { .. } => "StoreIoError",
            StoreError::Corrupt { .. } => "StoreCorrupt",
            StoreError::InsecurePermissions { .. } => "StoreInsecure",
            StoreError::Config { .. } => "StoreMisconfigured",
            StoreError::Api { .. } => "StoreError",
        }
    }
}

/// A place secret values live. Implementations answer presence from metadata wherever the
/// backend allows it, and never return a value: nothing in the system reads secrets back
/// through this trait (plugin pods get them from Kubernetes or the CSI driver directly).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Short name for logs, conditions and messages: "gcp", "kubernetes" or "local".
    fn kind(&self) -> &'static str;
    /// Whether the secret exists with a usable value.
    async fn presence(&self, secret_id: &str) -> Result<Presence, StoreError>;
    /// Store a new value, creating the secret if it does not exist yet.
    async fn put(&self, secret_id: &str, value: &SecretValue) -> Result<(), StoreError>;
}

/// Which store backs the system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreKind {
    #[default]
    Kubernetes,
    Gcp,
    Local,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Kubernetes => "kubernetes",
            StoreKind::Gcp => "gcp",
            StoreKind::Local => "local",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kubernetes" => Ok(StoreKind::Kubernetes),
            "gcp" => Ok(StoreKind::Gcp),
            "local" => Ok(StoreKind::Local),
            other => Err(format!("unknown secret store {other:?}; expected kubernetes, gcp or local")),
        }
    }
}

/// Everything [`from_config`] needs; only the fields of the chosen kind are read.
#[derive(Clone, Default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// GCP project that holds the secrets (store `gcp`).
    pub gcp_project: Option<String>,
    /// Namespace of the Secrets (store `kubernetes`); the client's default namespace when unset.
    pub namespace: Option<String>,
    /// Directory of `secrets.json` (store `local`).
    pub data_dir: Option<PathBuf>,
    /// Client for the `kubernetes` store.
    pub client: Option<kube::Client>,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("gcp_project", &self.gcp_project)
            .field("namespace", &self.namespace)
            .field("data_dir", &self.data_dir)
            .field("client", &self.client.as_ref().map(|_| "kube::Client"))
            .finish()
    }
}

/// Build the configured store. Nothing is contacted here: a store that cannot be reached shows up
/// on the first call, where the operator turns it into a condition and retries.
pub fn from_config(cfg: &StoreConfig) -> Result<Arc<dyn SecretStore>, StoreError> {
    match cfg.kind {
        StoreKind::Gcp => {
            let project = cfg.gcp_project.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| StoreError::Config {
                store: "gcp",
                reason: "a GCP project id is required (--gcp-project)".into(),
            })?;
            Ok(Arc::new(GcpStore::new(project)?))
        }
        StoreKind::Kubernetes => {
            let client = cfg.client.clone().ok_or_else(|| StoreError::Config {
                store: "kubernetes",
                reason: "a Kubernetes client is required".into(),
            })?;
            let namespace = cfg.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
            Ok(Arc::new(KubernetesStore::new(client, &namespace)))
        }
        StoreKind::Local => {
            let dir = cfg.data_dir.clone().ok_or_else(|| StoreError::Config {
                store: "local",
                reason: "a data directory is required (--data-dir)".into(),
            })?;
            Ok(Arc::new(LocalStore::new(dir)))
        }
    }
}

/// Secret Manager's id rule (letters, digits, '-' and '_', 1 to 255), which the CRDs also enforce.
/// Every store checks it first, so an id that could escape a path or URL never reaches a backend.
pub fn validate_secret_id(id: &str) -> Result<(), StoreError> {
    let ok =
        !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidId { id: id.to_string(), reason: "use 1 to 255 letters, digits, '-' or '_'".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_print() {
        let v = SecretValue::new("hunter2-very-secret");
        assert_eq!(format!("{v}"), "[redacted]");
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&v)), "Some([redacted])");
        assert_eq!(v.expose(), "hunter2-very-secret");
    }

    #[test]
    fn secret_ids_follow_secret_managers_rule() {
        for good in ["openweather-api-key", "A_b-9", &"x".repeat(255)] {
            assert!(validate_secret_id(good).is_ok(), "{good}");
        }
        for bad in ["", "../etc/passwd", "a/b", "has space", "dot.ted", &"x".repeat(256)] {
            assert!(matches!(validate_secret_id(bad), Err(StoreError::InvalidId { .. })), "{bad}");
        }
    }

    #[test]
    fn store_kinds_round_trip_and_unknown_is_refused() {
        for kind in [StoreKind::Kubernetes, StoreKind::Gcp, StoreKind::Local] {
            assert_eq!(kind.as_str().parse::<StoreKind>(), Ok(kind));
        }
        assert!("vault".parse::<StoreKind>().unwrap_err().contains("kubernetes, gcp or local"));
    }

    #[test]
    fn from_config_names_what_is_missing() {
        let err = |cfg: StoreConfig| from_config(&cfg).err().expect("config is incomplete").to_string();
        assert!(err(StoreConfig { kind: StoreKind::Gcp, ..Default::default() }).contains("--gcp-project"));
        assert!(err(StoreConfig { kind: StoreKind::Local, ..Default::default() }).contains("--data-dir"));
        assert!(err(StoreConfig { kind: StoreKind::Kubernetes, ..Default::default() }).contains("client"));
        let dir = tempfile::tempdir().unwrap();
        let store = from_config(&StoreConfig {
            kind: StoreKind::Local,
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(store.kind(), "local");
    }
}
