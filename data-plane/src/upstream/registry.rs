//! Per-upstream runtime state that outlives a revision: targets with their health and in-flight
//! counters, the balancer, circuit-breaker counters, the DNS cache and the connection pool.
//!
//! A [`Registry`] hands out one [`UpstreamRuntime`] per upstream name and gives the same one to
//! the next revision while the upstream's settings (everything but its tags) are unchanged, so a
//! new revision neither forgets an ejected target nor drops pooled connections. It keeps only
//! weak references: a runtime lives as long as a served revision uses it, and its background
//! tasks (active probes, DNS refresh) stop when it is dropped.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use gateway_config::{ActiveHealthCheck, AllUnhealthy, HashOn, Protocol, Upstream};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Request, Uri, Version};
use http_body_util::{BodyExt, Either, Full, Limited};

use crate::balance::Balancer;
use crate::circuit::Breaker;
use crate::connector::UpstreamConnector;
use crate::dns::{self, DnsCache};
use crate::forward::UpstreamBody;
use crate::health::{self, TargetHealth, now_ms};
use crate::http1_pool::Http1Pool;
use crate::http2_pool::Http2Pool;
use crate::transport::Transport;

/// Request bodies sent upstream: the client's, streamed, or one built in memory (empty for a
/// retried or probing request).
pub type ForwardBody = Either<crate::forward::RequestBody, Full<Bytes>>;

/// How long an idle pooled upstream connection is kept unless the upstream says otherwise.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(30);
/// Answers of active probes are read up to this size; a larger one closes its connection.
const MAX_PROBE_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream `{upstream}`: targets[{index}].address `{address}` is not a valid authority")]
    BadAddress {
        upstream: String,
        index: usize,
        address: String,
    },
    #[error("upstream `{upstream}`: no target has a weight above 0")]
    NoWeight { upstream: String },
}

#[derive(Debug)]
pub struct RuntimeTarget {
    pub authority: Authority,
    /// The target address as a `Host` header, used unless the route says otherwise.
    pub host_header: HeaderValue,
    pub health: TargetHealth,
    /// Requests in flight, for least request.
    pub in_flight: AtomicU32,
}

pub struct UpstreamRuntime {
    pub name: Box<str>,
    /// The settings this runtime was built from; tags cleared.
    settings: Upstream,
    targets: Box<[RuntimeTarget]>,
    weights: Box<[u32]>,
    balancer: Balancer,
    pub hash_on: Option<HashOn>,
    pub passive: Option<gateway_config::PassiveHealthCheck>,
    pub all_unhealthy: AllUnhealthy,
    pub breaker: Breaker,
    pub transport: Transport,
    /// Version of the requests sent: HTTP/1.1, or HTTP/2 for `http2` and `h2c`.
    pub version: Version,
    _dns: Arc<DnsCache>,
}

impl std::fmt::Debug for UpstreamRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamRuntime")
            .field("name", &self.name)
            .field("targets", &self.targets)
            .field("balancer", &self.balancer)
            .finish_non_exhaustive()
    }
}

/// Which target a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Target(usize),
    /// Every target is unhealthy and the upstream rejects then.
    NoHealthyTarget,
}

