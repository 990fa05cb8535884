//! Proactive messages in both run modes: what is due at a tick (goal nudges and reminders,
//! pillar questions, follow-through questions, the weekly insight), their delivery to the local
//! page or a Slack DM with their buttons, and the Goal that "Yes" on a learned pillar creates.
//!
//! The goals runner and the insight tick record every message before they return it, so a
//! message is handed to [`Delivery`] at most once, across restarts too. Delivery itself is
//! idempotent per message key (`proactive:[user, kind, goal, slot, value]`): the local page keeps
//! it as an `interactions` row with that `event_id`, Slack as a `deliveries` row with that key.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::actions::{self, ActionOutcome, NewGoal};
use wellbeing_assistant::goals::manifest::{self, ManifestWriteError};
use wellbeing_assistant::goals::{GoalsConfig, OutgoingMessage, SendKind, runner};
use wellbeing_assistant::message::{Action, ActionStyle};
use wellbeing_assistant::people::{self, Identity};
use wellbeing_assistant::{StoreError, insights};
use wellbeing_crds::Goal;
use wellbeing_crds::persona::{Channel as CrdChannel, PersonaSpec};

use crate::channel::OutboundAdapter;
use crate::channel::local::LocalOutbound;
use crate::goal_status::{self, GoalStatusError};
use crate::inbox::InboxError;
use crate::slack::client::SlackError;
use crate::slack::outbound::SlackOutbound;
use crate::sms::outbound::SmsOutbound;

/// Prefix of a proactive message's key (`interactions.event_id`, `deliveries.key`).
pub const KEY_PREFIX: &str = "proactive:";

#[derive(Debug, thiserror::Error)]
pub enum NudgeError {
    #[error("failed to run the goals tick")]
    Goals(#[source] StoreError),
    #[error("failed to run the weekly insight tick")]
    Insights(#[source] StoreError),
    #[error("failed to finish the goals tick")]
    Join(#[source] tokio::task::JoinError),
}

/// Everything due at `now` for every known user: the goals runner's messages, then the weekly
/// insight's. `seed` is the persona's draw seed (its uid), the one its check-ins are drawn with.
#[tracing::instrument(skip_all, fields(messages))]
pub async fn due_messages(
    engine: &Assistant,
    persona: &PersonaSpec,
    seed: &str,
    goals: &[Goal],
    config: &GoalsConfig,
    now: DateTime<Utc>,
) -> Result<Vec<OutgoingMessage>, NudgeError> {
    let (store, spec, uid, list, cfg) =
        (engine.store().clone(), persona.clone(), seed.to_string(), goals.to_vec(), config.clone());
    let mut out = tokio::task::spawn_blocking(move || {
        let ctx = runner::Context { persona: &spec, persona_uid: &uid, goals: &list, config: &cfg };
        runner::tick(&store, &ctx, now)
    })
    .await
    .map_err(NudgeError::Join)?
    .map_err(NudgeError::Goals)?;
    let weekly = insights::tick(engine.store(), persona, goals, engine.llm(), config.grace_minutes, now)
        .await
        .map_err(NudgeError::Insights)?;
    out.extend(weekly);
    tracing::Span::current().record("messages", out.len());
    Ok(out)
}

/// The value every button of a message carries (`goal|slot`, or the pillar question's id); empty
/// when the message has no buttons.
pub fn button_value(actions: &[Action]) -> String {
    actions.first().map(|a| a.value.clone()).unwrap_or_default()
}

/// A proactive message's key: unique per user and occasion, and carrying what its buttons need.
pub fn message_key(msg: &OutgoingMessage) -> String {
    let parts = json!([msg.user_id, msg.kind.as_str(), msg.goal, msg.slot, button_value(&msg.actions)]);
    format!("{KEY_PREFIX}{parts}")
}

/// A parsed [`message_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageKey {
    pub user_id: String,
    pub kind: SendKind,
    pub goal: String,
    pub slot: String,
    pub value: String,
}

pub fn parse_key(key: &str) -> Option<MessageKey> {
    let parts: [String; 5] = serde_json::from_str(key.strip_prefix(KEY_PREFIX)?).ok()?;
    let [user_id, kind, goal, slot, value] = parts;
    Some(MessageKey { user_id, kind: SendKind::parse(&kind)?, goal, slot, value })
}

/// One button as the local page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub action_id: String,
    pub value: String,
    /// Block Kit style: `primary`, `danger`, or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
}

impl From<&Action> for Button {
    fn from(action: &Action) -> Button {
        let style = match action.style {
            ActionStyle::Primary => Some("primary".to_string()),
            ActionStyle::Danger => Some("danger".to_string()),
            ActionStyle::Default => None,
        };
        Button { label: action.label.clone(), action_id: action.id.clone(), value: action.value.clone(), style }
    }
}

/// The buttons a stored proactive message carries, rebuilt from its key with the same functions
/// the message was built with (one source for labels and action ids).
pub fn buttons_for(key: &MessageKey) -> Vec<Button> {
    let actions = match key.kind {
        SendKind::Reminder | SendKind::Nudge => match key.value.split_once('|') {
            Some((goal, slot)) => actions::goal_actions(goal, slot),
            None => return Vec::new(),
        },
        SendKind::Pillar => match key.value.parse::<i64>() {
            Ok(id) => actions::pillar_actions(id),
            Err(_) => return Vec::new(),
        },
        SendKind::FollowThrough | SendKind::BackoffNotice | SendKind::Insight => return Vec::new(),
    };
    actions.iter().map(Button::from).collect()
}

/// Who receives a user's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserChannel {
    /// The local page of `wellbeing up`.
    Local,
    /// A Slack DM with this member id.
    Slack(String),
    /// Text messages to this number (E.164).
    Sms(String),
    /// A channel this process does not serve (email, or Slack or SMS when not configured).
    Other,
}

