//! The conversation engine end to end, against a real SQLite file and (where an LLM is
//! configured) a local OpenAI-compatible server: message -> check-in row -> one follow-up ->
//! merged answer, idempotency, crisis vs hyperbole, redaction, prompts, export and forget.

mod llm_fake;

use std::time::Duration;

use chrono::{DateTime, Utc};
use llm_fake::{FakeLlm, Reply, checkin_json, is_extraction, last_user_text};
use serde_json::{Value, json};
use wellbeing_assistant::Store;
use wellbeing_assistant::checkin::{Exercise, Hunger, Level, SleepQuality};
use wellbeing_assistant::engine::{
    Assistant, AssistantConfig, Channel, IncomingMessage, OutgoingKind, REDACTION_NOTICE, SentPrompt,
};
use wellbeing_assistant::llm::{LlmClient, LlmConfig};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};
use wellbeing_crds::persona::RequiredField;

const MODEL: &str = "fake-model-1";

struct Env {
    assistant: Assistant,
    _dir: tempfile::TempDir,
}

fn registry(tone: &str, required: Vec<RequiredField>) -> PersonaRegistry {
    let registry = PersonaRegistry::new(default_persona("UTC"));
    let mut coach = default_persona("Europe/Berlin");
    coach.metadata.name = Some("coach".to_string());
    coach.metadata.namespace = Some("wellbeing".to_string());
    coach.metadata.generation = Some(3);
    coach.spec.display_name = "Coach".to_string();
    coach.spec.system_prompt = "You are Coach, upbeat and practical.".to_string();
    coach.spec.tone = tone.to_string();
    coach.spec.required_fields = required;
    coach.spec.check_ins.prompts = vec!["Coach here: how's it going?".to_string()];
    registry.upsert(coach);
    registry
}

fn setup(llm: Option<&FakeLlm>) -> Env {
    env_with(llm, registry("warm", vec![RequiredField::Energy, RequiredField::Sleep, RequiredField::Exercise]))
}

fn env_with(llm: Option<&FakeLlm>, personas: PersonaRegistry) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let llm = llm.map(|fake| {
        let mut config = LlmConfig::new(&fake.base_url, MODEL);
        config.timeout = Duration::from_secs(5);
        LlmClient::new(config).unwrap()
    });
    Env { assistant: Assistant::new(store, personas, llm, AssistantConfig::default()), _dir: dir }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn msg(event: &str, user: &str, text: &str, thread: Option<&str>, when: &str) -> IncomingMessage {
    IncomingMessage {
        event_id: event.to_string(),
        user_id: user.to_string(),
        channel: Channel::Slack,
        text: text.to_string(),
        thread_ref: thread.map(str::to_string),
        received_at: at(when),
    }
}

