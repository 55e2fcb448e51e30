//! Route matching cost at 100, 10,000 and 100,000 routes: the time of one lookup (a request that
//! meets exact hosts, wildcards, prefixes, regexes and header conditions) and the time to compile
//! the whole table. Run with `cargo bench -p data-plane --bench routing`.

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::config;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use data_plane::{RequestInfo, RouteTable};
use http::{HeaderMap, HeaderValue, Method};

fn bench(c: &mut Criterion) {
    let mut lookups = c.benchmark_group("lookup");
    lookups.measurement_time(Duration::from_secs(2));
    lookups.warm_up_time(Duration::from_millis(500));
    for routes in [100usize, 10_000, 100_000] {
        let table = RouteTable::build(&config(routes), |_| Some(0)).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert("x-env", HeaderValue::from_static("canary"));
        let mid = routes / 2;
        let host = format!("h{}.example.com", mid / 100);
        let prefix_path = format!("/svc{}/api/users/42", mid - mid % 50 + 13);
        let regex_path = format!("/svc{}/items/123", mid - mid % 50);
        let wild_host = format!("x.w{}.example.com", (mid / 1000) * 10 + 9);
        let wild_path = format!("/svc{}/api", ((mid / 1000) * 10 + 9) * 100 + 20);
        let cases = [
            ("prefix", host.as_str(), prefix_path.as_str()),
            ("regex", host.as_str(), regex_path.as_str()),
            ("wildcard", wild_host.as_str(), wild_path.as_str()),
            ("miss", host.as_str(), "/nothing/here"),
        ];
        for (kind, host, path) in cases {
            // Below 1,000 routes there is no wildcard host.
            if kind == "wildcard" && routes < 1_000 {
                continue;
            }
            let request = RequestInfo {
                host: Some(host),
                path,
                query: None,
                method: &Method::GET,
                headers: &headers,
            };
            assert!(
                kind == "miss" || table.lookup(&request).is_some(),
                "{kind} {host}{path} must match"
            );
            lookups.bench_with_input(BenchmarkId::new(kind, routes), &request, |b, request| {
                b.iter(|| black_box(table.lookup(black_box(request)).is_some()))
            });
        }
    }
    lookups.finish();

    let mut compile = c.benchmark_group("compile");
    compile.sample_size(10);
    compile.measurement_time(Duration::from_secs(5));
    compile.warm_up_time(Duration::from_millis(100));
    for routes in [100usize, 10_000, 100_000] {
        let config = config(routes);
        compile.bench_with_input(BenchmarkId::from_parameter(routes), &config, |b, config| {
            b.iter(|| RouteTable::build(config, |_| Some(0)).map(|t| t.len()))
        });
    }
    compile.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
