//! Health of upstream targets: the state machine that active probes and passive observations
//! drive. The probes themselves are in `probe`.
//!
//! Everything here is atomics, read by the balancers on every request: a target is available
//! while its active verdict is healthy and it is not ejected. Passive ejection follows real
//! traffic (N consecutive connect errors, resets or 5xx) and lasts `eject_for`, doubled for each
//! ejection that follows soon after the previous one. Active probes mark a target unhealthy after
//! `unhealthy` failed probes and healthy again after `healthy` passed ones. `healthy` probes
//! passed after an ejection also lift it, so that a target that came back takes traffic again
//! without waiting out `eject_for`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gateway_config::{ActiveHealthCheck, PassiveHealthCheck};

/// Ejections after the first double the time, up to this many doublings.
const MAX_EJECTION_DOUBLINGS: u32 = 5;
/// An ejection this many `eject_for` periods after the previous one ended starts over.
const EJECTION_MEMORY: u64 = 10;

/// The monotonic clock of one upstream's health state, in milliseconds since the upstream's
/// runtime was built: small enough for an atomic, and no process-wide epoch.
#[derive(Debug, Clone, Copy)]
pub struct HealthClock {
    epoch: Instant,
}

impl Default for HealthClock {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthClock {
    pub fn new() -> Self {
        HealthClock {
            epoch: Instant::now(),
        }
    }

    pub fn now_ms(self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug)]
pub struct TargetHealth {
    /// The active probes' verdict; targets start healthy so that traffic flows before the first
    /// probe.
    healthy: AtomicBool,
    probe_passes: AtomicU32,
    probe_failures: AtomicU32,
    /// Consecutive failed requests.
    failures: AtomicU32,
    ejected_until: AtomicU64,
    ejections: AtomicU32,
}

impl Default for TargetHealth {
    fn default() -> Self {
        TargetHealth {
            healthy: AtomicBool::new(true),
            probe_passes: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
        }
    }
}

/// A change of a target's health worth a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Healthy,
    Unhealthy,
    Ejected(Duration),
}

