//! Embedded migrations (`migrations/NNNN_description.sql`), applied in order in one transaction.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Add a new file to migrations/ and one line here.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../../../migrations/0001_initial.sql") },
    Migration {
        version: 2,
        name: "goals_reminders",
        sql: include_str!("../../../migrations/0002_goals_reminders.sql"),
    },
    Migration { version: 3, name: "deliveries", sql: include_str!("../../../migrations/0003_deliveries.sql") },
    Migration { version: 4, name: "plugin_usage", sql: include_str!("../../../migrations/0004_plugin_usage.sql") },
    Migration { version: 5, name: "people", sql: include_str!("../../../migrations/0005_people.sql") },
    Migration { version: 6, name: "scheduler_runs", sql: include_str!("../../../migrations/0006_scheduler_runs.sql") },
    Migration { version: 7, name: "sms_opt_outs", sql: include_str!("../../../migrations/0007_sms_opt_outs.sql") },
    Migration { version: 10, name: "email", sql: include_str!("../../../migrations/0010_email.sql") },
];

pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|source| match source
        .sqlite_error_code()
    {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase { path: path.to_path_buf(), source },
        Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly { path: path.to_path_buf() },
        _ => StoreError::Sql(source),
    })?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .map_err(|source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ReadOnly) => StoreError::ReadOnly { path: path.to_path_buf() },
        _ => StoreError::Sql(source),
    })?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    if current > latest() {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found: current, known: latest() });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|source| StoreError::Migration { version: m.version, name: m.name, source })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, super::now_rfc3339()],
        )?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    tx.commit()?;
    Ok(())
}
