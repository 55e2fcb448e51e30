//! The slots one request holds while it is in flight to a target: one of the upstream's
//! `max_requests`, one of its `max_pending` until the response headers arrive, and one in the
//! target's load for least-request balancing. All are given back in `Drop`, so no path can
//! forget them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::runtime::UpstreamRuntime;

/// Circuit-breaker and load slots of one request, given back when its response body ends.
#[derive(Debug)]
pub struct InFlight {
    upstream: Arc<UpstreamRuntime>,
    target: usize,
    pending: bool,
}

impl InFlight {
    /// The slots for a request to target `target`; `None` when the upstream is at one of its
    /// limits.
    pub fn acquire(upstream: &Arc<UpstreamRuntime>, target: usize) -> Option<Self> {
        let breaker = &upstream.breaker;
        if !breaker.requests.try_acquire() {
            return None;
        }
        if !breaker.pending.try_acquire() {
            breaker.requests.release();
            return None;
        }
        if let Some(t) = upstream.targets().get(target) {
            t.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Some(InFlight {
            upstream: upstream.clone(),
            target,
            pending: true,
        })
    }

    /// The response headers arrived: the request no longer counts as pending.
    pub fn headers_received(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.upstream.breaker.pending.release();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.headers_received();
        self.upstream.breaker.requests.release();
        if let Some(t) = self.upstream.targets().get(self.target) {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
