//! SMS through Twilio end to end: the Messaging webhook's signature (Twilio's documented example,
//! forgeries, a TLS-terminating proxy, the JSON `bodySHA256` variant), STOP / START / HELP,
//! deduplication on MessageSid, replies and proactive messages on a fake Twilio REST API.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{Value, json};
use wellbeing_assistant::goals::{OutgoingMessage, SendKind};
use wellbeing_assistant::people::{Identity, NOT_SERVED_REPLY, PersonConfig};
use wellbeing_webhook::channel::OutboundAdapter;
use wellbeing_webhook::nudges::{Delivered, Delivery};

const WAIT: Duration = Duration::from_secs(10);
const ANA: &str = "+4915112345678";
const STRANGER: &str = "+4917099999999";
/// What Twilio is given; the service itself listens on 127.0.0.1 behind the "proxy".
const PUBLIC_URL: &str = "https://wellbeing.example.org/sms/twilio";

fn ana() -> Vec<PersonConfig> {
    vec![PersonConfig { name: "ana".into(), identities: vec![format!("sms:{ANA}").parse().unwrap()] }]
}

async fn start(
    dir: &std::path::Path,
    twilio: &FakeTwilio,
    webhook_url: Option<&str>,
) -> wellbeing_webhook::server::Running {
    let slack = FakeSlack::start().await;
    let options = Options { people: ana(), sms: Some(twilio.config(webhook_url)), ..Options::default() };
    start_service(dir, &slack, options).await
}

/// Twilio's documented example (auth token 12345, `https://mycompany.com/myapp.php?foo=1&bar=2`)
/// through the real router: accepted as signed (then refused as no text message: it is a call's
/// parameters), and refused with one character changed.
#[tokio::test]
async fn twilios_documented_example_passes_the_signature_check() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let slack = FakeSlack::start().await;
    let mut config = twilio.config(Some("https://mycompany.com/myapp.php"));
    config.auth_token = wellbeing_webhook::sms::signature::AuthToken::new("12345");
    let options = Options { worker: None, sms: Some(config), ..Options::default() };
    let service = start_service(dir.path(), &slack, options).await;
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let send = |signature: &'static str| {
        reqwest::Client::new()
            .post(format!("http://{}/sms/twilio?foo=1&bar=2", service.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body)
            .send()
    };
    let signed = send("0/KCTR6DLpKmkAf8muzZqo1nDgQ=").await.unwrap();
    assert_eq!(signed.status(), 400, "signature accepted; a call's parameters are not a text message");
    assert_eq!(signed.text().await.unwrap(), "sms_fields");
    let forged = send("0/KCTR6DLpKmkAf8muzZqo1nDgQ_").await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn forged_missing_and_misaddressed_signatures_get_403_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let params = sms_params("SM00000000000000000000000000000001", ANA, "slept badly");
    // Missing.
    assert_eq!(post_sms(service.addr, &params, None).await.status(), 403);
    // Signed with another token.
    let body = serde_urlencoded::to_string(&params).unwrap();
    let other = wellbeing_webhook::sms::signature::compute(
        &wellbeing_webhook::sms::signature::AuthToken::new("not-the-token"),
        PUBLIC_URL,
        &params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
    );
    let forged = reqwest::Client::new()
        .post(format!("http://{}/sms/twilio", service.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", other)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Signed over the address the server sees, not the one Twilio was given.
    let local = format!("http://{}/sms/twilio", service.addr);
    assert_eq!(post_sms(service.addr, &params, Some(&local)).await.status(), 403);
    // A parameter changed after signing.
    let signature = twilio_sign(PUBLIC_URL, &params);
    let mut tampered = params.clone();
    tampered[5] = ("Body", "slept well");
    let response = reqwest::Client::new()
        .post(format!("http://{}/sms/twilio", service.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(serde_urlencoded::to_string(&tampered).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0, "nothing unverified is stored");
    // Signed over the public URL (the proxy's): accepted.
    let ok = post_sms(service.addr, &params, Some(PUBLIC_URL)).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("<Response/>"));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 1);
    twilio.wait_for(1, WAIT).await;
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_json_body_is_signed_through_body_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let body = json!({"MessageSid": "SM00000000000000000000000000000042", "From": ANA, "To": TWILIO_FROM, "Body": "ate lunch"})
        .to_string();
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let signed_url = format!("{PUBLIC_URL}?bodySHA256={hash}");
    let signature = twilio_sign(&signed_url, &[]);
    let send = |body: String, signature: String| {
        reqwest::Client::new()
            .post(format!("http://{}/sms/twilio?bodySHA256={hash}", service.addr))
            .header("content-type", "application/json")
            .header("x-twilio-signature", signature)
            .body(body)
            .send()
    };
    let tampered = body.replace("ate lunch", "ate dinner");
    assert_eq!(send(tampered, signature.clone()).await.unwrap().status(), 403, "another body under the signed hash");
    assert_eq!(send(body.clone(), "AAAA".into()).await.unwrap().status(), 403);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0);
    assert_eq!(send(body, signature).await.unwrap().status(), 200);
    wait_status(dir.path(), "sms:SM00000000000000000000000000000042", "done", WAIT).await;
    service.shutdown().await.unwrap();
}

