use std::sync::Mutex;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use wellbeing_assistant::checkin::{Meal, MealKind, MealStatus, SleepQuality};

use super::*;

const TOKEN: &str = "0123456789abcdef";

/// Keeps a conversation in memory; "sends" echo the text and store a fixed check-in.
#[derive(Default)]
struct Fake {
    messages: Mutex<Vec<LocalMessage>>,
    sent: Mutex<Vec<String>>,
    /// The inbox key of each message sent.
    keys: Mutex<Vec<String>>,
}

fn msg(id: i64, direction: &str, kind: &str, text: &str, checkin: Option<StoredCheckIn>) -> LocalMessage {
    LocalMessage {
        id,
        direction: direction.into(),
        kind: kind.into(),
        text: text.into(),
        created_at: "2026-05-04T10:00:00Z".into(),
        checkin,
        actions: Vec::new(),
    }
}

#[async_trait]
impl LocalBackend for Fake {
    fn assistant_name(&self) -> String {
        "Sunny".into()
    }

    async fn send(&self, row: crate::inbox::NewRow) -> Result<SendResult, LocalError> {
        self.keys.lock().unwrap().push(row.event_id.clone());
        assert_eq!(row.user_id, LOCAL_USER);
        let text = row.payload.text().to_string();
        let text = text.as_str();
        self.sent.lock().unwrap().push(text.to_string());
        let mut all = self.messages.lock().unwrap();
        let next = all.last().map(|m| m.id).unwrap_or(0) + 1;
        let checkin = StoredCheckIn::new(1, CheckIn { sleep_quality: SleepQuality::Poor, ..Default::default() });
        let new = vec![
            msg(next, "in", "message", text, Some(checkin.clone())),
            msg(next + 1, "out", "reply", "Sorry about the sleep.", None),
        ];
        all.extend(new.clone());
        Ok(SendResult { reply: "Sorry about the sleep.".into(), checkin: Some(checkin), messages: new })
    }

    async fn messages(&self, after: Option<i64>, limit: usize) -> Result<Vec<LocalMessage>, LocalError> {
        let all = self.messages.lock().unwrap();
        Ok(match after {
            Some(after) => all.iter().filter(|m| m.id > after).take(limit).cloned().collect(),
            None => all.iter().rev().take(limit).rev().cloned().collect(),
        })
    }

    async fn forget_everything(&self) -> Result<u64, LocalError> {
        let mut all = self.messages.lock().unwrap();
        let n = all.len() as u64;
        all.clear();
        Ok(n)
    }
}

