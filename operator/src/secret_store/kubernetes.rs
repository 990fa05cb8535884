//! Kubernetes Secret store: one Opaque Secret per secret id, its value under the data key
//! [`SECRET_VALUE_KEY`], in the namespace the system runs in.
//!
//! The convention, defined here once and used by the operator for plugin pods
//! (`secretKeyRef {name: kubernetes_secret_name(id), key: SECRET_VALUE_KEY}`):
//! the Secret is named exactly like the secret id, so
//! `kubectl create secret generic openweather-api-key --from-literal=value=...` satisfies the
//! requirement `openweather-api-key` as well as `wellbeing secrets resolve` does.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams},
};
use tracing::instrument;

use super::{Presence, SecretStore, SecretValue, StoreError, validate_secret_id};

const STORE: &str = "kubernetes";

/// Data key holding the value in every Secret this store manages.
pub const SECRET_VALUE_KEY: &str = "value";

/// Field manager of `wellbeing secrets resolve`'s server-side apply, distinct from the operator's
/// so the two never fight over fields.
pub const FIELD_MANAGER: &str = "wellbeing-secrets";

/// Name of the Secret holding `secret_id`. Secret ids follow Secret Manager's rule (upper case and
/// '_' allowed) while Secret names must be DNS subdomains, so ids outside the overlap are refused
/// here rather than silently renamed (two ids could otherwise map to one Secret).
pub fn kubernetes_secret_name(secret_id: &str) -> Result<String, StoreError> {
    validate_secret_id(secret_id)?;
    let dns_ok = secret_id.len() <= 253
        && secret_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && secret_id.as_bytes()[0].is_ascii_alphanumeric()
        && secret_id.as_bytes()[secret_id.len() - 1].is_ascii_alphanumeric();
    if dns_ok {
        Ok(secret_id.to_string())
    } else {
        Err(StoreError::InvalidId {
            id: secret_id.to_string(),
            reason: "the kubernetes store needs lowercase letters, digits and '-' (a Secret name)".into(),
        })
    }
}

/// Whether a Secret holds a usable value. Pure, so the rule is tested without an API server.
pub fn secret_has_value(secret: &Secret) -> bool {
    let in_data = secret.data.as_ref().and_then(|d| d.get(SECRET_VALUE_KEY)).is_some_and(|v| !v.0.is_empty());
    // `stringData` is write-only on a real API server; honouring it keeps the rule right for
    // objects that never went through one (manifests, tests).
    let in_string_data =
        secret.string_data.as_ref().and_then(|d| d.get(SECRET_VALUE_KEY)).is_some_and(|v| !v.is_empty());
    in_data || in_string_data
}

/// The Secret `put` applies: only the fields this store owns.
pub fn desired_secret(name: &str, namespace: &str, value: &SecretValue) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), FIELD_MANAGER.to_string())])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(BTreeMap::from([(SECRET_VALUE_KEY.to_string(), ByteString(value.expose().as_bytes().to_vec()))])),
        ..Secret::default()
    }
}

/// Secrets in one namespace.
pub struct KubernetesStore {
    api: Api<Secret>,
    namespace: String,
}

impl KubernetesStore {
    pub fn new(client: Client, namespace: &str) -> Self {
        KubernetesStore { api: Api::namespaced(client, namespace), namespace: namespace.to_string() }
    }
}

fn map_error(err: kube::Error, action: &'static str, secret_id: &str) -> StoreError {
    match &err {
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            StoreError::PermissionDenied { store: STORE, secret_id: secret_id.to_string(), source: Box::new(err) }
        }
        kube::Error::Api(status) if status.code >= 500 => {
            StoreError::Unreachable { store: STORE, source: Box::new(err) }
        }
        kube::Error::Api(_) => {
            StoreError::Api { store: STORE, action, secret_id: secret_id.to_string(), source: Box::new(err) }
        }
        _ => StoreError::Unreachable { store: STORE, source: Box::new(err) },
    }
}

