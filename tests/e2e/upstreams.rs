//! Traffic management after a route chose an upstream: every balancer, consistent-hash
//! stability, passive ejection and active recovery of a killed target, retries that hide a
//! failed idempotent request and leave a POST alone, and chunked, malformed and cut-short
//! upstream responses passed on or refused.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::send;
use gateway_tests::servers::killable::KillableServer;
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};

/// Applies one upstream and a `/p` route to it, and waits until the worker serves it.
async fn serve(cluster: &Cluster, upstream: Value, route_extra: Value) {
    let mut route =
        json!({"name": "r", "paths": [{"prefix": "/p"}], "backends": [{"upstream": "u"}]});
    if let (Some(route), Some(extra)) = (route.as_object_mut(), route_extra.as_object()) {
        route.extend(extra.clone());
    }
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [route]}))
        .await;
}

fn targets(servers: &[&EchoServer]) -> Value {
    servers
        .iter()
        .map(|s| json!({"address": s.address()}))
        .collect()
}

async fn servers_of(
    cluster: &Cluster,
    requests: usize,
    header: Option<(&str, String)>,
) -> Vec<String> {
    let worker = &cluster.workers[0];
    let mut served = Vec::new();
    for i in 0..requests {
        let mut request = cluster.client.get(worker.url(&format!("/p/{i}")));
        if let Some((name, value)) = &header {
            request = request.header(*name, value.clone());
        }
        let reply = send(request).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
        served.push(reply.server().to_owned());
    }
    served
}

