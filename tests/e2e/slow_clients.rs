//! Slow clients against a running worker: hundreds of connections trickling request heads and
//! bodies a byte at a time (slowloris) hold nothing for long, and meanwhile every request of a
//! well-behaved client is served. On both server paths (the worker's own HTTP/1 code, hyper).

use std::time::Duration;

use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::http::KeptConnection;
use gateway_tests::upstream::EchoServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections of each kind.
const TRICKLERS: usize = 300;
/// A byte every this long: 2 bytes a second, far below the worker's minimum body rate.
const DRIP: Duration = Duration::from_millis(500);
/// A trickler still open after this was never closed by the worker: the test fails.
const GIVE_UP: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The worker answered with this status and closed.
    Answered(String),
    /// The worker closed without an answer.
    Closed,
}

/// Sends `head` and then `drip` one byte at a time until the worker closes the connection;
/// returns what it did.
async fn trickle(proxy: std::net::SocketAddr, head: String, drip: u8) -> Ended {
    let mut stream = TcpStream::connect(proxy).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut received = Vec::new();
    let ended = async {
        loop {
            let mut chunk = [0u8; 512];
            tokio::select! {
                read = stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                },
                () = tokio::time::sleep(DRIP) => {
                    if stream.write_all(&[drip]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(GIVE_UP, ended)
        .await
        .expect("the worker closes a trickling connection");
    let text = String::from_utf8_lossy(&received);
    match text.get(9..12) {
        Some(status) if text.starts_with("HTTP/1.1 ") => Ended::Answered(status.to_owned()),
        _ => Ended::Closed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_heads_and_bodies_hold_nothing_and_other_clients_are_served() {
    for fast_path in ["on", "off"] {
        let cluster = Cluster::start_with_worker_args(
            1,
            &[
                "--http1-fast-path",
                fast_path,
                "--body-read-timeout",
                "2s",
                "--body-min-rate",
                "100",
            ],
        )
        .await;
        let echo = EchoServer::start("echo").await;
        let config = json!({
            "upstreams": [{"name": "echo", "targets": [{"address": echo.address()}]}],
            "routes": [{"name": "api", "paths": [{"prefix": "/api"}],
                        "backends": [{"upstream": "echo"}]}],
        });
        cluster.apply(&config).await;
        cluster
            .wait_served("/api/ready", 200, Some("echo"), CONVERGE)
            .await;
        let proxy = cluster.workers[0].proxy_addr;

        let mut tricklers = Vec::new();
        for i in 0..TRICKLERS {
            // A head that never ends: closed at the 10 s head timeout.
            let head = format!("GET /api/head-{i} HTTP/1.1\r\nhost: a.test\r\nx-slow: ");
            tricklers.push(("head", tokio::spawn(trickle(proxy, head, b'a'))));
            // A body that crawls: under the minimum rate once the read timeout has passed.
            let head = format!(
                "POST /api/body-{i} HTTP/1.1\r\nhost: a.test\r\ncontent-length: 100000\r\n\r\n"
            );
            tricklers.push(("body", tokio::spawn(trickle(proxy, head, b'b'))));
        }

        // Meanwhile a client on one connection and clients on new ones are all served.
        let mut kept = KeptConnection::open(proxy).await;
        for i in 0..200 {
            let reply = kept.get(&format!("/api/kept-{i}")).await.expect("kept");
            assert_eq!(reply.status, 200, "fast path {fast_path}: {}", reply.text);
            if i % 10 == 0 {
                let reply = gateway_tests::http::send(
                    cluster
                        .client
                        .get(cluster.workers[0].url(&format!("/api/new-{i}"))),
                )
                .await
                .expect("a new connection");
                assert_eq!(reply.status, 200, "fast path {fast_path}: {}", reply.text);
            }
        }

        // Every trickler is closed by the worker (without the limits a trickled body would be
        // held for ever, and the test would give up). A 408 written just before the close can
        // be lost to the reset a byte sent meanwhile provokes, so only some must be seen.
        let mut answered_408 = 0;
        for (kind, trickler) in tricklers {
            let ended = trickler.await.expect("trickler");
            assert!(
                matches!(&ended, Ended::Closed) || ended == Ended::Answered("408".into()),
                "a trickled {kind}, fast path {fast_path}: {ended:?}"
            );
            if kind == "body" && ended != Ended::Closed {
                answered_408 += 1;
            }
        }
        assert!(
            answered_408 > 0,
            "no trickled body was answered 408, fast path {fast_path}"
        );
        // Still up and serving.
        let mut after = KeptConnection::open(proxy).await;
        let reply = after.get("/api/after").await.expect("after");
        assert_eq!(reply.status, 200);
    }
}
