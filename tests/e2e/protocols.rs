//! Protocols end to end through a worker: a real WebSocket session (text, binary, a 1 MB message,
//! ping/pong and the closing handshake), an upgrade to any other protocol tunnelled both ways, an
//! h2c upstream, and 100 MB streamed up and down without the worker's memory growing.

use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use gateway_tests::cluster::Cluster;
use gateway_tests::http::send;
use gateway_tests::servers::bulk::BulkServer;
use gateway_tests::servers::upgrade::UpgradeEchoServer;
use gateway_tests::servers::websocket::WebSocketEchoServer;
use gateway_tests::upstream::EchoServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const HUNDRED_MB: usize = 100 * 1024 * 1024;

async fn serve(cluster: &Cluster, upstream: Value) {
    let route = json!({"name": "r", "paths": [{"prefix": "/"}], "backends": [{"upstream": "u"}]});
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [route]}))
        .await;
}

/// Waits for the next message of a WebSocket, failing on an error, an end or a long silence.
async fn next_message<S>(socket: &mut S) -> Message
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a message within 10 s")
        .expect("the WebSocket is still open")
        .expect("a well-formed message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_session_passes_through() {
    let cluster = Cluster::start(1).await;
    let server = WebSocketEchoServer::start().await;
    serve(
        &cluster,
        json!({"name": "u", "targets": [{"address": server.address()}]}),
    )
    .await;
    let url = format!("ws://{}/chat", cluster.workers[0].proxy_addr);
    let (mut socket, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    let via = response.headers().get("via").and_then(|v| v.to_str().ok());
    assert!(
        via.is_some_and(|v| v.contains("1.1 gateway")),
        "the handshake came through the worker: via {via:?}"
    );

    let megabyte: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    for message in [
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 0xfe, 0xff]),
        Message::text("ünïcödé ✓"),
        Message::binary(megabyte),
        Message::text("after the large one"),
    ] {
        socket.send(message.clone()).await.unwrap();
        assert_eq!(next_message(&mut socket).await, message);
    }

    socket
        .send(Message::Ping(bytes::Bytes::from_static(b"are you there")))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::Pong(bytes::Bytes::from_static(b"are you there"))
    );

    let goodbye = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    socket.close(Some(goodbye.clone())).await.unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::Close(Some(goodbye)),
        "the server answered the closing handshake"
    );
    let end = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the connection ends after the closing handshake");
    assert!(end.is_none(), "nothing after the close: {end:?}");
}

/// A protocol other than WebSocket that the route allows is switched to: the worker tunnels the
/// raw bytes. Where the route does not allow it, the request goes on as a plain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_another_protocol_is_tunnelled_both_ways_where_the_route_allows_it() {
    let cluster = Cluster::start(1).await;
    let server = UpgradeEchoServer::start().await;
    let upstream = json!({"name": "u", "targets": [{"address": server.address()}]});
    let allowing = json!({"name": "allowing", "paths": [{"prefix": "/tunnel"}],
                          "upgrades": ["example-binary/1"], "backends": [{"upstream": "u"}]});
    let plain = json!({"name": "plain", "paths": [{"prefix": "/plain"}],
                       "backends": [{"upstream": "u"}]});
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [allowing, plain]}))
        .await;
    let mut refused = tokio::net::TcpStream::connect(cluster.workers[0].proxy_addr)
        .await
        .unwrap();
    refused
        .write_all(
            b"GET /plain HTTP/1.1\r\nHost: tunnel.example.com\r\nConnection: Upgrade\r\n\
              Upgrade: example-binary/1\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).to_lowercase();
    // The upstream answers 400 to a request without `Upgrade`, which is what it received.
    assert!(answer.starts_with("http/1.1 400"), "{answer}");

    let mut stream = tokio::net::TcpStream::connect(cluster.workers[0].proxy_addr)
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /tunnel HTTP/1.1\r\nHost: tunnel.example.com\r\nConnection: Upgrade\r\n\
              Upgrade: example-binary/1\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: example-binary/1"), "{head}");
    for message in [
        &b"hello"[..],
        b"second message",
        &[0x81, 0x05, 1, 2, 3, 4, 5],
    ] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upstream_is_spoken_to_in_http2() {
    let cluster = Cluster::start(1).await;
    let echo = EchoServer::start("h2").await;
    serve(
        &cluster,
        json!({"name": "u", "protocol": "h2c", "targets": [{"address": echo.address()}]}),
    )
    .await;
    let reply = send(cluster.client.get(cluster.workers[0].url("/x")))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["version"], "HTTP/2.0");
    assert_eq!(reply.body["path"], "/x");
    assert_eq!(reply.body["authority"], echo.address().to_string());
    assert!(
        reply.body["headers"].get("host").is_none(),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upstream_gets_the_preserved_or_rewritten_host_as_authority() {
    let cluster = Cluster::start(1).await;
    let echo = EchoServer::start("h2").await;
    let upstream =
        json!({"name": "u", "protocol": "h2c", "targets": [{"address": echo.address()}]});
    let preserved = json!({"name": "preserved", "paths": [{"prefix": "/preserved"}],
        "backends": [{"upstream": "u"}], "preserve_host": true});
    let rewritten = json!({"name": "rewritten", "paths": [{"prefix": "/rewritten"}],
        "backends": [{"upstream": "u"}], "host_rewrite": "internal.test"});
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [preserved, rewritten]}))
        .await;
    for (path, host) in [
        ("/preserved", "shop.example.com"),
        ("/rewritten", "internal.test"),
    ] {
        let request = cluster
            .client
            .get(cluster.workers[0].url(path))
            .header("host", "shop.example.com");
        let reply = send(request).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body["version"], "HTTP/2.0");
        assert_eq!(reply.body["authority"], host, "{path}");
        assert!(
            reply.body["headers"].get("host").is_none(),
            "{}",
            reply.text
        );
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabytes_stream_up_and_down_in_flat_memory() {
    let cluster = Cluster::start(1).await;
    let bulk = BulkServer::start().await;
    serve(
        &cluster,
        json!({"name": "u", "targets": [{"address": bulk.address()}]}),
    )
    .await;
    let worker = &cluster.workers[0];
    let pid = worker.process.pid();
    let before = rss_kib(pid);

    let received = upload(worker.proxy_addr, HUNDRED_MB).await;
    assert_eq!(received["received"], HUNDRED_MB);

    let mut download = cluster
        .client
        .get(worker.url(&format!("/bytes?n={HUNDRED_MB}")))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let mut received = 0usize;
    while let Some(chunk) = download.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert_eq!(received, HUNDRED_MB);

    let growth = rss_kib(pid).saturating_sub(before);
    assert!(growth < 64 * 1024, "worker RSS grew by {growth} KiB");
}

/// POSTs `total` bytes in 64 KiB pieces produced as they are sent, and returns the JSON answer.
async fn upload(proxy: std::net::SocketAddr, total: usize) -> Value {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;

    let stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let chunk = bytes::Bytes::from(vec![b'y'; 64 * 1024]);
    let frames = tokio_stream::iter(
        (0..total / chunk.len()).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    );
    let request = hyper::Request::post("/upload")
        .header("host", "bulk")
        .body(StreamBody::new(frames))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(120), sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}
