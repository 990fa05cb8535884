//! `status.tools` from a real server: the repository's Python plugin host, started with the
//! environment the operator's Deployment gives it, listed over streamable HTTP on loopback by the
//! lister the Plugin reconcile uses; and a whole reconcile (mocked apiserver, real lister) that
//! writes what it listed.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use wellbeing_crds::{Plugin, plugin::ToolInfo};
use wellbeing_operator::{
    Context, OperatorConfig,
    context::StoreFor,
    metrics::Metrics,
    plugin::{
        self,
        build::{deployment, port_and_path, validate},
        tools::{LIST_TIMEOUT, McpToolLister, REASON_LISTED, TOOLS_LISTED, ToolLister},
    },
    secret_store::StoreError,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("operator/ has a parent").to_path_buf()
}

fn python() -> String {
    std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails (never skips) when the host's Python dependencies are missing, naming the fix.
fn require_python_deps() {
    let probe = Command::new(python()).args(["-c", "import mcp, mcp.server.lowlevel, jsonschema, uvicorn"]).output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the plugin host's Python dependencies are missing for {}: run `make python-deps`\n{}",
            python(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {} ({e}): install Python 3.11+ and run `make python-deps`", python()),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Plugin whose module ships in the plugin image (no inline code), as the examples are.
fn sleep_plugin() -> Plugin {
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": "sleep-winddown", "namespace": "ns", "uid": "uid-sleep", "generation": 1},
        "spec": {
            "description": "Wind-down plan before bed",
            "triggers": {"pillars": ["sleep"]},
            "source": {"python": {"module": "sleep-winddown/v1.py"}}
        }
    }))
    .expect("plugin")
}

/// Start the host as the plugin image does (`python -m wellbeing_host --transport http` in the
/// plugins directory), with the literal environment of the operator's Deployment; only the
/// port (a free one) and the bind address (loopback) differ from a pod.
fn start_like_the_deployment(plugin: &Plugin, port: u16) -> (Host, String) {
    require_python_deps();
    let config = OperatorConfig::default();
    let workload = validate(plugin, &config).expect("valid plugin");
    let d = deployment(plugin, &workload, &config, None).expect("a Deployment");
    let container = &d.spec.unwrap().template.spec.unwrap().containers[0];
    let mut cmd = Command::new(python());
    cmd.args(["-m", "wellbeing_host", "--transport", "http"])
        .current_dir(repo_root().join("plugins"))
        .env("PYTHONPATH", repo_root().join("plugins/host"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for e in container.env.iter().flatten() {
        if let Some(value) = &e.value {
            cmd.env(&e.name, value);
        }
    }
    cmd.env("WELLBEING_MCP_PORT", port.to_string()).env("WELLBEING_BIND", "127.0.0.1");
    let host = Host(cmd.spawn().expect("start the plugin host"));
    let (_, path) = port_and_path(&workload);
    (host, format!("http://127.0.0.1:{port}{path}"))
}

/// What the pod's readiness probe waits for (a listening socket) before the Deployment counts
/// the replica as available and the operator lists. Python starts in about a second; a busy
/// two-core machine may take several.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the plugin host did not listen on {port} within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn lists_the_tools_a_running_host_offers_the_llm() {
    let plugin = sleep_plugin();
    let port = free_port();
    let (_host, endpoint) = start_like_the_deployment(&plugin, port);
    wait_listening(port);

    let lister = McpToolLister::default();
    let started = Instant::now();
    let tools = lister.list(&plugin, &endpoint).await.expect("tools listed");
    let took = started.elapsed();

    // The host serves `sleep_winddown` (run) and `sleep_winddown_match` (match, `_meta` role):
    // only the first is offered to the LLM, so only it is listed.
    let names: Vec<&str> = tools.iter().map(|t: &ToolInfo| t.name.as_str()).collect();
    assert_eq!(names, ["sleep_winddown"]);
    assert!(tools[0].description.starts_with("Sleep wind-down planner."), "{:?}", tools[0].description);
    assert!(took < LIST_TIMEOUT, "listing took {took:?}");
    eprintln!("listed {} tool(s) from the plugin host in {took:?}", tools.len());

    // Each listing is its own connection: a second one works the same (the host keeps no state).
    assert_eq!(lister.list(&plugin, &endpoint).await.expect("listed again"), tools);
}

#[tokio::test]
async fn a_server_that_does_not_listen_fails_within_the_timeout() {
    let plugin = sleep_plugin();
    let endpoint = format!("http://127.0.0.1:{}/mcp", free_port());
    let lister = McpToolLister::new(Duration::from_millis(500));
    let started = Instant::now();
    let err = lister.list(&plugin, &endpoint).await.expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let chain = wellbeing_operator::error_chain(&err);
    assert!(
        chain.starts_with(&format!("failed to list the tools of plugin sleep-winddown at {endpoint}: ")),
        "{chain}"
    );
    assert!(chain.contains("did not connect within 500ms"), "{chain}");
}

/// The requests a reconcile made: method, path and JSON body.
type Seen = Arc<Mutex<Vec<(Method, String, Value)>>>;

/// A Context over a mocked apiserver that accepts status applies and Events (answering with what
/// was sent, as the apiserver does give or take defaults), has no Deployments or other children
/// (an external server gets none, and the reconcile makes sure) and refuses anything else with 500.
fn mocked_context() -> (Arc<Context>, Seen) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.expect("request body");
            let body: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
            let mut code = if expected(&method, &path) { 200 } else { 500 };
            let mut reply = body.clone();
            if method == Method::GET && is_children_list(&path) {
                reply = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []});
            } else if method == Method::GET && path.contains("/deployments/") {
                code = 404;
                reply = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                               "code": 404, "message": "not found"});
            } else if path.ends_with("/status") {
                reply = serde_json::to_value(external_plugin("http://unused")).unwrap();
                reply["status"] = body["status"].clone();
            }
            recorded.lock().unwrap().push((method, path, body));
            send.send_response(
                Response::builder().status(code).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
            );
        }
    });
    // The plugin declares no secrets, so no store is ever asked.
    let store_for: StoreFor = Arc::new(|_| Err(StoreError::Config { store: "none", reason: "not used".into() }));
    let client = kube::Client::new(service, "default");
    let ctx = Context::new(client, store_for, Arc::new(Metrics::default()), OperatorConfig::default(), None);
    (Arc::new(ctx), seen)
}

