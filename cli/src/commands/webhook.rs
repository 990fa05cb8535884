//! `wellbeing webhook`: the assistant service of the cluster (the chart's StatefulSet). Slack
//! endpoints (and Twilio's, with TWILIO_ACCOUNT_SID set), the durable inbox and its worker, the internal API for check-in Jobs, probes and
//! metrics, the dashboard, and the goals loop (reminders, nudges, questions and the weekly insight
//! by Slack DM; Goal progress into `Goal.status`). Personas and Goals come from the cluster, or
//! from `--manifests`, or there is the built-in default persona and no goals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use wellbeing_assistant::Store;
use wellbeing_assistant::engine::{Assistant, AssistantConfig};
use wellbeing_assistant::goals::GoalsConfig;
use wellbeing_assistant::llm::{LlmClient, LlmConfig, LlmRouter};
use wellbeing_assistant::persona::{PersonaRegistry, default_persona};
use wellbeing_webhook::app::system_clock;
use wellbeing_webhook::auth::{AllowedCallers, InternalAuth, KubeTokenReviewer, TokenReviewer};
use wellbeing_webhook::config::{self, SlackConfig, SmsConfig};
use wellbeing_webhook::goals_loop::{FixedGoals, GoalSource, GoalsLoop, Known, POLL_EVERY};
use wellbeing_webhook::nudges::{ClusterGoals, Delivery, LearnedGoals, ManifestGoals};
use wellbeing_webhook::server::{ServerConfig, start};
use wellbeing_webhook::worker::WorkerOptions;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address of the Slack endpoints (and, without --internal-listen, of everything else).
    #[arg(long, env = "WELLBEING_LISTEN", default_value = "0.0.0.0:8080", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Separate address for /internal/*, /readyz and /metrics, so a NetworkPolicy can admit only
    /// the namespace to them. Unset: served on --listen.
    #[arg(long, env = "WELLBEING_INTERNAL_LISTEN", value_name = "ADDR:PORT")]
    internal_listen: Option<SocketAddr>,
    /// Where the database lives (the StatefulSet's volume).
    #[arg(long, env = "WELLBEING_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
    /// Read Personas from this folder of manifests instead of the cluster.
    #[arg(long, env = "WELLBEING_MANIFESTS", value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// Watch Personas in the cluster even when not running in a pod (uses the kubeconfig).
    #[arg(long, env = "WELLBEING_PERSONAS_FROM_CLUSTER")]
    personas_from_cluster: bool,
    /// Namespace of the Personas [default: the pod's namespace, or the kubeconfig's].
    #[arg(long, env = "WELLBEING_NAMESPACE")]
    namespace: Option<String>,
    /// Time zone of the built-in persona (used when no Persona is active).
    #[arg(long, env = "WELLBEING_TIME_ZONE", default_value = "UTC")]
    time_zone: String,
    /// Audience check-in Jobs' ServiceAccount tokens must carry.
    #[arg(long, env = "WELLBEING_TOKEN_AUDIENCE", default_value = wellbeing_webhook::auth::DEFAULT_AUDIENCE)]
    token_audience: String,
    /// ServiceAccounts (names, in the Personas' namespace) allowed to trigger check-ins; any of
    /// the namespace when empty.
    #[arg(long, env = "WELLBEING_CHECKIN_SERVICE_ACCOUNTS", value_delimiter = ',')]
    checkin_service_accounts: Vec<String>,
    /// Process the inbox. `false` stores events without answering them (load tests, or a
    /// maintenance window: rows wait and are processed at the next start with the worker).
    #[arg(long, env = "WELLBEING_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    worker: bool,
    /// Users whose messages are processed at the same time.
    #[arg(long, env = "WELLBEING_WORKER_CONCURRENCY", default_value_t = 4)]
    worker_concurrency: usize,
    /// YAML or JSON file of LLM endpoints and which task uses which; unset: the one endpoint of
    /// WELLBEING_LLM_BASE_URL / WELLBEING_LLM_MODEL. See the README.
    #[arg(long, env = "WELLBEING_LLM_CONFIG", value_name = "FILE")]
    llm_config: Option<PathBuf>,
    /// The people served, `NAME=IDENTITY[,IDENTITY...]` separated by ';', identities
    /// `slack:TEAM:USER` (or `slack:USER`), `sms:+NUMBER`, `email:ADDRESS`, e.g.
    /// `ana=slack:T0123:U0456,sms:+4915112345678`. Anyone else who writes is refused. Unset (and
    /// no SLACK_USER_ID): the first person who writes is the one served.
    #[arg(long, env = "WELLBEING_PEOPLE", value_name = "PEOPLE", value_parser = parse_people)]
    people: Option<People>,
}

