//! The Events API endpoint end to end: signatures, limits, deduplication, the inbox, the worker,
//! and threaded replies on a fake Slack.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use wellbeing_webhook::slack::signature::{SigningSecret, sign};

const WAIT: Duration = Duration::from_secs(10);

/// Slack's published example ("Verifying requests from Slack") goes through the real router when
/// the clock is set to the example's time: the signature is accepted and the command answered.
#[tokio::test]
async fn slacks_published_signing_example_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let clock = Arc::new(|| chrono::DateTime::from_timestamp(1531420618 + 30, 0).unwrap());
    let options = Options { clock, worker: None, ..Options::default() };
    // The example was signed with this secret; the harness uses another, so start with it.
    let service = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = wellbeing_webhook::server::ServerConfig {
            sms: None,
            slack: wellbeing_webhook::config::SlackConfig {
                signing_secret: SigningSecret::new("8f742231b10e8888abcd99yyyzzz85a5"),
                bot_token: wellbeing_webhook::slack::client::BotToken::new(BOT_TOKEN),
                api_base: slack.api_base(),
                bot_user_id: Some(BOT_USER.into()),
                checkin_user: None,
                team_id: Some(TEAM.into()),
            },
            worker: None,
            auth: wellbeing_webhook::auth::InternalAuth::new(None, None, "x", Default::default()),
            goals: Default::default(),
            clock: options.clock,
            personas_synced: Arc::new(true.into()),
            extra_routes: None,
            learned_goals: None,
            people: Vec::new(),
        };
        wellbeing_webhook::server::start(listener, None, engine(dir.path(), None), config).await.unwrap()
    };
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let send = |signature: &'static str| {
        reqwest::Client::new()
            .post(format!("http://{}/slack/commands", service.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", "1531420618")
            .header("x-slack-signature", signature)
            .body(body)
            .send()
    };
    let ok = send("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503").await.unwrap();
    assert_eq!(ok.status(), 200);
    let answer: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap().contains("/webhook-collect"), "{answer}");
    // One digit changed: refused.
    let forged = send("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b504").await.unwrap();
    assert_eq!(forged.status(), 401);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn stale_forged_and_unsigned_requests_get_401_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let body = dm_event("EvStale", "U1", "hello", "1700000000.000100").to_string();
    let client = reqwest::Client::new();
    let url = format!("http://{}/slack/events", service.addr);

    // Correctly signed, but six minutes old.
    let old = (chrono::Utc::now().timestamp() - 360).to_string();
    let stale = client
        .post(&url)
        .header("x-slack-request-timestamp", &old)
        .header("x-slack-signature", sign(&SigningSecret::new(SECRET), &old, body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);

    // Fresh timestamp, signed with another secret.
    let ts = now_ts();
    let forged = client
        .post(&url)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(&SigningSecret::new("not the secret"), &ts, body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // Signed body, then tampered with.
    let tampered_body = body.replace("hello", "hullo");
    let tampered = client
        .post(&url)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(&SigningSecret::new(SECRET), &ts, body.as_bytes()))
        .body(tampered_body)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    let unsigned = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);

    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0);
    let metrics = reqwest::get(format!("http://{}/metrics", service.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"wellbeing_slack_events_total{result="rejected",reason="stale"} 1"#), "{metrics}");
    assert!(
        metrics.contains(r#"wellbeing_slack_events_total{result="rejected",reason="bad_signature"} 2"#),
        "{metrics}"
    );
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_json_is_400_and_oversized_bodies_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let bad =
        post_signed(service.addr, "/slack/events", "application/json", b"{\"type\": \"event_callback\", ", &[]).await;
    assert_eq!(bad.status(), 400);
    let huge = vec![b' '; 1024 * 1024 + 1];
    let too_big = post_signed(service.addr, "/slack/events", "application/json", &huge, &[]).await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"});
    let answer = post_event(service.addr, &body).await;
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn slack_retries_of_one_event_make_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let event = dm_event("EvDup", "U1", "slept badly", "1700000000.000100");
    let body = event.to_string();
    let mut handles = Vec::new();
    for retry in 0..5 {
        let addr = service.addr;
        let body = body.clone();
        handles.push(tokio::spawn(async move {
            let retry = retry.to_string();
            let extra: Vec<(&str, &str)> = if retry == "0" {
                vec![]
            } else {
                vec![("x-slack-retry-num", &retry), ("x-slack-retry-reason", "http_timeout")]
            };
            post_signed(addr, "/slack/events", "application/json", body.as_bytes(), &extra).await.status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox WHERE event_id = 'EvDup'"), 1);
    let metrics = reqwest::get(format!("http://{}/metrics", service.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"wellbeing_slack_events_total{result="duplicate",reason="events"} 4"#), "{metrics}");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn bot_messages_edits_and_our_own_messages_are_acknowledged_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let mut own = dm_event("EvOwn", BOT_USER, "a reply of ours", "1.1");
    own["event"]["user"] = json!(BOT_USER);
    let mut bot = dm_event("EvBot", "U1", "from a bot", "1.2");
    bot["event"]["bot_id"] = json!("B9");
    let mut edit = dm_event("EvEdit", "U1", "edited", "1.3");
    edit["event"]["subtype"] = json!("message_changed");
    for event in [own, bot, edit] {
        assert_eq!(post_event(service.addr, &event).await.status(), 200);
    }
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0);
    service.shutdown().await.unwrap();
}

/// The whole flow: a DM becomes an inbox row, the worker runs the engine, the reply lands in the
/// user's thread on Slack, the row is done and its text gone.
#[tokio::test]
async fn a_dm_gets_a_threaded_reply() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let ts = "1700000000.000100";
    let event = dm_event("EvFlow", "U1", "Kinda drained. Haven't eaten yet and didn't sleep much.", ts);
    let started = std::time::Instant::now();
    let ack = post_event(service.addr, &event).await;
    assert_eq!(ack.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    // Committed before the 200.
    assert!(inbox_status(dir.path(), "EvFlow").is_some());

    wait_status(dir.path(), "EvFlow", "done", WAIT).await;
    let posts = slack.calls("chat.postMessage");
    assert!(!posts.is_empty());
    for post in &posts {
        assert_eq!(post.body["channel"], "D-U1");
        assert_eq!(post.body["thread_ts"], ts, "reply not threaded: {}", post.body);
        assert_eq!(post.body["metadata"]["event_payload"]["key"], "EvFlow");
        assert_eq!(post.authorization.as_deref(), Some("Bearer xoxb-test-token"));
    }
    let text: String =
        posts.iter().map(|p| p.body["text"].as_str().unwrap().to_string()).collect::<Vec<_>>().join("\n");
    // First contact: the assistant says it is an AI and not a substitute for professional care.
    assert!(text.to_lowercase().contains("not a substitute"), "{text}");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U1'"), 1);
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM deliveries WHERE key = 'EvFlow' AND status = 'posted'"),
        posts.len() as i64
    );
    let payload: String = {
        let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
        store.conn().query_row("SELECT payload FROM inbox WHERE event_id = 'EvFlow'", [], |r| r.get(0)).unwrap()
    };
    assert!(!payload.contains("drained"), "text kept in the inbox: {payload}");
    service.shutdown().await.unwrap();
}

/// A mention in a public channel is answered in the person's DM; the channel thread only hears
/// where the answer went, even for a crisis message.
#[tokio::test]
async fn a_mention_in_a_channel_is_answered_in_a_dm_never_in_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let ts = "1700000000.000200";
    let mut event = dm_event("EvMention", "U1", "<@UBOT> I want to end it all, there's no point any more", ts);
    event["event"]["type"] = json!("app_mention");
    event["event"]["channel"] = json!("C-general");
    event["event"].as_object_mut().unwrap().remove("channel_type");
    assert_eq!(post_event(service.addr, &event).await.status(), 200);
    wait_status(dir.path(), "EvMention", "done", WAIT).await;
    let posts = slack.calls("chat.postMessage");
    let (public, private): (Vec<_>, Vec<_>) = posts.iter().partition(|p| p.body["channel"] == "C-general");
    assert_eq!(public.len(), 1, "{posts:?}");
    assert_eq!(public[0].body["thread_ts"], ts);
    assert!(public[0].body["text"].as_str().unwrap().contains("direct message"), "{}", public[0].body);
    assert!(!private.is_empty());
    assert!(private.iter().all(|p| p.body["channel"] == "D-U1"), "{private:?}");
    service.shutdown().await.unwrap();
}

/// With `SLACK_USER_ID` naming the person served, a coworker who writes gets a polite refusal
/// and nothing of theirs is stored; the served person is answered as before.
#[tokio::test]
async fn someone_the_installation_does_not_serve_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let options = Options { checkin_user: Some("U1".into()), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;
    let ts = "1700000000.000300";
    assert_eq!(
        post_event(service.addr, &dm_event("EvCoworker", "U2", "slept badly, skipped lunch", ts)).await.status(),
        200
    );
    wait_status(dir.path(), "EvCoworker", "done", WAIT).await;
    let posts = slack.calls("chat.postMessage");
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].body["channel"], "D-U2");
    assert!(posts[0].body["text"].as_str().unwrap().contains("Nothing you wrote has been stored"));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U2'"), 0);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM interactions WHERE user_id = 'slack:T1:U2'"), 0);

    assert_eq!(
        post_event(service.addr, &dm_event("EvOwner", "U1", "slept badly, skipped lunch", ts)).await.status(),
        200
    );
    wait_status(dir.path(), "EvOwner", "done", WAIT).await;
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U1'"), 1);
    service.shutdown().await.unwrap();
}

/// One user's messages are answered in the order they were sent.
#[tokio::test]
async fn one_users_messages_are_processed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let messages = ["slept great", "had breakfast", "ran 5k", "feeling calm", "drank water"];
    for (i, text) in messages.iter().enumerate() {
        let ev = dm_event(&format!("EvOrder{i}"), "U7", text, &format!("1700000000.00010{i}"));
        assert_eq!(post_event(service.addr, &ev).await.status(), 200);
        let other = dm_event(&format!("EvOther{i}"), &format!("U8{i}"), text, &format!("1700000000.00020{i}"));
        assert_eq!(post_event(service.addr, &other).await.status(), 200);
    }
    service.shutdown().await.unwrap();
    // Restart with the worker: everything pending is processed.
    let service = start_service(dir.path(), &slack, Options::default()).await;
    for i in 0..messages.len() {
        wait_status(dir.path(), &format!("EvOrder{i}"), "done", WAIT).await;
    }
    let threads: Vec<String> = slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "D-U7")
        .map(|c| c.body["thread_ts"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = threads.clone();
    sorted.sort();
    assert_eq!(threads, sorted, "U7's replies out of order");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn slack_failures_are_retried_with_backoff_then_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    slack.behaviour.post_failures.store(2, std::sync::atomic::Ordering::SeqCst);
    let service = start_service(dir.path(), &slack, Options::default()).await;
    assert_eq!(post_event(service.addr, &dm_event("EvRetry", "U1", "tired", "1700000000.000100")).await.status(), 200);
    wait_status(dir.path(), "EvRetry", "done", WAIT).await;
    assert_eq!(slack.calls("chat.postMessage.failed").len(), 2);
    let (_, attempts) = inbox_status(dir.path(), "EvRetry").unwrap();
    assert_eq!(attempts, 3);
    // Every reply posted exactly once despite the retries.
    let posts = slack.calls("chat.postMessage");
    let mut seqs: Vec<i64> =
        posts.iter().map(|p| p.body["metadata"]["event_payload"]["seq"].as_i64().unwrap()).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), posts.len());
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_permanent_slack_error_fails_the_row_and_later_rows_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    *slack.behaviour.post_error.lock().unwrap() = Some("channel_not_found".into());
    let service = start_service(dir.path(), &slack, Options::default()).await;
    assert_eq!(post_event(service.addr, &dm_event("EvGone", "U1", "tired", "1700000000.000100")).await.status(), 200);
    wait_status(dir.path(), "EvGone", "failed", WAIT).await;
    assert_eq!(inbox_status(dir.path(), "EvGone").unwrap().1, 1);
    *slack.behaviour.post_error.lock().unwrap() = None;
    assert_eq!(
        post_event(service.addr, &dm_event("EvNext", "U1", "better now", "1700000001.000100")).await.status(),
        200
    );
    wait_status(dir.path(), "EvNext", "done", WAIT).await;
    let metrics = reqwest::get(format!("http://{}/metrics", service.addr)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"wellbeing_slack_api_errors_total{method="chat.postMessage",error="channel_not_found"} 1"#),
        "{metrics}"
    );
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_429_is_waited_out_as_slack_asks() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    *slack.behaviour.rate_limit_once.lock().unwrap() = Some(1);
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let started = std::time::Instant::now();
    assert_eq!(post_event(service.addr, &dm_event("Ev429", "U1", "ok", "1700000000.000100")).await.status(), 200);
    wait_status(dir.path(), "Ev429", "done", WAIT).await;
    assert_eq!(slack.calls("chat.postMessage.ratelimited").len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After not honoured");
    // Waited inside the client: the row needed one attempt.
    assert_eq!(inbox_status(dir.path(), "Ev429").unwrap().1, 1);
    service.shutdown().await.unwrap();
}

/// An LLM that hangs, fails or answers garbage still leaves the user with a reply (the engine's
/// offline extractor and templates), through the whole HTTP path.
#[tokio::test]
async fn a_broken_llm_still_produces_a_reply() {
    for mode in [LlmMode::ServerError, LlmMode::InvalidJson, LlmMode::Hang] {
        let dir = tempfile::tempdir().unwrap();
        let slack = FakeSlack::start().await;
        let (base, hits) = fake_llm(mode).await;
        let mut llm = wellbeing_assistant::llm::LlmConfig::new(&base, "test-model");
        // The ack must not wait on the LLM: with a hanging LLM, waiting would take at least one
        // whole time budget. The budget is generous so a loaded CI machine cannot mistake a slow
        // ack for a wait.
        llm.timeout = Duration::from_secs(2);
        llm.retries = 1;
        let llm_budget = llm.timeout;
        let service = start_service(dir.path(), &slack, Options { llm: Some(llm), ..Options::default() }).await;
        let started = std::time::Instant::now();
        let ack =
            post_event(service.addr, &dm_event("EvLlm", "U1", "slept badly, skipped breakfast", "1700000000.000100"))
                .await;
        assert_eq!(ack.status(), 200);
        assert!(started.elapsed() < llm_budget, "{mode:?}: the ack waited on the LLM");
        wait_status(dir.path(), "EvLlm", "done", Duration::from_secs(20)).await;
        assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1, "{mode:?}: the LLM was never asked");
        assert!(!slack.calls("chat.postMessage").is_empty(), "{mode:?}: no reply");
        let extractor: String = {
            let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
            store.conn().query_row("SELECT extractor FROM checkins", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(extractor, "offline", "{mode:?}");
        service.shutdown().await.unwrap();
    }
}

/// A graceful stop answers every request that was accepted, keeps every acknowledged event, and
/// leaves the database folded into one file (the WAL checkpointed and truncated).
#[tokio::test]
async fn shutdown_keeps_every_acknowledged_event_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let mut sends = Vec::new();
    for i in 0..50 {
        let addr = service.addr;
        sends.push(tokio::spawn(async move {
            post_event(addr, &dm_event(&format!("EvStop{i}"), "U1", "fine", "1700000000.000100")).await.status()
        }));
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200);
    }
    let addr = service.addr;
    service.shutdown().await.unwrap();
    // Checked before anything opens the database again.
    let wal = dir.path().join("wellbeing.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "WAL left behind");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox WHERE event_id LIKE 'EvStop%'"), 50);
    // Nothing listens any more.
    assert!(reqwest::get(format!("http://{addr}/healthz")).await.is_err());
}

