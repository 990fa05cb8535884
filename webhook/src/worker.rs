//! The inbox worker: drains pending rows in order per user (different users in parallel, one user
//! strictly in order), hands each message to the conversation engine, posts the replies, and marks
//! the row done. Failures are retried with exponential backoff and given up after a number of
//! attempts; rows left pending by a crash are picked up again at start-up. The engine is
//! idempotent per event id and deliveries are recorded, so a retry never posts a reply twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, instrument};
use wellbeing_assistant::engine::{Assistant, Channel, EngineError, IncomingMessage};
use wellbeing_assistant::people::Identity;

use crate::deliveries::{self, Delivery};
use crate::inbox::{self, InboxError, Payload, Row};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::people::ServedPeople;
use crate::slack::client::{PostMessage, SlackClient, SlackError};
use crate::slack::commands::ephemeral;
use crate::slack::events::InboxMessage;

/// How often processed rows past their keep time are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Users processed at the same time. Each holds an engine call (maybe an LLM request) and a
    /// few Slack calls; four keeps a 2-core pod responsive while one slow LLM call is pending.
    pub concurrency: usize,
    /// Attempts before a row is marked failed. With the defaults the last retry comes about 40
    /// minutes after the first attempt, which outlasts a Slack or LLM outage of the usual kind.
    pub max_attempts: i64,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest sleep between looks at the inbox when nothing wakes the worker.
    pub poll: Duration,
    /// On shutdown, how long in-flight rows may take before they are abandoned (still pending,
    /// so the next start resumes them).
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            max_attempts: 10,
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(20 * 60),
            poll: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Wait before attempt `attempts + 1`: base * 2^(attempts-1), capped, never less than Slack's
