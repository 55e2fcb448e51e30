//! PostgreSQL goes away: traffic is untouched, writes get 503, reads of the last state still
//! answer, and everything recovers by itself when the database returns.

use std::net::SocketAddr;

use gateway_tests::cluster::CONVERGE;
use gateway_tests::database::TestDatabase;
use gateway_tests::eventually;
use gateway_tests::fault::FaultProxy;
use gateway_tests::http::{Admin, send};
use gateway_tests::topology::{ControlPlane, Worker};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_blocks_writes_only_and_heals_by_itself() {
    let database = TestDatabase::create().await;
    let server: SocketAddr = database.host_port().parse().unwrap();
    let proxy = FaultProxy::start(server).await;
    let url = database
        .url
        .replacen(&database.host_port(), &proxy.addr.to_string(), 1);
    let control_plane = ControlPlane::start(Some(&url), None);
    let admin = Admin::new(&control_plane.admin_url());
    let worker = Worker::start(&control_plane.sync_url(), "outage-worker");
    let a = EchoServer::start("a").await;
    let upstream = json!({"name": "svc", "targets": [{"address": a.address()}]});
    assert_eq!(admin.post("/v1/upstreams", &upstream).await.status, 201);
    let route =
        json!({"name": "svc", "paths": [{"prefix": "/svc"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(admin.post("/v1/routes", &route).await.status, 201);
    let client = admin.client.clone();
    eventually("route served", CONVERGE, || async {
        let reply = send(client.get(worker.url("/svc"))).await?;
        if reply.status == 200 {
            Ok(())
        } else {
            Err(reply.text)
        }
    })
    .await;

    proxy.cut();
    let another = json!({"name": "other", "paths": [{"prefix": "/other"}], "backends": [{"upstream": "svc"}]});
    let refused = admin.post("/v1/routes", &another).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.error_code(), "database_unavailable");
    let ready = admin.try_get("/readyz").await.unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text);
    // Reads of the last state still answer, from memory.
    let config = admin.get("/v1/config").await;
    assert_eq!(config.status, 200, "{}", config.text);
    assert_eq!(config.body["routes"][0]["name"], "svc");
    let route_now = admin.get("/v1/routes/svc").await;
    assert_eq!(route_now.status, 200, "{}", route_now.text);
    // Traffic does not notice.
    for _ in 0..20 {
        let reply = send(client.get(worker.url("/svc"))).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    proxy.restore();
    let created = eventually("writes work again", CONVERGE, || async {
        let request = client
            .post(format!("{}/v1/routes", admin.url))
            .body(another.to_string());
        let reply = send(request).await?;
        if reply.status == 201 {
            Ok(reply)
        } else {
            Err(reply.text)
        }
    })
    .await;
    assert_eq!(created.header("x-gateway-revision"), Some("3"));
    eventually("the new route reaches the worker", CONVERGE, || async {
        let reply = send(client.get(worker.url("/other"))).await?;
        if reply.status == 200 {
            Ok(())
        } else {
            Err(reply.text)
        }
    })
    .await;
    assert_eq!(admin.try_get("/readyz").await.unwrap().status, 200);
}
