//! Test helpers: a mocked API server (tower-test) that answers like a real one and records every
//! request, a fixed clock, a fake secret store and object builders.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::{Method, Request, Response};
use kube::{Client, client::Body};
use serde_json::{Value, json};
use tower_test::mock;

use crate::{
    config::OperatorConfig,
    context::Context,
    metrics::Metrics,
    secret_store::{Presence, SecretStore, SecretValue, StoreError},
};

/// One request the reconcile made.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// Path and query, e.g. `/apis/batch/v1/namespaces/ns/cronjobs/x?fieldManager=...`.
    pub uri: String,
    pub body: Value,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
    pub fn query(&self) -> &str {
        self.uri.split_once('?').map(|(_, q)| q).unwrap_or_default()
    }
    /// `METHOD path` for compact sequence assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path())
    }
}

/// What the fake apiserver answers: status code and JSON body.
pub type Reply = (u16, Value);
type Responder = Arc<dyn Fn(&Method, &str, &Value) -> Reply + Send + Sync>;

pub fn not_found() -> Reply {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// An error as the apiserver sends it: a `Status` with code, reason and message.
pub fn api_error(code: u16, reason: &str, message: &str) -> Reply {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

pub fn list(items: Vec<Value>) -> Reply {
    (200, json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}))
}

/// The default answer for writes: the object as sent (what an apiserver returns, give or take
/// defaults). Events and status patches are echoed the same way.
pub fn echo(body: &Value) -> Reply {
    (200, body.clone())
}

pub struct Fixture {
    pub ctx: Arc<Context>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub store_calls: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }
    /// The requests with this method whose path contains `part`.
    pub fn find(&self, method: Method, part: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == method && r.path().contains(part)).collect()
    }
}

/// Fake store: presence from a map; absent ids are Missing; `Err` for ids listed as unreachable.
#[derive(Default)]
pub struct FakeStore {
    pub present: Vec<String>,
    pub unreachable: bool,
    pub calls: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl SecretStore for FakeStore {
    fn kind(&self) -> &'static str {
        "fake"
    }
    async fn presence(&self, secret_id: &str) -> Result<Presence, StoreError> {
        self.calls.lock().unwrap().push(secret_id.to_string());
        if self.unreachable {
            return Err(StoreError::Unreachable { store: "fake", source: "connection refused".into() });
        }
        Ok(if self.present.iter().any(|p| p == secret_id) { Presence::Present } else { Presence::Missing })
    }
    async fn put(&self, _: &str, _: &SecretValue) -> Result<(), StoreError> {
        unreachable!("the operator never writes secrets")
    }
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339 instant")
}

/// A context over a mocked apiserver answering with `responder`, at a fixed `now`.
pub fn fixture(
    config: OperatorConfig,
    store: FakeStore,
    now: DateTime<Utc>,
    responder: impl Fn(&Method, &str, &Value) -> Reply + Send + Sync + 'static,
) -> Fixture {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let responder: Responder = Arc::new(responder);
    let recorded = requests.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let uri = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.expect("request body");
            let body: Value =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
            let (code, reply) = responder(&method, &uri, &body);
            recorded.lock().unwrap().push(Recorded { method, uri, body });
            send.send_response(
                Response::builder().status(code).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
            );
        }
    });
    let store_calls = store.calls.clone();
    let store: Arc<dyn SecretStore> = Arc::new(store);
    let ctx = Context::new(client, Context::shared_store(store), Arc::new(Metrics::default()), config, None)
        .with_clock(Arc::new(move || now));
    Fixture { ctx: Arc::new(ctx), requests, store_calls }
}

/// Route by method and a path fragment; first match wins; unmatched requests fail the test.
type Handler = Box<dyn Fn(&Value) -> Reply + Send + Sync>;

pub struct Routes(Vec<(Method, String, Handler)>);

