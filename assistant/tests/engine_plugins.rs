//! The engine with plugins: the real Python plugin host over stdio, offered as tools to a local
//! OpenAI-compatible server, or called directly when no LLM is configured. A failing or hanging
//! plugin never breaks the reply.

mod llm_fake;
// The pool tests' helpers, shared rather than copied: the same host, timeouts and probes.
#[path = "../../mcp/tests/plugins_support/mod.rs"]
mod plugins_support;

use std::sync::Arc;
use std::time::Duration;

use llm_fake::{FakeLlm, Reply, checkin_json, is_extraction};
use serde_json::{Value, json};
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::{Assistant, AssistantConfig, Channel, IncomingMessage, OutgoingKind};
use wellbeing_assistant::llm::{LlmClient, LlmConfig};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};
use wellbeing_assistant::plugins::{PluginEndpoint, PluginPool};
use wellbeing_crds::plugin::Triggers;

fn hydration() -> PluginEndpoint {
    let transport = plugins_support::runtime().python_transport("hydration/v1.py").unwrap();
    let mut endpoint = plugins_support::endpoint("hydration", transport);
    endpoint.triggers = Triggers { keywords: vec!["water".into(), "thirsty".into()], ..Default::default() };
    endpoint
}

fn probe(dir: &tempfile::TempDir, name: &str, run_body: &str) -> PluginEndpoint {
    let mut endpoint = plugins_support::module_endpoint(dir, name, &plugins_support::probe_module(run_body));
    endpoint.triggers = Triggers { keywords: vec!["water".into()], ..Default::default() };
    endpoint
}

fn assistant(
    dir: &tempfile::TempDir,
    llm: Option<&FakeLlm>,
    endpoints: Vec<PluginEndpoint>,
) -> (Assistant, Arc<PluginPool>) {
    let store = Store::open_in(dir.path()).unwrap();
    let llm = llm.map(|fake| {
        let mut config = LlmConfig::new(&fake.base_url, "m");
        config.timeout = Duration::from_secs(10);
        LlmClient::new(config).unwrap()
    });
    let (pool, _sink) = plugins_support::pool(endpoints, plugins_support::quick());
    let pool = Arc::new(pool);
    let config = AssistantConfig { tool_timeout: Duration::from_secs(2), ..Default::default() };
    let personas = PersonaRegistry::new(default_persona("UTC"));
    (Assistant::new(store, personas, llm, config).with_plugins(Arc::clone(&pool)), pool)
}

fn message(text: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: "E1".into(),
        user_id: "local:me".into(),
        channel: Channel::Local,
        text: text.into(),
        thread_ref: None,
        received_at: "2026-03-02T14:00:00Z".parse().unwrap(),
    }
}

fn reply(outcome: &wellbeing_assistant::engine::Outcome) -> String {
    outcome.replies.iter().find(|r| r.kind == OutgoingKind::Reply).expect("a reply").text.clone()
}

#[tokio::test]
async fn without_an_llm_a_relevant_plugin_is_called_directly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, pool) = assistant(&dir, None, vec![hydration()]);
    let out = a.handle_message(message("forgot to drink water all day, headache, so tired")).await.unwrap();
    let text = reply(&out);
    assert!(text.contains("Drink a glass of water"), "{text}");
    assert!(text.starts_with("Thanks for checking in."), "the template still leads: {text}");
    pool.shutdown().await;
}

#[tokio::test]
async fn without_an_llm_an_irrelevant_or_failing_plugin_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let failing = probe(&dir, "broken", "    raise RuntimeError('boom')");
    let (a, pool) = assistant(&dir, None, vec![failing]);
    let out = a.handle_message(message("no water today, tired")).await.unwrap();
    let text = reply(&out);
    assert!(text.starts_with("Thanks for checking in.") && !text.contains("boom"), "{text}");
    pool.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let (a, pool) = assistant(&dir, None, vec![hydration()]);
    let out = a.handle_message(message("slept badly")).await.unwrap();
    assert!(!reply(&out).contains("Drink"), "not relevant: not called");
    pool.shutdown().await;
}

#[tokio::test]
async fn with_an_llm_plugin_tools_are_offered_called_and_fed_back() {
    let fake = FakeLlm::start("m", |req, _| {
        if is_extraction(req) {
            return Reply::Content(checkin_json(json!({"energy": "low", "water": 0, "pillars": ["hydration"]})));
        }
        let messages = req["messages"].as_array().unwrap();
        match messages.iter().rev().find(|m| m["role"] == "tool") {
            None => Reply::ToolCalls(vec![(
                "call_1".into(),
                "hydration__hydration".into(),
                r#"{"text": "no water all day", "now": "14:00"}"#.into(),
            )]),
            Some(tool) => {
                let result = tool["content"].as_str().unwrap_or_default();
                Reply::Content(format!("Tool said: {}", result.contains("Drink a glass of water")))
            }
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (a, pool) = assistant(&dir, Some(&fake), vec![hydration()]);
    // Started with the server in real use; here it keeps the test independent of start-up time.
    pool.discover().await;
    let out = a.handle_message(message("no water all day, feeling flat")).await.unwrap();
    assert_eq!(reply(&out), "Tool said: true");

    let replies: Vec<Value> = fake.requests().into_iter().map(|s| s.json).filter(|r| !is_extraction(r)).collect();
    assert_eq!(replies.len(), 2, "one round of tools, then the answer");
    assert_eq!(replies[0]["tools"][0]["function"]["name"], "hydration__hydration");
    assert_eq!(replies[1]["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(replies[1]["messages"][3]["role"], "tool");
    assert_eq!(replies[1]["messages"][3]["tool_call_id"], "call_1");
    pool.shutdown().await;
}

#[tokio::test]
async fn a_hanging_tool_and_a_model_that_keeps_calling_tools_are_both_bounded() {
    let fake = FakeLlm::start("m", |req, _| {
        if is_extraction(req) {
            return Reply::Content(checkin_json(json!({"energy": "low"})));
        }
        if req.get("tool_choice") == Some(&json!("none")) {
            return Reply::Content("Answer without tools.".into());
        }
        Reply::ToolCalls(vec![("c".into(), "slow__probe".into(), r#"{"text": "x"}"#.into())])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let slow = probe(&dir, "slow", "    await asyncio.sleep(30)\n    return 'late'");
    let (a, pool) = assistant(&dir, Some(&fake), vec![slow]);
    pool.discover().await;
    let started = std::time::Instant::now();
    let out = a.handle_message(message("tired, water?")).await.unwrap();
    assert_eq!(reply(&out), "Answer without tools.");
    let replies: Vec<Value> = fake.requests().into_iter().map(|s| s.json).filter(|r| !is_extraction(r)).collect();
    assert_eq!(replies.len(), 4, "three rounds of tools, then one forced answer");
    let tool_results: Vec<&str> = replies[3]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(tool_results.len(), 3);
    assert!(tool_results.iter().all(|r| r.contains("unavailable")), "{tool_results:?}");
    // Three 2 s timeouts plus start-up, far below three 30 s sleeps.
    assert!(started.elapsed() < Duration::from_secs(25), "{:?}", started.elapsed());
    pool.shutdown().await;
}
