//! Revision history: diff, dry run, optimistic concurrency and rollback, seen on every worker.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::send;
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

async fn digest_of(cluster: &Cluster, revision: u64) -> String {
    let reply = cluster
        .admin
        .get(&format!("/v1/revisions/{revision}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["digest"].as_str().unwrap().to_owned()
}

/// Waits until every worker serves exactly `revision` with `digest`.
async fn wait_workers_at(cluster: &Cluster, revision: u64, digest: &str) {
    for worker in &cluster.workers {
        eventually(
            &format!("{} at revision {revision}", worker.node_id),
            CONVERGE,
            || async {
                let status = send(cluster.client.get(worker.status_url("/status"))).await?;
                let at = status.body["applied_revision"].as_u64();
                if at == Some(revision) && status.body["applied_digest"] == digest {
                    Ok(())
                } else {
                    Err(status.text)
                }
            },
        )
        .await;
    }
}

fn change_summary(changes: &Value) -> Vec<(String, String, String)> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn summary(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(o, k, n)| ((*o).to_owned(), (*k).to_owned(), (*n).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_identical_config_on_every_worker() {
    let cluster = Cluster::start(2).await;
    let admin = &cluster.admin;
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    for (name, server) in [("a", &a), ("b", &b)] {
        let upstream = json!({"name": name, "targets": [{"address": server.address()}]});
        assert_eq!(admin.post("/v1/upstreams", &upstream).await.status, 201);
    }
    // Revision 3: /shop goes to a.
    let shop =
        json!({"name": "shop", "paths": [{"prefix": "/shop"}], "backends": [{"upstream": "a"}]});
    assert_eq!(admin.post("/v1/routes", &shop).await.status, 201);
    let config_at_3 = admin.get("/v1/revisions/3").await.body["config"].clone();
    // Revision 4: /shop goes to b; revision 5: a new route; revision 6: upstream a removed.
    let moved =
        json!({"name": "shop", "paths": [{"prefix": "/shop"}], "backends": [{"upstream": "b"}]});
    assert_eq!(admin.put("/v1/routes/shop", &moved).await.status, 200);
    let cart =
        json!({"name": "cart", "paths": [{"exact": "/cart"}], "backends": [{"upstream": "b"}]});
    assert_eq!(admin.post("/v1/routes", &cart).await.status, 201);
    assert_eq!(admin.delete("/v1/upstreams/a").await.status, 204);
    assert_eq!(admin.latest_revision().await, 6);
    cluster.wait_served("/shop", 200, Some("b"), CONVERGE).await;

    // The diff between two revisions names exactly what changed.
    let diff = admin.get("/v1/revisions/3/diff/4").await;
    assert_eq!(diff.status, 200, "{}", diff.text);
    assert_eq!(
        change_summary(&diff.body["changes"]),
        summary(&[("update", "route", "shop")])
    );
    assert_eq!(
        diff.body["changes"][0]["before"]["backends"][0]["upstream"],
        "a"
    );
    assert_eq!(
        diff.body["changes"][0]["after"]["backends"][0]["upstream"],
        "b"
    );

    // A dry run shows the rollback and stores nothing.
    let dry = admin
        .raw(
            "POST",
            "/v1/revisions/3/rollback?dry_run=true",
            String::new(),
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(
        change_summary(&dry.body["changes"]),
        summary(&[
            ("create", "upstream", "a"),
            ("delete", "route", "cart"),
            ("update", "route", "shop")
        ])
    );
    assert_eq!(admin.latest_revision().await, 6);

    // A stale If-Match is refused.
    let stale = admin
        .client
        .post(format!("{}/v1/revisions/3/rollback", admin.url))
        .header("if-match", "\"5\"");
    let stale = send(stale).await.unwrap();
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.error_code(), "precondition_failed");
    assert_eq!(admin.latest_revision().await, 6);

    let rollback = admin
        .client
        .post(format!("{}/v1/revisions/3/rollback", admin.url))
        .header("if-match", "6");
    let rollback = send(rollback).await.unwrap();
    assert_eq!(rollback.status, 200, "{}", rollback.text);
    assert_eq!(rollback.body["revision"], 7);
    assert_eq!(rollback.body["changed"], true);

    // Revision 7 is byte-for-byte revision 3: same document, same digest, on every worker.
    assert_eq!(
        admin.get("/v1/revisions/7").await.body["config"],
        config_at_3
    );
    let exported = admin.get("/v1/config").await;
    assert_eq!(exported.body, config_at_3);
    assert_eq!(exported.header("etag"), Some("\"7\""));
    let digest = digest_of(&cluster, 3).await;
    assert_eq!(digest_of(&cluster, 7).await, digest);
    wait_workers_at(&cluster, 7, &digest).await;
    cluster.wait_served("/shop", 200, Some("a"), CONVERGE).await;
    cluster.wait_served("/cart", 404, None, CONVERGE).await;

    // Rolling back to what is already there changes nothing.
    let again = admin
        .raw("POST", "/v1/revisions/7/rollback", String::new())
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["changed"], false);
    assert_eq!(admin.latest_revision().await, 7);

    let missing = admin.get("/v1/revisions/99").await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarative_apply_is_one_revision_or_nothing() {
    let cluster = Cluster::start(1).await;
    let admin = &cluster.admin;
    let a = EchoServer::start("a").await;
    let document = format!(
        "upstreams:\n  - name: web\n    targets:\n      - address: \"{}\"\nroutes:\n  - name: home\n    paths:\n      - prefix: /home\n    backends:\n      - upstream: web\n  - name: about\n    paths:\n      - exact: /about\n    backends:\n      - upstream: web\n",
        a.address()
    );
    let put = |body: String, query: &'static str| {
        let request = admin
            .client
            .put(format!("{}/v1/config{query}", admin.url))
            .header("content-type", "application/yaml")
            .body(body);
        async move { send(request).await.unwrap() }
    };

    let dry = put(document.clone(), "?dry_run=true").await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.body["changes"].as_array().unwrap().len(), 3);
    assert_eq!(admin.latest_revision().await, 0);

    let applied = put(document.clone(), "").await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.body["revision"], 1, "three entities, one revision");
    assert_eq!(applied.body["changed"], true);
    cluster
        .wait_served("/home/x", 200, Some("a"), CONVERGE)
        .await;
    cluster
        .wait_served("/about", 200, Some("a"), CONVERGE)
        .await;

    let again = put(document.clone(), "").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["changed"], false);
    assert_eq!(admin.latest_revision().await, 1);

    // Every error is listed and nothing is applied.
    let broken = json!({
        "upstreams": [{"name": "web", "targets": [{"address": "no-port"}]}],
        "routes": [{"name": "home", "paths": [{"prefix": "/home"}], "backends": [{"upstream": "ghost"}]},
                   {"name": "about", "paths": [{"prefix": "about"}], "backends": [{"upstream": "web"}]}]
    });
    let refused = admin.put("/v1/config", &broken).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let details = refused.body["error"]["details"].as_array().unwrap();
    let fields: Vec<(&str, &str)> = details
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    for expected in [
        ("web", "targets[0].address"),
        ("home", "backends[0].upstream"),
        ("about", "paths[0].prefix"),
    ] {
        assert!(
            fields.contains(&expected),
            "{expected:?} missing from {fields:?}"
        );
    }
    assert_eq!(admin.latest_revision().await, 1);

    // The export is a document that applies back to no change.
    let export = admin.get("/v1/config?format=yaml").await;
    assert_eq!(export.status, 200);
    let round_trip = put(export.text.clone(), "").await;
    assert_eq!(round_trip.body["changed"], false, "{}", round_trip.text);

    // An empty document removes everything, as one revision.
    let emptied = put("{}".into(), "").await;
    assert_eq!(emptied.status, 200, "{}", emptied.text);
    assert_eq!(emptied.body["revision"], 2);
    cluster.wait_served("/home/x", 404, None, CONVERGE).await;
}
