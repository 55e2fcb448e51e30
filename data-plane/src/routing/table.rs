//! The compiled route table and its precedence rules.
//!
//! Every route is expanded into one entry per (host pattern × path condition), and each entry gets
//! a global rank from the precedence order: higher `priority`; more specific host (exact, then
//! longer wildcard suffix, then any host); exact path, then longer prefix, then regex; a method
//! condition over none; more header conditions; more query conditions; older route; name.
//!
//! Entries are indexed so that a lookup never walks the whole table: first by host (an exact-host
//! map, a wildcard-suffix map and an any-host bucket), then inside each host bucket by path (an
//! exact-path map, a trie over path segments for prefixes, and the regex entries, behind one
//! `RegexSet` when there are many). Each candidate list is sorted by rank, so a lookup takes the
//! first entry of each list whose method, header and query conditions hold, stops as soon as a
//! list can no longer beat the best entry so far, and keeps the best-ranked one. Nothing is
//! allocated per lookup.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use gateway_config::{Config, Sticky};
use http::{HeaderMap, HeaderName, Method};
use regex::RegexSet;

use crate::balance::WeightedPick;
use crate::routing::actions::RouteActions;
use crate::routing::matcher::{
    HeaderCond, HostPattern, MethodSet, PathCond, QueryCond, RequestInfo, ValueCond, host_buffer,
    host_without_port, lowercase_host,
};
use crate::routing::regex_memo;

/// Regex groups up to this size are tried one by one in rank order; larger ones go through a
/// `RegexSet` first.
const REGEX_SET_MIN: usize = 8;
/// Bound on the memory of one host bucket's `RegexSet`; above it the bucket tries its regexes
/// one by one.
const REGEX_SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

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
    headers: Box<[HeaderCond]>,
    query: Box<[QueryCond]>,
    /// `None` when the route has no actions, so the request path skips them at no cost.
    pub actions: Option<Arc<RouteActions>>,
    /// Upstream indices, parallel to the weights in `pick`; empty for a route that answers by
    /// itself.
    upstreams: Box<[usize]>,
    pick: Option<WeightedPick>,
    sticky: Option<StickyKey>,
    /// Running sums of the backend weights, for sticky choices.
    cumulative: Box<[u64]>,
}

impl CompiledRoute {
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
    fn conditions_hold(&self, request: &RequestInfo<'_>) -> bool {
        self.methods.matches(request.method)
            && self.headers.iter().all(|h| h.matches(request.headers))
            && self.query.iter().all(|q| q.matches(request.query))
    }
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .find_map(|value| {
            value.as_bytes().split(|b| *b == b';').find_map(|pair| {
                let pair = pair.trim_ascii();
                let at = pair.iter().position(|b| *b == b'=')?;
                (&pair[..at] == name.as_bytes()).then(|| &pair[at + 1..])
            })
        })
}

/// FNV-1a with a final mix: the same on every worker and every build, so a key stays on its
/// backend whichever worker serves it.
fn stable_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash
}

#[derive(Debug)]
struct Entry {
    path: PathCond,
    route: u32,
}

/// One node of a bucket's path-segment trie; its entries are the prefixes that end here.
#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, u32>,
    entries: Vec<u32>,
}

#[derive(Debug)]
enum RegexGroup {
    /// Entry ids in rank order; each is tried on its own.
    List(Vec<u32>),
    /// One set over the entries' patterns, in the same (rank) order as `entries`.
    Set { set: RegexSet, entries: Vec<u32> },
}

/// The entries of one host pattern, indexed by path.
#[derive(Debug)]
struct Bucket {
    exact: HashMap<Box<str>, Vec<u32>>,
    /// Node 0 is the root (prefix `/` and entries without a path condition).
    trie: Vec<Node>,
    regex: Option<RegexGroup>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            exact: HashMap::new(),
            trie: vec![Node::default()],
            regex: None,
        }
    }
}

