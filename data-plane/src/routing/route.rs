//! A route in the form the request path reads once it matched: its conditions besides host and
//! path, its filters, its weighted backends (sticky when the route says so) and its timeout and
//! retry policy; compiled once per revision.

use std::sync::Arc;

use gateway_config::{Route, Sticky};
use http::{HeaderMap, HeaderName, Method};

use super::matcher::{HeaderCond, MethodSet, QueryCond, RequestInfo, ValueCond};
use super::regex_memo::Regexes;
use crate::balance::WeightedPick;
use crate::filters::RouteFilters;
use crate::keys::{cookie, stable_hash};
use crate::retry::RoutePolicy;

/// Where a sticky backend choice takes its key from.
#[derive(Debug)]
enum StickyKey {
    Header(HeaderName),
    Cookie(Box<str>),
}

/// What the proxy needs from a route once it matched.
#[derive(Debug)]
pub struct CompiledRoute {
    pub name: Box<str>,
    pub methods: MethodSet,
    pub strip_prefix: bool,
    pub preserve_host: bool,
    /// `Upgrade` protocols allowed besides WebSocket; empty for nearly every route.
    upgrades: Box<[Box<str>]>,
    pub(super) headers: Box<[HeaderCond]>,
    pub(super) query: Box<[QueryCond]>,
    /// `None` when the route has no filters, so the request path skips them at no cost.
    pub filters: Option<Arc<RouteFilters>>,
    /// Upstream indices, parallel to the weights in `pick`; empty for a route that answers by
    /// itself.
    upstreams: Box<[usize]>,
    pick: Option<WeightedPick>,
    sticky: Option<StickyKey>,
    /// Running sums of the backend weights, for sticky choices.
    cumulative: Box<[u64]>,
    /// Timeout and retries, when the route sets either.
    pub policy: Option<RoutePolicy>,
}

impl CompiledRoute {
    /// Whether a client may switch this route's connection to `protocol` (WebSocket always).
    pub fn allows_upgrade(&self, protocol: &[u8]) -> bool {
        let protocol = protocol.trim_ascii();
        protocol.eq_ignore_ascii_case(b"websocket")
            || self
                .upgrades
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(protocol))
    }

    /// Index of the upstream this request goes to, chosen by backend weight.
    pub fn pick_upstream(&self) -> usize {
        let picked = self.pick.as_ref().map_or(0, WeightedPick::pick);
        self.upstreams
            .get(picked)
            .or_else(|| self.upstreams.first())
            .copied()
            .unwrap_or(0)
    }

    /// Like [`pick_upstream`](Self::pick_upstream), but a sticky route sends every request with
    /// the same key to the same backend as long as the weights stay the same.
    pub fn pick_upstream_for(&self, headers: &HeaderMap) -> usize {
        let key = match &self.sticky {
            None => None,
            Some(StickyKey::Header(name)) => headers.get(name).map(|v| v.as_bytes()),
            Some(StickyKey::Cookie(name)) => cookie(headers, name),
        };
        let Some(key) = key else {
            return self.pick_upstream();
        };
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return self.pick_upstream();
        }
        // Hashing into the weight space keeps each backend's share of the keys equal to its
        // share of the weight.
        let point = stable_hash(key) % total;
        let index = self.cumulative.partition_point(|c| *c <= point);
        self.upstreams
            .get(index)
            .or_else(|| self.upstreams.first())
            .copied()
            .unwrap_or(0)
    }

    /// Whether the request passes the route's method, header and query conditions.
    pub(super) fn conditions_hold(&self, request: &RequestInfo<'_>) -> bool {
        self.methods.matches(request.method)
            && self.headers.iter().all(|h| h.matches(request.headers))
            && self.query.iter().all(|q| q.matches(request.query))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("route `{route}`: backends[{index}].upstream `{upstream}` does not exist")]
    UnknownUpstream {
        route: String,
        index: usize,
        upstream: String,
    },
    #[error("route `{route}`: methods[{index}] `{method}` is not a valid HTTP method")]
    BadMethod {
        route: String,
        index: usize,
        method: String,
    },
    #[error("route `{route}`: no backend has a weight above 0")]
    NoWeight { route: String },
}

pub(super) fn compile_route(
    route: &Route,
    upstream_index: &impl Fn(&str) -> Option<usize>,
    regexes: &Regexes<'_>,
) -> Result<CompiledRoute, RouteError> {
    let methods = route
        .methods
        .iter()
        .enumerate()
        .map(|(index, method)| {
            Method::from_bytes(method.as_bytes()).map_err(|_| RouteError::BadMethod {
                route: route.name.clone(),
                index,
                method: method.clone(),
            })
        })
        .collect::<Result<Box<[_]>, _>>()?;
    let upstreams = route
        .backends
        .iter()
        .enumerate()
        .map(|(index, backend)| {
            upstream_index(&backend.upstream).ok_or_else(|| RouteError::UnknownUpstream {
                route: route.name.clone(),
                index,
                upstream: backend.upstream.clone(),
            })
        })
        .collect::<Result<Box<[_]>, _>>()?;
    let filters = RouteFilters::compile(route, upstream_index);
    let answers_itself = filters.as_ref().is_some_and(|f| f.answer.is_some());
    let pick = WeightedPick::new(route.backends.iter().map(|b| b.weight));
    if pick.is_none() && !answers_itself {
        return Err(RouteError::NoWeight {
            route: route.name.clone(),
        });
    }
    let mut sum = 0u64;
    let cumulative = route
        .backends
        .iter()
        .map(|b| {
            sum += u64::from(b.weight);
            sum
        })
        .collect();
    let headers = route
        .headers
        .iter()
        .map(|h| match HeaderName::from_bytes(h.name.as_bytes()) {
            Ok(name) => HeaderCond {
                name,
                value: ValueCond::from_config(h.exact.as_deref(), h.regex.as_deref(), regexes),
                invert: h.invert,
            },
            // Validation rules this out; should it slip through, the condition never holds.
            Err(_) => HeaderCond {
                name: HeaderName::from_static("x-invalid-condition"),
                value: ValueCond::Regex(None),
                invert: false,
            },
        })
        .collect();
    let query = route
        .query
        .iter()
        .map(|q| QueryCond {
            name: q.name.as_bytes().into(),
            value: ValueCond::from_config(q.exact.as_deref(), q.regex.as_deref(), regexes),
        })
        .collect();
    let sticky = match &route.sticky {
        Some(Sticky::Header(name)) => HeaderName::from_bytes(name.as_bytes())
            .ok()
            .map(StickyKey::Header),
        Some(Sticky::Cookie(name)) => Some(StickyKey::Cookie(name.as_str().into())),
        None => None,
    };
    Ok(CompiledRoute {
        name: route.name.as_str().into(),
        methods: MethodSet::new(methods),
        strip_prefix: route.strip_prefix,
        preserve_host: route.preserve_host,
        upgrades: route.upgrades.iter().map(|p| p.as_str().into()).collect(),
        headers,
        query,
        filters: filters.map(Arc::new),
        upstreams,
        pick,
        sticky,
        cumulative,
        policy: RoutePolicy::of(route),
    })
}
