//! The local channel backed by the durable inbox, the worker and the database: what
//! `wellbeing up` serves and what `wellbeing chat` uses when no instance is running. A message is
//! committed to the inbox under the sender's idempotency key before anything else happens, the
//! worker handles it like any other channel's, and the request waits for that row to finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokio::sync::broadcast::error::RecvError;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::store::Store;

use super::{LocalBackend, LocalError, LocalMessage, SendResult, StoredCheckIn};
use crate::inbox::{self, InboxError, InboxWriter, NewRow};
use crate::worker::{NOT_SERVED_REPLY, Worker};

/// How long a request waits for its message to be handled before it answers "still working"
/// (202): the offline extractor takes milliseconds, an LLM reply seconds (20 s budget by
/// default), a retry after a failed LLM call comes after the worker's backoff. Under the 60 s
/// `wellbeing chat` client timeout. The answer still appears in the conversation later.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(45);

/// The local page's messages go through the inbox for one local person.
#[derive(Clone)]
pub struct InboxBackend {
    assistant: Assistant,
    inbox: InboxWriter,
    worker: Arc<Worker>,
    person: String,
    wait: Duration,
}

impl InboxBackend {
    pub fn new(assistant: Assistant, inbox: InboxWriter, worker: Arc<Worker>, person: impl Into<String>) -> Self {
        InboxBackend { assistant, inbox, worker, person: person.into(), wait: DEFAULT_WAIT }
    }

    /// Wait at most this long for a message to be handled.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    async fn store<T: Send + 'static>(
        &self,
        action: &'static str,
        f: impl FnOnce(&Store) -> Result<T, LocalError> + Send + 'static,
    ) -> Result<T, LocalError> {
        let store = self.assistant.store().clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| LocalError::backend(action, e))?
    }

    /// Wait until the row of `event_id` is done; `Pending` after the wait, `Failed` if the worker
    /// gave up on it.
    async fn finished(&self, event_id: &str) -> Result<(), LocalError> {
        let mut finished = self.worker.subscribe();
        let deadline = Instant::now() + self.wait;
        loop {
            let id = event_id.to_string();
            let status = self
                .store("read the inbox", move |store| {
                    inbox::status_of(&store.conn(), &id).map_err(|e| LocalError::backend("read the inbox", e))
                })
                .await?;
            match status.as_ref().map(|(status, _)| status.as_str()) {
                Some("done") => return Ok(()),
                Some("failed") => return Err(LocalError::Failed),
                // Pruned: long done.
                None => return Ok(()),
                Some(_) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LocalError::Pending);
            }
            // Woken by any finished row (then look again); the timer covers a missed notice.
            let look_again = (deadline - now).min(Duration::from_secs(1));
            tokio::select! {
                notice = finished.recv() => match notice {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(LocalError::ShuttingDown),
                },
                _ = tokio::time::sleep(look_again) => {}
            }
        }
    }
}

#[async_trait]
impl LocalBackend for InboxBackend {
    fn assistant_name(&self) -> String {
        self.assistant.personas().active().spec().display_name.clone()
    }

    async fn send(&self, row: NewRow) -> Result<SendResult, LocalError> {
        let event_id = row.event_id.clone();
        match self.inbox.insert(row).await {
            Ok(inserted) => {
                tracing::debug!(duplicate = inserted == inbox::Inserted::Duplicate, "local message recorded")
            }
            Err(InboxError::Stopped) => return Err(LocalError::ShuttingDown),
            Err(e) => return Err(LocalError::backend("record the message", e)),
        }
        self.finished(&event_id).await?;
        let (person, id) = (self.person.clone(), event_id.clone());
        self.store("read the conversation", move |store| result_of(store, &person, &id)).await
    }

    async fn messages(&self, after: Option<i64>, limit: usize) -> Result<Vec<LocalMessage>, LocalError> {
        let person = self.person.clone();
        self.store("read the conversation", move |store| history(store, &person, after, limit)).await
    }

    async fn forget_everything(&self) -> Result<u64, LocalError> {
        let report = self.assistant.forget_user(None).map_err(|e| LocalError::backend("delete the stored data", e))?;
        Ok(report.total() as u64)
    }
}

/// What the local user sees for a handled message: its replies, the check-in it was stored as,
/// and the conversation from that message on. A message that was refused left nothing: it gets
/// the refusal and no history.
fn result_of(store: &Store, person: &str, event_id: &str) -> Result<SendResult, LocalError> {
    let engine_view = wellbeing_assistant::engine::stored_outcome(store, event_id)
        .map_err(|e| LocalError::backend("read the answer", e))?;
    let Some(outcome) = engine_view else {
        return Ok(SendResult { reply: NOT_SERVED_REPLY.to_string(), checkin: None, messages: Vec::new() });
    };
    let reply = outcome.replies.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n\n");
    let checkin = outcome.checkin_id.zip(outcome.checkin).map(|(id, data)| StoredCheckIn::new(id, data));
    let first: Option<i64> = store
        .conn()
        .query_row(
            "SELECT id FROM interactions WHERE event_id = ?1 AND direction = 'in' AND user_id = ?2",
            params![event_id, person],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| LocalError::backend("read the conversation", e))?;
    let messages = match first {
        Some(id) => history(store, person, Some(id - 1), super::PAGE_SIZE)?,
        None => Vec::new(),
    };
    Ok(SendResult { reply, checkin, messages })
}

