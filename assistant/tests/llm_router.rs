//! The LLM router end to end: with a routes file naming two endpoints, one message's extraction
//! and reply go to two different local OpenAI-compatible servers, each with its route's model,
//! completion cap and key.

mod llm_fake;

use std::collections::BTreeMap;

use llm_fake::{FakeLlm, Reply, checkin_json, is_extraction};
use serde_json::json;
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::{Assistant, AssistantConfig, Channel, IncomingMessage, OutgoingKind};
use wellbeing_assistant::llm::{LlmRouter, LlmTask, RouterConfig};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};

const REPLY: &str = "Nice run! Keep that energy going.";

fn config(extract_url: &str, reply_url: &str) -> RouterConfig {
    let yaml = format!(
        r#"
endpoints:
  small: {{baseUrl: "{extract_url}", model: extract-model, timeoutSecs: 5}}
  big: {{baseUrl: "{reply_url}", model: big-default, apiKeyEnv: BIG_KEY, timeoutSecs: 5}}
default: small
routes:
  reply: {{endpoint: big, model: reply-model, maxTokens: 99}}
"#
    );
    serde_yaml::from_str(&yaml).unwrap()
}

#[tokio::test]
async fn extraction_and_reply_go_to_their_own_endpoints() {
    let extractor = FakeLlm::start("extract-model", |request, _| {
        assert!(is_extraction(request), "only extraction is routed here");
        Reply::Content(checkin_json(json!({"exercise": "done", "activity": "run", "valence": "positive"})))
    })
    .await;
    let replier = FakeLlm::start("reply-model", |request, _| {
        assert!(!is_extraction(request), "only replies are routed here");
        Reply::Content(REPLY.to_string())
    })
    .await;
    let keys = BTreeMap::from([("BIG_KEY".to_string(), "key-of-big".to_string())]);
    let router =
        LlmRouter::from_config(&config(&extractor.base_url, &replier.base_url), reqwest::Client::new(), |name| {
            keys.get(name).cloned()
        })
        .unwrap();
    let prefs = Default::default();
    assert_eq!(router.route(LlmTask::Insight, &prefs).unwrap().endpoint(), "small", "no route: the default");

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let personas = PersonaRegistry::new(default_persona("UTC"));
    let assistant = Assistant::new(store, personas, None, AssistantConfig::default()).with_router(router);
    let outcome = assistant
        .handle_message(IncomingMessage {
            event_id: "e1".into(),
            user_id: "u1".into(),
            channel: Channel::Slack,
            text: "ran 5k this morning, feeling great".into(),
            thread_ref: None,
            received_at: "2026-05-04T08:00:00Z".parse().unwrap(),
        })
        .await
        .unwrap();

    assert_eq!(outcome.extractor.as_deref(), Some("llm"));
    let reply = outcome.replies.iter().find(|r| r.kind == OutgoingKind::Reply).unwrap();
    assert_eq!(reply.text, REPLY);

    let extracted = extractor.requests();
    assert_eq!(extracted.len(), 1);
    assert_eq!(extracted[0].json["model"], "extract-model");
    assert_eq!(extracted[0].json["max_completion_tokens"], 600, "extraction keeps its usual cap");
    assert_ne!(extracted[0].authorization.as_deref(), Some("Bearer key-of-big"), "the key is the big endpoint's");

    let replied = replier.requests();
    assert_eq!(replied.len(), 1);
    assert_eq!(replied[0].json["model"], "reply-model");
    assert_eq!(replied[0].json["max_completion_tokens"], 99);
    assert_eq!(replied[0].authorization.as_deref(), Some("Bearer key-of-big"));
}

#[test]
fn the_readme_example_is_a_valid_configuration() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("# llm.yaml").expect("README has the llm.yaml example");
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    let config: RouterConfig = serde_yaml::from_str(yaml).unwrap();
    let table = config.table().unwrap();
    let prefs = Default::default();
    let reply = table.resolve(LlmTask::Reply, &prefs).unwrap();
    assert_eq!((reply.endpoint.name.as_str(), reply.model.as_str()), ("cloud", "gpt-4o"));
    assert_eq!(table.resolve(LlmTask::Extraction, &prefs).unwrap().endpoint.name, "local");
}
