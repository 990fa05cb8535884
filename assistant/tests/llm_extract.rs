//! LLM extraction and the shared LLM client against a local OpenAI-compatible server: structured
//! output, the time budget, retries and the offline fallback.

mod llm_fake;

use std::time::{Duration, Instant};

use llm_fake::{FakeLlm, Reply, checkin_json};
use serde_json::json;
use wellbeing_assistant::checkin::{CheckIn, Exercise, Hunger, Level, SleepQuality};
use wellbeing_assistant::extract::llm::{ExtractorKind, SCHEMA_NAME, extract_or_fallback};
use wellbeing_assistant::llm::{ChatRequest, LlmClient, LlmConfig, types};

fn client(fake: &FakeLlm, timeout: Duration) -> LlmClient {
    let mut config = LlmConfig::new(&fake.base_url, "test-model");
    config.api_key = Some("test-key".to_string());
    config.timeout = timeout;
    LlmClient::new(config).unwrap()
}

/// A recognisable offline result, so a test can tell which extractor answered.
fn offline_marker(_: &str) -> CheckIn {
    CheckIn { mood: Some("offline".to_string()), ..Default::default() }
}

#[tokio::test]
async fn structured_output_is_requested_strictly_and_parsed() {
    let fake = FakeLlm::start("test-model-2026", |_, _| {
        Reply::Content(checkin_json(json!({
            "mood": "drained", "energy": "low", "hunger": "hungry", "sleep_quality": "poor",
            "meals": [{"meal": "meal", "status": "skipped"}], "exercise": "planned", "activity": "yoga",
            "pillars": ["sleep", "nutrition"]
        })))
    })
    .await;
    let llm = client(&fake, Duration::from_secs(5));
    let text = "Kinda drained. Haven't eaten yet and didn't sleep much. Yoga later.";
    let got = extract_or_fallback(Some(&llm), None, text, offline_marker).await;

    assert_eq!(got.extractor, ExtractorKind::Llm);
    assert_eq!(got.model.as_deref(), Some("test-model-2026"), "the model the endpoint reports is recorded");
    assert_eq!(got.fallback_reason, None);
    assert_eq!(got.usage.total_tokens, 59);
    let c = &got.checkin;
    assert_eq!(
        (c.energy, c.hunger, c.sleep_quality, c.exercise),
        (Level::Low, Hunger::Hungry, SleepQuality::Poor, Exercise::Planned)
    );
    assert_eq!(c.mood.as_deref(), Some("drained"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0].json;
    assert_eq!(requests[0].authorization.as_deref(), Some("Bearer test-key"));
    assert_eq!(req["model"], "test-model");
    assert_eq!(req["response_format"]["type"], "json_schema");
    assert_eq!(req["response_format"]["json_schema"]["name"], SCHEMA_NAME);
    assert_eq!(req["response_format"]["json_schema"]["strict"], true);
    let schema = &req["response_format"]["json_schema"]["schema"];
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema.get("$schema").is_none() && schema.get("title").is_none());
    assert_eq!(schema["required"].as_array().unwrap().len(), schema["properties"].as_object().unwrap().len());
    assert_eq!(llm_fake::last_user_text(req), text);
    assert_eq!(req["messages"][0]["role"], "system");
}

#[tokio::test]
async fn the_persona_model_overrides_the_default() {
    let fake = FakeLlm::start("x", |_, _| Reply::Content(checkin_json(json!({"energy": "high"})))).await;
    let got = extract_or_fallback(
        Some(&client(&fake, Duration::from_secs(5))),
        Some("small-model"),
        "great!",
        offline_marker,
    )
    .await;
    assert_eq!(got.extractor, ExtractorKind::Llm);
    assert_eq!(fake.requests()[0].json["model"], "small-model");
}

#[tokio::test]
async fn a_hung_endpoint_falls_back_within_the_time_budget() {
    let fake = FakeLlm::start("m", |_, _| {
        Reply::After(Duration::from_secs(10), Box::new(Reply::Content(checkin_json(json!({})))))
    })
    .await;
    let started = Instant::now();
    let got =
        extract_or_fallback(Some(&client(&fake, Duration::from_millis(400))), None, "tired", offline_marker).await;
    let elapsed = started.elapsed();
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("timeout"));
    assert_eq!(got.checkin.mood.as_deref(), Some("offline"));
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    assert_eq!(fake.count(), 1, "a timed-out call has used the budget: no retry");
}