fn expected(method: &Method, path: &str) -> bool {
    (method == Method::PATCH && path.ends_with("/status"))
        || (method == Method::POST && path.ends_with("/events"))
        || (method == Method::GET && path.ends_with("/deployments/plugin-sleep-winddown"))
        || (method == Method::GET && is_children_list(path))
}

/// A new generation makes the reconcile look for children of kinds it no longer wants, by label.
fn is_children_list(path: &str) -> bool {
    ["/deployments", "/services", "/configmaps"].iter().any(|k| path.ends_with(k))
}

fn writes(seen: &[(Method, String, Value)]) -> usize {
    seen.iter().filter(|(m, _, _)| m != Method::GET).count()
}

/// A Plugin for an MCP server that already runs (`spec.source.mcp.url`): Ready at once, no
/// Deployment, so the reconcile lists it straight away.
fn external_plugin(url: &str) -> Plugin {
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": "sleep-winddown", "namespace": "ns", "uid": "uid-sleep", "generation": 3},
        "spec": {
            "description": "Wind-down plan before bed",
            "triggers": {"pillars": ["sleep"]},
            "source": {"mcp": {"url": url}}
        }
    }))
    .expect("plugin")
}

#[tokio::test]
async fn a_reconcile_writes_the_tools_the_server_lists_then_rests() {
    let port = free_port();
    let (host, endpoint) = start_like_the_deployment(&sleep_plugin(), port);
    wait_listening(port);
    let (ctx, seen) = mocked_context();
    let p = external_plugin(&endpoint);

    plugin::reconcile(Arc::new(p.clone()), ctx.clone()).await.expect("reconciled");
    let requests = seen.lock().unwrap().clone();
    let refused: Vec<_> = requests.iter().filter(|(m, p, _)| !expected(m, p)).collect();
    assert!(refused.is_empty(), "unexpected requests: {refused:?}");
    let (_, path, body) = requests.iter().find(|(m, _, _)| m == Method::PATCH).expect("a status apply");
    assert_eq!(path, "/apis/wellbeing.dev/v1alpha1/namespaces/ns/plugins/sleep-winddown/status");
    let status = &body["status"];
    assert_eq!(status["phase"], "Ready");
    assert_eq!(status["endpoint"], endpoint.as_str());
    let tools = status["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 1, "the match tool is not offered to the LLM: {tools:?}");
    assert_eq!(tools[0]["name"], "sleep_winddown");
    assert!(tools[0]["description"].as_str().unwrap().starts_with("Sleep wind-down planner."));
    let listed = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == TOOLS_LISTED).unwrap();
    assert_eq!((&listed["status"], &listed["reason"]), (&json!("True"), &json!(REASON_LISTED)));
    assert_eq!(listed["observedGeneration"], 3);

    // The next reconcile sees that status. The server is gone now: asking it would fail and write
    // `ToolsListed=False`, so no write shows that the list of this generation came from the cache.
    drop(host);
    let mut stored = p;
    stored.status = Some(serde_json::from_value(status.clone()).expect("a PluginStatus"));
    let before = seen.lock().unwrap().len();
    plugin::reconcile(Arc::new(stored), ctx).await.expect("reconciled again");
    let after = seen.lock().unwrap()[before..].to_vec();
    assert_eq!(writes(&after), 0, "nothing written: {after:?}");
}
