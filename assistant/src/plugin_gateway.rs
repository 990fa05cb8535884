//! The data side of the plugins' LLM gateway: task classes (whose endpoint and model the
//! [`crate::llm::LlmRouter`] decides as `LlmTask::PluginTask`), per-plugin daily token budgets, usage and invocation records in SQLite, and the local token file of embedded
//! mode. The HTTP handler lives in the webhook crate (`wellbeing_webhook::gateway`).
//!
//! A plugin names a task class, never a model (plugins/README.md, `llm`): the body carries
//! `metadata.task` and repeats it as `model: "task:<class>"` because the wire format needs a model.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone as _, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::plugins::{Invocation, InvocationSink};
use crate::store::{Store, StoreError};

/// Tokens a plugin may spend per day unless configured otherwise. A chat reply with a short
/// prompt costs a few hundred tokens, so this allows some hundred calls a day: plenty for a
/// reminder or a planner, and a ceiling on what a looping plugin can cost.
pub const DEFAULT_DAILY_TOKENS: u64 = 50_000;
/// Name of the embedded mode's token file in the data dir.
pub const LOCAL_TOKENS_FILE: &str = "plugin-tokens.json";
/// Prefix of `model` when a plugin names a task class there (`task:chat`).
pub const TASK_MODEL_PREFIX: &str = "task:";

/// What a plugin asks the LLM for. The names are the Plugin resource's `spec.llm` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskClass {
    Chat,
    Extraction,
    Summary,
    Code,
}

impl TaskClass {
    pub const ALL: [TaskClass; 4] = [TaskClass::Chat, TaskClass::Extraction, TaskClass::Summary, TaskClass::Code];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskClass::Chat => "chat",
            TaskClass::Extraction => "extraction",
            TaskClass::Summary => "summary",
            TaskClass::Code => "code",
        }
    }

    pub fn parse(s: &str) -> Option<TaskClass> {
        TaskClass::ALL.into_iter().find(|t| t.as_str() == s.trim().to_ascii_lowercase())
    }
}

/// Why a request's task class could not be told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("unknown task class {0:?}; expected one of chat, extraction, summary, code")]
    Unknown(String),
    #[error("metadata.task ({metadata:?}) and model ({model:?}) name different task classes")]
    Conflict { metadata: String, model: String },
}

/// The task class of a request: `metadata.task` first, else `model: "task:<class>"`, else `chat`.
/// A `model` that names a real model is ignored (the gateway picks models, plugins do not).
pub fn task_of(metadata_task: Option<&str>, model: Option<&str>) -> Result<TaskClass, TaskError> {
    let from_model = model.and_then(|m| m.strip_prefix(TASK_MODEL_PREFIX));
    let from_metadata = match metadata_task {
        Some(t) => Some(TaskClass::parse(t).ok_or_else(|| TaskError::Unknown(t.to_string()))?),
        None => None,
    };
    let parsed_model = match from_model {
        Some(t) => Some(TaskClass::parse(t).ok_or_else(|| TaskError::Unknown(t.to_string()))?),
        None => None,
    };
    match (from_metadata, parsed_model) {
        (Some(a), Some(b)) if a != b => {
            Err(TaskError::Conflict { metadata: a.as_str().to_string(), model: model.unwrap_or_default().to_string() })
        }
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Ok(TaskClass::Chat),
    }
}

/// Daily token budgets: one default, and overrides by plugin name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub default_daily: u64,
    pub per_plugin: BTreeMap<String, u64>,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets { default_daily: DEFAULT_DAILY_TOKENS, per_plugin: BTreeMap::new() }
    }
}

impl Budgets {
    pub fn limit_for(&self, plugin: &str) -> u64 {
        self.per_plugin.get(plugin).copied().unwrap_or(self.default_daily)
    }

    /// Parse `hydration=20000,sleep-winddown=5000` (the `WELLBEING_GATEWAY_BUDGETS` format).
    pub fn parse_overrides(text: &str) -> Result<BTreeMap<String, u64>, String> {
        let mut out = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) =
                part.split_once('=').ok_or_else(|| format!("{part:?} is not <plugin>=<tokens per day>"))?;
            let tokens =
                value.trim().parse::<u64>().map_err(|_| format!("{value:?} in {part:?} is not a number of tokens"))?;
            out.insert(name.trim().to_string(), tokens);
        }
        Ok(out)
    }
}