fn count(a: &Assistant, sql: &str) -> i64 {
    a.store().conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn kinds(outcome: &wellbeing_assistant::engine::Outcome) -> Vec<OutgoingKind> {
    outcome.replies.iter().map(|r| r.kind).collect()
}

/// A model that understands the few messages these tests send, and writes replies.
async fn scripted_llm() -> FakeLlm {
    FakeLlm::start(MODEL, |req, _| {
        if !is_extraction(req) {
            return Reply::Content("That sounds like a draining morning. Be kind to yourself today.".to_string());
        }
        let text = last_user_text(req).to_lowercase();
        let c = if text.contains("drained") {
            json!({"mood": "drained", "valence": "negative", "energy": "low", "hunger": "hungry",
                   "sleep_quality": "poor", "meals": [{"meal": "meal", "status": "skipped"}],
                   "pillars": ["nutrition", "sleep"]})
        } else if text.contains("yoga") {
            json!({"exercise": "planned", "activity": "yoga", "energy": "high", "pillars": ["physical-activity"]})
        } else if text.contains("yesterday") {
            json!({"exercise": "done", "activity": "run", "day_offset": -1})
        } else if text.contains("vanish") {
            json!({"crisis": true})
        } else if text.contains("slept") {
            json!({"sleep_quality": "poor", "stress": "high"})
        } else {
            json!({})
        };
        Reply::Content(checkin_json(c))
    })
    .await
}

#[tokio::test]
async fn a_message_becomes_a_checkin_with_one_follow_up_and_the_answer_is_merged() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let user = "slack:T1:U1";

    let first = a
        .handle_message(msg(
            "Ev1",
            user,
            "Kinda drained. Haven't eaten yet and didn't sleep much.",
            Some("1700.1"),
            "2026-03-02T08:00:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(kinds(&first), vec![OutgoingKind::Disclaimer, OutgoingKind::Reply, OutgoingKind::FollowUp]);
    assert!(first.replies.iter().all(|r| r.thread_ref.as_deref() == Some("1700.1")), "everything in the thread");
    assert!(first.replies[0].text.contains("not a substitute for professional care"));
    assert_eq!(first.replies[1].text, "That sounds like a draining morning. Be kind to yourself today.");
    assert!(first.replies[2].text.contains("exercise"), "{}", first.replies[2].text);
    assert!(first.followup_asked && !first.merged && !first.crisis);
    assert_eq!(first.extractor.as_deref(), Some("llm"));
    let id = first.checkin_id.unwrap();
    let c = first.checkin.as_ref().unwrap();
    assert_eq!((c.energy, c.hunger, c.sleep_quality), (Level::Low, Hunger::Hungry, SleepQuality::Poor));
    assert_eq!(c.missing, vec!["exercise".to_string()]);

    // The row records extractor, model, persona and the local date in the persona's zone.
    let (extractor, model, persona, version, local_date): (String, String, String, String, String) = a
        .store()
        .conn()
        .query_row(
            "SELECT extractor, model, persona_name, persona_version, local_date FROM checkins WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((extractor.as_str(), model.as_str(), persona.as_str()), ("llm", MODEL, "coach"));
    assert!(version.starts_with("3-"), "{version}");
    assert_eq!(local_date, "2026-03-02");
    assert_eq!(count(a, "SELECT COUNT(*) FROM persona_versions"), 1);

    // The answer in the thread is merged into the same check-in; no second follow-up.
    let second = a
        .handle_message(msg("Ev2", user, "Probably yoga tonight", Some("1700.1"), "2026-03-02T08:05:00Z"))
        .await
        .unwrap();
    assert_eq!(kinds(&second), vec![OutgoingKind::Reply]);
    assert!(second.merged && !second.followup_asked);
    assert_eq!(second.checkin_id, Some(id));
    let merged = second.checkin.unwrap();
    assert_eq!(merged.exercise, Exercise::Planned);
    assert_eq!(merged.energy, Level::Low, "a known value is not overwritten by the answer");
    assert!(merged.missing.is_empty());
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins"), 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM followups"), 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM followups WHERE answered_at IS NOT NULL"), 1);
    let stored = a.checkins_since(Some(user), at("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].checkin.exercise, Exercise::Planned);

    // A later message is a new check-in, which may get its own (single) follow-up.
    let third =
        a.handle_message(msg("Ev3", user, "Slept badly again", Some("1800.1"), "2026-03-02T15:00:00Z")).await.unwrap();
    assert_ne!(third.checkin_id, Some(id));
    assert!(!third.merged);
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins"), 2);
    assert_eq!(count(a, "SELECT COUNT(*) FROM followups"), 2);
    assert_eq!(count(a, "SELECT MAX(n) FROM (SELECT COUNT(*) n FROM followups GROUP BY checkin_id)"), 1);
}

#[tokio::test]
async fn an_answer_outside_the_thread_within_two_hours_still_merges() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let first = a.handle_message(msg("E1", "u", "so drained", None, "2026-03-02T08:00:00Z")).await.unwrap();
    assert!(first.followup_asked);
    let answer = a.handle_message(msg("E2", "u", "yoga later", None, "2026-03-02T09:30:00Z")).await.unwrap();
    assert!(answer.merged);
    assert_eq!(answer.checkin_id, first.checkin_id);
    // Past the window, a message starts a new check-in.
    let fake2 = scripted_llm().await;
    let env2 = setup(Some(&fake2));
    let b = &env2.assistant;
    b.handle_message(msg("E1", "u", "so drained", None, "2026-03-02T08:00:00Z")).await.unwrap();
    let late = b.handle_message(msg("E2", "u", "yoga later", None, "2026-03-02T10:30:00Z")).await.unwrap();
    assert!(!late.merged);
    assert_eq!(count(b, "SELECT COUNT(*) FROM checkins"), 2);
}

#[tokio::test]
async fn without_an_llm_the_offline_extractor_and_tone_templates_answer() {
    let env = setup(None);
    let a = &env.assistant;
    let out = a
        .handle_message(msg(
            "E1",
            "local:me",
            "Kinda drained. Haven't eaten yet and didn't sleep much.",
            None,
            "2026-03-02T08:00:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(out.extractor.as_deref(), Some("offline"));
    let reply = out.replies.iter().find(|r| r.kind == OutgoingKind::Reply).unwrap();
    assert!(reply.text.starts_with("Thanks for checking in. Sounds like you're"), "{}", reply.text);
    let model: Option<String> = a.store().conn().query_row("SELECT model FROM checkins", [], |r| r.get(0)).unwrap();
    assert_eq!(model, None);

    // Another persona tone, another register.
    let direct = env_with(None, registry("direct, no-nonsense", vec![RequiredField::Exercise]));
    let out = direct
        .assistant
        .handle_message(msg("E1", "local:me", "slept badly and I'm stressed", None, "2026-03-02T08:00:00Z"))
        .await
        .unwrap();
    let reply = out.replies.iter().find(|r| r.kind == OutgoingKind::Reply).unwrap();
    assert!(reply.text.starts_with("Noted."), "{}", reply.text);
}

#[tokio::test]
async fn a_failing_reply_model_falls_back_to_the_template() {
    let fake = FakeLlm::start(MODEL, |req, _| {
        if is_extraction(req) {
            Reply::Content(checkin_json(json!({"energy": "low", "sleep_quality": "poor"})))
        } else {
            Reply::Status(500, "reply model down".into())
        }
    })
    .await;
    let env = setup(Some(&fake));
    let out = env.assistant.handle_message(msg("E1", "u", "meh", None, "2026-03-02T08:00:00Z")).await.unwrap();
    assert_eq!(out.extractor.as_deref(), Some("llm"));
    let reply = out.replies.iter().find(|r| r.kind == OutgoingKind::Reply).unwrap();
    // The model said nothing about mood; the message's own "meh" fills it (per-field fallback).
    assert!(reply.text.contains("Sounds like you're feeling meh, tired and slept badly"), "{}", reply.text);
}

#[tokio::test]
async fn the_same_event_twice_is_handled_once() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let m = msg("Ev-dup", "u", "drained and hungry", Some("t1"), "2026-03-02T08:00:00Z");
    let first = a.handle_message(m.clone()).await.unwrap();
    let tables = ["interactions", "checkins", "followups", "people"];
    let before: Vec<i64> = tables.iter().map(|t| count(a, &format!("SELECT COUNT(*) FROM {t}"))).collect();
    let requests = fake.count();

    let again = a.handle_message(m.clone()).await.unwrap();
    assert!(again.replayed && !first.replayed);
    assert_eq!(again.replies, first.replies);
    assert_eq!(again.checkin_id, first.checkin_id);
    assert_eq!(again.checkin, first.checkin);
    let after: Vec<i64> = tables.iter().map(|t| count(a, &format!("SELECT COUNT(*) FROM {t}"))).collect();
    assert_eq!(before, after, "nothing written twice");
    assert_eq!(fake.count(), requests, "a replay does not call the LLM");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_write_once() {
    // Slow extraction so both deliveries are past the replay check before either commits.
    let fake = FakeLlm::start(MODEL, |req, _| {
        let body = if is_extraction(req) { checkin_json(json!({"energy": "low"})) } else { "ok".to_string() };
        Reply::After(Duration::from_millis(200), Box::new(Reply::Content(body)))
    })
    .await;
    let env = setup(Some(&fake));
    let m = msg("Ev-race", "u", "tired", None, "2026-03-02T08:00:00Z");
    let (x, y) = tokio::join!(env.assistant.handle_message(m.clone()), env.assistant.handle_message(m.clone()));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_ne!(x.replayed, y.replayed, "exactly one of them wrote");
    assert_eq!(x.replies, y.replies);
    let a = &env.assistant;
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins"), 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE direction = 'in'"), 1);
}

#[tokio::test]
async fn crisis_language_gets_only_the_crisis_reply_and_is_flagged() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let out = a
        .handle_message(msg(
            "E1",
            "u",
            "honestly I just want to disappear. no reason to live",
            Some("t"),
            "2026-03-02T08:00:00Z",
        ))
        .await
        .unwrap();
    assert!(out.crisis);
    assert_eq!(kinds(&out), vec![OutgoingKind::Crisis], "no disclaimer, follow-up or coaching alongside");
    assert!(out.replies[0].text.contains("findahelpline.com"));
    assert!(out.replies[0].text.contains("988"));
    assert_eq!(out.checkin_id, None);
    assert_eq!(fake.count(), 0, "decided before any LLM call");
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE direction = 'in' AND flagged = 1"), 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE kind = 'crisis' AND flagged = 1"), 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins"), 0);
    assert_eq!(count(a, "SELECT COUNT(*) FROM followups"), 0);

    // Hyperbole is an ordinary check-in.
    let out = a
        .handle_message(msg("E2", "u", "this deadline is killing me, slept badly", None, "2026-03-02T09:00:00Z"))
        .await
        .unwrap();
    assert!(!out.crisis);
    assert!(out.checkin_id.is_some());
    assert!(!kinds(&out).contains(&OutgoingKind::Crisis));
}

#[tokio::test]
async fn the_model_can_flag_a_crisis_the_phrase_list_missed() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let out = env
        .assistant
        .handle_message(msg("E1", "u", "I'd like to vanish for good", None, "2026-03-02T08:00:00Z"))
        .await
        .unwrap();
    assert!(out.crisis);
    assert_eq!(kinds(&out), vec![OutgoingKind::Crisis]);
    assert_eq!(count(&env.assistant, "SELECT COUNT(*) FROM checkins"), 0);
}

