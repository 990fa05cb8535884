//! `wellbeing checkin trigger` against a local stand-in for the assistant's internal API: the
//! request it sends, and its exit status and message for each answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

/// Serve one HTTP request with `status` and `body`; hand back what was received.
fn one_shot_server(status: &'static str, body: &'static str) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut request_body = vec![0; length];
        reader.read_exact(&mut request_body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tx.send((head, String::from_utf8(request_body).unwrap())).unwrap();
    });
    (url, rx)
}

fn trigger(url: &str, token: Option<&str>, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wellbeing"));
    cmd.args(["checkin", "trigger", "--persona", "coach", "--url", url])
        .args(extra)
        .env_remove("WELLBEING_INTERNAL_TOKEN")
        .env_remove("WELLBEING_CHECKIN_SLOT")
        .env_remove("WELLBEING_TOKEN_FILE");
    if let Some(token) = token {
        cmd.env("WELLBEING_INTERNAL_TOKEN", token);
    }
    cmd.output().unwrap()
}

#[test]
fn a_sent_checkin_exits_zero_after_a_bearer_request_with_the_slot() {
    let (url, received) = one_shot_server("200 OK", r#"{"status":"sent","user_id":"slack:T1:U1","prompt_id":7}"#);
    let out = trigger(&url, Some("s3cret"), &["--slot", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check-in sent for persona coach (prompt 7)"));
    let (head, body) = received.recv().unwrap();
    assert!(head.starts_with("POST /internal/checkins HTTP/1.1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("authorization: bearer s3cret"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, serde_json::json!({"persona": "coach", "slot": 2}));
}

#[test]
fn the_token_file_is_read_when_no_token_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "projected-sa-token\n").unwrap();
    let (url, received) = one_shot_server("200 OK", r#"{"status":"skipped","reason":"paused"}"#);
    let out = trigger(&url, None, &["--token-file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped: paused"));
    let (head, _) = received.recv().unwrap();
    assert!(head.to_ascii_lowercase().contains("authorization: bearer projected-sa-token"), "{head}");
}

#[test]
fn a_refusal_exits_non_zero_with_the_assistants_reason() {
    let (url, _received) =
        one_shot_server("409 Conflict", r#"{"error":"persona coach is not the active persona (calm speaks)"}"#);
    let out = trigger(&url, Some("s3cret"), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 409"), "{stderr}");
    assert!(stderr.contains("not the active persona (calm speaks)"), "{stderr}");
}

#[test]
fn a_missing_token_is_a_clear_error() {
    let out = trigger("http://127.0.0.1:9", None, &["--token-file", "/nonexistent/wellbeing/token"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/wellbeing/token"), "{stderr}");
    assert!(stderr.contains("WELLBEING_INTERNAL_TOKEN"), "{stderr}");
}