/// Whether a plugin may send another request today.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetCheck {
    /// Allowed; the request's completion is capped to `remaining` tokens.
    Allowed {
        remaining: u64,
    },
    Exhausted {
        used: u64,
        limit: u64,
    },
}

pub fn check_budget(used: u64, limit: u64) -> BudgetCheck {
    if used >= limit {
        BudgetCheck::Exhausted { used, limit }
    } else {
        BudgetCheck::Allowed { remaining: limit - used }
    }
}

/// The completion cap to send upstream: what the plugin asked for, never more than what is left.
pub fn cap_completion(requested: Option<u32>, remaining: u64) -> u32 {
    let remaining = u32::try_from(remaining).unwrap_or(u32::MAX);
    requested.map_or(remaining, |r| r.min(remaining))
}

/// The start of the user's day containing `now`, in UTC. On a day that starts inside a DST gap
/// (no local midnight) the first existing instant is used.
pub fn day_start(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let local_date = now.with_timezone(&tz).date_naive();
    let mut t = local_date.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(start) = tz.from_local_datetime(&t).earliest() {
            return start.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    now
}

/// The start of the user's next day after `now`, in UTC (when a spent budget is renewed).
pub fn next_day_start(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    // 26 hours after the day's start is inside the next day even when today has 25 (DST).
    day_start(day_start(now, tz) + chrono::Duration::hours(26), tz)
}

/// Tokens for a text when an endpoint reports no usage: about four characters per token for
/// English (OpenAI's rule of thumb), rounded up, so a server without usage still meets a budget.
pub fn estimate_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// How one gateway request ended, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok,
    OverBudget,
    BadRequest,
    NoLlm,
    UpstreamError,
}

impl RequestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::OverBudget => "over_budget",
            RequestOutcome::BadRequest => "bad_request",
            RequestOutcome::NoLlm => "no_llm",
            RequestOutcome::UpstreamError => "upstream_error",
        }
    }
}

/// One gateway request as recorded: names, counts and timing, never the prompt or the reply.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub plugin: String,
    pub task: TaskClass,
    pub model: String,
    pub outcome: RequestOutcome,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// The upstream sent no usage; the counts are [`estimate_tokens`] of the texts.
    pub estimated: bool,
    pub duration: Duration,
    pub at: DateTime<Utc>,
}

use wellbeing_common::time::rfc3339_millis as rfc3339;

pub fn record_request(store: &Store, r: &RequestRecord) -> Result<(), StoreError> {
    store.conn().execute(
        "INSERT INTO plugin_llm_requests (plugin, task, model, outcome, prompt_tokens, completion_tokens, \
         total_tokens, estimated, duration_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            r.plugin,
            r.task.as_str(),
            r.model,
            r.outcome.as_str(),
            r.prompt_tokens,
            r.completion_tokens,
            r.total_tokens,
            r.estimated,
            i64::try_from(r.duration.as_millis()).unwrap_or(i64::MAX),
            rfc3339(r.at),
        ],
    )?;
    Ok(())
}

/// Tokens a plugin spent through the gateway since `since`.
pub fn tokens_used_since(store: &Store, plugin: &str, since: DateTime<Utc>) -> Result<u64, StoreError> {
    let used: i64 = store.conn().query_row(
        "SELECT COALESCE(SUM(total_tokens), 0) FROM plugin_llm_requests WHERE plugin = ?1 AND created_at >= ?2",
        params![plugin, rfc3339(since)],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(used).unwrap_or(0))
}

/// Per plugin since `since`: requests, tokens and refusals (for `wellbeing plugin list` and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageSummary {
    pub requests: u64,
    pub tokens: u64,
    pub refused: u64,
}

