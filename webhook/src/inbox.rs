//! The durable inbox: every accepted event is committed here before Slack gets its 200.
//!
//! One dedicated writer thread owns its own connection with `synchronous=FULL` and commits every
//! insert queued while the previous commit was running in one transaction (group commit): one
//! fsync serves hundreds of requests under load, and a quiet server still commits each event on
//! its own within a millisecond or two. Each request waits on a oneshot for its own commit.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::metrics::Metrics;
use crate::slack::events::InboxMessage;

/// Upper bound of rows per transaction, so one commit never holds the write lock for long even
/// when a burst has queued tens of thousands of requests.
const MAX_BATCH: usize = 4096;
/// Queued inserts before request handlers wait for room (back-pressure instead of memory growth).
const QUEUE_CAPACITY: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("failed to open the inbox connection")]
    Open(#[source] wellbeing_assistant::StoreError),
    #[error("failed to prepare the inbox connection")]
    Prepare(#[source] rusqlite::Error),
    #[error("failed to insert into the inbox")]
    Insert(#[source] rusqlite::Error),
    #[error("failed to commit the inbox transaction: {0}")]
    Commit(String),
    #[error("the inbox writer has stopped")]
    Stopped,
    #[error("failed to query the inbox")]
    Query(#[source] rusqlite::Error),
    #[error("failed to encode or decode an inbox payload")]
    Payload(#[source] serde_json::Error),
    #[error("failed to update a stored identity")]
    Store(#[source] wellbeing_assistant::StoreError),
}

/// Where an inbox row came from, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A DM or an app mention from the Events API.
    SlackMessage(InboxMessage),
    /// `/checkin TEXT`: replies go back through the command's `response_url`.
    SlackCommand(CommandCheckIn),
    /// The check-in modal was submitted: replies go to the user's DM.
    SlackView(ViewCheckIn),
    /// A message typed on the local page or sent with `wellbeing chat`: the replies are recorded
    /// for the page, which shows them.
    Local(LocalText),
    /// A text message through Twilio: replies go back to the number by Twilio's REST API.
    Sms(SmsText),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsText {
    /// Who wrote, E.164 (`+4915112345678`).
    pub from: String,
    /// The number of ours they wrote to.
    pub to: String,
    pub text: String,
    /// Twilio's `MessageSid` (also in the row's event id, `sms:<MessageSid>`).
    pub message_sid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalText {
    /// The identity key of who wrote (`local:me`).
    pub identity: String,
    pub text: String,
}

/// The channel whose adapter answers a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChannel {
    Slack,
    Local,
    Sms,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCheckIn {
    pub team: String,
    pub user: String,
    pub text: String,
    pub response_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewCheckIn {
    pub team: String,
    pub user: String,
    pub text: String,
}

impl Payload {
    /// Who wrote it.
    pub fn identity(
        &self,
    ) -> Result<wellbeing_assistant::people::Identity, wellbeing_assistant::people::IdentityError> {
        let (team, user) = match self {
            Payload::SlackMessage(m) => (&m.team, &m.user),
            Payload::SlackCommand(c) => (&c.team, &c.user),
            Payload::SlackView(v) => (&v.team, &v.user),
            Payload::Local(l) => return l.identity.parse(),
            Payload::Sms(m) => return format!("sms:{}", m.from).parse(),
        };
        Ok(wellbeing_assistant::people::Identity::slack(Some(team), user))
    }

    /// What the person said.
    pub fn text(&self) -> &str {
        match self {
            Payload::SlackMessage(m) => &m.text,
            Payload::SlackCommand(c) => &c.text,
            Payload::SlackView(v) => &v.text,
            Payload::Local(l) => &l.text,
            Payload::Sms(m) => &m.text,
        }
    }

    pub fn channel(&self) -> RowChannel {
        match self {
            Payload::SlackMessage(_) | Payload::SlackCommand(_) | Payload::SlackView(_) => RowChannel::Slack,
            Payload::Local(_) => RowChannel::Local,
            Payload::Sms(_) => RowChannel::Sms,
        }
    }

    /// Value of the inbox `source` column.
    pub fn source(&self) -> &'static str {
        match self {
            Payload::SlackMessage(_) => "slack_event",
            Payload::SlackCommand(_) | Payload::SlackView(_) => "slack_command",
            Payload::Local(_) => "local",
            Payload::Sms(_) => "sms",
        }
    }

    /// The payload with the user's words removed, kept once a row is done: the inbox is a queue,
    /// and what the user said lives on only in redacted form in the interactions table.
    pub fn without_text(&self) -> Payload {
        let mut p = self.clone();
        match &mut p {
            Payload::SlackMessage(m) => m.text.clear(),
            Payload::SlackCommand(c) => c.text.clear(),
            Payload::SlackView(v) => v.text.clear(),
            Payload::Local(l) => l.text.clear(),
            Payload::Sms(m) => m.text.clear(),
        }
        p
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow {
    pub event_id: String,
    pub user_id: String,
    pub payload: Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new row with this id.
    New(i64),
    /// The event id was already in the inbox (a Slack retry): nothing written.
    Duplicate,
}

struct Insert {
    event_id: String,
    source: &'static str,
    user_id: String,
    payload: String,
    done: oneshot::Sender<Result<Inserted, InboxError>>,
}

enum Msg {
    Insert(Insert),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for InboxWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboxWriter")
    }
}

impl InboxWriter {
    /// Start the writer thread on its own connection to the database at `path`. `new_rows` is
    /// notified after every commit that added rows (the worker waits on it).
    pub fn start(
        path: &Path,
        new_rows: Arc<Notify>,
        metrics: Metrics,
    ) -> Result<(InboxWriter, JoinHandle<()>), InboxError> {
        let conn = wellbeing_assistant::store::open_connection(path).map_err(InboxError::Open)?;
        // FULL: the commit is on disk before any waiting request is answered. No automatic
        // checkpoints on this connection: a checkpoint copies the WAL into the database and
        // fsyncs it, which would stall every request waiting on the commit that triggered it.
        // The checkpointer thread does that work beside the writer instead.
        // After the WAL restarts it is cut back to this size: big enough that commits overwrite
        // allocated blocks, small enough not to keep a burst's worth of disk.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
            WAL_RESTART_BYTES
        ))
        .map_err(InboxError::Prepare)?;
        let checkpoint_conn = wellbeing_assistant::store::open_connection(path).map_err(InboxError::Open)?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (committed, commits) = std::sync::mpsc::sync_channel::<()>(1);
        let catch_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = catch_up.clone();
        let checkpointer = std::thread::Builder::new()
            .name("inbox-checkpoint".into())
            .spawn(move || run_checkpointer(checkpoint_conn, commits, asked))
            .expect("spawning a thread succeeds");
        let handle = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || {
                run_writer(conn, rx, new_rows, metrics, committed, catch_up);
                // The writer dropped its end of the signal: the checkpointer finishes and closes.
                let _ = checkpointer.join();
            })
            .expect("spawning a thread succeeds");
        Ok((InboxWriter { tx }, handle))
    }

    /// Queue one insert and wait until the transaction that holds it is committed.
    pub async fn insert(&self, row: NewRow) -> Result<Inserted, InboxError> {
        let payload = serde_json::to_string(&row.payload).map_err(InboxError::Payload)?;
        let (done, wait) = oneshot::channel();
        let msg = Msg::Insert(Insert {
            event_id: row.event_id,
            source: row.payload.source(),
            user_id: row.user_id,
            payload,
            done,
        });
        self.tx.send(msg).await.map_err(|_| InboxError::Stopped)?;
        wait.await.map_err(|_| InboxError::Stopped)?
    }

    /// Commit whatever is queued, then stop the thread (its connection closes with it).
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// How often the WAL is folded into the database while rows come in. Each PASSIVE checkpoint
/// copies what is committed so far without blocking the writer.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// WAL size at which the writer finishes a checkpoint itself. Under sustained load the background
/// checkpoints never quite catch up (frames keep arriving while they copy), so the WAL would only
/// grow; the writer's own PASSIVE checkpoint copies the little that is left, and its next
/// transaction starts the WAL over from the beginning, overwriting allocated blocks (measured
/// here: fdatasync 1.6 ms when overwriting against 3.8 ms when the file grows).
const WAL_RESTART_BYTES: i64 = 64 * 1024 * 1024;
/// WAL frames are a page (4096 bytes by default) plus a 24-byte header.
const WAL_RESTART_FRAMES: i64 = WAL_RESTART_BYTES / (4096 + 24);

fn run_checkpointer(
    conn: Connection,
    commits: std::sync::mpsc::Receiver<()>,
    catch_up: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut last = std::time::Instant::now();
    let mut pending = false;
    loop {
        match commits.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) => pending = true,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // The writer stopped: one last checkpoint, then close.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if pending && last.elapsed() >= CHECKPOINT_EVERY {
            // (busy, frames in the WAL, frames checkpointed)
            match conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            {
                Ok((frames, _)) if frames >= WAL_RESTART_FRAMES => {
                    catch_up.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "inbox checkpoint failed"),
            }
            pending = false;
            last = std::time::Instant::now();
        }
    }
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    new_rows: Arc<Notify>,
    metrics: Metrics,
    committed: std::sync::mpsc::SyncSender<()>,
    catch_up: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut batch: Vec<Insert> = Vec::with_capacity(MAX_BATCH);
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        // Sleep until something arrives, then take everything already queued behind it.
        match rx.blocking_recv() {
            Some(Msg::Insert(insert)) => batch.push(insert),
            Some(Msg::Shutdown(done)) => stop = Some(done),
            None => break,
        }
        while batch.len() < MAX_BATCH && stop.is_none() {
            match rx.try_recv() {
                Ok(Msg::Insert(insert)) => batch.push(insert),
                Ok(Msg::Shutdown(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        if catch_up.swap(false, std::sync::atomic::Ordering::Relaxed) {
            // Between transactions, so nothing new arrives while it copies the rest of the WAL.
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %error, "inbox catch-up checkpoint failed");
            }
        }
        if batch.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let inserted = commit_batch(&mut conn, &mut batch);
        metrics.inbox_commit_seconds.observe(started.elapsed().as_secs_f64());
        metrics.inbox_commit_batch.observe(batch.len() as f64);
        match inserted {
            Ok(results) => {
                let new = results.iter().filter(|r| matches!(r, Ok(Inserted::New(_)))).count();
                for (insert, result) in batch.drain(..).zip(results) {
                    let _ = insert.done.send(result);
                }
                if new > 0 {
                    metrics.inbox_depth.inc_by(new as i64);
                    new_rows.notify_one();
                    // Never blocks: one queued signal is as good as many.
                    let _ = committed.try_send(());
                }
            }
            Err(message) => {
                tracing::error!(error = %message, rows = batch.len(), "inbox commit failed");
                for insert in batch.drain(..) {
                    let _ = insert.done.send(Err(InboxError::Commit(message.clone())));
                }
            }
        }
    }
    drop(conn);
    drop(committed);
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Insert every row of the batch in one transaction. Per-row results, or the commit's error.
fn commit_batch(conn: &mut Connection, batch: &mut [Insert]) -> Result<Vec<Result<Inserted, InboxError>>, String> {
    let received_at = wellbeing_assistant::store::now_rfc3339();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO inbox (event_id, source, user_id, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .map_err(|e| e.to_string())?;
        for insert in batch.iter() {
            let result = match stmt.execute(params![
                insert.event_id,
                insert.source,
                insert.user_id,
                insert.payload,
                received_at
            ]) {
                Ok(0) => Ok(Inserted::Duplicate),
                Ok(_) => Ok(Inserted::New(tx.last_insert_rowid())),
                Err(e) => Err(InboxError::Insert(e)),
            };
            results.push(result);
        }
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok(results)
}

/// One inbox row as the worker sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    pub event_id: String,
    pub user_id: String,
    pub payload: Payload,
    pub attempts: i64,
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How many pending rows one look at the queue reads at most. A user with a long backlog hides
/// the users behind it only beyond this many rows, and those are reached as the backlog drains.
const QUEUE_SCAN: usize = 2000;

/// The oldest pending row of each user, if it is due, skipping users in `busy`. A user whose
/// oldest row is waiting for a retry has nothing due: later rows wait behind it (strict order).
/// Reads the queue in id order through the partial index on pending rows, so the cost does not
/// grow with the number of processed rows.
pub fn due_heads(conn: &Connection, now: &str, busy: &[String], limit: usize) -> Result<Vec<Row>, InboxError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, event_id, user_id, payload, attempts, received_at, next_attempt_at FROM inbox
             WHERE status = 'pending' ORDER BY id LIMIT ?1",
        )
        .map_err(InboxError::Query)?;
    let mut rows = stmt.query([QUEUE_SCAN as i64]).map_err(InboxError::Query)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(r) = rows.next().map_err(InboxError::Query)? else { break };
        let user_id: String = r.get(2).map_err(InboxError::Query)?;
        // The first row of a user in id order is its head; the rest wait behind it.
        if !seen.insert(user_id.clone()) || busy.contains(&user_id) {
            continue;
        }
        let next_attempt_at: Option<String> = r.get(6).map_err(InboxError::Query)?;
        if next_attempt_at.as_deref().is_some_and(|t| t > now) {
            continue;
        }
        let payload: String = r.get(3).map_err(InboxError::Query)?;
        let received_at: String = r.get(5).map_err(InboxError::Query)?;
        out.push(Row {
            id: r.get(0).map_err(InboxError::Query)?,
            event_id: r.get(1).map_err(InboxError::Query)?,
            user_id,
            payload: serde_json::from_str(&payload).map_err(InboxError::Payload)?,
            attempts: r.get(4).map_err(InboxError::Query)?,
            received_at: chrono::DateTime::parse_from_rfc3339(&received_at).ok().map(|t| t.to_utc()),
        });
    }
    Ok(out)
}

/// The next time a pending row becomes due (to sleep until then).
pub fn next_due(conn: &Connection) -> Result<Option<String>, InboxError> {
    conn.query_row("SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending'", [], |r| r.get(0))
        .map_err(InboxError::Query)
}

pub fn pending_count(conn: &Connection) -> Result<i64, InboxError> {
    conn.query_row("SELECT COUNT(*) FROM inbox WHERE status = 'pending'", [], |r| r.get(0)).map_err(InboxError::Query)
}

/// Processed: keep the row (its event id still deduplicates late Slack retries) without the text.
pub fn mark_done(conn: &Connection, row: &Row) -> Result<(), InboxError> {
    let payload = serde_json::to_string(&row.payload.without_text()).map_err(InboxError::Payload)?;
    conn.execute(
        "UPDATE inbox SET status = 'done', payload = ?2, processed_at = ?3, attempts = attempts + 1, last_error = NULL
         WHERE id = ?1",
        params![row.id, payload, wellbeing_assistant::store::now_rfc3339()],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

/// A failed attempt that will be tried again at `next_attempt_at`.
pub fn mark_retry(conn: &Connection, id: i64, next_attempt_at: &str, error: &str) -> Result<(), InboxError> {
    conn.execute(
        "UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
        params![id, next_attempt_at, error],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

/// Given up on: later rows of the same user go ahead.
pub fn mark_failed(conn: &Connection, id: i64, error: &str) -> Result<(), InboxError> {
    conn.execute(
        "UPDATE inbox SET status = 'failed', attempts = attempts + 1, last_error = ?2, processed_at = ?3 WHERE id = ?1",
        params![id, error, wellbeing_assistant::store::now_rfc3339()],
    )
    .map_err(InboxError::Query)?;
    Ok(())
}

/// Processed rows are kept this long: long enough to deduplicate any Slack retry (Slack gives up
/// after three within the hour), then only their ids would be left, so they go.
pub const KEEP_DONE: chrono::Duration = chrono::Duration::days(7);
/// Failed rows stay longer, for someone to look at `last_error`.
pub const KEEP_FAILED: chrono::Duration = chrono::Duration::days(30);

/// Delete processed rows (and their delivery records) older than the keep times. Returns the
/// number of inbox rows deleted.
pub fn prune(conn: &Connection, now: chrono::DateTime<chrono::Utc>) -> Result<usize, InboxError> {
    let stamp = |d: chrono::Duration| (now - d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (done_before, failed_before) = (stamp(KEEP_DONE), stamp(KEEP_FAILED));
    let deleted = conn
        .execute(
            "DELETE FROM inbox WHERE (status = 'done' AND processed_at < ?1) OR (status = 'failed' AND processed_at < ?2)",
            params![done_before, failed_before],
        )
        .map_err(InboxError::Query)?;
    conn.execute("DELETE FROM deliveries WHERE status = 'posted' AND posted_at < ?1", params![done_before])
        .map_err(InboxError::Query)?;
    Ok(deleted)
}

/// Drop every inbox row of a user (`/wellbeing forget`).
pub fn forget_user(conn: &Connection, user_id: &str) -> Result<usize, InboxError> {
    conn.execute("DELETE FROM inbox WHERE user_id = ?1", [user_id]).map_err(InboxError::Query)
}

/// Status of one row by event id (tests and the load generator's check).
pub fn status_of(conn: &Connection, event_id: &str) -> Result<Option<(String, i64)>, InboxError> {
    conn.query_row("SELECT status, attempts FROM inbox WHERE event_id = ?1", [event_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(InboxError::Query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::events::InboxMessage;

    fn message(user: &str, text: &str) -> Payload {
        Payload::SlackMessage(InboxMessage {
            team: "T1".into(),
            user: user.into(),
            channel: "D1".into(),
            ts: "1.1".into(),
            thread_ts: None,
            text: text.into(),
            kind: "message".into(),
        })
    }

    fn row(event_id: &str, user: &str) -> NewRow {
        NewRow { event_id: event_id.into(), user_id: format!("slack:T1:{user}"), payload: message(user, "hello") }
    }

    #[tokio::test]
    async fn concurrent_inserts_are_committed_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
        let notify = Arc::new(Notify::new());
        let metrics = Metrics::new();
        let (writer, thread) = InboxWriter::start(store.path(), notify.clone(), metrics.clone()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500 {
            let writer = writer.clone();
            // Every event id twice: one of each pair must come back as a duplicate.
            tasks.push(tokio::spawn(async move { writer.insert(row(&format!("Ev{}", i % 250), "U1")).await.unwrap() }));
        }
        let mut new = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Inserted::New(_)) {
                new += 1;
            }
        }
        assert_eq!(new, 250);
        writer.shutdown().await;
        thread.join().unwrap();
        let conn = store.conn();
        assert_eq!(pending_count(&conn).unwrap(), 250);
        assert_eq!(metrics.inbox_depth.get(), 250);
        // Fewer commits than requests: group commit happened.
        let text = metrics.encode();
        let commits: f64 = text
            .lines()
            .find(|l| l.starts_with("wellbeing_inbox_commit_batch_rows_count"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .parse()
            .unwrap();
        assert!(commits < 500.0, "{commits} commits for 500 inserts");
    }

    #[tokio::test]
    async fn a_stopped_writer_refuses_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let store = wellbeing_assistant::Store::open_in(dir.path()).unwrap();
        let (writer, thread) = InboxWriter::start(store.path(), Arc::new(Notify::new()), Metrics::new()).unwrap();
        writer.shutdown().await;
        thread.join().unwrap();
        assert!(matches!(writer.insert(row("Ev1", "U1")).await, Err(InboxError::Stopped)));
    }

    #[test]
    fn heads_are_per_user_in_order_and_wait_for_retries() {
        let store = wellbeing_assistant::Store::in_memory().unwrap();
        let conn = store.conn();
        let insert = |event: &str, user: &str| {
            conn.execute(
                "INSERT INTO inbox (event_id, source, user_id, payload, received_at) VALUES (?1, 'slack_event', ?2, ?3, '2026-01-01T00:00:00Z')",
                params![event, format!("slack:T1:{user}"), serde_json::to_string(&message(user, "hi")).unwrap()],
            )
            .unwrap();
        };
        insert("a1", "A");
        insert("b1", "B");
        insert("a2", "A");
        insert("b2", "B");
        let now = "2026-01-01T00:00:10Z";
        let heads: Vec<String> = due_heads(&conn, now, &[], 10).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(heads, ["a1", "b1"]);
        // A is busy: only B.
        let heads: Vec<String> =
            due_heads(&conn, now, &["slack:T1:A".to_string()], 10).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(heads, ["b1"]);
        // a1 waits for a retry: a2 must not overtake it.
        let a1 = due_heads(&conn, now, &[], 1).unwrap().remove(0);
        mark_retry(&conn, a1.id, "2026-01-01T00:01:00Z", "slack down").unwrap();
        let heads: Vec<String> = due_heads(&conn, now, &[], 10).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(heads, ["b1"]);
        assert_eq!(next_due(&conn).unwrap().as_deref(), Some("2026-01-01T00:01:00Z"));
        // Failed for good: a2 goes ahead. Done rows lose their text.
        mark_failed(&conn, a1.id, "gave up").unwrap();
        let b1 = due_heads(&conn, now, &[], 10).unwrap().into_iter().find(|r| r.event_id == "b1").unwrap();
        mark_done(&conn, &b1).unwrap();
        let heads: Vec<String> = due_heads(&conn, now, &[], 10).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(heads, ["a2", "b2"]);
        let payload: String =
            conn.query_row("SELECT payload FROM inbox WHERE event_id = 'b1'", [], |r| r.get(0)).unwrap();
        assert!(!payload.contains("hi"), "{payload}");
        assert_eq!(status_of(&conn, "a1").unwrap(), Some(("failed".into(), 2)));

        // Pruning: nothing is old enough today; in 8 days the done row goes, the failed one stays
        // until its own keep time.
        let today = chrono::Utc::now();
        assert_eq!(prune(&conn, today).unwrap(), 0);
        assert_eq!(prune(&conn, today + chrono::Duration::days(8)).unwrap(), 1);
        assert_eq!(status_of(&conn, "b1").unwrap(), None);
        assert!(status_of(&conn, "a1").unwrap().is_some());
        assert_eq!(prune(&conn, today + chrono::Duration::days(31)).unwrap(), 1);
        assert_eq!(status_of(&conn, "a1").unwrap(), None);
        // Pending rows are never pruned.
        assert!(status_of(&conn, "a2").unwrap().is_some());
    }
}
