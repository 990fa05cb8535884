//! `cargo bench -p wellbeing --bench operator_load`: the real `wellbeing operator` process against
//! a stand-in apiserver on 127.0.0.1 that holds 1,000 Plugins, answers every write the way the
//! apiserver does (the object back; Deployments updated but with no pod available yet, since no
//! pod can run here), and then announces 100 more
//! Plugins one at a time through the watch. Prints the operator's resident memory and the time
//! from a Plugin appearing to its Deployment being applied. Figures in BENCHMARKS.md.
//!
//! The stand-in is no apiserver: it does no validation, no admission and no etcd, so the figures
//! are the operator's own cost (its caches, queues, JSON and client), not a cluster's.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

const NAMESPACE: &str = "bench";
/// Plugins in the initial list; `OPERATOR_LOAD_PLUGINS` overrides it (0 gives the baseline).
fn initial() -> usize {
    std::env::var("OPERATOR_LOAD_PLUGINS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}
const ANNOUNCED: usize = 100;

#[derive(Default)]
struct Seen {
    /// When each plugin's Deployment was applied.
    deployed: HashMap<String, Instant>,
    /// When each announced plugin was sent down the watch.
    announced: HashMap<String, Instant>,
    list_served: Option<Instant>,
    requests: usize,
}

#[derive(Clone)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
    plugin_events: broadcast::Sender<Value>,
}

fn plugin(i: usize) -> Value {
    json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "Plugin",
        "metadata": {"name": format!("p{i:04}"), "namespace": NAMESPACE, "uid": format!("uid-{i}"),
                     "generation": 1, "resourceVersion": "1"},
        "spec": {"description": "A bench plugin", "source": {"python": {"module": format!("p{i}/v1.py"),
                 "code": "def run(args):\n    return {}\n"}}, "triggers": {"pillars": ["sleep"]}}
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

fn reply(code: u16, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

async fn handle(State(fake): State<Fake>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let bytes = axum::body::to_bytes(request.into_body(), 64 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().requests += 1;
    let is_watch = query.contains("watch=true") || query.contains("watch=1");
    let last = path.rsplit('/').next().unwrap_or_default().to_string();
    match method.as_str() {
        "GET" if is_watch => {
            // Plugins get the announced ones; every other watch stays open and quiet.
            let stream: futures::stream::BoxStream<'static, Result<Bytes, Infallible>> = if last == "plugins" {
                let rx = fake.plugin_events.subscribe();
                tokio_stream_from(rx).boxed()
            } else {
                futures::stream::pending().boxed()
            };
            Response::builder().status(200).body(Body::from_stream(stream)).unwrap()
        }
        "GET" => match last.as_str() {
            "plugins" => {
                fake.seen.lock().unwrap().list_served.get_or_insert_with(Instant::now);
                reply(200, &list("Plugin", (0..initial()).map(plugin).collect()))
            }
            "personas" | "goals" | "secretrequirements" | "deployments" | "services" | "configmaps"
            | "networkpolicies" | "cronjobs" => reply(200, &list("", vec![])),
            _ => reply(
                404,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
            ),
        },
        "PATCH" | "POST" | "PUT" => {
            let mut obj = body.clone();
            if obj.get("metadata").is_some() {
                obj["metadata"]["resourceVersion"] = json!("2");
                obj["metadata"]["generation"] = json!(1);
            }
            if path.contains("/deployments/") {
                // Rolled out but not yet available: the plugin stays Deploying, so the operator does
                // not try to list tools from pods that do not exist here (see BENCHMARKS.md).
                obj["status"] =
                    json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
                let plugin = last.trim_start_matches("plugin-").to_string();
                fake.seen.lock().unwrap().deployed.entry(plugin).or_insert_with(Instant::now);
            }
            if path.ends_with("/status") {
                let name = path.trim_end_matches("/status").rsplit('/').next().unwrap_or_default().to_string();
                let index: usize = name.trim_start_matches('p').parse().unwrap_or(0);
                let mut stored = plugin(index);
                stored["status"] = body["status"].clone();
                obj = stored;
            }
            reply(if method == "POST" { 201 } else { 200 }, &obj)
        }
        _ => reply(200, &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
    }
}

fn tokio_stream_from(rx: broadcast::Receiver<Value>) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(obj) => {
                    let mut line = serde_json::to_vec(&json!({"type": "ADDED", "object": obj})).unwrap();
                    line.push(b'\n');
                    return Some((Ok(Bytes::from(line)), rx));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let (plugin_events, _) = broadcast::channel(1024);
        let fake = Fake { seen: Arc::default(), plugin_events: plugin_events.clone() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster: {{server: \"http://{addr}\"}}\n\
                 users:\n- name: bench\n  user: {{token: bench}}\ncontexts:\n- name: bench\n  context: \
                 {{cluster: bench, user: bench, namespace: {NAMESPACE}}}\ncurrent-context: bench\n"
            ),
        )
        .unwrap();
        let health_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wellbeing"))
            .arg("operator")
            .env("KUBECONFIG", &kubeconfig)
            .env("WELLBEING_LEADER_ELECTION", "false")
            .env("WELLBEING_OPERATOR_LISTEN", format!("127.0.0.1:{health_port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the wellbeing binary runs");
        let pid = child.id();

        let wait_for = |count: usize, label: &str| {
            let seen = fake.seen.clone();
            let label = label.to_string();
            async move {
                let deadline = Instant::now() + Duration::from_secs(300);
                while seen.lock().unwrap().deployed.len() < count {
                    assert!(Instant::now() < deadline, "{label}: only {} deployments", seen.lock().unwrap().deployed.len());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let initial = initial();
        wait_for(initial, "initial").await;
        let (initial_all, requests) = {
            let s = fake.seen.lock().unwrap();
            let start = s.list_served.unwrap_or_else(Instant::now);
            (s.deployed.values().map(|t| *t - start).max().unwrap_or_default(), s.requests)
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_settled = rss_kib(pid, "VmRSS:");

        for i in initial..initial + ANNOUNCED {
            let p = plugin(i);
            fake.seen.lock().unwrap().announced.insert(format!("p{i:04}"), Instant::now());
            let _ = plugin_events.send(p);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_for(initial + ANNOUNCED, "announced").await;
        let mut latencies: Vec<Duration> = {
            let s = fake.seen.lock().unwrap();
            s.announced.iter().map(|(name, at)| s.deployed[name] - *at).collect()
        };
        latencies.sort();
        let rss = rss_kib(pid, "VmRSS:");
        let peak = rss_kib(pid, "VmHWM:");
        // Of the resident set, how much is the process's own memory and how much the binary's
        // mapped code and data (shared with any other process running the same file).
        let (anon, file) = (rss_kib(pid, "RssAnon:"), rss_kib(pid, "RssFile:"));
        let _ = child.kill();
        let _ = child.wait();

        println!("plugins in the initial list: {initial}; apiserver requests until all had children: {requests}");
        println!("initial list -> last Deployment applied: {:.2} s", initial_all.as_secs_f64());
        println!(
            "announced plugin -> Deployment applied ({ANNOUNCED} plugins, 50 ms apart): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3
        );
        println!(
            "operator RSS: {:.1} MB after the initial {initial}, {:.1} MB at the end, peak {:.1} MB",
            rss_settled as f64 / 1024.0,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        println!("  of which anonymous {:.1} MB, mapped from the binary {:.1} MB", anon as f64 / 1024.0, file as f64 / 1024.0);
    });
}
