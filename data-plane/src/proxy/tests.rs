//! End-to-end tests of the proxy inside the crate: a real upstream on 127.0.0.1, the real
//! listener, a compiled config stored directly in the state, and HTTP/1.1 and h2c clients.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gateway_config::Config;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::listener::{DrainReport, ListenerSettings, serve};
use crate::proxy::{Proxy, ProxySettings};
use crate::served::{Compiled, NodeIdentity, State};

/// An upstream that echoes what it received, one line per item.
pub(crate) async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service_fn(|request: Request<Incoming>| async move {
                let header = |name: &str| {
                    request
                        .headers()
                        .get_all(name)
                        .iter()
                        .map(|v| v.to_str().unwrap_or("?").to_owned())
                        .collect::<Vec<_>>()
                        .join("|")
                };
                let text = format!(
                    "path={}\nhost={}\nxff={}\nvia={}\nxfh={}\nconnection={}\n",
                    request.uri().path_and_query().map_or("", |p| p.as_str()),
                    header("host"),
                    header("x-forwarded-for"),
                    header("via"),
                    header("x-forwarded-host"),
                    header("x-secret"),
                );
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// An upstream that answers every request with `answer`, written by hand: it reads each request
/// head and the body its `Content-Length` declares, then writes `answer`, on kept-alive
/// connections.
pub(crate) async fn scripted_upstream(answer: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let body: usize = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|length| length.trim().parse().ok())
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + body {
                            buffer.drain(..end + 4 + body);
                            if stream.write_all(answer).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    }
                    let mut chunk = [0u8; 1024];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Sends `bytes` on a new connection to `proxy` and reads until the proxy closes it.
pub(crate) async fn conversation(proxy: &Running, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the proxy closes the connection")
        .unwrap();
    String::from_utf8_lossy(&received).into_owned()
}

/// An address where nothing listens.
pub(crate) async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

pub(crate) fn config(upstream: SocketAddr, dead: SocketAddr, prefix: &str) -> Compiled {
    let json = format!(
        r#"{{"upstreams": [
                {{"name": "up", "targets": [{{"address": "{upstream}"}}]}},
                {{"name": "dead", "targets": [{{"address": "{dead}"}}]}}],
            "routes": [
                {{"name": "api", "paths": [{{"prefix": "{prefix}"}}], "strip_prefix": true,
                  "backends": [{{"upstream": "up"}}]}},
                {{"name": "host", "hosts": ["*.preserved.test"], "preserve_host": true,
                  "backends": [{{"upstream": "up"}}]}},
                {{"name": "dead", "paths": [{{"exact": "/dead"}}],
                  "backends": [{{"upstream": "dead"}}]}}]}}"#
    );
    let config: Config = serde_json::from_str(&json).unwrap();
    config.validate().unwrap();
    let digest = gateway_config::digest(&config);
    Compiled::compile(1, digest, config).unwrap()
}

pub(crate) struct Running {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    pub stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<DrainReport>,
}

async fn start_proxy(compiled: Option<Compiled>) -> Running {
    start_proxy_with(compiled, ListenerSettings::default()).await
}

pub(crate) async fn start_proxy_with(
    compiled: Option<Compiled>,
    settings: ListenerSettings,
) -> Running {
    start_proxy_configured(compiled, settings, ProxySettings::default()).await
}

pub(crate) async fn start_proxy_configured(
    compiled: Option<Compiled>,
    settings: ListenerSettings,
    proxy_settings: ProxySettings,
) -> Running {
    let state = Arc::new(State::new(NodeIdentity {
        id: "test".into(),
        group: "default".into(),
    }));
    if let Some(compiled) = compiled {
        state.store(compiled);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Arc::new(Proxy::new(state.clone(), proxy_settings));
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, proxy, settings, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        state,
        stop: Some(stop),
        done,
    }
}

