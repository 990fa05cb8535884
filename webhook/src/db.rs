//! A database connection of this crate's own (the worker's, the delivery bookkeeping's), used off
//! the async threads: SQLite calls block.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::inbox::InboxError;

#[derive(Clone)]
pub struct Db(Arc<Mutex<Connection>>);

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error("a blocking database task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl Db {
    /// A new connection to the store's database.
    pub fn open(store: &wellbeing_assistant::Store) -> Result<Db, InboxError> {
        Ok(Db(Arc::new(Mutex::new(store.new_connection().map_err(InboxError::Open)?))))
    }

    /// Run `f` on the connection on a blocking thread.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, InboxError> + Send + 'static,
    ) -> Result<T, DbError> {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(DbError::Join)?
        .map_err(DbError::Inbox)
    }
}
