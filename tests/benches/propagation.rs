//! Config propagation benchmark: a control plane on PostgreSQL with 10,000 routes, 20 workers on
//! loopback, one route changed at a time. Reports the time from the admin API's 2xx until every
//! worker serves the change (p50/p99), and the bytes pushed per change against a full snapshot.
//!
//! Each worker is probed with a request to the changed route every `PROPAGATION_POLL_MS`
//! (default 5): probing much faster would spend the CPU the workers need to apply the change,
//! and the probe interval bounds how much a reported time can exceed the real one.
//!
//! Run: `cargo bench -p gateway-tests --bench propagation` (PostgreSQL as for the tests;
//! `PROPAGATION_ROUTES`, `PROPAGATION_WORKERS`, `PROPAGATION_CHANGES` override the sizes).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gateway_tests::database::TestDatabase;
use gateway_tests::http::{Admin, metric, metrics_page, send};
use gateway_tests::topology::{ControlPlane, Worker, WorkerOptions};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn push_bytes(admin: &Admin) -> (f64, f64) {
    let page = metrics_page(&admin.client, &format!("{}/metrics", admin.url))
        .await
        .unwrap();
    (
        metric(&page, "config_push_bytes_sum"),
        metric(&page, "config_push_bytes_count"),
    )
}

#[tokio::main]
async fn main() {
    let routes = setting("PROPAGATION_ROUTES", 10_000);
    let workers = setting("PROPAGATION_WORKERS", 20);
    let changes = setting("PROPAGATION_CHANGES", 50);
    let poll = Duration::from_millis(setting("PROPAGATION_POLL_MS", 5) as u64);

    let database = TestDatabase::create().await;
    let control_plane = ControlPlane::start(Some(&database.url), None);
    let admin = Admin::new(&control_plane.admin_url());
    let backend = EchoServer::start("backend").await;

    let document = json!({
        "upstreams": [{"name": "backend", "targets": [{"address": backend.address()}]}],
        "routes": (0..routes).map(|i| json!({
            "name": format!("route-{i}"),
            "hosts": [format!("svc-{}.example.com", i % 100)],
            "paths": [{"prefix": format!("/api/{i}")}],
            "backends": [{"upstream": "backend"}],
        })).collect::<Vec<_>>(),
    });
    let started = Instant::now();
    let reply = admin.put("/v1/config", &document).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    println!(
        "loaded {routes} routes in one revision: {:?}",
        started.elapsed()
    );

    let workers: Vec<Worker> = (0..workers)
        .map(|i| {
            Worker::start_with(WorkerOptions::new(
                &format!("bench-{i}"),
                &control_plane.sync_url(),
            ))
        })
        .collect();
    let client = admin.client.clone();
    for worker in &workers {
        loop {
            let ready = send(client.get(worker.status_url("/readyz")))
                .await
                .unwrap();
            if ready.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (full_bytes, full_pushes) = push_bytes(&admin).await;
    let full_push = full_bytes / full_pushes.max(1.0);
    println!(
        "{} workers ready; full snapshot push: {:.0} bytes",
        workers.len(),
        full_push
    );

    let mut latencies = Vec::with_capacity(changes);
    let (bytes_before, pushes_before) = push_bytes(&admin).await;
    for change in 0..changes {
        let i = change * 7 % routes;
        let path = format!("/moved/{change}");
        let route = json!({
            "name": format!("route-{i}"),
            "paths": [{"prefix": path}],
            "backends": [{"upstream": "backend"}],
        });
        let reply = admin.put(&format!("/v1/routes/route-{i}"), &route).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let committed = Instant::now();
        let polls = workers.iter().map(|worker| {
            let url = worker.url(&path);
            let client = client.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let reply = send(client.get(&url)).await.unwrap();
                    if reply.status == 200 {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "change never arrived: {}",
                        reply.text
                    );
                    tokio::time::sleep(poll).await;
                }
            }
        });
        futures_join_all(polls).await;
        latencies.push(committed.elapsed());
    }
    let (bytes_after, pushes_after) = push_bytes(&admin).await;
    latencies.sort();
    let per_push = (bytes_after - bytes_before) / (pushes_after - pushes_before).max(1.0);
    println!();
    println!(
        "| routes | workers | changes | probe every | p50 until all serve | p99 until all serve | bytes per push (change) | bytes per full push |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {routes} | {} | {changes} | {} ms | {:.1} ms | {:.1} ms | {per_push:.0} | {full_push:.0} |",
        workers.len(),
        poll.as_millis(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
}

/// Waits for every future; the polls are independent, so they run concurrently.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}
