//! Hot reload under load: a new revision every 100 ms for 10 s while keep-alive clients,
//! long-lived streaming responses and WebSocket sessions run through two workers. Nothing may fail
//! or be cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::{KeptConnection, worker_revision};
use gateway_tests::servers::websocket::WebSocketEchoServer;
use gateway_tests::upstream::EchoServer;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const REVISIONS: usize = 100;
const STREAM_CHUNKS: usize = 110;
const ECHO_WAIT: Duration = Duration::from_secs(10);

/// Sends a message every 100 ms on a WebSocket and checks its echo until `done`, then once more,
/// and closes cleanly. Returns how many messages were echoed.
async fn chat_until(
    mut socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    name: String,
    done: Arc<AtomicBool>,
) -> Result<u64, String> {
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut echoed = 0u64;
    loop {
        // Read before the exchange, so that one more happens after the last revision.
        let last = done.load(Ordering::SeqCst);
        pace.tick().await;
        let text = format!("{name} message {echoed}");
        socket
            .send(Message::text(text.clone()))
            .await
            .map_err(|e| format!("{name}: sending message {echoed}: {e}"))?;
        match tokio::time::timeout(ECHO_WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Text(answer)))) if answer == text => echoed += 1,
            other => return Err(format!("{name}: echo of message {echoed}: {other:?}")),
        }
        if last {
            break;
        }
    }
    let goodbye = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    socket
        .close(Some(goodbye.clone()))
        .await
        .map_err(|e| format!("{name}: closing: {e}"))?;
    match tokio::time::timeout(ECHO_WAIT, socket.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) if frame == goodbye => {}
        other => return Err(format!("{name}: closing handshake: {other:?}")),
    }
    match tokio::time::timeout(ECHO_WAIT, socket.next()).await {
        Ok(None) => Ok(echoed),
        other => Err(format!("{name}: after the close: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_revisions_under_load_drop_nothing() {
    // Each kept-alive client sends thousands of requests on its one connection.
    let cluster = Cluster::start_with_worker_args(2, &["--max-requests-per-connection", "0"]).await;
    let admin = &cluster.admin;
    let a1 = EchoServer::start("a1").await;
    let a2 = EchoServer::start("a2").await;
    let b = EchoServer::start("b").await;
    let upstream_a = |w1: u32, w2: u32| json!({"name": "a", "targets": [{"address": a1.address(), "weight": w1}, {"address": a2.address(), "weight": w2}]});
    assert_eq!(
        admin.post("/v1/upstreams", &upstream_a(1, 1)).await.status,
        201
    );
    let upstream_b = json!({"name": "b", "targets": [{"address": b.address()}]});
    assert_eq!(admin.post("/v1/upstreams", &upstream_b).await.status, 201);
    let websocket = WebSocketEchoServer::start().await;
    let upstream_ws = json!({"name": "ws", "targets": [{"address": websocket.address()}]});
    assert_eq!(admin.post("/v1/upstreams", &upstream_ws).await.status, 201);
    let ws = json!({"name": "ws", "paths": [{"prefix": "/ws"}], "backends": [{"upstream": "ws"}]});
    assert_eq!(admin.post("/v1/routes", &ws).await.status, 201);
    let stable = json!({"name": "stable", "paths": [{"prefix": "/stable"}], "backends": [{"upstream": "a"}]});
    assert_eq!(admin.post("/v1/routes", &stable).await.status, 201);
    // Created last, so a worker that serves it serves the WebSocket route too.
    cluster.wait_served("/stable/x", 200, None, CONVERGE).await;
    let done = Arc::new(AtomicBool::new(false));

    // WebSocket sessions, opened before the first change and outliving the last one.
    let mut chats = Vec::new();
    for (w, worker) in cluster.workers.iter().enumerate() {
        for c in 0..2 {
            let url = format!("ws://{}/ws/{w}/{c}", worker.proxy_addr);
            let (socket, _) = tokio_tungstenite::connect_async(&url)
                .await
                .unwrap_or_else(|e| panic!("WebSocket {url}: {e}"));
            chats.push(tokio::spawn(chat_until(
                socket,
                format!("worker {w} socket {c}"),
                done.clone(),
            )));
        }
    }

    // Long-lived streams, opened before the first change and outliving the last one.
    let mut streams = Vec::new();
    for worker in &cluster.workers {
        for _ in 0..2 {
            let url = worker.url(&format!(
                "/stable/stream?chunks={STREAM_CHUNKS}&interval_ms=100"
            ));
            let client = cluster.client.clone();
            streams.push(tokio::spawn(async move {
                let mut response = client
                    .get(&url)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status() != 200 {
                    return Err(format!("stream status {}", response.status()));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| format!("stream cut: {e}"))?
                {
                    body.extend_from_slice(&chunk);
                }
                Ok::<usize, String>(String::from_utf8_lossy(&body).lines().count())
            }));
        }
    }

    // Keep-alive clients, one connection per worker, requesting until the changes stop.
    let mut clients = Vec::new();
    for worker in &cluster.workers {
        let mut conn = KeptConnection::open(worker.proxy_addr).await;
        let done = done.clone();
        clients.push(tokio::spawn(async move {
            let mut served = 0u64;
            while !done.load(Ordering::SeqCst) {
                let reply = conn.get("/stable/item").await?;
                if reply.status != 200 {
                    return Err(format!(
                        "status {} after {served} requests: {}",
                        reply.status, reply.text
                    ));
                }
                served += 1;
            }
            Ok::<u64, String>(served)
        }));
    }

    let mut pace = tokio::time::interval(Duration::from_millis(100));
    for i in 0..REVISIONS {
        pace.tick().await;
        let reply = match i % 4 {
            0 => {
                let route = json!({"name": format!("churn-{i}"), "paths": [{"prefix": format!("/churn/{i}")}], "backends": [{"upstream": "b"}]});
                admin.post("/v1/routes", &route).await
            }
            1 => {
                let route = json!({"name": format!("churn-{}", i - 1), "paths": [{"prefix": format!("/moved/{i}")}], "backends": [{"upstream": "b"}, {"upstream": "a"}]});
                admin
                    .put(&format!("/v1/routes/churn-{}", i - 1), &route)
                    .await
            }
            2 => admin.delete(&format!("/v1/routes/churn-{}", i - 2)).await,
            _ => {
                admin
                    .put("/v1/upstreams/a", &upstream_a(1 + (i as u32 % 5), 1))
                    .await
            }
        };
        assert!(
            reply.status < 300,
            "change {i}: {} {}",
            reply.status,
            reply.text
        );
    }
    let latest = admin.latest_revision().await;
    assert!(latest >= REVISIONS as u64, "{latest} revisions");
    for worker in &cluster.workers {
        eventually("workers at the last revision", CONVERGE, || async {
            let at = worker_revision(&cluster.client, worker).await?;
            if at == latest {
                Ok(())
            } else {
                Err(format!("at {at} of {latest}"))
            }
        })
        .await;
    }
    done.store(true, Ordering::SeqCst);

    for client in clients {
        let served = client
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("keep-alive client failed: {e}"));
        assert!(served > 0);
    }
    for chat in chats {
        let echoed = chat
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a WebSocket session failed: {e}"));
        assert!(echoed > 1, "messages before and after the revisions");
    }
    for stream in streams {
        let lines = stream
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a long-lived stream failed: {e}"));
        assert_eq!(lines, STREAM_CHUNKS, "every chunk of every stream arrived");
    }
}
