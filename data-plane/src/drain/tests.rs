//! Drain on the real listener and status port: `/readyz` turns 503 first while the proxy still
//! accepts, then accepting stops, idle keep-alive connections are closed (HTTP/1 and HTTP/2),
//! a request in flight completes with `Connection: close`, and the deadline cuts off what is
//! still running and reports it.

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
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::drain::stop_accepting;
use crate::listener::{DrainReport, ListenerSettings, serve};
use crate::proxy::{Proxy, ProxySettings};
use crate::served::Compiled;
use crate::served::{NodeIdentity, State};
use crate::status;

const DEADLINE: Duration = Duration::from_secs(5);

/// An upstream that answers `/fast` at once and holds `/slow` until released.
async fn start_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<()>, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let arrived = arrived_tx.clone();
            let gate = gate.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let arrived = arrived.clone();
                let gate = gate.clone();
                async move {
                    if request.uri().path() == "/slow" {
                        let _ = arrived.send(());
                        gate.notified().await;
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, arrived, release)
}

fn compiled(upstream: SocketAddr) -> Compiled {
    let json = format!(
        r#"{{"upstreams": [{{"name": "up", "targets": [{{"address": "{upstream}"}}]}}],
            "routes": [{{"name": "all", "backends": [{{"upstream": "up"}}]}}]}}"#
    );
    let config: Config = serde_json::from_str(&json).unwrap();
    config.validate().unwrap();
    let digest = gateway_config::digest(&config);
    Compiled::compile(1, digest, config).unwrap()
}

struct Worker {
    proxy: SocketAddr,
    status: SocketAddr,
    trigger: Option<oneshot::Sender<()>>,
    served: JoinHandle<DrainReport>,
}

async fn start_worker(upstream: SocketAddr, delay: Duration, deadline: Duration) -> Worker {
    let settings = ListenerSettings {
        drain_deadline: deadline,
        ..ListenerSettings::default()
    };
    start_worker_with(upstream, delay, settings).await
}

async fn start_worker_with(
    upstream: SocketAddr,
    delay: Duration,
    settings: ListenerSettings,
) -> Worker {
    let state = Arc::new(State::new(NodeIdentity {
        id: "drain".into(),
        group: "default".into(),
    }));
    state.store(compiled(upstream));
    let status_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let status = status_listener.local_addr().unwrap();
    tokio::spawn(status::serve(
        status_listener,
        state.clone(),
        std::future::pending(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let proxy = Arc::new(Proxy::new(state.clone(), ProxySettings::default()));
    let (trigger, requested) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        let requested = async move {
            let _ = requested.await;
        };
        serve(
            listener,
            proxy,
            settings,
            stop_accepting(&state, requested, delay),
        )
        .await
    });
    Worker {
        proxy: proxy_addr,
        status,
        trigger: Some(trigger),
        served,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// An HTTP/1.1 connection and the task driving it, which ends when the server closes it.
async fn http1(addr: SocketAddr) -> (Sender, JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driver)
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "drain.test")
        .body(Empty::new())
        .unwrap()
}

async fn readyz(status: SocketAddr) -> StatusCode {
    let (mut sender, _driver) = http1(status).await;
    sender.send_request(get("/readyz")).await.unwrap().status()
}

#[tokio::test]
async fn drain_reports_not_ready_first_then_stops_accepting_and_closes_politely() {
    let (upstream, mut arrived, release) = start_upstream().await;
    let mut worker = start_worker(upstream, Duration::from_millis(500), DEADLINE).await;

    // An idle keep-alive HTTP/1 connection that has served one request.
    let (mut idle, idle_driver) = http1(worker.proxy).await;
    let response = idle.send_request(get("/fast")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    // An idle HTTP/2 connection.
    let stream = TcpStream::connect(worker.proxy).await.unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let h2_driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get("http://drain.test/fast")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(
        h2.send_request(request).await.unwrap().status(),
        StatusCode::OK
    );
    // A request in flight.
    let (mut busy, _busy_driver) = http1(worker.proxy).await;
    let pending = tokio::spawn(busy.send_request(get("/slow")));
    timeout(DEADLINE, arrived.recv()).await.unwrap().unwrap();
    assert_eq!(readyz(worker.status).await, StatusCode::OK);

    let _ = worker.trigger.take().map(|t| t.send(()));
    let started = Instant::now();
    while readyz(worker.status).await != StatusCode::SERVICE_UNAVAILABLE {
        assert!(started.elapsed() < DEADLINE, "readyz never turned 503");
        tokio::task::yield_now().await;
    }
    // Not ready, but the drain delay has not passed: new connections are still taken.
    if started.elapsed() < Duration::from_millis(400) {
        assert!(TcpStream::connect(worker.proxy).await.is_ok());
    }

    while TcpStream::connect(worker.proxy).await.is_ok() {
        assert!(started.elapsed() < DEADLINE, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "accepting stopped before the drain delay"
    );
    timeout(DEADLINE, idle_driver)
        .await
        .expect("the idle HTTP/1 connection was not closed")
        .unwrap();
    timeout(DEADLINE, h2_driver)
        .await
        .expect("the idle HTTP/2 connection got no GOAWAY")
        .unwrap();
    assert!(
        !worker.served.is_finished(),
        "must wait for the request in flight"
    );

    release.notify_one();
    let response = timeout(DEADLINE, pending).await.unwrap().unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["connection"], "close");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"done");
    let report = timeout(DEADLINE, &mut worker.served)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report, DrainReport { cut_off: 0 });
}

