//! Graceful drain of a real worker process: SIGTERM under load loses no request the worker
//! accepted, `/readyz` answers 503 while draining, streams in flight finish within the drain
//! deadline and the deadline bounds the exit, keep-alive connections are closed politely (EOF on
//! an idle HTTP/1.1 one, `Connection: close` on a busy one, GOAWAY on HTTP/2), and a second
//! SIGINT exits at once.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gateway_tests::cluster::{CONVERGE, Cluster};
use gateway_tests::eventually;
use gateway_tests::http::send;
use gateway_tests::process::Signal;
use gateway_tests::topology::{Worker, WorkerOptions};
use gateway_tests::upstream::EchoServer;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Bound on any single wait in these tests; generous, only there to fail instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);
/// Concurrent keep-alive clients of the load test.
const CLIENTS: usize = 8;
/// Size of every load response, large enough that a truncated body cannot go unnoticed.
const LOAD_BODY_BYTES: usize = 16 * 1024;

/// The upstream behind `/app`: `/app/load?id=…` records the id and answers a body derived from
/// it, `/app/slow` holds its answer until the test releases it, anything else answers `pong`.
struct AppServer {
    addr: SocketAddr,
    seen: Arc<Mutex<BTreeSet<String>>>,
    slow_arrived: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AppServer {
    async fn start() -> AppServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let slow_arrived = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let (seen_by_server, arrived) = (seen.clone(), slow_arrived.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, arrived, released) =
                    (seen_by_server.clone(), arrived.clone(), released.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (seen, arrived, mut released) =
                        (seen.clone(), arrived.clone(), released.clone());
                    async move {
                        let path = request.uri().path();
                        let body = if path == "/app/load" {
                            let id = request.uri().query().unwrap_or("").to_owned();
                            seen.lock().unwrap().insert(id.clone());
                            load_body(&id)
                        } else if path == "/app/slow" {
                            arrived.fetch_add(1, Ordering::SeqCst);
                            let _ = released.wait_for(|released| *released).await;
                            Bytes::from_static(b"done")
                        } else {
                            Bytes::from_static(b"pong")
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(body)))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        AppServer {
            addr,
            seen,
            slow_arrived,
            release,
            task,
        }
    }

    fn seen(&self) -> BTreeSet<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn load_body(id: &str) -> Bytes {
    let mut body = format!("{id}\n").into_bytes();
    body.resize(LOAD_BODY_BYTES, b'.');
    Bytes::from(body)
}

/// A control plane and one worker started with the given drain flags, routing `/app` to an
/// [`AppServer`] and `/stream` to an [`EchoServer`].
struct Gateway {
    cluster: Cluster,
    app: AppServer,
    _echo: EchoServer,
}

impl Gateway {
    async fn start(drain_delay: &str, drain_timeout: &str) -> Gateway {
        let mut cluster = Cluster::start(0).await;
        let node_id = format!("drain-{}", uuid::Uuid::new_v4().simple());
        let mut options = WorkerOptions::new(&node_id, &cluster.control_plane.sync_url());
        options.extra_args = vec![
            "--drain-delay".into(),
            drain_delay.into(),
            "--drain-timeout".into(),
            drain_timeout.into(),
        ];
        cluster.workers.push(Worker::start_with(options));
        let app = AppServer::start().await;
        let echo = EchoServer::start("echo").await;
        for (name, addr) in [("app", app.addr.to_string()), ("echo", echo.address())] {
            let upstream = json!({"name": name, "targets": [{"address": addr}]});
            let reply = cluster.admin.post("/v1/upstreams", &upstream).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
        }
        for (prefix, upstream) in [("/app", "app"), ("/stream", "echo")] {
            let route = json!({"name": upstream, "paths": [{"prefix": prefix}],
                               "backends": [{"upstream": upstream}]});
            let reply = cluster.admin.post("/v1/routes", &route).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
        }
        // Both routes, not just the first: they arrive as separate revisions, and a test that
        // streams through `/stream` right after start must not race the second one.
        cluster.wait_served("/app/ping", 200, None, CONVERGE).await;
        cluster
            .wait_served("/stream/ping", 200, Some("echo"), CONVERGE)
            .await;
        cluster.wait_ready().await;
        Gateway {
            cluster,
            app,
            _echo: echo,
        }
    }

    fn worker(&mut self) -> &mut Worker {
        &mut self.cluster.workers[0]
    }

    fn proxy(&self) -> SocketAddr {
        self.cluster.workers[0].proxy_addr
    }

    fn signal(&self, signal: Signal) {
        self.cluster.workers[0].process.signal(signal);
    }

    async fn wait_not_ready(&self) {
        let worker = &self.cluster.workers[0];
        let client = &self.cluster.client;
        eventually("/readyz answers 503 while draining", CONVERGE, || async {
            let reply = send(client.get(worker.status_url("/readyz"))).await?;
            if reply.status == 503 {
                Ok(())
            } else {
                Err(format!("{} {}", reply.status, reply.text))
            }
        })
        .await;
    }

    async fn wait_stopped_accepting(&self) {
        let proxy = self.proxy();
        eventually("the proxy refuses connections", CONVERGE, || async {
            match TcpStream::connect(proxy).await {
                Ok(_) => Err("still accepting".to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
                Err(e) => Err(format!("connect failed otherwise: {e}")),
            }
        })
        .await;
    }

    async fn exited(&mut self, within: Duration) -> ExitStatus {
        self.worker().process.exited(within).await
    }

    fn log(&self) -> String {
        self.cluster.workers[0].process.log()
    }
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "drain.test")
        .body(Empty::new())
        .unwrap()
}

type Http1Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn http1(addr: SocketAddr) -> std::io::Result<(Http1Sender, JoinHandle<()>)> {
    let stream = TcpStream::connect(addr).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

fn asks_to_close(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// What one load client saw, request by request.
#[derive(Debug, Default)]
struct LoadOutcome {
    /// Ids answered with a complete 2xx and the right body.
    answered: Vec<String>,
    /// Of those, requests sent after SIGTERM.
    answered_after_signal: usize,
    /// Requests answered with anything else: a non-2xx status, a wrong or truncated body.
    bad: Vec<String>,
    /// Requests written on an open connection that ended without any response.
    lost: Vec<String>,
    /// Responses carrying `Connection: close`.
    told_to_close: usize,
    /// Keep-alive connections found closed before the next request was written.
    closed_while_idle: usize,
    /// Connection attempts refused.
    refused: usize,
}

/// Sends requests back to back over one keep-alive connection after the other until a connection
/// is refused; a connection is replaced when the worker asks to close it or closes it.
async fn load_client(proxy: SocketAddr, client: usize, signalled: Arc<AtomicBool>) -> LoadOutcome {
    let mut outcome = LoadOutcome::default();
    let mut sequence = 0;
    loop {
        let (mut sender, _driver) = match http1(proxy).await {
            Ok(connection) => connection,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                outcome.refused += 1;
                return outcome;
            }
            Err(error) => panic!("client {client}: connect failed: {error}"),
        };
        loop {
            if sender.ready().await.is_err() {
                outcome.closed_while_idle += 1;
                break;
            }
            let id = format!("{client}-{sequence}");
            sequence += 1;
            let after_signal = signalled.load(Ordering::SeqCst);
            let response = match sender.send_request(get(&format!("/app/load?{id}"))).await {
                Ok(response) => response,
                Err(error) => {
                    outcome.lost.push(format!("{id}: {error}"));
                    break;
                }
            };
            let status = response.status();
            let close = asks_to_close(&response);
            match response.into_body().collect().await.map(|b| b.to_bytes()) {
                Ok(body) if status.is_success() && body == load_body(&id) => {
                    outcome.answered.push(id);
                    outcome.answered_after_signal += usize::from(after_signal);
                }
                Ok(body) => outcome.bad.push(format!(
                    "{id}: {status} with a body of {} bytes",
                    body.len()
                )),
                Err(error) => outcome
                    .bad
                    .push(format!("{id}: {status}, body cut: {error}")),
            }
            if close {
                outcome.told_to_close += 1;
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_accepted_request_and_exits_zero() {
    let mut gateway = Gateway::start("1s", "30s").await;
    let proxy = gateway.proxy();
    let signalled = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| tokio::spawn(load_client(proxy, client, signalled.clone())))
        .collect();
    let app = &gateway.app;
    eventually("every client under way", CONVERGE, || async {
        let seen = app.seen();
        let started = (0..CLIENTS)
            .filter(|client| seen.contains(&format!("{client}-20")))
            .count();
        if started == CLIENTS {
            Ok(())
        } else {
            Err(format!("{started} of {CLIENTS} clients sent 20 requests"))
        }
    })
    .await;

    signalled.store(true, Ordering::SeqCst);
    gateway.signal(Signal::SIGTERM);
    gateway.wait_not_ready().await;
    let status = gateway.exited(PATIENCE * 2).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.log());

    let mut total = LoadOutcome::default();
    for client in clients {
        let outcome = timeout(PATIENCE, client)
            .await
            .expect("a load client never finished")
            .unwrap();
        total.answered.extend(outcome.answered);
        total.answered_after_signal += outcome.answered_after_signal;
        total.bad.extend(outcome.bad);
        total.lost.extend(outcome.lost);
        total.told_to_close += outcome.told_to_close;
        total.closed_while_idle += outcome.closed_while_idle;
        total.refused += outcome.refused;
    }
    println!(
        "answered {} ({} sent after SIGTERM), bad {}, lost {}, told to close {}, closed while idle {}, refused {}",
        total.answered.len(),
        total.answered_after_signal,
        total.bad.len(),
        total.lost.len(),
        total.told_to_close,
        total.closed_while_idle,
        total.refused
    );
    assert_eq!(total.bad, Vec::<String>::new(), "answered badly");
    assert_eq!(
        total.lost,
        Vec::<String>::new(),
        "written on an open connection and never answered"
    );
    // Every client ran until the drained worker refused it, and kept getting answers while the
    // worker drained.
    assert_eq!(total.refused, CLIENTS);
    assert!(total.answered_after_signal > 0, "no load during the drain");
    assert!(
        total.told_to_close > 0,
        "no busy connection was told to close"
    );
    // Exactly the requests that reached the upstream were answered: none was dropped in between.
    let answered: BTreeSet<String> = total.answered.into_iter().collect();
    assert_eq!(answered, gateway.app.seen());
}

/// A streaming response of `/stream` read chunk by chunk over its own HTTP/1.1 connection.
struct Stream {
    body: Incoming,
    received: String,
    _driver: JoinHandle<()>,
}

impl Stream {
    /// Opens `/stream?chunks=…&interval_ms=…` and waits for its first chunk.
    async fn open(proxy: SocketAddr, chunks: u64, interval_ms: u64) -> Stream {
        let (mut sender, driver) = http1(proxy).await.unwrap();
        let path = format!("/stream?chunks={chunks}&interval_ms={interval_ms}");
        let response = sender.send_request(get(&path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = Stream {
            body: response.into_body(),
            received: String::new(),
            _driver: driver,
        };
        while stream.received.is_empty() {
            let chunk = stream.next().await;
            assert!(matches!(chunk, Some(Ok(()))), "no first chunk: {chunk:?}");
        }
        stream
    }

    /// Reads the next data frame into `received`; `None` at the end of the body.
    async fn next(&mut self) -> Option<Result<(), hyper::Error>> {
        let frame = timeout(PATIENCE, self.body.frame())
            .await
            .expect("the stream stalled")?;
        Some(frame.map(|frame| {
            if let Ok(data) = frame.into_data() {
                self.received.push_str(&String::from_utf8_lossy(&data));
            }
        }))
    }

    /// Reads to the end of the body: `Err` if it was cut.
    async fn finish(&mut self) -> Result<(), hyper::Error> {
        while let Some(chunk) = self.next().await {
            chunk?;
        }
        Ok(())
    }
}

fn stream_text(chunks: u64) -> String {
    (0..chunks).map(|i| format!("chunk {i}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_fits_the_deadline_completes_and_then_the_worker_exits_zero() {
    let mut gateway = Gateway::start("0s", "30s").await;
    let mut stream = Stream::open(gateway.proxy(), 30, 100).await;

    gateway.signal(Signal::SIGTERM);
    gateway.wait_not_ready().await;
    stream.finish().await.expect("the stream was cut");
    assert_eq!(stream.received, stream_text(30));
    let status = gateway.exited(PATIENCE).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.log());
    assert!(gateway.log().contains("all connections drained"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_the_deadline_does_not_hold_the_exit() {
    let mut gateway = Gateway::start("0s", "2s").await;
    let mut stream = Stream::open(gateway.proxy(), 1_000_000, 20).await;

    gateway.signal(Signal::SIGTERM);
    let status = gateway.exited(Duration::from_secs(2) + PATIENCE).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.log());
    assert!(
        gateway.log().contains("drain deadline passed"),
        "{}",
        gateway.log()
    );
    assert!(
        stream.finish().await.is_err(),
        "the cut stream looked complete"
    );
}

/// A hand-written HTTP/1.1 keep-alive connection, to see exactly how the worker ends it.
struct RawHttp1 {
    stream: TcpStream,
}

impl RawHttp1 {
    async fn open(proxy: SocketAddr) -> RawHttp1 {
        RawHttp1 {
            stream: TcpStream::connect(proxy).await.unwrap(),
        }
    }

    /// One GET; returns the response head and body.
    async fn get(&mut self, path: &str) -> (String, Vec<u8>) {
        let request = format!("GET {path} HTTP/1.1\r\nhost: drain.test\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0; 4096];
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "connection closed inside a response head");
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())
                    .flatten()
            })
            .expect("a content-length");
        let mut body = buffer.split_off(head_end);
        while body.len() < length {
            let mut chunk = [0; 4096];
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "connection closed inside a response body");
            body.extend_from_slice(&chunk[..read]);
        }
        (head, body)
    }

    /// Waits for the peer to close the connection: `Ok` for a clean end of stream.
    async fn end(&mut self) -> std::io::Result<()> {
        let mut byte = [0; 1];
        match self.stream.read(&mut byte).await? {
            0 => Ok(()),
            _ => panic!("unexpected data on an idle connection"),
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_SETTINGS: u8 = 0x4;
const H2_PING: u8 = 0x6;
const H2_GOAWAY: u8 = 0x7;
const H2_ACK: u8 = 0x1;

/// Just enough HTTP/2 with prior knowledge to watch how the worker ends a connection: it
/// acknowledges SETTINGS and PING (a graceful GOAWAY waits for a PING round trip) and records
/// the error code of every GOAWAY.
struct H2Probe {
    stream: TcpStream,
}

impl H2Probe {
    /// Connects and waits for the worker's SETTINGS, so that the connection is established as
    /// HTTP/2 before the test goes on.
    async fn open(proxy: SocketAddr) -> H2Probe {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(H2_PREFACE).await.unwrap();
        write_frame(&mut stream, H2_SETTINGS, 0, &[]).await;
        let mut probe = H2Probe { stream };
        loop {
            let (kind, flags, _) = probe.read_frame().await.unwrap().expect("frames");
            if kind == H2_SETTINGS && flags & H2_ACK == 0 {
                break;
            }
        }
        probe
    }

    async fn read_frame(&mut self) -> std::io::Result<Option<(u8, u8, Vec<u8>)>> {
        let mut header = [0; 9];
        match self.stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0; length];
        self.stream.read_exact(&mut payload).await?;
        let (kind, flags) = (header[3], header[4]);
        if kind == H2_SETTINGS && flags & H2_ACK == 0 {
            write_frame(&mut self.stream, H2_SETTINGS, H2_ACK, &[]).await;
        }
        if kind == H2_PING && flags & H2_ACK == 0 {
            write_frame(&mut self.stream, H2_PING, H2_ACK, &payload).await;
        }
        Ok(Some((kind, flags, payload)))
    }

    /// Reads until the worker closes the connection; returns the GOAWAY error codes received.
    async fn goaways_until_end(&mut self) -> std::io::Result<Vec<u32>> {
        let mut codes = Vec::new();
        while let Some((kind, _, payload)) = self.read_frame().await? {
            if kind == H2_GOAWAY {
                codes.push(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
            }
        }
        Ok(codes)
    }
}

async fn write_frame(stream: &mut TcpStream, kind: u8, flags: u8, payload: &[u8]) {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    // The worker may already have closed its side; the caller sees that on its next read.
    let _ = stream.write_all(&frame).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_closes_idle_connections_politely_and_answers_busy_ones_with_connection_close() {
    let mut gateway = Gateway::start("0s", "60s").await;
    let proxy = gateway.proxy();
    // An idle HTTP/1.1 keep-alive connection that has served a request.
    let mut idle = RawHttp1::open(proxy).await;
    let (head, body) = idle.get("/app/ping").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"pong");
    // A busy one: its request is held by the upstream until released.
    let (mut busy, _busy_driver) = http1(proxy).await.unwrap();
    let pending = tokio::spawn(busy.send_request(get("/app/slow")));
    let arrived = &gateway.app.slow_arrived;
    eventually(
        "the slow request reached the upstream",
        CONVERGE,
        || async {
            match arrived.load(Ordering::SeqCst) {
                0 => Err("not yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    // Two idle HTTP/2 connections: one watched frame by frame, one through hyper's client.
    let mut probe = H2Probe::open(proxy).await;
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let h2_driver = tokio::spawn(connection);
    let request = Request::get("http://drain.test/app/ping")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(
        h2.send_request(request).await.unwrap().status(),
        StatusCode::OK
    );

    gateway.signal(Signal::SIGTERM);
    gateway.wait_not_ready().await;
    gateway.wait_stopped_accepting().await;
    timeout(PATIENCE, idle.end())
        .await
        .expect("the idle HTTP/1.1 connection was never closed")
        .expect("the idle HTTP/1.1 connection was reset instead of closed");
    let goaways = timeout(PATIENCE, probe.goaways_until_end())
        .await
        .expect("the idle HTTP/2 connection was never closed")
        .expect("the idle HTTP/2 connection was reset");
    assert!(!goaways.is_empty(), "no GOAWAY before the close");
    assert!(
        goaways.iter().all(|&code| code == 0),
        "GOAWAY with an error: {goaways:?}"
    );
    timeout(PATIENCE, h2_driver)
        .await
        .expect("hyper's HTTP/2 connection never ended")
        .unwrap()
        .expect("hyper's HTTP/2 connection ended with an error");
    assert!(
        gateway.worker().process.exit_status().is_none(),
        "the worker exited with a request in flight:\n{}",
        gateway.log()
    );

    gateway.app.release.send_replace(true);
    let response = timeout(PATIENCE, pending)
        .await
        .expect("the slow request never finished")
        .unwrap()
        .expect("the slow request failed");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(asks_to_close(&response), "{:?}", response.headers());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"done");
    let status = gateway.exited(PATIENCE).await;
    assert_eq!(status.code(), Some(0), "{}", gateway.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_with_a_stream_open() {
    let mut gateway = Gateway::start("0s", "10m").await;
    let mut stream = Stream::open(gateway.proxy(), 1_000_000, 20).await;

    gateway.signal(Signal::SIGINT);
    // The first signal must have been taken before the second is sent: two signals sent back to
    // back may be delivered as one.
    gateway.wait_not_ready().await;
    assert!(
        matches!(stream.next().await, Some(Ok(()))),
        "the stream stopped at the first signal"
    );
    gateway.signal(Signal::SIGINT);
    // Well before the ten-minute drain deadline.
    let status = gateway.exited(PATIENCE).await;
    assert_eq!(status.code(), Some(130), "{}", gateway.log());
    assert!(stream.finish().await.is_err(), "the stream looked complete");
}
