//! Server-side apply helpers: one field manager for every child and status the operator writes.

use std::{fmt::Debug, time::Duration};

use kube::{
    Api, Resource,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    error::{Result, kube_err},
    names::FIELD_MANAGER,
};

/// Apply with `force`: the operator is the only intended writer of the fields it sets, so a
/// field someone changed by hand (`kubectl edit`) is taken back rather than failing the reconcile.
pub fn ssa() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Server-side apply a child object; returns the object as the apiserver stored it.
pub async fn apply<K>(api: &Api<K>, name: &str, obj: &K, kind: &'static str) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    api.patch(name, &ssa(), &Patch::Apply(obj)).await.map_err(kube_err("apply", kind, name))
}

/// A status write is one small request a healthy apiserver answers in milliseconds, and the
/// apiserver gives up on any request after 60 s (`--request-timeout`). One that hangs longer (a
/// connection lost without a reset: the client sets no read timeout) is given up here, so it does
/// not hold one of the few reconcile slots other objects wait for.
pub const STATUS_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Server-side apply the status subresource. `body` carries apiVersion, kind and the status
/// fields this operator owns (others, like Goal progress, stay with their own managers).
pub async fn apply_status<K>(api: &Api<K>, name: &str, body: &serde_json::Value, kind: &'static str) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let (params, patch) = (ssa(), Patch::Apply(body));
    let answer = tokio::time::timeout(STATUS_WRITE_TIMEOUT, api.patch_status(name, &params, &patch))
        .await
        .unwrap_or_else(|elapsed| Err(kube::Error::Service(Box::new(elapsed))));
    answer.map_err(kube_err("apply status of", kind, name))
}

/// Delete the objects matching `selector` whose names are not in `keep`. Returns the deleted names.
pub async fn delete_stale<K>(api: &Api<K>, selector: &str, keep: &[String], kind: &'static str) -> Result<Vec<String>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let existing = api.list(&ListParams::default().labels(selector)).await.map_err(kube_err("list", kind, selector))?;
    let mut deleted = Vec::new();
    for obj in existing {
        let name = obj.meta().name.clone().unwrap_or_default();
        if keep.contains(&name) || obj.meta().deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err("delete", kind, &name)(e)),
        }
    }
    Ok(deleted)
}

/// Delete one object if it exists (a missing object is not an error).
pub async fn delete_if_exists<K>(api: &Api<K>, name: &str, kind: &'static str) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.get_opt(name).await.map_err(kube_err("get", kind, name))? {
        None => Ok(false),
        Some(obj) if obj.meta().deletion_timestamp.is_some() => Ok(false),
        Some(_) => match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(kube_err("delete", kind, name)(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use http::{Request, Response};
    use kube::{Client, client::Body};
    use wellbeing_crds::Plugin;

    /// A status write the apiserver never answers gives up (on tokio's paused clock, which jumps
    /// ahead once nothing else can run), so the reconcile slot is freed and the error policy retries.
    #[tokio::test(start_paused = true)]
    async fn a_status_write_that_never_returns_is_given_up() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<Plugin> = Api::namespaced(Client::new(service, "default"), "ns");
        let apiserver = tokio::spawn(async move {
            // Take the request and never answer it.
            let _held = handle.next_request().await;
            std::future::pending::<()>().await
        });
        let error = apply_status(&api, "weather", &serde_json::json!({"status": {}}), "Plugin").await.unwrap_err();
        assert!(
            matches!(&error, Error::Kube { action: "apply status of", source: kube::Error::Service(_), .. }),
            "{error:?}"
        );
        apiserver.abort();
    }
}
