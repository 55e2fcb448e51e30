//! A control plane restarted on the same database is found again by its workers.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::{send, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_and_converge_after_a_control_plane_restart() {
    let mut cluster = Cluster::start(2).await;
    let a = EchoServer::start("a").await;
    let upstream = json!({"name": "svc", "targets": [{"address": a.address()}]});
    assert_eq!(
        cluster.admin.post("/v1/upstreams", &upstream).await.status,
        201
    );
    let route =
        json!({"name": "one", "paths": [{"prefix": "/one"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    cluster.wait_served("/one", 200, Some("a"), CONVERGE).await;

    cluster.control_plane.kill();
    // Without a control plane the workers keep serving their last config.
    for worker in &cluster.workers {
        let reply = send(cluster.client.get(worker.url("/one"))).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(worker_revision(&cluster.client, worker).await.unwrap(), 2);
    }

    cluster.control_plane.restart();
    let admin = &cluster.admin;
    eventually("both workers reconnected and synced", CONVERGE, || async {
        let nodes = admin.try_get("/v1/nodes").await?;
        for worker in &cluster.workers {
            let node = nodes.body["items"]
                .as_array()
                .and_then(|items| items.iter().find(|n| n["id"] == worker.node_id.as_str()))
                .ok_or_else(|| format!("{} not listed: {}", worker.node_id, nodes.text))?;
            if node["status"] != "SYNCED" || node["connected"] != true {
                return Err(node.to_string());
            }
        }
        Ok(())
    })
    .await;

    // The restarted control plane pushes new changes to the reconnected workers.
    let route =
        json!({"name": "two", "paths": [{"prefix": "/two"}], "backends": [{"upstream": "svc"}]});
    let reply = cluster.admin.post("/v1/routes", &route).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    cluster.wait_served("/two", 200, Some("a"), CONVERGE).await;
    for worker in &cluster.workers {
        assert_eq!(worker_revision(&cluster.client, worker).await.unwrap(), 3);
    }
}
