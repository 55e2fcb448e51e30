//! Every bound of [`super::limits`], checked where it applies: a value at the bound passes, one
//! past it is refused on the field it concerns; and the route table a config makes stays within
//! its budget, a route of 2,000 hosts × 2,000 paths included.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::limits::*;
use crate::model::{Config, Route, Upstream};
use crate::{Kind, expansion_budget_error};

/// `extra` on top of a valid route `r` that sends to `api`.
fn route(extra: Value) -> Route {
    let mut document = json!({"name": "r", "backends": [{"upstream": "api"}]});
    if let (Some(base), Some(extra)) = (document.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(document).unwrap()
}

/// `extra` on top of a valid upstream `api`.
fn upstream(extra: Value) -> Upstream {
    let mut document = json!({"name": "api", "targets": [{"address": "10.0.0.1:80"}]});
    if let (Some(base), Some(extra)) = (document.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    serde_json::from_value(document).unwrap()
}

fn route_fields(route: &Route) -> Vec<String> {
    route
        .validate()
        .err()
        .map(|errors| errors.0.into_iter().map(|e| e.field).collect())
        .unwrap_or_default()
}

fn upstream_fields(upstream: &Upstream) -> Vec<String> {
    upstream
        .validate()
        .err()
        .map(|errors| errors.0.into_iter().map(|e| e.field).collect())
        .unwrap_or_default()
}

fn hosts(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("h{i}.example.com")).collect()
}

fn prefixes(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({"prefix": format!("/p{i}")}))
        .collect()
}

/// `count` distinct valid strings of exactly `len` bytes, for lists of header names and such.
fn texts(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("x{i:0>width$}", width = len - 1))
        .collect()
}

#[test]
fn hosts_paths_and_their_product_per_route() {
    let at = route(json!({"hosts": hosts(MAX_HOSTS_PER_ROUTE), "paths": prefixes(1)}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"hosts": hosts(MAX_HOSTS_PER_ROUTE + 1)}));
    assert_eq!(route_fields(&over), ["hosts"]);

    let at = route(json!({"paths": prefixes(MAX_PATHS_PER_ROUTE)}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"paths": prefixes(MAX_PATHS_PER_ROUTE + 1)}));
    assert_eq!(route_fields(&over), ["paths"]);

    let at = route(json!({"hosts": hosts(100), "paths": prefixes(100)}));
    assert_eq!(at.expansion(), MAX_ROUTE_EXPANSION);
    assert_eq!(route_fields(&at), Vec::<String>::new());
    for (h, p) in [(100, 101), (101, 100), (1_000, 11)] {
        let over = route(json!({"hosts": hosts(h), "paths": prefixes(p)}));
        assert_eq!(route_fields(&over), ["paths"], "{h} × {p}");
        let message = &over.validate().unwrap_err().0[0].message;
        assert!(
            message.contains(&format!("make {} route table entries", h * p)),
            "{message}"
        );
    }
}

#[test]
fn a_route_of_two_thousand_hosts_by_two_thousand_paths_is_refused() {
    let hosts: Vec<String> = (0..2_000).map(|i| format!("\"h{i}.a.io\"")).collect();
    let paths: Vec<String> = (0..2_000)
        .map(|i| format!("{{\"prefix\":\"/p{i}\"}}"))
        .collect();
    let body = format!(
        r#"{{"name":"bomb","hosts":[{}],"paths":[{}],"backends":[{{"upstream":"api"}}]}}"#,
        hosts.join(","),
        paths.join(",")
    );
    assert!(body.len() < 80_000, "{} bytes", body.len());
    let bomb: Route = serde_json::from_str(&body).unwrap();
    assert_eq!(bomb.expansion(), 4_000_000);
    let errors = bomb.validate().unwrap_err();
    let found: Vec<(Kind, &str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.kind, e.name.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Kind::Route, "bomb", "hosts"),
            (Kind::Route, "bomb", "paths"),
            (Kind::Route, "bomb", "paths")
        ]
    );
    assert!(errors.0[2].message.contains("4000000 route table entries"));

    // In a config it is refused the same way, and counts against the budget too.
    let mut config = Config::default();
    config.upstreams.insert("api".into(), upstream(json!({})));
    config.routes.insert("bomb".into(), bomb);
    let fields: Vec<String> = config
        .validate()
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["hosts", "paths", "paths", "paths"]);
}

