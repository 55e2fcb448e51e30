//! Building the route table from a revision's routes, and patching it for a revision that
//! changed only some of them: the new table shares every untouched bucket (and every entry) with
//! the old one, which keeps serving the requests already routed by it. A patch costs in
//! proportion to the routes it changes and the buckets and lists they sit in, however many hosts
//! the table has. Runs off the request path.

use std::cmp::Reverse;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use gateway_config::{Config, PathMatch, Route};

use super::index::{Bucket, BucketEdit, RouteTable};
use super::matcher::{HostPattern, PathCond};
use super::rank::{Entry, Rank, Slot};
use super::regex_memo::{RegexMemo, Regexes};
use super::route::{CompiledRoute, RouteError, compile_route};

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
            _ => PathCond::from_config(p, &Regexes::none()),
        })
        .collect()
}

/// Every entry of `route`, with the host pattern whose bucket it belongs in.
fn expand(
    route: &Route,
    compiled: &Arc<CompiledRoute>,
    regexes: &Regexes<'_>,
) -> Vec<(HostPattern, Slot)> {
    let hosts = host_patterns(route);
    let paths: Vec<PathCond> = if route.paths.is_empty() {
        vec![PathCond::Any]
    } else {
        route
            .paths
            .iter()
            .map(|p| PathCond::from_config(p, regexes))
            .collect()
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
    /// Builds the table with regexes of its own; `upstream_index` maps an upstream name to its
    /// compiled index.
    pub fn build(
        config: &Config,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        Self::build_from(
            config.routes.values(),
            upstream_index,
            Arc::new(RegexMemo::default()),
        )
    }

    /// Builds the table from routes in name order, taking compiled regexes from `regexes` (which
    /// the tables patched from this one keep using).
    pub fn build_from<'r>(
        routes: impl Iterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
        regexes: Arc<RegexMemo>,
    ) -> Result<Self, RouteError> {
        let build = regexes.full_build();
        let mut len = 0;
        let mut expanded = Vec::new();
        for route in routes {
            let compiled = Arc::new(compile_route(route, &upstream_index, &build)?);
            expanded.extend(expand(route, &compiled, &build));
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
            bucket.refresh_regex_set(&build);
            Arc::new(bucket)
        };
        let exact = exact.into_iter().map(|(k, b)| (k, finish(b))).collect();
        let wildcard = wildcard.into_iter().map(|(k, b)| (k, finish(b))).collect();
        let any = finish(any);
        drop(build);
        Ok(RouteTable {
            exact,
            wildcard,
            any,
            len,
            regexes,
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
        let regexes = self.regexes.clone();
        self.patch_inner(before, after, upstream_index, &regexes.patch())
    }

    fn patch_inner<'r>(
        &self,
        before: impl IntoIterator<Item = &'r Route>,
        after: impl IntoIterator<Item = &'r Route>,
        upstream_index: impl Fn(&str) -> Option<usize>,
        regexes: &Regexes<'_>,
    ) -> Result<Self, RouteError> {
        // Gathered per bucket first, so that each bucket is copied, edited and checked once, and
        // each list in it rebuilt once, however many routes of the change it holds.
        let mut edits: HashMap<HostPattern, BucketEdit<'r>> = HashMap::new();
        let mut len = self.len;
        for route in before {
            let paths = removal_paths(route);
            for host in host_patterns(route) {
                let edit = edits.entry(host).or_default();
                edit.removed
                    .extend(paths.iter().map(|path| (path.clone(), route.name.as_str())));
            }
            len = len.saturating_sub(1);
        }
        for route in after {
            let compiled = Arc::new(compile_route(route, &upstream_index, regexes)?);
            for (host, slot) in expand(route, &compiled, regexes) {
                edits.entry(host).or_default().added.push(slot);
            }
            len += 1;
        }
        let mut table = self.clone();
        table.len = len;
        for (host, edit) in edits {
            let create = !edit.added.is_empty();
            let Some(bucket) = table.bucket_mut(&host, create) else {
                continue;
            };
            if bucket.apply(edit) {
                bucket.refresh_regex_set(regexes);
            }
            if bucket.is_empty() {
                match &host {
                    HostPattern::Exact(name) => table.exact.remove(name),
                    HostPattern::Wildcard(suffix) => table.wildcard.remove(suffix),
                    HostPattern::Any => None,
                };
            }
        }
        Ok(table)
    }

    /// The bucket of `host` for changing, copied first if an older table shares it.
    fn bucket_mut(&mut self, host: &HostPattern, create: bool) -> Option<&mut Bucket> {
        let shared = match host {
            HostPattern::Exact(name) if create => self.exact.get_or_default(name),
            HostPattern::Exact(name) => self.exact.get_mut(name)?,
            HostPattern::Wildcard(suffix) if create => self.wildcard.get_or_default(suffix),
            HostPattern::Wildcard(suffix) => self.wildcard.get_mut(suffix)?,
            HostPattern::Any => &mut self.any,
        };
        Some(Arc::make_mut(shared))
    }
}