#[tokio::test]
async fn server_errors_are_retried_twice_then_fall_back() {
    let fake = FakeLlm::start("m", |_, _| Reply::Status(500, "upstream exploded".into())).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(10))), None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("server_error"));
    assert_eq!(fake.count(), 3, "one attempt plus two retries, and async-openai adds none of its own");
}

#[tokio::test]
async fn a_transient_server_error_is_retried_to_success() {
    let fake = FakeLlm::start("m", |_, i| {
        if i == 0 { Reply::Status(503, "busy".into()) } else { Reply::Content(checkin_json(json!({"stress": "high"}))) }
    })
    .await;
    let got =
        extract_or_fallback(Some(&client(&fake, Duration::from_secs(10))), None, "stressed", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Llm);
    assert_eq!(got.checkin.stress, Level::High);
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn a_long_retry_after_does_not_stretch_the_budget() {
    let fake = FakeLlm::start("m", |_, _| Reply::Status(429, "rate limited".into())).await;
    let started = Instant::now();
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(1))), None, "ok", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("rate_limited"));
    assert!(started.elapsed() < Duration::from_secs(2), "Retry-After: 30 was honoured: {:?}", started.elapsed());
}

#[tokio::test]
async fn invalid_json_content_falls_back() {
    let fake = FakeLlm::start("m", |_, _| Reply::Content("Sure! The user seems tired.".into())).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(5))), None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("invalid_json"));
}

#[tokio::test]
async fn values_outside_the_type_fall_back() {
    let fake = FakeLlm::start("m", |_, _| Reply::Content(checkin_json(json!({"energy": "sleepy"})))).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(5))), None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("invalid_json"));
    let fake = FakeLlm::start("m", |_, _| Reply::Content(checkin_json(json!({"sleep_hours": 70})))).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(5))), None, "slept", offline_marker).await;
    assert_eq!(got.fallback_reason, Some("invalid_value"));
}

