//! The live state of the worker: the compiled configuration it serves (one `Arc` behind an
//! `ArcSwapOption`, read once per request and replaced with one atomic store), the carryover every
//! revision it compiles shares, plus what the status port reports about the worker itself: where
//! the config came from, the link to the control plane, whether the worker is draining, and its
//! metrics.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwapOption, Guard};
use serde::Serialize;

use super::compile::{Carryover, Compiled};
use crate::observe::metrics::Metrics;

/// Who this worker is, as reported to the control plane and on the status port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub id: String,
    pub group: String,
}

/// Where the served config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A push from the control plane.
    ControlPlane,
    /// The local cache file, loaded at start.
    Cache,
}

impl Source {
    fn to_u8(self) -> u8 {
        match self {
            Source::ControlPlane => 1,
            Source::Cache => 2,
        }
    }

    fn from_u8(value: u8) -> Option<Source> {
        match value {
            1 => Some(Source::ControlPlane),
            2 => Some(Source::Cache),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct State {
    live: ArcSwapOption<Compiled>,
    carryover: Arc<Carryover>,
    node: NodeIdentity,
    source: AtomicU8,
    draining: AtomicBool,
    /// One above the revision the cache file holds; 0 while it holds none.
    cached_revision: AtomicU64,
    metrics: Metrics,
    control_planes: Vec<String>,
    // Written only by the sync task and read by the status port, never on the request path.
    connected_to: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl State {
    #[cfg(test)]
    pub fn new(node: NodeIdentity) -> Self {
        Self::with_control_planes(node, Vec::new())
    }

    /// A state that reports `control_planes` (the configured sync URLs) on the status port.
    pub fn with_control_planes(node: NodeIdentity, control_planes: Vec<String>) -> Self {
        State {
            live: ArcSwapOption::empty(),
            carryover: Arc::default(),
            node,
            source: AtomicU8::new(0),
            draining: AtomicBool::new(false),
            cached_revision: AtomicU64::new(0),
            metrics: Metrics::new(),
            control_planes,
            connected_to: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// Serves `fallback` to TLS clients that name no certificate of the config. Only before
    /// the first config is compiled: the carryover is made anew.
    pub fn with_tls_fallback(mut self, fallback: crate::tls::Fallback) -> Self {
        self.carryover = Arc::new(Carryover {
            tls_fallback: fallback,
            ..Carryover::default()
        });
        self
    }

    /// The served config for the duration of one request; cheaper than cloning the `Arc`.
    pub fn load(&self) -> Guard<Option<Arc<Compiled>>> {
        self.live.load()
    }

    /// What the revisions this worker compiles carry over from one to the next.
    pub fn carryover(&self) -> &Arc<Carryover> {
        &self.carryover
    }

    /// The served config as an owned `Arc`, for work that outlives a request.
    pub fn current(&self) -> Option<Arc<Compiled>> {
        self.live.load_full()
    }

    #[cfg(test)]
    /// Makes `compiled` (pushed by the control plane) the served config; requests already routed
    /// keep the previous one.
    pub fn store(&self, compiled: Compiled) {
        self.store_from(compiled, Source::ControlPlane);
    }

    pub fn store_from(&self, compiled: Compiled, source: Source) {
        self.metrics.set_revision(compiled.revision);
        self.metrics.set_certificates(
            compiled
                .tls
                .entries()
                .iter()
                .map(|e| (e.name.clone(), e.not_after_unix))
                .collect(),
        );
        self.live.store(Some(Arc::new(compiled)));
        self.set_source(source);
    }

    /// Records that the served config was confirmed by `source` without being replaced.
    pub fn set_source(&self, source: Source) {
        self.source.store(source.to_u8(), Ordering::Relaxed);
    }

    pub fn source(&self) -> Option<Source> {
        Source::from_u8(self.source.load(Ordering::Relaxed))
    }

    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn control_planes(&self) -> &[String] {
        &self.control_planes
    }

    /// Records the control plane whose stream is open now (`None` when none is).
    pub fn set_connected_to(&self, url: Option<String>) {
        *self.connected_to.lock().unwrap_or_else(|e| e.into_inner()) = url;
    }

    pub fn connected_to(&self) -> Option<String> {
        self.connected_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_connected(&self) -> bool {
        self.connected_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Marks the worker as shutting down: from now on it reports not ready.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Records that the cache file now holds `revision`.
    pub fn set_cached_revision(&self, revision: u64) {
        self.cached_revision
            .store(revision.saturating_add(1), Ordering::Relaxed);
    }

    /// The revision the cache file holds, if it holds one.
    pub fn cached_revision(&self) -> Option<u64> {
        self.cached_revision.load(Ordering::Relaxed).checked_sub(1)
    }

    pub fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
