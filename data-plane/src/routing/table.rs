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
//! `RegexSet` when there are many). Each candidate list is sorted by precedence, so a lookup
//! takes the first entry of each list whose method, header and query conditions hold, stops as
//! soon as a list can no longer beat the best entry so far, and keeps the best one. Nothing is
//! allocated per lookup.
//!
//! A revision that changes a few routes patches the table instead of building it again: the new
//! table shares every untouched bucket (and every entry) with the old one, which keeps serving
//! the requests already routed by it.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::sync::Arc;

// Keys are configured hosts and path segments, looked up with the request's: a seeded fast hash
// instead of SipHash, which cost more than the rest of a lookup.
use foldhash::{HashMap, HashMapExt};
use gateway_config::{Config, PathMatch, Route, Sticky};
use http::{HeaderMap, HeaderName, Method};
use regex::RegexSet;

use crate::balance::WeightedPick;
use crate::retry::RoutePolicy;
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
    /// Timeout and retries, when the route sets either.
    pub policy: Option<RoutePolicy>,
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

/// Precedence of an entry without its route's name; smaller wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    priority: Reverse<i32>,
    host: (u8, Reverse<usize>),
    path: (u8, Reverse<usize>),
    any_method: bool,
    headers: Reverse<usize>,
    query: Reverse<usize>,
    created: i64,
}

/// One (host pattern × path condition) of a route.
#[derive(Debug)]
struct Entry {
    rank: Rank,
    path: PathCond,
    route: Arc<CompiledRoute>,
    /// Position among the route's own entries: the last tie-break.
    order: u32,
}

impl Entry {
    /// Rank, then route name (older first is already in the rank), then the entry's order.
    fn cmp_precedence(&self, other: &Entry) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| self.route.name.cmp(&other.route.name))
            .then(self.order.cmp(&other.order))
    }

    #[inline]
    fn precedes(&self, other: &Entry) -> bool {
        self.cmp_precedence(other) == Ordering::Less
    }
}

/// Entries are shared between the tables of successive revisions.
type Slot = Arc<Entry>;

/// Inserts into a list kept in precedence order; appending is the common case in a full build.
fn insert_sorted(list: &mut Vec<Slot>, slot: Slot) {
    let at = list.partition_point(|e| e.precedes(&slot));
    list.insert(at, slot);
}

/// One node of a bucket's path-segment trie; its entries are the prefixes that end here.
#[derive(Debug, Default, Clone)]
struct Node {
    children: HashMap<Box<str>, u32>,
    entries: Vec<Slot>,
}

/// The entries of one host pattern, indexed by path.
#[derive(Debug, Clone)]
struct Bucket {
    exact: HashMap<Box<str>, Vec<Slot>>,
    /// Node 0 is the root (prefix `/` and entries without a path condition).
    trie: Vec<Node>,
    /// Regex entries in precedence order.
    regexes: Vec<Slot>,
    /// Over the patterns of `regexes`, in the same order, once there are enough of them.
    regex_set: Option<RegexSet>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            exact: HashMap::new(),
            trie: vec![Node::default()],
            regexes: Vec::new(),
            regex_set: None,
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
    fn insert(&mut self, slot: Slot) {
        let list = match &slot.path {
            PathCond::Exact(p) => self.exact.entry(p.clone()).or_default(),
            PathCond::Prefix(p) => {
                let node = self.node_for(p);
                &mut self.trie[node].entries
            }
            PathCond::Any => &mut self.trie[0].entries,
            PathCond::Regex(_) => &mut self.regexes,
        };
        insert_sorted(list, slot);
    }

