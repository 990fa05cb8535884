//! The cluster side of goals: the service's goals loop against a fake Slack Web API (the
//! reminder's chat.postMessage carries its Block Kit buttons) and a mocked Kubernetes API server
//! (Goals listed, `status.progress` applied with field manager `wellbeing-assistant` only when it
//! changed, a learned pillar's Goal created when "Yes" is pressed in Slack).

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use http::{Method, Request, Response};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wellbeing_assistant::goals::{GoalsConfig, actions, pillars};
use wellbeing_crds::{Goal, Persona, SecretRequirement};
use wellbeing_webhook::auth::{AllowedCallers, DEFAULT_AUDIENCE, InternalAuth};
use wellbeing_webhook::config::SlackConfig;
use wellbeing_webhook::db::Db;
use wellbeing_webhook::goals_loop::{GoalsLoop, Known};
use wellbeing_webhook::metrics::Metrics;
use wellbeing_webhook::nudges::{ClusterGoals, Delivery, LearnedGoals};
use wellbeing_webhook::server::{ServerConfig, start};
use wellbeing_webhook::slack::client::{BotToken, SlackClient};
use wellbeing_webhook::slack::outbound::SlackOutbound;
use wellbeing_webhook::slack::signature::SigningSecret;

const USER: &str = "slack:T1:U1";
const NS: &str = "wellbeing";
const WAIT: Duration = Duration::from_secs(10);

/// One request the fake API server answered.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// A Kubernetes API server behind `tower_test::mock`, keeping Goals and SecretRequirements the
/// way the real one does for the calls the assistant makes.
#[derive(Default)]
struct ApiServer {
    seen: Mutex<Vec<Seen>>,
    goals: Mutex<Vec<Goal>>,
    requirements: Vec<SecretRequirement>,
}

impl ApiServer {
    fn seen(&self, method: Method, path_suffix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path.ends_with(path_suffix))
            .cloned()
            .collect()
    }

    fn answer(&self, method: &Method, path: &str, body: &Value) -> (u16, Value) {
        let base = format!("/apis/wellbeing.dev/v1alpha1/namespaces/{NS}");
        let list = |kind: &str, items: Value| json!({"apiVersion": "wellbeing.dev/v1alpha1", "kind": kind, "metadata": {"resourceVersion": "7"}, "items": items});
        match (method.clone(), path.strip_prefix(&base)) {
            (Method::GET, Some("/goals")) => (200, list("GoalList", json!(*self.goals.lock().unwrap()))),
            (Method::GET, Some("/secretrequirements")) => {
                (200, list("SecretRequirementList", json!(self.requirements)))
            }
            (Method::PATCH, Some(rest)) if rest.starts_with("/goals/") && rest.ends_with("/status") => {
                let name = &rest["/goals/".len()..rest.len() - "/status".len()];
                let mut goals = self.goals.lock().unwrap();
                let Some(goal) = goals.iter_mut().find(|g| g.metadata.name.as_deref() == Some(name)) else {
                    return (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}));
                };
                let progress = serde_json::from_value(body["status"]["progress"].clone()).unwrap();
                goal.status.get_or_insert_with(Default::default).progress = Some(progress);
                (200, json!(goal))
            }
            (Method::POST, Some("/goals")) => (201, body.clone()),
            _ => (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})),
        }
    }
}

fn fake_apiserver(goals: Vec<Goal>, requirements: Vec<SecretRequirement>) -> (kube::Client, Arc<ApiServer>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = Arc::new(ApiServer { goals: Mutex::new(goals), requirements, ..Default::default() });
    let s = server.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_string();
            let query = parts.uri.query().unwrap_or_default().to_string();
            let (status, answer) = s.answer(&parts.method, &path, &body);
            s.seen.lock().unwrap().push(Seen { method: parts.method, path, query, body });
            let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap()));
            send.send_response(response.unwrap());
        }
    });
    (kube::Client::new(service, NS), server)
}

fn persona() -> Persona {
    let spec = serde_json::from_value(json!({
        "displayName": "Sunny",
        "active": true,
        "checkIns": {"timeZone": "UTC", "windows": [{"start": "09:00", "end": "21:00"}], "perDay": 1, "minGapMinutes": 60}
    }))
    .unwrap();
    let mut p = Persona::new("coach", spec);
    p.metadata.namespace = Some(NS.into());
    p.metadata.uid = Some("uid-coach".into());
    p
}

fn meals_goal() -> Goal {
    let spec = serde_json::from_value(json!({
        "description": "Eat three meals",
        "pillar": "nutrition",
        "metric": "meal",
        "target": {"count": 3, "per": "day"},
        "reminders": [{"at": "13:00"}]
    }))
    .unwrap();
    let mut g = Goal::new("meals", spec);
    g.metadata.namespace = Some(NS.into());
    g
}

