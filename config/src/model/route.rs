//! Routes: which requests go where, and what happens to them on the way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::defaults::default_weight;
use super::duration::Duration;
use super::plugins::Plugins;
use super::policy::Retries;

/// Which requests a route takes and where it sends them.
///
/// Empty `hosts`, `paths` or `methods` match anything; every listed header and query condition
/// must hold. Among routes that match a request, the one with the highest `priority` wins, then
/// the most specific host (exact, then the longest wildcard suffix), then the most specific path
/// (exact, then the longest prefix, then a regex), then a method match, then more header
/// conditions, then more query conditions, then the older route, then the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique among its kind; used in URLs. Letters, digits, `.`, `_` and `-`, starting with a
    /// letter or digit.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            max_length = 128,
            example = "checkout"
        )
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::text_schema::Tag>))]
    pub tags: Vec<String>,
    /// Exact host names or `*.suffix` wildcards, matched without the port and ignoring case.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub paths: Vec<PathMatch>,
    /// HTTP methods, upper case.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::text_schema::Method>))]
    pub methods: Vec<String>,
    /// Request headers that must (or, inverted, must not) match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameters that must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryMatch>,
    /// Remove the matched path prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the matched prefix, or the whole path; excludes `strip_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// Forward the client's `Host` instead of the target's address.
    #[serde(default)]
    pub preserve_host: bool,
    /// Protocols besides WebSocket a client may switch this route's connection to with
    /// `Upgrade` (e.g. `example-binary/1`); the worker then tunnels the bytes both ways. Any
    /// other `Upgrade` is removed and the request forwarded as a plain one; `h2c` is never
    /// switched to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upgrades: Vec<String>,
    /// Forward this `Host` instead of the target's address; excludes `preserve_host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
    /// Weighted split of the traffic; required unless `redirect` or `direct_response` is set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    /// Keeps requests with the same key on the same backend while the weights stay the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
    #[serde(default, skip_serializing_if = "HeaderTransform::is_empty")]
    pub request_headers: HeaderTransform,
    #[serde(default, skip_serializing_if = "HeaderTransform::is_empty")]
    pub response_headers: HeaderTransform,
    /// Answer with a redirect instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// Answer with a fixed response instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response: Option<DirectResponse>,
    /// Also send a copy of a share of the requests to another upstream, ignoring its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    #[serde(default)]
    pub priority: i32,
    /// Limit for the upstream's response headers to arrive, counted from the last part of the
    /// request body the client sent; a response already streaming is not cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Policies applied at the edge: request ids, client address rules, a body size limit.
    #[serde(default, skip_serializing_if = "Plugins::is_empty")]
    pub plugins: Plugins,
    /// Creation time in Unix milliseconds, set by the control plane; an older route wins a
    /// precedence tie. Not part of the user-facing document.
    #[serde(skip)]
    pub created_at_unix_ms: i64,
}

impl Route {
    /// Entries this route adds to every worker's route table: one per host × path, where no
    /// hosts (any host) and no paths (any path) each count as one.
    pub fn expansion(&self) -> u64 {
        let hosts = u64::try_from(self.hosts.len().max(1)).unwrap_or(u64::MAX);
        let paths = u64::try_from(self.paths.len().max(1)).unwrap_or(u64::MAX);
        hosts.saturating_mul(paths)
    }
}

/// A path condition. A prefix is segment-aware: `/api` matches `/api` and `/api/x`, never `/apix`.
/// A regex must match the whole path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

impl PathMatch {
    pub fn value(&self) -> &str {
        match self {
            PathMatch::Prefix(p) | PathMatch::Exact(p) | PathMatch::Regex(p) => p,
        }
    }
}

/// A request header condition: exactly one of `exact`, `regex` (whole value) or `present`.
/// With several values of the header, one matching value is enough. `invert` negates the result,
/// so `{name, present: true, invert: true}` means "the header is absent".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

/// A query parameter condition: exactly one of `exact`, `regex` (whole value) or `present`.
/// Names and values are compared after percent-decoding (`+` reads as a space).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// Where the key of a sticky backend choice comes from. Requests without the key are split by
/// weight as usual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sticky {
    Header(String),
    Cookie(String),
}

/// How the forwarded path is rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rewrite {
    /// Replaces the part of the path the route's path condition matched (the whole path for an
    /// exact or regex condition).
    Prefix(String),
    /// Replaces the whole path; the query is kept.
    Path(String),
}

/// Header edits: `remove` first, then `set` (replaces every value), then `add` (appends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderTransform {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderTransform {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.set.is_empty() && self.remove.is_empty()
    }
}

pub(crate) fn default_redirect_code() -> u16 {
    302
}

/// A redirect answered by the gateway. Parts left out keep the request's value; `path` replaces
/// the whole path, `prefix` only the matched prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 65_535))]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// 301, 302, 303, 307 or 308.
    #[serde(default = "default_redirect_code")]
    #[cfg_attr(feature = "openapi", schema(maximum = 65_535))]
    pub code: u16,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect {
            scheme: None,
            host: None,
            port: None,
            path: None,
            prefix: None,
            code: default_redirect_code(),
        }
    }
}

/// A fixed answer from the gateway itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DirectResponse {
    #[cfg_attr(feature = "openapi", schema(minimum = 200, maximum = 599))]
    pub status: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

fn default_percent() -> u32 {
    100
}

/// Fire-and-forget copies of requests: the mirror's answers, failures and slowness never reach
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    pub upstream: String,
    /// Share of the requests that are copied, 0–100 (default 100).
    #[serde(default = "default_percent")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub percent: u32,
}

/// One upstream a route sends to, with its share of the route's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub upstream: String,
    #[serde(default = "default_weight")]
    #[cfg_attr(feature = "openapi", schema(maximum = 10_000))]
    pub weight: u32,
}