#[test]
fn the_config_budget() {
    assert_eq!(route(json!({})).expansion(), 1);
    assert_eq!(route(json!({"hosts": hosts(3)})).expansion(), 3);
    assert_eq!(route(json!({"paths": prefixes(4)})).expansion(), 4);
    assert_eq!(
        route(json!({"hosts": hosts(3), "paths": prefixes(4)})).expansion(),
        12
    );

    assert_eq!(expansion_budget_error(MAX_CONFIG_EXPANSION, "r"), None);
    let error = expansion_budget_error(MAX_CONFIG_EXPANSION + 1, "r").unwrap();
    assert_eq!(
        (error.kind, error.name.as_str(), error.field.as_str()),
        (Kind::Route, "r", "paths")
    );
    assert!(
        error
            .message
            .contains(&format!("at most {MAX_CONFIG_EXPANSION}"))
    );
    assert!(expansion_budget_error(u64::MAX, "r").is_some());

    // 100 routes of 100 hosts × 100 paths fill the budget exactly.
    let mut config = Config::default();
    config.upstreams.insert("api".into(), upstream(json!({})));
    for i in 0..100 {
        let name = format!("r{i:03}");
        let mut full = route(json!({"hosts": hosts(100), "paths": prefixes(100)}));
        full.name.clone_from(&name);
        config.routes.insert(name, full);
    }
    assert_eq!(config.expansion(), MAX_CONFIG_EXPANSION);
    assert!(config.validate().is_ok());
    // One more entry is over; the error is on the largest route, the first of equals.
    let mut tiny = route(json!({}));
    tiny.name = "tiny".into();
    config.routes.insert("tiny".into(), tiny);
    let errors = config.validate().unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(
        (errors.0[0].name.as_str(), errors.0[0].field.as_str()),
        ("r000", "paths")
    );
    assert!(errors.0[0].message.contains("1000001 route table entries"));
}

#[test]
fn a_hundred_thousand_ordinary_routes_fit() {
    let mut config = Config::default();
    config.upstreams.insert("api".into(), upstream(json!({})));
    let template = route(json!({
        "hosts": ["a.example.com", "b.example.com", "*.c.example.com"],
        "paths": [{"prefix": "/api/v1"}, {"exact": "/health"}, {"prefix": "/items"}]
    }));
    for i in 0..100_000 {
        let mut r = template.clone();
        r.name = format!("route-{i}");
        config.routes.insert(r.name.clone(), r);
    }
    assert_eq!(config.expansion(), 900_000);
    assert!(config.validate().is_ok());
}

#[test]
fn regex_paths_per_route() {
    let regexes = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|i| json!({"regex": format!("/r{i}/[0-9]+")}))
            .collect()
    };
    let at = route(json!({ "paths": regexes(MAX_REGEX_PATHS_PER_ROUTE) }));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let mut paths = regexes(MAX_REGEX_PATHS_PER_ROUTE + 1);
    paths.push(json!({"prefix": "no-slash"}));
    let over = route(json!({ "paths": paths }));
    // Overlong lists of regexes are not compiled; the other paths are still checked.
    assert_eq!(route_fields(&over), ["paths", "paths[65].prefix"]);
}