impl UpstreamRuntime {
    fn build(upstream: &Upstream) -> Result<Arc<Self>, UpstreamError> {
        let targets = upstream
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let bad = || UpstreamError::BadAddress {
                    upstream: upstream.name.clone(),
                    index,
                    address: target.address.clone(),
                };
                let authority = Authority::from_str(&target.address).map_err(|_| bad())?;
                if authority.port_u16().is_none() {
                    return Err(bad());
                }
                let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| bad())?;
                Ok(RuntimeTarget {
                    authority,
                    host_header,
                    health: TargetHealth::default(),
                    in_flight: AtomicU32::new(0),
                })
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let weights: Box<[u32]> = upstream.targets.iter().map(|t| t.weight).collect();
        let names: Vec<&str> = upstream
            .targets
            .iter()
            .map(|t| t.address.as_str())
            .collect();
        let balancer = Balancer::new(upstream.balance, &names, &weights).ok_or_else(|| {
            UpstreamError::NoWeight {
                upstream: upstream.name.clone(),
            }
        })?;
        let breaker = Breaker::new(upstream.circuit_breaker.as_ref());
        let dns = Arc::new(DnsCache::default());
        let timeouts = upstream.timeouts.clone().unwrap_or_default();
        let connector = UpstreamConnector::new(
            upstream.tls.as_ref(),
            upstream.protocol,
            timeouts
                .connect
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.as_std()),
            breaker.connections.clone(),
            dns.clone(),
        );
        let idle_timeout = timeouts.idle.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.as_std());
        let (transport, version) = match upstream.protocol {
            Protocol::Http1 => {
                let pool = Http1Pool::new(connector, targets.len(), idle_timeout);
                (Transport::Http1(Arc::new(pool)), Version::HTTP_11)
            }
            Protocol::Http2 | Protocol::H2c => {
                let pool = Http2Pool::new(connector, targets.len(), idle_timeout);
                (Transport::Http2(Arc::new(pool)), Version::HTTP_2)
            }
        };
        let runtime = Arc::new(UpstreamRuntime {
            name: upstream.name.as_str().into(),
            settings: Upstream {
                tags: Vec::new(),
                ..upstream.clone()
            },
            targets,
            weights,
            balancer,
            hash_on: upstream.hash_on.clone(),
            passive: upstream
                .health_check
                .as_ref()
                .and_then(|h| h.passive.clone()),
            all_unhealthy: upstream.all_unhealthy,
            breaker,
            transport,
            version,
            _dns: dns.clone(),
        });
        runtime.start_background(upstream, &dns);
        Ok(runtime)
    }

    /// Starts active probes and DNS refresh when the upstream needs them and a runtime is there
    /// to run them (compiling in a plain unit test has none).
    fn start_background(self: &Arc<Self>, upstream: &Upstream, cache: &Arc<DnsCache>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.transport.start_reaper(&handle);
        if let Some(active) = upstream
            .health_check
            .as_ref()
            .and_then(|h| h.active.clone())
        {
            handle.spawn(health::probe_loop(Arc::downgrade(self), active));
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
            handle.spawn(dns::refresh_loop(Arc::downgrade(cache), names, every));
        }
    }

    pub fn targets(&self) -> &[RuntimeTarget] {
        &self.targets
    }

    /// Chooses a target: usable ones first (healthy, not ejected, not in `tried`); when none is,
    /// any untried one under `fail_open`, or [`Choice::NoHealthyTarget`] under `reject`.
    pub fn choose(&self, key: Option<u64>, tried: u64) -> Choice {
        let now = now_ms();
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        let load = |i: usize| {
            self.targets
                .get(i)
                .map_or(0, |t| t.in_flight.load(Ordering::Relaxed))
        };
        let healthy = |i: usize| {
            untried(i)
                && self
                    .targets
                    .get(i)
                    .is_some_and(|t| t.health.is_available(now))
        };
        if let Some(i) = self.balancer.pick(key, load, healthy, &self.weights) {
            return Choice::Target(i);
        }
        let any_healthy = self.targets.iter().any(|t| t.health.is_available(now));
        if !any_healthy && self.all_unhealthy == AllUnhealthy::Reject {
            return Choice::NoHealthyTarget;
        }
        // Fail open, or every healthy target was tried already: an untried one, else any.
        self.balancer
            .pick(key, load, untried, &self.weights)
            .or_else(|| self.balancer.pick(key, load, |_| true, &self.weights))
            .map_or(Choice::NoHealthyTarget, Choice::Target)
    }

    /// Records the outcome of a request to target `index` for passive health checking.
    pub fn record(&self, index: usize, failed: bool) {
        let Some(target) = self.targets.get(index) else {
            return;
        };
        if !failed {
            target.health.record_success();
            return;
        }
        if let Some(policy) = &self.passive
            && let Some(health::Transition::Ejected(length)) =
                target.health.record_failure(policy, now_ms())
        {
            tracing::warn!(
                upstream = %self.name, target = %target.authority,
                eject_for_ms = length.as_millis() as u64,
                "target ejected after consecutive failures"
            );
        }
    }

    /// One active probe of target `index`.
    pub async fn probe(&self, index: usize, policy: &ActiveHealthCheck) -> bool {
        let Some(target) = self.targets.get(index) else {
            return false;
        };
        let Ok(path) = PathAndQuery::from_str(&policy.path) else {
            return false;
        };
        let request = Request::get(Uri::from(path))
            .version(self.version)
            .header(http::header::HOST, target.host_header.clone())
            .header(http::header::USER_AGENT, "gateway-health-check")
            .body(Either::Right(Full::new(Bytes::new())));
        let Ok(request) = request else { return false };
        let exchange = async {
            let answer = self.transport.send(index, target, request).await.ok()?;
            let response = UpstreamBody::response(answer, None);
            let passed = health::status_passes(response.status().as_u16(), &policy.expected_status);
            // Read the (small) answer, so that its connection can serve the next request.
            let _ = Limited::new(response.into_body(), MAX_PROBE_BODY)
                .collect()
                .await;
            Some(passed)
        };
        tokio::time::timeout(policy.timeout.as_std(), exchange)
            .await
            .ok()
            .flatten()
            .unwrap_or(false)
    }
}

