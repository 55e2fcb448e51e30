//! The live state of the worker: the compiled configuration it serves (one `Arc` behind an
//! `ArcSwapOption`, read once per request and replaced with one atomic store) plus what the status
//! port reports about the worker itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwapOption, Guard};

use crate::compile::Compiled;

/// Who this worker is, as reported to the control plane and on the status port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub id: String,
    pub group: String,
}

#[derive(Debug)]
pub struct State {
    live: ArcSwapOption<Compiled>,
    node: NodeIdentity,
    control_plane_connected: AtomicBool,
    // Written only by the sync task and read by the status port, never on the request path.
    last_error: Mutex<Option<String>>,
}

impl State {
    pub fn new(node: NodeIdentity) -> Self {
        State {
            live: ArcSwapOption::empty(),
            node,
            control_plane_connected: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    /// The served config for the duration of one request; cheaper than cloning the `Arc`.
    pub fn load(&self) -> Guard<Option<Arc<Compiled>>> {
        self.live.load()
    }

    /// The served config as an owned `Arc`, for work that outlives a request.
    pub fn current(&self) -> Option<Arc<Compiled>> {
        self.live.load_full()
    }

    /// Makes `compiled` the served config; requests already routed keep the previous one.
    pub fn store(&self, compiled: Compiled) {
        self.live.store(Some(Arc::new(compiled)));
    }

    pub fn node(&self) -> &NodeIdentity {
        &self.node
    }

    pub fn set_connected(&self, connected: bool) {
        self.control_plane_connected
            .store(connected, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.control_plane_connected.load(Ordering::Relaxed)
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