/// Segments of a path after its leading slash: `/a/b` → `a`, `b`; the empty prefix has none.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/')
        .filter(|_| !path.is_empty())
        .into_iter()
        .flat_map(|rest| rest.split('/'))
}

impl Bucket {
    /// Adds entry `id`; ids arrive in rank order, so every list stays sorted.
    fn insert(&mut self, id: u32, path: &PathCond, regexes: &mut Vec<u32>) {
        match path {
            PathCond::Exact(p) => self.exact.entry(p.clone()).or_default().push(id),
            PathCond::Prefix(p) => {
                let mut node = 0usize;
                for segment in segments(p) {
                    let next = self.trie.len() as u32;
                    let child = *self.trie[node]
                        .children
                        .entry(segment.into())
                        .or_insert(next);
                    if child == next {
                        self.trie.push(Node::default());
                    }
                    node = child as usize;
                }
                self.trie[node].entries.push(id);
            }
            PathCond::Any => self.trie[0].entries.push(id),
            PathCond::Regex(_) => regexes.push(id),
        }
    }

    fn finish(&mut self, ids: Vec<u32>, entries: &[Entry]) {
        if ids.is_empty() {
            return;
        }
        if ids.len() < REGEX_SET_MIN {
            self.regex = Some(RegexGroup::List(ids));
            return;
        }
        let patterns: Vec<&str> = ids
            .iter()
            .map(|id| match &entries[*id as usize].path {
                PathCond::Regex(Some(re)) => re.as_str(),
                // A pattern that did not compile must never match: this one cannot.
                _ => "[^\\s\\S]",
            })
            .collect();
        self.regex = Some(
            match regex_memo::regex_set(&patterns, REGEX_SET_SIZE_LIMIT) {
                Ok(set) => RegexGroup::Set { set, entries: ids },
                Err(error) => {
                    tracing::warn!(%error, "regex routes are matched one by one");
                    RegexGroup::List(ids)
                }
            },
        );
    }
}

