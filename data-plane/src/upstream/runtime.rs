//! The runtime state of one upstream that outlives a revision: targets with their health and
//! in-flight counters, the balancer, circuit-breaker counters, the DNS cache and the transport
//! with its connection pool, and the choice of a target for each try of a request.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gateway_config::{AllUnhealthy, HashOn, Protocol, Upstream};
use http::uri::Authority;
use http::{HeaderValue, Version};

use super::circuit::Breaker;
use super::connector::UpstreamConnector;
use super::dns::DnsCache;
use super::health::{HealthClock, TargetHealth, Transition};
use super::pool::http1::Http1Pool;
use super::pool::http2::Http2Pool;
use super::tls::SystemRoots;
use super::transport::Transport;
use crate::balance::Balancer;

/// How long an idle pooled upstream connection is kept unless the upstream says otherwise.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub(super) settings: Upstream,
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
    pub clock: HealthClock,
    /// Kept here so that the refresh loop, which holds it weakly, stops with the runtime.
    pub dns: Arc<DnsCache>,
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
    /// The runtime of `upstream`, without its background tasks (the registry starts them).
    pub fn build(upstream: &Upstream, roots: &SystemRoots) -> Result<Arc<Self>, UpstreamError> {
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
            roots,
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
        Ok(Arc::new(UpstreamRuntime {
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
            clock: HealthClock::new(),
            dns,
        }))
    }

    pub fn targets(&self) -> &[RuntimeTarget] {
        &self.targets
    }

    /// Chooses a target: usable ones first (healthy, not ejected, not in `tried`); when none is,
    /// any untried one under `fail_open`, or [`Choice::NoHealthyTarget`] under `reject`.
    pub fn choose(&self, key: Option<u64>, tried: u64) -> Choice {
        let now = self.clock.now_ms();
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
            && let Some(Transition::Ejected(length)) =
                target.health.record_failure(policy, self.clock.now_ms())
        {
            tracing::warn!(
                upstream = %self.name, target = %target.authority,
                eject_for_ms = length.as_millis() as u64,
                "target ejected after consecutive failures"
            );
        }
    }
}