/// The channels this process serves besides the local page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub slack: bool,
    pub sms: bool,
}

/// Where a person's proactive messages go: their identity on `preferred` (the active persona's
/// channel) when this process serves it, else the local page, else Slack. SMS is used only when
/// it is the persona's channel: a text costs money and reaches a phone, so it is never a fallback.
/// A person with no stored identity (data from before people existed) is reached by what their
/// id says. Pure.
pub fn route_for(
    person: &str,
    identities: &[(Identity, Option<String>)],
    preferred: CrdChannel,
    on: Served,
) -> UserChannel {
    if identities.is_empty() {
        return channel_of(person);
    }
    let served = |channel: CrdChannel| match channel {
        CrdChannel::Local => true,
        CrdChannel::Slack => on.slack,
        CrdChannel::Sms => on.sms,
        CrdChannel::Email => false,
    };
    let find = |channel: CrdChannel| identities.iter().find(|(i, _)| i.channel == channel && served(channel));
    let found = find(preferred).or_else(|| find(CrdChannel::Local)).or_else(|| find(CrdChannel::Slack));
    match found {
        Some((identity, _)) => match identity.channel {
            CrdChannel::Local => UserChannel::Local,
            CrdChannel::Sms => UserChannel::Sms(identity.address.clone()),
            _ => identity.slack_user().map_or(UserChannel::Other, |u| UserChannel::Slack(u.to_string())),
        },
        None => UserChannel::Other,
    }
}

/// What a user id of the form `local:NAME` or `slack:TEAM:USER` says about its channel.
pub fn channel_of(user_id: &str) -> UserChannel {
    if user_id.starts_with("local:") {
        return UserChannel::Local;
    }
    match user_id.strip_prefix("slack:").and_then(|rest| rest.split_once(':')) {
        Some((_team, member)) if !member.is_empty() => UserChannel::Slack(member.to_string()),
        _ => UserChannel::Other,
    }
}