#[tokio::test]
async fn crisis_resources_come_from_the_persona() {
    let personas = registry("warm", vec![]);
    let mut coach = personas.active().persona.as_ref().clone();
    coach.spec.crisis_resources = vec!["Deutschland: TelefonSeelsorge 0800 111 0 111".to_string()];
    personas.upsert(coach);
    let env = env_with(None, personas);
    let out = env
        .assistant
        .handle_message(msg("E1", "u", "I keep thinking about ending my life", None, "2026-03-02T08:00:00Z"))
        .await
        .unwrap();
    assert!(out.replies[0].text.contains("TelefonSeelsorge"));
    assert!(!out.replies[0].text.contains("988"));
}

#[tokio::test]
async fn credentials_are_redacted_before_storage_and_before_the_llm() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let token = format!("xoxb-{}-{}", "2024061512", "Qw3rTy7UiOp9AsDfGhJk");
    let text = format!("slept badly. btw here's the bot token {token} for the hydration plugin");
    let out = a.handle_message(msg("E1", "u", &text, None, "2026-03-02T08:00:00Z")).await.unwrap();
    assert!(out.redacted);
    let notice = out.replies.iter().find(|r| r.kind == OutgoingKind::Notice).expect("the user is told");
    assert_eq!(notice.text, REDACTION_NOTICE);
    assert!(notice.text.contains("wellbeing secrets resolve"));
    assert!(out.checkin_id.is_some(), "the rest of the message is still a check-in");

    assert!(fake.count() >= 1);
    for seen in fake.requests() {
        assert!(!seen.body.contains(&token), "the LLM saw the token");
        assert!(!seen.body.contains("Qw3rTy7UiOp9AsDfGhJk"));
    }
    let stored: String =
        a.store().conn().query_row("SELECT text FROM interactions WHERE direction = 'in'", [], |r| r.get(0)).unwrap();
    assert!(stored.contains("[REDACTED]") && !stored.contains(&token), "{stored}");
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE direction = 'in' AND redacted = 1"), 1);
    let export = a.export_user(None).unwrap().to_string();
    assert!(!export.contains("Qw3rTy7UiOp9AsDfGhJk"), "nothing anywhere in the database holds it");
}