fn app() -> (Router, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    fake.messages.lock().unwrap().push(msg(1, "out", "checkin_prompt", "How are you?", None));
    let state = LocalState { backend: fake.clone(), auth: LocalAuth::new(TOKEN, "127.0.0.1:8080".parse().unwrap()) };
    (router(state), fake)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(uri: &str, host: &str) -> http::request::Builder {
    Request::get(uri).header(header::HOST, host)
}

fn post_json(uri: &str) -> http::request::Builder {
    Request::post(uri).header(header::HOST, "127.0.0.1:8080").header(header::CONTENT_TYPE, "application/json")
}

#[tokio::test]
async fn page_is_served_to_the_local_address_only() {
    let (app, _) = app();
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        let (status, body) = call(&app, get("/", host).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{host}");
        assert!(body.contains("How are you?"));
        assert!(body.contains(TOKEN));
    }
    // A DNS-rebinding page reaches us under its own name: no page, no token.
    let (status, body) = call(&app, get("/", "evil.example:8080").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains(TOKEN));
    let (status, _) = call(&app, get("/", "localhost:9999").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The token itself opens the page from another address (e.g. listening on 0.0.0.0).
    let uri = format!("/?token={TOKEN}");
    let (status, _) = call(&app, get(&uri, "192.168.1.5:8080").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, get("/?token=wrong", "192.168.1.5:8080").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn api_needs_the_token_and_refuses_other_origins() {
    let (app, fake) = app();
    let body = r#"{"text":"slept badly"}"#;
    let (status, _) = call(&app, post_json("/api/local/messages").body(Body::from(body)).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &app,
        post_json("/api/local/messages").header(header::AUTHORIZATION, "Bearer nope").body(Body::from(body)).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Even with the token, another origin is refused (a page that somehow learned it).
    let (status, _) = call(
        &app,
        post_json("/api/local/messages")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::ORIGIN, "http://evil.example")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(fake.sent.lock().unwrap().is_empty(), "nothing was processed");
}

#[tokio::test]
async fn send_returns_reply_and_check_in_and_polling_sees_them() {
    let (app, fake) = app();
    let body = r#"{"text":"  slept badly  "}"#;
    let (status, text) = call(
        &app,
        post_json("/api/local/messages")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let result: SendResult = serde_json::from_str(&text).unwrap();
    assert_eq!(result.reply, "Sorry about the sleep.");
    assert_eq!(result.checkin.unwrap().summary, vec![("sleep".to_string(), "poor".to_string())]);
    assert_eq!(*fake.sent.lock().unwrap(), vec!["slept badly".to_string()], "trimmed");

    let (status, text) = call(
        &app,
        get("/api/local/messages?after=1", "127.0.0.1:8080")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page: MessagesResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(page.messages.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 3]);
}

#[tokio::test]
async fn the_senders_key_is_the_inbox_key_and_a_message_without_one_gets_its_own() {
    let (app, fake) = app();
    for body in
        [r#"{"text":"hi","key":"msg-1"}"#, r#"{"text":"hi","key":"msg-1"}"#, r#"{"text":"hi"}"#, r#"{"text":"hi"}"#]
    {
        let (status, text) = call(
            &app,
            post_json("/api/local/messages")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let keys = fake.keys.lock().unwrap().clone();
    assert_eq!(keys[..2], ["local:msg-1", "local:msg-1"], "a resend is the same message");
    assert!(keys[2].starts_with("local:") && keys[3].starts_with("local:") && keys[2] != keys[3], "{keys:?}");
}

#[tokio::test]
async fn empty_long_and_malformed_messages_are_refused() {
    let (app, fake) = app();
    let long = format!(r#"{{"text":"{}"}}"#, "a".repeat(MAX_MESSAGE_CHARS + 1));
    for (body, want) in [
        (r#"{"text":"   "}"#.to_string(), StatusCode::BAD_REQUEST),
        (long, StatusCode::PAYLOAD_TOO_LARGE),
        (format!(r#"{{"text":"hi","key":"{}"}}"#, "k".repeat(101)), StatusCode::BAD_REQUEST),
        (r#"{"text":"hi","key":"a\u0000b"}"#.to_string(), StatusCode::BAD_REQUEST),
        ("not json".to_string(), StatusCode::BAD_REQUEST),
        ("x".repeat(MAX_MESSAGE_CHARS * 5), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (status, _) = call(
            &app,
            post_json("/api/local/messages")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
        assert_eq!(status, want, "{}", &body[..body.len().min(40)]);
    }
    assert!(fake.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn forget_requires_confirmation() {
    let (app, fake) = app();
    let auth = format!("Bearer {TOKEN}");
    let (status, _) =
        call(&app, post_json("/api/local/forget").header(header::AUTHORIZATION, &auth).body(Body::from("{}")).unwrap())
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fake.messages.lock().unwrap().len(), 1);
    let body = r#"{"confirm":true}"#;
    let (status, text) =
        call(&app, post_json("/api/local/forget").header(header::AUTHORIZATION, &auth).body(Body::from(body)).unwrap())
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, r#"{"deleted":1}"#);
    assert!(fake.messages.lock().unwrap().is_empty());
}

#[test]
fn summary_leaves_out_what_was_not_said() {
    assert!(summary(&CheckIn::default()).is_empty());
    let c = CheckIn {
        sleep_hours: Some(5.5),
        sleep_quality: SleepQuality::Poor,
        meals: vec![Meal { meal: MealKind::Breakfast, status: MealStatus::Skipped }],
        ..Default::default()
    };
    assert_eq!(summary(&c), vec![("sleep", "poor, 5.5 h".to_string()), ("meals", "breakfast skipped".to_string())]);
}
