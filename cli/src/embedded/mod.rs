//! The embedded default (`wellbeing up`): manifests from a folder instead of the Kubernetes API,
//! an in-process scheduler instead of CronJobs, and an instance file that lets the other
//! subcommands find the running process.

pub mod client;
pub mod instance;
pub mod jobs;
pub mod manifests;
pub mod plugins;
pub mod scheduler;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use wellbeing_assistant::engine::{Assistant, AssistantConfig};
use wellbeing_assistant::llm::{LlmClient, LlmConfig, LlmRouter, RouterConfig};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};
use wellbeing_assistant::store::Store;

/// The local user of the embedded mode (one person per data dir).
pub use wellbeing_webhook::local::LOCAL_USER;

/// `--data-dir`, shared by every subcommand that reads or writes the local data.
#[derive(clap::Args, Clone, Debug)]
pub struct DataDirArg {
    /// Where the database, the instance file and the local secret store live
    /// [default: the user's data directory + /wellbeing, e.g. ~/.local/share/wellbeing].
    #[arg(long, env = "WELLBEING_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => default_data_dir(),
        }
    }
}

/// `dirs::data_dir()/wellbeing`: ~/.local/share/wellbeing on Linux, ~/Library/Application
/// Support/wellbeing on macOS.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("wellbeing"))
        .context("failed to find the user's data directory (set --data-dir or WELLBEING_DATA_DIR)")
}

/// `--manifests`, or `examples/` when the current directory has one (the repository root).
pub fn manifests_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(dir) => Some(dir.to_path_buf()),
        None => Some(PathBuf::from("examples")).filter(|d| d.is_dir()),
    }
}

/// The machine's IANA time zone (from `TZ` or the /etc/localtime link), for the built-in persona
/// that speaks when no manifest names an active one. UTC when it cannot be told.
pub fn local_time_zone() -> String {
    let from_env = std::env::var("TZ").ok().map(|tz| tz.trim_start_matches(':').to_string());
    let from_link = std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.split_once("zoneinfo/").map(|(_, zone)| zone.to_string())));
    [from_env, from_link]
        .into_iter()
        .flatten()
        .find(|z| z.parse::<chrono_tz::Tz>().is_ok())
        .unwrap_or_else(|| "UTC".to_string())
}

/// LLM settings from the flags (which clap already filled from `WELLBEING_LLM_*`) layered over
/// the remaining `WELLBEING_LLM_*` variables. `None`: offline extraction and template replies.
pub fn llm_client(base_url: Option<&str>, model: Option<&str>) -> anyhow::Result<Option<LlmClient>> {
    let lookup = |name: &str| match name {
        "WELLBEING_LLM_BASE_URL" => base_url.map(str::to_string),
        "WELLBEING_LLM_MODEL" => model.map(str::to_string),
        other => std::env::var(other).ok(),
    };
    let Some(config) = LlmConfig::from_lookup(lookup).context("failed to read the LLM settings")? else {
        return Ok(None);
    };
    Ok(Some(LlmClient::new(config).context("failed to set up the LLM client")?))
}

/// Where each LLM task goes. With `config_file` (`--llm-config`, `WELLBEING_LLM_CONFIG`) its
/// endpoints and routes; otherwise the one endpoint of [`llm_client`], which every task uses.
pub fn llm_router(
    base_url: Option<&str>,
    model: Option<&str>,
    config_file: Option<&std::path::Path>,
) -> anyhow::Result<LlmRouter> {
    let Some(path) = config_file else { return Ok(LlmRouter::from(llm_client(base_url, model)?)) };
    if base_url.is_some() || model.is_some() {
        // Two sources of truth for the endpoint would make a task's route a guess.
        anyhow::bail!(
            "--llm-config {} and --llm-base-url/--llm-model (or WELLBEING_LLM_BASE_URL/_MODEL) are both set; \
             the file names every endpoint, so drop the other",
            path.display()
        );
    }
    let config = RouterConfig::from_file(path)?;
    let http = wellbeing_assistant::llm::http_client().context("failed to set up the LLM HTTP client")?;
    let router = LlmRouter::from_config(&config, http, |name| std::env::var(name).ok())?;
    tracing::info!(config = %path.display(), endpoints = router.table().endpoints().count(), "LLM routes loaded");
    Ok(router)
}

/// The conversation engine over the data dir's database.
pub fn assistant(store: Store, personas: PersonaRegistry, llm: Option<LlmClient>) -> Assistant {
    Assistant::new(store, personas, llm, AssistantConfig::default())
}

/// A registry whose fallback is the built-in persona in the machine's time zone.
pub fn persona_registry() -> PersonaRegistry {
    PersonaRegistry::new(default_persona(&local_time_zone()))
}

/// Open the database for a command that works on it directly, with the same checks as `up`.
pub fn open_store(data_dir: &Path) -> anyhow::Result<Store> {
    let store = Store::open_in(data_dir).context("failed to open the database")?;
    store.check_ready().context("failed to open the database for writing")?;
    Ok(store)
}
