//! How pools notice idleness: a clock the reaper ticks a few times per idle timeout, which
//! connections read to remember when they were last used (a load instead of reading the clock on
//! every request), and the reaper loop that closes what stayed idle for the idle timeout.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The reapers run this many times per idle timeout, so a connection is closed after between
/// one and `1 + 1 / REAPS_PER_IDLE_TIMEOUT` idle timeouts.
pub const REAPS_PER_IDLE_TIMEOUT: u32 = 4;

/// A pool's sense of idleness: the reaper ticks it [`REAPS_PER_IDLE_TIMEOUT`] times per idle
/// timeout, and connections remember the tick they were last used in.
#[derive(Debug)]
pub struct IdleClock {
    idle_timeout: Duration,
    tick: AtomicU64,
}

impl IdleClock {
    pub fn new(idle_timeout: Duration) -> Self {
        IdleClock {
            idle_timeout,
            tick: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> u64 {
        self.tick.load(Ordering::Relaxed)
    }

    /// Moves to the next tick and returns it.
    fn advance(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether something last used during tick `since` has been idle for at least the idle
    /// timeout at tick `now` (it has been idle for at least `now - since - 1` whole ticks).
    pub fn expired(since: u64, now: u64) -> bool {
        now.saturating_sub(since) > u64::from(REAPS_PER_IDLE_TIMEOUT)
    }
}

/// A pool that closes connections left idle.
pub trait Reap: Send + Sync + 'static {
    fn clock(&self) -> &IdleClock;
    /// Closes what has been idle for the idle timeout at tick `now`.
    fn reap_at(&self, now: u64);

    /// One of the [`REAPS_PER_IDLE_TIMEOUT`] rounds per idle timeout.
    fn reap(&self) {
        self.reap_at(self.clock().advance());
    }
}

/// Reaps `pool` until it is dropped.
pub async fn reap_loop<P: Reap>(pool: Weak<P>) {
    let Some(idle_timeout) = pool.upgrade().map(|p| p.clock().idle_timeout) else {
        return;
    };
    let period = (idle_timeout / REAPS_PER_IDLE_TIMEOUT).max(Duration::from_millis(10));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.reap();
    }
}
