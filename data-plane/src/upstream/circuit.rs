//! Circuit breaking: per-upstream limits on open connections, requests waiting for response
//! headers and requests in flight. A request beyond a limit is refused at once (503
//! `circuit_open`) instead of queueing behind an upstream that is already saturated.
//!
//! Each limit is one atomic counter: acquiring is one `fetch_add`, and giving back happens in
//! `Drop` of whatever holds the slot, so no path can forget it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use gateway_config::CircuitBreaker;

/// A counter with an upper bound.
#[derive(Debug)]
pub struct Gauge {
    value: AtomicU32,
    max: u32,
}

impl Gauge {
    pub fn new(max: Option<u32>) -> Self {
        Gauge {
            value: AtomicU32::new(0),
            max: max.unwrap_or(u32::MAX),
        }
    }

    /// Takes one slot; false (and nothing taken) when the limit is reached.
    #[inline]
    pub fn try_acquire(&self) -> bool {
        if self.max == u32::MAX {
            self.value.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if self.value.fetch_add(1, Ordering::Relaxed) < self.max {
            true
        } else {
            self.value.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }

    #[inline]
    pub fn release(&self) {
        self.value.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u32 {
        self.value.load(Ordering::Relaxed)
    }
}

/// The limits of one upstream. `connections` is shared with the upstream's connector, which
/// counts the connections it opens.
#[derive(Debug)]
pub struct Breaker {
    pub connections: Arc<Gauge>,
    pub pending: Gauge,
    pub requests: Gauge,
}

impl Breaker {
    pub fn new(limits: Option<&CircuitBreaker>) -> Self {
        Breaker {
            connections: Arc::new(Gauge::new(limits.and_then(|l| l.max_connections))),
            pending: Gauge::new(limits.and_then(|l| l.max_pending)),
            requests: Gauge::new(limits.and_then(|l| l.max_requests)),
        }
    }
}

/// One slot of a shared gauge (a connection, a mirrored request), given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Gauge>);

impl Slot {
    pub fn acquire(gauge: &Arc<Gauge>) -> Option<Self> {
        gauge.try_acquire().then(|| Slot(gauge.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_slots_come_back() {
        let gauge = Gauge::new(Some(2));
        assert!(gauge.try_acquire());
        assert!(gauge.try_acquire());
        assert!(!gauge.try_acquire());
        assert_eq!(gauge.get(), 2);
        gauge.release();
        assert!(gauge.try_acquire());
        let unlimited = Gauge::new(None);
        for _ in 0..1000 {
            assert!(unlimited.try_acquire());
        }
        let shared = Arc::new(Gauge::new(Some(1)));
        let slot = Slot::acquire(&shared);
        assert!(slot.is_some());
        assert!(Slot::acquire(&shared).is_none());
        drop(slot);
        assert!(Slot::acquire(&shared).is_some());
    }
}
