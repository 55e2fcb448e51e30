//! The same flow through gatewayctl: create, serve, inspect, delete, and status of the workers.

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::topology::gatewayctl;
use gateway_tests::upstream::EchoServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayctl_drives_the_gateway_and_reports_every_worker() {
    let cluster = Cluster::start(2).await;
    let admin = cluster.admin.url.clone();
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;

    let out = gatewayctl(
        &admin,
        &[
            "upstream",
            "create",
            "web",
            "--target",
            &a.address(),
            "--target",
            &format!("{}=1", b.address()),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("created"), "{out:?}");
    let out = gatewayctl(
        &admin,
        &[
            "route",
            "create",
            "web",
            "--path",
            "/web",
            "--method",
            "get",
            "--backend",
            "web",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    cluster.wait_served("/web/page", 200, None, CONVERGE).await;

    let out = gatewayctl(&admin, &["route", "list", "-o", "json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let items = listed["items"]
        .as_array()
        .or(listed.as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["methods"], serde_json::json!(["GET"]));

    let out = gatewayctl(&admin, &["upstream", "get", "web", "-o", "yaml"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("name: web"), "{out:?}");

    let table = gatewayctl(&admin, &["upstream", "list"]).await;
    assert!(
        table.stdout.contains("web") && table.stdout.contains(&a.address()),
        "{table:?}"
    );

    // Status: both workers, each at the latest revision.
    let latest = cluster.admin.latest_revision().await;
    eventually(
        "gatewayctl status shows both workers synced",
        CONVERGE,
        || async {
            let out = gatewayctl(&admin, &["status", "-o", "json"]).await;
            let status: Value =
                serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {out:?}"))?;
            let items = status["items"].as_array().cloned().unwrap_or_default();
            for worker in &cluster.workers {
                let node = items
                    .iter()
                    .find(|n| n["id"] == worker.node_id.as_str())
                    .ok_or_else(|| format!("{} missing from {status}", worker.node_id))?;
                if node["applied_revision"].as_u64() != Some(latest) || node["status"] != "SYNCED" {
                    return Err(format!("{node}"));
                }
            }
            Ok(())
        },
    )
    .await;
    let table = gatewayctl(&admin, &["status"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    for worker in &cluster.workers {
        assert!(table.stdout.contains(&worker.node_id), "{table:?}");
    }
    assert!(table.stdout.contains("SYNCED"), "{table:?}");

    let out = gatewayctl(&admin, &["revisions"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("create route web"), "{out:?}");

    // Refusals give exit code 1 and the server's reason; nothing is stored.
    let out = gatewayctl(
        &admin,
        &[
            "route",
            "create",
            "bad",
            "--path",
            "/x",
            "--backend",
            "missing",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("missing"), "{out:?}");
    let out = gatewayctl(
        &admin,
        &["upstream", "create", "noport", "--target", "localhost"],
    )
    .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(cluster.admin.latest_revision().await, latest);

    // An unreachable admin API is its own exit code.
    let out = gatewayctl("http://127.0.0.1:1", &["route", "list"]).await;
    assert_eq!(out.code, 3, "{out:?}");

    let out = gatewayctl(&admin, &["route", "delete", "web"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    cluster.wait_served("/web/page", 404, None, CONVERGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayctl_creates_from_a_yaml_file() {
    let cluster = Cluster::start(1).await;
    let admin = cluster.admin.url.clone();
    let a = EchoServer::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let upstream = dir.path().join("upstream.yaml");
    std::fs::write(
        &upstream,
        format!(
            "name: files\ntargets:\n  - address: \"{}\"\n    weight: 2\n",
            a.address()
        ),
    )
    .unwrap();
    let route = dir.path().join("route.yaml");
    std::fs::write(
        &route,
        "name: files\npaths:\n  - exact: /file\nbackends:\n  - upstream: files\n",
    )
    .unwrap();
    for file in [&upstream, &route] {
        let kind = if file == &upstream {
            "upstream"
        } else {
            "route"
        };
        let out = gatewayctl(&admin, &[kind, "create", "-f", file.to_str().unwrap()]).await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    cluster.wait_served("/file", 200, Some("a"), CONVERGE).await;
    cluster.wait_served("/file/more", 404, None, CONVERGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatewayctl_apply_diff_export_and_rollback() {
    let cluster = Cluster::start(1).await;
    let admin = cluster.admin.url.clone();
    let a = EchoServer::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.yaml");
    let write = |paths: &str| {
        std::fs::write(
            &file,
            format!(
                "upstreams:\n  - name: web\n    targets:\n      - address: \"{}\"\nroutes:\n  - name: web\n    paths:\n      - prefix: {paths}\n    backends:\n      - upstream: web\n",
                a.address()
            ),
        )
        .unwrap();
    };
    let file_arg = file.to_str().unwrap().to_owned();

    write("/one");
    let out = gatewayctl(&admin, &["diff", "-f", &file_arg]).await;
    assert_eq!(out.code, 1, "changes pending: {out:?}");
    assert!(out.stdout.contains("route \"web\""), "{out:?}");
    let out = gatewayctl(&admin, &["apply", "-f", &file_arg]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("revision 1"), "{out:?}");
    let out = gatewayctl(&admin, &["diff", "-f", &file_arg]).await;
    assert_eq!(out.code, 0, "no changes: {out:?}");
    cluster.wait_served("/one", 200, Some("a"), CONVERGE).await;

    write("/two");
    let out = gatewayctl(&admin, &["diff", "-f", &file_arg]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("/one") && out.stdout.contains("/two"),
        "the changed field is shown: {out:?}"
    );
    let out = gatewayctl(&admin, &["apply", "-f", &file_arg]).await;
    assert_eq!(out.code, 0, "{out:?}");
    cluster.wait_served("/two", 200, Some("a"), CONVERGE).await;

    // Export round-trips through apply as no change.
    let out = gatewayctl(&admin, &["export"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let exported = dir.path().join("exported.yaml");
    std::fs::write(&exported, &out.stdout).unwrap();
    let out = gatewayctl(&admin, &["diff", "-f", exported.to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{out:?}");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "routes:\n  - name: x\n    backends:\n      - upstream: nowhere\n",
    )
    .unwrap();
    let out = gatewayctl(&admin, &["diff", "-f", broken.to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "errors are exit code 2 for diff: {out:?}");

    let out = gatewayctl(&admin, &["rollback", "1"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains('3'),
        "the new revision is printed: {out:?}"
    );
    cluster.wait_served("/one", 200, Some("a"), CONVERGE).await;
    let out = gatewayctl(&admin, &["revisions", "diff", "1", "2"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
}