#[tokio::test]
async fn the_disclaimer_is_shown_on_first_contact_only_and_in_help() {
    let env = setup(None);
    let a = &env.assistant;
    let first = a.handle_message(msg("E1", "u", "slept well", None, "2026-03-02T08:00:00Z")).await.unwrap();
    assert_eq!(first.replies[0].kind, OutgoingKind::Disclaimer);
    let second = a.handle_message(msg("E2", "u", "ran 5k", None, "2026-03-02T18:00:00Z")).await.unwrap();
    assert!(!kinds(&second).contains(&OutgoingKind::Disclaimer));
    let other = a.handle_message(msg("E3", "v", "ran 5k", None, "2026-03-02T18:00:00Z")).await.unwrap();
    assert_eq!(other.replies[0].kind, OutgoingKind::Disclaimer, "per user");
    let help = a.help_text();
    assert!(help.contains("not a substitute for professional care"));
    assert!(help.contains("/wellbeing forget") && help.contains("/checkin"));
    assert!(help.contains("Coach"));
}

#[tokio::test]
async fn a_message_with_nothing_to_log_creates_no_checkin() {
    let env = setup(None);
    let out = env.assistant.handle_message(msg("E1", "u", "thanks!", None, "2026-03-02T08:00:00Z")).await.unwrap();
    assert_eq!(out.checkin_id, None);
    assert!(!out.followup_asked);
    assert_eq!(out.replies.last().unwrap().kind, OutgoingKind::Reply);
    assert_eq!(count(&env.assistant, "SELECT COUNT(*) FROM checkins"), 0);
    assert_eq!(count(&env.assistant, "SELECT COUNT(*) FROM interactions WHERE direction = 'in'"), 1);
}