pub fn usage_since(store: &Store, since: DateTime<Utc>) -> Result<BTreeMap<String, UsageSummary>, StoreError> {
    let conn = store.conn();
    let mut stmt = conn.prepare(
        "SELECT plugin, COUNT(*), COALESCE(SUM(total_tokens), 0), \
         COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END), 0) \
         FROM plugin_llm_requests WHERE created_at >= ?1 GROUP BY plugin",
    )?;
    let rows = stmt.query_map(params![rfc3339(since)], |row| {
        Ok((
            row.get::<_, String>(0)?,
            UsageSummary {
                requests: row.get::<_, i64>(1)?.max(0) as u64,
                tokens: row.get::<_, i64>(2)?.max(0) as u64,
                refused: row.get::<_, i64>(3)?.max(0) as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes the plugin pool's invocation records into `plugin_invocations`.
pub struct StoreInvocationSink {
    store: Store,
}

impl StoreInvocationSink {
    pub fn new(store: Store) -> Arc<StoreInvocationSink> {
        Arc::new(StoreInvocationSink { store })
    }
}

pub fn record_invocation(store: &Store, i: &Invocation, at: DateTime<Utc>) -> Result<(), StoreError> {
    store.conn().execute(
        "INSERT INTO plugin_invocations (plugin, version, tool, outcome, duration_ms, reason, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            i.plugin,
            i.version,
            i.tool,
            i.outcome.as_str(),
            i64::try_from(i.duration.as_millis()).unwrap_or(i64::MAX),
            i.reason,
            rfc3339(at),
        ],
    )?;
    Ok(())
}

impl InvocationSink for StoreInvocationSink {
    fn record(&self, invocation: Invocation) {
        let store = self.store.clone();
        let at = Utc::now();
        let write = move || {
            if let Err(error) = record_invocation(&store, &invocation, at) {
                tracing::warn!(error = %error, plugin = %invocation.plugin, "failed to record a plugin invocation");
            }
        };
        // `record` is called from async code; the insert waits on the store's one write
        // connection, so it runs on the blocking pool when there is one.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Default, Serialize, Deserialize)]
struct TokenFile {
    /// Plugin name -> token.
    #[serde(default)]
    plugins: BTreeMap<String, String>,
}

/// Embedded mode's plugin tokens: one random token per plugin, kept in the data dir's
/// `plugin-tokens.json` (mode 0600), handed to each local plugin as `WELLBEING_PLUGIN_TOKEN` and
/// checked by the gateway. Generated on first use; never rotated while the file exists.
pub struct LocalPluginTokens {
    path: PathBuf,
    tokens: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for LocalPluginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        f.debug_struct("LocalPluginTokens").field("path", &self.path).field("plugins", &names).finish()
    }
}

impl LocalPluginTokens {
    /// Load the data dir's token file (an absent file is an empty one).
    pub fn open(data_dir: &Path) -> Result<LocalPluginTokens, TokenFileError> {
        let path = data_dir.join(LOCAL_TOKENS_FILE);
        let tokens = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str::<TokenFile>(&text)
                    .map_err(|source| TokenFileError::Parse { path: path.clone(), source })?
                    .plugins
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(TokenFileError::Read { path, source }),
        };
        Ok(LocalPluginTokens { path, tokens: Mutex::new(tokens) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's token, generated (and saved) the first time it is asked for.
    pub fn token_for(&self, plugin: &str) -> Result<String, TokenFileError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = tokens.get(plugin) {
            return Ok(token.clone());
        }
        let token = wellbeing_common::id::new_token();
        let mut next = tokens.clone();
        next.insert(plugin.to_string(), token.clone());
        write_private(&self.path, &TokenFile { plugins: next.clone() })?;
        *tokens = next;
        Ok(token)
    }

    /// The plugin a presented token belongs to. Compared as SHA-256 digests in constant time, so
    /// the comparison says nothing about how close a guess was.
    pub fn plugin_for(&self, presented: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        find_token(tokens.iter().map(|(name, token)| (name.as_str(), token.as_str())), presented)
    }
}

/// The environment a local plugin child needs to reach the gateway: `WELLBEING_LLM_GATEWAY`
/// (`<assistant address>/internal/llm/v1`) and its own `WELLBEING_PLUGIN_TOKEN`, as the operator
/// gives plugin pods in the cluster. Merged into a stdio endpoint's `env` by embedded mode.
pub fn gateway_env(
    tokens: &LocalPluginTokens,
    plugin: &str,
    assistant_url: &str,
) -> Result<BTreeMap<String, String>, TokenFileError> {
    Ok(BTreeMap::from([
        ("WELLBEING_LLM_GATEWAY".to_string(), format!("{}/internal/llm/v1", assistant_url.trim_end_matches('/'))),
        ("WELLBEING_PLUGIN_TOKEN".to_string(), tokens.token_for(plugin)?),
    ]))
}

/// The name whose token equals `presented`, comparing digests in constant time over every entry.
pub fn find_token<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>, presented: &str) -> Option<String> {
    use subtle::ConstantTimeEq as _;
    if presented.is_empty() {
        return None;
    }
    let want = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for (name, token) in entries {
        let have = Sha256::digest(token.as_bytes());
        if bool::from(have.as_slice().ct_eq(want.as_slice())) && !token.is_empty() {
            found = Some(name.to_string());
        }
    }
    found
}

/// Write JSON to `path` through a temporary file in the same directory, created 0600, then
/// renamed, so a crash never leaves a half-written token file and no other user can read it.
fn write_private(path: &Path, value: &TokenFile) -> Result<(), TokenFileError> {
    let err = |source| TokenFileError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(err)?;
    let text = serde_json::to_vec_pretty(value).map_err(|e| err(std::io::Error::other(e)))?;
    file.write_all(&text).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::InvocationOutcome;

    #[test]
    fn task_class_comes_from_metadata_then_model_then_chat() {
        assert_eq!(task_of(Some("summary"), Some("task:summary")), Ok(TaskClass::Summary));
        assert_eq!(task_of(None, Some("task:code")), Ok(TaskClass::Code));
        assert_eq!(task_of(Some("extraction"), Some("gpt-4o")), Ok(TaskClass::Extraction));
        assert_eq!(task_of(None, Some("gpt-4o")), Ok(TaskClass::Chat), "a real model name is ignored");
        assert_eq!(task_of(None, None), Ok(TaskClass::Chat));
        assert!(matches!(task_of(Some("poetry"), None), Err(TaskError::Unknown(t)) if t == "poetry"));
        assert!(matches!(task_of(Some("chat"), Some("task:code")), Err(TaskError::Conflict { .. })));
    }

    #[test]
    fn budgets_refuse_at_the_limit_and_cap_the_completion() {
        assert_eq!(check_budget(0, 100), BudgetCheck::Allowed { remaining: 100 });
        assert_eq!(check_budget(99, 100), BudgetCheck::Allowed { remaining: 1 });
        assert_eq!(check_budget(100, 100), BudgetCheck::Exhausted { used: 100, limit: 100 });
        assert_eq!(check_budget(250, 100), BudgetCheck::Exhausted { used: 250, limit: 100 });
        assert_eq!(cap_completion(Some(500), 120), 120);
        assert_eq!(cap_completion(Some(50), 120), 50);
        assert_eq!(cap_completion(None, 120), 120);
        let budgets = Budgets {
            per_plugin: Budgets::parse_overrides("hydration=20000, sleep-winddown = 5").unwrap(),
            ..Budgets::default()
        };
        assert_eq!(budgets.limit_for("hydration"), 20_000);
        assert_eq!(budgets.limit_for("sleep-winddown"), 5);
        assert_eq!(budgets.limit_for("other"), DEFAULT_DAILY_TOKENS);
        assert!(Budgets::parse_overrides("hydration").unwrap_err().contains("hydration"));
        assert!(Budgets::parse_overrides("hydration=lots").unwrap_err().contains("lots"));
    }

    #[test]
    fn the_day_starts_at_local_midnight_even_across_dst() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 21, 30, 0).unwrap(); // 23:30 in Berlin
        assert_eq!(day_start(now, berlin), Utc.with_ymd_and_hms(2026, 6, 30, 22, 0, 0).unwrap());
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 22, 30, 0).unwrap(); // 00:30 the next day
        assert_eq!(day_start(now, berlin), Utc.with_ymd_and_hms(2026, 7, 1, 22, 0, 0).unwrap());
        // Santiago skips from 00:00 to 01:00 on 2026-09-06: the day starts at 01:00 local.
        let santiago: chrono_tz::Tz = "America/Santiago".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 9, 6, 15, 0, 0).unwrap();
        let start = day_start(now, santiago);
        assert_eq!(start.with_timezone(&santiago).format("%Y-%m-%d %H:%M").to_string(), "2026-09-06 01:00");
        // 2026-10-25 has 25 hours in Berlin; its next day still starts at local midnight.
        let now = Utc.with_ymd_and_hms(2026, 10, 24, 23, 0, 0).unwrap();
        assert_eq!(next_day_start(now, berlin), Utc.with_ymd_and_hms(2026, 10, 25, 23, 0, 0).unwrap());
    }

    #[test]
    fn usage_is_summed_per_plugin_from_the_day_start() {
        let store = Store::in_memory().unwrap();
        let at = |h| Utc.with_ymd_and_hms(2026, 5, 8, h, 0, 0).unwrap();
        let rec = |plugin: &str, total, outcome, h| RequestRecord {
            plugin: plugin.into(),
            task: TaskClass::Chat,
            model: "m".into(),
            outcome,
            prompt_tokens: total / 2,
            completion_tokens: total - total / 2,
            total_tokens: total,
            estimated: false,
            duration: Duration::from_millis(12),
            at: at(h),
        };
        record_request(&store, &rec("a", 100, RequestOutcome::Ok, 1)).unwrap();
        record_request(&store, &rec("a", 40, RequestOutcome::Ok, 10)).unwrap();
        record_request(&store, &rec("a", 0, RequestOutcome::OverBudget, 11)).unwrap();
        record_request(&store, &rec("b", 7, RequestOutcome::Ok, 10)).unwrap();
        assert_eq!(tokens_used_since(&store, "a", at(0)).unwrap(), 140);
        assert_eq!(tokens_used_since(&store, "a", at(5)).unwrap(), 40);
        assert_eq!(tokens_used_since(&store, "c", at(0)).unwrap(), 0);
        let summary = usage_since(&store, at(5)).unwrap();
        assert_eq!(summary["a"], UsageSummary { requests: 2, tokens: 40, refused: 1 });
        assert_eq!(summary["b"], UsageSummary { requests: 1, tokens: 7, refused: 0 });
    }

    #[test]
    fn invocations_are_stored_without_arguments() {
        let store = Store::in_memory().unwrap();
        let sink = StoreInvocationSink::new(store.clone());
        sink.record(Invocation {
            plugin: "hydration".into(),
            version: 2,
            tool: "hydration".into(),
            duration: Duration::from_millis(31),
            outcome: InvocationOutcome::Timeout,
            reason: Some("did not answer".into()),
        });
        let row: (String, i64, String, i64, Option<String>) = store
            .conn()
            .query_row("SELECT plugin, version, outcome, duration_ms, reason FROM plugin_invocations", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert_eq!(row, ("hydration".into(), 2, "timeout".into(), 31, Some("did not answer".into())));
    }

    #[test]
    fn local_tokens_are_generated_once_kept_private_and_found_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = LocalPluginTokens::open(dir.path()).unwrap();
        let a = tokens.token_for("hydration").unwrap();
        let b = tokens.token_for("sleep-winddown").unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(tokens.token_for("hydration").unwrap(), a, "stable while the file exists");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(LOCAL_TOKENS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let reopened = LocalPluginTokens::open(dir.path()).unwrap();
        assert_eq!(reopened.plugin_for(&a).as_deref(), Some("hydration"));
        assert_eq!(reopened.plugin_for(&b).as_deref(), Some("sleep-winddown"));
        assert_eq!(reopened.plugin_for("nope"), None);
        assert_eq!(reopened.plugin_for(""), None);
        assert!(!format!("{reopened:?}").contains(&a), "Debug must not print tokens");
        let env = gateway_env(&reopened, "hydration", "http://127.0.0.1:8080/").unwrap();
        assert_eq!(env["WELLBEING_LLM_GATEWAY"], "http://127.0.0.1:8080/internal/llm/v1");
        assert_eq!(env["WELLBEING_PLUGIN_TOKEN"], a);
    }

    #[test]
    fn a_damaged_token_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCAL_TOKENS_FILE), "{not json").unwrap();
        let err = LocalPluginTokens::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(LOCAL_TOKENS_FILE), "{err}");
    }
}
