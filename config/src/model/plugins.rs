//! Policies a route applies at the edge, before its request goes upstream: each is optional,
//! and the worker runs the ones set in one fixed order: `request_id`, `ip_restriction`,
//! `request_size_limit`, then the route's own rewrites and header edits.

use serde::{Deserialize, Serialize};

/// The route's policies; a route without any carries none of their cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Plugins {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_restriction: Option<IpRestriction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_size_limit: Option<RequestSizeLimit>,
}

impl Plugins {
    pub fn is_empty(&self) -> bool {
        self.request_id.is_none()
            && self.ip_restriction.is_none()
            && self.request_size_limit.is_none()
    }
}

/// Gives every request an id: the one the client sent in `header`, when `keep_incoming` and it
/// is well formed (visible ASCII, at most 200 bytes), else a new one (32 hex digits, 128 random
/// bits). The upstream gets it in `header`; with `echo`, the client gets it back in the
/// response, also in the answers the worker gives itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestId {
    /// Default `x-request-id`.
    #[serde(default = "default_request_id_header")]
    #[cfg_attr(feature = "openapi", schema(example = "x-request-id"))]
    pub header: String,
    /// Keep a well-formed id the client sent (default true): for ids a load balancer or
    /// another gateway in front already gave.
    #[serde(default = "yes")]
    pub keep_incoming: bool,
    /// Send the id back in the response (default true).
    #[serde(default = "yes")]
    pub echo: bool,
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            header: default_request_id_header(),
            keep_incoming: true,
            echo: true,
        }
    }
}

fn default_request_id_header() -> String {
    "x-request-id".into()
}

fn yes() -> bool {
    true
}

/// Lets a request through by its client's address: the peer's, or, from a peer among the
/// worker's trusted proxies, the address `X-Forwarded-For` names (the last one not itself a
/// trusted proxy). A request from an address in `deny` is refused (403); with `allow` set, so is
/// one from an address in none of them. Entries are addresses or CIDR blocks, IPv4 or IPv6 (an
/// IPv4-mapped IPv6 client counts as its IPv4 address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IpRestriction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Refuses a request body over `max_bytes` with 413: at once when its `Content-Length` says so,
/// else as soon as the bytes streamed pass it (the body is never buffered for this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequestSizeLimit {
    #[cfg_attr(feature = "openapi", schema(minimum = 1, example = 1048576))]
    pub max_bytes: u64,
}
