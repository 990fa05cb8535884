//! The plugins' LLM gateway against a fake OpenAI-compatible upstream on 127.0.0.1: model choice
//! from the task class, the per-plugin token, the daily budget's 429, usage records, and the real
//! plugin host's `llm.complete` (plugins/host) talking to it over loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::{Assistant, AssistantConfig};
use wellbeing_assistant::llm::{LlmClient, LlmConfig, LlmRouter, RouterConfig};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};
use wellbeing_assistant::plugin_gateway::{Budgets, LocalPluginTokens};
use wellbeing_webhook::gateway::{self, Gateway, GatewayConfig, KubeTokens, PluginTokens};

/// What the fake upstream received and how it answers.
#[derive(Clone, Default)]
struct Upstream {
    requests: Arc<Mutex<Vec<Value>>>,
    /// Send `usage` in replies (some local servers do not).
    no_usage: bool,
}

async fn upstream_completions(State(up): State<Upstream>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    up.requests.lock().unwrap().push(body.clone());
    let mut reply = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Dim the lights at 22:00 and put the phone away."},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80}
    });
    if up.no_usage {
        reply.as_object_mut().unwrap().remove("usage");
    }
    axum::Json(reply)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

struct Setup {
    addr: SocketAddr,
    upstream: Upstream,
    store: Store,
    token: String,
    _dir: tempfile::TempDir,
}

async fn setup(budgets: Budgets, no_usage: bool, persona_models: Option<(&str, &str)>) -> Setup {
    let upstream = Upstream { no_usage, ..Default::default() };
    let up_addr =
        serve(Router::new().route("/v1/chat/completions", post(upstream_completions)).with_state(upstream.clone()))
            .await;
    let mut config = LlmConfig::new(&format!("http://{up_addr}/v1"), "default-model");
    config.retries = 0;
    config.timeout = Duration::from_secs(5);
    let llm = LlmClient::new(config).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let tokens = Arc::new(LocalPluginTokens::open(dir.path()).unwrap());
    let token = tokens.token_for("sleep-winddown").unwrap();
    tokens.token_for("hydration").unwrap();

    let mut persona = default_persona("Europe/Berlin");
    persona.metadata.name = Some("coach".into());
    persona.spec.active = true;
    if let Some((reply, extraction)) = persona_models {
        persona.spec.models.reply = Some(reply.into());
        persona.spec.models.extraction = Some(extraction.into());
    }
    let personas = PersonaRegistry::new(default_persona("UTC"));
    personas.replace_all(vec![persona]);

    // Built the way `wellbeing webhook` and `wellbeing up` build it: over the engine.
    let engine = Assistant::new(store.clone(), personas, Some(llm), AssistantConfig::default());
    let gw = Gateway::for_engine(&engine, tokens.clone() as Arc<dyn PluginTokens>, GatewayConfig { budgets });
    let addr = serve(gateway::router(Arc::new(gw))).await;
    Setup { addr, upstream, store, token, _dir: dir }
}

fn plugin_body(task: &str, prompt: &str) -> Value {
    json!({
        "model": format!("task:{task}"),
        "messages": [{"role": "user", "content": prompt}],
        "metadata": {"task": task, "plugin": "sleep_winddown"}
    })
}

async fn post_json(addr: SocketAddr, token: Option<&str>, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().post(format!("http://{addr}{}", gateway::COMPLETIONS_PATH)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap_or(Value::Null), headers)
}