#[test]
fn path_conditions_are_request_paths() {
    let ok = route(json!({"paths": [
        {"prefix": "/api/"}, {"exact": "/caf%C3%A9"}, {"prefix": "/a:b@c;d=e,f+g"},
        {"exact": "/"}
    ]}));
    assert_eq!(route_fields(&ok), Vec::<String>::new());
    let bad = route(json!({"paths": [
        {"prefix": "/café"}, {"exact": "/a b"}, {"prefix": "/a?x=1"}, {"exact": "/a#top"},
        {"prefix": "/100%"}, {"exact": "/{id}"}, {"prefix": "/a\u{0}"}, {"exact": "relative"},
        {"prefix": ""}, {"exact": "/ü"}
    ]}));
    assert_eq!(
        route_fields(&bad),
        [
            "paths[0].prefix",
            "paths[1].exact",
            "paths[2].prefix",
            "paths[3].exact",
            "paths[4].prefix",
            "paths[5].exact",
            "paths[6].prefix",
            "paths[7].exact",
            "paths[8].prefix",
            "paths[9].exact"
        ]
    );
    let errors = bad.validate().unwrap_err();
    assert!(errors.0[0].message.contains("`%C3%A9`"), "{}", errors.0[0]);
    assert!(errors.0[9].message.contains("`%C3%BC`"), "{}", errors.0[9]);

    let long = "/a".repeat(MAX_PATH_LEN / 2);
    let at = route(json!({"paths": [{"exact": long}]}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over =
        route(json!({"paths": [{"exact": format!("{long}b")}, {"prefix": format!("{long}b")}]}));
    assert_eq!(route_fields(&over), ["paths[0].exact", "paths[1].prefix"]);

    let deep = "/a".repeat(MAX_PREFIX_SEGMENTS);
    let at = route(json!({"paths": [{"prefix": deep}, {"prefix": format!("{deep}///")}]}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over =
        route(json!({"paths": [{"prefix": format!("{deep}/b")}, {"exact": format!("{deep}/b")}]}));
    assert_eq!(route_fields(&over), ["paths[0].prefix"]);
}

#[test]
fn rewrite_and_redirect_paths_are_request_paths() {
    let bad = route(json!({"rewrite": {"path": "/naïve"}}));
    assert_eq!(route_fields(&bad), ["rewrite.path"]);
    let bad = route(json!({"rewrite": {"prefix": "/a b"}}));
    assert_eq!(route_fields(&bad), ["rewrite.prefix"]);
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    let bad = route(json!({"backends": [], "redirect": {"path": long}}));
    assert_eq!(route_fields(&bad), ["redirect.path"]);
    let bad = route(json!({"backends": [], "redirect": {"prefix": "/x?y"}}));
    assert_eq!(route_fields(&bad), ["redirect.prefix"]);
}

#[test]
fn match_conditions() {
    let methods: Vec<String> = (0..MAX_METHODS_PER_ROUTE)
        .map(|i| format!("M{}", "A".repeat(i)))
        .collect();
    assert_eq!(
        route_fields(&route(json!({ "methods": methods }))),
        Vec::<String>::new()
    );
    let mut over = methods.clone();
    over.push("GET".into());
    assert_eq!(
        route_fields(&route(json!({ "methods": over }))),
        ["methods"]
    );
    let long = "A".repeat(MAX_METHOD_LEN);
    assert_eq!(
        route_fields(&route(json!({"methods": [long]}))),
        Vec::<String>::new()
    );
    let long = "A".repeat(MAX_METHOD_LEN + 1);
    assert_eq!(
        route_fields(&route(json!({"methods": [long]}))),
        ["methods[0]"]
    );

    let headers = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|i| json!({"name": format!("x-h{i}"), "present": true}))
            .collect()
    };
    let at = route(json!({"headers": headers(MAX_HEADER_MATCHES_PER_ROUTE)}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"headers": headers(MAX_HEADER_MATCHES_PER_ROUTE + 1)}));
    assert_eq!(route_fields(&over), ["headers"]);
    let query = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|i| json!({"name": format!("q{i}"), "present": true}))
            .collect()
    };
    let at = route(json!({"query": query(MAX_QUERY_MATCHES_PER_ROUTE)}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"query": query(MAX_QUERY_MATCHES_PER_ROUTE + 1)}));
    assert_eq!(route_fields(&over), ["query"]);

    let name = |len: usize| "n".repeat(len);
    let value = |len: usize| "v".repeat(len);
    let regex = |len: usize| "r".repeat(len);
    let at = route(json!({
        "headers": [{"name": name(MAX_HEADER_NAME_LEN), "exact": value(MAX_HEADER_VALUE_LEN)},
                    {"name": "x", "regex": regex(MAX_REGEX_LEN)}],
        "query": [{"name": name(MAX_HEADER_NAME_LEN), "exact": value(MAX_HEADER_VALUE_LEN)},
                  {"name": "q", "regex": regex(MAX_REGEX_LEN)}]
    }));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({
        "headers": [{"name": name(MAX_HEADER_NAME_LEN + 1),
                     "exact": value(MAX_HEADER_VALUE_LEN + 1)},
                    {"name": "x", "regex": regex(MAX_REGEX_LEN + 1)}],
        "query": [{"name": name(MAX_HEADER_NAME_LEN + 1), "exact": value(MAX_HEADER_VALUE_LEN + 1)},
                  {"name": "q", "regex": regex(MAX_REGEX_LEN + 1)}]
    }));
    assert_eq!(
        route_fields(&over),
        [
            "headers[0].name",
            "headers[0].exact",
            "headers[1].regex",
            "query[0].name",
            "query[0].exact",
            "query[1].regex"
        ]
    );
}

