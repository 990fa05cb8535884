//! SQLite storage. The assistant service is the only writer; migrations are embedded in the
//! binary and applied in one transaction at start-up.

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use migrations::{MIGRATIONS, Migration};

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "wellbeing.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not a wellbeing database (not SQLite, or damaged)")]
    NotADatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this binary knows ({known}); upgrade wellbeing")]
    SchemaTooNew { path: PathBuf, found: i64, known: i64 },
    #[error("failed to apply migration {version} ({name})")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path} is read-only")]
    ReadOnly { path: PathBuf },
    #[error("database error")]
    Sql(#[from] rusqlite::Error),
    #[error("failed to encode or decode stored JSON")]
    Json(#[from] serde_json::Error),
}

/// A handle on the database. Cheap to clone; one write connection shared behind a mutex (SQLite
/// allows one writer at a time anyway), plus fresh read connections when a caller wants one.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Open a connection with the pragmas every connection needs.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // journal_mode is the first statement that reads the file: a non-SQLite file fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|source| classify_open_error(path, source))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
    }
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
    Ok(conn)
}

fn classify_open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.to_path_buf(), source },
        Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly { path: path.to_path_buf() },
        _ => StoreError::Open { path: path.to_path_buf(), source },
    }
}

impl Store {
    /// Open (creating if needed) the database in `data_dir` and apply pending migrations.
    pub fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open(&data_dir.join(DB_FILE))
    }

    /// Open (creating if needed) the database at `path` and apply pending migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = open_connection(path)?;
        migrations::apply(&mut conn, path)?;
        Ok(Store { path: path.to_path_buf(), conn: Arc::new(Mutex::new(conn)) })
    }

    /// An in-memory database with the full schema, for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        migrations::apply(&mut conn, Path::new(":memory:"))?;
        Ok(Store { path: PathBuf::from(":memory:"), conn: Arc::new(Mutex::new(conn)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shared write connection. Hold it briefly: every writer queues on it.
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (transactions roll back
        // on drop), so a poisoned mutex is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A separate connection to the same file (e.g. for the inbox writer or readers).
    pub fn new_connection(&self) -> Result<Connection, StoreError> {
        open_connection(&self.path)
    }

    /// Highest applied migration version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
    }

    /// Whether the database accepts writes and has every migration this binary knows (for /readyz).
    pub fn check_ready(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        let version: i64 =
            conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
        let known = migrations::latest();
        if version != known {
            return Err(StoreError::SchemaTooNew { path: self.path.clone(), found: version, known });
        }
        // A write inside a transaction that is rolled back proves the file is writable.
        conn.execute_batch("BEGIN IMMEDIATE; CREATE TEMP TABLE IF NOT EXISTS ready_probe (x); ROLLBACK;")?;
        conn.execute_batch("BEGIN IMMEDIATE; UPDATE schema_migrations SET version = version WHERE 0; ROLLBACK;")
            .map_err(|source| classify_open_error(&self.path, source))?;
        Ok(())
    }
}

/// Current time as stored: RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    wellbeing_common::time::rfc3339_secs(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), migrations::latest());
        drop(store);
        let again = Store::open_in(dir.path()).unwrap();
        let applied: i64 = again.conn().query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(applied, MIGRATIONS.len() as i64);
        again.check_ready().unwrap();
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        store
            .conn()
            .execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')", [])
            .unwrap();
        drop(store);
        let err = Store::open_in(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { found: 9999, .. }), "{err}");
        assert!(err.to_string().contains("upgrade wellbeing"));
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, b"this is a text file, not a database, and it is long enough to have a header").unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
