//! Prometheus metrics: reconciles, failures and reconcile duration, labelled by kind.

use std::time::Instant;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub error: &'static str,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    duration: HistogramFamily,
    store_checks: Family<KindLabels, Counter>,
    watch_errors: Family<KindLabels, Counter>,
}

fn duration_histogram() -> Histogram {
    // 5 ms to ~10 s: a reconcile is a handful of API calls, a slow one waits on the store.
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wellbeing_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed", failures.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconcile", duration.clone());
        let store_checks = Family::<KindLabels, Counter>::default();
        registry.register(
            "secret_store_checks",
            "Answers from the secret store (status.lastChecked moves only when the phase changes)",
            store_checks.clone(),
        );
        let watch_errors = Family::<KindLabels, Counter>::default();
        registry.register("watch_errors", "Errors from a controller's watches and queue", watch_errors.clone());
        Metrics { registry, reconciles, failures, duration, store_checks, watch_errors }
    }
}

impl Metrics {
    /// Count a reconcile and time it until the returned guard is dropped.
    pub fn reconcile(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        ReconcileTimer { metrics: self, kind, start: Instant::now() }
    }

    pub fn failure(&self, kind: &'static str, error: &'static str) {
        self.failures.get_or_create(&ErrorLabels { kind, error }).inc();
    }

    pub fn store_checked(&self, kind: &'static str) {
        self.store_checks.get_or_create(&KindLabels { kind }).inc();
    }

    pub fn watch_error(&self, kind: &'static str) {
        self.watch_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Records the reconcile duration when dropped, so early returns and errors are timed too.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let secs = self.start.elapsed().as_secs_f64();
        self.metrics.duration.get_or_create(&KindLabels { kind: self.kind }).observe(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_times_per_kind() {
        let m = Metrics::default();
        drop(m.reconcile("Persona"));
        drop(m.reconcile("Persona"));
        m.failure("Plugin", "kube");
        let text = m.encode();
        assert!(text.contains("wellbeing_operator_reconciles_total{kind=\"Persona\"} 2"), "{text}");
        assert!(text.contains("wellbeing_operator_reconcile_errors_total{kind=\"Plugin\",error=\"kube\"} 1"), "{text}");
        assert!(text.contains("wellbeing_operator_reconcile_duration_seconds_count{kind=\"Persona\"} 2"), "{text}");
    }
}