#[test]
fn route_actions() {
    let backends = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|i| json!({"upstream": format!("u{i}")}))
            .collect()
    };
    let at = route(json!({"backends": backends(MAX_BACKENDS_PER_ROUTE)}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"backends": backends(MAX_BACKENDS_PER_ROUTE + 1)}));
    assert_eq!(route_fields(&over), ["backends"]);
    let named = |len: usize| {
        route(json!({
            "backends": [{"upstream": "a".repeat(len)}, {"upstream": "b"}],
            "mirror": {"upstream": "m".repeat(len)}
        }))
    };
    assert_eq!(route_fields(&named(MAX_NAME_LEN)), Vec::<String>::new());
    assert_eq!(
        route_fields(&named(MAX_NAME_LEN + 1)),
        ["backends[0].upstream", "mirror.upstream"]
    );

    let edits = |count: usize, len: usize| {
        let names = texts(count, len);
        let pairs: serde_json::Map<String, Value> =
            names.iter().map(|n| (n.clone(), json!("1"))).collect();
        json!({"add": pairs, "set": pairs, "remove": names})
    };
    let at = route(json!({
        "request_headers": edits(MAX_HEADER_EDITS, MAX_HEADER_NAME_LEN),
        "response_headers": edits(MAX_HEADER_EDITS, 8)
    }));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    let over = route(json!({"request_headers": edits(MAX_HEADER_EDITS + 1, 8)}));
    assert_eq!(
        route_fields(&over),
        [
            "request_headers.add",
            "request_headers.set",
            "request_headers.remove"
        ]
    );
    let long_name = route(json!({"response_headers": edits(1, MAX_HEADER_NAME_LEN + 1)}));
    assert_eq!(
        route_fields(&long_name),
        [
            "response_headers.add",
            "response_headers.set",
            "response_headers.remove[0]"
        ]
    );
    let value = |len: usize| route(json!({"request_headers": {"set": {"x-a": "v".repeat(len)}}}));
    assert_eq!(
        route_fields(&value(MAX_HEADER_VALUE_LEN)),
        Vec::<String>::new()
    );
    assert_eq!(
        route_fields(&value(MAX_HEADER_VALUE_LEN + 1)),
        ["request_headers.set.x-a"]
    );

    let sticky = |key: &str, len: usize| route(json!({"sticky": {key: "s".repeat(len)}}));
    for key in ["header", "cookie"] {
        assert_eq!(
            route_fields(&sticky(key, MAX_HEADER_NAME_LEN)),
            Vec::<String>::new()
        );
        assert_eq!(
            route_fields(&sticky(key, MAX_HEADER_NAME_LEN + 1)),
            [format!("sticky.{key}")]
        );
    }

    // The longest host name with a port written with leading zeros up to the bound.
    let label = "a".repeat(63);
    let host = format!("{label}.{label}.{label}.{}", "a".repeat(61));
    assert_eq!(host.len(), MAX_HOST_LEN);
    let rewrite = |port: &str| route(json!({"host_rewrite": format!("{host}:{port}")}));
    assert_eq!(route_fields(&rewrite("000080")), Vec::<String>::new());
    assert_eq!(route_fields(&rewrite("0000080")), ["host_rewrite"]);

    let body = |len: usize| {
        route(json!({"backends": [], "direct_response": {"status": 200, "body": "b".repeat(len)}}))
    };
    assert_eq!(route_fields(&body(MAX_BODY_LEN)), Vec::<String>::new());
    assert_eq!(
        route_fields(&body(MAX_BODY_LEN + 1)),
        ["direct_response.body"]
    );

    let retries =
        |attempts: u32, on: Value| route(json!({"retries": {"attempts": attempts, "on": on}}));
    let every = json!(["connect_failure", "reset", "timeout", "502", "503", "504"]);
    assert_eq!(
        route_fields(&retries(MAX_RETRY_ATTEMPTS, every)),
        Vec::<String>::new()
    );
    assert_eq!(
        route_fields(&retries(
            MAX_RETRY_ATTEMPTS + 1,
            json!(["reset", "502", "reset"])
        )),
        ["retries.attempts", "retries.on[2]"]
    );
}

#[test]
fn tags() {
    let tags = |count: usize, len: usize| json!({"tags": texts(count, len)});
    assert_eq!(
        route_fields(&route(tags(MAX_TAGS, MAX_TAG_LEN))),
        Vec::<String>::new()
    );
    assert_eq!(route_fields(&route(tags(MAX_TAGS + 1, 8))), ["tags"]);
    assert_eq!(route_fields(&route(tags(1, MAX_TAG_LEN + 1))), ["tags[0]"]);
    assert_eq!(
        upstream_fields(&upstream(tags(MAX_TAGS, MAX_TAG_LEN))),
        Vec::<String>::new()
    );
    assert_eq!(upstream_fields(&upstream(tags(MAX_TAGS + 1, 8))), ["tags"]);
}

