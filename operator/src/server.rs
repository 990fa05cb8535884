//! The operator's HTTP endpoints: `/healthz`, `/readyz` and Prometheus `/metrics`.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};
use tokio::{net::TcpListener, sync::watch};

use crate::metrics::Metrics;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Whether this replica leads (always true without leader election).
    pub leading: watch::Receiver<bool>,
    /// Watch scopes whose controller caches have synced, out of `scopes`.
    pub synced: Arc<AtomicUsize>,
    pub scopes: usize,
    /// Watches that failed recently (a 403, a CRD that is not installed).
    pub watches: Arc<WatchErrors>,
}

/// A watch that failed within this window keeps `/readyz` false. kube's watcher retries with
/// backoff up to 30 s, so a watch that keeps failing is never out of the window for long.
pub const WATCH_ERROR_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// When each watch (`kind` in `scope`) last failed, with its error.
#[derive(Debug, Default)]
pub struct WatchErrors(std::sync::Mutex<std::collections::BTreeMap<String, (std::time::Instant, String)>>);

impl WatchErrors {
    pub fn failed(&self, watch: &str, error: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(watch.to_string(), (std::time::Instant::now(), error));
    }

    /// The first watch that failed within the window, with its error.
    pub fn recent(&self) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().find(|(_, (at, _))| at.elapsed() < WATCH_ERROR_WINDOW).map(|(w, (_, e))| format!("{w}: {e}"))
    }
}

impl Health {
    /// Ready: a standby waiting for the lease (it is healthy, and must not be restarted for
    /// not leading), or a leader whose caches have all synced.
    pub fn ready(&self) -> Result<&'static str, String> {
        if !*self.leading.borrow() {
            return Ok("standby");
        }
        if let Some(failing) = self.watches.recent() {
            return Err(format!("a watch is failing: {failing}"));
        }
        if self.synced.load(Ordering::Acquire) >= self.scopes {
            Ok("ready")
        } else {
            Err("caches not synced yet".to_string())
        }
    }
}

pub fn app(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    match h.ready() {
        Ok(text) => (StatusCode::OK, text.to_string()),
        Err(text) => (StatusCode::SERVICE_UNAVAILABLE, text),
    }
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], h.metrics.encode())
}

/// Serve until `stop` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(health)).with_graceful_shutdown(stop).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(h: Health, path: &str) -> (StatusCode, String) {
        let res = app(h).oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn health(leading: bool, synced: usize) -> (Health, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(leading);
        let h = Health {
            metrics: Arc::new(Metrics::default()),
            leading: rx,
            synced: Arc::new(AtomicUsize::new(synced)),
            scopes: 1,
            watches: Arc::new(WatchErrors::default()),
        };
        (h, tx)
    }

    #[tokio::test]
    async fn readiness_follows_leadership_and_sync() {
        let (h, tx) = health(false, 0);
        assert_eq!(get_path(h.clone(), "/readyz").await, (StatusCode::OK, "standby".into()));
        tx.send_replace(true);
        assert_eq!(get_path(h.clone(), "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        h.synced.store(1, Ordering::Release);
        assert_eq!(get_path(h.clone(), "/readyz").await, (StatusCode::OK, "ready".into()));
        assert_eq!(get_path(h.clone(), "/healthz").await, (StatusCode::OK, "ok".into()));
        h.watches.failed("CronJob in namespace wellbeing", "403 Forbidden".into());
        let (status, body) = get_path(h.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("CronJob in namespace wellbeing: 403 Forbidden"), "{body}");
        assert_eq!(get_path(h, "/healthz").await.0, StatusCode::OK, "alive, just not ready");
    }

    #[tokio::test]
    async fn metrics_are_exposed() {
        let (h, _tx) = health(true, 1);
        drop(h.metrics.reconcile("Goal"));
        let (status, body) = get_path(h, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("wellbeing_operator_reconciles_total{kind=\"Goal\"} 1"), "{body}");
        assert!(body.ends_with("# EOF\n"));
    }
}