async fn text(response: Response<Incoming>) -> (StatusCode, String) {
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn error_code(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["error"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn http1_keep_alive_routes_strips_and_rewrites_headers() {
    let upstream = start_upstream().await;
    let dead = dead_address().await;
    let mut proxy = start_proxy(Some(config(upstream, dead, "/api"))).await;

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);

    let get = |path: &str, host: &str| {
        Request::get(path)
            .header("host", host)
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "x-secret")
            .header("x-secret", "leak")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let response = sender
        .send_request(get("/api/x?q=1", "Shop.Example"))
        .await
        .unwrap();
    assert_eq!(response.headers()["via"], "1.1 gateway");
    let (status, body) = text(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("path=/x?q=1\n"), "{body}");
    assert!(body.contains(&format!("host={upstream}\n")), "{body}");
    // Untrusted peer: the client's X-Forwarded-For is replaced.
    assert!(body.contains("xff=127.0.0.1\n"), "{body}");
    assert!(body.contains("via=1.1 gateway\n"), "{body}");
    assert!(body.contains("xfh=Shop.Example\n"), "{body}");
    assert!(body.contains("connection=\n"), "{body}");

    // Same connection: preserved host, then the proxy's own errors.
    sender.ready().await.unwrap();
    let response = sender
        .send_request(get("/p", "a.preserved.test:81"))
        .await
        .unwrap();
    let (status, body) = text(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("host=a.preserved.test:81\n"), "{body}");

    sender.ready().await.unwrap();
    let response = sender.send_request(get("/nothing", "x")).await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let (status, body) = text(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "no_route");

    sender.ready().await.unwrap();
    let (status, body) = text(sender.send_request(get("/dead", "x")).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(&body), "upstream_unavailable");

    // A new revision is picked up by the next request on the same, still open, connection.
    proxy.state.store(config(upstream, dead, "/v2"));
    sender.ready().await.unwrap();
    let (status, body) = text(sender.send_request(get("/v2/y", "x")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("path=/y\n"), "{body}");

    drop(sender);
    let _ = proxy.stop.take().map(|stop| stop.send(()));
    proxy.done.await.unwrap();
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let upstream = start_upstream().await;
    let dead = dead_address().await;
    let proxy = start_proxy(Some(config(upstream, dead, "/api"))).await;

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    let request = Request::get("http://h2.example/api")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (status, body) = text(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("path=/\n"), "{body}");
    assert!(body.contains("via=2 gateway\n"), "{body}");
    assert!(body.contains("xfh=h2.example\n"), "{body}");

    let request = Request::get("http://h2.example/nope")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let (status, body) = text(sender.send_request(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "no_route");
}

#[tokio::test]
async fn without_config_answers_503() {
    let proxy = start_proxy(None).await;
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/")
        .header("host", "x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let (status, body) = text(sender.send_request(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        r#"{"error":{"code":"no_config","message":"the worker has not received a configuration yet"}}"#
    );
}

#[tokio::test]
async fn smuggling_attempts_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = start_upstream().await;
    let dead = dead_address().await;
    let proxy = start_proxy(Some(config(upstream, dead, "/api"))).await;
    let send = |attack: &'static [u8]| async move {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(attack).await.unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = send(
        b"POST /api HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    // With both headers hyper lets Transfer-Encoding win, drops Content-Length and closes the
    // connection after the answer (RFC 9112 §6.3), so a smuggled request is never read.
    let response = send(
        b"POST /api HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    assert_eq!(response.matches("HTTP/1.1 ").count(), 1, "{response}");
    assert!(!response.contains("smuggled"), "{response}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    // An upstream that holds its answer until the test releases it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = service_fn(move |_request: Request<Incoming>| {
            let arrived = arrived_tx.clone();
            let gate = gate.clone();
            async move {
                let _ = arrived.send(());
                gate.notified().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"late"))))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
    let mut proxy = start_proxy(Some(config(upstream, dead_address().await, "/api"))).await;

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/api")
        .header("host", "x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let pending = tokio::spawn(sender.send_request(request));
    arrived.recv().await.unwrap();

    let _ = proxy.stop.take().map(|stop| stop.send(()));
    // New connections are refused once the accept loop stopped; poll until it has.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(proxy.addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::task::yield_now().await;
    }
    assert!(
        !proxy.done.is_finished(),
        "must wait for the request in flight"
    );
    release.notify_one();
    let (status, body) = text(pending.await.unwrap().unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "late"));
    tokio::time::timeout(Duration::from_secs(5), &mut proxy.done)
        .await
        .unwrap()
        .unwrap();
}
