//! Start and stop the assistant service: the inbox writer thread, the worker, the HTTP server(s),
//! and the shutdown order (stop accepting, finish in-flight requests and background answers, let
//! the worker finish its rows, flush the inbox writer, checkpoint and close the database).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wellbeing_assistant::engine::Assistant;
use wellbeing_assistant::goals::GoalsConfig;
use wellbeing_assistant::people::{Identity, PersonConfig};

use crate::app::{self, AppState, Clock, Services, SlackApp, SmsApp};
use crate::auth::InternalAuth;
use crate::config::{SlackConfig, SmsConfig};
use crate::db::Db;
use crate::inbox::InboxError;
use crate::metrics::Metrics;
use crate::people::ServedPeople;
use crate::pipeline::Pipeline;
use crate::slack::client::SlackClient;
use crate::slack::outbound::SlackOutbound;
use crate::sms::client::TwilioClient;
use crate::sms::outbound::SmsOutbound;
use crate::worker::{Outbound, WorkerOptions};

/// How long background answers (response_url, exports) may take after the last request.
const TASKS_GRACE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to start the inbox")]
    Inbox(#[source] InboxError),
    #[error("failed to read the listener address")]
    Addr(#[source] std::io::Error),
    #[error("failed to serve HTTP")]
    Serve(#[source] std::io::Error),
    #[error("failed to enrol the configured people")]
    People(#[source] wellbeing_assistant::people::EnrolError),
}

pub struct ServerConfig {
    pub slack: SlackConfig,
    /// Twilio, when SMS is on (`TWILIO_ACCOUNT_SID` set).
    pub sms: Option<SmsConfig>,
    /// `None`: no worker (rows wait in the inbox; the load benchmark measures the acceptor alone).
    pub worker: Option<WorkerOptions>,
    pub auth: InternalAuth,
    pub goals: GoalsConfig,
    pub clock: Clock,
    /// Set once the persona watch has synced (already true without a cluster).
    pub personas_synced: Arc<AtomicBool>,
    /// Routes of other parts (dashboard) to serve beside ours on the internal listener.
    pub extra_routes: Option<Router>,
    /// Where "Yes" on a learned pillar creates its Goal (the cluster, or the manifests folder).
    pub learned_goals: Option<Arc<dyn crate::nudges::LearnedGoals>>,
    /// The people served (`WELLBEING_PEOPLE`); `SLACK_USER_ID` adds one by their Slack id. Empty
    /// and nobody stored yet: the first person who writes is enrolled.
    pub people: Vec<PersonConfig>,
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub internal_addr: Option<SocketAddr>,
    pub state: AppState,
    stop: CancellationToken,
    done: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Ask for a graceful stop (same as SIGTERM).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stop gracefully and wait until everything is flushed and closed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Wait until the service has stopped (after `stop_token().cancel()`).
    pub async fn wait(self) -> Result<(), ServerError> {
        drop(self.state);
        match self.done.await {
            Ok(result) => result,
            Err(e) => Err(ServerError::Serve(std::io::Error::other(e))),
        }
    }
}

/// Start the service on `listener` (and the internal API on `internal` when given; otherwise
/// everything is served on `listener`).
pub async fn start(
    listener: TcpListener,
    internal: Option<TcpListener>,
    engine: Assistant,
    mut config: ServerConfig,
) -> Result<Running, ServerError> {
    let extra = config.extra_routes.take().unwrap_or_default();
    prepare(engine, config).await?.serve(listener, internal, extra)
}

/// The service with its inbox and worker running, not yet serving HTTP: routes of other parts
/// that need the inbox (the local page) are built from [`Prepared::state`], then [`Prepared::serve`].
pub struct Prepared {
    state: AppState,
    pipeline: Pipeline,
}

impl Prepared {
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// Start the inbox writer and the worker and build the shared state (`config.extra_routes` is
/// not used here: pass routes to [`Prepared::serve`]).
pub async fn prepare(engine: Assistant, config: ServerConfig) -> Result<Prepared, ServerError> {
    let metrics = Metrics::new();
    let client = SlackClient::new(&config.slack.api_base, config.slack.bot_token.clone(), metrics.clone());
    let (mut bot_user_id, mut team_id) = (config.slack.bot_user_id.clone(), config.slack.team_id.clone());
    if bot_user_id.is_none() || team_id.is_none() {
        // The bot's own id keeps it from answering itself; events also name it, so a failure
        // here is worth a warning, not a refusal to start.
        match client.auth_test().await {
            Ok(info) => {
                tracing::info!(bot_user_id = %info.user_id, "identified the bot with auth.test");
                bot_user_id = bot_user_id.or(Some(info.user_id));
                team_id = team_id.or(info.team_id);
            }
            Err(error) => tracing::warn!(error = %error, "auth.test failed; check SLACK_BOT_TOKEN"),
        }
    }
    let mut configured = config.people.clone();
    if let Some(user) = &config.slack.checkin_user {
        // SLACK_USER_ID alone names one person by their Slack identity.
        let identity = Identity::slack(team_id.as_deref(), user);
        if !configured.iter().flat_map(|p| &p.identities).any(|i| i.slack_user() == Some(user.as_str())) {
            configured.push(PersonConfig { name: identity.key(), identities: vec![identity] });
        }
    }
    let people = ServedPeople::start(engine.store().clone(), &configured).map_err(ServerError::People)?;
    let db = Db::open(engine.store()).map_err(ServerError::Inbox)?;
    let outbound = Arc::new(SlackOutbound::new(db, client.clone()));
    let sms = match &config.sms {
        Some(sms) => {
            let client = TwilioClient::new(&sms.api_base, &sms.account_sid, sms.auth_token.clone(), sms.sender.clone());
            let db = Db::open(engine.store()).map_err(ServerError::Inbox)?;
            tracing::info!(webhook_url = ?sms.webhook_url, "SMS by Twilio is on: POST /sms/twilio");
            Some(SmsApp {
                auth_token: sms.auth_token.clone(),
                webhook_url: sms.webhook_url.clone(),
                outbound: Arc::new(SmsOutbound::new(db, client)),
            })
        }
        None => None,
    };
    let channels = Outbound { slack: Some(outbound.clone()), sms: sms.as_ref().map(|s| s.outbound.clone()) };
    let pipeline = Pipeline::start(&engine, channels, people.clone(), metrics.clone(), config.worker)
        .map_err(ServerError::Inbox)?;
    let state = AppState(Arc::new(Services {
        engine: engine.clone(),
        inbox: pipeline.inbox.clone(),
        worker: pipeline.worker.clone(),
        slack: SlackApp { signing_secret: config.slack.signing_secret.clone(), client, outbound, bot_user_id },
        sms,
        people,
        metrics,
        auth: config.auth,
        clock: config.clock,
        goals: config.goals,
        learned_goals: config.learned_goals,
        tasks: TaskTracker::new(),
        personas_synced: config.personas_synced,
    }));
    Ok(Prepared { state, pipeline })
}

impl Prepared {
    /// Serve on `listener` (and the internal API on `internal`), `extra` beside our routes.
    pub fn serve(
        self,
        listener: TcpListener,
        internal: Option<TcpListener>,
        extra: Router,
    ) -> Result<Running, ServerError> {
        let Prepared { state, pipeline } = self;
        serve_prepared(state, pipeline, listener, internal, extra)
    }
}

fn serve_prepared(
    state: AppState,
    pipeline: Pipeline,
    listener: TcpListener,
    internal: Option<TcpListener>,
    extra: Router,
) -> Result<Running, ServerError> {
    let stop = CancellationToken::new();
    let addr = listener.local_addr().map_err(ServerError::Addr)?;
    let internal_addr = internal.as_ref().map(|l| l.local_addr()).transpose().map_err(ServerError::Addr)?;
    let (public_router, internal_router) = match internal {
        Some(_) => (app::public_app(state.clone()), Some(app::internal_app(state.clone()).merge(extra))),
        None => (app::app(state.clone()).merge(extra), None),
    };
    let public = tokio::spawn(serve(listener, public_router, stop.clone()));
    let internal_server = internal.zip(internal_router).map(|(l, r)| tokio::spawn(serve(l, r, stop.clone())));

    tracing::info!(%addr, internal = ?internal_addr, "assistant service listening");

    let shutdown_state = state.clone();
    let done = tokio::spawn(async move {
        // 1. Stop accepting; in-flight requests finish (axum's graceful shutdown).
        let mut result = public.await.unwrap_or_else(|e| Err(ServerError::Serve(std::io::Error::other(e))));
        if let Some(internal) = internal_server {
            let r = internal.await.unwrap_or_else(|e| Err(ServerError::Serve(std::io::Error::other(e))));
            result = result.and(r);
        }
        // 2. Background answers (response_url, exports).
        shutdown_state.tasks.close();
        if tokio::time::timeout(TASKS_GRACE, shutdown_state.tasks.wait()).await.is_err() {
            tracing::warn!("background answers still running at shutdown; abandoning them");
        }
        // 3. The worker finishes (or abandons, still pending) its rows; 4. everything queued for
        // the inbox is committed and the writer closes its connection.
        pipeline.shutdown().await;
        // 5. Fold the WAL into the database file so the volume holds one consistent file.
        let store = shutdown_state.engine.store().clone();
        drop(shutdown_state);
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(error) = store.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                tracing::warn!(error = %error, "final WAL checkpoint failed");
            }
        })
        .await;
        tracing::info!("assistant service stopped");
        result
    });
    Ok(Running { addr, internal_addr, state, stop, done })
}

async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) -> Result<(), ServerError> {
    use axum::serve::ListenerExt;
    // Answers are one small write each: send them at once rather than let Nagle hold them.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(ServerError::Serve)
}
