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
    /// Value of the inbox `source` column.
    pub fn source(&self) -> &'static str {
        match self {
            Payload::SlackMessage(_) => "slack_event",
            Payload::SlackCommand(_) | Payload::SlackView(_) => "slack_command",
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
        }
        p
    }
}

#[derive(Debug, Clone)]
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
        // FULL: the commit is on disk before any waiting request is answered.
        conn.execute_batch("PRAGMA synchronous = FULL;").map_err(InboxError::Prepare)?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || run_writer(conn, rx, new_rows, metrics))
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

fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Msg>, new_rows: Arc<Notify>, metrics: Metrics) {
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
        if batch.is_empty() {
            continue;
        }
        let inserted = commit_batch(&mut conn, &mut batch);
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

/// The oldest pending row of each user, if it is due, skipping users in `busy`. A user whose
/// oldest row is waiting for a retry has nothing due: later rows wait behind it (strict order).
pub fn due_heads(conn: &Connection, now: &str, busy: &[String], limit: usize) -> Result<Vec<Row>, InboxError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT i.id, i.event_id, i.user_id, i.payload, i.attempts, i.received_at FROM inbox i
             WHERE i.status = 'pending'
               AND i.id = (SELECT MIN(j.id) FROM inbox j WHERE j.status = 'pending' AND j.user_id = i.user_id)
               AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= ?1)
             ORDER BY i.id",
        )
        .map_err(InboxError::Query)?;
    let rows = stmt
        .query_map([now], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(InboxError::Query)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, event_id, user_id, payload, attempts, received_at) = row.map_err(InboxError::Query)?;
        if busy.contains(&user_id) {
            continue;
        }
        let payload = serde_json::from_str(&payload).map_err(InboxError::Payload)?;
        let received_at = chrono::DateTime::parse_from_rfc3339(&received_at).ok().map(|t| t.to_utc());
        out.push(Row { id, event_id, user_id, payload, attempts, received_at });
        if out.len() >= limit {
            break;
        }
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
    }
}