impl TargetHealth {
    pub fn is_available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && now >= self.ejected_until.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// A request to the target succeeded.
    #[inline]
    pub fn record_success(&self) {
        // Read first: a store on every request would bounce the cache line between cores.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A request to the target failed; ejects it when that makes `consecutive_failures`.
    pub fn record_failure(&self, policy: &PassiveHealthCheck, now: u64) -> Option<Transition> {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < policy.consecutive_failures {
            return None;
        }
        // Only the request that reset the count ejects, so concurrent failures eject once.
        self.failures
            .compare_exchange(failures, 0, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        let base = policy.eject_for.as_millis().max(1);
        let previous_end = self.ejected_until.load(Ordering::Relaxed);
        let ejections = if now.saturating_sub(previous_end) > base * EJECTION_MEMORY {
            1
        } else {
            self.ejections.load(Ordering::Relaxed) + 1
        };
        self.ejections.store(ejections, Ordering::Relaxed);
        let length = base << (ejections - 1).min(MAX_EJECTION_DOUBLINGS);
        self.ejected_until
            .store(now.saturating_add(length), Ordering::Relaxed);
        // Only probes after the ejection count towards lifting it.
        self.probe_passes.store(0, Ordering::Relaxed);
        Some(Transition::Ejected(Duration::from_millis(length)))
    }

    /// The result of one active probe.
    pub fn record_probe(
        &self,
        passed: bool,
        policy: &ActiveHealthCheck,
        now: u64,
    ) -> Option<Transition> {
        if passed {
            self.probe_failures.store(0, Ordering::Relaxed);
            let passes = self.probe_passes.fetch_add(1, Ordering::Relaxed) + 1;
            let unhealthy = !self.healthy.load(Ordering::Relaxed);
            let ejected = now < self.ejected_until.load(Ordering::Relaxed);
            if (unhealthy || ejected) && passes >= policy.healthy {
                self.healthy.store(true, Ordering::Relaxed);
                self.ejected_until.store(0, Ordering::Relaxed);
                self.failures.store(0, Ordering::Relaxed);
                return Some(Transition::Healthy);
            }
        } else {
            self.probe_passes.store(0, Ordering::Relaxed);
            let failures = self.probe_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if self.healthy.load(Ordering::Relaxed) && failures >= policy.unhealthy {
                self.healthy.store(false, Ordering::Relaxed);
                return Some(Transition::Unhealthy);
            }
        }
        None
    }
}

/// Whether a probe's status passes: one of `expected`, or any 2xx/3xx when none is listed.
pub fn status_passes(status: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (200..400).contains(&status)
    } else {
        expected.contains(&status)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Duration as ConfigDuration;

    use super::*;

    fn passive(failures: u32, eject_ms: u64) -> PassiveHealthCheck {
        PassiveHealthCheck {
            consecutive_failures: failures,
            eject_for: ConfigDuration::from_millis(eject_ms),
        }
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_count() {
        let health = TargetHealth::default();
        let policy = passive(3, 1_000);
        assert_eq!(health.record_failure(&policy, 0), None);
        assert_eq!(health.record_failure(&policy, 0), None);
        health.record_success();
        assert_eq!(health.record_failure(&policy, 0), None);
        assert_eq!(health.record_failure(&policy, 0), None);
        assert!(health.is_available(10));
        assert_eq!(
            health.record_failure(&policy, 10),
            Some(Transition::Ejected(Duration::from_secs(1)))
        );
        assert!(!health.is_available(500));
        assert!(health.is_available(1_010));
    }

    #[test]
    fn repeated_ejections_grow_and_are_forgotten_later() {
        let health = TargetHealth::default();
        let policy = passive(1, 100);
        assert_eq!(
            health.record_failure(&policy, 0),
            Some(Transition::Ejected(Duration::from_millis(100)))
        );
        assert_eq!(
            health.record_failure(&policy, 150),
            Some(Transition::Ejected(Duration::from_millis(200)))
        );
        assert_eq!(
            health.record_failure(&policy, 400),
            Some(Transition::Ejected(Duration::from_millis(400)))
        );
        for _ in 0..10 {
            health.record_failure(&policy, 900);
        }
        let Some(Transition::Ejected(capped)) = health.record_failure(&policy, 900) else {
            panic!("not ejected");
        };
        assert_eq!(capped, Duration::from_millis(100 << MAX_EJECTION_DOUBLINGS));
        // Long after the last ejection ended, the next one starts from the base again.
        assert_eq!(
            health.record_failure(&policy, 1_000_000),
            Some(Transition::Ejected(Duration::from_millis(100)))
        );
    }

    #[test]
    fn probes_need_their_thresholds_and_recovery_lifts_an_ejection() {
        let health = TargetHealth::default();
        let active = ActiveHealthCheck {
            healthy: 2,
            unhealthy: 3,
            ..ActiveHealthCheck::default()
        };
        assert_eq!(health.record_probe(false, &active, 0), None);
        assert_eq!(health.record_probe(false, &active, 0), None);
        assert_eq!(health.record_probe(true, &active, 0), None);
        assert_eq!(health.record_probe(false, &active, 0), None);
        assert_eq!(health.record_probe(false, &active, 0), None);
        assert_eq!(
            health.record_probe(false, &active, 0),
            Some(Transition::Unhealthy)
        );
        assert!(!health.is_available(0));
        health.record_failure(&passive(1, 60_000), 0);
        assert_eq!(health.record_probe(true, &active, 0), None);
        assert_eq!(
            health.record_probe(true, &active, 0),
            Some(Transition::Healthy)
        );
        assert!(health.is_available(1), "recovery lifts the ejection");
        // A healthy target ejected by traffic comes back after `healthy` passed probes.
        health.record_probe(true, &active, 0);
        health.record_failure(&passive(1, 60_000), 10);
        assert!(!health.is_available(20));
        assert_eq!(health.record_probe(true, &active, 20), None);
        assert_eq!(
            health.record_probe(true, &active, 30),
            Some(Transition::Healthy)
        );
        assert!(health.is_available(40));
        assert_eq!(health.record_probe(true, &active, 50), None);
    }

    #[test]
    fn expected_statuses() {
        assert!(status_passes(204, &[]));
        assert!(status_passes(302, &[]));
        assert!(!status_passes(500, &[]));
        assert!(status_passes(500, &[500]));
        assert!(!status_passes(200, &[204]));
    }
}