fn requirement(id: &str, phase: &str) -> SecretRequirement {
    serde_json::from_value(json!({
        "apiVersion": "wellbeing.dev/v1alpha1", "kind": "SecretRequirement",
        "metadata": {"name": id, "namespace": NS},
        "spec": {"secretId": id},
        "status": {"phase": phase}
    }))
    .unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The loop as `wellbeing webhook` builds it, on a temporary database with one Slack user.
fn goals_loop(dir: &std::path::Path, slack: &FakeSlack, client: kube::Client, clock: DateTime<Utc>) -> GoalsLoop {
    let lp = goals_loop_on(dir, slack, client, clock);
    lp.engine
        .store()
        .conn()
        .execute("INSERT INTO people (person_id, created_at) VALUES (?1, '2026-05-01T00:00:00Z')", [USER])
        .unwrap();
    lp
}

/// The loop on the database in `dir` as it is (a restarted process).
fn goals_loop_on(dir: &std::path::Path, slack: &FakeSlack, client: kube::Client, clock: DateTime<Utc>) -> GoalsLoop {
    let engine = engine(dir, None);
    engine.personas().replace_all(vec![persona()]);
    let client_slack = SlackClient::new(slack.api_base(), BotToken::new(BOT_TOKEN), Metrics::new());
    GoalsLoop {
        delivery: Delivery::new(
            engine.clone(),
            Some(Arc::new(SlackOutbound::new(Db::open(engine.store()).unwrap(), client_slack))),
        ),
        engine,
        source: Arc::new(ClusterGoals { client, namespace: NS.into() }),
        config: GoalsConfig::default(),
        progress_user: Some(USER.into()),
        known: Arc::new(RwLock::new(Known::default())),
        clock: Arc::new(move || clock),
        poll_every: Duration::from_millis(20),
        personas_synced: Arc::new(AtomicBool::new(true)),
    }
}

#[tokio::test]
async fn a_reminder_goes_to_slack_with_its_buttons_and_progress_is_applied_only_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let reqs = vec![requirement("openweather-api-key", "Missing"), requirement("calendar-token", "Present")];
    let (client, api) = fake_apiserver(vec![meals_goal()], reqs);
    let lp = goals_loop(dir.path(), &slack, client, t("2026-05-08T13:00:00Z"));

    let report = lp.tick(t("2026-05-08T13:00:00Z")).await;
    assert_eq!((report.due, report.delivered, report.progress_written), (1, 1, 1), "{report:?}");

    // Slack: the DM opened for the member, the reminder posted with Done / Snooze / Skip.
    assert_eq!(slack.calls("conversations.open")[0].body["users"], "U1");
    let posts = slack.calls("chat.postMessage");
    assert_eq!(posts.len(), 1);
    let post = &posts[0].body;
    assert_eq!(post["channel"], "D-U1");
    assert_eq!(post["text"], "No meal logged yet today. Time for something to eat?");
    let ids: Vec<&str> =
        post["blocks"][1]["elements"].as_array().unwrap().iter().map(|b| b["action_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [actions::GOAL_DONE, actions::GOAL_SNOOZE, actions::GOAL_SKIP]);
    assert_eq!(post["blocks"][1]["elements"][0]["value"], "meals|2026-05-08T13:00");
    assert_eq!(post["metadata"]["event_type"], "wellbeing_delivery");

    // The API server: status.progress applied by the assistant's field manager, nothing else.
    let patches = api.seen(Method::PATCH, "/goals/meals/status");
    assert_eq!(patches.len(), 1);
    assert!(patches[0].query.contains("fieldManager=wellbeing-assistant"), "{}", patches[0].query);
    assert!(patches[0].query.contains("force=true"), "{}", patches[0].query);
    let progress = &patches[0].body["status"]["progress"];
    assert_eq!((progress["current"].as_i64(), progress["target"].as_i64()), (Some(0), Some(3)), "{progress}");
    assert_eq!(progress["periodStart"], "2026-05-08");
    assert!(patches[0].body.get("spec").is_none(), "the assistant applies status.progress only");
    assert_eq!(lp.known.read().unwrap().missing_secrets, ["openweather-api-key"]);

    // A minute later: nothing new to send, and the stored progress is current, so no patch.
    let report = lp.tick(t("2026-05-08T13:01:00Z")).await;
    assert_eq!((report.due, report.progress_written), (0, 0), "{report:?}");
    assert_eq!(slack.calls("chat.postMessage").len(), 1);
    assert_eq!(api.seen(Method::PATCH, "/status").len(), 1);
    assert_eq!(api.seen(Method::GET, "/goals").len(), 2, "the goals are listed at every tick");
}

#[tokio::test]
async fn a_minute_is_ticked_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let (client, _api) = fake_apiserver(vec![meals_goal()], vec![]);
    let lp = goals_loop(dir.path(), &slack, client.clone(), t("2026-05-08T13:00:20Z"));
    let report = lp.tick_once(t("2026-05-08T13:00:20Z")).await.expect("the first tick of the minute runs");
    assert_eq!(report.delivered, 1);
    // The process restarts 20 s later, in the same minute, on the same database.
    drop(lp);
    let lp = goals_loop_on(dir.path(), &slack, client, t("2026-05-08T13:00:40Z"));
    assert_eq!(lp.tick_once(t("2026-05-08T13:00:40Z")).await, None, "the minute is in the scheduler's record");
    assert!(lp.tick_once(t("2026-05-08T13:01:00Z")).await.is_some(), "the next minute runs");
    assert_eq!(slack.calls("chat.postMessage").len(), 1);
    let kinds: Vec<String> = {
        let conn = lp.engine.store().conn();
        let mut stmt = conn.prepare("SELECT kind || ' ' || outcome FROM scheduler_runs ORDER BY due_at").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(kinds, ["goals sent", "goals sent"]);
}

#[tokio::test]
async fn a_done_between_ticks_is_applied_within_a_poll_and_the_loop_stops_on_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let (client, api) = fake_apiserver(vec![meals_goal()], vec![]);
    // 13:30: the 13:00 reminder is past its grace period, so this is about progress alone.
    let now = t("2026-05-08T13:30:00Z");
    let lp = goals_loop(dir.path(), &slack, client, now);
    let store = lp.engine.store().clone();
    let synced = lp.personas_synced.clone();
    synced.store(false, std::sync::atomic::Ordering::Relaxed);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(lp.run(cancel.clone()));
    // Until the persona watch has synced, the loop decides and writes nothing.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(api.seen.lock().unwrap().is_empty(), "the loop ran before the personas were known");
    synced.store(true, std::sync::atomic::Ordering::Relaxed);

    let deadline = tokio::time::Instant::now() + WAIT;
    while api.seen(Method::PATCH, "/status").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no progress written at start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // "Done" pressed on the reminder (as the interactivity endpoint records it).
    let done =
        actions::handle(&store, &GoalsConfig::default(), actions::GOAL_DONE, "meals|x", USER, chrono_tz::UTC, now);
    assert_eq!(done.unwrap().unwrap().reply, "Nice one, counted for today.");
    let patches = loop {
        let patches = api.seen(Method::PATCH, "/status");
        if patches.len() >= 2 {
            break patches;
        }
        assert!(tokio::time::Instant::now() < deadline, "the Done was not applied: {patches:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(patches[1].body["status"]["progress"]["current"], 1);
    assert!(slack.calls("chat.postMessage").is_empty(), "a missed reminder is dropped, not sent late");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(2), task).await.expect("the loop stops when cancelled").unwrap();
}

#[tokio::test]
async fn yes_on_a_pillar_in_slack_creates_the_goal_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let (client, api) = fake_apiserver(vec![], vec![]);
    let learned: Arc<dyn LearnedGoals> = Arc::new(ClusterGoals { client, namespace: NS.into() });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        sms: None,
        slack: SlackConfig {
            signing_secret: SigningSecret::new(SECRET),
            bot_token: BotToken::new(BOT_TOKEN),
            api_base: slack.api_base(),
            bot_user_id: None,
            checkin_user: None,
            team_id: None,
        },
        worker: Some(fast_worker()),
        auth: InternalAuth::new(Some(INTERNAL_TOKEN.into()), None, DEFAULT_AUDIENCE, AllowedCallers::default()),
        goals: GoalsConfig::default(),
        clock: wellbeing_webhook::app::system_clock(),
        personas_synced: Arc::new(AtomicBool::new(true)),
        extra_routes: None,
        learned_goals: Some(learned),
        people: Vec::new(),
    };
    let engine = engine(dir.path(), None);
    let suggestion = pillars::Suggestion { pillar: "sleep".into(), mentions: 3, evidence: vec![] };
    let id = pillars::record_question(&engine.store().conn(), USER, &suggestion, Utc::now()).unwrap();
    let service = start(listener, None, engine, config).await.unwrap();

    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U1", "username": "alex", "team_id": TEAM},
        "team": {"id": TEAM, "domain": "test"},
        "api_app_id": "A1",
        "trigger_id": "1.2.3",
        "response_url": slack.response_url("yes"),
        "actions": [{"action_id": actions::PILLAR_YES, "block_id": "wellbeing.pillar", "type": "button",
                     "value": id.to_string(), "action_ts": "1.1"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ack =
        post_signed(service.addr, "/slack/interactivity", "application/x-www-form-urlencoded", body.as_bytes(), &[])
            .await;
    assert_eq!(ack.status(), 200);
    let answered = slack.wait_for("respond:yes", 1, WAIT).await;
    let reply = answered[0].body["text"].as_str().unwrap();
    assert!(reply.contains("learned-sleep") && !reply.contains("couldn't"), "{reply}");

    let created = api.seen(Method::POST, "/goals");
    assert_eq!(created.len(), 1);
    assert!(created[0].query.contains("fieldManager=wellbeing-assistant"), "{}", created[0].query);
    assert_eq!(created[0].body["metadata"]["name"], "learned-sleep");
    assert_eq!(created[0].body["metadata"]["namespace"], NS);
    assert_eq!(created[0].body["metadata"]["labels"]["wellbeing.dev/learned-pillar"], "sleep");
    assert_eq!(created[0].body["spec"]["pillar"], "sleep");
    service.shutdown().await.unwrap();
}
