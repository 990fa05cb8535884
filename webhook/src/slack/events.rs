//! Events API payloads and the pure decision of what to do with one: answer a URL verification,
//! queue a user's message, or ignore it (bots, ourselves, edits, joins, other channel types).

use serde::{Deserialize, Serialize};

/// The outer JSON Slack posts to the events URL.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub challenge: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_time: Option<i64>,
    #[serde(default)]
    pub event: Option<Event>,
    /// Who the app acts as in this workspace; the bot's own user id is here.
    #[serde(default)]
    pub authorizations: Vec<Authorization>,
}

#[derive(Debug, Deserialize)]
pub struct Authorization {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub is_bot: bool,
}

#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub channel_type: Option<String>,
    #[serde(default)]
    pub ts: Option<String>,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
}

/// What the inbox keeps for a Slack message: enough to process and reply, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxMessage {
    pub team: String,
    pub user: String,
    pub channel: String,
    pub ts: String,
    /// Thread the message was written in, if any (a reply to a check-in prompt, for example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    pub text: String,
    /// `message` (a DM) or `app_mention`.
    pub kind: String,
}

impl InboxMessage {
    /// The thread a reply belongs in: the thread the user wrote in, else their message itself.
    pub fn reply_thread(&self) -> &str {
        self.thread_ts.as_deref().unwrap_or(&self.ts)
    }
}

