//! What applying a push costs as it grows: 40,000 routes with one host each, pushed as one delta
//! on top of a config without them and as a full push, and a one-route delta on top of 100,000
//! such routes. Each is the whole `prepare` the sync client runs (decode to the domain form,
//! validate, digest, compile), without the copy of the push. A delta must cost in proportion
//! to what it changes: one that touches many hosts should not cost more than the full push of
//! the same config. Run with `cargo bench -p data-plane --bench delta_scale`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use data_plane::{Carryover, Compiled, ServedConfig, prepare};
use gateway_config::{
    Backend, Config, PathMatch, Route, Target, Upstream, digest, resources_from_config,
};
use gateway_proto::v1;

/// A config of one upstream and `routes` routes named `route-<i>`, each on a host of its own.
fn one_host_routes(routes: usize) -> Config {
    let mut config = Config::default();
    config.upstreams.insert(
        "u".into(),
        Upstream {
            name: "u".into(),
            targets: vec![Target {
                address: "127.0.0.1:8080".into(),
                weight: 1,
            }],
            ..Default::default()
        },
    );
    for i in 0..routes {
        let name = format!("route-{i:06}");
        config.routes.insert(
            name.clone(),
            Route {
                name,
                hosts: vec![format!("h{i}.example.com")],
                paths: vec![PathMatch::Prefix("/".into())],
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

fn full_push(revision: u64, config: &Config) -> v1::ConfigPush {
    v1::ConfigPush {
        revision,
        digest: digest(config),
        base_revision: 0,
        upserts: resources_from_config(config),
        ..Default::default()
    }
}

/// The push that turns `base` (served at revision 1) into `next`, given only the routes that
/// `next` adds or changes.
fn delta(next: &Config, routes: impl Iterator<Item = Route>) -> v1::ConfigPush {
    let mut changed = Config::default();
    changed
        .routes
        .extend(routes.map(|route| (route.name.clone(), route)));
    v1::ConfigPush {
        revision: 2,
        digest: digest(next),
        base_revision: 1,
        upserts: resources_from_config(&changed),
        ..Default::default()
    }
}

fn compiled(carryover: &Arc<Carryover>, config: &Config) -> Compiled {
    Compiled::build(
        carryover,
        1,
        digest(config),
        ServedConfig::from_config(config),
    )
    .expect("the routes compile")
}

fn bench(c: &mut Criterion) {
    let carryover = Arc::new(Carryover::default());

    let mut group = c.benchmark_group("apply_40k_one_host_routes");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.warm_up_time(Duration::from_millis(500));
    let next = one_host_routes(40_000);
    let base = compiled(&carryover, &one_host_routes(0));
    let added = delta(&next, next.routes.values().cloned());
    group.bench_function("as_one_delta", |b| {
        b.iter_batched(
            || added.clone(),
            |push| assert!(prepare(&carryover, Some(&base), black_box(push)).is_ok()),
            BatchSize::LargeInput,
        )
    });
    let full = full_push(2, &next);
    group.bench_function("as_full_push", |b| {
        b.iter_batched(
            || full.clone(),
            |push| assert!(prepare(&carryover, Some(&base), black_box(push)).is_ok()),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("one_route_delta_100k_one_host_routes");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_millis(500));
    let served = one_host_routes(100_000);
    let current = compiled(&carryover, &served);
    let mut next = served.clone();
    let name = format!("route-{:06}", 50_000);
    let mut moved = next.routes[&name].clone();
    moved.paths = vec![PathMatch::Prefix("/moved".into())];
    next.routes.insert(name, moved.clone());
    let one = delta(&next, std::iter::once(moved));
    group.bench_function("prepare", |b| {
        b.iter_batched(
            || one.clone(),
            |push| assert!(prepare(&carryover, Some(&current), black_box(push)).is_ok()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