    /// The trie node of `prefix`, created with its parents if missing.
    fn node_for(&mut self, prefix: &str) -> usize {
        let mut node = 0usize;
        for segment in segments(prefix) {
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
        node
    }

    fn find_node(&self, prefix: &str) -> Option<usize> {
        let mut node = 0usize;
        for segment in segments(prefix) {
            node = *self.trie.get(node)?.children.get(segment)? as usize;
        }
        Some(node)
    }

    /// Removes route `name`'s entries for `path`; says whether they were regex entries.
    fn remove(&mut self, path: &PathCond, name: &str) -> bool {
        let keep = |e: &Slot| &*e.route.name != name;
        match path {
            PathCond::Exact(p) => {
                if let Some(list) = self.exact.get_mut(p) {
                    list.retain(keep);
                    if list.is_empty() {
                        self.exact.remove(p);
                    }
                }
            }
            PathCond::Prefix(p) => {
                if let Some(node) = self.find_node(p) {
                    self.trie[node].entries.retain(keep);
                }
            }
            PathCond::Any => self.trie[0].entries.retain(keep),
            PathCond::Regex(_) => {
                self.regexes.retain(keep);
                return true;
            }
        }
        false
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.regexes.is_empty()
            && self.trie.iter().all(|n| n.entries.is_empty())
    }

    /// Rebuilds the regex set after `regexes` changed.
    fn refresh_regex_set(&mut self) {
        self.regex_set = None;
        if self.regexes.len() < REGEX_SET_MIN {
            return;
        }
        let patterns: Vec<&str> = self
            .regexes
            .iter()
            .map(|e| match &e.path {
                PathCond::Regex(Some(re)) => re.as_str(),
                // A pattern that did not compile must never match: this one cannot.
                _ => "[^\\s\\S]",
            })
            .collect();
        match regex_memo::regex_set(&patterns, REGEX_SET_SIZE_LIMIT) {
            Ok(set) => self.regex_set = Some(set),
            Err(error) => tracing::warn!(%error, "regex routes are matched one by one"),
        }
    }
}

thread_local! {
    /// Per-thread scratch for `RegexSet` results, grown once to the largest group.
    static REGEX_HITS: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

/// Buckets are shared between the tables of successive revisions: a patch copies only the
/// buckets it changes.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    exact: HashMap<Arc<str>, Arc<Bucket>>,
    /// Keyed by the suffix with its leading dot.
    wildcard: HashMap<Arc<str>, Arc<Bucket>>,
    any: Arc<Bucket>,
    len: usize,
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

/// The best entry found so far.
struct Best<'t>(Option<&'t Entry>);

impl Best<'_> {
    #[inline]
    fn beaten_by(&self, entry: &Entry) -> bool {
        self.0.is_none_or(|best| entry.precedes(best))
    }
}

fn host_patterns(route: &Route) -> Vec<HostPattern> {
    if route.hosts.is_empty() {
        vec![HostPattern::Any]
    } else {
        route.hosts.iter().map(|h| HostPattern::parse(h)).collect()
    }
}

/// The path conditions of a route that is being removed: regexes are not compiled for that.
fn removal_paths(route: &Route) -> Vec<PathCond> {
    if route.paths.is_empty() {
        return vec![PathCond::Any];
    }
    route
        .paths
        .iter()
        .map(|p| match p {
            PathMatch::Regex(_) => PathCond::Regex(None),
            _ => PathCond::from_config(p),
        })
        .collect()
}

/// Every entry of `route`, with the host pattern whose bucket it belongs in.
fn expand(route: &Route, compiled: &Arc<CompiledRoute>) -> Vec<(HostPattern, Slot)> {
    let hosts = host_patterns(route);
    let paths: Vec<PathCond> = if route.paths.is_empty() {
        vec![PathCond::Any]
    } else {
        route.paths.iter().map(PathCond::from_config).collect()
    };
    let mut entries = Vec::with_capacity(hosts.len() * paths.len());
    for host in hosts {
        for path in &paths {
            let rank = Rank {
                priority: Reverse(route.priority),
                host: host.specificity(),
                path: path.specificity(),
                any_method: compiled.methods.is_empty(),
                headers: Reverse(compiled.headers.len()),
                query: Reverse(compiled.query.len()),
                created: route.created_at_unix_ms,
            };
            let order = entries.len() as u32;
            let slot = Arc::new(Entry {
                rank,
                path: path.clone(),
                route: compiled.clone(),
                order,
            });
            entries.push((host.clone(), slot));
        }
    }
    entries
}

impl RouteTable {
    /// Builds the table; `upstream_index` maps an upstream name to its compiled index.
    pub fn build(
        config: &Config,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        Self::build_from(config.routes.values(), upstream_index)
    }

