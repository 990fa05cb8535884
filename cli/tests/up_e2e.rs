//! End to end: `wellbeing up` on a free port with a temporary data dir, driven over HTTP, with
//! `wellbeing chat` / `checkins` / `export`, and in headless Chromium.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Up, manifests_with_checkin_now, run, wellbeing};

const BAD_GOAL: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {name: workouts}
spec:
  description: Work out 3 times a week
  pillar: physical-activity
  metric: exercise
  target: {count: 3, per: fortnight}
"#;

const GOOD_GOAL: &str = r#"apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {name: water}
spec:
  description: Drink water
  pillar: hydration
  metric: water
  target: {count: 6, per: day}
"#;

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn messages(up: &Up, token: &str) -> Vec<Value> {
    let r = http().get(format!("{}/api/local/messages?after=0", up.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["messages"].as_array().unwrap().clone()
}

async fn wait_for_prompt(up: &Up, token: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = messages(up, token).await;
        if all.iter().any(|m| m["kind"] == "checkin_prompt") {
            return all;
        }
        assert!(Instant::now() < deadline, "no check-in prompt arrived: {}", up.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_the_local_channel_and_the_tools_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, manifests) = (tmp.path().join("data"), tmp.path().join("manifests"));
    manifests_with_checkin_now(&manifests);
    std::fs::write(manifests.join("bad-goal.yaml"), BAD_GOAL).unwrap();
    std::fs::write(manifests.join("water.yaml"), GOOD_GOAL).unwrap();

    let up = Up::start(&data, &manifests, &[]);
    let token = up.token();

    // The invalid file is reported with its path, field and reason; the others loaded.
    let log = up.stderr();
    let bad_line = log.lines().find(|l| l.contains("invalid manifest skipped")).expect("bad file reported");
    assert!(bad_line.contains("bad-goal.yaml") && bad_line.contains("spec.target.per"), "{bad_line}");
    assert!(bad_line.contains("fortnight"), "{bad_line}");
    assert!(log.contains("goals=1") && log.contains("active_persona=\"coach\""), "{log}");

    // The persona's check-in for the current minute is due at start-up (inside the grace period).
    let all = wait_for_prompt(&up, &token).await;
    let prompt = all.iter().find(|m| m["kind"] == "checkin_prompt").unwrap();
    assert_eq!(prompt["text"], "Morning check: how did you sleep?");

    // No token, no API; another origin, no API.
    let r = http().post(format!("{}/api/local/messages", up.url)).json(&json!({"text": "hi"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/api/local/messages", up.url))
        .bearer_auth(&token)
        .header("Origin", "http://evil.example")
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Chat over HTTP: the reply and the stored check-in come back.
    let r = http()
        .post(format!("{}/api/local/messages", up.url))
        .bearer_auth(&token)
        .json(&json!({"text": "slept badly, skipped breakfast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent: Value = r.json().await.unwrap();
    assert!(!sent["reply"].as_str().unwrap().is_empty());
    assert_eq!(sent["checkin"]["data"]["sleep_quality"], "poor");
    assert_eq!(sent["checkin"]["data"]["meals"], json!([{"meal": "breakfast", "status": "skipped"}]));
    assert!(sent["reply"].as_str().unwrap().contains("not a substitute"), "first contact carries the disclaimer");

    // `wellbeing chat` finds the running instance through the instance file (it could not open
    // the database directly: the instance holds the data dir's lock).
    let out = run(wellbeing(&data).args(["chat", "--json", "ran 5k this morning, feeling great"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chat: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The persona requires mood, so the first message got one follow-up question; this answer
    // is merged into the same check-in.
    assert_eq!(chat["checkin"]["id"], sent["checkin"]["id"]);
    assert_eq!(chat["checkin"]["data"]["exercise"], "done");
    assert_eq!(chat["checkin"]["data"]["sleep_quality"], "poor");
    let out = run(wellbeing(&data).args(["chat", "drank 3 glasses of water"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Stored check-in #") && text.contains("water"), "{text}");

    // The stored rows: the first answered the scheduled prompt and is linked to it.
    let out = run(wellbeing(&data).args(["checkins", "--since", "1h", "--json"]));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["checkin"]["exercise"], "done");
    assert_eq!(rows[1]["checkin"]["water"], 3.0);
    assert_eq!(rows[0]["user_id"], "local:me");
    assert_eq!(rows[0]["checkin"]["sleep_quality"], "poor");
    assert!(rows[0]["prompt_id"].is_i64(), "{:?}", rows[0]);
    assert_eq!(rows[0]["persona_name"], "coach");
    assert_eq!(rows[0]["extractor"], "offline");
    let out = run(wellbeing(&data).args(["checkins"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sleep: poor"));

    // Export while running: JSON has every table, CSV one row per check-in.
    let export = tmp.path().join("export.json");
    let out = run(wellbeing(&data).args(["export", "--format", "json", "--output"]).arg(&export));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(doc["tables"]["checkins"].as_array().unwrap().len(), 2);
    assert_eq!(doc["tables"]["checkin_prompts"].as_array().unwrap().len(), 1);
    let out = run(wellbeing(&data).args(["export", "--format", "csv"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    // Editing the persona takes effect without a restart.
    let persona = manifests.join("persona.yaml");
    let text = std::fs::read_to_string(&persona).unwrap().replace("displayName: Sunny", "displayName: Moonbeam");
    std::fs::write(&persona, text).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = http().get(format!("{}/", up.url)).send().await.unwrap().text().await.unwrap();
        if page.contains("<title>Moonbeam") {
            break;
        }
        assert!(Instant::now() < deadline, "persona edit not applied: {}", up.stderr());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM: clean exit, instance file gone, the WAL folded back into the database.
    let (code, stdout) = up.stop();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("stopped cleanly"), "{stdout}");
    assert!(!data.join("instance.json").exists());
    let wal = std::fs::metadata(data.join("wellbeing.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the write-ahead log was checkpointed");

    // A restart inside the grace period does not send the same check-in again.
    let up = Up::start(&data, &manifests, &[]);
    let token = up.token();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prompts = messages(&up, &token).await.into_iter().filter(|m| m["kind"] == "checkin_prompt").count();
    assert_eq!(prompts, 1);

    // forget --yes goes through the running instance and deletes everything.
    let out = run(wellbeing(&data).args(["forget", "--yes"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(messages(&up, &token).await.is_empty());
    let (code, _) = up.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn chromium_loads_the_page_sends_a_message_and_shows_reply_and_check_in() {
    if !std::path::Path::new(support::cdp::CHROMIUM).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install Debian's chromium ({})", support::cdp::CHROMIUM);
        eprintln!("SKIPPED: {} is missing (apt-get install -y chromium)", support::cdp::CHROMIUM);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (data, manifests) = (tmp.path().join("data"), tmp.path().join("manifests"));
    manifests_with_checkin_now(&manifests);
    let up = Up::start(&data, &manifests, &[]);

    let mut browser = support::cdp::Browser::launch(&tmp.path().join("profile"));
    browser.open(&format!("{}/", up.url));
    browser.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('composer')",
        Duration::from_secs(20),
    );

    // It says what it is.
    let disclaimer = browser.eval("document.getElementById('disclaimer').textContent");
    assert!(disclaimer.as_str().unwrap().contains("not a substitute for professional care"), "{disclaimer}");

    // The scheduled check-in arrives on the page (rendered, or fetched by the poll).
    let prompt = browser.wait_for(
        "(document.querySelector('#messages li.kind-checkin_prompt .text') || {}).textContent",
        Duration::from_secs(20),
    );
    assert_eq!(prompt, "Morning check: how did you sleep?");

    // Type and click like a person.
    browser.click("#text");
    browser.type_text("slept badly, skipped breakfast");
    assert_eq!(browser.eval("document.getElementById('text').value"), "slept badly, skipped breakfast");
    browser.click("#send");

    // The user's message with its stored check-in, then the assistant's reply.
    let checkin = browser.wait_for(
        "(document.querySelector('#messages li.msg.in dl.checkin') || {}).textContent",
        Duration::from_secs(20),
    );
    let checkin = checkin.as_str().unwrap();
    assert!(checkin.contains("sleep") && checkin.contains("poor"), "{checkin}");
    assert!(checkin.contains("breakfast skipped"), "{checkin}");
    let replies = browser.wait_for(
        "Array.from(document.querySelectorAll('#messages li.msg.out:not(.kind-checkin_prompt) .text')).map(e => e.textContent).join('\\n')",
        Duration::from_secs(20),
    );
    assert!(replies.as_str().unwrap().to_lowercase().contains("slept badly"), "{replies}");
    assert_eq!(browser.eval("document.getElementById('text').value"), "", "the box is cleared after sending");
    assert_eq!(browser.eval("document.getElementById('status').textContent"), "");

    // And the row is in the database.
    let out = run(wellbeing(&data).args(["checkins", "--json"]));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["checkin"]["sleep_quality"], "poor");
    drop(browser);
    let (code, _) = up.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_slack_credentials_the_same_process_serves_slack() {
    use wellbeing_webhook::slack::signature::{SigningSecret, sign};
    let tmp = tempfile::tempdir().unwrap();
    let (data, manifests) = (tmp.path().join("data"), tmp.path().join("manifests"));
    manifests_with_checkin_now(&manifests);
    // Ids given up front, and an API base nothing listens on: no call to Slack is needed here.
    let dead_api = format!("http://127.0.0.1:{}/api", support::free_port());
    let up = Up::start(
        &data,
        &manifests,
        &[
            ("SLACK_SIGNING_SECRET", "test-signing-secret"),
            ("SLACK_BOT_TOKEN", "xoxb-test"),
            ("SLACK_BOT_USER_ID", "UBOT"),
            ("SLACK_TEAM_ID", "T1"),
            ("SLACK_API_BASE_URL", &dead_api),
        ],
    );
    let body = r#"{"type":"url_verification","challenge":"c-123","token":"x"}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature = sign(&SigningSecret::new("test-signing-secret"), &ts, body.as_bytes());
    let r = http()
        .post(format!("{}/slack/events", up.url))
        .header("X-Slack-Request-Timestamp", &ts)
        .header("X-Slack-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("c-123"));
    let forged = http()
        .post(format!("{}/slack/events", up.url))
        .header("X-Slack-Request-Timestamp", &ts)
        .header("X-Slack-Signature", "v0=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // The local channel still works beside it; the local persona's check-in went to the page.
    let token = up.token();
    let all = wait_for_prompt(&up, &token).await;
    assert!(all.iter().any(|m| m["kind"] == "checkin_prompt"));
    let r = http()
        .post(format!("{}/api/local/messages", up.url))
        .bearer_auth(&token)
        .json(&json!({"text": "slept great"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, _) = up.stop();
    assert_eq!(code, Some(0), "clean stop with the inbox and worker running");
}
