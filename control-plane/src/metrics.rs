//! Prometheus metrics of config distribution: how long a revision takes to reach workers, how
//! big the pushes are, and how many workers are connected.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Commit-to-ACK buckets: 1 ms to 30 s.
const CONVERGENCE_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PushKind {
    full,
    delta,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    pub kind: PushKind,
}

/// Every metric of the control plane; cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub convergence: Histogram,
    pub push_bytes: Histogram,
    pub pushes: Family<PushLabels, Counter>,
    pub nacks: Counter,
    pub latest_revision: Gauge,
    pub connected_workers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let convergence = Histogram::new(CONVERGENCE_BUCKETS);
        let push_bytes = Histogram::new(exponential_buckets(256.0, 4.0, 10));
        let pushes = Family::<PushLabels, Counter>::default();
        let nacks = Counter::default();
        let latest_revision = Gauge::default();
        let connected_workers = Gauge::default();
        let mut registry = Registry::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "config_convergence_seconds",
            "Time from a revision's commit to a worker's ACK of it",
            convergence.clone(),
        );
        registry.register(
            "config_push_bytes",
            "Encoded size of each config push",
            push_bytes.clone(),
        );
        registry.register(
            "config_pushes",
            "Config pushes sent to workers, full or delta",
            pushes.clone(),
        );
        registry.register("config_nacks", "Pushes refused by workers", nacks.clone());
        registry.register(
            "config_latest_revision",
            "The latest config revision this replica knows",
            latest_revision.clone(),
        );
        registry.register(
            "config_connected_workers",
            "Workers with an open config sync stream to this replica",
            connected_workers.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            convergence,
            push_bytes,
            pushes,
            nacks,
            latest_revision,
            connected_workers,
        }
    }

    pub fn pushed(&self, kind: PushKind, bytes: usize) {
        self.pushes.get_or_create(&PushLabels { kind }).inc();
        self.push_bytes.observe(bytes as f64);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let metrics = Metrics::new();
        metrics.pushed(PushKind::delta, 300);
        metrics.nacks.inc();
        metrics.convergence.observe(0.002);
        metrics.latest_revision.set(4);
        let text = metrics.render();
        for needle in [
            "config_pushes_total{kind=\"delta\"} 1",
            "config_nacks_total 1",
            "config_convergence_seconds_bucket{le=\"0.001\"} 0",
            "config_convergence_seconds_bucket{le=\"30.0\"} 1",
            "config_push_bytes_count 1",
            "config_latest_revision 4",
            "config_connected_workers 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
