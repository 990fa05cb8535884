//! Prometheus metrics of the assistant service, served at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// accepted | duplicate | ignored | rejected
    pub result: &'static str,
    /// Why: signature failure, ignore reason, or the endpoint for accepted/duplicate.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlackErrorLabels {
    pub method: &'static str,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// done | retry | failed
    pub outcome: &'static str,
}

/// Every metric, cheap to clone. One instance per process (or per test).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub events: Family<EventLabels, Counter>,
    pub inbox_depth: Gauge,
    pub inbox_commit_batch: Histogram,
    pub inbox_commit_seconds: Histogram,
    pub processing_seconds: Family<OutcomeLabels, Histogram>,
    pub slack_api_errors: Family<SlackErrorLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wellbeing");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "slack_events",
            "Slack requests by result (accepted, duplicate, ignored, rejected)",
            events.clone(),
        );
        let inbox_depth = Gauge::default();
        registry.register("inbox_depth", "Inbox rows waiting to be processed", inbox_depth.clone());
        // 1 to 4096 rows: a quiet server commits single rows, a loaded one thousands at a time.
        let inbox_commit_batch = Histogram::new(exponential_buckets(1.0, 4.0, 7));
        registry.register("inbox_commit_batch_rows", "Rows per inbox group commit", inbox_commit_batch.clone());
        // 0.25 ms to ~4 s: an fsync on an idle SSD is a millisecond or two; a busy disk can stall
        // one for seconds, and this is where that shows.
        let inbox_commit_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 15));
        registry.register(
            "inbox_commit_seconds",
            "Time of one inbox group commit (inserts and fsync)",
            inbox_commit_seconds.clone(),
        );
        // 5 ms to ~80 s: offline extraction is milliseconds, an LLM with retries tens of seconds.
        let processing_seconds = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 15))
        });
        registry.register(
            "inbox_processing_seconds",
            "Time to process one inbox row (engine and Slack delivery)",
            processing_seconds.clone(),
        );
        let slack_api_errors = Family::<SlackErrorLabels, Counter>::default();
        registry.register(
            "slack_api_errors",
            "Failed Slack Web API calls by method and error",
            slack_api_errors.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            events,
            inbox_depth,
            inbox_commit_batch,
            inbox_commit_seconds,
            processing_seconds,
            slack_api_errors,
        }
    }

    pub fn event(&self, result: &'static str, reason: &'static str) {
        self.events.get_or_create(&EventLabels { result, reason }).inc();
    }

    pub fn slack_error(&self, method: &'static str, error: &str) {
        self.slack_api_errors.get_or_create(&SlackErrorLabels { method, error: error.to_string() }).inc();
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.event("accepted", "events");
        m.event("accepted", "events");
        m.slack_error("chat.postMessage", "channel_not_found");
        m.inbox_depth.set(3);
        let text = m.encode();
        assert!(text.contains(r#"wellbeing_slack_events_total{result="accepted",reason="events"} 2"#), "{text}");
        assert!(
            text.contains(r#"wellbeing_slack_api_errors_total{method="chat.postMessage",error="channel_not_found"} 1"#)
        );
        assert!(text.contains("wellbeing_inbox_depth 3"));
    }
}
