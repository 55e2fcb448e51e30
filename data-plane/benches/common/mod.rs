//! The route mix shared by the data-plane benchmarks.

use gateway_config::{Backend, Config, HeaderMatch, PathMatch, Route};

/// A realistic mix: one host per 100 routes (one in ten of them a wildcard), mostly prefixes,
/// some exact paths, 2% regexes, 5% with a header condition, a few with methods.
pub fn config(routes: usize) -> Config {
    let mut config = Config::default();
    for i in 0..routes {
        let host = i / 100;
        let hosts = if host % 10 == 9 {
            vec![format!("*.w{host}.example.com")]
        } else {
            vec![format!("h{host}.example.com")]
        };
        let paths = match i % 50 {
            0 => vec![PathMatch::Regex(format!("/svc{i}/items/[0-9]+"))],
            1 => vec![PathMatch::Regex(format!("/re{i}/[a-z]+/v[0-9]"))],
            2..=9 => vec![PathMatch::Exact(format!("/svc{i}/health"))],
            _ => vec![PathMatch::Prefix(format!("/svc{i}/api"))],
        };
        let headers = if i % 20 == 3 {
            vec![HeaderMatch {
                name: "x-env".into(),
                exact: Some("canary".into()),
                ..Default::default()
            }]
        } else {
            vec![]
        };
        let methods = if i % 7 == 0 {
            vec!["GET".into()]
        } else {
            vec![]
        };
        let name = format!("route-{i:06}");
        config.routes.insert(
            name.clone(),
            Route {
                name,
                hosts,
                paths,
                methods,
                headers,
                backends: vec![Backend {
                    upstream: "u".into(),
                    weight: 1,
                }],
                created_at_unix_ms: i as i64,
                ..Default::default()
            },
        );
    }
    config
}