#[tokio::test]
async fn a_body_that_is_not_a_completion_is_retried_then_falls_back() {
    let fake = FakeLlm::start("m", |_, _| Reply::Raw("<html>bad gateway</html>".into())).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(5))), None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("bad_response"));
    assert_eq!(fake.count(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = FakeLlm::start("m", |_, _| Reply::Status(400, "bad schema".into())).await;
    let got = extract_or_fallback(Some(&client(&fake, Duration::from_secs(5))), None, "tired", offline_marker).await;
    assert_eq!(got.fallback_reason, Some("client_error"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn no_endpoint_means_offline_without_any_request() {
    let got = extract_or_fallback(None, None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, None);
    assert_eq!(got.model, None);
}

#[tokio::test]
async fn an_unreachable_endpoint_falls_back_quickly() {
    // Bind and drop to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = LlmConfig::new(&format!("http://127.0.0.1:{port}/v1"), "m");
    config.timeout = Duration::from_secs(5);
    let llm = LlmClient::new(config).unwrap();
    let started = Instant::now();
    let got = extract_or_fallback(Some(&llm), None, "tired", offline_marker).await;
    assert_eq!(got.extractor, ExtractorKind::Offline);
    assert_eq!(got.fallback_reason, Some("transport"));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn chat_offers_tools_and_returns_tool_calls_with_usage() {
    let fake = FakeLlm::start("m", |_, _| {
        Reply::ToolCalls(vec![("call_1".into(), "hydration__log_water".into(), r#"{"glasses":2}"#.into())])
    })
    .await;
    let llm = client(&fake, Duration::from_secs(5));
    let tool: types::ChatCompletionTools = serde_json::from_value(json!({
        "type": "function",
        "function": {"name": "hydration__log_water", "description": "Log water", "parameters": {"type": "object", "properties": {"glasses": {"type": "integer"}}}}
    }))
    .unwrap();
    let mut request = ChatRequest::system_user("be brief", "drank 2 glasses");
    request.tools = vec![tool];
    let completion = llm.chat(request).await.unwrap();
    assert_eq!(completion.usage.prompt_tokens, 42);
    assert_eq!(completion.attempts, 1);
    let calls = completion.message.tool_calls.expect("tool calls");
    let types::ChatCompletionMessageToolCalls::Function(call) = &calls[0] else { panic!("{calls:?}") };
    assert_eq!(call.function.name, "hydration__log_water");
    let sent = &fake.requests()[0].json;
    assert_eq!(sent["tools"][0]["function"]["name"], "hydration__log_water");
}

/// What a small model behind llama.cpp answered for a message about neither plans nor sleep nor
/// water: strict JSON, placeholders and zeroes where null was meant.
fn placeholder_reply() -> String {
    checkin_json(json!({
        "mood": "unknown", "valence": "negative", "energy": "high", "hunger": "unknown",
        "intentions": ["unknown"], "activity": "unknown", "sleep_hours": 0.0, "water": 0.0,
        "exercise": "unknown", "crisis": false
    }))
}

#[tokio::test]
async fn placeholders_and_unsupported_numbers_are_repaired_and_filled_from_offline() {
    let fake = FakeLlm::start("small-model", |_, _| Reply::Content(placeholder_reply())).await;
    let llm = client(&fake, Duration::from_secs(5));
    let text = "so tired, skipped lunch";
    let got = extract_or_fallback(Some(&llm), None, text, wellbeing_assistant::extract::offline::extract).await;
    assert_eq!(got.extractor, ExtractorKind::Llm);
    let c = &got.checkin;
    assert!(c.intentions.is_empty(), "\"unknown\" is not an intention: {:?}", c.intentions);
    assert_eq!(c.activity, None);
    assert_eq!((c.sleep_hours, c.water), (None, None), "the text says nothing about sleep or water");
    // Empty answers take the offline value; an answer opposite to an explicit word ("so tired"
    // is low energy) takes the offline value too; the rest of the model's answer stands.
    assert_eq!(c.hunger, Hunger::Hungry, "a skipped lunch");
    assert_eq!(c.energy, Level::Low, "'so tired' against the model's 'high'");
    assert_eq!(c.valence, wellbeing_assistant::checkin::Valence::Negative);
    assert_eq!(c.mood.as_deref(), Some("tired"));
}

#[tokio::test]
async fn numbers_the_text_states_win_over_the_models() {
    let fake = FakeLlm::start("small-model", |_, _| {
        Reply::Content(checkin_json(json!({"sleep_hours": 8.0, "water": 0.0, "sleep_quality": "good"})))
    })
    .await;
    let llm = client(&fake, Duration::from_secs(5));
    let got = extract_or_fallback(
        Some(&llm),
        None,
        "slept 5 hours, drank 3 glasses of water",
        wellbeing_assistant::extract::offline::extract,
    )
    .await;
    assert_eq!((got.checkin.sleep_hours, got.checkin.water), (Some(5.0), Some(3.0)));
    assert_eq!(got.checkin.sleep_quality, SleepQuality::Poor, "5 hours is a poor night, not the model's 'good'");
}

#[tokio::test]
async fn a_crisis_flag_from_either_side_counts() {
    // The model says no crisis; the offline check reads one.
    let fake = FakeLlm::start("small-model", |_, _| Reply::Content(checkin_json(json!({"crisis": false})))).await;
    let llm = client(&fake, Duration::from_secs(5));
    let offline = wellbeing_assistant::extract::offline::extract;
    let got = extract_or_fallback(Some(&llm), None, "i just want it all to stop", offline).await;
    assert!(got.checkin.crisis && got.checkin.pillars.is_empty());
    // The model flags one the phrase list does not know.
    let fake = FakeLlm::start("small-model", |_, _| Reply::Content(checkin_json(json!({"crisis": true})))).await;
    let llm = client(&fake, Duration::from_secs(5));
    let got = extract_or_fallback(Some(&llm), None, "the bridge looks peaceful tonight", offline).await;
    assert!(got.checkin.crisis);
}