fn rows(store: &Store) -> Vec<(String, String, String, String, i64, i64)> {
    let conn = store.conn();
    let mut stmt = conn
        .prepare("SELECT plugin, task, model, outcome, total_tokens, estimated FROM plugin_llm_requests ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn the_task_class_picks_the_personas_model_and_usage_is_recorded() {
    let s = setup(Budgets::default(), false, Some(("reply-model", "extract-model"))).await;
    let (status, body, _) = post_json(s.addr, Some(&s.token), &plugin_body("chat", "wind-down tip please")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Dim the lights at 22:00 and put the phone away.");
    assert_eq!(body["usage"]["total_tokens"], 80);

    let (status, _, _) = post_json(s.addr, Some(&s.token), &plugin_body("extraction", "parse this")).await;
    assert_eq!(status, 200);
    // No persona model for code: the configured default.
    let (status, _, _) = post_json(s.addr, Some(&s.token), &plugin_body("code", "write a function")).await;
    assert_eq!(status, 200);

    let sent = s.upstream.requests.lock().unwrap().clone();
    let models: Vec<&str> = sent.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["reply-model", "extract-model", "default-model"]);
    for request in &sent {
        assert!(request.get("metadata").is_none(), "plugin metadata is not forwarded: {request}");
        assert_eq!(request["messages"][0]["role"], "user");
    }
    // Each completion is capped to what is left of the day's 50,000 after 80 tokens per request.
    let caps: Vec<u64> = sent.iter().map(|r| r["max_tokens"].as_u64().unwrap()).collect();
    assert_eq!(caps, [50_000, 49_920, 49_840]);
    assert_eq!(
        rows(&s.store),
        [
            ("sleep-winddown".into(), "chat".into(), "reply-model".into(), "ok".into(), 80, 0),
            ("sleep-winddown".into(), "extraction".into(), "extract-model".into(), "ok".into(), 80, 0),
            ("sleep-winddown".into(), "code".into(), "default-model".into(), "ok".into(), 80, 0),
        ]
    );
}

#[tokio::test]
async fn plugin_task_classes_take_their_llm_routes_to_separate_endpoints() {
    let main = Upstream::default();
    let summaries = Upstream::default();
    let route =
        |up: &Upstream| Router::new().route("/v1/chat/completions", post(upstream_completions)).with_state(up.clone());
    let (main_addr, summary_addr) = (serve(route(&main)).await, serve(route(&summaries)).await);
    // What a `--llm-config` file declares: the gateway's routing table is the router's plugin routes.
    let config: RouterConfig = serde_json::from_value(json!({
        "endpoints": {
            "main": {"baseUrl": format!("http://{main_addr}/v1"), "model": "default-model", "timeoutSecs": 5},
            "summaries": {"baseUrl": format!("http://{summary_addr}"), "model": "summary-model", "timeoutSecs": 5}
        },
        "default": "main",
        "routes": {"plugin:summary": {"endpoint": "summaries", "maxTokens": 64}}
    }))
    .unwrap();
    let router = LlmRouter::from_config(&config, reqwest::Client::new(), |_| None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let tokens = Arc::new(LocalPluginTokens::open(dir.path()).unwrap());
    let token = tokens.token_for("sleep-winddown").unwrap();
    let engine =
        Assistant::new(store.clone(), PersonaRegistry::new(default_persona("UTC")), None, AssistantConfig::default())
            .with_router(router);
    let gw =
        Gateway::for_engine(&engine, tokens as Arc<dyn PluginTokens>, GatewayConfig { budgets: Budgets::default() });
    let addr = serve(gateway::router(Arc::new(gw))).await;

    let (status, _, _) = post_json(addr, Some(&token), &plugin_body("chat", "plan my evening")).await;
    assert_eq!(status, 200);
    let mut summary = plugin_body("summary", "summarise my week");
    summary["max_tokens"] = json!(500);
    let (status, _, _) = post_json(addr, Some(&token), &summary).await;
    assert_eq!(status, 200);

    let sent_main = main.requests.lock().unwrap().clone();
    let sent_summaries = summaries.requests.lock().unwrap().clone();
    assert_eq!(sent_main.len(), 1, "only the chat request goes to the default endpoint");
    assert_eq!(sent_main[0]["model"], "default-model");
    assert_eq!(sent_summaries.len(), 1);
    assert_eq!(sent_summaries[0]["model"], "summary-model");
    assert_eq!(sent_summaries[0]["max_tokens"], 64, "the route's cap wins over the plugin's larger ask");
    let recorded: Vec<(String, String)> = rows(&store).into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(recorded, [("chat".into(), "default-model".into()), ("summary".into(), "summary-model".into())]);
}

#[tokio::test]
async fn the_daily_budget_caps_then_refuses_with_a_429_in_openai_shape() {
    let mut budgets = Budgets::default();
    budgets.per_plugin.insert("sleep-winddown".into(), 100);
    let s = setup(budgets, false, None).await;
    let body = plugin_body("chat", "tip");

    let (status, _, _) = post_json(s.addr, Some(&s.token), &body).await;
    assert_eq!(status, 200);
    // 80 of 100 spent: the next completion may use at most 20.
    let mut asking = body.clone();
    asking["max_tokens"] = json!(500);
    let (status, _, _) = post_json(s.addr, Some(&s.token), &asking).await;
    assert_eq!(status, 200);
    assert_eq!(s.upstream.requests.lock().unwrap()[1]["max_tokens"], 20);

    // 160 of 100: refused without reaching the upstream.
    let (status, error, headers) = post_json(s.addr, Some(&s.token), &body).await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["error"]["type"], "insufficient_quota");
    assert_eq!(error["error"]["code"], "daily_token_budget_exceeded");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("sleep-winddown") && message.contains("160 of 100"), "{message}");
    assert!(message.contains("Europe/Berlin"), "the reset is told in the persona's zone: {message}");
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=25 * 3600).contains(&retry), "{retry}");
    assert_eq!(s.upstream.requests.lock().unwrap().len(), 2);
    assert_eq!(rows(&s.store).last().unwrap().3, "over_budget");
}