#[test]
fn upstream_targets() {
    let targets = |count: usize| -> Vec<Value> {
        (0..count)
            .map(|i| json!({"address": format!("10.0.{}.{}:80", i / 256, i % 256)}))
            .collect()
    };
    let at = upstream(json!({"targets": targets(MAX_TARGETS_PER_UPSTREAM)}));
    assert_eq!(upstream_fields(&at), Vec::<String>::new());
    let over = upstream(json!({"targets": targets(MAX_TARGETS_PER_UPSTREAM + 1)}));
    assert_eq!(upstream_fields(&over), ["targets"]);

    let label = "a".repeat(63);
    let host = format!("{label}.{label}.{label}.{}", "a".repeat(61));
    let address =
        |port: &str| upstream(json!({"targets": [{"address": format!("{host}:{port}")}]}));
    assert_eq!(upstream_fields(&address("+00080")), Vec::<String>::new());
    assert_eq!(upstream_fields(&address("+000080")), ["targets[0].address"]);
    assert_eq!(
        upstream_fields(&address(&"0".repeat(100_000))),
        ["targets[0].address"]
    );
}

#[test]
fn health_checks() {
    let active = |check: Value| upstream(json!({"health_check": {"active": check}}));
    let statuses = |count: usize| -> Vec<u16> { (200..).take(count).collect() };
    let at = active(json!({"expected_status": statuses(MAX_EXPECTED_STATUSES)}));
    assert_eq!(upstream_fields(&at), Vec::<String>::new());
    let over = active(json!({"expected_status": statuses(MAX_EXPECTED_STATUSES + 1)}));
    assert_eq!(
        upstream_fields(&over),
        ["health_check.active.expected_status"]
    );

    let long = format!("/health?{}", "a".repeat(MAX_PATH_LEN - 8));
    assert_eq!(long.len(), MAX_PATH_LEN);
    assert_eq!(
        upstream_fields(&active(json!({"path": long}))),
        Vec::<String>::new()
    );
    let over = active(json!({"path": format!("{long}a")}));
    assert_eq!(upstream_fields(&over), ["health_check.active.path"]);
    let message = &over.validate().unwrap_err().0[0].message;
    assert_eq!(message, &format!("must be at most {MAX_PATH_LEN} bytes"));
    for bad in ["/santé", "/a b", "/h#x", "health", "/h?a b", "/%", ""] {
        assert_eq!(
            upstream_fields(&active(json!({"path": bad}))),
            ["health_check.active.path"],
            "{bad:?}"
        );
    }
    for ok in ["/", "/healthz", "/status?full=1&format=json", "/h%C3%A9"] {
        assert_eq!(
            upstream_fields(&active(json!({"path": ok}))),
            Vec::<String>::new(),
            "{ok}"
        );
    }
}

#[test]
fn upstream_names_and_tls() {
    let hash = |key: &str, len: usize| {
        upstream(json!({"balance": "consistent_hash", "hash_on": {key: "k".repeat(len)}}))
    };
    for key in ["header", "cookie"] {
        assert_eq!(
            upstream_fields(&hash(key, MAX_HEADER_NAME_LEN)),
            Vec::<String>::new()
        );
        assert_eq!(
            upstream_fields(&hash(key, MAX_HEADER_NAME_LEN + 1)),
            [format!("hash_on.{key}")]
        );
    }
    let ca = upstream(json!({"tls": {"ca": "x".repeat(MAX_CA_PEM_LEN + 1)}}));
    assert_eq!(upstream_fields(&ca), ["tls.ca"]);
    let message = &ca.validate().unwrap_err().0[0].message;
    assert_eq!(message, &format!("must be at most {MAX_CA_PEM_LEN} bytes"));
}

#[test]
fn upgrade_protocols() {
    let at = route(json!({"upgrades": ["example-binary/1", "tls", "my.proto/2.0"]}));
    assert_eq!(route_fields(&at), Vec::<String>::new());
    for bad in ["h2c", "H2C/1", "websocket", "", "a b", "a/", "/1", "a/b/c"] {
        let over = route(json!({ "upgrades": [bad] }));
        assert_eq!(route_fields(&over), ["upgrades[0]"], "{bad:?}");
    }
    let many: Vec<String> = (0..=MAX_UPGRADES_PER_ROUTE)
        .map(|i| format!("p{i}"))
        .collect();
    assert_eq!(
        route_fields(&route(json!({ "upgrades": many }))),
        ["upgrades"]
    );
}
