//! Config changes move traffic on every worker while clients keep their connections.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::http::KeptConnection;
use gateway_tests::upstream::EchoServer;
use serde_json::json;
use tokio::time::Instant;

/// Polls `path` over the kept connection until it answers `status` from `server`. A connection
/// error fails the test at once: the point is that the connection survives every change.
async fn wait_on(
    conn: &mut KeptConnection,
    path: &str,
    status: u16,
    server: Option<&str>,
) -> usize {
    let deadline = Instant::now() + CONVERGE;
    let mut requests = 0;
    loop {
        let reply = conn
            .get(path)
            .await
            .unwrap_or_else(|e| panic!("after {requests} requests: {e}"));
        requests += 1;
        if reply.status == status && server.is_none_or(|s| reply.server() == s) {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {} {} ",
            reply.status,
            reply.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_changes_move_traffic_without_resetting_keepalive_connections() {
    let cluster = Cluster::start(2).await;
    let blue = EchoServer::start("blue").await;
    let green = EchoServer::start("green").await;
    for (name, server) in [("blue", &blue), ("green", &green)] {
        let upstream = json!({"name": name, "targets": [{"address": server.address()}]});
        assert_eq!(
            cluster.admin.post("/v1/upstreams", &upstream).await.status,
            201
        );
    }
    let mut connections = Vec::new();
    for worker in &cluster.workers {
        connections.push(KeptConnection::open(worker.proxy_addr).await);
    }

    let route =
        json!({"name": "app", "paths": [{"prefix": "/v1"}], "backends": [{"upstream": "blue"}]});
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    for conn in &mut connections {
        wait_on(conn, "/v1/items", 200, Some("blue")).await;
    }

    // New path and new backend in one change.
    let changed =
        json!({"name": "app", "paths": [{"prefix": "/v2"}], "backends": [{"upstream": "green"}]});
    let reply = cluster.admin.put("/v1/routes/app", &changed).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for conn in &mut connections {
        wait_on(conn, "/v2/items", 200, Some("green")).await;
        assert_eq!(conn.get("/v1/items").await.unwrap().status, 404);
    }

    // A weighted split between both upstreams keeps both reachable.
    let split = json!({"name": "app", "paths": [{"prefix": "/v2"}],
                       "backends": [{"upstream": "blue", "weight": 1}, {"upstream": "green", "weight": 1}]});
    assert_eq!(
        cluster.admin.put("/v1/routes/app", &split).await.status,
        200
    );
    for conn in &mut connections {
        wait_on(conn, "/v2/items", 200, Some("blue")).await;
        wait_on(conn, "/v2/items", 200, Some("green")).await;
    }

    assert_eq!(cluster.admin.delete("/v1/routes/app").await.status, 204);
    for conn in &mut connections {
        wait_on(conn, "/v2/items", 404, None).await;
        let reply = conn.get("/v2/items").await.unwrap();
        assert_eq!(reply.body["error"]["code"], "no_route", "{}", reply.text);
    }
}
