//! Resilience policies on the wire: route retries, upstream health checks, timeouts and circuit
//! breaker limits.

use gateway_proto::v1;

use crate::model::{
    ActiveHealthCheck, CircuitBreaker, Duration, HealthCheck, PassiveHealthCheck, Retries, RetryOn,
    UpstreamTimeouts,
};

impl From<&Retries> for v1::Retries {
    fn from(r: &Retries) -> Self {
        v1::Retries {
            attempts: r.attempts,
            on: r
                .on
                .iter()
                .map(|on| retry_on_text(*on).to_owned())
                .collect(),
            per_try_timeout_ms: r.per_try_timeout.map(Duration::as_millis),
            backoff_ms: r.backoff.map(Duration::as_millis),
            non_idempotent: r.non_idempotent,
        }
    }
}

impl TryFrom<v1::Retries> for Retries {
    type Error = String;

    fn try_from(r: v1::Retries) -> Result<Self, String> {
        let on =
            r.on.iter()
                .map(|text| {
                    serde_json::from_value(serde_json::Value::String(text.clone()))
                        .map_err(|_| format!("unknown retry condition `{text}`"))
                })
                .collect::<Result<_, _>>()?;
        Ok(Retries {
            attempts: r.attempts,
            on,
            per_try_timeout: r.per_try_timeout_ms.map(Duration::from_millis),
            backoff: r.backoff_ms.map(Duration::from_millis),
            non_idempotent: r.non_idempotent,
        })
    }
}

fn retry_on_text(on: RetryOn) -> &'static str {
    match on {
        RetryOn::ConnectFailure => "connect_failure",
        RetryOn::Reset => "reset",
        RetryOn::Timeout => "timeout",
        RetryOn::Status502 => "502",
        RetryOn::Status503 => "503",
        RetryOn::Status504 => "504",
    }
}

impl From<&HealthCheck> for v1::HealthCheck {
    fn from(h: &HealthCheck) -> Self {
        v1::HealthCheck {
            active: h.active.as_ref().map(|a| v1::ActiveHealthCheck {
                path: a.path.clone(),
                interval_ms: a.interval.as_millis(),
                timeout_ms: a.timeout.as_millis(),
                healthy: a.healthy,
                unhealthy: a.unhealthy,
                expected_status: a.expected_status.iter().map(|s| u32::from(*s)).collect(),
            }),
            passive: h.passive.as_ref().map(|p| v1::PassiveHealthCheck {
                consecutive_failures: p.consecutive_failures,
                eject_for_ms: p.eject_for.as_millis(),
            }),
        }
    }
}

impl TryFrom<v1::HealthCheck> for HealthCheck {
    type Error = String;

    fn try_from(h: v1::HealthCheck) -> Result<Self, String> {
        let active = match h.active {
            Some(a) => Some(ActiveHealthCheck {
                path: a.path,
                interval: Duration::from_millis(a.interval_ms),
                timeout: Duration::from_millis(a.timeout_ms),
                healthy: a.healthy,
                unhealthy: a.unhealthy,
                expected_status: a
                    .expected_status
                    .into_iter()
                    .map(|s| u16::try_from(s).map_err(|_| format!("{s} is not an HTTP status")))
                    .collect::<Result<_, _>>()?,
            }),
            None => None,
        };
        Ok(HealthCheck {
            active,
            passive: h.passive.map(|p| PassiveHealthCheck {
                consecutive_failures: p.consecutive_failures,
                eject_for: Duration::from_millis(p.eject_for_ms),
            }),
        })
    }
}

impl From<&UpstreamTimeouts> for v1::UpstreamTimeouts {
    fn from(t: &UpstreamTimeouts) -> Self {
        v1::UpstreamTimeouts {
            connect_ms: t.connect.map(Duration::as_millis),
            idle_ms: t.idle.map(Duration::as_millis),
        }
    }
}

impl From<v1::UpstreamTimeouts> for UpstreamTimeouts {
    fn from(t: v1::UpstreamTimeouts) -> Self {
        UpstreamTimeouts {
            connect: t.connect_ms.map(Duration::from_millis),
            idle: t.idle_ms.map(Duration::from_millis),
        }
    }
}

impl From<&CircuitBreaker> for v1::CircuitBreaker {
    fn from(c: &CircuitBreaker) -> Self {
        v1::CircuitBreaker {
            max_connections: c.max_connections,
            max_pending: c.max_pending,
            max_requests: c.max_requests,
        }
    }
}

impl From<v1::CircuitBreaker> for CircuitBreaker {
    fn from(c: v1::CircuitBreaker) -> Self {
        CircuitBreaker {
            max_connections: c.max_connections,
            max_pending: c.max_pending,
            max_requests: c.max_requests,
        }
    }
}
