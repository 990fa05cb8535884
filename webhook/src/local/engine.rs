//! The local channel backed by the conversation engine and the database: what `wellbeing up`
//! serves and what `wellbeing chat` uses when no instance is running.

use async_trait::async_trait;
use rusqlite::params;
use tokio_util::task::TaskTracker;
use wellbeing_assistant::engine::{Assistant, Channel, IncomingMessage};
use wellbeing_assistant::store::Store;

use super::{LocalBackend, LocalError, LocalMessage, SendResult, StoredCheckIn};

/// The engine for one local user.
#[derive(Clone)]
pub struct EngineBackend {
    assistant: Assistant,
    user_id: String,
    /// Messages are handled in tasks tracked here, so one whose client went away still finishes,
    /// and shutdown can wait for every one in flight.
    tasks: TaskTracker,
}

impl EngineBackend {
    pub fn new(assistant: Assistant, user_id: impl Into<String>, tasks: TaskTracker) -> EngineBackend {
        EngineBackend { assistant, user_id: user_id.into(), tasks }
    }

    /// Handle one message to the end and return what the local user sees.
    pub async fn handle(assistant: &Assistant, user_id: &str, text: &str) -> Result<SendResult, LocalError> {
        let before = last_message_id(assistant.store(), user_id)?;
        let msg = IncomingMessage {
            event_id: format!("local:{}", new_event_id()),
            user_id: user_id.to_string(),
            channel: Channel::Local,
            text: text.to_string(),
            thread_ref: None,
            received_at: chrono::Utc::now(),
        };
        let outcome = assistant.handle_message(msg).await.map_err(|e| LocalError::backend("handle the message", e))?;
        let reply = outcome.replies.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n\n");
        let checkin = outcome.checkin_id.zip(outcome.checkin).map(|(id, data)| StoredCheckIn::new(id, data));
        let messages = history(assistant.store(), user_id, Some(before), super::PAGE_SIZE)?;
        Ok(SendResult { reply, checkin, messages })
    }
}

#[async_trait]
impl LocalBackend for EngineBackend {
    fn assistant_name(&self) -> String {
        self.assistant.personas().active().spec().display_name.clone()
    }

    async fn send(&self, text: &str) -> Result<SendResult, LocalError> {
        if self.tasks.is_closed() {
            return Err(LocalError::ShuttingDown);
        }
        let (assistant, user, text) = (self.assistant.clone(), self.user_id.clone(), text.to_string());
        let task = self.tasks.spawn(async move { EngineBackend::handle(&assistant, &user, &text).await });
        task.await.map_err(|e| LocalError::backend("finish handling the message", e))?
    }

    async fn messages(&self, after: Option<i64>, limit: usize) -> Result<Vec<LocalMessage>, LocalError> {
        history(self.assistant.store(), &self.user_id, after, limit)
    }

    async fn forget_everything(&self) -> Result<u64, LocalError> {
        let report = self.assistant.forget_user(None).map_err(|e| LocalError::backend("delete the stored data", e))?;
        Ok(report.total() as u64)
    }
}

/// A random id for a local message (the engine's idempotency key; Slack supplies its own).
fn new_event_id() -> String {
    wellbeing_common::id::new_id()
}

fn last_message_id(store: &Store, user_id: &str) -> Result<i64, LocalError> {
    store
        .conn()
        .query_row("SELECT COALESCE(MAX(id), 0) FROM interactions WHERE user_id = ?1", params![user_id], |r| r.get(0))
        .map_err(|e| LocalError::backend("read the conversation", e))
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
    use wellbeing_assistant::engine::AssistantConfig;
    use wellbeing_assistant::persona::PersonaRegistry;

    use super::*;

    fn assistant() -> Assistant {
        let store = Store::in_memory().unwrap();
        Assistant::new(store, PersonaRegistry::default(), None, AssistantConfig::default())
    }

    #[tokio::test]
    async fn a_message_is_stored_answered_and_shown_with_its_check_in() {
        let a = assistant();
        let backend = EngineBackend::new(a.clone(), "local:me", TaskTracker::new());
        let result = backend.send("slept badly, skipped breakfast").await.unwrap();
        assert!(!result.reply.is_empty());
        let checkin = result.checkin.expect("a check-in was stored");
        assert!(checkin.summary.iter().any(|(k, v)| k == "sleep" && v.contains("poor")), "{:?}", checkin.summary);
        assert!(checkin.summary.iter().any(|(k, v)| k == "meals" && v == "breakfast skipped"), "{:?}", checkin.summary);

        // The user's message first, carrying the check-in; then the assistant's answers.
        let first = &result.messages[0];
        assert_eq!((first.direction.as_str(), first.kind.as_str()), ("in", "message"));
        assert_eq!(first.checkin.as_ref().map(|c| c.id), Some(checkin.id));
        assert!(result.messages[1..].iter().all(|m| m.direction == "out" && m.checkin.is_none()));

        let all = backend.messages(None, 100).await.unwrap();
        assert_eq!(all, result.messages);
        let last = all.last().unwrap().id;
        assert!(backend.messages(Some(last), 100).await.unwrap().is_empty());
        assert_eq!(backend.messages(None, 1).await.unwrap(), vec![all.last().unwrap().clone()], "newest first cut");

        // Other users' conversations never show up on the local page.
        EngineBackend::handle(&a, "slack:T1:U1", "tired").await.unwrap();
        assert_eq!(backend.messages(Some(last), 100).await.unwrap(), vec![]);

        assert!(backend.forget_everything().await.unwrap() > 0);
        assert!(backend.messages(None, 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_closed_tracker_refuses_new_messages() {
        let tasks = TaskTracker::new();
        tasks.close();
        let backend = EngineBackend::new(assistant(), "local:me", tasks);
        assert!(matches!(backend.send("hi").await, Err(LocalError::ShuttingDown)));
    }
}
