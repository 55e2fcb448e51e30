//! The compiled route table and its precedence rules.
//!
//! Every route is expanded into one entry per (host pattern × path condition), and each entry gets
//! a global rank from the precedence order: higher `priority`; more specific host (exact, then
//! longer wildcard suffix, then any host); exact path, then longer prefix, then no path; a method
//! condition over none; older route; name. Entries are indexed by exact host, by wildcard suffix
//! and in an any-host list, each sorted by rank, so a lookup takes the first matching entry of the
//! few buckets that can apply to the request host and keeps the best-ranked one.

use std::cmp::Reverse;
use std::collections::HashMap;

use gateway_config::Config;
use http::Method;

use crate::balance::WeightedPick;
use crate::routing::matcher::{
    HostPattern, MethodSet, PathCond, host_buffer, host_without_port, lowercase_host,
};

/// What the proxy needs from a route once it matched.
#[derive(Debug)]
pub struct CompiledRoute {
    pub name: Box<str>,
    pub methods: MethodSet,
    pub strip_prefix: bool,
    pub preserve_host: bool,
    /// Upstream indices, parallel to the weights in `pick`.
    upstreams: Box<[usize]>,
    pick: WeightedPick,
}

impl CompiledRoute {
    /// Index of the upstream this request goes to, chosen by backend weight.
    pub fn pick_upstream(&self) -> usize {
        self.upstreams
            .get(self.pick.pick())
            .or_else(|| self.upstreams.first())
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug)]
struct Entry {
    rank: u32,
    path: PathCond,
    route: u32,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
    exact: HashMap<Box<str>, Vec<Entry>>,
    /// Keyed by the suffix with its leading dot.
    wildcard: HashMap<Box<str>, Vec<Entry>>,
    any: Vec<Entry>,
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    pub route: &'a CompiledRoute,
    /// Bytes to remove from the front of the path (0 when nothing is stripped).
    pub strip_len: usize,
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
    i64,
    usize,
    usize,
);

impl RouteTable {
    /// Builds the table; `upstream_index` maps an upstream name to its compiled index.
    pub fn build(
        config: &Config,
        upstream_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Self, RouteError> {
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut entries: Vec<(SortKey, HostPattern, PathCond, u32)> = Vec::new();
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
                        route.created_at_unix_ms,
                        route_index,
                        order,
                    );
                    order += 1;
                    entries.push((key, host.clone(), path.clone(), route_index as u32));
                }
            }
            routes.push(compiled);
        }
        entries.sort_by_key(|entry| entry.0);
        let mut table = RouteTable {
            routes,
            ..RouteTable::default()
        };
        // Pushing in rank order keeps every bucket sorted by rank.
        for (rank, (_, host, path, route)) in entries.into_iter().enumerate() {
            let entry = Entry {
                rank: rank as u32,
                path,
                route,
            };
            match host {
                HostPattern::Exact(name) => table.exact.entry(name).or_default().push(entry),
                HostPattern::Wildcard(suffix) => {
                    table.wildcard.entry(suffix).or_default().push(entry)
                }
                HostPattern::Any => table.any.push(entry),
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

    /// The best route for a request. `host` is the raw `Host` header or URI authority (port and
    /// case do not matter); `None` when the request named no host.
    pub fn lookup(
        &self,
        host: Option<&str>,
        path: &str,
        method: &Method,
    ) -> Option<RouteMatch<'_>> {
        let mut best: Option<&Entry> = None;
        if let Some(raw) = host {
            let mut buf = host_buffer();
            if let Some(host) = lowercase_host(host_without_port(raw), &mut buf) {
                if let Some(bucket) = self.exact.get(host) {
                    self.best_in(bucket, path, method, &mut best);
                }
                if !self.wildcard.is_empty() {
                    // Every suffix that starts at a dot, longest first: `.b.example.com`, ...
                    for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                        if let Some(bucket) = self.wildcard.get(&host[at..]) {
                            self.best_in(bucket, path, method, &mut best);
                        }
                    }
                }
            }
        }
        self.best_in(&self.any, path, method, &mut best);
        let entry = best?;
        let route = self.routes.get(entry.route as usize)?;
        let strip_len = if route.strip_prefix {
            entry.path.strip_len()
        } else {
            0
        };
        Some(RouteMatch { route, strip_len })
    }

    fn best_in<'a>(
        &'a self,
        bucket: &'a [Entry],
        path: &str,
        method: &Method,
        best: &mut Option<&'a Entry>,
    ) {
        for entry in bucket {
            if best.is_some_and(|b| b.rank < entry.rank) {
                return;
            }
            let methods_match = self
                .routes
                .get(entry.route as usize)
                .is_some_and(|r| r.methods.matches(method));
            if methods_match && entry.path.matches(path) {
                *best = Some(entry);
                return;
            }
        }
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
    let pick = WeightedPick::new(route.backends.iter().map(|b| b.weight)).ok_or_else(|| {
        RouteError::NoWeight {
            route: route.name.clone(),
        }
    })?;
    Ok(CompiledRoute {
        name: route.name.as_str().into(),
        methods: MethodSet::new(methods),
        strip_prefix: route.strip_prefix,
        preserve_host: route.preserve_host,
        upstreams,
        pick,
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
                tags: vec![],
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
                preserve_host: false,
                backends: vec![Backend {
                    upstream: "u".into(),
                    weight: 1,
                }],
                priority: spec.priority,
                created_at_unix_ms: spec.created,
            };
            config.routes.insert(spec.name.into(), route);
        }
        RouteTable::build(&config, |_| Some(0)).unwrap()
    }

    fn pick(table: &RouteTable, host: &str, path: &str, method: Method) -> Option<String> {
        let host = (!host.is_empty()).then_some(host);
        table
            .lookup(host, path, &method)
            .map(|m| m.route.name.to_string())
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
            table(&[])
                .lookup(Some("a.com"), "/", &Method::GET)
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
        assert_eq!(t.lookup(None, "/api/x", &Method::GET).unwrap().strip_len, 4);
        assert_eq!(t.lookup(None, "/exact", &Method::GET).unwrap().strip_len, 0);
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
                created_at_unix_ms: 0,
            },
        );
        assert!(matches!(
            RouteTable::build(&config, |_| None),
            Err(RouteError::UnknownUpstream { index: 0, .. })
        ));
    }
}
