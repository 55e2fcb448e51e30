//! Workers keep serving without a control plane, and restart from their cache while it is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::{send, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

/// Requests `path` on every worker in a loop until stopped (or 60 s pass); counts failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(client: &reqwest::Client, urls: Vec<String>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let tasks = urls
            .into_iter()
            .map(|url| {
                let (client, stop, ok, failed) =
                    (client.clone(), stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut errors = Vec::new();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                        match send(client.get(&url)).await {
                            Ok(reply) if reply.status == 200 => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(reply) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                errors.push(format!("{} {}", reply.status, reply.text));
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                errors.push(e);
                            }
                        }
                    }
                    errors
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut errors = Vec::new();
        for task in self.tasks {
            errors.extend(task.await.unwrap());
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            errors,
        )
    }
}

/// The cache writer rests up to 7.5 s between two writes.
const CACHE_WRITTEN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_serve_through_a_control_plane_outage_and_restart_from_cache() {
    let mut cluster = Cluster::start(2).await;
    let a = EchoServer::start("a").await;
    let upstream = json!({"name": "svc", "targets": [{"address": a.address()}]});
    assert_eq!(
        cluster.admin.post("/v1/upstreams", &upstream).await.status,
        201
    );
    let route =
        json!({"name": "svc", "paths": [{"prefix": "/svc"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    cluster.wait_served("/svc", 200, Some("a"), CONVERGE).await;

    // Kill the control plane under load: not one request fails.
    let load = Load::start(
        &cluster.client,
        cluster.workers.iter().map(|w| w.url("/svc")).collect(),
    );
    let ok = load.ok.clone();
    eventually("load is flowing", CONVERGE, || async {
        if ok.load(Ordering::SeqCst) > 20 {
            Ok(())
        } else {
            Err("warming up".into())
        }
    })
    .await;
    cluster.control_plane.kill();
    let before = ok.load(Ordering::SeqCst);
    eventually(
        "load keeps flowing without a control plane",
        CONVERGE,
        || async {
            if ok.load(Ordering::SeqCst) > before + 200 {
                Ok(())
            } else {
                Err("waiting".into())
            }
        },
    )
    .await;
    let (served, failed, errors) = load.finish().await;
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed: {errors:?}",
        served + failed
    );

    // A worker that crashes while no control plane answers restarts from its cache file, once
    // the file holds the revision it served (written a few seconds after the apply).
    let client = cluster.client.clone();
    let worker = &cluster.workers[0];
    eventually("the cache file holds revision 2", CACHE_WRITTEN, || async {
        let status = send(client.get(worker.status_url("/status"))).await?;
        if status.body["cached_revision"] == 2 {
            Ok(())
        } else {
            Err(status.text)
        }
    })
    .await;
    let worker = &mut cluster.workers[0];
    worker.restart();
    let client = cluster.client.clone();
    let worker = &cluster.workers[0];
    eventually(
        "restarted worker ready from its cache",
        CONVERGE,
        || async {
            let ready = send(client.get(worker.status_url("/readyz"))).await?;
            if ready.status == 200 {
                Ok(())
            } else {
                Err(ready.text)
            }
        },
    )
    .await;
    let status = send(client.get(worker.status_url("/status")))
        .await
        .unwrap();
    assert_eq!(status.body["source"], "cache", "{}", status.text);
    assert_eq!(status.body["applied_revision"], 2, "{}", status.text);
    assert_eq!(
        status.body["control_plane_connected"], false,
        "{}",
        status.text
    );
    let reply = send(client.get(worker.url("/svc"))).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);

    // The control plane comes back; everyone converges and takes new changes.
    cluster.control_plane.restart();
    let route =
        json!({"name": "more", "paths": [{"prefix": "/more"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    cluster.wait_served("/more", 200, Some("a"), CONVERGE).await;
    for worker in &cluster.workers {
        assert_eq!(worker_revision(&cluster.client, worker).await.unwrap(), 3);
        let status = send(cluster.client.get(worker.status_url("/status")))
            .await
            .unwrap();
        assert_eq!(status.body["source"], "control_plane", "{}", status.text);
    }

    // Two changes in a row: the second waits out the cache writer's rest, unless the worker
    // stops, which writes it at once. Restarted without a control plane, it serves revision 5.
    for name in ["four", "five"] {
        let route = json!({"name": name, "paths": [{"prefix": format!("/{name}")}],
                           "backends": [{"upstream": "svc"}]});
        assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    }
    cluster.wait_served("/five", 200, Some("a"), CONVERGE).await;
    cluster.control_plane.kill();
    let worker = &mut cluster.workers[1];
    worker.stop_and_start();
    let worker = &cluster.workers[1];
    let status = eventually(
        "the stopped worker restarts from its cache",
        CONVERGE,
        || async {
            let status = send(cluster.client.get(worker.status_url("/status"))).await?;
            if status.body["serving"] == true {
                Ok(status)
            } else {
                Err(status.text)
            }
        },
    )
    .await;
    assert_eq!(status.body["source"], "cache", "{}", status.text);
    assert_eq!(status.body["applied_revision"], 5, "{}", status.text);
    let reply = send(cluster.client.get(worker.url("/five"))).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
}