/// `Retry-After`.
pub fn backoff(attempts: i64, options: &WorkerOptions, retry_after: Option<Duration>) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let wait = options.base_backoff.saturating_mul(2u32.saturating_pow(exp)).min(options.max_backoff);
    wait.max(retry_after.unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to handle the message")]
    Engine(#[source] EngineError),
    #[error("failed to deliver to Slack")]
    Slack(#[source] SlackError),
    #[error("failed to update the inbox")]
    Inbox(#[source] InboxError),
    #[error("a blocking database task failed")]
    Join(#[source] tokio::task::JoinError),
    #[error("failed to tell who wrote")]
    Admit(#[source] crate::people::AdmitError),
}

impl ProcessError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ProcessError::Slack(e) => e.is_retryable(),
            // Database trouble (busy, disk full) and engine errors other than invalid input are
            // worth another try; invalid input will be as invalid next time.
            ProcessError::Engine(EngineError::Invalid(_)) => false,
            ProcessError::Engine(_) | ProcessError::Inbox(_) | ProcessError::Join(_) | ProcessError::Admit(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ProcessError::Slack(e) => e.retry_after(),
            _ => None,
        }
    }

    /// Full error chain, for `last_error` (ids and codes only: no message text reaches errors).
    fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// Everything a worker task needs, shared by all of them.
pub struct Worker {
    conn: Mutex<Connection>,
    engine: Assistant,
    slack: SlackClient,
    metrics: Metrics,
    options: WorkerOptions,
    /// Who is served; anyone else is refused before the engine sees their words.
    people: ServedPeople,
}

pub use wellbeing_assistant::people::NOT_SERVED_REPLY;

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker on its own database connection. Messages from anyone `people` does not serve
    /// get [`NOT_SERVED_REPLY`] and nothing of theirs is stored.
    pub fn new(
        engine: Assistant,
        slack: SlackClient,
        metrics: Metrics,
        options: WorkerOptions,
        people: ServedPeople,
    ) -> Result<Arc<Worker>, InboxError> {
        let conn = engine.store().new_connection().map_err(InboxError::Open)?;
        Ok(Arc::new(Worker { conn: Mutex::new(conn), engine, slack, metrics, options, people }))
    }

    /// Run a closure on the worker's connection off the async threads.
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, ProcessError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(ProcessError::Join)?
        .map_err(ProcessError::Inbox)
    }

    /// Drain the inbox until `shutdown`; `new_rows` wakes the loop when the writer commits.
    pub async fn run(self: Arc<Self>, new_rows: Arc<Notify>, shutdown: CancellationToken) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut busy: HashSet<String> = HashSet::new();
        // Counting the queue is a scan of the pending rows: once a second is plenty for a gauge.
        let mut depth_at: Option<Instant> = None;
        let mut pruned_at: Option<Instant> = None;
        tracing::info!(concurrency = self.options.concurrency, "inbox worker started");
        loop {
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(Instant::now());
                match self.db(|conn| inbox::prune(conn, Utc::now())).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, "pruned processed inbox rows"),
                    Err(error) => tracing::warn!(error = %error, "failed to prune the inbox"),
                }
            }
            let mut wait = self.options.poll;
            let free = self.options.concurrency.saturating_sub(tasks.len());
            if free > 0 {
                let busy_list: Vec<String> = busy.iter().cloned().collect();
                let now = Utc::now();
                let count_depth = depth_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
                let looked = self
                    .db(move |conn| {
                        let rows = inbox::due_heads(conn, &rfc3339(now), &busy_list, free)?;
                        let depth = if count_depth { Some(inbox::pending_count(conn)?) } else { None };
                        let next = inbox::next_due(conn)?;
                        Ok((rows, depth, next))
                    })
                    .await;
                match looked {
                    Ok((rows, depth, next)) => {
                        if let Some(depth) = depth {
                            self.metrics.inbox_depth.set(depth);
                            depth_at = Some(Instant::now());
                        }
                        if let Some(next) = next.and_then(|n| DateTime::parse_from_rfc3339(&n).ok()) {
                            let until = (next.with_timezone(&Utc) - now).to_std().unwrap_or_default();
                            wait = wait.min(until.max(Duration::from_millis(50)));
                        }
                        for row in rows {
                            busy.insert(row.user_id.clone());
                            let user = row.user_id.clone();
                            let span = info_span!("inbox_row", id = row.id, event_id = %row.event_id);
                            let handle = tasks.spawn(self.clone().process(row).instrument(span));
                            running.insert(handle.id(), user);
                        }
                    }
                    Err(error) => tracing::error!(error = %error, "failed to read the inbox"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = new_rows.notified() => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let id = match &done { Ok((id, ())) => *id, Err(e) => e.id() };
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!("inbox task panicked; the row stays pending");
                    }
                    if let Some(user) = running.remove(&id) {
                        busy.remove(&user);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for in-flight inbox rows");
            let drained =
                tokio::time::timeout(self.options.shutdown_grace, async { while tasks.join_next().await.is_some() {} })
                    .await;
            if drained.is_err() {
                tracing::warn!("in-flight inbox rows abandoned; they stay pending and resume at the next start");
                tasks.abort_all();
            }
        }
        tracing::info!("inbox worker stopped");
    }

    /// Process one row and record the result.
    async fn process(self: Arc<Self>, row: Row) {
        let started = Instant::now();
        let result = self.handle(&row).await;
        let outcome = match result {
            Ok(()) => {
                let done = row.clone();
                match self.db(move |conn| inbox::mark_done(conn, &done)).await {
                    Ok(()) => "done",
                    Err(error) => {
                        // Stays pending: the next attempt replays the engine and skips posted replies.
                        tracing::error!(error = %error, "failed to mark the row done");
                        "retry"
                    }
                }
            }
            Err(error) => {
                let attempts = row.attempts + 1;
                let message = error.chain();
                let (outcome, update) = if error.is_retryable() && attempts < self.options.max_attempts {
                    let wait = backoff(attempts, &self.options, error.retry_after());
                    let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                    tracing::warn!(error = %message, attempts, retry_in = ?wait, "inbox row failed, will retry");
                    let id = row.id;
                    let msg = message.clone();
                    ("retry", self.db(move |conn| inbox::mark_retry(conn, id, &rfc3339(next), &msg)).await)
                } else {
                    tracing::error!(error = %message, attempts, "inbox row failed for good");
                    let id = row.id;
                    ("failed", self.db(move |conn| inbox::mark_failed(conn, id, &message)).await)
                };
                if let Err(error) = update {
                    tracing::error!(error = %error, "failed to record the failed attempt");
                }
                outcome
            }
        };
        self.metrics
            .processing_seconds
            .get_or_create(&OutcomeLabels { outcome })
            .observe(started.elapsed().as_secs_f64());
    }

    #[instrument(skip_all, fields(source = row.payload.source()))]
    async fn handle(self: &Arc<Self>, row: &Row) -> Result<(), ProcessError> {
        let identity = row.payload.identity();
        let Some(person) = self.people.admit(identity.clone()).await.map_err(ProcessError::Admit)? else {
            // Never reaches the engine: no check-in, no history, no goal progress for a coworker.
            tracing::info!("message from someone this installation does not serve: refused, nothing stored");
            return match &row.payload {
                Payload::SlackMessage(m) => {
                    let thread = (is_direct_channel(&m.channel)).then(|| m.reply_thread());
                    self.post_once(&row.event_id, 0, &row.user_id, &m.channel, thread, NOT_SERVED_REPLY).await?;
                    Ok(())
                }
                Payload::SlackCommand(c) => {
                    self.respond_once(&row.event_id, 0, &row.user_id, &c.response_url, NOT_SERVED_REPLY).await?;
                    Ok(())
                }
                Payload::SlackView(_) => Ok(()),
            };
        };
        match &row.payload {
            Payload::SlackMessage(m) if !is_direct_channel(&m.channel) => {
                // A mention in a channel others read: what the assistant says about someone's
                // wellbeing (a crisis reply included) goes to their DM, and the channel thread only
                // hears where the answer went.
                let replies = self.converse(row, &person, &m.text, None, slack_time(&m.ts)).await?;
                if replies.is_empty() {
                    return Ok(());
                }
                let dm = self.slack.open_conversation(&m.user).await.map_err(ProcessError::Slack)?;
                let count = replies.len();
                for (seq, (text, _)) in replies.into_iter().enumerate() {
                    self.post_once(&row.event_id, seq as i64, &person, &dm, None, &text).await?;
                }
                let note = "I've answered you in a direct message, to keep it between us.";
                self.post_once(&row.event_id, count as i64, &person, &m.channel, Some(m.reply_thread()), note).await?;
                Ok(())
            }
            Payload::SlackMessage(m) => {
                let replies = self.converse(row, &person, &m.text, Some(m.reply_thread()), slack_time(&m.ts)).await?;
                for (seq, (text, thread)) in replies.into_iter().enumerate() {
                    let thread = thread.unwrap_or_else(|| m.reply_thread().to_string());
                    self.post_once(&row.event_id, seq as i64, &person, &m.channel, Some(&thread), &text).await?;
                }
                self.remember_dm(identity, m).await
            }
            Payload::SlackCommand(c) => {
                let replies = self.converse(row, &person, &c.text, None, row.received_at).await?;
                for (seq, (text, _)) in replies.into_iter().enumerate() {
                    self.respond_once(&row.event_id, seq as i64, &person, &c.response_url, &text).await?;
                }
                Ok(())
            }
            Payload::SlackView(v) => {
                let replies = self.converse(row, &person, &v.text, None, row.received_at).await?;
                if replies.is_empty() {
                    return Ok(());
                }
                let channel = self.slack.open_conversation(&v.user).await.map_err(ProcessError::Slack)?;
                for (seq, (text, _)) in replies.into_iter().enumerate() {
                    self.post_once(&row.event_id, seq as i64, &person, &channel, None, &text).await?;
                }
                Ok(())
            }
        }
    }

    /// The engine's replies (text, thread) for this row.
    async fn converse(
        &self,
        row: &Row,
        person: &str,
        text: &str,
        thread: Option<&str>,
        received_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<(String, Option<String>)>, ProcessError> {
        let outcome = self
            .engine
            .handle_message(IncomingMessage {
                event_id: row.event_id.clone(),
                user_id: person.to_string(),
                channel: Channel::Slack,
                text: text.to_string(),
                thread_ref: thread.map(str::to_string),
                received_at: received_at.unwrap_or_else(Utc::now),
            })
            .await
            .map_err(ProcessError::Engine)?;
        tracing::debug!(replies = outcome.replies.len(), replayed = outcome.replayed, "engine handled the message");
        Ok(outcome.replies.into_iter().map(|r| (r.text, r.thread_ref)).collect())
    }

    /// Post message `seq` of `key` unless an earlier attempt already did.
    pub async fn post_once(
        self: &Arc<Self>,
        key: &str,
        seq: i64,
        user_id: &str,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<String, ProcessError> {
        let k = key.to_string();
        match self.db(move |conn| deliveries::get(conn, &k, seq)).await? {
            Some(Delivery::Posted { ts, .. }) => return Ok(ts.unwrap_or_default()),
            Some(Delivery::Posting { channel: Some(was_in), thread_ts: was_thread }) => {
                // An earlier attempt stopped between sending and recording: did Slack get it?
                if let Some(ts) = self.find_posted(&was_in, was_thread.as_deref(), key, seq).await? {
                    let k = key.to_string();
                    let found = ts.clone();
                    self.db(move |conn| deliveries::finish(conn, &k, seq, Some(&found))).await?;
                    return Ok(ts);
                }
            }
            Some(Delivery::Posting { channel: None, .. }) | None => {}
        }
        let (k, u, c, t) = (key.to_string(), user_id.to_string(), channel.to_string(), thread_ts.map(str::to_string));
        self.db(move |conn| deliveries::begin(conn, &k, seq, &u, &c, t.as_deref())).await?;
        let posted = self
            .slack
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
            Some(thread) => self.slack.thread_replies(channel, thread).await,
            None => self.slack.recent_history(channel).await,
        }
        .map_err(ProcessError::Slack)?;
        Ok(messages.into_iter().find(|m| deliveries::is_delivery(m, key, seq)).map(|m| m.ts))
    }

    /// Send message `seq` of `key` through a `response_url` unless an earlier attempt did. A
    /// response_url cannot be searched afterwards, so an attempt cut short between sending and
    /// recording sends again (an ephemeral message, seen once by the user who asked).
    async fn respond_once(
        self: &Arc<Self>,
        key: &str,
        seq: i64,
        user_id: &str,
        response_url: &str,
        text: &str,
    ) -> Result<(), ProcessError> {
        let k = key.to_string();
        if let Some(Delivery::Posted { .. }) = self.db(move |conn| deliveries::get(conn, &k, seq)).await? {
            return Ok(());
        }
        let (k, u) = (key.to_string(), user_id.to_string());
        self.db(move |conn| deliveries::begin(conn, &k, seq, &u, "response_url", None)).await?;
        self.slack.respond(response_url, &ephemeral(text)).await.map_err(ProcessError::Slack)?;
        let k = key.to_string();
        self.db(move |conn| deliveries::finish(conn, &k, seq, None)).await
    }

    /// Keep the DM channel of a person who wrote in one (check-in prompts go there).
    async fn remember_dm(self: &Arc<Self>, identity: Identity, m: &InboxMessage) -> Result<(), ProcessError> {
        if m.kind != "message" {
            return Ok(());
        }
        let channel = m.channel.clone();
        self.db(move |conn| {
            wellbeing_assistant::people::set_private_ref(conn, &identity, &channel).map_err(InboxError::Store)
        })
        .await
    }
}

/// Whether a Slack conversation id is a one-to-one DM (`D...`); channels (`C...`) and private or
/// group conversations (`G...`) are read by others.
pub fn is_direct_channel(channel: &str) -> bool {
    channel.starts_with('D')
}

/// A Slack `ts` ("1700000000.000100") as a time.
pub fn slack_time(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let micros: u32 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    DateTime::from_timestamp(secs, micros * 1000)
}

pub use wellbeing_common::time::rfc3339_millis as rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_respects_retry_after() {
        let o = WorkerOptions::default();
        assert_eq!(backoff(1, &o, None), Duration::from_secs(5));
        assert_eq!(backoff(2, &o, None), Duration::from_secs(10));
        assert_eq!(backoff(5, &o, None), Duration::from_secs(80));
        assert_eq!(backoff(40, &o, None), o.max_backoff);
        assert_eq!(backoff(1, &o, Some(Duration::from_secs(30))), Duration::from_secs(30));
        // The whole default schedule spans about 40 minutes.
        let total: Duration = (1..o.max_attempts).map(|a| backoff(a, &o, None)).sum();
        assert_eq!(total, Duration::from_secs(2475));
    }

    #[test]
    fn slack_ts_is_a_time() {
        let t = slack_time("1700000000.000100").unwrap();
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_micros(), 100);
        assert_eq!(slack_time("1700000000").unwrap().timestamp(), 1_700_000_000);
        assert!(slack_time("soon").is_none());
    }
}
