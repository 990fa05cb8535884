//! `wellbeing operator`: run the Kubernetes controllers (in the chart's operator Deployment).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use wellbeing_operator::{
    Context, LeaderOptions, OperatorConfig, PluginDefaults, RunOptions, Scope, SecretDelivery,
    context::StoreFor,
    metrics::Metrics,
    secret_store::{self, KubernetesStore, SecretStore, StoreConfig, StoreKind},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "WELLBEING_OPERATOR_LISTEN", default_value = "0.0.0.0:8081")]
    listen: SocketAddr,
    /// The operator's own namespace (leader Lease, default watch scope). Default: the
    /// in-cluster namespace or the kubeconfig's.
    #[arg(long, env = "WELLBEING_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// Namespaces to watch, comma separated; `*` for all (needs cluster-wide RBAC). Default: the
    /// operator's own namespace.
    #[arg(long, env = "WELLBEING_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Where secret values live: kubernetes (Secrets in each watched namespace) or gcp.
    #[arg(long, env = "WELLBEING_SECRET_STORE", default_value = "kubernetes", value_parser = parse_store)]
    secret_store: StoreKind,
    /// GCP project of the Secret Manager secrets (store gcp).
    #[arg(long, env = "WELLBEING_GCP_PROJECT")]
    gcp_project: Option<String>,
    /// How often SecretRequirements ask the store: 60, 60s, 2m or 1h.
    #[arg(long, env = "WELLBEING_POLL_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Image of the `wellbeing` binary, run by check-in CronJobs.
    #[arg(long, env = "WELLBEING_IMAGE", default_value = "ghcr.io/wellbeing-dev/wellbeing:latest")]
    image: String,
    /// The assistant's in-cluster URL, for check-in Jobs and the plugins' LLM gateway.
    #[arg(long, env = "WELLBEING_ASSISTANT_URL", default_value = "http://wellbeing-assistant:8080")]
    assistant_url: String,
    /// Namespace of the assistant pods (plugin NetworkPolicies admit only them). Default: each
    /// plugin's own namespace.
    #[arg(long, env = "WELLBEING_ASSISTANT_NAMESPACE")]
    assistant_namespace: Option<String>,
    /// Audience of the ServiceAccount token check-in Jobs present to the assistant.
    #[arg(long, env = "WELLBEING_TOKEN_AUDIENCE", default_value = "wellbeing-assistant")]
    token_audience: String,
    /// ServiceAccount of check-in Jobs.
    #[arg(long, env = "WELLBEING_CHECKIN_SERVICE_ACCOUNT")]
    checkin_service_account: Option<String>,
    /// Image of the Python plugin host.
    #[arg(long, env = "WELLBEING_PLUGIN_IMAGE", default_value = "ghcr.io/wellbeing-dev/wellbeing-plugin-host:latest")]
    plugin_image: String,
    /// RuntimeClass for plugin pods (gVisor, Kata ...).
    #[arg(long, env = "WELLBEING_RUNTIME_CLASS")]
    runtime_class: Option<String>,
    /// Do not deploy plugins when the RuntimeClass is missing.
    #[arg(long, env = "WELLBEING_REQUIRE_SANDBOX", default_value_t = false, action = clap::ArgAction::Set)]
    require_sandbox: bool,
    /// Elect a leader through a Lease, so only one replica reconciles.
    #[arg(long, env = "WELLBEING_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// This replica's identity in the Lease and in Events. Default: the host name (the pod name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    match s.parse::<StoreKind>()? {
        StoreKind::Local => Err("the local store is for `wellbeing up`; use kubernetes or gcp".into()),
        kind => Ok(kind),
    }
}

/// `90`, `90s`, `5m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration such as 60s, 5m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("the interval must be at least one second".into());
    }
    Ok(Duration::from_secs(secs))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start tokio")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await.context("failed to configure the Kubernetes client")?;
    let namespace = args.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
    let scopes = if args.watch_namespaces.iter().any(|n| n == "*") {
        vec![Scope::AllNamespaces]
    } else if args.watch_namespaces.is_empty() {
        vec![Scope::Namespace(namespace.clone())]
    } else {
        Scope::from_list(&args.watch_namespaces)
    };
    let (store_for, delivery) = store(&args, &client)?;
    let identity = args.pod_name.clone().or_else(hostname).unwrap_or_else(|| "wellbeing-operator".into());
    let config = OperatorConfig {
        image: args.image,
        assistant_url: args.assistant_url,
        assistant_namespace: args.assistant_namespace,
        checkin_token_audience: args.token_audience,
        checkin_service_account: args.checkin_service_account,
        poll_interval: args.poll_interval,
        plugin: PluginDefaults {
            host_image: args.plugin_image,
            runtime_class: args.runtime_class,
            require_sandbox: args.require_sandbox,
            ..PluginDefaults::default()
        },
        secret_delivery: delivery,
        ..OperatorConfig::default()
    };
    let ctx = Context::new(client, store_for, Arc::new(Metrics::default()), config, Some(identity.clone()));
    let opts = RunOptions {
        listen: args.listen,
        scopes,
        leader: args.leader_election.then_some(LeaderOptions { namespace, identity }),
    };
    // Losing the lease comes back as an error, and returning it ends the process with a failure:
    // Kubernetes restarts the pod, which rejoins as a standby.
    let shutdown = async {
        shutdown_signal().await;
        // A second Ctrl-C or SIGTERM while reconciles drain: stop now.
        tokio::spawn(async {
            shutdown_signal().await;
            tracing::warn!("second shutdown signal: exiting without waiting");
            std::process::exit(130);
        });
    };
    wellbeing_operator::run(Arc::new(ctx), opts, shutdown).await.context("operator stopped")?;
    tracing::info!("operator stopped");
    Ok(())
}

fn store(args: &Args, client: &kube::Client) -> anyhow::Result<(StoreFor, SecretDelivery)> {
    match args.secret_store {
        StoreKind::Gcp => {
            let cfg = StoreConfig { kind: StoreKind::Gcp, gcp_project: args.gcp_project.clone(), ..Default::default() };
            let store: Arc<dyn SecretStore> =
                secret_store::from_config(&cfg).context("failed to configure the gcp secret store")?;
            let project = args.gcp_project.clone().unwrap_or_default();
            Ok((Context::shared_store(store), SecretDelivery::GkeSecretManager { project }))
        }
        _ => {
            // Plugin pods read Secrets from their own namespace, so presence is checked there too.
            let client = client.clone();
            let store_for: StoreFor = Arc::new(move |ns: &str| {
                let store: Arc<dyn SecretStore> = Arc::new(KubernetesStore::new(client.clone(), ns));
                Ok(store)
            });
            Ok((store_for, SecretDelivery::KubernetesSecret))
        }
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_and_defaults() {
        let cli = Cli::try_parse_from([
            "operator",
            "--watch-namespaces",
            "a,b",
            "--secret-store",
            "gcp",
            "--gcp-project",
            "p",
            "--leader-election",
            "false",
            "--poll-interval",
            "2m",
        ])
        .unwrap();
        assert_eq!(cli.args.watch_namespaces, ["a", "b"]);
        assert_eq!(cli.args.secret_store, StoreKind::Gcp);
        assert!(!cli.args.leader_election);
        assert_eq!(cli.args.poll_interval, Duration::from_secs(120));
        assert_eq!(cli.args.listen, "0.0.0.0:8081".parse().unwrap());
        assert!(Cli::try_parse_from(["operator", "--secret-store", "local"]).is_err());
    }
}