    /// Builds the table from routes in name order.
    pub fn build_from<'r>(
        routes: impl Iterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let generation = regex_memo::begin_build();
        let built = Self::assemble(routes, upstream_index);
        regex_memo::end_build(generation);
        built
    }

    fn assemble<'r>(
        routes: impl Iterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let mut len = 0;
        let mut expanded = Vec::new();
        for route in routes {
            let compiled = Arc::new(compile_route(route, &upstream_index)?);
            expanded.extend(expand(route, &compiled));
            len += 1;
        }
        expanded.sort_by(|a, b| a.1.cmp_precedence(&b.1));
        let mut exact: HashMap<Arc<str>, Bucket> = HashMap::new();
        let mut wildcard: HashMap<Arc<str>, Bucket> = HashMap::new();
        let mut any = Bucket::default();
        for (host, slot) in expanded {
            let bucket = match host {
                HostPattern::Exact(name) => exact.entry(Arc::from(name)).or_default(),
                HostPattern::Wildcard(suffix) => wildcard.entry(Arc::from(suffix)).or_default(),
                HostPattern::Any => &mut any,
            };
            bucket.insert(slot);
        }
        let finish = |mut bucket: Bucket| {
            bucket.refresh_regex_set();
            Arc::new(bucket)
        };
        Ok(RouteTable {
            exact: exact.into_iter().map(|(k, b)| (k, finish(b))).collect(),
            wildcard: wildcard.into_iter().map(|(k, b)| (k, finish(b))).collect(),
            any: finish(any),
            len,
        })
    }

    /// This table with the routes in `before` (as they were) taken out and the routes in
    /// `after` put in, for a revision that changed only those routes and kept every upstream
    /// name at its index. Shares every bucket the change does not touch with `self`, which is
    /// left as it was.
    pub fn patch<'r>(
        &self,
        before: impl IntoIterator<Item = &'r Route>,
        after: impl IntoIterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        // Patches compile only the changed routes' regexes and keep them out of the memo, whose
        // size then stays that of the last full build.
        regex_memo::without_remembering(|| self.patch_inner(before, after, upstream_index))
    }

    fn patch_inner<'r>(
        &self,
        before: impl IntoIterator<Item = &'r Route>,
        after: impl IntoIterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let mut table = self.clone();
        // Buckets that changed, and whether their regexes did.
        let mut touched: Vec<(HostPattern, bool)> = Vec::new();
        let mut touch =
            |host: &HostPattern, regex: bool| match touched.iter_mut().find(|(h, _)| h == host) {
                Some((_, r)) => *r |= regex,
                None => touched.push((host.clone(), regex)),
            };
        for route in before {
            let paths = removal_paths(route);
            for host in host_patterns(route) {
                let Some(bucket) = table.bucket_mut(&host, false) else {
                    continue;
                };
                let mut regex = false;
                for path in &paths {
                    regex |= bucket.remove(path, &route.name);
                }
                touch(&host, regex);
            }
            table.len = table.len.saturating_sub(1);
        }
        for route in after {
            let compiled = Arc::new(compile_route(route, &upstream_index)?);
            for (host, slot) in expand(route, &compiled) {
                let regex = matches!(slot.path, PathCond::Regex(_));
                if let Some(bucket) = table.bucket_mut(&host, true) {
                    bucket.insert(slot);
                }
                touch(&host, regex);
            }
            table.len += 1;
        }
        for (host, regex) in touched {
            let Some(bucket) = table.bucket_mut(&host, false) else {
                continue;
            };
            if regex {
                bucket.refresh_regex_set();
            }
            if bucket.is_empty() {
                match &host {
                    HostPattern::Exact(name) => table.exact.remove(&**name),
                    HostPattern::Wildcard(suffix) => table.wildcard.remove(&**suffix),
                    HostPattern::Any => None,
                };
            }
        }
        Ok(table)
    }

    /// The bucket of `host` for changing, copied first if an older table shares it.
    fn bucket_mut(&mut self, host: &HostPattern, create: bool) -> Option<&mut Bucket> {
        let shared = match host {
            HostPattern::Exact(name) if create => self.exact.entry(Arc::from(&**name)).or_default(),
            HostPattern::Exact(name) => self.exact.get_mut(&**name)?,
            HostPattern::Wildcard(suffix) if create => {
                self.wildcard.entry(Arc::from(&**suffix)).or_default()
            }
            HostPattern::Wildcard(suffix) => self.wildcard.get_mut(&**suffix)?,
            HostPattern::Any => &mut self.any,
        };
        Some(Arc::make_mut(shared))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The best route for a request. The host (raw `Host` header or URI authority) is compared
    /// without port and case.
    pub fn lookup(&self, request: &RequestInfo<'_>) -> Option<RouteMatch<'_>> {
        let mut best = Best(None);
        if let Some(raw) = request.host {
            let mut buf = host_buffer();
            if let Some(host) = lowercase_host(host_without_port(raw), &mut buf) {
                if let Some(bucket) = self.exact.get(host) {
                    best_in(bucket, request, &mut best);
                }
                if !self.wildcard.is_empty() {
                    // Every suffix that starts at a dot, longest first: `.b.example.com`, ...
                    for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                        if let Some(bucket) = self.wildcard.get(&host[at..]) {
                            best_in(bucket, request, &mut best);
                        }
                    }
                }
            }
        }
        best_in(&self.any, request, &mut best);
        let entry = best.0?;
        let route = &*entry.route;
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
}

fn best_in<'t>(bucket: &'t Bucket, request: &RequestInfo<'_>, best: &mut Best<'t>) {
    let path = request.path;
    if let Some(list) = bucket.exact.get(path) {
        first_in(list, request, false, best);
    }
    let Some(root) = bucket.trie.first() else {
        return;
    };
    // A path that does not start with `/` (e.g. `OPTIONS *`) only meets entries without a
    // path condition, which the check of the root's entries sorts out.
    let rooted = path.starts_with('/');
    first_in(&root.entries, request, !rooted, best);
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
            first_in(&node.entries, request, false, best);
        }
    }
    let regexes = &bucket.regexes;
    let Some(set) = &bucket.regex_set else {
        return first_in(regexes, request, true, best);
    };
    if regexes.first().is_none_or(|first| !best.beaten_by(first)) {
        return;
    }
    REGEX_HITS.with(|hits| {
        let Ok(mut hits) = hits.try_borrow_mut() else {
            return first_in(regexes, request, true, best);
        };
        if hits.len() < regexes.len() {
            hits.resize(regexes.len(), false);
        }
        let hits = &mut hits[..regexes.len()];
        hits.fill(false);
        if !set.matches_read_at(hits, path, 0) {
            return;
        }
        for (entry, _) in regexes.iter().zip(hits.iter()).filter(|(_, hit)| **hit) {
            if !best.beaten_by(entry) {
                return;
            }
            if entry.route.conditions_hold(request) {
                best.0 = Some(entry);
                return;
            }
        }
    });
}

