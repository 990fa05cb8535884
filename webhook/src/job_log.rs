//! The persisted record of scheduled work (`scheduler_runs`), shared by `wellbeing up`'s scheduler
//! and the service's goals loop: a job key recorded here is not run again, after a restart or by
//! a second replica. Keys name the job, not the moment it was looked at: `checkin/NS/NAME/SLOT`
//! for a persona's drawn slot, `goals/MINUTE` for the goals-and-insight tick of one minute.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, params};
use wellbeing_assistant::{Store, StoreError};

/// How long records are kept: longer than any job can still be planned (a check-in slot of
/// yesterday inside the grace period, a goals minute).
pub const KEEP: Duration = Duration::days(3);

/// The key of the goals-and-insight job of `minute`.
pub fn goals_key(minute: DateTime<Utc>) -> String {
    format!("goals/{}", minute.to_rfc3339())
}

/// The key of a check-in job: a persona (`namespace/name`) and its drawn slot.
pub fn checkin_key(persona: &str, slot: DateTime<Utc>) -> String {
    format!("checkin/{persona}/{}", slot.to_rfc3339())
}

/// What became of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Sent,
    /// A finer record showed it was done before (e.g. before a restart): nothing sent now.
    AlreadySent,
    /// Deliberately not sent (paused, quiet day, backing off).
    Skipped,
    /// Its time passed while nothing was running: dropped, never delivered late.
    Missed,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Sent => "sent",
            JobOutcome::AlreadySent => "already_sent",
            JobOutcome::Skipped => "skipped",
            JobOutcome::Missed => "missed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobLogError {
    #[error("failed to read or write the scheduler's record")]
    Store(#[from] StoreError),
    #[error("the scheduler's record could not be reached")]
    Join(#[source] tokio::task::JoinError),
}

impl From<rusqlite::Error> for JobLogError {
    fn from(e: rusqlite::Error) -> JobLogError {
        JobLogError::Store(StoreError::from(e))
    }
}

#[derive(Clone, Debug)]
pub struct JobLog {
    store: Store,
}

impl JobLog {
    pub fn new(store: Store) -> JobLog {
        JobLog { store }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, JobLogError> + Send + 'static,
    ) -> Result<T, JobLogError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(JobLogError::Join)?
    }

    /// Jobs due at or after `since` that are recorded, with their due time; records older than
    /// [`KEEP`] before `now` are deleted first.
    pub async fn recorded_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, JobLogError> {
        self.blocking(move |store| {
            let conn = store.conn();
            conn.execute("DELETE FROM scheduler_runs WHERE due_at < ?1", params![stamp(now - KEEP)])?;
            let mut stmt = conn.prepare("SELECT job_key, due_at FROM scheduler_runs WHERE due_at >= ?1")?;
            let rows =
                stmt.query_map(params![stamp(since)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (key, due) = row?;
                if let Ok(due) = DateTime::parse_from_rfc3339(&due) {
                    out.insert(key, due.to_utc());
                }
            }
            Ok(out)
        })
        .await
    }

    /// Whether `key` is recorded.
    pub async fn contains(&self, key: &str) -> Result<bool, JobLogError> {
        let key = key.to_string();
        self.blocking(move |store| {
            let found: Option<i64> = store
                .conn()
                .query_row("SELECT 1 FROM scheduler_runs WHERE job_key = ?1", params![key], |r| r.get(0))
                .optional()?;
            Ok(found.is_some())
        })
        .await
    }

    /// Record a finished (or missed) job. False when it was recorded already (another process
    /// got there first): the caller must not count it twice.
    pub async fn record(
        &self,
        key: &str,
        kind: &'static str,
        due: DateTime<Utc>,
        outcome: JobOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, JobLogError> {
        let key = key.to_string();
        self.blocking(move |store| {
            let n = store.conn().execute(
                "INSERT OR IGNORE INTO scheduler_runs (job_key, kind, due_at, outcome, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, kind, stamp(due), outcome.as_str(), stamp(now)],
            )?;
            Ok(n == 1)
        })
        .await
    }
}

/// One precision for every stamp here, so text comparison orders them.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_job_is_recorded_once_and_old_records_go() {
        let log = JobLog::new(Store::in_memory().unwrap());
        let now = t("2026-05-04T10:00:30Z");
        let key = goals_key(t("2026-05-04T10:00:00Z"));
        assert!(!log.contains(&key).await.unwrap());
        assert!(log.record(&key, "goals", t("2026-05-04T10:00:00Z"), JobOutcome::Sent, now).await.unwrap());
        assert!(!log.record(&key, "goals", t("2026-05-04T10:00:00Z"), JobOutcome::Sent, now).await.unwrap());
        assert!(log.contains(&key).await.unwrap());

        let old = checkin_key("default/coach", t("2026-04-20T08:00:00Z"));
        log.record(&old, "checkin", t("2026-04-20T08:00:00Z"), JobOutcome::Missed, now).await.unwrap();
        let recent = log.recorded_since(t("2026-05-01T00:00:00Z"), now).await.unwrap();
        assert_eq!(recent.keys().collect::<Vec<_>>(), vec![&key]);
        assert!(!log.contains(&old).await.unwrap(), "older than KEEP: pruned");
    }
}