thread_local! {
    /// Per-thread scratch for `RegexSet` results, grown once to the largest group.
    static REGEX_HITS: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
    /// In rank order: an entry's id is its rank.
    entries: Vec<Entry>,
    exact: HashMap<Box<str>, Bucket>,
    /// Keyed by the suffix with its leading dot.
    wildcard: HashMap<Box<str>, Bucket>,
    any: Bucket,
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    pub route: &'a CompiledRoute,
    /// Bytes to remove from the front of the path (0 when nothing is stripped).
    pub strip_len: usize,
    /// Bytes of the path the route's path condition matched (what a prefix rewrite replaces).
    pub matched_len: usize,
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

type SortKey = (
    Reverse<i32>,
    (u8, Reverse<usize>),
    (u8, Reverse<usize>),
    bool,
    Reverse<usize>,
    Reverse<usize>,
    i64,
    usize,
    usize,
);

/// The best entry found so far: its id (= rank), or `u32::MAX` for none.
struct Best(u32);

impl RouteTable {
    /// Builds the table; `upstream_index` maps an upstream name to its compiled index.
    pub fn build(
        config: &Config,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let generation = regex_memo::begin_build();
        let built = Self::assemble(config, upstream_index);
        regex_memo::end_build(generation);
        built
    }

    fn assemble(
        config: &Config,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut keyed: Vec<(SortKey, HostPattern, PathCond, u32)> = Vec::new();
        // Routes come sorted by name, so the route index is the final name tie-break.
        for (route_index, route) in config.routes.values().enumerate() {
            let compiled = compile_route(route, &upstream_index)?;
            let hosts: Vec<HostPattern> = if route.hosts.is_empty() {
                vec![HostPattern::Any]
            } else {
                route.hosts.iter().map(|h| HostPattern::parse(h)).collect()
            };
            let paths: Vec<PathCond> = if route.paths.is_empty() {
                vec![PathCond::Any]
            } else {
                route.paths.iter().map(PathCond::from_config).collect()
            };
            let mut order = 0;
            for host in &hosts {
                for path in &paths {
                    let key = (
                        Reverse(route.priority),
                        host.specificity(),
                        path.specificity(),
                        compiled.methods.is_empty(),
                        Reverse(compiled.headers.len()),
                        Reverse(compiled.query.len()),
                        route.created_at_unix_ms,
                        route_index,
                        order,
                    );
                    order += 1;
                    keyed.push((key, host.clone(), path.clone(), route_index as u32));
                }
            }
            routes.push(compiled);
        }
        keyed.sort_by_key(|entry| entry.0);
        let mut table = RouteTable {
            routes,
            ..RouteTable::default()
        };
        let mut regexes: HashMap<(u8, Box<str>), Vec<u32>> = HashMap::new();
        for (id, (_, host, path, route)) in keyed.into_iter().enumerate() {
            let id = id as u32;
            let (bucket, key) = match host {
                HostPattern::Exact(name) => {
                    (table.exact.entry(name.clone()).or_default(), (0, name))
                }
                HostPattern::Wildcard(suffix) => (
                    table.wildcard.entry(suffix.clone()).or_default(),
                    (1, suffix),
                ),
                HostPattern::Any => (&mut table.any, (2, Box::from(""))),
            };
            bucket.insert(id, &path, regexes.entry(key).or_default());
            table.entries.push(Entry { path, route });
        }
        for ((kind, name), ids) in regexes {
            let bucket = match kind {
                0 => table.exact.get_mut(&name),
                1 => table.wildcard.get_mut(&name),
                _ => Some(&mut table.any),
            };
            if let Some(bucket) = bucket {
                bucket.finish(ids, &table.entries);
            }
        }
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The best route for a request. The host (raw `Host` header or URI authority) is compared
    /// without port and case.
    pub fn lookup(&self, request: &RequestInfo<'_>) -> Option<RouteMatch<'_>> {
        let mut best = Best(u32::MAX);
        if let Some(raw) = request.host {
            let mut buf = host_buffer();
            if let Some(host) = lowercase_host(host_without_port(raw), &mut buf) {
                if let Some(bucket) = self.exact.get(host) {
                    self.best_in(bucket, request, &mut best);
                }
                if !self.wildcard.is_empty() {
                    // Every suffix that starts at a dot, longest first: `.b.example.com`, ...
                    for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                        if let Some(bucket) = self.wildcard.get(&host[at..]) {
                            self.best_in(bucket, request, &mut best);
                        }
                    }
                }
            }
        }
        self.best_in(&self.any, request, &mut best);
        let entry = self.entries.get(best.0 as usize)?;
        let route = self.routes.get(entry.route as usize)?;
        let strip_len = if route.strip_prefix {
            entry.path.strip_len()
        } else {
            0
        };
        Some(RouteMatch {
            route,
            strip_len,
            matched_len: entry.path.matched_len(request.path),
        })
    }

    fn best_in(&self, bucket: &Bucket, request: &RequestInfo<'_>, best: &mut Best) {
        let path = request.path;
        if let Some(list) = bucket.exact.get(path) {
            self.first_in(list, request, false, best);
        }
        let Some(root) = bucket.trie.first() else {
            return;
        };
        // A path that does not start with `/` (e.g. `OPTIONS *`) only meets entries without a
        // path condition, which the check of the root's entries sorts out.
        let rooted = path.starts_with('/');
        self.first_in(&root.entries, request, !rooted, best);
        if rooted {
            let mut node = root;
            for segment in segments(path) {
                let Some(child) = node
                    .children
                    .get(segment)
                    .and_then(|c| bucket.trie.get(*c as usize))
                else {
                    break;
                };
                node = child;
                self.first_in(&node.entries, request, false, best);
            }
        }
        match &bucket.regex {
            None => {}
            Some(RegexGroup::List(ids)) => self.first_in(ids, request, true, best),
            Some(RegexGroup::Set { set, entries }) => {
                if entries.first().is_none_or(|first| *first >= best.0) {
                    return;
                }
                REGEX_HITS.with(|hits| {
                    let Ok(mut hits) = hits.try_borrow_mut() else {
                        return self.first_in(entries, request, true, best);
                    };
                    if hits.len() < entries.len() {
                        hits.resize(entries.len(), false);
                    }
                    let hits = &mut hits[..entries.len()];
                    hits.fill(false);
                    if !set.matches_read_at(hits, path, 0) {
                        return;
                    }
                    for (id, _) in entries.iter().zip(hits.iter()).filter(|(_, hit)| **hit) {
                        if *id >= best.0 {
                            return;
                        }
                        if self.conditions_hold(*id, request) {
                            best.0 = *id;
                            return;
                        }
                    }
                });
            }
        }
    }

    /// Takes the first entry of a rank-sorted list that beats `best` and whose conditions hold.
    fn first_in(&self, ids: &[u32], request: &RequestInfo<'_>, check_path: bool, best: &mut Best) {
        for id in ids {
            if *id >= best.0 {
                return;
            }
            let path_ok = !check_path
                || self
                    .entries
                    .get(*id as usize)
                    .is_some_and(|e| e.path.matches(request.path));
            if path_ok && self.conditions_hold(*id, request) {
                best.0 = *id;
                return;
            }
        }
    }

    fn conditions_hold(&self, id: u32, request: &RequestInfo<'_>) -> bool {
        self.entries
            .get(id as usize)
            .and_then(|e| self.routes.get(e.route as usize))
            .is_some_and(|r| r.conditions_hold(request))
    }
}

fn compile_route(
    route: &gateway_config::Route,
    upstream_index: &impl Fn(&str) -> Option<usize>,
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
    let actions = RouteActions::compile(route, upstream_index);
    let answers_itself = actions.as_ref().is_some_and(|a| a.answer.is_some());
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
                value: ValueCond::from_config(h.exact.as_deref(), h.regex.as_deref()),
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
            value: ValueCond::from_config(q.exact.as_deref(), q.regex.as_deref()),
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
        headers,
        query,
        actions: actions.map(Arc::new),
        upstreams,
        pick,
        sticky,
        cumulative,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Backend, PathMatch, Route};

    use super::*;

    struct Spec {
        name: &'static str,
        hosts: &'static [&'static str],
        paths: &'static [&'static str],
        methods: &'static [&'static str],
        priority: i32,
        created: i64,
    }

    const BASE: Spec = Spec {
        name: "",
        hosts: &[],
        paths: &[],
        methods: &[],
        priority: 0,
        created: 0,
    };

    /// Paths written `=/x` are exact, others prefixes.
    fn table(specs: &[Spec]) -> RouteTable {
        let mut config = Config::default();
        for spec in specs {
            let route = Route {
                name: spec.name.into(),
                hosts: spec.hosts.iter().map(|h| (*h).into()).collect(),
                paths: spec
                    .paths
                    .iter()
                    .map(|p| match p.strip_prefix('=') {
                        Some(exact) => PathMatch::Exact(exact.into()),
                        None => PathMatch::Prefix((*p).into()),
                    })
                    .collect(),
                methods: spec.methods.iter().map(|m| (*m).into()).collect(),
                strip_prefix: true,
                backends: vec![Backend {
                    upstream: "u".into(),
                    weight: 1,
                }],
                priority: spec.priority,
                created_at_unix_ms: spec.created,
                ..Default::default()
            };
            config.routes.insert(spec.name.into(), route);
        }
        RouteTable::build(&config, |_| Some(0)).unwrap()
    }

    /// Looks up `target` (path and optional query) with the given headers.
    fn lookup<'t>(
        table: &'t RouteTable,
        host: Option<&str>,
        target: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<RouteMatch<'t>> {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        table.lookup(&RequestInfo {
            host,
            path,
            query,
            method,
            headers,
        })
    }

    fn pick(table: &RouteTable, host: &str, path: &str, method: Method) -> Option<String> {
        let host = (!host.is_empty()).then_some(host);
        lookup(table, host, path, &method, &HeaderMap::new()).map(|m| m.route.name.to_string())
    }

    fn get(table: &RouteTable, host: &str, path: &str) -> Option<String> {
        pick(table, host, path, Method::GET)
    }

    #[test]
    fn priority_comes_first() {
        let t = table(&[
            Spec {
                name: "exact-host",
                hosts: &["a.example.com"],
                paths: &["=/x"],
                ..BASE
            },
            Spec {
                name: "urgent",
                priority: 10,
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "a.example.com", "/x").unwrap(), "urgent");
    }

    #[test]
    fn host_specificity() {
        let t = table(&[
            Spec {
                name: "any",
                ..BASE
            },
            Spec {
                name: "short-wild",
                hosts: &["*.com"],
                ..BASE
            },
            Spec {
                name: "long-wild",
                hosts: &["*.example.com"],
                ..BASE
            },
            Spec {
                name: "exact",
                hosts: &["a.example.com"],
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "a.example.com", "/").unwrap(), "exact");
        assert_eq!(get(&t, "A.Example.COM:8080", "/").unwrap(), "exact");
        assert_eq!(get(&t, "b.example.com", "/").unwrap(), "long-wild");
        assert_eq!(get(&t, "x.b.example.com", "/").unwrap(), "long-wild");
        // A wildcard never matches the bare suffix.
        assert_eq!(get(&t, "example.com", "/").unwrap(), "short-wild");
        assert_eq!(get(&t, "example.org", "/").unwrap(), "any");
        assert_eq!(get(&t, "", "/").unwrap(), "any");
    }

    #[test]
    fn path_specificity_wins_after_host() {
        let t = table(&[
            Spec {
                name: "none",
                ..BASE
            },
            Spec {
                name: "short",
                paths: &["/api"],
                ..BASE
            },
            Spec {
                name: "long",
                paths: &["/api/v1/"],
                ..BASE
            },
            Spec {
                name: "exact",
                paths: &["=/api/v1/users"],
                ..BASE
            },
            Spec {
                name: "host-only",
                hosts: &["h.com"],
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "", "/api/v1/users").unwrap(), "exact");
        assert_eq!(get(&t, "", "/api/v1/users/1").unwrap(), "long");
        assert_eq!(get(&t, "", "/api/v1").unwrap(), "long");
        assert_eq!(get(&t, "", "/api/v2").unwrap(), "short");
        assert_eq!(get(&t, "", "/apix").unwrap(), "none");
        // Host is compared before path.
        assert_eq!(get(&t, "h.com", "/api/v1/users").unwrap(), "host-only");
    }

    #[test]
    fn methods_then_age_then_name() {
        let t = table(&[
            Spec {
                name: "b-any",
                created: 5,
                ..BASE
            },
            Spec {
                name: "a-get",
                methods: &["GET"],
                created: 9,
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "", "/").unwrap(), "a-get");
        assert_eq!(pick(&t, "", "/", Method::POST).unwrap(), "b-any");

        let t = table(&[
            Spec {
                name: "new",
                created: 2,
                ..BASE
            },
            Spec {
                name: "old",
                created: 1,
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "", "/").unwrap(), "old");
        let t = table(&[Spec { name: "b", ..BASE }, Spec { name: "a", ..BASE }]);
        assert_eq!(get(&t, "", "/").unwrap(), "a");
    }

    #[test]
    fn a_route_competes_with_the_host_and_path_that_matched() {
        let t = table(&[
            Spec {
                name: "multi",
                hosts: &["a.com", "*.b.com"],
                paths: &["/", "=/exact"],
                ..BASE
            },
            Spec {
                name: "exact-b",
                hosts: &["x.b.com"],
                paths: &["/"],
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "a.com", "/z").unwrap(), "multi");
        assert_eq!(get(&t, "x.b.com", "/z").unwrap(), "exact-b");
        // Its wildcard entry loses to an exact host even with a more specific path.
        assert_eq!(get(&t, "x.b.com", "/exact").unwrap(), "exact-b");
        assert_eq!(get(&t, "y.b.com", "/exact").unwrap(), "multi");
        assert_eq!(get(&t, "c.com", "/"), None);
    }

    #[test]
    fn non_matching_candidates_fall_through() {
        let t = table(&[
            Spec {
                name: "post-only",
                hosts: &["a.com"],
                methods: &["POST"],
                ..BASE
            },
            Spec {
                name: "fallback",
                paths: &["/"],
                ..BASE
            },
        ]);
        assert_eq!(get(&t, "a.com", "/").unwrap(), "fallback");
        assert_eq!(pick(&t, "a.com", "/", Method::POST).unwrap(), "post-only");
        assert!(
            lookup(
                &table(&[]),
                Some("a.com"),
                "/",
                &Method::GET,
                &HeaderMap::new()
            )
            .is_none()
        );
    }

    #[test]
    fn strip_len_follows_the_matched_prefix() {
        let t = table(&[Spec {
            name: "api",
            paths: &["/api/", "=/exact"],
            ..BASE
        }]);
        let none = HeaderMap::new();
        let api = lookup(&t, None, "/api/x", &Method::GET, &none).unwrap();
        assert_eq!((api.strip_len, api.matched_len), (4, 4));
        let exact = lookup(&t, None, "/exact", &Method::GET, &none).unwrap();
        assert_eq!((exact.strip_len, exact.matched_len), (0, 6));
    }

    #[test]
    fn unknown_upstreams_are_compile_errors() {
        let mut config = Config::default();
        config.routes.insert(
            "r".into(),
            Route {
                name: "r".into(),
                tags: vec![],
                hosts: vec![],
                paths: vec![],
                methods: vec![],
                strip_prefix: false,
                preserve_host: false,
                backends: vec![Backend {
                    upstream: "gone".into(),
                    weight: 1,
                }],
                priority: 0,
                ..Default::default()
            },
        );
        assert!(matches!(
            RouteTable::build(&config, |_| None),
            Err(RouteError::UnknownUpstream { index: 0, .. })
        ));
    }

    fn json_table(routes: serde_json::Value) -> RouteTable {
        let mut config = Config::default();
        for (i, mut route) in routes.as_array().unwrap().iter().cloned().enumerate() {
            if route.get("backends").is_none() {
                route["backends"] = serde_json::json!([{"upstream": "u"}]);
            }
            let mut route: Route = serde_json::from_value(route).unwrap();
            route.created_at_unix_ms = i as i64;
            config.routes.insert(route.name.clone(), route);
        }
        RouteTable::build(&config, |name| name.strip_prefix('u').map(|n| n.len())).unwrap()
    }

    fn with_headers(
        table: &RouteTable,
        target: &str,
        pairs: &[(&'static str, &'static str)],
    ) -> Option<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, http::HeaderValue::from_static(value));
        }
        lookup(table, Some("h.com"), target, &Method::GET, &headers)
            .map(|m| m.route.name.to_string())
    }

    #[test]
    fn regex_paths_rank_after_prefixes() {
        let t = json_table(serde_json::json!([
            {"name": "users-regex", "paths": [{"regex": "/users/[0-9]+"}]},
            {"name": "users-prefix", "paths": [{"prefix": "/users/admin"}]},
            {"name": "files", "paths": [{"regex": "/files/.*\\.png"}]},
            {"name": "boosted", "priority": 1, "paths": [{"regex": "/boost/[a-z]+"}]},
            {"name": "root", "paths": [{"prefix": "/boost"}]}
        ]));
        assert_eq!(with_headers(&t, "/users/42", &[]).unwrap(), "users-regex");
        assert_eq!(
            with_headers(&t, "/users/admin", &[]).unwrap(),
            "users-prefix"
        );
        assert_eq!(with_headers(&t, "/users/4x", &[]), None);
        assert_eq!(with_headers(&t, "/files/a/b.png", &[]).unwrap(), "files");
        assert_eq!(with_headers(&t, "/boost/abc", &[]).unwrap(), "boosted");
        assert_eq!(with_headers(&t, "/boost/123", &[]).unwrap(), "root");
        let m = lookup(&t, None, "/users/42", &Method::GET, &HeaderMap::new()).unwrap();
        assert_eq!(m.matched_len, 9);
    }

    #[test]
    fn many_regexes_go_through_a_set_and_keep_their_order() {
        let routes: Vec<_> = (0..40)
            .map(|i| serde_json::json!({"name": format!("r{i:02}"), "hosts": ["h.com"],
                                        "paths": [{"regex": format!("/item/{i}/[a-z]+")}],
                                        "headers": if i % 2 == 0 { serde_json::json!([{"name": "x-even", "present": true}]) } else { serde_json::json!([]) }}))
            .chain([serde_json::json!({"name": "wide", "hosts": ["h.com"], "paths": [{"regex": "/item/.*"}]})])
            .collect();
        let t = json_table(serde_json::Value::Array(routes));
        assert!(matches!(
            t.exact["h.com"].regex,
            Some(RegexGroup::Set { .. })
        ));
        assert_eq!(with_headers(&t, "/item/7/abc", &[]).unwrap(), "r07");
        // More header conditions rank first, and a failed condition falls through.
        assert_eq!(
            with_headers(&t, "/item/8/abc", &[("x-even", "1")]).unwrap(),
            "r08"
        );
        assert_eq!(with_headers(&t, "/item/8/abc", &[]).unwrap(), "wide");
        assert_eq!(with_headers(&t, "/item/8/123", &[]).unwrap(), "wide");
        assert_eq!(with_headers(&t, "/other", &[]), None);
    }

    #[test]
    fn more_header_then_more_query_conditions_win() {
        let t = json_table(serde_json::json!([
            {"name": "plain", "paths": [{"prefix": "/"}]},
            {"name": "one-header", "paths": [{"prefix": "/"}],
             "headers": [{"name": "x-env", "exact": "canary"}]},
            {"name": "two-headers", "paths": [{"prefix": "/"}],
             "headers": [{"name": "x-env", "exact": "canary"}, {"name": "x-user", "regex": "[0-9]+"}]},
            {"name": "query", "paths": [{"prefix": "/"}], "query": [{"name": "v", "exact": "2"}]},
            {"name": "header-and-query", "paths": [{"prefix": "/"}],
             "headers": [{"name": "x-env", "exact": "canary"}], "query": [{"name": "v", "present": true}]},
            {"name": "not-debug", "paths": [{"prefix": "/"}], "methods": ["POST"],
             "headers": [{"name": "x-debug", "present": true, "invert": true}]}
        ]));
        assert_eq!(with_headers(&t, "/", &[]).unwrap(), "plain");
        assert_eq!(
            with_headers(&t, "/", &[("x-env", "canary")]).unwrap(),
            "one-header"
        );
        assert_eq!(
            with_headers(&t, "/", &[("x-env", "canary"), ("x-user", "7")]).unwrap(),
            "two-headers"
        );
        assert_eq!(
            with_headers(&t, "/", &[("x-env", "canary"), ("x-user", "x")]).unwrap(),
            "one-header"
        );
        assert_eq!(with_headers(&t, "/?v=2", &[]).unwrap(), "query");
        assert_eq!(with_headers(&t, "/?v=3", &[]).unwrap(), "plain");
        assert_eq!(
            with_headers(&t, "/?v=3", &[("x-env", "canary")]).unwrap(),
            "header-and-query"
        );
        // Two header conditions beat one header plus one query condition.
        assert_eq!(
            with_headers(&t, "/?v=1", &[("x-env", "canary"), ("x-user", "1")]).unwrap(),
            "two-headers"
        );
        let post = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, http::HeaderValue::from_static(value));
            }
            lookup(&t, None, "/", &Method::POST, &headers).map(|m| m.route.name.to_string())
        };
        assert_eq!(post(&[]).unwrap(), "not-debug");
        assert_eq!(post(&[("x-debug", "1")]).unwrap(), "plain");
    }

    #[test]
    fn paths_that_are_not_rooted_only_meet_routes_without_paths() {
        let t = json_table(serde_json::json!([
            {"name": "root", "paths": [{"prefix": "/"}]},
            {"name": "any"}
        ]));
        assert_eq!(with_headers(&t, "/x", &[]).unwrap(), "root");
        assert_eq!(with_headers(&t, "*", &[]).unwrap(), "any");
    }

    #[test]
    fn sticky_keys_stay_on_one_backend_in_proportion_to_weight() {
        let t = json_table(serde_json::json!([
            {"name": "split", "backends": [{"upstream": "u", "weight": 20}, {"upstream": "uu", "weight": 80}],
             "sticky": {"header": "x-user"}},
            {"name": "cookie", "paths": [{"prefix": "/c"}],
             "backends": [{"upstream": "u", "weight": 1}, {"upstream": "uu", "weight": 1}],
             "sticky": {"cookie": "session"}}
        ]));
        let route = lookup(&t, None, "/", &Method::GET, &HeaderMap::new())
            .unwrap()
            .route;
        let mut counts = [0usize; 3];
        for user in 0..10_000 {
            let mut headers = HeaderMap::new();
            headers.insert(
                "x-user",
                http::HeaderValue::from_str(&user.to_string()).unwrap(),
            );
            let first = route.pick_upstream_for(&headers);
            for _ in 0..3 {
                assert_eq!(route.pick_upstream_for(&headers), first);
            }
            counts[first] += 1;
        }
        // Upstream `u` has index 0, `uu` index 1.
        assert!((1_800..2_200).contains(&counts[0]), "{counts:?}");
        assert!((7_800..8_200).contains(&counts[1]), "{counts:?}");

        let cookie = lookup(&t, None, "/c", &Method::GET, &HeaderMap::new())
            .unwrap()
            .route;
        let mut a = HeaderMap::new();
        a.insert(
            "cookie",
            http::HeaderValue::from_static("theme=dark; session=abc"),
        );
        let mut b = HeaderMap::new();
        b.append("cookie", http::HeaderValue::from_static("x=1"));
        b.append("cookie", http::HeaderValue::from_static("session=abc"));
        assert_eq!(cookie.pick_upstream_for(&a), cookie.pick_upstream_for(&b));
        assert_eq!(super::cookie(&a, "session"), Some(&b"abc"[..]));
        assert_eq!(super::cookie(&a, "sess"), None);
        assert_eq!(stable_hash(b"abc"), stable_hash(b"abc"));
        assert_ne!(stable_hash(b"abc"), stable_hash(b"abd"));
    }

    #[test]
    fn routes_that_answer_themselves_need_no_backends() {
        let t = json_table(serde_json::json!([
            {"name": "moved", "backends": [], "redirect": {"host": "new.example.com"}},
        ]));
        let route = lookup(&t, None, "/", &Method::GET, &HeaderMap::new())
            .unwrap()
            .route;
        assert!(route.actions.as_ref().is_some_and(|a| a.answer.is_some()));
    }
}