#[async_trait]
impl SecretStore for KubernetesStore {
    fn kind(&self) -> &'static str {
        STORE
    }

    /// A metadata-only request cannot tell whether the `value` key is non-empty, so this reads the
    /// Secret; its data is reduced to a yes/no on the spot and never logged or kept.
    #[instrument(skip(self), fields(store = STORE, namespace = %self.namespace))]
    async fn presence(&self, secret_id: &str) -> Result<Presence, StoreError> {
        let name = kubernetes_secret_name(secret_id)?;
        let secret = self.api.get_opt(&name).await.map_err(|e| map_error(e, "read", secret_id))?;
        Ok(match secret {
            Some(s) if secret_has_value(&s) => Presence::Present,
            _ => Presence::Missing,
        })
    }

    /// Server-side apply owning only `data.value` (and a label), so other keys or labels someone
    /// put on the Secret are kept. Forced: resolving again must win over an earlier manual edit.
    #[instrument(skip(self, value), fields(store = STORE, namespace = %self.namespace))]
    async fn put(&self, secret_id: &str, value: &SecretValue) -> Result<(), StoreError> {
        let name = kubernetes_secret_name(secret_id)?;
        if value.is_empty() {
            return Err(StoreError::EmptyValue { secret_id: secret_id.to_string() });
        }
        let secret = desired_secret(&name, &self.namespace, value);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api.patch(&name, &params, &Patch::Apply(&secret)).await.map_err(|e| map_error(e, "write", secret_id))?;
        tracing::info!(secret_id, "applied secret");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, Request, Response, StatusCode};
    use http_body_util::BodyExt;
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

    fn store() -> (KubernetesStore, Handle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (KubernetesStore::new(Client::new(service, "wellbeing"), "wellbeing"), handle)
    }

    fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
    }

    fn not_found(name: &str) -> serde_json::Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
               "message": format!("secrets \"{name}\" not found"), "metadata": {}})
    }

    /// Answers one request after checking its method and URI; returns the request body.
    async fn expect(handle: &mut Handle, method: Method, uri: &str, reply: Response<Body>) -> serde_json::Value {
        let (request, send) = handle.next_request().await.expect("a request");
        assert_eq!(request.method(), method);
        assert_eq!(request.uri().to_string(), uri);
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        send.send_response(reply);
        if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() }
    }

    fn secret_json(data: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "openweather-api-key", "namespace": "wellbeing"}, "data": data})
    }

    #[tokio::test]
    async fn presence_follows_the_value_key() {
        let cases = [
            (json_response(StatusCode::NOT_FOUND, not_found("openweather-api-key")), Presence::Missing),
            (json_response(StatusCode::OK, secret_json(json!({}))), Presence::Missing),
            (json_response(StatusCode::OK, secret_json(json!({"value": ""}))), Presence::Missing),
            (json_response(StatusCode::OK, secret_json(json!({"other": "eA=="}))), Presence::Missing),
            (json_response(StatusCode::OK, secret_json(json!({"value": "c2VjcmV0"}))), Presence::Present),
        ];
        for (reply, want) in cases {
            let (store, mut handle) = store();
            let server = tokio::spawn(async move {
                expect(&mut handle, Method::GET, "/api/v1/namespaces/wellbeing/secrets/openweather-api-key", reply)
                    .await;
            });
            assert_eq!(store.presence("openweather-api-key").await.unwrap(), want);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn put_applies_only_the_value_key_with_its_own_field_manager() {
        let (store, mut handle) = store();
        let server = tokio::spawn(async move {
            let reply = json_response(StatusCode::OK, secret_json(json!({"value": "czNjcjN0"})));
            expect(
                &mut handle,
                Method::PATCH,
                "/api/v1/namespaces/wellbeing/secrets/openweather-api-key?&force=true&fieldManager=wellbeing-secrets",
                reply,
            )
            .await
        });
        store.put("openweather-api-key", &SecretValue::new("s3cr3t")).await.unwrap();
        let body = server.await.unwrap();
        assert_eq!(
            body,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "openweather-api-key", "namespace": "wellbeing",
                                "labels": {"app.kubernetes.io/managed-by": "wellbeing-secrets"}},
                   "data": {"value": "czNjcjN0"}})
        );
    }

    #[tokio::test]
    async fn forbidden_is_permission_denied_and_ids_outside_dns_rules_never_reach_the_server() {
        let (store, mut handle) = store();
        let server = tokio::spawn(async move {
            let forbidden = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                                   "code": 403, "message": "secrets is forbidden", "metadata": {}});
            expect(
                &mut handle,
                Method::GET,
                "/api/v1/namespaces/wellbeing/secrets/slack-token",
                json_response(StatusCode::FORBIDDEN, forbidden),
            )
            .await;
            // Any further request would be answered by nobody and hang the test.
            handle
        });
        let err = store.presence("slack-token").await.unwrap_err();
        assert_eq!(err.reason(), "StorePermissionDenied", "{err}");
        let _handle = server.await.unwrap();
        for bad in ["OPENWEATHER_KEY", "-leading", "../x"] {
            assert!(matches!(store.presence(bad).await, Err(StoreError::InvalidId { .. })), "{bad}");
        }
        let empty = store.put("fine-id", &SecretValue::new("")).await.unwrap_err();
        assert!(matches!(empty, StoreError::EmptyValue { .. }));
    }

    #[test]
    fn string_data_counts_and_names_map_one_to_one() {
        let mut s = Secret::default();
        assert!(!secret_has_value(&s));
        s.string_data = Some(BTreeMap::from([(SECRET_VALUE_KEY.to_string(), "x".to_string())]));
        assert!(secret_has_value(&s));
        assert_eq!(kubernetes_secret_name("openweather-api-key").unwrap(), "openweather-api-key");
    }
}
