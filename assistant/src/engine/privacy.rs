//! Export and forget: everything stored about a person, across every table with a `user_id`
//! column, read out or deleted in one transaction.
use super::*;

impl Assistant {
    /// Everything stored about `user_id` (`None`: every user, for the single-user local mode):
    /// every row of every table with a `user_id` column, plus the persona versions they name.
    pub fn export_user(&self, user_id: Option<&str>) -> Result<Value, EngineError> {
        let conn = self.inner.store.conn();
        let mut tables = serde_json::Map::new();
        for table in user_tables(&conn)? {
            let sql = format!("SELECT * FROM \"{table}\" WHERE {OF_PERSON} ORDER BY rowid");
            let mut stmt = conn.prepare(&sql)?;
            let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
            let rows = stmt.query_map(params![user_id], |r| {
                let mut obj = serde_json::Map::new();
                for (i, name) in columns.iter().enumerate() {
                    obj.insert(name.clone(), sql_to_json(r.get_ref(i)?));
                }
                Ok(Value::Object(obj))
            })?;
            tables.insert(table, Value::Array(rows.collect::<Result<Vec<_>, _>>()?));
        }
        let mut stmt = conn.prepare(
            "SELECT version, name, spec, first_seen FROM persona_versions WHERE version IN (
                 SELECT persona_version FROM interactions WHERE (?1 IS NULL OR user_id = ?1)
                 UNION SELECT persona_version FROM checkins WHERE (?1 IS NULL OR user_id = ?1))
             ORDER BY first_seen",
        )?;
        let personas = stmt
            .query_map(params![user_id], |r| {
                Ok(serde_json::json!({
                    "version": r.get::<_, String>(0)?,
                    "name": r.get::<_, String>(1)?,
                    "spec": serde_json::from_str::<Value>(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                    "first_seen": r.get::<_, String>(3)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // Who the person is on each channel: their own data too, though configuration, not history.
        let mut stmt = conn.prepare(
            "SELECT p.person_id, p.created_at, i.channel, i.address, i.first_seen
             FROM people p LEFT JOIN identities i ON i.person_id = p.person_id
             WHERE (?1 IS NULL OR p.person_id = ?1) ORDER BY p.created_at, i.first_seen",
        )?;
        let people = stmt
            .query_map(params![user_id], |r| {
                Ok(serde_json::json!({
                    "person_id": r.get::<_, String>(0)?,
                    "created_at": r.get::<_, String>(1)?,
                    "channel": r.get::<_, Option<String>>(2)?,
                    "address": r.get::<_, Option<String>>(3)?,
                    "first_seen": r.get::<_, Option<String>>(4)?,
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(serde_json::json!({
            "format": "wellbeing-export/v1",
            "exported_at": crate::store::now_rfc3339(),
            "user_id": user_id,
            "people": people,
            "tables": tables,
            "persona_versions": personas,
        }))
    }

    /// Delete everything stored about `user_id` (`None`: every user), in one transaction, then
    /// checkpoint the WAL so deleted rows do not linger in it.
    #[instrument(skip(self))]
    pub fn forget_user(&self, user_id: Option<&str>) -> Result<ForgetReport, EngineError> {
        let mut conn = self.inner.store.conn();
        let tables = user_tables(&conn)?;
        // Overwrite deleted content with zeros instead of leaving it in free pages.
        conn.execute_batch("PRAGMA secure_delete = ON")?;
        let result = (|| -> Result<ForgetReport, EngineError> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // Rows reference each other (follow-ups -> check-ins -> prompts); checking foreign keys
            // at commit lets the tables go in any order.
            tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            let mut report = ForgetReport::default();
            for table in &tables {
                let count: i64 = tx.query_row(
                    &format!("SELECT COUNT(*) FROM \"{table}\" WHERE {OF_PERSON}"),
                    params![user_id],
                    |r| r.get(0),
                )?;
                report.deleted.insert(table.clone(), usize::try_from(count).unwrap_or_default());
            }
            for table in &tables {
                tx.execute(&format!("DELETE FROM \"{table}\" WHERE {OF_PERSON}"), params![user_id])?;
            }
            // The person stays served (who is served is configuration), but starts over: the
            // disclaimer comes again with the next message.
            tx.execute(
                "UPDATE people SET disclaimer_shown = 0 WHERE (?1 IS NULL OR person_id = ?1)",
                params![user_id],
            )?;
            tx.commit()?;
            Ok(report)
        })();
        conn.execute_batch("PRAGMA secure_delete = OFF")?;
        let report = result?;
        // In-memory databases have no WAL; the pragma then reports an error row, not a failure.
        let _: Option<i64> = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).optional()?;
        tracing::info!(rows = report.total(), "forgot user data");
        Ok(report)
    }
}

/// Rows of person `?1` (NULL: everyone): keyed by their person id, or (the inbox and deliveries,
/// which are written before anyone is told apart) by the key of one of their identities.
pub(super) const OF_PERSON: &str = "(?1 IS NULL OR user_id = ?1
    OR user_id IN (SELECT channel || ':' || address FROM identities WHERE person_id = ?1))";
/// Every table with a `user_id` column (ours and those other parts of the assistant add), in
/// name order.
pub(super) fn user_tables(conn: &Connection) -> Result<Vec<String>, EngineError> {
    let mut stmt = conn.prepare(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
         WHERE m.type = 'table' AND c.name = 'user_id' ORDER BY m.name",
    )?;
    Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?)
}

/// A column value as JSON; text that holds JSON (check-in data, payloads) is embedded as JSON.
pub(super) fn sql_to_json(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let trimmed = text.trim_start();
            if (trimmed.starts_with('{') || trimmed.starts_with('['))
                && let Ok(json) = serde_json::from_str::<Value>(&text)
            {
                return json;
            }
            Value::String(text.into_owned())
        }
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}
