//! `/internal/checkins` with a shared token and with a (fake) TokenReview, and the readiness and
//! metrics endpoints.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use serde_json::{Value, json};
use wellbeing_webhook::auth::{Review, ReviewError, TokenReviewer};

const WAIT: Duration = Duration::from_secs(10);

async fn trigger(addr: std::net::SocketAddr, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("http://{addr}/internal/checkins")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_checkin_with_the_shared_token_posts_the_prompt_once_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let options = Options { checkin_user: Some("U1".into()), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;

    let (status, body) = trigger(service.addr, None, json!({"persona": "builtin-default"})).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = trigger(service.addr, Some("wrong"), json!({"persona": "builtin-default"})).await;
    assert_eq!(status, 401);
    let (status, body) = trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "someone-else"})).await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap().contains("not the active persona"), "{body}");

    let (status, body) =
        trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default", "slot": 0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "sent");
    assert_eq!(body["user_id"], "slack:T1:U1");
    assert_eq!(slack.calls("conversations.open")[0].body["users"], "U1");
    let posts = slack.calls("chat.postMessage");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["channel"], "D-U1");
    assert!(posts[0].body.get("thread_ts").is_none(), "a prompt starts its own thread");
    let prompt_ts = posts[0].body["text"].clone();
    assert!(prompt_ts.as_str().is_some_and(|t| !t.is_empty()));
    // The prompt knows where it went, so the reply in its thread links to it.
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM checkin_prompts WHERE channel_ref = 'D-U1' AND thread_ref IS NOT NULL"),
        1
    );

    // A retried Job for the same slot sends nothing.
    let (status, body) =
        trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default", "slot": 0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "already_sent");
    assert_eq!(slack.calls("chat.postMessage").len(), 1);
    // The slot's job is in the scheduler's record once, as sent.
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM scheduler_runs WHERE kind = 'checkin' AND outcome = 'sent' AND job_key LIKE 'checkin/%/builtin-default/%'"
        ),
        1
    );

    // The user answers in the prompt's thread: the check-in is linked to the prompt.
    let thread = body["ts"].as_str().unwrap().to_string();
    let mut answer = dm_event("EvAnswer", "U1", "pretty good, slept well", "1800000100.000100");
    answer["event"]["thread_ts"] = json!(thread);
    assert_eq!(post_event(service.addr, &answer).await.status(), 200);
    wait_status(dir.path(), "EvAnswer", "done", WAIT).await;
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE prompt_id IS NOT NULL"), 1);
    let replies = slack.calls("chat.postMessage");
    assert!(replies[1..].iter().all(|p| p.body["thread_ts"] == thread.as_str()), "replies not in the prompt's thread");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_configured_user_the_last_one_who_wrote_is_checked_in_with() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let (status, body) = trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default"})).await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap().contains("SLACK_USER_ID"), "{body}");
    assert_eq!(post_event(service.addr, &dm_event("EvHi", "U5", "hi there", "1700000000.000100")).await.status(), 200);
    wait_status(dir.path(), "EvHi", "done", WAIT).await;
    let (status, body) = trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "slack:T1:U5");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_paused_user_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service =
        start_service(dir.path(), &slack, Options { checkin_user: Some("U1".into()), ..Options::default() }).await;
    let pause = serde_urlencoded::to_string([
        ("team_id", TEAM),
        ("user_id", "U1"),
        ("command", "/wellbeing"),
        ("text", "pause 2d"),
        ("response_url", &slack.response_url("p")),
        ("trigger_id", "p"),
    ])
    .unwrap();
    let paused =
        post_signed(service.addr, "/slack/commands", "application/x-www-form-urlencoded", pause.as_bytes(), &[]).await;
    assert_eq!(paused.status(), 200);
    let (status, body) = trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "skipped");
    assert_eq!(body["reason"], "paused");
    assert!(slack.calls("chat.postMessage").is_empty());
    service.shutdown().await.unwrap();
}

/// Answers like the API server: authenticated for one token and the requested audience.
struct FakeReviewer {
    calls: AtomicUsize,
}