fn counts(served: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in served {
        *counts.entry(s.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_balancer_spreads_over_every_target() {
    let cluster = Cluster::start(1).await;
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let c = EchoServer::start("c").await;
    for balance in ["round_robin", "least_request", "random"] {
        let upstream = json!({"name": "u", "balance": balance, "targets": targets(&[&a, &b, &c])});
        serve(&cluster, upstream, json!({})).await;
        let counts = counts(&servers_of(&cluster, 90, None).await);
        assert_eq!(counts.len(), 3, "{balance}: {counts:?}");
        if balance == "round_robin" {
            assert!(counts.values().all(|n| *n == 30), "{counts:?}");
        }
        for n in counts.values() {
            assert!(*n >= 10, "{balance}: {counts:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hashing_keeps_keys_and_moves_few_when_a_target_is_added() {
    let cluster = Cluster::start(1).await;
    let servers = [
        EchoServer::start("a").await,
        EchoServer::start("b").await,
        EchoServer::start("c").await,
        EchoServer::start("d").await,
    ];
    let upstream = |n: usize| {
        let all: Vec<&EchoServer> = servers[..n].iter().collect();
        json!({"name": "u", "balance": "consistent_hash", "hash_on": {"header": "x-user"},
               "targets": targets(&all)})
    };
    serve(&cluster, upstream(3), json!({})).await;
    let worker = &cluster.workers[0];
    let owner = |user: usize| {
        let request = cluster
            .client
            .get(worker.url("/p"))
            .header("x-user", format!("user-{user}"));
        async move { send(request).await.unwrap().server().to_owned() }
    };
    let mut before = Vec::new();
    for user in 0..300 {
        let first = owner(user).await;
        assert_eq!(owner(user).await, first, "the same key stays on one target");
        before.push(first);
    }
    assert_eq!(counts(&before).len(), 3, "{:?}", counts(&before));
    serve(&cluster, upstream(4), json!({})).await;
    let mut moved = 0;
    for (user, old) in before.iter().enumerate() {
        if owner(user).await != *old {
            moved += 1;
        }
    }
    // About 1/4 of the keys should move to the new target; allow 1.5/N.
    assert!(moved <= 300 * 3 / 2 / 3, "{moved} of 300 keys moved");
    assert!(moved > 0, "the new target takes some keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_is_ejected_and_comes_back_after_restarting() {
    let cluster = Cluster::start(1).await;
    let a = KillableServer::start("a").await;
    let b = KillableServer::start("b").await;
    let c = KillableServer::start("c").await;
    let upstream = json!({
        "name": "u",
        "targets": [{"address": a.address()}, {"address": b.address()}, {"address": c.address()}],
        "health_check": {
            "active": {"path": "/health", "interval": "200ms", "timeout": "150ms",
                       "healthy": 1, "unhealthy": 2},
            "passive": {"consecutive_failures": 2, "eject_for": "30s"}
        }
    });
    serve(&cluster, upstream, json!({})).await;
    let worker = &cluster.workers[0];
    let get = || send(cluster.client.get(worker.url("/p")));

    c.kill();
    // Under load: after a handful of failures the dead target gets no more requests.
    let mut failures = Vec::new();
    for i in 0..60 {
        let reply = get().await.unwrap();
        if reply.status != 200 {
            failures.push(i);
        }
    }
    assert!(failures.len() <= 4, "failed requests: {failures:?}");
    assert!(
        failures.iter().all(|i| *i < 15),
        "errors must stop within a handful of requests: {failures:?}"
    );

    c.restart().await;
    eventually(
        "the restarted target takes traffic again",
        CONVERGE,
        || async {
            let served = servers_of(&cluster, 6, None).await;
            if served.iter().any(|s| s == "c") {
                Ok(())
            } else {
                Err(format!("{served:?}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_hide_a_failed_idempotent_request_but_not_a_post() {
    let cluster = Cluster::start(1).await;
    let alive = EchoServer::start("alive").await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let upstream =
        json!({"name": "u", "targets": [{"address": alive.address()}, {"address": dead}]});
    let retries = json!({"retries": {"attempts": 1, "on": ["connect_failure"]}});
    serve(&cluster, upstream, retries).await;
    let worker = &cluster.workers[0];
    for _ in 0..20 {
        let reply = send(cluster.client.get(worker.url("/p"))).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.server(), "alive");
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = send(cluster.client.post(worker.url("/p"))).await.unwrap();
        statuses.push(reply.status);
    }
    assert!(
        statuses.contains(&502),
        "a POST is not retried: {statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_healthy_target_and_route_timeouts_answer_in_json() {
    let cluster = Cluster::start(1).await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let upstream = json!({"name": "u", "targets": [{"address": dead}], "all_unhealthy": "reject",
                          "health_check": {"passive": {"consecutive_failures": 1, "eject_for": "1m"}}});
    serve(&cluster, upstream, json!({})).await;
    let worker = &cluster.workers[0];
    let first = send(cluster.client.get(worker.url("/p"))).await.unwrap();
    assert_eq!(first.status, 502, "{}", first.text);
    let second = send(cluster.client.get(worker.url("/p"))).await.unwrap();
    assert_eq!(second.status, 503, "{}", second.text);
    assert_eq!(second.error_code(), "no_healthy_target");

    // A route timeout shorter than the upstream's answer gives a 504.
    let slow = EchoServer::start("slow").await;
    let upstream = json!({"name": "u", "targets": [{"address": slow.address()}]});
    serve(&cluster, upstream, json!({"timeout": "200ms"})).await;
    let started = std::time::Instant::now();
    let reply = send(
        cluster
            .client
            .get(worker.url("/p/stream?chunks=2&interval_ms=50"))
            .timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(
        reply.status, 200,
        "streaming responses are not cut by the timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An upstream that writes fixed bytes per path, some of them wrong, over kept-alive
/// connections; a path it has no answer for closes the connection.
async fn raw_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn answer(path: &str) -> Option<&'static [u8]> {
        Some(match path {
            "/p/chunked" => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-from: raw\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\n"
            }
            "/p/length" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            "/p/hop" => b"HTTP/1.1 200 OK\r\nconnection: keep-alive, X-Internal\r\nkeep-alive: timeout=5\r\nx-internal: 1\r\nx-kept: 2\r\ncontent-length: 2\r\n\r\nok",
            "/p/conflicting" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!",
            "/p/garbage" => b"not http at all\r\n\r\n",
            "/p/cut" => b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this",
            _ => return None,
        })
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head: Vec<u8> = buffer.drain(..end + 4).collect();
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let Some(bytes) = answer(&path) else { return };
                    if stream.write_all(bytes).await.is_err() || path == "/p/cut" {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_responses_are_framed_and_checked() {
    let cluster = Cluster::start(1).await;
    let upstream = raw_upstream().await;
    let targets = json!([{"address": upstream.to_string()}]);
    serve(
        &cluster,
        json!({"name": "u", "targets": targets}),
        json!({}),
    )
    .await;
    let worker = &cluster.workers[0];

    // A chunked answer is decoded and passed on whole; the connection stays usable.
    for _ in 0..3 {
        let reply = send(cluster.client.get(worker.url("/p/chunked")))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text, "hello world");
        assert_eq!(reply.header("x-from"), Some("raw"));
    }
    // Connection-management fields and the fields `Connection` names stay on their hop.
    let reply = send(cluster.client.get(worker.url("/p/hop")))
        .await
        .unwrap();
    assert_eq!((reply.status, reply.text.as_str()), (200, "ok"));
    assert_eq!(reply.header("x-kept"), Some("2"));
    for hop in ["x-internal", "keep-alive", "connection"] {
        assert_eq!(reply.header(hop), None, "{hop}");
    }
    // A head that cannot be trusted is a 502 that says so.
    for path in ["/p/conflicting", "/p/garbage"] {
        let reply = send(cluster.client.get(worker.url(path))).await.unwrap();
        assert_eq!(reply.status, 502, "{path}: {}", reply.text);
        assert_eq!(reply.error_code(), "upstream_unavailable", "{path}");
    }
    // A body cut short cannot be completed: the client sees the response fail, not a short one.
    let cut = async {
        let response = cluster.client.get(worker.url("/p/cut")).send().await?;
        response.bytes().await
    };
    assert!(
        cut.await.is_err(),
        "a truncated body must not look complete"
    );
    // A request to a target that closes without answering is a 502 as well.
    let reply = send(cluster.client.get(worker.url("/p/silent")))
        .await
        .unwrap();
    assert_eq!(reply.status, 502, "{}", reply.text);
    let reply = send(cluster.client.get(worker.url("/p/length")))
        .await
        .unwrap();
    assert_eq!((reply.status, reply.text.as_str()), (200, "ok"));
}
