//! Plugin generation against a fake OpenAI-compatible server on 127.0.0.1 with the real checker
//! (plugins/host, `python -m wellbeing_host check`): a bad module then a good one is retried with
//! the checker's reason and written; three bad ones are refused with the rule, and nothing is
//! written.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use wellbeing_assistant::llm::{LlmClient, LlmConfig};
use wellbeing_assistant::plugin_gen::{self, GenError, GenerateOptions, Need};
use wellbeing_crds::manifest::{Resource, parse_documents};

const GOOD: &str = r#"
"""Stretch breaks: a plan of short stretches between meetings."""

name = "stretch_hours_meetings"
description = (
    "Plans a stretch break every two hours until the end of the working day, "
    "with one simple stretch for each break."
)
input_schema = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "What the user said"},
        "now": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
        "until": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
    },
}
required_secrets = []

STRETCHES = ["neck rolls", "shoulder shrugs", "standing forward fold", "wrist circles"]


def _minutes(hhmm):
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(total):
    return "{:02d}:{:02d}".format(total // 60 % 24, total % 60)


async def run(context, llm, secrets):
    now = _minutes(context.get("now", "09:00"))
    until = _minutes(context.get("until", "17:00"))
    breaks = []
    t = now + 120
    while t <= until:
        breaks.append({"time": _hhmm(t), "stretch": STRETCHES[len(breaks) % len(STRETCHES)]})
        t += 120
    return {"breaks": breaks, "count": len(breaks)}


examples = [
    {"input": {"now": "09:00", "until": "17:00"}, "expect": {"count": 4, "breaks": {"$len_min": 4}}},
    {"input": {"text": "meetings all day", "now": "16:00", "until": "17:00"}, "expect": {"count": 0}},
]
"#;

fn with_os_import() -> String {
    GOOD.replace("STRETCHES = [", "import os\n\nSTRETCHES = [")
}

fn with_hard_coded_key() -> String {
    GOOD.replace("STRETCHES = [", "API_KEY = \"sk-proj-Zt8mQ2vLx9RkP4wN7bJc3HdF6sYa1GeU\"\n\nSTRETCHES = [")
}

fn with_failing_example() -> String {
    GOOD.replace("\"expect\": {\"count\": 0}", "\"expect\": {\"count\": 3}")
}

#[derive(Clone, Default)]
struct FakeModel {
    replies: Arc<Mutex<VecDeque<String>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

async fn completions(State(m): State<FakeModel>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    m.requests.lock().unwrap().push(body.clone());
    let code = m.replies.lock().unwrap().pop_front().expect("a scripted reply");
    axum::Json(json!({
        "id": "chatcmpl-gen",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("Here is the plugin:\n```python\n{code}\n```\n")},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 900, "completion_tokens": 400, "total_tokens": 1300}
    }))
}

async fn fake_model(replies: Vec<String>) -> (LlmClient, FakeModel) {
    let model = FakeModel { replies: Arc::new(Mutex::new(replies.into())), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/v1/chat/completions", post(completions)).with_state(model.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut config = LlmConfig::new(&format!("http://{addr}/v1"), "default-model");
    config.retries = 0;
    config.timeout = Duration::from_secs(10);
    (LlmClient::new(config).unwrap(), model)
}

fn options(plugins_dir: &std::path::Path) -> GenerateOptions {
    let mut options = GenerateOptions::new(plugins_dir, "coder-model");
    options.host_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/host");
    options.python = std::env::var("WELLBEING_PYTHON").unwrap_or_else(|_| "python3".into());
    options
}

fn need() -> Need {
    Need::Text("remind me to stretch every 2 hours while I'm in meetings".into())
}

/// The text of every message of a request, joined.
fn conversation(request: &Value) -> String {
    request["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap_or_default()).collect()
}

#[tokio::test]
async fn a_rejected_module_is_retried_with_the_reason_and_the_fixed_one_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (llm, model) = fake_model(vec![with_os_import(), GOOD.to_string()]).await;
    let generated = plugin_gen::generate(&llm, &need(), &options(dir.path())).await.unwrap();

    let requests = model.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["model"], "coder-model");
    assert!(conversation(&requests[0]).contains("remind me to stretch every 2 hours"));
    assert!(conversation(&requests[0]).contains("name = \"stretch_hours_meetings\""));
    let retry = conversation(&requests[1]);
    assert!(retry.contains("rule `import`") && retry.contains("import of 'os' is not allowed"), "{retry}");
    assert!(retry.contains("import os"), "the rejected module is part of the conversation");

    assert_eq!(generated.id, "stretch-hours-meetings");
    assert_eq!(generated.version, 1);
    assert_eq!(generated.rejections.len(), 1);
    assert_eq!(generated.rejections[0].rule, "import");
    assert_eq!(generated.tools, ["stretch_hours_meetings"]);
    let module = dir.path().join("stretch-hours-meetings/v1.py");
    assert_eq!(generated.module_path, module);
    assert_eq!(std::fs::read_to_string(&module).unwrap().trim(), GOOD.trim());

    let yaml = std::fs::read_to_string(dir.path().join("stretch-hours-meetings/plugin.yaml")).unwrap();
    let docs = parse_documents(&yaml);
    let Ok(Resource::Plugin(plugin)) = &docs[0] else { panic!("{docs:?}") };
    assert!(!plugin.spec.approved, "generated plugins start unapproved");
    assert_eq!(plugin.spec.version, 1);
    let python = plugin.spec.source.python.as_ref().unwrap();
    assert_eq!(python.module, "stretch-hours-meetings/v1.py");
    assert_eq!(python.code.as_deref().map(str::trim), Some(GOOD.trim()));
    assert!(
        plugin.spec.description.starts_with("Plans a stretch break every two hours"),
        "{}",
        plugin.spec.description
    );
    assert!(plugin.spec.triggers.keywords.contains(&"stretch".to_string()));
    assert_eq!(plugin.metadata.annotations.as_ref().unwrap()[plugin_gen::ANNOTATION_MODEL], "coder-model");

    // Generating again for the same need makes version 2 and keeps version 1's file.
    let (llm, _) = fake_model(vec![GOOD.to_string()]).await;
    let second = plugin_gen::generate(&llm, &need(), &options(dir.path())).await.unwrap();
    assert_eq!(second.version, 2);
    assert!(module.is_file());
    assert_eq!(plugin_gen::versions(&dir.path().join("stretch-hours-meetings")), [1, 2]);
}

#[tokio::test]
async fn three_rejections_are_refused_naming_the_rule_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (llm, model) = fake_model(vec![with_os_import(), with_failing_example(), with_hard_coded_key()]).await;
    let err = plugin_gen::generate(&llm, &need(), &options(dir.path())).await.unwrap_err();

    let GenError::Rejected { attempts, last, all } = &err else { panic!("{err}") };
    assert_eq!(*attempts, 3);
    let rules: Vec<&str> = all.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(rules, ["import", "examples", "credential"]);
    assert_eq!(last.rule, "credential");
    let message = err.to_string();
    assert!(message.contains("rejected 3 times") && message.contains("rule `credential`"), "{message}");
    assert!(!message.contains("sk-proj-"), "the key itself is never repeated: {message}");

    let requests = model.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "the first attempt and two retries, no more");
    assert!(conversation(&requests[2]).contains("rule `examples`"), "{}", conversation(&requests[2]));
    assert!(!dir.path().join("stretch-hours-meetings").exists(), "a refused plugin leaves no files");
}