#[tokio::test]
async fn yesterday_is_backfilled_in_the_persona_time_zone() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    // 00:30 UTC is 01:30 in Berlin on 2026-03-02; the run was on 2026-03-01.
    let out = env
        .assistant
        .handle_message(msg("E1", "u", "went for a run yesterday", None, "2026-03-02T00:30:00Z"))
        .await
        .unwrap();
    let stored = env.assistant.checkins_since(Some("u"), at("2026-01-01T00:00:00Z")).unwrap();
    assert_eq!(stored[0].id, out.checkin_id.unwrap());
    assert_eq!(stored[0].local_date.to_string(), "2026-03-01");
}

#[tokio::test]
async fn check_in_prompts_are_recorded_once_per_slot_and_replies_link_to_them() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    let slot = Some(at("2026-03-02T09:17:00Z"));
    let SentPrompt::New(prompt) = a.record_checkin_prompt("u", Channel::Slack, slot).unwrap() else {
        panic!("first record is new")
    };
    assert_eq!(prompt.text, "Coach here: how's it going?");
    assert!(!prompt.delivered());
    let again = a.record_checkin_prompt("u", Channel::Slack, slot).unwrap();
    let SentPrompt::AlreadySent(same) = &again else { panic!("{again:?}") };
    assert_eq!(same.id, prompt.id);
    assert!(!same.delivered(), "not delivered yet: the caller sends it again");
    a.mark_prompt_delivered(prompt.id, Some("D123".into()), Some("1711.5".into())).unwrap();
    assert!(a.record_checkin_prompt("u", Channel::Slack, slot).unwrap().prompt().delivered());
    assert!(a.mark_prompt_delivered(999, None, None).is_err());
    // Unscheduled prompts (manual triggers) are always new.
    assert!(matches!(a.record_checkin_prompt("u", Channel::Slack, None).unwrap(), SentPrompt::New(_)));

    let out = a.handle_message(msg("E1", "u", "drained", Some("1711.5"), "2026-03-02T09:20:00Z")).await.unwrap();
    let stored = a.checkins_since(Some("u"), at("2026-03-01T00:00:00Z")).unwrap();
    assert_eq!(stored[0].id, out.checkin_id.unwrap());
    assert_eq!(stored[0].prompt_id, Some(prompt.id), "linked by thread");
    assert_eq!(
        count(a, &format!("SELECT COUNT(*) FROM checkin_prompts WHERE id = {} AND answered_at IS NOT NULL", prompt.id)),
        1
    );
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE kind = 'checkin_prompt'"), 2);
}