/// The parsed `--people` list (a newtype, so clap takes the whole list as one value).
#[derive(Clone, Debug)]
pub struct People(pub Vec<wellbeing_assistant::people::PersonConfig>);

fn parse_people(spec: &str) -> Result<People, String> {
    wellbeing_assistant::people::parse_people(spec).map(People).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let slack = SlackConfig::from_env(env).context("failed to read the Slack settings")?;
    let sms = SmsConfig::from_env(env).context("failed to read the Twilio (SMS) settings")?;
    let internal_token = match config::secret(&env, "WELLBEING_INTERNAL_TOKEN") {
        Ok(token) => Some(token),
        Err(config::ConfigError::Missing { .. }) => None,
        Err(e) => return Err(e).context("failed to read WELLBEING_INTERNAL_TOKEN"),
    };
    // Without a routes file: the one endpoint of the WELLBEING_LLM_* variables, as before.
    let llm = match &args.llm_config {
        Some(path) => crate::embedded::llm_router(
            env("WELLBEING_LLM_BASE_URL").filter(|v| !v.trim().is_empty()).as_deref(),
            env("WELLBEING_LLM_MODEL").filter(|v| !v.trim().is_empty()).as_deref(),
            Some(path),
        )?,
        None => LlmRouter::from(
            LlmConfig::from_env()
                .context("failed to read the LLM settings")?
                .map(LlmClient::new)
                .transpose()
                .context("failed to set up the LLM client")?,
        ),
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("failed to create the data dir {}", args.data_dir.display()))?;
    let store = Store::open_in(&args.data_dir).context("failed to open the database")?;
    // Plugins: in the cluster, the namespace's Ready Plugins at their endpoints (watched below).
    let plugins = crate::embedded::plugins::pool(&store);
    let mut plugin_watch = None;

    let registry = PersonaRegistry::new(default_persona(&args.time_zone));
    let synced = Arc::new(AtomicBool::new(true));
    let stop = CancellationToken::new();
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let mut reviewer: Option<Arc<dyn TokenReviewer>> = None;
    let mut namespace = args.namespace.clone();
    let mut watch = None;
    // The plugins' LLM gateway checks the operator's token Secrets in the cluster, else the data
    // dir's plugin-tokens.json.
    let mut gateway_tokens: Option<Arc<dyn wellbeing_webhook::gateway::PluginTokens>> = None;
    let mut kube_client = None;
    if let Some(dir) = &args.manifests {
        let set = crate::embedded::manifests::load_dir(dir)
            .with_context(|| format!("failed to read the manifests in {}", dir.display()))?;
        for error in &set.errors {
            tracing::warn!(error = %error, "manifest refused");
        }
        registry.replace_all(set.personas);
    } else if in_cluster || args.personas_from_cluster {
        let client = kube::Client::try_default().await.context("failed to connect to the Kubernetes API")?;
        let ns = namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
        namespace = Some(ns.clone());
        gateway_tokens = Some(Arc::new(wellbeing_webhook::gateway::KubeTokens::new(client.clone(), &ns)));
        synced.store(false, std::sync::atomic::Ordering::Relaxed);
        watch = Some(tokio::spawn(wellbeing_webhook::personas_kube::watch(
            client.clone(),
            ns.clone(),
            registry.clone(),
            synced.clone(),
            stop.child_token(),
        )));
        plugin_watch = Some(tokio::spawn(super::webhook_plugins::watch(
            client.clone(),
            ns.clone(),
            plugins.clone(),
            stop.child_token(),
        )));
        reviewer = Some(Arc::new(KubeTokenReviewer::new(client.clone())));
        kube_client = Some((client, ns));
    }
    // Goals (and the Goals that "Yes" on a learned pillar creates) live where the personas do.
    let (goal_source, learned): (Arc<dyn GoalSource>, Option<Arc<dyn LearnedGoals>>) =
        match (&args.manifests, kube_client) {
            (Some(dir), _) => (
                Arc::new(crate::embedded::jobs::folder_goals(dir.clone())),
                Some(Arc::new(ManifestGoals { dir: dir.clone() })),
            ),
            (None, Some((client, namespace))) => {
                let cluster = ClusterGoals { client, namespace };
                (Arc::new(cluster.clone()), Some(Arc::new(cluster)))
            }
            (None, None) => (Arc::new(FixedGoals(Vec::new())), None),
        };
    let goals_config = GoalsConfig::default();
    let auth = InternalAuth::new(
        internal_token,
        reviewer,
        args.token_audience.clone(),
        AllowedCallers { namespace: namespace.clone(), service_accounts: args.checkin_service_accounts.clone() },
    );
    if auth.is_closed() {
        tracing::warn!("internal API closed: set WELLBEING_INTERNAL_TOKEN or run in a cluster (TokenReview)");
    }

    let engine = Assistant::new(store, registry.clone(), None, AssistantConfig::default())
        .with_router(llm)
        .with_plugins(plugins.clone());

    // The dashboard, behind the token in the data dir, on the internal listener when there is one
    // (the chart exposes it to nobody: `kubectl port-forward`, or an Ingress of your own).
    let known = Arc::new(std::sync::RwLock::new(Known::default()));
    let dashboard_token = wellbeing_webhook::dashboard::load_or_create_token(&args.data_dir)?;
    let dash_known = known.clone();
    let dashboard_context: wellbeing_webhook::dashboard::ContextFn = Arc::new(move || {
        let known = dash_known.read().unwrap_or_else(|e| e.into_inner());
        wellbeing_webhook::dashboard::DashboardContext {
            persona: registry.active().spec().clone(),
            goals: known.goals.clone(),
            missing_secrets: known.missing_secrets.clone(),
        }
    });
    let dashboard =
        wellbeing_webhook::dashboard::DashboardState::new(engine.store().clone(), dashboard_token, dashboard_context);
    let gateway_tokens = match gateway_tokens {
        Some(tokens) => tokens,
        None => Arc::new(
            wellbeing_assistant::plugin_gateway::LocalPluginTokens::open(&args.data_dir)
                .context("failed to read the plugin tokens")?,
        ),
    };
    let gateway = wellbeing_webhook::gateway::routes_for(&engine, gateway_tokens)
        .context("failed to read the LLM gateway settings")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let internal = match args.internal_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| format!("failed to listen on {addr}"))?)
        }
        None => None,
    };
    let worker =
        args.worker.then(|| WorkerOptions { concurrency: args.worker_concurrency.max(1), ..Default::default() });
    let config = ServerConfig {
        slack,
        sms,
        worker,
        auth,
        goals: goals_config.clone(),
        clock: system_clock(),
        personas_synced: synced,
        extra_routes: Some(wellbeing_webhook::dashboard::router(dashboard).merge(gateway)),
        learned_goals: learned,
        people: args.people.clone().map(|p| p.0).unwrap_or_default(),
    };
    let running = start(listener, internal, engine, config).await.context("failed to start the assistant service")?;

    // Once a minute: reminders, nudges, questions and the weekly insight by Slack DM; progress
    // into Goal.status. It stops with the service (same token).
    let goals_loop = GoalsLoop {
        engine: running.state.engine.clone(),
        delivery: Delivery::new(running.state.engine.clone(), Some(running.state.slack.outbound.clone()))
            .with_sms(running.state.sms.as_ref().map(|sms| sms.outbound.clone())),
        source: goal_source,
        config: goals_config,
        progress_user: None,
        known,
        clock: system_clock(),
        poll_every: POLL_EVERY,
        personas_synced: running.state.personas_synced.clone(),
    };
    let loop_stop = running.stop_token();
    let goals_task = tokio::spawn(goals_loop.run(loop_stop.clone()).instrument(tracing::info_span!("goals_loop")));

    let service_stop = running.stop_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests (signal again to abort)");
        service_stop.cancel();
        shutdown_signal().await;
        tracing::warn!("second signal: aborting");
        std::process::exit(130);
    });
    let result = running.wait().await;
    loop_stop.cancel();
    let _ = goals_task.await;
    stop.cancel();
    if let Some(watch) = watch {
        let _ = watch.await;
    }
    if let Some(watch) = plugin_watch {
        let _ = watch.await;
    }
    result.context("the assistant service failed")
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
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
    {
        let _ = ctrl_c.await;
    }
}
