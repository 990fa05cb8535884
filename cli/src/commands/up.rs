//! `wellbeing up`: the whole assistant in one process, with SQLite in a data dir and a folder of
//! manifests in place of the Kubernetes API. The local page is the default channel; Slack is
//! served too when its credentials are set.
//!
//! Start-up checks everything that can be wrong with the user's input before touching data:
//! the manifests folder, the port, the local secret store, the database (in that order).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use kube::ResourceExt as _;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, warn};
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::GoalsConfig;
use wellbeing_assistant::people::{Identity, PersonConfig};
use wellbeing_crds::Persona;
use wellbeing_crds::persona::Channel as CrdChannel;
use wellbeing_operator::secret_store::LocalStore;
use wellbeing_webhook::auth::{AllowedCallers, InternalAuth};
use wellbeing_webhook::config::SlackConfig;
use wellbeing_webhook::internal::{CheckinRequest, CheckinResponse};
use wellbeing_webhook::local::actions::ActionsState;
use wellbeing_webhook::local::engine::InboxBackend;
use wellbeing_webhook::local::{LocalAuth, LocalState};
use wellbeing_webhook::nudges::{Delivery, LearnedGoals, ManifestGoals};
use wellbeing_webhook::people::ServedPeople;
use wellbeing_webhook::server::ServerConfig;
use wellbeing_webhook::worker::WorkerOptions;

use crate::embedded::jobs::{self, GoalJobs};
use crate::embedded::manifests::{self, ManifestSet, ManifestWatcher};
use crate::embedded::scheduler::{self, Job, JobKind, JobRunner, Outcome};
use crate::embedded::{self, DataDirArg, LOCAL_USER, instance};

#[derive(clap::Args, Debug)]
#[command(after_help = "Slack: with SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN set (or SLACK_SIGNING_SECRET_FILE and \
SLACK_BOT_TOKEN_FILE), the same process also serves /slack/events, /slack/commands and /slack/interactivity; \
SLACK_USER_ID is your Slack member id: you on the page and you in Slack are one person with one history; \
anyone else who writes to the bot is refused and nothing of theirs is stored.")]
pub struct Args {
    #[command(flatten)]
    data: DataDirArg,
    /// Folder of Persona, Goal, Plugin and SecretRequirement manifests (the YAML you would
    /// `kubectl apply`). Watched: edits and new files apply without a restart
    /// [default: ./examples when it exists].
    #[arg(long, env = "WELLBEING_MANIFESTS", value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Address of the local page and its API. Keep it on 127.0.0.1: the page is for this machine.
    #[arg(long, env = "WELLBEING_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// OpenAI-compatible endpoint (with /v1) for extraction and replies: OpenAI, vLLM, Ollama,
    /// llama.cpp server. Unset: the offline extractor and template replies. The key, if the
    /// endpoint needs one, comes from WELLBEING_LLM_API_KEY (or OPENAI_API_KEY).
    #[arg(long, env = "WELLBEING_LLM_BASE_URL", value_name = "URL")]
    llm_base_url: Option<String>,
    /// Model name at that endpoint [default: gpt-4o-mini].
    #[arg(long, env = "WELLBEING_LLM_MODEL", value_name = "NAME")]
    llm_model: Option<String>,
    /// YAML or JSON file of LLM endpoints and which task uses which (instead of --llm-base-url
    /// and --llm-model); see the README.
    #[arg(long, env = "WELLBEING_LLM_CONFIG", value_name = "FILE")]
    llm_config: Option<PathBuf>,
    #[command(flatten)]
    plugins: embedded::plugins::PluginArgs,
}