/// Where a proactive message went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Stored as a message of the local page (its `interactions` id).
    LocalPage(i64),
    /// The same message was on the page already.
    AlreadyOnPage,
    Slack {
        channel: String,
        ts: String,
    },
    /// Sent by SMS: Twilio's message SID (empty when an earlier attempt's outcome is unknown and
    /// it was not sent again).
    Sms {
        sid: String,
    },
    /// The number texted STOP: nothing was sent.
    OptedOut,
    /// The user's channel is not served here (a Slack user while Slack is off, SMS, email).
    NoChannel,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("failed to store the message for the local page")]
    Local(#[source] rusqlite::Error),
    #[error("failed to post the message to Slack")]
    Slack(#[source] SlackError),
    #[error("failed to send the message by SMS")]
    Sms(#[source] crate::sms::outbound::SendError),
    #[error("failed to record the Slack delivery")]
    Record(#[source] InboxError),
    #[error("failed to finish the delivery")]
    Join(#[source] tokio::task::JoinError),
    #[error("failed to read where the person is reached")]
    People(#[source] wellbeing_assistant::StoreError),
}

/// Store a proactive message on the local page. `None` when it is there already.
pub fn store_on_page(
    conn: &Connection,
    msg: &OutgoingMessage,
    persona_name: &str,
    persona_version: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, rusqlite::Error> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO interactions (user_id, channel, direction, kind, text, created_at, persona_name,
             persona_version, event_id)
         VALUES (?1, 'local', 'out', ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            msg.user_id,
            msg.kind.as_str(),
            msg.text,
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            persona_name,
            persona_version,
            message_key(msg)
        ],
    )?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// Delivers proactive messages to each person's channel through its outbound adapter.
#[derive(Clone)]
pub struct Delivery {
    engine: Assistant,
    local: LocalOutbound,
    slack: Option<Arc<SlackOutbound>>,
    sms: Option<Arc<SmsOutbound>>,
}

impl Delivery {
    /// `slack`: the adapter when this process serves Slack.
    pub fn new(engine: Assistant, slack: Option<Arc<SlackOutbound>>) -> Delivery {
        Delivery { local: LocalOutbound::new(engine.clone()), engine, slack, sms: None }
    }

    /// With Twilio's adapter, when this process serves SMS.
    pub fn with_sms(mut self, sms: Option<Arc<SmsOutbound>>) -> Delivery {
        self.sms = sms;
        self
    }

    #[tracing::instrument(skip_all, fields(kind = msg.kind.as_str(), goal = %msg.goal, slot = %msg.slot))]
    pub async fn deliver(&self, msg: &OutgoingMessage) -> Result<Delivered, DeliverError> {
        let (store, person) = (self.engine.store().clone(), msg.user_id.clone());
        let identities = tokio::task::spawn_blocking(move || people::identities_of(&store.conn(), &person))
            .await
            .map_err(DeliverError::Join)?
            .map_err(DeliverError::People)?;
        let preferred = self.engine.personas().active().spec().check_ins.channel;
        let on = Served { slack: self.slack.is_some(), sms: self.sms.is_some() };
        match route_for(&msg.user_id, &identities, preferred, on) {
            UserChannel::Local => self.local.deliver(&Identity::local("me"), msg).await,
            UserChannel::Slack(member) => match &self.slack {
                Some(slack) => slack.deliver(&Identity::slack(None, &member), msg).await,
                None => Ok(Delivered::NoChannel),
            },
            UserChannel::Sms(number) => match &self.sms {
                Some(sms) => {
                    let identity = Identity { channel: CrdChannel::Sms, address: number };
                    sms.deliver(&identity, msg).await
                }
                None => Ok(Delivered::NoChannel),
            },
            UserChannel::Other => Ok(Delivered::NoChannel),
        }
    }

    /// Deliver each message in order; a failed one is logged and dropped (it was recorded as sent,
    /// and sending it later would break "never late"). Returns how many reached a channel.
    pub async fn deliver_all(&self, messages: &[OutgoingMessage]) -> usize {
        let mut delivered = 0;
        for msg in messages {
            match self.deliver(msg).await {
                Ok(Delivered::NoChannel) => {
                    tracing::debug!(kind = msg.kind.as_str(), "no channel for this user here; not delivered");
                }
                Ok(Delivered::OptedOut) => {
                    tracing::info!(kind = msg.kind.as_str(), "not sent: the person's number texted STOP");
                }
                Ok(_) => delivered += 1,
                Err(error) => tracing::warn!(
                    kind = msg.kind.as_str(),
                    goal = %msg.goal,
                    error = %error_chain(&error),
                    "failed to deliver a proactive message; dropped"
                ),
            }
        }
        delivered
    }
}

pub use wellbeing_assistant::error_chain;

#[derive(Debug, thiserror::Error)]
pub enum LearnedGoalError {
    #[error("failed to create the learned goal in the manifests folder")]
    Manifest(#[source] ManifestWriteError),
    #[error("failed to create the learned goal in the cluster")]
    Cluster(#[source] GoalStatusError),
    #[error("failed to finish writing the learned goal")]
    Join(#[source] tokio::task::JoinError),
}

/// Where a learned pillar's Goal is created when the user says "Yes".
#[async_trait]
pub trait LearnedGoals: Send + Sync {
    /// Create it. `Ok(false)`: a Goal of that name exists already and is left as it is.
    async fn create(&self, goal: &NewGoal) -> Result<bool, LearnedGoalError>;
}

/// Embedded mode: a manifest file in the watched folder, which the folder watcher then loads.
#[derive(Clone, Debug)]
pub struct ManifestGoals {
    pub dir: PathBuf,
}

#[async_trait]
impl LearnedGoals for ManifestGoals {
    async fn create(&self, goal: &NewGoal) -> Result<bool, LearnedGoalError> {
        let (dir, g) = (self.dir.clone(), goal.clone());
        let written = tokio::task::spawn_blocking(move || {
            let yaml = manifest::goal_yaml(&g.name, None, &g.spec);
            manifest::write_goal_manifest(&dir, &g.name, &yaml)
        })
        .await
        .map_err(LearnedGoalError::Join)?
        .map_err(LearnedGoalError::Manifest)?;
        if let Some(path) = &written {
            tracing::info!(goal = %goal.name, path = %path.display(), "wrote the manifest of a learned goal");
        }
        Ok(written.is_some())
    }
}

/// The cluster: a Goal resource in the assistant's namespace (field manager `wellbeing-assistant`).
#[derive(Clone)]
pub struct ClusterGoals {
    pub client: kube::Client,
    pub namespace: String,
}

#[async_trait]
impl LearnedGoals for ClusterGoals {
    async fn create(&self, goal: &NewGoal) -> Result<bool, LearnedGoalError> {
        goal_status::create_learned_goal(&self.client, &self.namespace, goal).await.map_err(LearnedGoalError::Cluster)
    }
}

/// The answer to a button click, after creating the Goal it asks for (if any). The click itself
/// was recorded by `actions::handle`; when the Goal cannot be created the user is told so, since
/// the question is answered and its buttons are gone.
pub async fn finish_action(learned: Option<&dyn LearnedGoals>, outcome: ActionOutcome) -> String {
    let Some(goal) = outcome.create_goal else { return outcome.reply };
    let Some(learned) = learned else {
        tracing::warn!(goal = %goal.name, "a learned pillar was accepted but there is nowhere to create goals");
        return format!(
            "{} (This assistant has no place to keep Goals, so add `{}` yourself.)",
            outcome.reply, goal.name
        );
    };
    match learned.create(&goal).await {
        Ok(created) => {
            tracing::info!(goal = %goal.name, created, "a learned pillar was accepted");
            outcome.reply
        }
        Err(error) => {
            tracing::warn!(goal = %goal.name, error = %error_chain(&error), "failed to create a learned goal");
            format!("{} I couldn't create the Goal `{}` just now, so please add it yourself.", outcome.reply, goal.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wellbeing_assistant::goals::pillars::default_goal;
    use wellbeing_crds::manifest::{Resource, parse_documents};

    fn msg(kind: SendKind, actions: Vec<Action>) -> OutgoingMessage {
        OutgoingMessage {
            user_id: "slack:T1:U1".into(),
            kind,
            goal: "meals".into(),
            slot: "2026-05-08T13:00".into(),
            text: "Time to eat".into(),
            actions,
        }
    }

    #[test]
    fn keys_round_trip_and_rebuild_the_same_buttons_as_the_slack_message() {
        let reminder = msg(SendKind::Reminder, actions::goal_actions("meals", "2026-05-08T13:00"));
        let key = parse_key(&message_key(&reminder)).unwrap();
        assert_eq!(key.value, "meals|2026-05-08T13:00");
        assert_eq!(buttons_for(&key), reminder.actions.iter().map(Button::from).collect::<Vec<_>>());
        let ids: Vec<String> = buttons_for(&key).into_iter().map(|b| b.action_id).collect();
        assert_eq!(ids, [actions::GOAL_DONE, actions::GOAL_SNOOZE, actions::GOAL_SKIP]);

        let pillar = msg(SendKind::Pillar, actions::pillar_actions(42));
        let key = parse_key(&message_key(&pillar)).unwrap();
        let buttons = buttons_for(&key);
        assert_eq!(buttons.len(), 3);
        assert!(buttons.iter().all(|b| b.value == "42"));
        assert_eq!(buttons[2].style.as_deref(), Some("danger"));

        let insight = msg(SendKind::Insight, Vec::new());
        assert!(buttons_for(&parse_key(&message_key(&insight)).unwrap()).is_empty());
        // Odd text in a goal or slot cannot break the key apart.
        let odd = OutgoingMessage { goal: "a\",\"b|c".into(), slot: "x]".into(), ..insight };
        assert_eq!(parse_key(&message_key(&odd)).unwrap().goal, "a\",\"b|c");
        assert_eq!(parse_key("proactive:[1,2]"), None);
        assert_eq!(parse_key("local:abc"), None);
    }

    #[test]
    fn users_are_routed_by_their_key() {
        assert_eq!(channel_of("local:me"), UserChannel::Local);
        assert_eq!(channel_of("slack:T1:U1"), UserChannel::Slack("U1".into()));
        assert_eq!(channel_of("slack:T1:"), UserChannel::Other);
        assert_eq!(channel_of("sms:+4912345"), UserChannel::Other);
    }

    #[test]
    fn a_person_is_reached_on_the_personas_channel_then_the_page_then_slack() {
        let slack = (Identity::slack(Some("T1"), "U1"), Some("D1".to_string()));
        let local = (Identity::local("me"), None);
        let sms = ("sms:+4915112345678".parse::<Identity>().unwrap(), None);
        let both = [local.clone(), slack.clone()];
        let slack_on = Served { slack: true, sms: false };
        let all_on = Served { slack: true, sms: true };
        let off = Served::default();
        assert_eq!(route_for("ana", &both, CrdChannel::Slack, slack_on), UserChannel::Slack("U1".into()));
        assert_eq!(route_for("ana", &both, CrdChannel::Slack, off), UserChannel::Local, "Slack is off here");
        assert_eq!(route_for("ana", &both, CrdChannel::Local, slack_on), UserChannel::Local);
        assert_eq!(
            route_for("ana", std::slice::from_ref(&slack), CrdChannel::Local, slack_on),
            UserChannel::Slack("U1".into())
        );
        assert_eq!(
            route_for("ana", std::slice::from_ref(&sms), CrdChannel::Sms, slack_on),
            UserChannel::Other,
            "SMS is off"
        );
        assert_eq!(
            route_for("ana", std::slice::from_ref(&sms), CrdChannel::Sms, all_on),
            UserChannel::Sms("+4915112345678".into())
        );
        let three = [local.clone(), slack.clone(), sms.clone()];
        assert_eq!(route_for("ana", &three, CrdChannel::Sms, all_on), UserChannel::Sms("+4915112345678".into()));
        // SMS is never a fallback: the persona speaks on Slack, Slack is off here, the page it is.
        assert_eq!(route_for("ana", &three, CrdChannel::Slack, Served { slack: false, sms: true }), UserChannel::Local);
        assert_eq!(
            route_for("ana", &[slack.clone(), sms], CrdChannel::Slack, Served { slack: false, sms: true }),
            UserChannel::Other
        );
        assert_eq!(route_for("ana", &[slack], CrdChannel::Slack, off), UserChannel::Other);
        // A person from before identities existed: their id says where they are.
        assert_eq!(route_for("slack:T1:U7", &[], CrdChannel::Slack, slack_on), UserChannel::Slack("U7".into()));
    }

    #[test]
    fn a_message_is_stored_on_the_page_once() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let m = OutgoingMessage { user_id: "local:me".into(), ..msg(SendKind::Insight, Vec::new()) };
        let conn = store.conn();
        let now = Utc::now();
        assert!(store_on_page(&conn, &m, "coach", "1-abc", now).unwrap().is_some());
        assert_eq!(store_on_page(&conn, &m, "coach", "1-abc", now).unwrap(), None);
        let kind: String = conn.query_row("SELECT kind FROM interactions", [], |r| r.get(0)).unwrap();
        assert_eq!(kind, "insight");
    }

    struct Failing;

    #[async_trait]
    impl LearnedGoals for Failing {
        async fn create(&self, _: &NewGoal) -> Result<bool, LearnedGoalError> {
            Err(LearnedGoalError::Manifest(ManifestWriteError::Write {
                path: "/nowhere".into(),
                source: std::io::Error::other("read-only"),
            }))
        }
    }

    #[tokio::test]
    async fn yes_writes_a_manifest_that_parses_and_a_failure_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let outcome = ActionOutcome {
            reply: "Great.".into(),
            create_goal: Some(NewGoal { name: "learned-sleep".into(), spec: default_goal("sleep") }),
        };
        let files = ManifestGoals { dir: dir.path().to_path_buf() };
        assert_eq!(finish_action(Some(&files), outcome.clone()).await, "Great.");
        let text = std::fs::read_to_string(dir.path().join("learned-sleep.yaml")).unwrap();
        let parsed: Vec<_> = parse_documents(&text).into_iter().collect::<Result<_, _>>().unwrap();
        assert!(matches!(&parsed[..], [Resource::Goal(g)] if g.metadata.name.as_deref() == Some("learned-sleep")));
        // A second "Yes" (another question, same pillar) leaves the user's edits alone.
        assert!(!files.create(outcome.create_goal.as_ref().unwrap()).await.unwrap());

        let told = finish_action(Some(&Failing), outcome.clone()).await;
        assert!(told.contains("couldn't create the Goal `learned-sleep`"), "{told}");
        assert!(finish_action(None, outcome).await.contains("add `learned-sleep` yourself"));
    }
}
