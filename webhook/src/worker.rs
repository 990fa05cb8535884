//! The inbox worker: drains pending rows in order per user (different users in parallel, one user
//! strictly in order), hands each message to the conversation engine, posts the replies, and marks
//! the row done. Failures are retried with exponential backoff and given up after a number of
//! attempts; rows left pending by a crash are picked up again at start-up. The engine is
//! idempotent per event id and deliveries are recorded, so a retry never posts a reply twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, instrument};
use wellbeing_assistant::engine::{Assistant, Channel, EngineError, IncomingMessage, OutgoingMessage as Reply};

use crate::channel::OutboundAdapter;
use crate::channel::local::LocalOutbound;
use crate::db::{Db, DbError};
use crate::inbox::{self, InboxError, Payload, Row, RowChannel};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::people::ServedPeople;
use crate::slack::client::SlackError;
use crate::slack::outbound::{SlackOutbound, is_direct_channel};
use crate::sms::outbound::SmsOutbound;

/// The outbound adapters of the channels this process serves besides the local page.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    pub slack: Option<Arc<SlackOutbound>>,
    pub sms: Option<Arc<SmsOutbound>>,
}

impl Outbound {
    /// Slack alone (or nothing but the local page).
    pub fn slack(slack: Option<Arc<SlackOutbound>>) -> Outbound {
        Outbound { slack, sms: None }
    }
}

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
    #[error("failed to deliver by SMS")]
    Sms(#[source] crate::sms::outbound::SendError),
    #[error("failed to update the inbox")]
    Inbox(#[source] InboxError),
    #[error("a blocking database task failed")]
    Join(#[source] tokio::task::JoinError),
    #[error("failed to tell who wrote")]
    Admit(#[source] crate::people::AdmitError),
    #[error("the row names no valid identity")]
    Identity(#[source] wellbeing_assistant::people::IdentityError),
    #[error("{0} reached an adapter of another channel")]
    WrongChannel(&'static str),
    #[error("this process does not serve the row's channel (Slack or Twilio is not configured)")]
    NoAdapter,
}

impl From<DbError> for ProcessError {
    fn from(error: DbError) -> ProcessError {
        match error {
            DbError::Inbox(e) => ProcessError::Inbox(e),
            DbError::Join(e) => ProcessError::Join(e),
        }
    }
}

impl ProcessError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ProcessError::Slack(e) => e.is_retryable(),
            ProcessError::Sms(e) => e.is_retryable(),
            // Database trouble (busy, disk full) and engine errors other than invalid input are
            // worth another try; invalid input will be as invalid next time.
            ProcessError::Engine(EngineError::Invalid(_)) => false,
            ProcessError::Identity(_) | ProcessError::WrongChannel(_) => false,
            // Slack may be configured at the next start.
            ProcessError::NoAdapter => true,
            ProcessError::Engine(_) | ProcessError::Inbox(_) | ProcessError::Join(_) | ProcessError::Admit(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ProcessError::Slack(e) => e.retry_after(),
            ProcessError::Sms(e) => e.retry_after(),
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

/// A row the worker has finished with, for whoever waits on it (the local page's request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFinished {
    pub event_id: String,
    /// done | retry | failed
    pub outcome: &'static str,
}

/// Everything a worker task needs, shared by all of them.
pub struct Worker {
    db: Db,
    engine: Assistant,
    /// Slack's adapter, when this process serves Slack.
    slack: Option<Arc<SlackOutbound>>,
    /// Twilio's adapter, when this process serves SMS.
    sms: Option<Arc<SmsOutbound>>,
    local: LocalOutbound,
    metrics: Metrics,
    options: WorkerOptions,
    /// Who is served; anyone else is refused before the engine sees their words.
    people: ServedPeople,
    finished: broadcast::Sender<RowFinished>,
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
        outbound: Outbound,
        metrics: Metrics,
        options: WorkerOptions,
        people: ServedPeople,
    ) -> Result<Arc<Worker>, InboxError> {
        let db = Db::open(engine.store())?;
        let (finished, _) = broadcast::channel(1024);
        let local = LocalOutbound::new(engine.clone());
        let Outbound { slack, sms } = outbound;
        Ok(Arc::new(Worker { db, engine, slack, sms, local, metrics, options, people, finished }))
    }

    /// Rows as they are finished (done, scheduled for a retry, or failed for good).
    pub fn subscribe(&self) -> broadcast::Receiver<RowFinished> {
        self.finished.subscribe()
    }

    /// Run a closure on the worker's connection off the async threads.
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, ProcessError> {
        self.db.run(f).await.map_err(ProcessError::from)
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
        // Nobody may be listening: that is fine.
        let _ = self.finished.send(RowFinished { event_id: row.event_id.clone(), outcome });
    }

    #[instrument(skip_all, fields(source = row.payload.source()))]
    async fn handle(self: &Arc<Self>, row: &Row) -> Result<(), ProcessError> {
        let adapter: &dyn OutboundAdapter = match row.payload.channel() {
            RowChannel::Local => &self.local,
            RowChannel::Slack => self.slack.as_deref().ok_or(ProcessError::NoAdapter)?,
            RowChannel::Sms => self.sms.as_deref().ok_or(ProcessError::NoAdapter)?,
        };
        let identity = row.payload.identity().map_err(ProcessError::Identity)?;
        let Some(person) = self.people.admit(identity).await.map_err(ProcessError::Admit)? else {
            // Never reaches the engine: no check-in, no history, no goal progress for a coworker.
            tracing::info!("message from someone this installation does not serve: refused, nothing stored");
            return adapter.refuse(row).await;
        };
        let replies = self.converse(row, &person).await?;
        adapter.reply(row, &person, &replies).await
    }

    /// The engine's replies for this row.
    async fn converse(&self, row: &Row, person: &str) -> Result<Vec<Reply>, ProcessError> {
        let (channel, thread, sent_at) = match &row.payload {
            // In a channel thread the replies go to the DM instead: no thread to keep.
            Payload::SlackMessage(m) if !is_direct_channel(&m.channel) => (Channel::Slack, None, slack_time(&m.ts)),
            Payload::SlackMessage(m) => (Channel::Slack, Some(m.reply_thread().to_string()), slack_time(&m.ts)),
            Payload::SlackCommand(_) | Payload::SlackView(_) => (Channel::Slack, None, None),
            Payload::Local(_) => (Channel::Local, None, None),
            Payload::Sms(_) => (Channel::Sms, None, None),
        };
        let outcome = self
            .engine
            .handle_message(IncomingMessage {
                event_id: row.event_id.clone(),
                user_id: person.to_string(),
                channel,
                text: row.payload.text().to_string(),
                thread_ref: thread,
                received_at: sent_at.or(row.received_at).unwrap_or_else(Utc::now),
            })
            .await
            .map_err(ProcessError::Engine)?;
        tracing::debug!(replies = outcome.replies.len(), replayed = outcome.replayed, "engine handled the message");
        Ok(outcome.replies)
    }
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
