//! The operator's error type: what a reconcile can fail on, and the metric label of each.

use crate::secret_store::StoreError;

/// Why a reconcile failed. The controller's error policy retries every variant with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} {kind} {name}")]
    Kube {
        action: &'static str,
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to check secret {secret_id:?} in the secret store")]
    Store {
        secret_id: String,
        #[source]
        source: StoreError,
    },
    #[error("failed to serialize {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Caught before the apply, which the apiserver would refuse.
    #[error("refused to apply {kind} {name}: its data is {size} bytes, more than the {limit} the apiserver accepts")]
    TooLarge { kind: &'static str, name: String, size: usize, limit: usize },
    #[error("{kind} {name} has no namespace; every wellbeing.dev kind is namespaced")]
    MissingNamespace { kind: &'static str, name: String },
}

impl Error {
    /// A short, bounded label for the errors metric (never contains object names).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Store { source, .. } => source.reason(),
            Error::Serialize { .. } => "serialize",
            Error::TooLarge { .. } => "too_large",
            Error::MissingNamespace { .. } => "missing_namespace",
        }
    }
}

/// Build a closure turning a `kube::Error` into [`Error::Kube`], for `map_err`.
pub(crate) fn kube_err(action: &'static str, kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> Error {
    let name = name.to_string();
    move |source| Error::Kube { action, kind, name, source }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