/// How long shutdown waits for messages in flight before leaving them pending for the next start.
/// An LLM call has a 20 s budget by default; this leaves room for one to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.resolve()?;
    let cancel = CancellationToken::new();

    // 1. Manifests: a folder given but missing is an error; no folder at all is fine.
    let manifests_dir = embedded::manifests_dir(args.manifests.as_deref());
    let watcher = match &manifests_dir {
        Some(dir) => Some(ManifestWatcher::start(dir.clone(), manifests::RESCAN_EVERY, true, cancel.clone())?),
        None => None,
    };
    let manifest_rx = match &watcher {
        Some(w) => w.subscribe(),
        None => tokio::sync::watch::channel(Arc::new(ManifestSet::default())).1,
    };

    // Slack settings are read up front so a half-configured Slack stops start-up with its reason.
    let slack = slack_config()?;

    // 2. The port, before any data is opened.
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "failed to listen on {}: the port is already in use (stop the other program or pass --listen 127.0.0.1:PORT)",
            args.listen
        ),
        _ => anyhow::Error::new(e).context(format!("failed to listen on {}", args.listen)),
    })?;
    let listen = listener.local_addr().context("failed to read the listening address")?;

    // 3. The local secret store must be readable (plugins take their secrets from it).
    let secrets = LocalStore::new(&data_dir);
    secrets.value("wellbeing-startup-check").context("failed to read the local secret store")?;

    // 4. The data dir: one writer at a time, then the database.
    instance::create_data_dir(&data_dir)?;
    let mut lock = instance::acquire(&data_dir)?;
    let store = embedded::open_store(&data_dir)?;
    let llm =
        embedded::llm_router(args.llm_base_url.as_deref(), args.llm_model.as_deref(), args.llm_config.as_deref())?;
    let llm_note = llm
        .describe()
        .unwrap_or_else(|| "offline extractor and template replies (set --llm-base-url to use a model)".to_string());

    let personas = embedded::persona_registry();
    personas.replace_all(manifest_rx.borrow().personas.clone());
    // Each local plugin's LLM gateway token is kept in the data dir's plugin-tokens.json: the
    // plugins' children get theirs at spawn, the gateway (below) checks them.
    let plugin_tokens = Arc::new(
        wellbeing_assistant::plugin_gateway::LocalPluginTokens::open(&data_dir)
            .context("failed to read the plugin tokens")?,
    );
    // The folder's approved plugins run as local children of the plugin host, connected in the
    // background so start-up does not wait for them.
    let plugin_runtime = wellbeing_assistant::plugins::LocalRuntime {
        python: args.plugins.python.clone(),
        plugins_dir: args.plugins.resolve_dir(manifests_dir.as_deref()),
    };
    let plugins = embedded::plugins::LocalPlugins::start(
        plugin_runtime,
        manifest_rx.clone(),
        &store,
        plugin_tokens.clone(),
        Arc::new(LocalStore::new(&data_dir)),
        page_url(listen),
        cancel.clone(),
    );
    let assistant =
        embedded::assistant(store.clone(), personas.clone(), None).with_router(llm).with_plugins(plugins.pool.clone());

    // Personas follow the folder.
    let mut persona_rx = manifest_rx.clone();
    let registry = personas.clone();
    tokio::spawn(
        async move {
            while persona_rx.changed().await.is_ok() {
                let personas = persona_rx.borrow_and_update().personas.clone();
                registry.replace_all(personas);
            }
        }
        .instrument(info_span!("persona_sync")),
    );

    // "Yes" on a learned pillar writes its Goal into the manifests folder, which the watcher loads.
    let learned: Option<Arc<dyn LearnedGoals>> =
        manifests_dir.clone().map(|dir| Arc::new(ManifestGoals { dir }) as Arc<dyn LearnedGoals>);
    let goals_config = GoalsConfig::default();

    // Whoever runs `wellbeing up` is the person served, on the page and (with SLACK_USER_ID) in
    // Slack; anyone else who writes to the bot is refused.
    let mut local_person = PersonConfig { name: LOCAL_USER.to_string(), identities: vec![Identity::local("me")] };
    if let Some(user) = slack.as_ref().and_then(|s| s.checkin_user.as_deref()) {
        local_person.identities.push(Identity::slack(slack.as_ref().and_then(|s| s.team_id.as_deref()), user));
    }

    // Every message, the page's included, goes through the durable inbox and its worker: the
    // assistant service's own (with Slack credentials, beside its Slack endpoints), else one here.
    let internal_token = instance::generate_token();
    let pipeline = match slack {
        Some(slack) => {
            let config = ServerConfig {
                sms: None,
                slack,
                worker: Some(WorkerOptions { shutdown_grace: DRAIN_TIMEOUT, ..Default::default() }),
                // Only this process calls /internal/checkins, with a token nobody else sees.
                auth: InternalAuth::new(Some(internal_token.clone()), None, "wellbeing", AllowedCallers::default()),
                goals: goals_config.clone(),
                clock: wellbeing_webhook::app::system_clock(),
                personas_synced: Arc::new(AtomicBool::new(true)),
                extra_routes: None,
                learned_goals: learned.clone(),
                people: vec![local_person.clone()],
            };
            let prepared = wellbeing_webhook::server::prepare(assistant.clone(), config)
                .await
                .context("failed to start the Slack endpoints")?;
            Pipeline::Service(Box::new(prepared))
        }
        None => {
            let people = ServedPeople::start(store.clone(), std::slice::from_ref(&local_person))
                .context("failed to enrol the local user")?;
            let pipeline = wellbeing_webhook::pipeline::Pipeline::start(
                &assistant,
                Default::default(),
                people,
                wellbeing_webhook::metrics::Metrics::new(),
                Some(WorkerOptions { shutdown_grace: DRAIN_TIMEOUT, ..Default::default() }),
            )
            .context("failed to start the inbox")?;
            Pipeline::Local(pipeline)
        }
    };
    let (inbox, worker) = match &pipeline {
        Pipeline::Service(prepared) => (prepared.state().inbox.clone(), prepared.state().worker.clone()),
        Pipeline::Local(pipeline) => (pipeline.inbox.clone(), pipeline.worker.clone()),
    };

    let token = instance::generate_token();
    let local = LocalState {
        backend: Arc::new(InboxBackend::new(assistant.clone(), inbox, worker, LOCAL_USER)),
        auth: LocalAuth::new(token.clone(), listen),
    };
    // The dashboard (/dashboard) beside the local page, behind the token in the data dir.
    let dashboard_token = wellbeing_webhook::dashboard::load_or_create_token(&data_dir)?;
    let (dash_personas, dash_manifests) = (personas.clone(), manifest_rx.clone());
    let dash_secrets = LocalStore::new(&data_dir);
    let dashboard_context: wellbeing_webhook::dashboard::ContextFn = Arc::new(move || {
        let set = dash_manifests.borrow().clone();
        wellbeing_webhook::dashboard::DashboardContext {
            persona: dash_personas.active().spec().clone(),
            goals: set.goals.clone(),
            // Names only: presence is all the dashboard asks the store.
            missing_secrets: jobs::missing_secrets(&set, |id| dash_secrets.value(id).is_ok_and(|v| v.is_some())),
        }
    });
    let dashboard =
        wellbeing_webhook::dashboard::DashboardState::new(store.clone(), dashboard_token, dashboard_context);
    // Buttons on reminders, nudges and pillar questions on the local page.
    let actions = wellbeing_webhook::local::actions::router(ActionsState {
        auth: LocalAuth::new(token.clone(), listen),
        engine: assistant.clone(),
        user: LOCAL_USER.to_string(),
        config: goals_config.clone(),
        learned: learned.clone(),
        clock: wellbeing_webhook::app::system_clock(),
    });
    let local_routes =
        wellbeing_webhook::local::router(local).merge(actions).merge(wellbeing_webhook::dashboard::router(dashboard));
    // The plugins' LLM gateway (/internal/llm/v1) on this address.
    let local_routes = local_routes.merge(
        wellbeing_webhook::gateway::routes_for(&assistant, plugin_tokens)
            .context("failed to read the LLM gateway settings")?,
    );

    let (server, slack_checkins, slack_outbound) = match pipeline {
        Pipeline::Service(prepared) => {
            let running =
                prepared.serve(listener, None, local_routes).context("failed to start the Slack endpoints")?;
            let checkins = SlackCheckIns {
                router: wellbeing_webhook::app::internal_app(running.state.clone()),
                token: internal_token,
            };
            let outbound = running.state.slack.outbound.clone();
            (Server::Full(running), Some(checkins), Some(outbound))
        }
        Pipeline::Local(pipeline) => {
            let stop = cancel.clone();
            let server = tokio::spawn(async move {
                axum::serve(listener, local_routes).with_graceful_shutdown(stop.cancelled_owned()).await
            });
            (Server::Local(server, pipeline), None, None)
        }
    };
    let slack_on = slack_checkins.is_some();

    // The scheduler sends check-ins to the persona's channel: Slack when configured, else the page;
    // reminders, nudges, questions and the weekly insight go to each user's own channel.
    let goal_jobs = GoalJobs {
        engine: assistant.clone(),
        manifests: manifest_rx.clone(),
        config: goals_config.clone(),
        delivery: Delivery::new(assistant.clone(), slack_outbound),
    };
    let scheduler = tokio::spawn(
        scheduler::run(
            CheckIns { assistant: assistant.clone(), slack: slack_checkins, goals: goal_jobs },
            manifest_rx.clone(),
            wellbeing_webhook::job_log::JobLog::new(store.clone()),
            scheduler::system_clock(),
            cancel.clone(),
        )
        .instrument(info_span!("scheduler")),
    );

    let url = page_url(listen);
    lock.write_instance(&instance::Instance {
        url: url.clone(),
        token,
        pid: std::process::id(),
        started_at: chrono::Utc::now().to_rfc3339(),
    })?;
    let snapshot = watcher.as_ref().map(|w| w.current()).unwrap_or_default();
    print_banner(&url, &data_dir, manifests_dir.as_ref(), &snapshot, &assistant, &llm_note, slack_on);

    let shutdown = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: finishing messages in flight");
        shutdown.cancel();
    });
    cancel.cancelled().await;
    // The scheduler stops first, so no check-in starts while the server drains.
    let _ = scheduler.await;
    let served: anyhow::Result<()> = match server {
        Server::Local(task, pipeline) => {
            let served = match task.await {
                Ok(result) => result.context("failed to serve HTTP"),
                Err(e) => Err(anyhow::Error::new(e).context("the HTTP server task failed")),
            };
            // The worker finishes the page's messages in flight; the inbox flushes and closes.
            pipeline.shutdown().await;
            served
        }
        Server::Full(running) => running.shutdown().await.context("failed to stop the assistant service"),
    };

    // Plugin children stop once no message can call them any more.
    plugins.stop().await;
    drop(watcher);
    drop(assistant);
    drop(personas);
    // Fold the write-ahead log into the database so the data dir is a single clean file again.
    store.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").context("failed to checkpoint the database")?;
    drop(store);
    drop(lock);
    served?;
    println!("wellbeing stopped cleanly; data kept in {}", data_dir.display());
    Ok(())
}

