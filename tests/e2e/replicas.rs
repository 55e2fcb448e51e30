//! Several control-plane replicas on one PostgreSQL database: a write to any reaches every worker,
//! and workers of a lost replica move to another without a full re-push.

use gateway_tests::cluster::CONVERGE;
use gateway_tests::database::TestDatabase;
use gateway_tests::eventually;
use gateway_tests::http::{Admin, metric, metrics_page, send};
use gateway_tests::topology::{ControlPlane, Worker, WorkerOptions};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

async fn wait_all_served(client: &reqwest::Client, workers: &[Worker], path: &str, server: &str) {
    for worker in workers {
        eventually(
            &format!("{} serves {path}", worker.node_id),
            CONVERGE,
            || async {
                let reply = send(client.get(worker.url(path))).await?;
                if reply.status == 200 && reply.server() == server {
                    Ok(())
                } else {
                    Err(reply.text)
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_any_replica_reach_every_worker_and_failover_needs_no_full_push() {
    let database = TestDatabase::create().await;
    let mut first = ControlPlane::start(Some(&database.url), None);
    let second = ControlPlane::start(Some(&database.url), None);
    let (one, two) = (
        Admin::new(&first.admin_url()),
        Admin::new(&second.admin_url()),
    );
    let urls = [first.sync_url(), second.sync_url()];
    let workers: Vec<Worker> = (0..4)
        .map(|i| {
            let mut options = WorkerOptions::new(&format!("replica-worker-{i}"), "");
            // Half list the first replica first, half the second: workers spread over both.
            options.control_planes = if i % 2 == 0 {
                vec![urls[0].clone(), urls[1].clone()]
            } else {
                vec![urls[1].clone(), urls[0].clone()]
            };
            Worker::start_with(options)
        })
        .collect();
    let client = one.client.clone();
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;

    let upstream = json!({"name": "svc", "targets": [{"address": a.address()}]});
    assert_eq!(one.post("/v1/upstreams", &upstream).await.status, 201);
    let route =
        json!({"name": "svc", "paths": [{"prefix": "/svc"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(two.post("/v1/routes", &route).await.status, 201);
    wait_all_served(&client, &workers, "/svc", "a").await;
    let moved = json!({"name": "svc", "targets": [{"address": b.address()}]});
    assert_eq!(one.put("/v1/upstreams/svc", &moved).await.status, 200);
    wait_all_served(&client, &workers, "/svc", "b").await;

    // Every replica reports every worker, whichever replica it is connected to.
    for admin in [&one, &two] {
        eventually("all workers synced in /v1/nodes", CONVERGE, || async {
            let nodes = admin.try_get("/v1/nodes").await?;
            let items = nodes.body["items"].as_array().cloned().unwrap_or_default();
            let synced = items
                .iter()
                .filter(|n| n["status"] == "SYNCED" && n["applied_revision"] == 3)
                .count();
            if synced == workers.len() {
                Ok(())
            } else {
                Err(nodes.text)
            }
        })
        .await;
    }

    let full_before = metric(
        &metrics_page(&client, &format!("{}/metrics", two.url))
            .await
            .unwrap(),
        "config_pushes_total{kind=\"full\"}",
    );
    first.kill();
    for worker in &workers {
        eventually(
            &format!("{} on the second replica", worker.node_id),
            CONVERGE,
            || async {
                let status = send(client.get(worker.status_url("/status"))).await?;
                let on_second = status.body["connected_to"]
                    .as_str()
                    .is_some_and(|u| u.trim_end_matches('/') == urls[1]);
                if on_second && status.body["control_plane_connected"] == true {
                    Ok(())
                } else {
                    Err(status.text)
                }
            },
        )
        .await;
    }
    let full_after = metric(
        &metrics_page(&client, &format!("{}/metrics", two.url))
            .await
            .unwrap(),
        "config_pushes_total{kind=\"full\"}",
    );
    assert_eq!(
        full_before, full_after,
        "workers that already serve the latest digest get no full push"
    );

    // New changes through the surviving replica reach everyone as deltas.
    let deltas_before = metric(
        &metrics_page(&client, &format!("{}/metrics", two.url))
            .await
            .unwrap(),
        "config_pushes_total{kind=\"delta\"}",
    );
    let route =
        json!({"name": "new", "paths": [{"prefix": "/new"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(two.post("/v1/routes", &route).await.status, 201);
    wait_all_served(&client, &workers, "/new", "b").await;
    let page = metrics_page(&client, &format!("{}/metrics", two.url))
        .await
        .unwrap();
    assert_eq!(
        metric(&page, "config_pushes_total{kind=\"full\"}"),
        full_after
    );
    assert!(
        metric(&page, "config_pushes_total{kind=\"delta\"}")
            >= deltas_before + workers.len() as f64,
        "{page}"
    );
    drop(workers);
}