#[tokio::test]
async fn tokens_streaming_and_proxies_are_checked_before_the_upstream() {
    let s = setup(Budgets::default(), false, None).await;
    let body = plugin_body("chat", "x");
    let (status, error, _) = post_json(s.addr, None, &body).await;
    assert_eq!((status, error["error"]["code"].as_str()), (401, Some("missing_api_key")));
    let (status, error, _) = post_json(s.addr, Some("not-a-plugin-token"), &body).await;
    assert_eq!((status, error["error"]["code"].as_str()), (401, Some("invalid_api_key")));

    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (status, error, _) = post_json(s.addr, Some(&s.token), &stream).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "stream_unsupported");
    assert!(error["error"]["message"].as_str().unwrap().contains("streaming is not supported"));

    let response = reqwest::Client::new()
        .post(format!("http://{}{}", s.addr, gateway::COMPLETIONS_PATH))
        .bearer_auth(&s.token)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    assert!(s.upstream.requests.lock().unwrap().is_empty(), "nothing reached the upstream");
    let recorded = rows(&s.store);
    assert_eq!(recorded.len(), 1, "only the authenticated bad request is a plugin's: {recorded:?}");
    assert_eq!(recorded[0].3, "bad_request");
}

#[tokio::test]
async fn usage_is_estimated_when_the_upstream_sends_none() {
    let s = setup(Budgets::default(), true, None).await;
    let prompt = "x".repeat(400);
    let (status, body, _) = post_json(s.addr, Some(&s.token), &plugin_body("summary", &prompt)).await;
    assert_eq!(status, 200, "{body}");
    let reply_chars = "Dim the lights at 22:00 and put the phone away.".len();
    let expected = 100 + reply_chars.div_ceil(4) as i64;
    assert_eq!(rows(&s.store)[0].4, expected);
    assert_eq!(rows(&s.store)[0].5, 1, "marked as estimated");
}

fn host_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/host")
}

/// `llm.complete(task, prompt)` of the real plugin host, run in a Python child against `addr`.
async fn python_complete(addr: SocketAddr, token: &str, task: &str) -> (bool, String) {
    let script = format!(
        "import asyncio\nfrom wellbeing_host.llm import Llm\nfrom wellbeing_host.errors import LlmError\n\
         try:\n    print('OK ' + asyncio.run(Llm('sleep_winddown').complete({task:?}, 'tip for tonight')))\n\
         except LlmError as e:\n    print('ERR ' + str(e))\n"
    );
    let output = tokio::process::Command::new(std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", host_dir())
        .env("WELLBEING_LLM_GATEWAY", format!("http://{addr}{}", gateway::BASE_PATH))
        .env("WELLBEING_PLUGIN_TOKEN", token)
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(output.status.success(), "python failed: {stdout} {}", String::from_utf8_lossy(&output.stderr));
    (stdout.starts_with("OK "), stdout)
}

#[tokio::test]
async fn the_plugin_hosts_llm_client_speaks_to_the_gateway() {
    let mut budgets = Budgets::default();
    budgets.per_plugin.insert("sleep-winddown".into(), 80);
    let s = setup(budgets, false, Some(("reply-model", "extract-model"))).await;
    let (ok, out) = python_complete(s.addr, &s.token, "summary").await;
    assert!(ok, "{out}");
    assert!(out.contains("Dim the lights"), "{out}");
    assert_eq!(s.upstream.requests.lock().unwrap()[0]["model"], "reply-model");
    // The budget is spent: the host raises LlmError with the gateway's reason.
    let (ok, out) = python_complete(s.addr, &s.token, "summary").await;
    assert!(!ok);
    assert!(out.contains("429") && out.contains("daily LLM budget"), "{out}");
    let (ok, out) = python_complete(s.addr, "wrong", "chat").await;
    assert!(!ok && out.contains("401"), "{out}");
}

/// The cluster's token source: one labelled list, then answers from the cache.
#[tokio::test]
async fn kube_tokens_are_listed_by_label_and_cached() {
    use http::{Request, Response};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use kube::client::Body;
    use std::collections::BTreeMap;

    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let tokens = KubeTokens::new(kube::Client::new(service, "wellbeing"), "wellbeing");
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("one list");
        assert_eq!(request.method(), http::Method::GET);
        let uri = request.uri().to_string();
        assert!(uri.starts_with("/api/v1/namespaces/wellbeing/secrets?"), "{uri}");
        assert!(uri.contains("labelSelector=app.kubernetes.io%2Fcomponent%3Dplugin-gateway-token"), "{uri}");
        let mut secret = Secret::default();
        secret.metadata.name = Some("plugin-weather-gateway".into());
        secret.data = Some(BTreeMap::from([("token".to_string(), ByteString(b"s3cret-token".to_vec()))]));
        let list = json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": [secret]});
        send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&list).unwrap())).unwrap());
        handle
    });
    assert_eq!(tokens.plugin_for("s3cret-token").await.unwrap().as_deref(), Some("weather"));
    let mut handle = server.await.unwrap();
    // Cached: no second request for a known token; an unknown one is refused without a listing
    // while the last one is only seconds old.
    assert_eq!(tokens.plugin_for("s3cret-token").await.unwrap().as_deref(), Some("weather"));
    assert_eq!(tokens.plugin_for("guess").await.unwrap(), None);
    assert!(tokio::time::timeout(Duration::from_millis(50), handle.next_request()).await.is_err());
}