impl Routes {
    pub fn new() -> Self {
        Routes(Vec::new())
    }
    pub fn on(mut self, method: Method, path_part: &str, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Self {
        self.0.push((method, path_part.to_string(), Box::new(f)));
        self
    }
    /// These routes, then `rest`'s: a test's failing route wins over the usual answers.
    pub fn then(mut self, rest: Routes) -> Self {
        self.0.extend(rest.0);
        self
    }

    /// Answer every label-selected LIST of a plugin's children with an empty list (registered
    /// first, so it wins over GETs of a single child).
    pub fn no_children(mut self, namespace: &str) -> Self {
        for kind_path in [
            "/apis/apps/v1/namespaces/{ns}/deployments",
            "/api/v1/namespaces/{ns}/services",
            "/api/v1/namespaces/{ns}/configmaps",
        ] {
            let exact = format!("={}", kind_path.replace("{ns}", namespace));
            self.0.insert(0, (Method::GET, exact, Box::new(|_| list(vec![]))));
        }
        self
    }

    pub fn into_responder(self) -> impl Fn(&Method, &str, &Value) -> Reply + Send + Sync + 'static {
        move |method, uri, body| {
            let path = uri.split('?').next().unwrap_or_default();
            for (m, part, f) in &self.0 {
                let hit = match part.strip_prefix('=') {
                    Some(exact) => path.ends_with(exact),
                    None => path.contains(part.as_str()),
                };
                if m == method && hit {
                    return f(body);
                }
            }
            // Events are best effort and uninteresting to most tests: accept them.
            if method == Method::POST && path.contains("/events") {
                return echo(body);
            }
            panic!("unexpected request {method} {uri}");
        }
    }
}

/// A Persona as the apiserver would return it.
pub fn persona(name: &str, active: bool, per_day: i32, time_zone: &str) -> wellbeing_crds::Persona {
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "Persona",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "generation": 1, "resourceVersion": "10"},
        "spec": {
            "displayName": "Sunny",
            "active": active,
            "checkIns": {"timeZone": time_zone, "windows": [{"start": "09:00", "end": "21:00"}], "perDay": per_day, "minGapMinutes": 90}
        }
    }))
    .expect("persona")
}

pub fn goal(name: &str, pillar: &str) -> wellbeing_crds::Goal {
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "Goal",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "generation": 2},
        "spec": {"description": "Drink more water", "pillar": pillar, "metric": "water", "target": {"count": 8, "per": "day"}}
    }))
    .expect("goal")
}

/// A Python plugin with inline code, needing `secrets`.
pub fn plugin(name: &str, secrets: &[&str]) -> wellbeing_crds::Plugin {
    let required: Vec<Value> =
        secrets.iter().map(|s| json!({"name": s, "env": s.to_uppercase().replace('-', "_")})).collect();
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "generation": 1},
        "spec": {
            "description": "Weather for outdoor plans",
            "triggers": {"pillars": ["hydration"], "keywords": ["weather"]},
            "source": {"python": {"module": "weather/v1.py", "code": "def run(args):\n    return {}\n"}},
            "requiredSecrets": required,
            "egress": [{"host": "api.openweathermap.org", "port": 443}],
            "llm": "summary"
        }
    }))
    .expect("plugin")
}

pub fn requirement(secret_id: &str, phase: Option<&str>) -> wellbeing_crds::SecretRequirement {
    let mut v = json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "SecretRequirement",
        "metadata": {
            "name": crate::names::requirement_name(secret_id), "namespace": "ns", "generation": 1,
            "labels": {"app.kubernetes.io/managed-by": "wellbeing-operator"}
        },
        "spec": {"secretId": secret_id}
    });
    if let Some(phase) = phase {
        v["status"] = json!({"phase": phase, "observedGeneration": 1});
    }
    serde_json::from_value(v).expect("requirement")
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializable")
}

/// Answer a status apply like the apiserver: the stored object with the applied status.
pub fn with_status(object: Value) -> impl Fn(&Value) -> Reply + Send + Sync + 'static {
    move |body| {
        let mut o = object.clone();
        o["status"] = body["status"].clone();
        (200, o)
    }
}
