//! The durable inbox and its worker, started and stopped together: what the assistant service
//! runs beside its Slack endpoints, and what `wellbeing up` and `wellbeing chat` run for the local
//! page when Slack is off.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wellbeing_assistant::engine::Assistant;

use crate::inbox::{InboxError, InboxWriter};
use crate::metrics::Metrics;
use crate::people::ServedPeople;
use crate::worker::{Outbound, Worker, WorkerOptions};

pub struct Pipeline {
    pub inbox: InboxWriter,
    pub worker: Arc<Worker>,
    writer_thread: std::thread::JoinHandle<()>,
    worker_task: Option<tokio::task::JoinHandle<()>>,
    worker_stop: CancellationToken,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("worker", &self.worker).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Start the inbox writer thread and (with `worker` options) the worker. Rows left pending by
    /// an earlier run are processed first.
    pub fn start(
        engine: &Assistant,
        outbound: Outbound,
        people: ServedPeople,
        metrics: Metrics,
        worker: Option<WorkerOptions>,
    ) -> Result<Pipeline, InboxError> {
        let new_rows = Arc::new(Notify::new());
        let (inbox, writer_thread) = InboxWriter::start(engine.store().path(), new_rows.clone(), metrics.clone())?;
        let run = worker.is_some();
        let worker = Worker::new(engine.clone(), outbound, metrics, worker.unwrap_or_default(), people)?;
        let worker_stop = CancellationToken::new();
        let worker_task = run.then(|| tokio::spawn(worker.clone().run(new_rows, worker_stop.clone())));
        if worker_task.is_none() {
            tracing::warn!("inbox worker disabled: events are stored but not processed");
        }
        Ok(Pipeline { inbox, worker, writer_thread, worker_task, worker_stop })
    }

    /// The worker finishes (or abandons, still pending) its rows; then everything queued for the
    /// inbox is committed and the writer closes its connection.
    pub async fn shutdown(self) {
        self.worker_stop.cancel();
        if let Some(task) = self.worker_task {
            let _ = task.await;
        }
        self.inbox.shutdown().await;
        let thread = self.writer_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