#[async_trait]
impl TokenReviewer for FakeReviewer {
    async fn review(&self, token: &str, audience: &str) -> Result<Review, ReviewError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(match token {
            "sa-token" => Review {
                authenticated: true,
                username: "system:serviceaccount:wellbeing:wellbeing-checkin".into(),
                audiences: vec![audience.into()],
                error: None,
            },
            "other-audience" => Review {
                authenticated: true,
                username: "system:serviceaccount:wellbeing:wellbeing-checkin".into(),
                audiences: vec!["https://kubernetes.default.svc".into()],
                error: None,
            },
            "human" => {
                Review { authenticated: true, username: "alice".into(), audiences: vec![audience.into()], error: None }
            }
            _ => Review { authenticated: false, error: Some("invalid bearer token".into()), ..Review::default() },
        })
    }
}

#[tokio::test]
async fn a_checkin_with_a_service_account_token_is_reviewed() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let reviewer = Arc::new(FakeReviewer { calls: AtomicUsize::new(0) });
    let options = Options {
        checkin_user: Some("U1".into()),
        reviewer: Some(reviewer.clone()),
        shared_token: None,
        ..Options::default()
    };
    let service = start_service(dir.path(), &slack, options).await;
    let persona = json!({"persona": "builtin-default"});
    assert_eq!(trigger(service.addr, Some("forged"), persona.clone()).await.0, 401);
    assert_eq!(trigger(service.addr, Some("other-audience"), persona.clone()).await.0, 401);
    assert_eq!(trigger(service.addr, Some("human"), persona.clone()).await.0, 403);
    // The shared token is not configured here: it is just another unknown token.
    assert_eq!(trigger(service.addr, Some(INTERNAL_TOKEN), persona.clone()).await.0, 401);
    let (status, body) = trigger(service.addr, Some("sa-token"), persona.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "sent");
    let before = reviewer.calls.load(Ordering::SeqCst);
    let (status, _) = trigger(service.addr, Some("sa-token"), persona).await;
    assert_eq!(status, 200);
    assert_eq!(reviewer.calls.load(Ordering::SeqCst), before, "a positive review is cached");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn readyz_says_which_persona_speaks_and_metrics_are_exposed() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let health = reqwest::get(format!("http://{}/healthz", service.addr)).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("http://{}/readyz", service.addr)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(text.contains("database: ok"), "{text}");
    assert!(text.contains("built-in default"), "{text}");

    // Persona watch not synced yet: not ready.
    service.state.personas_synced.store(false, Ordering::Relaxed);
    let ready = reqwest::get(format!("http://{}/readyz", service.addr)).await.unwrap();
    assert_eq!(ready.status(), 503);
    service.state.personas_synced.store(true, Ordering::Relaxed);

    assert_eq!(post_event(service.addr, &dm_event("EvM", "U1", "ok", "1700000000.000100")).await.status(), 200);
    wait_status(dir.path(), "EvM", "done", WAIT).await;
    let metrics = reqwest::get(format!("http://{}/metrics", service.addr)).await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let metrics = metrics.text().await.unwrap();
    for needle in [
        r#"wellbeing_slack_events_total{result="accepted",reason="events"} 1"#,
        "wellbeing_inbox_depth",
        r#"wellbeing_inbox_processing_seconds_count{outcome="done"} 1"#,
        "wellbeing_inbox_commit_batch_rows_count",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    service.shutdown().await.unwrap();
}

/// With two people served, a check-in goes to each of them in their own DM, recorded per person.
#[tokio::test]
async fn a_checkin_goes_to_every_person_served_each_in_their_own_dm() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let options = Options { people: slack_people(&["U1", "U2"]), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;
    let (status, body) =
        trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default", "slot": 0})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "sent");
    let people: Vec<&str> = body["people"].as_array().unwrap().iter().map(|p| p["user_id"].as_str().unwrap()).collect();
    assert_eq!(people, ["slack:T1:U1", "slack:T1:U2"]);
    let mut channels: Vec<String> =
        slack.calls("chat.postMessage").iter().map(|p| p.body["channel"].as_str().unwrap().to_string()).collect();
    channels.sort();
    assert_eq!(channels, ["D-U1", "D-U2"]);
    assert_eq!(count(dir.path(), "SELECT COUNT(DISTINCT user_id) FROM checkin_prompts"), 2);
    // A retried Job sends nothing to either.
    let (_, again) =
        trigger(service.addr, Some(INTERNAL_TOKEN), json!({"persona": "builtin-default", "slot": 0})).await;
    assert_eq!(again["status"], "already_sent", "{again}");
    assert_eq!(slack.calls("chat.postMessage").len(), 2);
    service.shutdown().await.unwrap();
}
