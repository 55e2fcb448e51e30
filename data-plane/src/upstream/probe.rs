//! Active health checks: every `interval`, a GET of the policy's path to each target of an
//! upstream, on a connection of the probe's own. Such a connection is neither taken from the pool
//! nor counted against `max_connections`, and it is closed after the answer (as HAProxy's checks
//! do): a saturated upstream must not see its healthy targets marked unhealthy because traffic
//! holds every allowed connection, and a probe must show that the target takes new connections.

use std::str::FromStr;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use gateway_config::ActiveHealthCheck;
use http::header::{HOST, USER_AGENT};
use http::uri::PathAndQuery;
use http::{Request, Uri};
use http_body_util::{BodyExt, Either, Full, Limited};

use super::body::UpstreamBody;
use super::health::{Transition, status_passes};
use super::runtime::UpstreamRuntime;

/// Answers of active probes are read up to this size.
const MAX_PROBE_BODY: usize = 64 * 1024;

/// One active probe of target `index`: whether it answered in time with a passing status.
pub async fn probe(upstream: &UpstreamRuntime, index: usize, policy: &ActiveHealthCheck) -> bool {
    let Some(target) = upstream.targets().get(index) else {
        return false;
    };
    let Ok(path) = PathAndQuery::from_str(&policy.path) else {
        return false;
    };
    let request = Request::get(Uri::from(path))
        .version(upstream.version)
        .header(HOST, target.host_header.clone())
        .header(USER_AGENT, "gateway-health-check")
        .body(Either::Right(Full::new(Bytes::new())));
    let Ok(request) = request else { return false };
    let exchange = async {
        let answer = upstream
            .transport
            .send_alone(&target.authority, request)
            .await
            .ok()?;
        let response = UpstreamBody::response(answer, None);
        let passed = status_passes(response.status().as_u16(), &policy.expected_status);
        // Read the (small) answer, so that the target sees the exchange end cleanly.
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

/// Probes every target of `runtime` each `policy.interval` until the runtime is dropped (its
/// upstream left the config or changed settings).
pub async fn probe_loop(runtime: Weak<UpstreamRuntime>, policy: ActiveHealthCheck) {
    let mut ticks = tokio::time::interval(policy.interval.as_std());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(upstream) = runtime.upgrade() else {
            return;
        };
        let mut probes = tokio::task::JoinSet::new();
        for index in 0..upstream.targets().len() {
            let upstream: Arc<UpstreamRuntime> = upstream.clone();
            let policy = policy.clone();
            probes.spawn(async move {
                let passed = probe(&upstream, index, &policy).await;
                let target = &upstream.targets()[index];
                match target
                    .health
                    .record_probe(passed, &policy, upstream.clock.now_ms())
                {
                    Some(Transition::Healthy) => tracing::info!(
                        upstream = %upstream.name, target = %target.authority,
                        "target passed its health checks; it takes traffic again"
                    ),
                    Some(Transition::Unhealthy) => tracing::warn!(
                        upstream = %upstream.name, target = %target.authority,
                        "target failed its health checks; it takes no traffic"
                    ),
                    _ => {}
                }
            });
        }
        // Holding the runtime only while probing lets it go between rounds.
        drop(upstream);
        while probes.join_next().await.is_some() {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use gateway_config::{Duration as ConfigDuration, HealthCheck, Target, Upstream};

    use super::*;
    use crate::upstream::tls::SystemRoots;

    /// A runtime for `upstream` with its probes running.
    fn probed(upstream: &Upstream) -> Arc<UpstreamRuntime> {
        let runtime = UpstreamRuntime::build(upstream, &SystemRoots::default()).unwrap();
        let policy = upstream
            .health_check
            .as_ref()
            .unwrap()
            .active
            .clone()
            .unwrap();
        tokio::spawn(probe_loop(Arc::downgrade(&runtime), policy));
        runtime
    }

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
        let runtime = probed(&upstream);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while runtime.targets()[0].health.is_healthy() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never marked unhealthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_saturated_upstream_keeps_its_healthy_targets() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use gateway_config::CircuitBreaker;
        use hyper::body::Incoming;

        use crate::upstream::test_support::counting_upstream;

        // `/slow` holds its answer until the test ends; anything else answers at once.
        let probes = Arc::new(AtomicUsize::new(0));
        let slow_arrived = Arc::new(tokio::sync::Notify::new());
        let (counted, arrived) = (probes.clone(), slow_arrived.clone());
        let (authority, _) = counting_upstream(move |stream| {
            let (counted, arrived) = (counted.clone(), arrived.clone());
            async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (counted, arrived) = (counted.clone(), arrived.clone());
                    async move {
                        if request.uri().path() == "/slow" {
                            arrived.notify_one();
                            std::future::pending::<()>().await;
                        }
                        counted.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::new(),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            }
        })
        .await;
        let upstream = Upstream {
            name: "saturated".into(),
            targets: vec![Target {
                address: authority.to_string(),
                weight: 1,
            }],
            circuit_breaker: Some(CircuitBreaker {
                max_connections: Some(1),
                ..CircuitBreaker::default()
            }),
            health_check: Some(HealthCheck {
                active: Some(ActiveHealthCheck {
                    interval: ConfigDuration::from_millis(50),
                    timeout: ConfigDuration::from_millis(2_000),
                    healthy: 1,
                    unhealthy: 1,
                    ..ActiveHealthCheck::default()
                }),
                passive: None,
            }),
            ..Default::default()
        };
        let runtime = probed(&upstream);
        // Traffic takes the one connection the upstream allows, and keeps it.
        let busy = runtime.clone();
        let held = tokio::spawn(async move {
            let target = &busy.targets()[0];
            let request = Request::get("/slow")
                .header(HOST, target.host_header.clone())
                .body(Either::Right(Full::new(Bytes::new())))
                .unwrap();
            busy.transport
                .send(0, &target.authority, request, None)
                .await
                .map(|_| ())
        });
        slow_arrived.notified().await;
        let before = probes.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while probes.load(Ordering::SeqCst) < before + 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "probes stopped reaching the target"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(runtime.targets()[0].health.is_healthy());
        assert_eq!(runtime.breaker.connections.get(), 1, "probes take no slot");
        held.abort();
    }
}
