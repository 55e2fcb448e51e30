//! Resilience policies: retries that routes set for their upstream requests, and the health
//! checks, timeouts and circuit-breaker limits that upstreams set for their targets.

use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// When and how often a failed upstream request is tried again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Tries after the first one.
    pub attempts: u32,
    /// Failures that are retried; empty means connect failures only.
    #[serde(default)]
    pub on: Vec<RetryOn>,
    /// Limit of each try, until response headers; the route's `timeout` still bounds them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    /// Base of the jittered exponential wait between tries (default 25ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
    /// Retry methods that are not idempotent (POST, PATCH) too.
    #[serde(default)]
    pub non_idempotent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RetryOn {
    #[serde(rename = "connect_failure")]
    ConnectFailure,
    #[serde(rename = "reset")]
    Reset,
    #[serde(rename = "timeout")]
    Timeout,
    #[serde(rename = "502")]
    Status502,
    #[serde(rename = "503")]
    Status503,
    #[serde(rename = "504")]
    Status504,
}

/// How the worker finds out which targets of an upstream can take traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Probes sent in the background by every worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealthCheck>,
    /// Ejection of targets that fail real requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthCheck>,
}

/// A `GET path` to every target each `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthCheck {
    #[serde(default = "default_probe_path")]
    pub path: String,
    #[serde(default = "default_probe_interval")]
    pub interval: Duration,
    #[serde(default = "default_probe_timeout")]
    pub timeout: Duration,
    /// Consecutive passed probes that make an unhealthy target healthy again.
    #[serde(default = "default_healthy")]
    pub healthy: u32,
    /// Consecutive failed probes that make a healthy target unhealthy.
    #[serde(default = "default_unhealthy")]
    pub unhealthy: u32,
    /// Statuses that pass; empty means any 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
}

impl Default for ActiveHealthCheck {
    fn default() -> Self {
        ActiveHealthCheck {
            path: default_probe_path(),
            interval: default_probe_interval(),
            timeout: default_probe_timeout(),
            healthy: default_healthy(),
            unhealthy: default_unhealthy(),
            expected_status: Vec::new(),
        }
    }
}

/// Ejects a target after `consecutive_failures` failed requests (connect errors, resets, 5xx)
/// for `eject_for`, longer each time it is ejected again soon after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthCheck {
    #[serde(default = "default_consecutive_failures")]
    pub consecutive_failures: u32,
    #[serde(default = "default_eject_for")]
    pub eject_for: Duration,
}

impl Default for PassiveHealthCheck {
    fn default() -> Self {
        PassiveHealthCheck {
            consecutive_failures: default_consecutive_failures(),
            eject_for: default_eject_for(),
        }
    }
}

/// Limits of the connections to an upstream's targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpstreamTimeouts {
    /// Limit for opening a connection (TCP and TLS); default: the worker's connect timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
    /// How long an unused pooled connection is kept (default 90s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
}

/// Per-worker limits on what one upstream may have open at once; beyond them requests are
/// answered 503 `circuit_open` at once instead of queueing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Open connections to all targets together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Requests waiting for response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u32>,
    /// Requests in flight, until their response body ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

fn default_probe_path() -> String {
    "/".into()
}

fn default_probe_interval() -> Duration {
    Duration::from_millis(5_000)
}

fn default_probe_timeout() -> Duration {
    Duration::from_millis(1_000)
}

fn default_healthy() -> u32 {
    2
}

fn default_unhealthy() -> u32 {
    3
}

fn default_consecutive_failures() -> u32 {
    5
}

fn default_eject_for() -> Duration {
    Duration::from_millis(30_000)
}