/// Upstream runtimes by name.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Weak<UpstreamRuntime>>>,
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);

impl Registry {
    /// The worker's registry: a worker serves one config at a time, so one per process.
    pub fn global() -> &'static Registry {
        &GLOBAL
    }

    /// The runtime of `upstream`: the current one when its settings are unchanged, else a new
    /// one (whose background tasks start now).
    pub fn runtime(&self, upstream: &Upstream) -> Result<Arc<UpstreamRuntime>, UpstreamError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = entries.get(&upstream.name).and_then(Weak::upgrade)
            && same_settings(&existing.settings, upstream)
        {
            return Ok(existing);
        }
        let runtime = UpstreamRuntime::build(upstream)?;
        entries.insert(upstream.name.clone(), Arc::downgrade(&runtime));
        // Forget upstreams no revision uses any more, at most once per doubling in size.
        if entries.len() > 16 && entries.len().is_power_of_two() {
            entries.retain(|_, weak| weak.strong_count() > 0);
        }
        Ok(runtime)
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
    use gateway_config::{Balance, Duration as ConfigDuration, PassiveHealthCheck, Target};

    use super::*;

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
        assert!(!first.targets()[0].health.is_available(now_ms()));
        let mut tagged = upstream("a", &["127.0.0.1:1", "127.0.0.1:2"]);
        tagged.tags = vec!["blue".into()];
        let same = registry.runtime(&tagged).unwrap();
        assert!(Arc::ptr_eq(&first, &same), "tags are not settings");
        let changed = registry
            .runtime(&upstream("a", &["127.0.0.1:1", "127.0.0.1:3"]))
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(changed.targets()[0].health.is_available(now_ms()));
        // Once no revision holds a runtime, the next one starts fresh.
        drop((first, same, changed));
        let fresh = registry
            .runtime(&upstream("a", &["127.0.0.1:1", "127.0.0.1:2"]))
            .unwrap();
        assert!(fresh.targets()[0].health.is_available(now_ms()));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod probe_tests {
    use gateway_config::{Duration as ConfigDuration, HealthCheck, Target};

    use super::*;

    #[tokio::test]
    async fn active_probes_mark_a_closed_target_unhealthy() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap().to_string();
        drop(closed);
        let upstream = Upstream {
            name: "probed".into(),
            targets: vec![Target { address, weight: 1 }],
            health_check: Some(HealthCheck {
                active: Some(ActiveHealthCheck {
                    interval: ConfigDuration::from_millis(100),
                    timeout: ConfigDuration::from_millis(100),
                    healthy: 1,
                    unhealthy: 2,
                    ..ActiveHealthCheck::default()
                }),
                passive: None,
            }),
            ..Default::default()
        };
        let registry = Registry::default();
        let runtime = registry.runtime(&upstream).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while runtime.targets()[0].health.is_healthy() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never marked unhealthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
