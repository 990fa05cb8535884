//! Slack's outbound adapter: replies in the person's DM or thread (or through a command's
//! `response_url`), proactive messages with their buttons as Block Kit, each recorded in
//! `deliveries` so a crash between posting and recording never posts twice.

use async_trait::async_trait;
use wellbeing_assistant::engine::OutgoingMessage as Reply;
use wellbeing_assistant::goals::OutgoingMessage;
use wellbeing_assistant::people::{self, Identity, NOT_SERVED_REPLY};

use crate::channel::OutboundAdapter;
use crate::db::{Db, DbError};
use crate::deliveries::{self, Delivery as Recorded};
use crate::inbox::{InboxError, Payload, Row};
use crate::nudges::{DeliverError, Delivered, message_key};
use crate::slack::client::{PostMessage, SlackClient, SlackError};
use crate::slack::commands::ephemeral;
use crate::slack::events::InboxMessage;
use crate::worker::ProcessError;

/// One more try after a transient Slack failure. A proactive message was recorded as sent before
/// it was handed over, so it is not offered again by a later tick: this short retry is its last
/// chance, and a longer wait would deliver a reminder late, which the goals rules forbid.
const SLACK_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Posts to Slack for the worker, the check-in trigger and the scheduler.
#[derive(Clone, Debug)]
pub struct SlackOutbound {
    db: Db,
    client: SlackClient,
}

impl SlackOutbound {
    pub fn new(db: Db, client: SlackClient) -> SlackOutbound {
        SlackOutbound { db, client }
    }

