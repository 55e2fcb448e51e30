//! The configuration the benchmark loads and the one-route changes it makes.
//!
//! The shape follows what an API gateway in front of many services holds: 50 upstreams with two
//! targets each; every route has a name, a tag naming its team, one host (every third also a
//! wildcard for the service's subdomains), a prefix path of its own and one backend. Ten
//! routes share a host, as the endpoints of one service do. The targets are loopback ports
//! where nothing listens: the benchmark sends no traffic through the workers, so nothing
//! connects to them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const UPSTREAMS: usize = 50;
const TEAMS: usize = 20;
const ROUTES_PER_HOST: usize = 10;

pub fn route_name(index: usize) -> String {
    format!("route-{index}")
}

/// Route `index`; `version` 0 is the one loaded, each later version moves its path.
pub fn route(index: usize, version: u64) -> Value {
    let service = index / ROUTES_PER_HOST;
    let mut hosts = vec![format!("svc-{service}.example.com")];
    if index.is_multiple_of(3) {
        hosts.push(format!("*.svc-{service}.example.com"));
    }
    let prefix = if version == 0 {
        format!("/api/{index}")
    } else {
        format!("/api/{index}/v{version}")
    };
    json!({
        "name": route_name(index),
        "tags": [format!("team-{}", index % TEAMS)],
        "hosts": hosts,
        "paths": [{"prefix": prefix}],
        "backends": [{"upstream": format!("upstream-{}", index % UPSTREAMS)}],
    })
}

pub fn upstreams() -> Vec<Value> {
    (0..UPSTREAMS)
        .map(|u| {
            let port = 20_000 + 2 * u;
            json!({
                "name": format!("upstream-{u}"),
                "tags": [format!("team-{}", u % TEAMS)],
                "targets": [
                    {"address": format!("127.0.0.1:{port}")},
                    {"address": format!("127.0.0.1:{}", port + 1)},
                ],
            })
        })
        .collect()
}

/// The `PUT /v1/config` document with the upstreams and routes `0..routes`.
pub fn config(routes: usize) -> Value {
    json!({
        "upstreams": upstreams(),
        "routes": (0..routes).map(|i| route(i, 0)).collect::<Vec<_>>(),
    })
}

/// Hands out one-route changes: each a route and a version never used before, so that every
/// write really changes the config and makes a revision. Consecutive changes go to different
/// routes, so concurrent writers never write the same one.
#[derive(Debug)]
pub struct Changes {
    routes: usize,
    next: AtomicU64,
}

pub struct Change {
    pub name: String,
    pub body: Vec<u8>,
}

impl Changes {
    pub fn new(routes: usize) -> Changes {
        Changes {
            routes: routes.max(1),
            next: AtomicU64::new(1),
        }
    }

    pub fn next(&self) -> Change {
        let version = self.next.fetch_add(1, Ordering::Relaxed);
        let index = usize::try_from(version).unwrap_or(usize::MAX) % self.routes;
        Change {
            name: route_name(index),
            body: route(index, version).to_string().into_bytes(),
        }
    }
}