/// The URL to open: loopback for an unspecified address, which also listens there.
fn page_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// Slack is on when both credentials are set (directly or as `*_FILE`), off when neither is.
fn slack_config() -> anyhow::Result<Option<SlackConfig>> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let any = ["SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET_FILE", "SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN_FILE"]
        .into_iter()
        .any(set);
    if !any {
        return Ok(None);
    }
    let config = SlackConfig::from_env(|k| std::env::var(k).ok()).context("failed to read the Slack settings")?;
    Ok(Some(config))
}

enum Server {
    Local(tokio::task::JoinHandle<std::io::Result<()>>, wellbeing_webhook::pipeline::Pipeline),
    Full(wellbeing_webhook::server::Running),
}

/// Where the inbox and its worker run.
enum Pipeline {
    Service(Box<wellbeing_webhook::server::Prepared>),
    Local(wellbeing_webhook::pipeline::Pipeline),
}

fn print_banner(
    url: &str,
    data_dir: &std::path::Path,
    manifests_dir: Option<&PathBuf>,
    set: &ManifestSet,
    assistant: &Assistant,
    llm: &str,
    slack: bool,
) {
    let active = assistant.personas().active();
    let manifests = match manifests_dir {
        Some(dir) => format!(
            "{} ({} personas, {} goals, {} plugins; {} invalid, see the log)",
            dir.display(),
            set.personas.len(),
            set.goals.len(),
            set.plugins.len(),
            set.errors.len()
        ),
        None => "none (no --manifests and no ./examples): built-in persona, no scheduled check-ins".to_string(),
    };
    let persona = if active.is_default() {
        format!("{} (built-in)", active.spec().display_name)
    } else {
        format!("{} ({})", active.spec().display_name, active.name())
    };
    println!("wellbeing is running. It is an AI assistant, not a substitute for professional care.");
    println!("  Local page:  {url}/");
    println!("  Data:        {}", data_dir.display());
    println!("  Manifests:   {manifests}");
    println!("  Persona:     {persona}");
    println!("  LLM:         {llm}");
    println!(
        "  Dashboard:   {url}/dashboard (token in {})",
        data_dir.join(wellbeing_webhook::dashboard::TOKEN_FILE).display()
    );
    if slack {
        println!(
            "  Slack:       {url}/slack/events, /slack/commands, /slack/interactivity (expose them with a tunnel)"
        );
    } else {
        println!("  Slack:       off (set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN to serve /slack/*)");
    }
    println!("Chat from a terminal with `wellbeing chat \"slept badly, skipped breakfast\"`. Ctrl-C stops.");
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "failed to listen for SIGTERM; only Ctrl-C stops the process");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Where scheduled check-ins go. A persona whose channel is Slack (the default) is served by the
/// assistant service's own `/internal/checkins`, called in-process: the same code a CronJob
/// reaches in a cluster (pause, quiet days, back-off, DM, delivery records). Every other
/// persona, and every persona without Slack credentials, checks in on the local page.
struct CheckIns {
    assistant: Assistant,
    slack: Option<SlackCheckIns>,
    goals: GoalJobs,
}