/// Nobody named in the configuration: the first person who writes is the one served from then
/// on; a coworker who writes later is refused and nothing of theirs is stored, not even after a
/// restart.
#[tokio::test]
async fn with_nobody_named_the_first_writer_is_served_and_the_next_refused() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let ts = "1700000000.000400";
    assert_eq!(post_event(service.addr, &dm_event("EvFirst", "U5", "slept badly", ts)).await.status(), 200);
    wait_status(dir.path(), "EvFirst", "done", WAIT).await;
    service.shutdown().await.unwrap();

    let service = start_service(dir.path(), &slack, Options::default()).await;
    assert_eq!(post_event(service.addr, &dm_event("EvSecond", "U6", "slept badly", ts)).await.status(), 200);
    wait_status(dir.path(), "EvSecond", "done", WAIT).await;
    let to_u6: Vec<_> = slack.calls("chat.postMessage").into_iter().filter(|p| p.body["channel"] == "D-U6").collect();
    assert_eq!(to_u6.len(), 1, "{to_u6:?}");
    assert!(to_u6[0].body["text"].as_str().unwrap().contains("Nothing you wrote has been stored"));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM interactions WHERE user_id = 'slack:T1:U6'"), 0);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM people"), 1);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U5'"), 1);
    service.shutdown().await.unwrap();
}
