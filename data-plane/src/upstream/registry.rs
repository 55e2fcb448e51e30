//! Per-upstream runtime state that outlives a revision, by upstream name.
//!
//! A [`Registry`] hands out one [`UpstreamRuntime`] per upstream name and gives the same one to
//! the next revision while the upstream's settings (everything but its tags) are unchanged, so a
//! new revision neither forgets an ejected target nor drops pooled connections. It keeps only
//! weak references: a runtime lives as long as a served revision uses it, and its background
//! tasks (active probes, DNS refresh, the idle reaper) stop when it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gateway_config::Upstream;

use super::dns;
use super::probe;
use super::runtime::{UpstreamError, UpstreamRuntime};
use super::tls::SystemRoots;

const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(30);

/// Upstream runtimes by name. A worker serves one config at a time, so it has one registry,
/// which its served config owns and hands to every revision it compiles.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Weak<UpstreamRuntime>>>,
    roots: SystemRoots,
}

impl Registry {
    /// The runtime of `upstream`: the current one when its settings are unchanged, else a new
    /// one (whose background tasks start now).
    pub fn runtime(&self, upstream: &Upstream) -> Result<Arc<UpstreamRuntime>, UpstreamError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = entries.get(&upstream.name).and_then(Weak::upgrade)
            && same_settings(&existing.settings, upstream)
        {
            return Ok(existing);
        }
        let runtime = UpstreamRuntime::build(upstream, &self.roots)?;
        start_background(&runtime, upstream);
        entries.insert(upstream.name.clone(), Arc::downgrade(&runtime));
        // Forget upstreams no revision uses any more, at most once per doubling in size.
        if entries.len() > 16 && entries.len().is_power_of_two() {
            entries.retain(|_, weak| weak.strong_count() > 0);
        }
        Ok(runtime)
    }
}

/// Starts the connection reaper, active probes and DNS refresh where the upstream needs them and
/// a runtime is there to run them (compiling in a plain unit test has none).
fn start_background(runtime: &Arc<UpstreamRuntime>, upstream: &Upstream) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.transport.start_reaper(&handle);
    if let Some(active) = upstream
        .health_check
        .as_ref()
        .and_then(|h| h.active.clone())
    {
        handle.spawn(probe::probe_loop(Arc::downgrade(runtime), active));
    }
    let names: Vec<String> = upstream
        .targets
        .iter()
        .filter(|t| dns::is_name(&t.address))
        .map(|t| t.address.clone())
        .collect();
    if !names.is_empty() {
        let every = upstream
            .dns_refresh
            .map_or(DEFAULT_DNS_REFRESH, |d| d.as_std());
        handle.spawn(dns::refresh_loop(
            Arc::downgrade(&runtime.dns),
            names,
            every,
        ));
    }
}

fn same_settings(current: &Upstream, next: &Upstream) -> bool {
    // Compare field by field without cloning the whole upstream on every revision.
    let Upstream {
        name,
        tags: _,
        targets,
        balance,
        hash_on,
        health_check,
        all_unhealthy,
        timeouts,
        circuit_breaker,
        protocol,
        tls,
        dns_refresh,
    } = next;
    current.name == *name
        && current.targets == *targets
        && current.balance == *balance
        && current.hash_on == *hash_on
        && current.health_check == *health_check
        && current.all_unhealthy == *all_unhealthy
        && current.timeouts == *timeouts
        && current.circuit_breaker == *circuit_breaker
        && current.protocol == *protocol
        && current.tls == *tls
        && current.dns_refresh == *dns_refresh
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{
        AllUnhealthy, Balance, Duration as ConfigDuration, PassiveHealthCheck, Target,
    };

    use super::*;
    use crate::upstream::runtime::Choice;

    fn upstream(name: &str, addresses: &[&str]) -> Upstream {
        Upstream {
            name: name.into(),
            targets: addresses
                .iter()
                .map(|a| Target {
                    address: (*a).into(),
                    weight: 1,
                })
                .collect(),
            health_check: Some(gateway_config::HealthCheck {
                active: None,
                passive: Some(PassiveHealthCheck {
                    consecutive_failures: 1,
                    eject_for: ConfigDuration::from_millis(60_000),
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn unchanged_settings_carry_state_over_and_changes_start_fresh() {
        let registry = Registry::default();
        let first = registry
            .runtime(&upstream("a", &["127.0.0.1:1", "127.0.0.1:2"]))
            .unwrap();
        first.record(0, true);
        assert!(!first.targets()[0].health.is_available(first.clock.now_ms()));
        let mut tagged = upstream("a", &["127.0.0.1:1", "127.0.0.1:2"]);
        tagged.tags = vec!["blue".into()];
        let same = registry.runtime(&tagged).unwrap();
        assert!(Arc::ptr_eq(&first, &same), "tags are not settings");
        let changed = registry
            .runtime(&upstream("a", &["127.0.0.1:1", "127.0.0.1:3"]))
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(
            changed.targets()[0]
                .health
                .is_available(changed.clock.now_ms())
        );
        // Once no revision holds a runtime, the next one starts fresh.
        drop((first, same, changed));
        let fresh = registry
            .runtime(&upstream("a", &["127.0.0.1:1", "127.0.0.1:2"]))
            .unwrap();
        assert!(fresh.targets()[0].health.is_available(fresh.clock.now_ms()));
    }

    #[test]
    fn choice_avoids_ejected_and_tried_targets_and_follows_all_unhealthy() {
        let registry = Registry::default();
        let mut spec = upstream("b", &["127.0.0.1:1", "127.0.0.1:2"]);
        let runtime = registry.runtime(&spec).unwrap();
        runtime.record(0, true);
        for _ in 0..20 {
            assert_eq!(runtime.choose(None, 0), Choice::Target(1));
        }
        // The only healthy target was tried: fail open to the other.
        assert_eq!(runtime.choose(None, 0b10), Choice::Target(0));
        runtime.record(1, true);
        assert!(matches!(runtime.choose(None, 0), Choice::Target(_)));
        spec.all_unhealthy = AllUnhealthy::Reject;
        spec.balance = Balance::Random;
        let rejecting = registry.runtime(&spec).unwrap();
        rejecting.record(0, true);
        rejecting.record(1, true);
        assert_eq!(rejecting.choose(None, 0), Choice::NoHealthyTarget);
    }

    #[test]
    fn bad_settings_are_compile_errors() {
        let registry = Registry::default();
        assert!(matches!(
            registry.runtime(&upstream("c", &["no port"])),
            Err(UpstreamError::BadAddress { index: 0, .. })
        ));
        let mut zero = upstream("c", &["h:1"]);
        zero.targets[0].weight = 0;
        assert!(matches!(
            registry.runtime(&zero),
            Err(UpstreamError::NoWeight { .. })
        ));
    }
}