struct SlackCheckIns {
    router: axum::Router,
    token: String,
}

impl JobRunner for CheckIns {
    async fn run(&self, job: Job, persona: Persona) -> Result<Outcome, String> {
        let (slot, index) = match job.kind {
            JobKind::CheckIn { slot, index, .. } => (slot, index),
            JobKind::Goals { minute } => return self.goals.run(&persona, minute).await,
        };
        if let Some(slack) = &self.slack
            && persona.spec.check_ins.channel == CrdChannel::Slack
        {
            return slack_checkin(slack, &persona, index).await;
        }
        // The registry follows the same snapshot the scheduler planned from; a persona edited in
        // between speaks with its new prompts, which is what the user just asked for.
        jobs::local_checkin(&self.assistant, &persona, slot, &self.goals.config, chrono::Utc::now()).await
    }

    fn runs_goals(&self) -> bool {
        true
    }
}

async fn slack_checkin(slack: &SlackCheckIns, persona: &Persona, index: usize) -> Result<Outcome, String> {
    use tower::ServiceExt as _;
    let body = serde_json::to_vec(&CheckinRequest { persona: persona.name_any(), slot: Some(index) })
        .map_err(|e| e.to_string())?;
    let request = axum::http::Request::post("/internal/checkins")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {}", slack.token))
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = slack.router.clone().oneshot(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("check-in to Slack failed ({status}): {}", String::from_utf8_lossy(&bytes)));
    }
    let answer: CheckinResponse = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    match answer.status.as_str() {
        "sent" => Ok(Outcome::Sent),
        "already_sent" => Ok(Outcome::AlreadySent),
        _ => {
            info!(reason = answer.reason.as_deref().unwrap_or(""), "check-in skipped");
            Ok(Outcome::Skipped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_url_is_reachable_from_this_machine() {
        assert_eq!(page_url("127.0.0.1:8080".parse().unwrap()), "http://127.0.0.1:8080");
        assert_eq!(page_url("0.0.0.0:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(page_url("[::1]:8080".parse().unwrap()), "http://[::1]:8080");
        assert_eq!(page_url("[::]:8080".parse().unwrap()), "http://[::1]:8080");
    }
}
