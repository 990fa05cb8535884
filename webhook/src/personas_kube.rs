//! The persona source in the cluster: a watch on the namespace's Personas feeding the engine's
//! `PersonaRegistry`, so a `kubectl apply` changes the voice of the next reply without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;
use wellbeing_assistant::persona::PersonaRegistry;
use wellbeing_crds::Persona;

/// Apply one watch event. `buffer` collects a (re-)list between `Init` and `InitDone`, which then
/// replaces everything at once, so a re-list also forgets Personas deleted while disconnected.
pub fn apply_event(
    registry: &PersonaRegistry,
    buffer: &mut Option<Vec<Persona>>,
    event: Event<Persona>,
    synced: &AtomicBool,
) {
    match event {
        Event::Init => *buffer = Some(Vec::new()),
        Event::InitApply(persona) => buffer.get_or_insert_with(Vec::new).push(persona),
        Event::InitDone => {
            registry.replace_all(buffer.take().unwrap_or_default());
            synced.store(true, Ordering::Relaxed);
            let active = registry.active();
            tracing::info!(personas = registry.all().len(), active = active.name(), "personas synced");
        }
        Event::Apply(persona) => {
            tracing::info!(name = persona.metadata.name.as_deref().unwrap_or(""), "persona changed");
            registry.upsert(persona);
        }
        Event::Delete(persona) => {
            let name = persona.metadata.name.clone().unwrap_or_default();
            tracing::info!(name = %name, "persona deleted");
            registry.remove(persona.metadata.namespace.as_deref(), &name);
        }
    }
}

/// Watch Personas in `namespace` until `stop`; errors are retried with kube's default backoff.
pub async fn watch(
    client: kube::Client,
    namespace: String,
    registry: PersonaRegistry,
    synced: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let api: kube::Api<Persona> = kube::Api::namespaced(client, &namespace);
    let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut buffer = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            next = events.next() => match next {
                Some(Ok(event)) => apply_event(&registry, &mut buffer, event, &synced),
                Some(Err(error)) => tracing::warn!(error = %error, namespace = %namespace, "persona watch failed; retrying"),
                None => break,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_assistant::persona::PersonaSource;

    fn persona(name: &str, active: bool) -> Persona {
        let mut p = wellbeing_assistant::persona::default_persona("UTC");
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("wellbeing".into());
        p.spec.active = active;
        p.spec.display_name = name.to_uppercase();
        p
    }

    #[test]
    fn a_list_then_changes_keep_the_registry_current() {
        let registry = PersonaRegistry::default();
        let synced = AtomicBool::new(false);
        let mut buffer = None;
        for event in [Event::Init, Event::InitApply(persona("coach", true)), Event::InitApply(persona("calm", false))] {
            apply_event(&registry, &mut buffer, event, &synced);
        }
        // Nothing visible until the list is complete.
        assert!(!synced.load(Ordering::Relaxed));
        assert_eq!(registry.active().source, PersonaSource::Default);
        apply_event(&registry, &mut buffer, Event::InitDone, &synced);
        assert!(synced.load(Ordering::Relaxed));
        assert_eq!(registry.active().name(), "coach");

        // A second active persona is a conflict: the default speaks.
        apply_event(&registry, &mut buffer, Event::Apply(persona("calm", true)), &synced);
        assert_eq!(registry.active().source, PersonaSource::Conflict);
        apply_event(&registry, &mut buffer, Event::Delete(persona("coach", true)), &synced);
        assert_eq!(registry.active().name(), "calm");

        // A re-list without "calm" forgets it.
        for event in [Event::Init, Event::InitApply(persona("coach", false)), Event::InitDone] {
            apply_event(&registry, &mut buffer, event, &synced);
        }
        assert_eq!(registry.all().len(), 1);
        assert_eq!(registry.active().source, PersonaSource::Default);
    }

    /// The watch lists Personas from the API server (a mocked one) and fills the registry.
    #[tokio::test]
    async fn the_watch_lists_personas_from_the_api_server() {
        let (service, mut handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let client = kube::Client::new(service, "wellbeing");
        let registry = PersonaRegistry::default();
        let synced = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let task = tokio::spawn(watch(client, "wellbeing".into(), registry.clone(), synced.clone(), stop.clone()));
        let (request, send) = handle.next_request().await.expect("a list request");
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().path(), "/apis/wellbeing.dev/v1alpha1/namespaces/wellbeing/personas");
        let list = serde_json::json!({
            "apiVersion": "wellbeing.dev/v1alpha1", "kind": "PersonaList",
            "metadata": {"resourceVersion": "7"},
            "items": [serde_json::to_value(persona("coach", true)).unwrap()]
        });
        send.send_response(
            http::Response::builder().body(kube::client::Body::from(serde_json::to_vec(&list).unwrap())).unwrap(),
        );
        // The watch request that follows is left open; by then the list is applied.
        let (watch_request, _pending) = handle.next_request().await.expect("a watch request");
        assert!(watch_request.uri().query().unwrap_or_default().contains("watch=true"));
        assert!(synced.load(Ordering::Relaxed));
        assert_eq!(registry.active().name(), "coach");
        stop.cancel();
        task.await.unwrap();
    }
}