#[tokio::test]
async fn export_holds_everything_about_one_user_and_forget_deletes_it() {
    let fake = scripted_llm().await;
    let env = setup(Some(&fake));
    let a = &env.assistant;
    for (event, user, text) in [("E1", "alice", "drained"), ("E2", "alice", "yoga later"), ("E3", "bob", "drained")] {
        a.handle_message(msg(event, user, text, None, "2026-03-02T08:00:00Z")).await.unwrap();
    }
    a.record_checkin_prompt("alice", Channel::Slack, Some(at("2026-03-02T12:00:00Z"))).unwrap();

    let export = a.export_user(Some("alice")).unwrap();
    assert_eq!(export["user_id"], "alice");
    let tables = export["tables"].as_object().unwrap();
    assert_eq!(export["people"][0]["person_id"], "alice", "{}", export["people"]);
    assert_eq!(export["people"].as_array().unwrap().len(), 1, "only alice: {}", export["people"]);
    for table in ["interactions", "checkins", "followups", "checkin_prompts"] {
        let rows = tables[table].as_array().unwrap_or_else(|| panic!("{table} missing"));
        assert!(!rows.is_empty(), "{table} empty");
        assert!(rows.iter().all(|r| r["user_id"] == "alice"), "{table} has another user's rows");
    }
    let checkin = &tables["checkins"][0];
    assert_eq!(checkin["data"]["exercise"], "planned", "check-in data is embedded as JSON");
    assert_eq!(export["persona_versions"][0]["name"], "coach");
    assert!(!export.to_string().contains("bob"));

    let report = a.forget_user(Some("alice")).unwrap();
    assert_eq!(report.deleted["checkins"], 1);
    assert!(report.deleted["interactions"] >= 4);
    let after = a.export_user(Some("alice")).unwrap();
    for (table, rows) in after["tables"].as_object().unwrap() {
        assert_eq!(rows, &Value::Array(vec![]), "{table} still holds alice's rows");
    }
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins WHERE user_id = 'bob'"), 1, "bob is untouched");
    assert_eq!(count(a, "SELECT disclaimer_shown FROM people WHERE person_id = 'alice'"), 0);

    // After forgetting, alice is a new user again: the disclaimer comes back.
    let out = a.handle_message(msg("E9", "alice", "drained", None, "2026-03-03T08:00:00Z")).await.unwrap();
    assert_eq!(out.replies[0].kind, OutgoingKind::Disclaimer);

    // None: everyone (the single-user local mode).
    let report = a.forget_user(None).unwrap();
    assert!(report.total() > 0);
    assert_eq!(count(a, "SELECT COUNT(*) FROM checkins"), 0);
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions"), 0);
}