    pub fn client(&self) -> &SlackClient {
        &self.client
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, ProcessError> {
        self.db.run(f).await.map_err(ProcessError::from)
    }

    /// Post message `seq` of `key` unless an earlier attempt already did. Returns its `ts`.
    pub async fn post_once(
        &self,
        key: &str,
        seq: i64,
        person: &str,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<String, ProcessError> {
        let k = key.to_string();
        match self.db(move |conn| deliveries::get(conn, &k, seq)).await? {
            Some(Recorded::Posted { ts, .. }) => return Ok(ts.unwrap_or_default()),
            Some(Recorded::Posting { channel: Some(was_in), thread_ts: was_thread }) => {
                // An earlier attempt stopped between sending and recording: did Slack get it?
                if let Some(ts) = self.find_posted(&was_in, was_thread.as_deref(), key, seq).await? {
                    let k = key.to_string();
                    let found = ts.clone();
                    self.db(move |conn| deliveries::finish(conn, &k, seq, Some(&found))).await?;
                    return Ok(ts);
                }
            }
            Some(Recorded::Posting { channel: None, .. }) | None => {}
        }
        let (k, u, c, t) = (key.to_string(), person.to_string(), channel.to_string(), thread_ts.map(str::to_string));
        self.db(move |conn| deliveries::begin(conn, &k, seq, &u, &c, t.as_deref())).await?;
        let posted = self
            .client
            .post_message(&PostMessage {
                channel: channel.to_string(),
                text: text.to_string(),
                thread_ts: thread_ts.map(str::to_string),
                blocks: None,
                metadata: Some(deliveries::metadata(key, seq)),
            })
            .await
            .map_err(ProcessError::Slack)?;
        let (k, ts) = (key.to_string(), posted.ts.clone());
        self.db(move |conn| deliveries::finish(conn, &k, seq, Some(&ts))).await?;
        Ok(posted.ts)
    }

    /// Look for delivery (`key`, `seq`) in the thread (or the channel's recent history).
    async fn find_posted(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        key: &str,
        seq: i64,
    ) -> Result<Option<String>, ProcessError> {
        let messages = match thread_ts {
            Some(thread) => self.client.thread_replies(channel, thread).await,
            None => self.client.recent_history(channel).await,
        }
        .map_err(ProcessError::Slack)?;
        Ok(messages.into_iter().find(|m| deliveries::is_delivery(m, key, seq)).map(|m| m.ts))
    }

    /// Send message `seq` of `key` through a `response_url` unless an earlier attempt did. A
    /// response_url cannot be searched afterwards, so an attempt cut short between sending and
    /// recording sends again (an ephemeral message, seen once by the user who asked).
    async fn respond_once(
        &self,
        key: &str,
        seq: i64,
        person: &str,
        response_url: &str,
        text: &str,
    ) -> Result<(), ProcessError> {
        let k = key.to_string();
        if let Some(Recorded::Posted { .. }) = self.db(move |conn| deliveries::get(conn, &k, seq)).await? {
            return Ok(());
        }
        let (k, u) = (key.to_string(), person.to_string());
        self.db(move |conn| deliveries::begin(conn, &k, seq, &u, "response_url", None)).await?;
        self.client.respond(response_url, &ephemeral(text)).await.map_err(ProcessError::Slack)?;
        let k = key.to_string();
        self.db(move |conn| deliveries::finish(conn, &k, seq, None)).await
    }

    /// Keep the DM channel of a person who wrote in one (check-in prompts go there).
    async fn remember_dm(&self, m: &InboxMessage) -> Result<(), ProcessError> {
        if m.kind != "message" {
            return Ok(());
        }
        let (identity, channel) = (Identity::slack(Some(&m.team), &m.user), m.channel.clone());
        self.db(move |conn| people::set_private_ref(conn, &identity, &channel).map_err(InboxError::Store)).await
    }
}

#[async_trait]
impl OutboundAdapter for SlackOutbound {
    async fn reply(&self, row: &Row, person: &str, replies: &[Reply]) -> Result<(), ProcessError> {
        let key = row.event_id.as_str();
        match &row.payload {
            Payload::SlackMessage(m) if !is_direct_channel(&m.channel) => {
                // A mention in a channel others read: what the assistant says about someone's
                // wellbeing (a crisis reply included) goes to their DM, and the channel thread only
                // hears where the answer went.
                if replies.is_empty() {
                    return Ok(());
                }
                let dm = self.client.open_conversation(&m.user).await.map_err(ProcessError::Slack)?;
                for (seq, reply) in replies.iter().enumerate() {
                    self.post_once(key, seq as i64, person, &dm, None, &reply.text).await?;
                }
                let note = "I've answered you in a direct message, to keep it between us.";
                self.post_once(key, replies.len() as i64, person, &m.channel, Some(m.reply_thread()), note).await?;
                Ok(())
            }
            Payload::SlackMessage(m) => {
                for (seq, reply) in replies.iter().enumerate() {
                    let thread = reply.thread_ref.as_deref().unwrap_or(m.reply_thread());
                    self.post_once(key, seq as i64, person, &m.channel, Some(thread), &reply.text).await?;
                }
                self.remember_dm(m).await
            }
            Payload::SlackCommand(c) => {
                for (seq, reply) in replies.iter().enumerate() {
                    self.respond_once(key, seq as i64, person, &c.response_url, &reply.text).await?;
                }
                Ok(())
            }
            Payload::SlackView(v) => {
                if replies.is_empty() {
                    return Ok(());
                }
                let channel = self.client.open_conversation(&v.user).await.map_err(ProcessError::Slack)?;
                for (seq, reply) in replies.iter().enumerate() {
                    self.post_once(key, seq as i64, person, &channel, None, &reply.text).await?;
                }
                Ok(())
            }
            Payload::Local(_) => Err(ProcessError::WrongChannel("a local-page row")),
            Payload::Sms(_) => Err(ProcessError::WrongChannel("an SMS row")),
        }
    }

    async fn refuse(&self, row: &Row) -> Result<(), ProcessError> {
        match &row.payload {
            Payload::SlackMessage(m) => {
                let thread = is_direct_channel(&m.channel).then(|| m.reply_thread());
                self.post_once(&row.event_id, 0, &row.user_id, &m.channel, thread, NOT_SERVED_REPLY).await?;
                Ok(())
            }
            Payload::SlackCommand(c) => {
                self.respond_once(&row.event_id, 0, &row.user_id, &c.response_url, NOT_SERVED_REPLY).await
            }
            Payload::SlackView(_) => Ok(()),
            Payload::Local(_) => Err(ProcessError::WrongChannel("a local-page row")),
            Payload::Sms(_) => Err(ProcessError::WrongChannel("an SMS row")),
        }
    }

    /// Open the DM, post the message with its buttons, and record where it went. A message whose
    /// delivery was recorded as posted is not posted again.
    async fn deliver(&self, identity: &Identity, msg: &OutgoingMessage) -> Result<Delivered, DeliverError> {
        let Some(member) = identity.slack_user() else { return Ok(Delivered::NoChannel) };
        let key = message_key(msg);
        let k = key.clone();
        let recorded = self.db.run(move |c| deliveries::get(c, &k, 0)).await.map_err(DeliverError::from)?;
        if let Some(Recorded::Posted { channel, ts }) = recorded {
            return Ok(Delivered::Slack { channel: channel.unwrap_or_default(), ts: ts.unwrap_or_default() });
        }
        let channel = retry_once(|| self.client.open_conversation(member)).await.map_err(DeliverError::Slack)?;
        let (k, u, c) = (key.clone(), msg.user_id.clone(), channel.clone());
        self.db.run(move |conn| deliveries::begin(conn, &k, 0, &u, &c, None)).await.map_err(DeliverError::from)?;
        let post = PostMessage {
            channel: channel.clone(),
            // With blocks, `text` is the notification's fallback.
            text: msg.text.clone(),
            thread_ts: None,
            blocks: crate::slack::blocks::render(&msg.text, &msg.actions),
            metadata: Some(deliveries::metadata(&key, 0)),
        };
        let posted = retry_once(|| self.client.post_message(&post)).await.map_err(DeliverError::Slack)?;
        let (k, ts) = (key, posted.ts.clone());
        self.db.run(move |conn| deliveries::finish(conn, &k, 0, Some(&ts))).await.map_err(DeliverError::from)?;
        Ok(Delivered::Slack { channel, ts: posted.ts })
    }
}

impl From<DbError> for DeliverError {
    fn from(error: DbError) -> DeliverError {
        match error {
            DbError::Inbox(e) => DeliverError::Record(e),
            DbError::Join(e) => DeliverError::Join(e),
        }
    }
}

/// Whether a Slack conversation id is a one-to-one DM (`D...`); channels (`C...`) and private or
/// group conversations (`G...`) are read by others.
pub fn is_direct_channel(channel: &str) -> bool {
    channel.starts_with('D')
}

async fn retry_once<T, F, Fut>(call: F) -> Result<T, SlackError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SlackError>>,
{
    match call().await {
        Err(e) if e.is_retryable() => {
            tokio::time::sleep(e.retry_after().unwrap_or(SLACK_RETRY_AFTER).min(SLACK_RETRY_AFTER)).await;
            call().await
        }
        other => other,
    }
}
