//! `wellbeing extract`: the offline path, the LLM path against a local OpenAI-compatible server
//! on 127.0.0.1, and the fallback when that server is unreachable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;

use serde_json::Value;

fn wellbeing(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wellbeing"));
    cmd.arg("extract").args(args);
    for var in ["WELLBEING_LLM_BASE_URL", "WELLBEING_LLM_MODEL", "WELLBEING_LLM_API_KEY", "OPENAI_API_KEY", "RUST_LOG"]
    {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("the wellbeing binary runs")
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is the check-in as JSON")
}

#[test]
fn offline_prints_the_data_model_fields_and_missing() {
    let out =
        wellbeing(&["--offline", "--required", "mood,sleep,exercise", "slept", "badly,", "skipped", "breakfast"], &[]);
    let c = stdout_json(&out);
    assert_eq!(c["sleep_quality"], "poor");
    assert_eq!(c["meals"], serde_json::json!([{"meal": "breakfast", "status": "skipped"}]));
    assert_eq!(c["missing"], serde_json::json!(["mood", "exercise"]));
    for field in [
        "mood",
        "valence",
        "energy",
        "stress",
        "sleep_hours",
        "hunger",
        "water",
        "activity",
        "intentions",
        "pillars",
        "crisis",
        "day_offset",
    ] {
        assert!(c.get(field).is_some(), "{field} is printed");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("extractor: offline"));
}

#[test]
fn without_an_endpoint_the_offline_extractor_answers() {
    let c = stdout_json(&wellbeing(&["going to run later"], &[]));
    assert_eq!((c["exercise"].as_str(), c["activity"].as_str()), (Some("planned"), Some("run")));
}

#[test]
fn an_unknown_required_field_is_refused() {
    let out = wellbeing(&["--offline", "--required", "mood,excercise", "hi"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

/// Serves one chat completion whose content is `checkin`, and hands back the request body.
fn fake_llm(checkin: Value) -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("one connection");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
        let reply = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": checkin.to_string()}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        })
        .to_string();
        let mut stream = stream;
        write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}", reply.len())
            .unwrap();
    });
    (base, rx)
}

#[test]
fn a_configured_endpoint_extracts_with_structured_output() {
    let answer = serde_json::json!({
        "mood": "content", "valence": "positive", "energy": "high", "stress": "low", "sleep_quality": "good",
        "sleep_hours": 8.0, "hunger": "unknown", "meals": [], "water": null, "exercise": "done", "activity": "swim",
        "intentions": [], "pillars": ["physical-activity"], "crisis": false, "day_offset": 0, "missing": []
    });
    let (base, request) = fake_llm(answer);
    let out = wellbeing(
        &["--required", "water", "swam", "this", "morning"],
        &[("WELLBEING_LLM_BASE_URL", &base), ("WELLBEING_LLM_MODEL", "fake-model")],
    );
    let c = stdout_json(&out);
    assert_eq!(
        (c["mood"].as_str(), c["activity"].as_str()),
        (Some("content"), Some("swim")),
        "the model's answer is printed"
    );
    assert_eq!(c["missing"], serde_json::json!(["water"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("extractor: llm (fake-model)"));
    let body = request.recv().expect("the server saw the request");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert!(body.to_string().contains("swam this morning"), "the message is sent");
}

#[test]
fn an_unreachable_endpoint_falls_back_to_offline() {
    // A port that was free a moment ago: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let out = wellbeing(&["not", "hungry"], &[("WELLBEING_LLM_BASE_URL", &base), ("WELLBEING_LLM_TIMEOUT_SECS", "3")]);
    let c = stdout_json(&out);
    assert_eq!(c["hunger"], "not_hungry");
    assert!(String::from_utf8_lossy(&out.stderr).contains("LLM failed"), "{}", String::from_utf8_lossy(&out.stderr));
}
