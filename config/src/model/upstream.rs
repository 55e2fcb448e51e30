//! Upstreams: groups of interchangeable targets that routes send traffic to, and how traffic is
//! spread over them and kept away from unhealthy ones.

use serde::{Deserialize, Serialize};

use super::defaults::default_weight;
use super::duration::Duration;
use super::policy::{CircuitBreaker, HealthCheck, UpstreamTimeouts};

/// A group of interchangeable targets that routes send traffic to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Unique among its kind; used in URLs. Letters, digits, `.`, `_` and `-`, starting with a
    /// letter or digit.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            max_length = 128,
            example = "api"
        )
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::text_schema::Tag>))]
    pub tags: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub balance: Balance,
    /// The request key of `consistent_hash`; required with it, refused without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on: Option<HashOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// What to do when no target is healthy.
    #[serde(default, skip_serializing_if = "is_default")]
    pub all_unhealthy: AllUnhealthy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<UpstreamTimeouts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// How requests are sent to the targets.
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
    /// How often target host names are resolved again (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_refresh: Option<Duration>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One address of an upstream, `host:port` (IPv6 as `[addr]:port`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\+?[0-9]+$",
            example = "10.0.0.7:8080"
        )
    )]
    pub address: String,
    #[serde(default = "default_weight")]
    #[cfg_attr(feature = "openapi", schema(maximum = 10_000))]
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Smooth weighted round robin over the targets.
    #[default]
    RoundRobin,
    /// The less busy of two targets drawn at random (by weight).
    LeastRequest,
    /// A target drawn at random, by weight.
    Random,
    /// The same `hash_on` key goes to the same target while the target set stays.
    ConsistentHash,
}

/// What `consistent_hash` hashes: `{"header": "x-user"}`, `{"cookie": "session"}` or
/// `{"client_ip": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HashOn {
    Header(String),
    Cookie(String),
    ClientIp(bool),
}

/// What happens when every target is unhealthy or ejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AllUnhealthy {
    /// Spread traffic over all targets as if they were healthy: health checks can be wrong,
    /// an answer from a struggling target beats none.
    #[default]
    FailOpen,
    /// Answer 503 `no_healthy_target`.
    Reject,
}

/// The wire protocol spoken to the targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 (over TLS when `tls` is enabled).
    #[default]
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`); requires `tls`.
    Http2,
    /// HTTP/2 over plain TCP with prior knowledge.
    H2c,
}

/// TLS towards the targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// Defaults to true, so that writing a `tls` block turns TLS on.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Server name sent and verified; default: the target's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Verify the target's certificate chain and name.
    #[serde(default = "yes")]
    pub verify: bool,
    /// PEM certificates trusted to sign the targets' certificates; default: the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls {
            enabled: true,
            sni: None,
            verify: true,
            ca: None,
        }
    }
}

fn yes() -> bool {
    true
}
