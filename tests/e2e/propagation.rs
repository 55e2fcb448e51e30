//! A route created through the admin API reaches every worker and balances over every target.

use std::time::Duration;

use gateway_tests::cluster::Cluster;
use gateway_tests::http::send;
use gateway_tests::upstream::EchoServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_route_is_served_by_every_worker_and_alternates_over_targets() {
    let cluster = Cluster::start(2).await;
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;

    let upstream =
        json!({"name": "echo", "targets": [{"address": a.address()}, {"address": b.address()}]});
    let reply = cluster.admin.post("/v1/upstreams", &upstream).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let route =
        json!({"name": "echo", "paths": [{"prefix": "/echo"}], "backends": [{"upstream": "echo"}]});
    let reply = cluster.admin.post("/v1/routes", &route).await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    // The promise: served by both workers within 2 s of the commit.
    cluster
        .wait_served("/echo/hello", 200, None, Duration::from_secs(2))
        .await;

    for worker in &cluster.workers {
        let mut servers = Vec::new();
        for _ in 0..10 {
            let reply = send(cluster.client.get(worker.url("/echo/hello")))
                .await
                .unwrap();
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.body["path"], "/echo/hello");
            servers.push(reply.server().to_owned());
        }
        for pair in servers.windows(2) {
            assert_ne!(pair[0], pair[1], "round robin must alternate: {servers:?}");
        }
    }

    // Paths are segment-aware and other paths have no route.
    for worker in &cluster.workers {
        let reply = send(cluster.client.get(worker.url("/echoes")))
            .await
            .unwrap();
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.error_code(), "no_route");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_and_strip_prefix() {
    let cluster = Cluster::start(1).await;
    let a = EchoServer::start("a").await;
    let upstream = json!({"name": "api", "targets": [{"address": a.address()}]});
    assert_eq!(
        cluster.admin.post("/v1/upstreams", &upstream).await.status,
        201
    );
    let route = json!({
        "name": "api", "hosts": ["api.example.com", "*.api.test"],
        "paths": [{"prefix": "/api"}], "strip_prefix": true,
        "backends": [{"upstream": "api"}]
    });
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);

    let worker = &cluster.workers[0];
    let request = || {
        cluster
            .client
            .get(worker.url("/api/users?page=2"))
            .header("host", "API.example.com:8443")
            .header("connection", "x-secret")
            .header("x-secret", "hop-by-hop")
            .header("x-forwarded-for", "203.0.113.9")
    };
    let reply =
        gateway_tests::eventually("route served", gateway_tests::cluster::CONVERGE, || async {
            let reply = send(request()).await?;
            if reply.status == 200 {
                Ok(reply)
            } else {
                Err(reply.text)
            }
        })
        .await;
    let headers = &reply.body["headers"];
    assert_eq!(reply.body["path"], "/users?page=2");
    assert!(
        headers.get("x-secret").is_none(),
        "a header named in Connection is hop-by-hop: {headers}"
    );
    assert!(headers.get("connection").is_none() || headers["connection"][0] == "keep-alive");
    // The client is not a trusted proxy, so its X-Forwarded-For is replaced, not extended.
    assert_eq!(headers["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(headers["x-forwarded-host"], json!(["API.example.com:8443"]));
    assert_eq!(headers["x-forwarded-proto"], json!(["http"]));
    assert!(
        headers["via"][0].as_str().unwrap().contains("gateway"),
        "{headers}"
    );
    assert_eq!(headers["host"], json!([a.address()]));
    assert!(reply.header("via").unwrap_or("").contains("gateway"));

    let wildcard = send(
        cluster
            .client
            .get(worker.url("/api"))
            .header("host", "eu.api.test"),
    )
    .await
    .unwrap();
    assert_eq!(wildcard.status, 200, "{}", wildcard.text);
    assert_eq!(wildcard.body["path"], "/");
    let other_host = send(
        cluster
            .client
            .get(worker.url("/api"))
            .header("host", "api.test"),
    )
    .await
    .unwrap();
    assert_eq!(other_host.status, 404);
}