/// Takes the first entry of a precedence-sorted list that beats `best` and whose conditions
/// hold.
fn first_in<'t>(
    list: &'t [Slot],
    request: &RequestInfo<'_>,
    check_path: bool,
    best: &mut Best<'t>,
) {
    for entry in list {
        if !best.beaten_by(entry) {
            return;
        }
        let path_ok = !check_path || entry.path.matches(request.path);
        if path_ok && entry.route.conditions_hold(request) {
            best.0 = Some(entry);
            return;
        }
    }
}

fn compile_route(
    route: &Route,
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
        policy: RoutePolicy::of(route),
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
        assert!(t.exact["h.com"].regex_set.is_some());
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

    mod patching {
        use gateway_config::{HeaderMatch, PathMatch, Route};

        use super::*;

        const HOSTS: [&str; 4] = [
            "a.example.com",
            "b.example.com",
            "*.example.com",
            "*.b.example.com",
        ];
        const REGEXES: [&str; 5] = ["/x/[0-9]+", "/.*", "/x/.+", "/[a-z]/y", "/z"];

        fn random_path(rng: &mut fastrand::Rng) -> PathMatch {
            match rng.u8(0..10) {
                0 => PathMatch::Exact("/x".into()),
                1 => PathMatch::Exact("/x/y".into()),
                2 => PathMatch::Prefix("/".into()),
                3 => PathMatch::Prefix("/x".into()),
                4 => PathMatch::Prefix("/x/y/".into()),
                5 => PathMatch::Prefix("/z".into()),
                _ => PathMatch::Regex(REGEXES[rng.usize(..REGEXES.len())].into()),
            }
        }

        fn random_route(rng: &mut fastrand::Rng, name: &str) -> Route {
            Route {
                name: name.into(),
                hosts: (0..rng.usize(0..3))
                    .map(|_| HOSTS[rng.usize(..HOSTS.len())].into())
                    .collect(),
                paths: (0..rng.usize(0..3)).map(|_| random_path(rng)).collect(),
                methods: match rng.u8(0..4) {
                    0 => vec!["GET".into()],
                    1 => vec!["POST".into()],
                    _ => vec![],
                },
                headers: if rng.u8(0..4) == 0 {
                    vec![HeaderMatch {
                        name: "x-env".into(),
                        exact: Some("canary".into()),
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                strip_prefix: rng.bool(),
                backends: vec![Backend {
                    upstream: "u".into(),
                    weight: 1,
                }],
                priority: rng.i32(0..3),
                created_at_unix_ms: rng.i64(0..5),
                ..Default::default()
            }
        }

        /// What every probe request gets from `table`.
        fn answers(table: &RouteTable) -> Vec<Option<(String, usize, usize)>> {
            let hosts = [
                None,
                Some("a.example.com"),
                Some("B.example.com:8080"),
                Some("c.b.example.com"),
                Some("x.example.com"),
                Some("other.org"),
            ];
            let paths = [
                "/", "/x", "/x/1", "/x/12", "/x/y", "/x/y/z", "/z", "/q/y", "*",
            ];
            let mut canary = HeaderMap::new();
            canary.insert("x-env", http::HeaderValue::from_static("canary"));
            let header_sets = [HeaderMap::new(), canary];
            let mut found = Vec::new();
            for host in hosts {
                for path in paths {
                    for method in [Method::GET, Method::POST] {
                        for headers in &header_sets {
                            found.push(
                                lookup(table, host, path, &method, headers).map(|m| {
                                    (m.route.name.to_string(), m.strip_len, m.matched_len)
                                }),
                            );
                        }
                    }
                }
            }
            found
        }

        #[test]
        fn a_patched_table_routes_exactly_like_a_rebuilt_one() {
            let mut rng = fastrand::Rng::with_seed(0x5eed);
            for round in 0..40 {
                let mut config = Config::default();
                for i in 0..rng.usize(0..70) {
                    let name = format!("r{i:02}");
                    config
                        .routes
                        .insert(name.clone(), random_route(&mut rng, &name));
                }
                let base = RouteTable::build(&config, |_| Some(0)).unwrap();
                let base_answers = answers(&base);

                let mut names: Vec<usize> = (0..90).collect();
                rng.shuffle(&mut names);
                let mut next = config.clone();
                let (mut before, mut after) = (Vec::new(), Vec::new());
                for i in names.into_iter().take(rng.usize(1..12)) {
                    let name = format!("r{i:02}");
                    if rng.u8(0..3) == 0 {
                        before.extend(next.routes.remove(&name));
                    } else {
                        let route = random_route(&mut rng, &name);
                        before.extend(next.routes.insert(name, route.clone()));
                        after.push(route);
                    }
                }
                let patched = base.patch(&before, &after, |_| Some(0)).unwrap();
                let rebuilt = RouteTable::build(&next, |_| Some(0)).unwrap();
                assert_eq!(patched.len(), rebuilt.len(), "round {round}");
                assert_eq!(answers(&patched), answers(&rebuilt), "round {round}");
                assert_eq!(answers(&base), base_answers, "round {round}: base changed");
                // Patching onward from a patched table stays right too.
                let back = patched.patch(&after, &before, |_| Some(0)).unwrap();
                assert_eq!(answers(&back), base_answers, "round {round}: patch back");
            }
        }

        #[test]
        fn a_patch_shares_untouched_buckets_and_drops_emptied_ones() {
            let mut config = Config::default();
            for (name, host) in [("a", "a.example.com"), ("b", "b.example.com")] {
                let route = Route {
                    name: name.into(),
                    hosts: vec![host.into()],
                    backends: vec![Backend {
                        upstream: "u".into(),
                        weight: 1,
                    }],
                    ..Default::default()
                };
                config.routes.insert(name.into(), route);
            }
            let base = RouteTable::build(&config, |_| Some(0)).unwrap();
            let patched = base.patch([&config.routes["b"]], [], |_| Some(0)).unwrap();
            assert!(Arc::ptr_eq(
                &base.exact["a.example.com"],
                &patched.exact["a.example.com"]
            ));
            assert!(!patched.exact.contains_key("b.example.com"));
            assert_eq!(patched.len(), 1);
        }

        #[test]
        fn a_patch_with_a_bad_route_fails_and_changes_nothing() {
            let base = RouteTable::default();
            let bad = Route {
                name: "bad".into(),
                backends: vec![Backend {
                    upstream: "missing".into(),
                    weight: 1,
                }],
                ..Default::default()
            };
            assert!(matches!(
                base.patch([], [&bad], |_| None),
                Err(RouteError::UnknownUpstream { .. })
            ));
            assert!(base.is_empty());
        }
    }
}
