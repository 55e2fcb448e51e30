//! What a worker spends applying a one-route delta on top of 10,000 routes: the whole `prepare`
//! as the sync client runs it, some of its stages, and a full compile for comparison. Run with
//! `cargo bench -p data-plane --bench apply`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use data_plane::{Carryover, Compiled, ServedConfig, prepare};
use gateway_config::{Config, PathMatch, Target, Upstream, digest, resources_from_config};
use gateway_proto::v1;

const ROUTES: usize = 10_000;

fn served_config() -> Config {
    let mut config = common::config(ROUTES);
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
    config
}

/// The push the control plane sends when one route's path changes.
fn one_route_delta(served: &Config) -> (Config, v1::ConfigPush) {
    let mut next = served.clone();
    let name = format!("route-{:06}", ROUTES / 2);
    let mut route = next.routes[&name].clone();
    route.paths = vec![PathMatch::Prefix("/moved".into())];
    next.routes.insert(name.clone(), route.clone());
    let mut only_route = Config::default();
    only_route.routes.insert(name, route);
    let push = v1::ConfigPush {
        revision: 2,
        digest: digest(&next),
        base_revision: 1,
        upserts: resources_from_config(&only_route),
        ..Default::default()
    };
    (next, push)
}

fn bench(c: &mut Criterion) {
    let served = served_config();
    let carryover = Arc::new(Carryover::default());
    let current = Compiled::build(
        &carryover,
        1,
        digest(&served),
        ServedConfig::from_config(&served),
    )
    .expect("the mix compiles");
    let (next, push) = one_route_delta(&served);

    let mut stages = c.benchmark_group("apply_one_route_delta_10k");
    stages.sample_size(20);
    stages.measurement_time(Duration::from_secs(4));
    stages.warm_up_time(Duration::from_millis(300));
    stages.bench_function("prepare", |b| {
        b.iter(|| prepare(&carryover, Some(&current), black_box(push.clone())).is_ok())
    });
    let next_served = ServedConfig::from_config(&next);
    stages.bench_function("copy_served_config", |b| {
        b.iter(|| black_box(next_served.clone()))
    });
    stages.bench_function("digest", |b| b.iter(|| black_box(&next_served).digest()));
    stages.bench_function("cache_snapshot", |b| {
        b.iter(|| black_box(&next_served).encode_full_push(2, "d", 0).len())
    });
    // What the whole revision costs without a patch: a full push, or a change of upstream names.
    stages.bench_function("full_compile", |b| {
        b.iter(|| Compiled::build(&carryover, 2, String::new(), next_served.clone()).is_ok())
    });
    stages.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
