//! A route's policies through real workers: request ids (generated, kept, echoed, also on the
//! worker's own errors), client address rules (the peer's address, or `X-Forwarded-For` from a
//! trusted proxy only), body size limits (declared and streamed), and the 422s of bad policies,
//! which change nothing.

use gateway_tests::clients;
use gateway_tests::cluster::{CONVERGE, Cluster, ClusterOptions};
use gateway_tests::http::{Reply, send, worker_revision};
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

async fn get(cluster: &Cluster, worker: usize, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = cluster.client.get(cluster.workers[worker].url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request).await.unwrap()
}

fn is_generated_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The values of a request header the echo server received.
fn upstream_saw<'a>(reply: &'a Reply, header: &str) -> Vec<&'a str> {
    reply.body["headers"][header]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_generated_kept_and_echoed_also_on_errors() {
    let cluster = Cluster::start(1).await;
    let echo = EchoServer::start("echo").await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_address = dead.local_addr().unwrap().to_string();
    drop(dead);
    cluster
        .apply(&json!({
            "upstreams": [
                {"name": "echo", "targets": [{"address": echo.address()}]},
                {"name": "dead", "targets": [{"address": dead_address}]}
            ],
            "routes": [
                {"name": "ids", "paths": [{"prefix": "/ids"}], "backends": [{"upstream": "echo"}],
                 "plugins": {"request_id": {}}},
                {"name": "quiet", "paths": [{"prefix": "/quiet"}], "backends": [{"upstream": "echo"}],
                 "plugins": {"request_id": {"header": "x-trace-id", "keep_incoming": false, "echo": false}}},
                {"name": "broken", "paths": [{"prefix": "/broken"}], "backends": [{"upstream": "dead"}],
                 "plugins": {"request_id": {}}},
                {"name": "plain", "paths": [{"prefix": "/plain"}], "backends": [{"upstream": "echo"}]}
            ]
        }))
        .await;
    cluster
        .wait_served("/ids", 200, Some("echo"), CONVERGE)
        .await;

    let first = get(&cluster, 0, "/ids", &[]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let id = first.header("x-request-id").unwrap().to_owned();
    assert!(is_generated_id(&id), "{id}");
    assert_eq!(upstream_saw(&first, "x-request-id"), [id.as_str()]);
    let second = get(&cluster, 0, "/ids", &[]).await;
    assert_ne!(second.header("x-request-id"), Some(id.as_str()));

    // An id from a load balancer in front is kept; a malformed one is replaced.
    let kept = get(&cluster, 0, "/ids", &[("x-request-id", "lb-4711")]).await;
    assert_eq!(kept.header("x-request-id"), Some("lb-4711"));
    assert_eq!(upstream_saw(&kept, "x-request-id"), ["lb-4711"]);
    let long = "x".repeat(201);
    let replaced = get(&cluster, 0, "/ids", &[("x-request-id", &long)]).await;
    assert!(is_generated_id(replaced.header("x-request-id").unwrap()));

    let quiet = get(&cluster, 0, "/quiet", &[("x-trace-id", "client-chosen")]).await;
    assert_eq!(quiet.status, 200);
    assert_eq!(quiet.header("x-trace-id"), None);
    let seen = upstream_saw(&quiet, "x-trace-id");
    assert_eq!(seen.len(), 1);
    assert!(is_generated_id(seen[0]), "{seen:?}");

    // The worker's own answer carries the id too.
    let broken = get(&cluster, 0, "/broken", &[]).await;
    assert_eq!(broken.status, 502, "{}", broken.text);
    assert!(is_generated_id(broken.header("x-request-id").unwrap()));

    // A route without the policy passes the client's header through untouched and adds none.
    let plain = get(&cluster, 0, "/plain", &[]).await;
    assert_eq!(plain.header("x-request-id"), None);
    assert!(upstream_saw(&plain, "x-request-id").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_rules_see_the_real_client_only_through_trusted_proxies() {
    // Worker 0 trusts loopback as a proxy in front of it; worker 1 trusts no one.
    let cluster = Cluster::start_with(ClusterOptions {
        control_plane_args: Vec::new(),
        workers: vec![
            vec!["--trusted-proxies".into(), "127.0.0.1/32,::1/128".into()],
            Vec::new(),
        ],
    })
    .await;
    let echo = EchoServer::start("echo").await;
    cluster
        .apply(&json!({
            "upstreams": [{"name": "echo", "targets": [{"address": echo.address()}]}],
            "routes": [
                {"name": "no-loopback", "paths": [{"prefix": "/deny"}], "backends": [{"upstream": "echo"}],
                 "plugins": {"ip_restriction": {"deny": ["127.0.0.0/8", "::1"]}}},
                {"name": "office", "paths": [{"prefix": "/office"}], "backends": [{"upstream": "echo"}],
                 "plugins": {"ip_restriction": {"allow": ["192.0.2.0/24", "2001:db8::/32"],
                                                "deny": ["192.0.2.66"]},
                             "request_id": {}}},
                {"name": "open", "paths": [{"prefix": "/open"}], "backends": [{"upstream": "echo"}]}
            ]
        }))
        .await;
    for worker in 0..2 {
        cluster
            .wait_for_revision(cluster.admin.latest_revision().await)
            .await;
        let open = get(&cluster, worker, "/open", &[]).await;
        assert_eq!(open.status, 200, "worker {worker}: {}", open.text);
    }

    for worker in 0..2 {
        let refused = get(&cluster, worker, "/deny", &[]).await;
        assert_eq!(refused.status, 403, "worker {worker}: {}", refused.text);
        assert_eq!(refused.error_code(), "address_refused");
        assert_eq!(refused.header("content-type"), Some("application/json"));
        let refused = get(&cluster, worker, "/office", &[]).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        // A refusal still carries the request's id.
        assert!(refused.header("x-request-id").is_some());
    }

    // Through the trusted proxy, the address it names is the client's.
    let from = |address: &'static str| [("x-forwarded-for", address)];
    assert_eq!(
        get(&cluster, 0, "/office", &from("192.0.2.5")).await.status,
        200
    );
    assert_eq!(
        get(&cluster, 0, "/office", &from("2001:db8::5"))
            .await
            .status,
        200
    );
    assert_eq!(
        get(&cluster, 0, "/office", &from("192.0.2.66"))
            .await
            .status,
        403
    );
    assert_eq!(
        get(&cluster, 0, "/office", &from("198.51.100.1"))
            .await
            .status,
        403
    );
    assert_eq!(
        get(&cluster, 0, "/deny", &from("192.0.2.5")).await.status,
        200
    );
    // A client that writes its own entry before the trusted proxy's gains nothing: the
    // rightmost untrusted address counts.
    assert_eq!(
        get(&cluster, 0, "/office", &from("192.0.2.5, 198.51.100.1"))
            .await
            .status,
        403
    );
    // The worker that trusts no one ignores the header.
    assert_eq!(
        get(&cluster, 1, "/office", &from("192.0.2.5")).await.status,
        403
    );
    assert_eq!(
        get(&cluster, 1, "/deny", &from("192.0.2.5")).await.status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused_declared_or_streamed() {
    let cluster = Cluster::start(1).await;
    let echo = EchoServer::start("echo").await;
    cluster
        .apply(&json!({
            "upstreams": [{"name": "echo", "targets": [{"address": echo.address()}]}],
            "routes": [
                {"name": "small", "paths": [{"prefix": "/small"}], "backends": [{"upstream": "echo"}],
                 "plugins": {"request_size_limit": {"max_bytes": 1024}}},
                {"name": "any", "paths": [{"prefix": "/any"}], "backends": [{"upstream": "echo"}]}
            ]
        }))
        .await;
    cluster
        .wait_served("/small", 200, Some("echo"), CONVERGE)
        .await;
    let url = |path: &str| cluster.workers[0].url(path);
    let post = |path: &str, body: Vec<u8>| cluster.client.post(url(path)).body(body);

    let at_limit = send(post("/small", vec![b'a'; 1024])).await.unwrap();
    assert_eq!(at_limit.status, 200, "{}", at_limit.text);
    assert_eq!(at_limit.body["body_len"], 1024);

    let declared = send(post("/small", vec![b'a'; 1025])).await.unwrap();
    assert_eq!(declared.status, 413, "{}", declared.text);
    assert_eq!(declared.error_code(), "body_too_large");

    // Chunked (curl sends a file so when told to), with no length to go by: refused once the
    // bytes pass the limit.
    let files = tempfile::tempdir().unwrap();
    let streamed = |chunks: usize| {
        let path = files.path().join(format!("body-{chunks}"));
        std::fs::write(&path, vec![b'b'; 512 * chunks]).unwrap();
        path
    };
    let chunked = |path: std::path::PathBuf| {
        let url = url("/small");
        async move {
            let data = format!("@{}", path.display());
            let run = clients::run(
                "curl",
                &[
                    "-sS",
                    "-m",
                    "10",
                    "-H",
                    "Transfer-Encoding: chunked",
                    "--data-binary",
                    &data,
                    "-w",
                    "\n%{http_code}",
                    &url,
                ],
                std::time::Duration::from_secs(20),
            )
            .await;
            assert!(run.succeeded(), "{run}");
            let (body, status) = run.stdout.rsplit_once('\n').unwrap();
            (
                status.to_owned(),
                serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
                run.stdout.clone(),
            )
        }
    };
    let (status, body, text) = chunked(streamed(2)).await;
    assert_eq!(status, "200", "{text}");
    assert_eq!(body["body_len"], 1024);
    let (status, body, text) = chunked(streamed(8)).await;
    assert_eq!(status, "413", "{text}");
    assert_eq!(body["error"]["code"], "body_too_large");

    // Other routes are not limited, and the worker serves on.
    let large = send(post("/any", vec![b'c'; 64 * 1024])).await.unwrap();
    assert_eq!(large.status, 200);
    assert_eq!(large.body["body_len"], 64 * 1024);
    assert_eq!(
        send(post("/small", b"ok".to_vec())).await.unwrap().status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policies_are_refused_with_the_field_and_change_nothing() {
    let cluster = Cluster::start(1).await;
    let echo = EchoServer::start("echo").await;
    let admin = &cluster.admin;
    cluster
        .apply(&json!({
            "upstreams": [{"name": "echo", "targets": [{"address": echo.address()}]}],
            "routes": [{"name": "r", "paths": [{"prefix": "/r"}], "backends": [{"upstream": "echo"}],
                        "plugins": {"ip_restriction": {"deny": ["192.0.2.0/24"]}}}]
        }))
        .await;
    cluster.wait_served("/r", 200, Some("echo"), CONVERGE).await;
    let revisions = admin.revision_count().await;
    let applied = worker_revision(&cluster.client, &cluster.workers[0])
        .await
        .unwrap();
    let route = |plugins: Value| {
        json!({"name": "r", "paths": [{"prefix": "/r"}], "backends": [{"upstream": "echo"}],
               "plugins": plugins})
    };
    for (plugins, field) in [
        (
            json!({"ip_restriction": {"allow": ["10.0.0.0/33"]}}),
            Some("plugins.ip_restriction.allow[0]"),
        ),
        (
            json!({"ip_restriction": {"deny": ["10.1.2.3/8"]}}),
            Some("plugins.ip_restriction.deny[0]"),
        ),
        (
            json!({"ip_restriction": {}}),
            Some("plugins.ip_restriction"),
        ),
        (
            json!({"request_size_limit": {"max_bytes": 0}}),
            Some("plugins.request_size_limit.max_bytes"),
        ),
        (
            json!({"request_id": {"header": "host"}}),
            Some("plugins.request_id.header"),
        ),
        (json!({"rate_limits": {}}), None),
    ] {
        let reply = admin.put("/v1/routes/r", &route(plugins.clone())).await;
        assert_eq!(reply.status, 422, "{plugins}: {}", reply.text);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            reply.text
        );
        if let Some(field) = field {
            assert_eq!(reply.body["error"]["field"], field, "{}", reply.text);
        }
    }
    assert_eq!(admin.revision_count().await, revisions);
    assert_eq!(
        worker_revision(&cluster.client, &cluster.workers[0])
            .await
            .unwrap(),
        applied
    );
    // The stored route still has its policy.
    let stored = admin.get("/v1/routes/r").await;
    assert_eq!(
        stored.body["plugins"],
        json!({"ip_restriction": {"deny": ["192.0.2.0/24"]}}),
        "{}",
        stored.text
    );
}