/// A text from the person served: one inbox row however often Twilio delivers it, one reply by
/// the REST API with basic auth, To, From and Body, its SID recorded as the receipt.
#[tokio::test]
async fn a_text_is_stored_once_and_answered_by_twilio() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let sid = "SM00000000000000000000000000000007";
    let params = sms_params(sid, ANA, "slept 7 hours, feeling good");
    for _ in 0..3 {
        assert_eq!(post_sms(service.addr, &params, Some(PUBLIC_URL)).await.status(), 200);
    }
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 1, "one row for one MessageSid");
    let calls = twilio.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls_after = twilio.calls();
    assert_eq!(calls_after.len(), calls.len(), "no reply sent twice");
    let call = &calls[0];
    assert_eq!(call.path, format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"));
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}")));
    assert_eq!(call.authorization.as_deref(), Some(expected.as_str()));
    assert_eq!(call.form.get("To").map(String::as_str), Some(ANA));
    assert_eq!(call.form.get("From").map(String::as_str), Some(TWILIO_FROM));
    let text = call.form.get("Body").cloned().unwrap_or_default();
    assert!(!text.is_empty());
    let cost = wellbeing_webhook::sms::segments::count(&text);
    assert!(cost.segments <= wellbeing_webhook::sms::segments::MAX_SEGMENTS, "{cost:?}");
    assert!(!text.contains(['\u{2019}', '\u{201C}', '\u{2014}', '\u{2026}']), "typography made ASCII: {text}");
    let receipts = count(
        dir.path(),
        "SELECT COUNT(*) FROM deliveries WHERE key LIKE 'sms:%' AND status = 'posted' AND ts LIKE 'SM%'",
    );
    assert_eq!(receipts as usize, calls.len());
    // The person's history has it under their person id, by SMS.
    assert!(count(dir.path(), "SELECT COUNT(*) FROM interactions WHERE user_id = 'ana' AND channel = 'sms'") >= 1);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn help_is_answered_at_once_and_never_reaches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    for (i, word) in ["HELP", " info "].iter().enumerate() {
        let sid = format!("SM0000000000000000000000000000010{i}");
        let response = post_sms(service.addr, &sms_params(&sid, ANA, word), Some(PUBLIC_URL)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
        let twiml = response.text().await.unwrap();
        assert!(twiml.contains("<Message>") && twiml.contains("Reply STOP"), "{twiml}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for table in ["inbox", "interactions", "checkins", "deliveries"] {
        assert_eq!(count(dir.path(), &format!("SELECT COUNT(*) FROM {table}")), 0, "{table}");
    }
    assert!(twilio.calls().is_empty(), "HELP is answered in the TwiML, not by the REST API");
    service.shutdown().await.unwrap();
}

fn nudge(user: &str) -> OutgoingMessage {
    OutgoingMessage {
        user_id: user.into(),
        kind: SendKind::Nudge,
        goal: "water".into(),
        slot: "2026-05-08T15:00".into(),
        text: "Time for a glass of water?".into(),
        actions: Vec::new(),
    }
}

/// STOP is honoured before anything else: no reply, no nudge, no check-in goes to the number
/// until START, and the keyword itself is never stored as a message.
#[tokio::test]
async fn after_stop_nothing_is_sent_until_start() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let sms_persona = {
        let mut p = wellbeing_assistant::persona::default_persona("UTC");
        p.metadata.name = Some("texter".into());
        p.spec.check_ins.channel = wellbeing_crds::persona::Channel::Sms;
        p
    };
    service.state.engine.personas().upsert(sms_persona);

    let stop =
        post_sms(service.addr, &sms_params("SM00000000000000000000000000000201", ANA, "Stop"), Some(PUBLIC_URL)).await;
    assert_eq!(stop.status(), 200);
    assert!(!stop.text().await.unwrap().contains("<Message>"), "nothing of ours after STOP");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM sms_opt_outs"), 1);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0, "a keyword is not a message");

    // A text after STOP is handled (it is theirs to send) but not answered.
    let sid = "SM00000000000000000000000000000202";
    post_sms(service.addr, &sms_params(sid, ANA, "had lunch"), Some(PUBLIC_URL)).await;
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    // A nudge through the goals loop's delivery, routed by SMS (the persona's channel).
    let sms_outbound = service.state.sms.as_ref().unwrap().outbound.clone();
    let delivery = Delivery::new(service.state.engine.clone(), None).with_sms(Some(sms_outbound.clone()));
    assert_eq!(delivery.deliver(&nudge("ana")).await.unwrap(), Delivered::OptedOut);
    let identity: Identity = format!("sms:{ANA}").parse().unwrap();
    assert_eq!(sms_outbound.deliver(&identity, &nudge("ana")).await.unwrap(), Delivered::OptedOut);
    // A check-in prompt: skipped, and not recorded as asked.
    let (status, body) = trigger(service.addr, json!({"persona": "texter"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "skipped", "{body}");
    assert_eq!(body["reason"], "sms_opted_out", "{body}");
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM checkin_prompts"), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(twilio.calls().is_empty(), "nothing was sent after STOP: {:?}", twilio.calls());

    // START lifts it: the next nudge and check-in go out by SMS.
    post_sms(service.addr, &sms_params("SM00000000000000000000000000000203", ANA, "START"), Some(PUBLIC_URL)).await;
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM sms_opt_outs"), 0);
    match delivery.deliver(&nudge("ana")).await.unwrap() {
        Delivered::Sms { sid } => assert!(sid.starts_with("SM"), "{sid}"),
        other => panic!("{other:?}"),
    }
    // The same nudge again: not sent twice.
    assert!(matches!(delivery.deliver(&nudge("ana")).await.unwrap(), Delivered::Sms { .. }));
    let (status, body) = trigger(service.addr, json!({"persona": "texter"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "sent", "{body}");
    assert_eq!(body["channel"], "sms", "{body}");
    let calls = twilio.wait_for(2, WAIT).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].form["Body"], "Time for a glass of water?");
    assert!(calls.iter().all(|c| c.form["To"] == ANA));

    // A signed START captured and sent again after a later STOP does not lift it.
    let stop = sms_params("SM00000000000000000000000000000204", ANA, "STOP");
    assert_eq!(post_sms(service.addr, &stop, Some(PUBLIC_URL)).await.status(), 200);
    let replay = sms_params("SM00000000000000000000000000000203", ANA, "START");
    assert_eq!(post_sms(service.addr, &replay, Some(PUBLIC_URL)).await.status(), 200);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM sms_opt_outs"), 1, "still opted out");
    service.shutdown().await.unwrap();
}

async fn trigger(addr: std::net::SocketAddr, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/internal/checkins"))
        .bearer_auth(INTERNAL_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn someone_not_served_gets_the_refusal_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let sid = "SM00000000000000000000000000000301";
    post_sms(service.addr, &sms_params(sid, STRANGER, "hi, who is this? I feel awful"), Some(PUBLIC_URL)).await;
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    let calls = twilio.wait_for(1, WAIT).await;
    assert_eq!(calls[0].form["To"], STRANGER);
    assert_eq!(calls[0].form["Body"], NOT_SERVED_REPLY);
    for table in ["interactions", "checkins"] {
        assert_eq!(count(dir.path(), &format!("SELECT COUNT(*) FROM {table}")), 0, "{table}");
    }
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM identities WHERE address = '+4917099999999'"), 0);
    service.shutdown().await.unwrap();
}

/// 429 and 5xx are retried with the worker's backoff and sent once they pass; a 4xx is not
/// retried, and Twilio's "unsubscribed recipient" (21610) is remembered as an opt-out.
#[tokio::test]
async fn twilio_errors_are_retried_or_given_up_by_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    twilio.failures.lock().unwrap().extend([(429, 20429), (503, 20500)]);
    let sid = "SM00000000000000000000000000000401";
    post_sms(service.addr, &sms_params(sid, ANA, "went for a run"), Some(PUBLIC_URL)).await;
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    let calls = twilio.calls();
    assert!(calls.len() >= 3, "two refusals, then the replies: {calls:?}");
    assert_eq!(calls[0].form["Body"], calls[2].form["Body"], "the refused reply is sent once Twilio takes it");
    let posted =
        count(dir.path(), &format!("SELECT COUNT(*) FROM deliveries WHERE key = 'sms:{sid}' AND status = 'posted'"));
    assert_eq!(posted as usize, calls.len() - 2, "each reply sent once");

    let before = twilio.calls().len();
    twilio.failures.lock().unwrap().push((400, 21211));
    let sid = "SM00000000000000000000000000000402";
    post_sms(service.addr, &sms_params(sid, ANA, "drank water"), Some(PUBLIC_URL)).await;
    wait_status(dir.path(), &format!("sms:{sid}"), "failed", WAIT).await;
    assert_eq!(twilio.calls().len(), before + 1, "a 400 is not retried");
    let error: String = {
        let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
        store
            .conn()
            .query_row("SELECT last_error FROM inbox WHERE event_id = ?1", [format!("sms:{sid}")], |r| r.get(0))
            .unwrap()
    };
    assert!(error.contains("21211") && !error.contains("drank"), "{error}");

    twilio.failures.lock().unwrap().push((400, 21610));
    let sid = "SM00000000000000000000000000000403";
    post_sms(service.addr, &sms_params(sid, ANA, "slept well"), Some(PUBLIC_URL)).await;
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM sms_opt_outs WHERE source = 'twilio_21610'"), 1);
    service.shutdown().await.unwrap();
}

/// A reminder by SMS ends with "Reply DONE, SNOOZE or SKIP"; "done" answers it (counted once,
/// answered in the TwiML, nothing in the inbox); from someone not served the word is an ordinary
/// message and gets the refusal.
#[tokio::test]
async fn a_reminder_by_sms_is_answered_with_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let twilio = FakeTwilio::start().await;
    let service = start(dir.path(), &twilio, Some(PUBLIC_URL)).await;
    let mut persona = wellbeing_assistant::persona::default_persona("UTC");
    persona.metadata.name = Some("texter".into());
    persona.spec.check_ins.channel = wellbeing_crds::persona::Channel::Sms;
    service.state.engine.personas().upsert(persona);
    let sms_outbound = service.state.sms.as_ref().unwrap().outbound.clone();
    let delivery = Delivery::new(service.state.engine.clone(), None).with_sms(Some(sms_outbound));
    let slot = "2026-05-08T13:00";
    let reminder = OutgoingMessage {
        user_id: "ana".into(),
        kind: SendKind::Reminder,
        goal: "meals".into(),
        slot: slot.into(),
        text: "Time to eat something?".into(),
        actions: wellbeing_assistant::goals::actions::goal_actions("meals", slot),
    };
    assert!(matches!(delivery.deliver(&reminder).await.unwrap(), Delivered::Sms { .. }));
    let calls = twilio.wait_for(1, WAIT).await;
    assert_eq!(calls[0].form["Body"], "Time to eat something?\nReply DONE, SNOOZE or SKIP.");

    let done =
        post_sms(service.addr, &sms_params("SM00000000000000000000000000000501", ANA, "done"), Some(PUBLIC_URL)).await;
    assert_eq!(done.status(), 200);
    let twiml = done.text().await.unwrap();
    assert!(twiml.contains("<Message>Nice one, counted for today.</Message>"), "{twiml}");
    let again =
        post_sms(service.addr, &sms_params("SM00000000000000000000000000000502", ANA, "DONE"), Some(PUBLIC_URL)).await;
    assert!(again.text().await.unwrap().contains("Already counted."));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM goal_logs WHERE user_id = 'ana' AND goal = 'meals'"), 1);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM inbox"), 0, "an answered word is not a message");

    let sid = "SM00000000000000000000000000000503";
    let stranger = post_sms(service.addr, &sms_params(sid, STRANGER, "done"), Some(PUBLIC_URL)).await;
    assert!(!stranger.text().await.unwrap().contains("<Message>"));
    wait_status(dir.path(), &format!("sms:{sid}"), "done", WAIT).await;
    let calls = twilio.wait_for(2, WAIT).await;
    assert_eq!(calls[1].form["To"], STRANGER);
    assert_eq!(calls[1].form["Body"], NOT_SERVED_REPLY);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM goal_logs"), 1);
    service.shutdown().await.unwrap();
}