/// The assistant's id for a Slack user: the same person in two workspaces is two users.
pub fn user_key(team: &str, user: &str) -> String {
    format!("slack:{team}:{user}")
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Slack checks the request URL: echo the challenge.
    UrlVerification(String),
    /// A user's message for the inbox.
    Accept { event_id: String, user_key: String, message: InboxMessage },
    /// Acknowledged and dropped; the reason is a metric label.
    Ignore(&'static str),
}

/// Decide what an events request means. `bot_user_id` is the bot's own user id when known from
/// configuration or `auth.test`; the envelope's `authorizations` name it too.
pub fn classify(envelope: Envelope, bot_user_id: Option<&str>) -> Decision {
    match envelope.kind.as_str() {
        "url_verification" => return Decision::UrlVerification(envelope.challenge.unwrap_or_default()),
        "event_callback" => {}
        _ => return Decision::Ignore("envelope_type"),
    }
    let Some(event) = envelope.event else { return Decision::Ignore("no_event") };
    let Some(event_id) = envelope.event_id.filter(|id| !id.is_empty()) else { return Decision::Ignore("no_event_id") };
    match event.kind.as_str() {
        "message" if event.channel_type.as_deref() == Some("im") => {}
        "app_mention" => {}
        _ => return Decision::Ignore("event_type"),
    }
    if event.bot_id.is_some() || event.subtype.as_deref() == Some("bot_message") {
        return Decision::Ignore("bot");
    }
    // Any other subtype (message_changed, message_deleted, channel_join, thread_broadcast...) is
    // not a new thing the user said. file_share carries the user's text with an attachment.
    if let Some(subtype) = event.subtype.as_deref()
        && subtype != "file_share"
    {
        return Decision::Ignore("subtype");
    }
    let Some(user) = event.user.filter(|u| !u.is_empty()) else { return Decision::Ignore("no_user") };
    let own_ids = envelope.authorizations.iter().filter(|a| a.is_bot).filter_map(|a| a.user_id.as_deref());
    if bot_user_id == Some(user.as_str()) || own_ids.into_iter().any(|id| id == user) {
        return Decision::Ignore("own_message");
    }
    let (Some(channel), Some(ts)) = (event.channel, event.ts) else { return Decision::Ignore("no_channel") };
    let Some(team) = event.team.or(envelope.team_id) else { return Decision::Ignore("no_team") };
    let mut text = event.text.unwrap_or_default();
    if event.kind == "app_mention" {
        text = strip_mentions(&text, bot_user_id);
    }
    if text.trim().is_empty() {
        return Decision::Ignore("empty");
    }
    let message = InboxMessage {
        team: team.clone(),
        user: user.clone(),
        channel,
        ts,
        thread_ts: event.thread_ts,
        text,
        kind: event.kind,
    };
    Decision::Accept { event_id, user_key: user_key(&team, &user), message }
}

/// Remove the `<@BOT>` mention that addresses the bot (and, without a known bot id, a leading
/// mention) so the assistant reads only what the user said.
fn strip_mentions(text: &str, bot_user_id: Option<&str>) -> String {
    let stripped = match bot_user_id {
        Some(id) => text.replace(&format!("<@{id}>"), ""),
        None => match text.trim_start().strip_prefix("<@").and_then(|rest| rest.split_once('>')) {
            Some((_, rest)) => rest.to_string(),
            None => text.to_string(),
        },
    };
    stripped.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(event: serde_json::Value) -> Envelope {
        serde_json::from_value(serde_json::json!({
            "type": "event_callback",
            "team_id": "T1",
            "event_id": "Ev1",
            "event_time": 1700000000,
            "authorizations": [{"user_id": "UBOT", "is_bot": true}],
            "event": event,
        }))
        .unwrap()
    }

    fn dm(extra: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({
            "type": "message", "channel_type": "im", "channel": "D1", "user": "U1",
            "text": "slept badly", "ts": "1700000000.000100"
        });
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn url_verification_echoes_the_challenge() {
        let env: Envelope =
            serde_json::from_str(r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#)
                .unwrap();
        assert_eq!(
            classify(env, None),
            Decision::UrlVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into())
        );
    }

    #[test]
    fn a_direct_message_is_accepted() {
        let Decision::Accept { event_id, user_key, message } = classify(envelope(dm(serde_json::json!({}))), None)
        else {
            panic!("not accepted")
        };
        assert_eq!(event_id, "Ev1");
        assert_eq!(user_key, "slack:T1:U1");
        assert_eq!(message.reply_thread(), "1700000000.000100");
        assert_eq!(message.text, "slept badly");
    }

    #[test]
    fn a_reply_in_a_thread_stays_in_that_thread() {
        let Decision::Accept { message, .. } =
            classify(envelope(dm(serde_json::json!({"thread_ts": "1699999999.000001"}))), None)
        else {
            panic!("not accepted")
        };
        assert_eq!(message.reply_thread(), "1699999999.000001");
    }

    #[test]
    fn bots_ourselves_edits_and_joins_are_ignored() {
        let cases = [
            (serde_json::json!({"bot_id": "B1"}), "bot"),
            (serde_json::json!({"subtype": "bot_message"}), "bot"),
            (serde_json::json!({"user": "UBOT"}), "own_message"),
            (serde_json::json!({"subtype": "message_changed"}), "subtype"),
            (serde_json::json!({"subtype": "message_deleted"}), "subtype"),
            (serde_json::json!({"subtype": "channel_join"}), "subtype"),
            (serde_json::json!({"channel_type": "channel"}), "event_type"),
            (serde_json::json!({"text": "   "}), "empty"),
        ];
        for (extra, reason) in cases {
            assert_eq!(classify(envelope(dm(extra.clone())), None), Decision::Ignore(reason), "{extra}");
        }
        // The configured bot id counts as well as the envelope's authorizations.
        let mut env = envelope(dm(serde_json::json!({"user": "UOTHERBOT"})));
        env.authorizations.clear();
        assert_eq!(classify(env, Some("UOTHERBOT")), Decision::Ignore("own_message"));
    }

    #[test]
    fn an_app_mention_loses_the_mention() {
        let event = serde_json::json!({
            "type": "app_mention", "channel": "C1", "user": "U1", "text": "<@UBOT> ran 5k today", "ts": "1.2"
        });
        let Decision::Accept { message, .. } = classify(envelope(event.clone()), Some("UBOT")) else { panic!() };
        assert_eq!(message.text, "ran 5k today");
        assert_eq!(message.kind, "app_mention");
        let Decision::Accept { message, .. } = classify(envelope(event), None) else { panic!() };
        assert_eq!(message.text, "ran 5k today");
    }

    #[test]
    fn other_envelopes_are_ignored() {
        let env: Envelope = serde_json::from_str(r#"{"type":"app_rate_limited","team_id":"T1"}"#).unwrap();
        assert_eq!(classify(env, None), Decision::Ignore("envelope_type"));
    }
}
