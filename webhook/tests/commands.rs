//! Slash commands and interactivity end to end: `/checkin` through the inbox and response_url,
//! `/wellbeing help|export|forget|pause`, the forget button, and the check-in form.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use wellbeing_webhook::slack::commands::{CHECKIN_VIEW, FORGET_CANCEL, FORGET_CONFIRM};

const WAIT: Duration = Duration::from_secs(10);
const FORM: &str = "application/x-www-form-urlencoded";

fn command(slack: &FakeSlack, command: &str, text: &str, trigger: &str) -> Vec<u8> {
    serde_urlencoded::to_string([
        ("token", "unused"),
        ("team_id", TEAM),
        ("team_domain", "test"),
        ("channel_id", "D-U1"),
        ("channel_name", "directmessage"),
        ("user_id", "U1"),
        ("user_name", "alex"),
        ("command", command),
        ("text", text),
        ("api_app_id", "A1"),
        ("response_url", &slack.response_url(trigger)),
        ("trigger_id", trigger),
    ])
    .unwrap()
    .into_bytes()
}

fn interaction(payload: Value) -> Vec<u8> {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap().into_bytes()
}

#[tokio::test]
async fn checkin_command_acks_at_once_and_answers_through_response_url() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let started = std::time::Instant::now();
    let ack = post_signed(
        service.addr,
        "/slack/commands",
        FORM,
        &command(&slack, "/checkin", "slept great, ran 5k", "trig1"),
        &[],
    )
    .await;
    assert_eq!(ack.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    let ack: Value = ack.json().await.unwrap();
    assert_eq!(ack["response_type"], "ephemeral");

    let answers = slack.wait_for("respond:trig1", 1, WAIT).await;
    assert_eq!(answers[0].body["response_type"], "ephemeral");
    assert!(!answers[0].body["text"].as_str().unwrap().is_empty());
    wait_status(dir.path(), "command:trig1", "done", WAIT).await;
    let data: String = {
        let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
        store.conn().query_row("SELECT data FROM checkins WHERE user_id = 'slack:T1:U1'", [], |r| r.get(0)).unwrap()
    };
    let checkin: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(checkin["sleep_quality"], "good", "{checkin}");
    assert_eq!(checkin["exercise"], "done", "{checkin}");
    // No message was posted in a channel: the command answers privately.
    assert!(slack.calls("chat.postMessage").is_empty());
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn help_lists_the_commands_and_the_disclaimer() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let help: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "help", "t"), &[])
            .await
            .json()
            .await
            .unwrap();
    let text = help["text"].as_str().unwrap();
    for needle in ["/checkin", "/wellbeing export", "/wellbeing forget", "not a substitute"] {
        assert!(text.contains(needle), "help lacks {needle}: {text}");
    }
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_and_resume_answer_with_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options { worker: None, ..Options::default() }).await;
    let paused: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "pause 3d", "t1"), &[])
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(paused["response_type"], "ephemeral");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM pauses WHERE user_id = 'slack:T1:U1'"), 1, "{paused}");
    let resumed: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "resume", "t2"), &[])
            .await
            .json()
            .await
            .unwrap();
    assert!(resumed["text"].as_str().unwrap().contains("Welcome back"), "{resumed}");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn export_sends_a_json_file_to_the_dm() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    assert_eq!(
        post_event(service.addr, &dm_event("EvExp", "U1", "slept badly, very tired", "1700000000.000100"))
            .await
            .status(),
        200
    );
    wait_status(dir.path(), "EvExp", "done", WAIT).await;

    let ack: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "export", "exp1"), &[])
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(ack["response_type"], "ephemeral");
    let complete = slack.wait_for("files.completeUploadExternal", 1, WAIT).await;
    assert_eq!(complete[0].body["channel_id"], "D-U1");
    let files: Value = serde_json::from_str(complete[0].body["files"].as_str().unwrap()).unwrap();
    assert_eq!(files[0]["id"], "F1");
    let url_call = &slack.calls("files.getUploadURLExternal")[0];
    let uploaded = slack.uploads.lock().unwrap()[0].clone();
    assert_eq!(url_call.body["length"], uploaded.len().to_string());
    assert!(url_call.body["filename"].as_str().unwrap().ends_with(".json"));
    let export: Value = serde_json::from_slice(&uploaded).unwrap();
    assert_eq!(export["user_id"], "slack:T1:U1");
    assert_eq!(export["tables"]["checkins"].as_array().unwrap().len(), 1);
    let done = slack.wait_for("respond:exp1", 1, WAIT).await;
    assert!(done[0].body["text"].as_str().unwrap().contains("direct messages"));
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn forget_asks_first_and_the_button_deletes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let options = Options { people: slack_people(&["U1", "U2"]), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;
    for (i, text) in ["slept badly", "had lunch, feeling better"].iter().enumerate() {
        let id = format!("EvF{i}");
        assert_eq!(
            post_event(service.addr, &dm_event(&id, "U1", text, &format!("170000000{i}.000100"))).await.status(),
            200
        );
        wait_status(dir.path(), &id, "done", WAIT).await;
    }
    // Someone else's data stays.
    assert_eq!(post_event(service.addr, &dm_event("EvOther", "U2", "fine", "1700000009.000100")).await.status(), 200);
    wait_status(dir.path(), "EvOther", "done", WAIT).await;
    // (The second message may answer the first one's follow-up: one or two check-ins.)
    let mine = "SELECT (SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U1') + (SELECT COUNT(*) FROM interactions WHERE user_id = 'slack:T1:U1')";
    let before = count(dir.path(), mine);
    assert!(before >= 3, "{before}");

    let ask: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "forget", "f1"), &[])
            .await
            .json()
            .await
            .unwrap();
    let buttons: Vec<&str> =
        ask["blocks"][1]["elements"].as_array().unwrap().iter().map(|b| b["action_id"].as_str().unwrap()).collect();
    assert_eq!(buttons, [FORGET_CONFIRM, FORGET_CANCEL]);
    // Asking deleted nothing.
    assert_eq!(count(dir.path(), mine), before);

    let click = |action: &str, id: &str| {
        interaction(json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "alex", "team_id": TEAM},
            "team": {"id": TEAM, "domain": "test"},
            "api_app_id": "A1",
            "trigger_id": "1.2.3",
            "response_url": slack.response_url(id),
            "actions": [{"action_id": action, "block_id": "b", "type": "button", "value": "x", "action_ts": "1.1"}]
        }))
    };
    let cancel = post_signed(service.addr, "/slack/interactivity", FORM, &click(FORGET_CANCEL, "cancel"), &[]).await;
    assert_eq!(cancel.status(), 200);
    let cancelled = slack.wait_for("respond:cancel", 1, WAIT).await;
    assert_eq!(cancelled[0].body["replace_original"], true);
    assert_eq!(count(dir.path(), mine), before);

    let confirm = post_signed(service.addr, "/slack/interactivity", FORM, &click(FORGET_CONFIRM, "confirm"), &[]).await;
    assert_eq!(confirm.status(), 200);
    for table in ["checkins", "interactions", "inbox", "deliveries"] {
        assert_eq!(
            count(dir.path(), &format!("SELECT COUNT(*) FROM {table} WHERE user_id = 'slack:T1:U1'")),
            0,
            "{table}"
        );
    }
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U2'"), 1);
    let answered = slack.wait_for("respond:confirm", 1, WAIT).await;
    assert!(answered[0].body["text"].as_str().unwrap().contains("deleted"));
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unsigned_button_click_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    assert_eq!(
        post_event(service.addr, &dm_event("EvKeep", "U1", "slept badly", "1700000000.000100")).await.status(),
        200
    );
    wait_status(dir.path(), "EvKeep", "done", WAIT).await;
    let body = interaction(json!({
        "type": "block_actions", "user": {"id": "U1", "team_id": TEAM}, "team": {"id": TEAM},
        "actions": [{"action_id": FORGET_CONFIRM, "value": "forget"}]
    }));
    let forged = reqwest::Client::new()
        .post(format!("http://{}/slack/interactivity", service.addr))
        .header("content-type", FORM)
        .header("x-slack-request-timestamp", now_ts())
        .header("x-slack-signature", "v0=0000000000000000000000000000000000000000000000000000000000000000")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkins WHERE user_id = 'slack:T1:U1'"), 1);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn checkin_without_text_opens_the_form_and_its_submission_is_answered_in_the_dm() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = start_service(dir.path(), &slack, Options::default()).await;
    let ack =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/checkin", "", "trigForm"), &[]).await;
    assert_eq!(ack.status(), 200);
    let opened = slack.calls("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].body["trigger_id"], "trigForm");
    assert_eq!(opened[0].body["view"]["callback_id"], CHECKIN_VIEW);

    let submit = |text: &str| {
        interaction(json!({
            "type": "view_submission",
            "team": {"id": TEAM}, "user": {"id": "U1", "team_id": TEAM},
            "view": {"id": "V123", "callback_id": CHECKIN_VIEW,
                     "state": {"values": {"checkin": {"text": {"type": "plain_text_input", "value": text}}}}}
        }))
    };
    // Empty: the modal shows an error and nothing is stored.
    let empty: Value =
        post_signed(service.addr, "/slack/interactivity", FORM, &submit("  "), &[]).await.json().await.unwrap();
    assert_eq!(empty["response_action"], "errors");
    let ok = post_signed(service.addr, "/slack/interactivity", FORM, &submit("tired, skipped lunch"), &[]).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().is_empty(), "a 200 with an empty body closes the modal");
    wait_status(dir.path(), "view:V123", "done", WAIT).await;
    let posts = slack.calls("chat.postMessage");
    assert!(!posts.is_empty());
    assert!(posts.iter().all(|p| p.body["channel"] == "D-U1"));
    service.shutdown().await.unwrap();
}

/// Commands act on the person who sent them, and only for someone served.
#[tokio::test]
async fn a_command_from_someone_not_served_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let options = Options { people: slack_people(&["U9"]), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;
    let answer: Value =
        post_signed(service.addr, "/slack/commands", FORM, &command(&slack, "/wellbeing", "pause 3d", "t9"), &[])
            .await
            .json()
            .await
            .unwrap();
    assert!(answer["text"].as_str().unwrap().contains("set up for someone else"), "{answer}");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM pauses"), 0);
    service.shutdown().await.unwrap();
}
