//! A worker fed a config it cannot apply NACKs it, keeps serving the previous revision, and the
//! control plane shows the error until a good revision replaces it.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::{metric, metrics_page, send, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::json;

/// Commits a revision straight into the database, bypassing the admin API's validation, the way a
/// config written by a newer or broken writer would arrive.
async fn commit_unchecked_route(cluster: &Cluster, name: &str, spec: &serde_json::Value) -> i64 {
    let mut conn = cluster.database.connect().await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let (revision,): (i64,) = sqlx::query_as(
        "UPDATE revision_head SET revision = revision + 1 WHERE id = 1 RETURNING revision",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let now = 1_700_000_000_000_i64;
    let spec = spec.to_string();
    sqlx::query("INSERT INTO resources (kind, name, spec, created_at, updated_at, revision) VALUES ('route', $1, $2, $3, $3, $4)")
        .bind(name)
        .bind(&spec)
        .bind(now)
        .bind(revision)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO resource_history (revision, kind, name, spec) VALUES ($1, 'route', $2, $3)",
    )
    .bind(revision)
    .bind(name)
    .bind(&spec)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO revisions (revision, actor, message, digest, created_at) VALUES ($1, 'test', 'unchecked', '', $2)")
        .bind(revision)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_the_worker_cannot_apply_is_nacked_and_the_old_one_kept() {
    let cluster = Cluster::start(2).await;
    let a = EchoServer::start("a").await;
    let upstream = json!({"name": "svc", "targets": [{"address": a.address()}]});
    assert_eq!(
        cluster.admin.post("/v1/upstreams", &upstream).await.status,
        201
    );
    let route =
        json!({"name": "good", "paths": [{"prefix": "/good"}], "backends": [{"upstream": "svc"}]});
    assert_eq!(cluster.admin.post("/v1/routes", &route).await.status, 201);
    cluster.wait_served("/good", 200, Some("a"), CONVERGE).await;

    let broken = json!({"name": "broken", "paths": [{"prefix": "/broken"}], "backends": [{"upstream": "ghost"}]});
    let bad_revision = commit_unchecked_route(&cluster, "broken", &broken).await;

    let admin = &cluster.admin;
    eventually(
        "every worker NACKed the broken revision",
        CONVERGE,
        || async {
            let nodes = admin.try_get("/v1/nodes").await?;
            if nodes.body["latest_revision"].as_i64() != Some(bad_revision) {
                return Err(format!(
                    "control plane has not loaded it yet: {}",
                    nodes.text
                ));
            }
            for worker in &cluster.workers {
                let node = nodes.body["items"]
                    .as_array()
                    .and_then(|items| items.iter().find(|n| n["id"] == worker.node_id.as_str()))
                    .ok_or_else(|| nodes.text.clone())?;
                let error = node["last_error"].as_str().unwrap_or("");
                if node["status"] != "ERROR" || !error.contains("ghost") {
                    return Err(node.to_string());
                }
                if node["applied_revision"].as_i64() != Some(bad_revision - 1) {
                    return Err(format!("applied revision moved: {node}"));
                }
            }
            Ok(())
        },
    )
    .await;
    for worker in &cluster.workers {
        assert_eq!(
            worker_revision(&cluster.client, worker).await.unwrap() as i64,
            bad_revision - 1
        );
        let reply = send(cluster.client.get(worker.url("/good"))).await.unwrap();
        assert_eq!(
            reply.status, 200,
            "the previous revision is still served: {}",
            reply.text
        );
        let status = send(cluster.client.get(worker.status_url("/status")))
            .await
            .unwrap();
        assert!(
            status.body["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("ghost"),
            "{}",
            status.text
        );
    }

    // The refused revision is not pushed again. Proving that something does not happen takes a
    // window of observation: a resend loop would show within it.
    // Each worker refuses it twice: once as a delta, once as the full snapshot the control plane
    // falls back to; then never again.
    let metrics_url = format!("{}/metrics", admin.url);
    let expected = 2.0 * cluster.workers.len() as f64;
    let nacks = eventually("both NACKs of every worker counted", CONVERGE, || async {
        let nacks = metric(
            &metrics_page(&cluster.client, &metrics_url).await?,
            "config_nacks_total",
        );
        if nacks == expected {
            Ok(nacks)
        } else {
            Err(format!("{nacks} NACKs"))
        }
    })
    .await;
    let window = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    while tokio::time::Instant::now() < window {
        let page = metrics_page(&cluster.client, &metrics_url).await.unwrap();
        assert_eq!(
            metric(&page, "config_nacks_total"),
            nacks,
            "the NACKed revision was resent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Removing the broken route makes a valid revision that every worker accepts.
    assert_eq!(admin.delete("/v1/routes/broken").await.status, 204);
    eventually("workers synced again", CONVERGE, || async {
        let nodes = admin.try_get("/v1/nodes").await?;
        let items = nodes.body["items"].as_array().cloned().unwrap_or_default();
        let synced = items
            .iter()
            .filter(|n| n["status"] == "SYNCED" && n["last_error"].is_null())
            .count();
        if synced == cluster.workers.len() {
            Ok(())
        } else {
            Err(nodes.text)
        }
    })
    .await;
    cluster.wait_served("/good", 200, Some("a"), CONVERGE).await;
}
