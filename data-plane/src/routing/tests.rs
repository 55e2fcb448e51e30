//! The route table as a whole: precedence, lookups through every index, sticky backends, and
//! patched tables that route exactly like rebuilt ones.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use gateway_config::{Backend, Config, PathMatch, Route};
use http::{HeaderMap, Method};

use super::index::RouteMatch;
use super::{RequestInfo, RouteError, RouteTable};

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
            upgrades: vec![],
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
    lookup(table, Some("h.com"), target, &Method::GET, &headers).map(|m| m.route.name.to_string())
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
    assert!(t.exact.get("h.com").unwrap().regex_set.is_some());
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
    assert_eq!(crate::keys::cookie(&a, "session"), Some(&b"abc"[..]));
    assert_eq!(crate::keys::cookie(&a, "sess"), None);
    assert_eq!(
        crate::keys::stable_hash(b"abc"),
        crate::keys::stable_hash(b"abc")
    );
    assert_ne!(
        crate::keys::stable_hash(b"abc"),
        crate::keys::stable_hash(b"abd")
    );
}

#[test]
fn routes_that_answer_themselves_need_no_backends() {
    let t = json_table(serde_json::json!([
        {"name": "moved", "backends": [], "redirect": {"host": "new.example.com"}},
    ]));
    let route = lookup(&t, None, "/", &Method::GET, &HeaderMap::new())
        .unwrap()
        .route;
    assert!(route.filters.as_ref().is_some_and(|f| f.answer.is_some()));
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
                            lookup(table, host, path, &method, headers)
                                .map(|m| (m.route.name.to_string(), m.strip_len, m.matched_len)),
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
            // Some rounds change most routes at once, which merges many entries into one list.
            let changed = if round % 4 == 3 { 40..90 } else { 1..12 };
            for i in names.into_iter().take(rng.usize(changed)) {
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
            base.exact.get("a.example.com").unwrap(),
            patched.exact.get("a.example.com").unwrap()
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