#[tokio::test]
async fn two_active_personas_fall_back_to_the_default_voice() {
    let personas = registry("playful", vec![]);
    let mut second = personas.active().persona.as_ref().clone();
    second.metadata.name = Some("buddy".to_string());
    personas.upsert(second);
    assert!(personas.active().is_default());
    let env = env_with(None, personas);
    env.assistant.handle_message(msg("E1", "u", "slept well", None, "2026-03-02T08:00:00Z")).await.unwrap();
    let persona: String =
        env.assistant.store().conn().query_row("SELECT persona_name FROM checkins", [], |r| r.get(0)).unwrap();
    assert_eq!(persona, "builtin-default");
}

#[tokio::test]
async fn without_an_llm_hyperbole_is_a_check_in_and_crisis_language_is_not() {
    let env = setup(None);
    let a = &env.assistant;
    for (i, text) in [
        "this deadline is killing me, slept badly",
        "I could kill for a coffee, so tired",
        "killed it at the gym today",
        "dying to see the new movie tonight, feeling great",
    ]
    .iter()
    .enumerate()
    {
        let out = a.handle_message(msg(&format!("H{i}"), "u", text, None, "2026-03-02T08:00:00Z")).await.unwrap();
        assert!(!out.crisis, "{text}");
        assert!(out.checkin_id.is_some(), "{text}");
    }
    for (i, text) in
        ["I want to end it all", "I've been hurting myself again", "there's no reason to live"].iter().enumerate()
    {
        let out = a.handle_message(msg(&format!("C{i}"), "u", text, None, "2026-03-02T09:00:00Z")).await.unwrap();
        assert!(out.crisis, "{text}");
        assert_eq!(kinds(&out), vec![OutgoingKind::Crisis]);
    }
    assert_eq!(count(a, "SELECT COUNT(*) FROM interactions WHERE direction = 'in' AND flagged = 1"), 3);
}

/// A person's inbox rows carry the identity they wrote from, not their person id: forgetting the
/// person deletes those too (the raw text waits there until it is pruned).
#[tokio::test]
async fn forget_reaches_rows_keyed_by_the_persons_identities() {
    let env = setup(None);
    let a = &env.assistant;
    let people = wellbeing_assistant::people::parse_people("ana=slack:T1:U1").unwrap();
    wellbeing_assistant::people::enrol(&mut a.store().conn(), &people, "2026-03-02T08:00:00Z").unwrap();
    a.handle_message(msg("Ev-ana", "ana", "slept badly", None, "2026-03-02T08:00:00Z")).await.unwrap();
    a.store()
        .conn()
        .execute(
            "INSERT INTO inbox (event_id, source, user_id, payload, received_at)
             VALUES ('Ev-ana', 'slack_event', 'slack:T1:U1', '{}', '2026-03-02T08:00:00Z'),
                    ('Ev-bo', 'slack_event', 'slack:T1:U2', '{}', '2026-03-02T08:00:00Z')",
            [],
        )
        .unwrap();
    let export = a.export_user(Some("ana")).unwrap();
    assert_eq!(export["tables"]["inbox"].as_array().unwrap().len(), 1, "{}", export["tables"]["inbox"]);
    let report = a.forget_user(Some("ana")).unwrap();
    assert_eq!(report.deleted["inbox"], 1);
    assert!(report.deleted["interactions"] >= 1);
    assert_eq!(count(a, "SELECT COUNT(*) FROM inbox"), 1, "someone else's row stays");
    assert_eq!(count(a, "SELECT COUNT(*) FROM people WHERE person_id = 'ana'"), 1, "ana is still served");
}