/// The conversation of `user_id`: messages after `after` (oldest first), or the newest `limit`.
/// The check-in a message produced is attached to the user's own message.
pub fn history(
    store: &Store,
    user_id: &str,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<LocalMessage>, LocalError> {
    let conn = store.conn();
    let select = "SELECT i.id, i.direction, i.kind, i.text, i.created_at, c.id, c.data
         FROM interactions i LEFT JOIN checkins c ON c.id = i.checkin_id AND i.direction = 'in'
         WHERE i.user_id = ?1 AND i.id > ?2";
    let sql = match after {
        Some(_) => format!("{select} ORDER BY i.id LIMIT ?3"),
        None => format!("{select} ORDER BY i.id DESC LIMIT ?3"),
    };
    let read = || -> Result<Vec<LocalMessage>, rusqlite::Error> {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![user_id, after.unwrap_or(0), limit as i64], |r| {
            let checkin_id: Option<i64> = r.get(5)?;
            let data: Option<String> = r.get(6)?;
            let checkin = checkin_id
                .zip(data)
                .and_then(|(id, data)| serde_json::from_str(&data).ok().map(|c| StoredCheckIn::new(id, c)));
            Ok(LocalMessage {
                id: r.get(0)?,
                direction: r.get(1)?,
                kind: r.get(2)?,
                text: r.get(3)?,
                created_at: r.get(4)?,
                checkin,
                actions: Vec::new(),
            })
        })?;
        rows.collect()
    };
    let mut messages = read().map_err(|e| LocalError::backend("read the conversation", e))?;
    super::actions::attach_buttons(&conn, &mut messages).map_err(|e| LocalError::backend("read the buttons", e))?;
    if after.is_none() {
        messages.reverse();
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use wellbeing_assistant::engine::{AssistantConfig, Channel, IncomingMessage};
    use wellbeing_assistant::people::{Identity, PersonConfig};
    use wellbeing_assistant::persona::PersonaRegistry;

    use super::*;
    use crate::inbox::{LocalText, Payload};
    use crate::metrics::Metrics;
    use crate::people::ServedPeople;
    use crate::pipeline::Pipeline;
    use crate::worker::WorkerOptions;

    struct Local {
        _dir: tempfile::TempDir,
        assistant: Assistant,
        pipeline: Pipeline,
        backend: InboxBackend,
    }

    /// The local person served on a database file, with the inbox and (if `worker`) its worker.
    fn local(worker: bool) -> Local {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let assistant = Assistant::new(store.clone(), PersonaRegistry::default(), None, AssistantConfig::default());
        let me = PersonConfig { name: "local:me".into(), identities: vec![Identity::local("me")] };
        let people = ServedPeople::start(store, &[me]).unwrap();
        let options = worker.then(|| WorkerOptions { poll: Duration::from_millis(50), ..Default::default() });
        let pipeline = Pipeline::start(&assistant, Default::default(), people, Metrics::new(), options).unwrap();
        let backend = InboxBackend::new(assistant.clone(), pipeline.inbox.clone(), pipeline.worker.clone(), "local:me");
        Local { _dir: dir, assistant, pipeline, backend }
    }

    fn row(key: &str, identity: &str, text: &str) -> NewRow {
        NewRow {
            event_id: crate::channel::local::event_id(Some(key)),
            user_id: "local:me".into(),
            payload: Payload::Local(LocalText { identity: identity.into(), text: text.into() }),
        }
    }

    fn count(store: &Store, sql: &str) -> i64 {
        store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn a_message_goes_through_the_inbox_and_is_shown_with_its_check_in() {
        let l = local(true);
        let result = l.backend.send(row("k1", "local:me", "slept badly, skipped breakfast")).await.unwrap();
        assert!(!result.reply.is_empty());
        let checkin = result.checkin.expect("a check-in was stored");
        assert!(checkin.summary.iter().any(|(k, v)| k == "sleep" && v.contains("poor")), "{:?}", checkin.summary);
        assert!(checkin.summary.iter().any(|(k, v)| k == "meals" && v == "breakfast skipped"), "{:?}", checkin.summary);
        let store = l.assistant.store();
        assert_eq!(count(store, "SELECT COUNT(*) FROM inbox WHERE event_id = 'local:k1' AND status = 'done'"), 1);

        // The user's message first, carrying the check-in; then the assistant's answers.
        let first = &result.messages[0];
        assert_eq!((first.direction.as_str(), first.kind.as_str()), ("in", "message"));
        assert_eq!(first.checkin.as_ref().map(|c| c.id), Some(checkin.id));
        assert!(result.messages[1..].iter().all(|m| m.direction == "out" && m.checkin.is_none()));

        let all = l.backend.messages(None, 100).await.unwrap();
        assert_eq!(all, result.messages);
        let last = all.last().unwrap().id;
        assert!(l.backend.messages(Some(last), 100).await.unwrap().is_empty());
        assert_eq!(l.backend.messages(None, 1).await.unwrap(), vec![all.last().unwrap().clone()], "newest first cut");

        // Other people's conversations never show up on the local page.
        l.assistant
            .handle_message(IncomingMessage {
                event_id: "Ev1".into(),
                user_id: "slack:T1:U1".into(),
                channel: Channel::Slack,
                text: "tired".into(),
                thread_ref: None,
                received_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
        assert_eq!(l.backend.messages(Some(last), 100).await.unwrap(), vec![]);

        assert!(l.backend.forget_everything().await.unwrap() > 0);
        assert!(l.backend.messages(None, 100).await.unwrap().is_empty());
        l.pipeline.shutdown().await;
    }

    #[tokio::test]
    async fn the_same_key_sent_again_is_the_same_message_answered_once() {
        let l = local(true);
        let first = l.backend.send(row("same", "local:me", "ran 5k, feeling great")).await.unwrap();
        let store = l.assistant.store();
        let stored = count(store, "SELECT COUNT(*) FROM interactions");
        // A resend after a dropped connection: the text may even differ, the key decides.
        let again = l.backend.send(row("same", "local:me", "ran 5k, feeling great")).await.unwrap();
        assert_eq!(again.reply, first.reply);
        assert_eq!(again.checkin.map(|c| c.id), first.checkin.map(|c| c.id));
        assert_eq!(again.messages.first().map(|m| m.id), first.messages.first().map(|m| m.id));
        assert_eq!(count(store, "SELECT COUNT(*) FROM interactions"), stored, "nothing recorded twice");
        assert_eq!(count(store, "SELECT COUNT(*) FROM checkins"), 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM inbox"), 1);

        // A new key is a new message.
        l.backend.send(row("other", "local:me", "drank two glasses of water")).await.unwrap();
        assert_eq!(count(store, "SELECT COUNT(*) FROM inbox"), 2);
        l.pipeline.shutdown().await;
    }

    #[tokio::test]
    async fn someone_not_served_is_told_so_and_nothing_of_theirs_is_kept() {
        let l = local(true);
        let result = l.backend.send(row("x", "local:guest", "I feel awful today")).await.unwrap();
        assert_eq!(result.reply, NOT_SERVED_REPLY);
        assert!(result.checkin.is_none() && result.messages.is_empty());
        let store = l.assistant.store();
        assert_eq!(count(store, "SELECT COUNT(*) FROM interactions"), 0);
        assert_eq!(count(store, "SELECT COUNT(*) FROM checkins"), 0);
        assert_eq!(
            count(store, "SELECT COUNT(*) FROM inbox WHERE payload LIKE '%awful%'"),
            0,
            "text dropped once done"
        );
        l.pipeline.shutdown().await;
    }

    #[tokio::test]
    async fn a_message_not_handled_in_time_is_kept_and_answered_later() {
        // No worker: the row is committed and waits; the request says so instead of hanging.
        let l = local(false);
        let backend = l.backend.clone().with_wait(Duration::from_millis(100));
        let pending = backend.send(row("later", "local:me", "slept well")).await;
        assert!(matches!(pending, Err(LocalError::Pending)), "{pending:?}");
        let store = l.assistant.store().clone();
        assert_eq!(inbox::status_of(&store.conn(), "local:later").unwrap().map(|s| s.0), Some("pending".into()));
        l.pipeline.shutdown().await;

        // The next start's worker handles it; the same request sent again gets the answer.
        let people = ServedPeople::start(store.clone(), &[]).unwrap();
        let options = WorkerOptions { poll: Duration::from_millis(50), ..Default::default() };
        let pipeline =
            Pipeline::start(&l.assistant, Default::default(), people, Metrics::new(), Some(options)).unwrap();
        let backend =
            InboxBackend::new(l.assistant.clone(), pipeline.inbox.clone(), pipeline.worker.clone(), "local:me");
        let result = backend.send(row("later", "local:me", "slept well")).await.unwrap();
        assert!(result.checkin.is_some());
        assert_eq!(count(&store, "SELECT COUNT(*) FROM inbox"), 1);
        pipeline.shutdown().await;

        // Once the inbox is closed, a message is refused rather than lost silently.
        assert!(matches!(backend.send(row("late", "local:me", "hi")).await, Err(LocalError::ShuttingDown)));
    }
}
