//! The README's run set-up: a control plane on its embedded SQLite default plus a worker, no
//! Postgres involved, and the README's tour against it.

use gateway_tests::cluster::CONVERGE;
use gateway_tests::eventually;
use gateway_tests::http::{Admin, send};
use gateway_tests::topology::{ControlPlane, Worker, gatewayctl};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sqlite_default_runs_the_tour() {
    let dir = tempfile::tempdir().unwrap();
    let mut control_plane = ControlPlane::start(None, Some(dir.path()));
    assert!(
        dir.path().join("gateway.db").exists(),
        "the default database is ./gateway.db"
    );
    let worker = Worker::start(&control_plane.sync_url(), "tour-worker");
    let admin = Admin::new(&control_plane.admin_url());
    let backend = EchoServer::start("httpbin").await;

    // The tour, as the README writes it.
    let reply = admin
        .post(
            "/v1/upstreams",
            &json!({"name": "httpbin", "targets": [{"address": backend.address()}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let reply = admin
        .post(
            "/v1/routes",
            &json!({"name": "httpbin", "paths": [{"prefix": "/httpbin"}], "strip_prefix": true,
                    "backends": [{"upstream": "httpbin"}]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let client = &admin.client;
    let reply = eventually("the tour's route is served", CONVERGE, || async {
        let reply = send(client.get(worker.url("/httpbin/get"))).await?;
        if reply.status == 200 {
            Ok(reply)
        } else {
            Err(reply.text)
        }
    })
    .await;
    assert_eq!(reply.body["path"], "/get");

    let out = gatewayctl(
        &admin.url,
        &[
            "route",
            "create",
            "hello",
            "--path",
            "/hello",
            "--backend",
            "httpbin",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = gatewayctl(&admin.url, &["status"]).await;
    assert!(out.stdout.contains("tour-worker"), "{out:?}");
    let out = gatewayctl(&admin.url, &["revisions"]).await;
    assert!(out.stdout.contains("create route hello"), "{out:?}");

    // The SQLite store survives a restart.
    control_plane.restart();
    let admin = Admin::new(&control_plane.admin_url());
    assert_eq!(admin.revision_count().await, 3);
    assert_eq!(admin.get("/v1/routes/hello").await.status, 200);
}