#[tokio::test]
async fn the_deadline_cuts_off_what_is_still_running() {
    let (upstream, mut arrived, _release) = start_upstream().await;
    let mut worker = start_worker(upstream, Duration::ZERO, Duration::from_millis(200)).await;
    let (mut busy, _busy_driver) = http1(worker.proxy).await;
    let _pending = tokio::spawn(busy.send_request(get("/slow")));
    timeout(DEADLINE, arrived.recv()).await.unwrap().unwrap();

    let _ = worker.trigger.take().map(|t| t.send(()));
    let report = timeout(DEADLINE, &mut worker.served)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report, DrainReport { cut_off: 1 });
}

#[tokio::test]
async fn a_request_sent_right_after_a_response_while_draining_is_answered_with_connection_close() {
    let (upstream, _arrived, _release) = start_upstream().await;
    // A grace far longer than the test: the connection cannot be closed as idle meanwhile.
    let settings = ListenerSettings {
        drain_deadline: DEADLINE,
        drain_idle_grace: Duration::from_secs(600),
        ..ListenerSettings::default()
    };
    let mut worker = start_worker_with(upstream, Duration::ZERO, settings).await;
    let (mut kept, driver) = http1(worker.proxy).await;
    let response = kept.send_request(get("/fast")).await.unwrap();
    assert!(!response.headers().contains_key("connection"));
    response.into_body().collect().await.unwrap();

    let _ = worker.trigger.take().map(|t| t.send(()));
    let started = Instant::now();
    while TcpStream::connect(worker.proxy).await.is_ok() {
        assert!(started.elapsed() < DEADLINE, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The drain has begun and the connection was idle: the client's next request on it is
    // answered, and the worker asks to close the connection.
    let response = kept.send_request(get("/fast")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["connection"], "close");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"done");
    timeout(DEADLINE, driver)
        .await
        .expect("the connection stayed open after Connection: close")
        .unwrap();
    let report = timeout(DEADLINE, &mut worker.served)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report, DrainReport { cut_off: 0 });
}

#[tokio::test]
async fn an_idle_connection_is_closed_once_its_grace_has_run_out() {
    let (upstream, _arrived, _release) = start_upstream().await;
    let settings = ListenerSettings {
        drain_deadline: DEADLINE,
        drain_idle_grace: Duration::from_millis(200),
        ..ListenerSettings::default()
    };
    let mut worker = start_worker_with(upstream, Duration::ZERO, settings).await;
    let (mut idle, driver) = http1(worker.proxy).await;
    let response = idle.send_request(get("/fast")).await.unwrap();
    response.into_body().collect().await.unwrap();

    let _ = worker.trigger.take().map(|t| t.send(()));
    timeout(DEADLINE, driver)
        .await
        .expect("the idle connection was never closed")
        .unwrap();
    assert!(
        idle.ready().await.is_err(),
        "the connection still takes requests"
    );
    let report = timeout(DEADLINE, &mut worker.served)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report, DrainReport { cut_off: 0 });
}
