//! GCP Secret Manager store (GKE with Workload Identity): presence from version metadata, writes
//! as new versions. It never calls `:access`, so the operator's identity needs only
//! `secretmanager.versions.list` (roles/secretmanager.viewer), not the accessor role.

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_secretmanager_v1::{
    client::SecretManagerService,
    model::{Replication, Secret, SecretPayload, replication::Automatic, secret_version::State},
};
use tokio::sync::OnceCell;
use tracing::instrument;

use super::{Presence, SecretStore, SecretValue, StoreError, validate_secret_id};

const STORE: &str = "gcp";

/// Server-side filter so a secret with many disabled or destroyed versions still answers in one
/// small page (Secret Manager's list filter syntax).
const ENABLED_FILTER: &str = "state:ENABLED";

/// Secret Manager in one project. Credentials are Application Default Credentials: on GKE the
/// pod's Kubernetes ServiceAccount bound to a Google service account through Workload Identity.
pub struct GcpStore {
    project: String,
    // Building the client resolves credentials asynchronously; doing it on first use keeps
    // `from_config` synchronous and lets a missing metadata server surface as a store error on
    // a call (a condition and a retry) rather than a start-up crash.
    client: OnceCell<SecretManagerService>,
}

impl GcpStore {
    pub fn new(project: &str) -> Result<Self, StoreError> {
        validate_project(project)?;
        Ok(GcpStore { project: project.to_string(), client: OnceCell::new() })
    }

    /// A store over a client built elsewhere (a test endpoint, explicit credentials).
    pub fn with_client(project: &str, client: SecretManagerService) -> Result<Self, StoreError> {
        validate_project(project)?;
        Ok(GcpStore { project: project.to_string(), client: OnceCell::new_with(Some(client)) })
    }

    async fn client(&self) -> Result<&SecretManagerService, StoreError> {
        self.client
            .get_or_try_init(|| async {
                SecretManagerService::builder()
                    .build()
                    .await
                    .map_err(|e| StoreError::Unreachable { store: STORE, source: Box::new(e) })
            })
            .await
    }

    fn secret_name(&self, secret_id: &str) -> String {
        format!("projects/{}/secrets/{secret_id}", self.project)
    }
}

fn validate_project(project: &str) -> Result<(), StoreError> {
    // Project ids are lowercase letters, digits and '-'; numbers and legacy domain-scoped ids
    // ("example.com:proj") also work. Anything with '/' would change the resource path.
    let ok = !project.is_empty()
        && project.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config { store: STORE, reason: format!("{project:?} is not a GCP project id") })
    }
}

/// Turn the client's error into ours, keeping the cause as the source.
fn map_error(err: google_cloud_secretmanager_v1::Error, action: &'static str, secret_id: &str) -> StoreError {
    let code = err.status().map(|s| s.code);
    if matches!(code, Some(Code::PermissionDenied | Code::Unauthenticated)) {
        return StoreError::PermissionDenied { store: STORE, secret_id: secret_id.to_string(), source: Box::new(err) };
    }
    if matches!(code, Some(Code::Unavailable | Code::DeadlineExceeded))
        || err.is_connect()
        || err.is_io()
        || err.is_timeout()
        || err.is_exhausted()
        || err.is_authentication()
    {
        return StoreError::Unreachable { store: STORE, source: Box::new(err) };
    }
    StoreError::Api { store: STORE, action, secret_id: secret_id.to_string(), source: Box::new(err) }
}

fn code_of(err: &google_cloud_secretmanager_v1::Error) -> Option<Code> {
    err.status().map(|s| s.code)
}

#[async_trait]
impl SecretStore for GcpStore {
    fn kind(&self) -> &'static str {
        STORE
    }

    /// Present when the secret exists and has at least one ENABLED version. Only version metadata
    /// is listed; a payload is never accessed.
    #[instrument(skip(self), fields(store = STORE, project = %self.project))]
    async fn presence(&self, secret_id: &str) -> Result<Presence, StoreError> {
        validate_secret_id(secret_id)?;
        let client = self.client().await?;
        let parent = self.secret_name(secret_id);
        let mut page_token = String::new();
        loop {
            let page = client
                .list_secret_versions()
                .set_parent(&parent)
                .set_filter(ENABLED_FILTER)
                .set_page_size(1)
                .set_page_token(&page_token)
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if code_of(&e) == Some(Code::NotFound) => return Ok(Presence::Missing),
                Err(e) => return Err(map_error(e, "list versions of", secret_id)),
            };
            // The filter already asks for enabled versions; checking the state again keeps the
            // answer right should a server ignore the filter.
            if page.versions.iter().any(|v| v.state == State::Enabled) {
                return Ok(Presence::Present);
            }
            if page.next_page_token.is_empty() {
                return Ok(Presence::Missing);
            }
            page_token = page.next_page_token;
        }
    }

    /// Create the secret (automatic replication) unless it exists, then add a version.
    #[instrument(skip(self, value), fields(store = STORE, project = %self.project))]
    async fn put(&self, secret_id: &str, value: &SecretValue) -> Result<(), StoreError> {
        validate_secret_id(secret_id)?;
        if value.is_empty() {
            return Err(StoreError::EmptyValue { secret_id: secret_id.to_string() });
        }
        let client = self.client().await?;
        // Create first and accept ALREADY_EXISTS: one round trip for a new secret, and no race
        // with another writer between a lookup and a create.
        let created = client
            .create_secret()
            .set_parent(format!("projects/{}", self.project))
            .set_secret_id(secret_id)
            .set_secret(Secret::new().set_replication(Replication::new().set_automatic(Automatic::new())))
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(secret_id, "created secret"),
            Err(e) if code_of(&e) == Some(Code::AlreadyExists) => {}
            Err(e) => return Err(map_error(e, "create", secret_id)),
        }
        client
            .add_secret_version()
            .set_parent(self.secret_name(secret_id))
            .set_payload(SecretPayload::new().set_data(value.expose().to_owned()))
            .send()
            .await
            .map_err(|e| map_error(e, "add a version to", secret_id))?;
        tracing::info!(secret_id, "added secret version");
        Ok(())
    }
}
