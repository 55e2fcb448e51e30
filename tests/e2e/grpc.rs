//! gRPC through a worker, HTTP/2 end to end: a tonic client speaking h2c with prior knowledge to
//! the worker, which speaks h2c to a tonic upstream. Unary calls, server, client and bidirectional
//! streams, error statuses with their trailing metadata (trailers-only and after messages), and
//! streams that outlast the route's timeout.

use std::time::Duration;

use futures_util::StreamExt;
use gateway_tests::cluster::Cluster;
use gateway_tests::servers::grpc::proto::{CountRequest, EchoRequest, FailRequest, SumRequest};
use gateway_tests::servers::grpc::{
    BINARY_DETAIL, DETAIL, EchoClient, GrpcEchoServer, check_chat, check_server_stream,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

/// A worker routing everything to a gRPC upstream, and a client connected to the worker.
struct Setup {
    client: EchoClient<Channel>,
    // Field order is drop order: the server goes before the cluster.
    _server: GrpcEchoServer,
    _cluster: Cluster,
}

async fn setup(route_extra: Value) -> Setup {
    let cluster = Cluster::start(1).await;
    let server = GrpcEchoServer::start().await;
    let upstream =
        json!({"name": "grpc", "protocol": "h2c", "targets": [{"address": server.address()}]});
    let mut route = json!({"name": "r", "paths": [{"prefix": "/gateway.test.echo.v1.Echo"}],
                           "backends": [{"upstream": "grpc"}]});
    if let (Some(route), Some(extra)) = (route.as_object_mut(), route_extra.as_object()) {
        route.extend(extra.clone());
    }
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [route]}))
        .await;
    let worker = &cluster.workers[0];
    let channel = Channel::from_shared(format!("http://{}", worker.proxy_addr))
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    Setup {
        client: EchoClient::new(channel),
        _server: server,
        _cluster: cluster,
    }
}

fn failure() -> FailRequest {
    FailRequest {
        code: Code::ResourceExhausted as i32,
        // Percent-encoded on the wire (RFC: grpc-message), so it must come back decoded as is.
        message: "quota exceeded: 100% used, ünïcödé ✓".into(),
        detail: "retry-after=30".into(),
        binary_detail: vec![0, 1, 2, 0x7f, 0x80, 0xfe, 0xff],
    }
}

fn assert_is_the_failure(status: &tonic::Status) {
    let expected = failure();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), expected.message);
    assert_eq!(status.details(), expected.binary_detail);
    let metadata = status.metadata();
    assert_eq!(
        metadata.get(DETAIL).and_then(|v| v.to_str().ok()),
        Some(expected.detail.as_str())
    );
    let binary = metadata
        .get_bin(BINARY_DETAIL)
        .expect("binary trailing metadata")
        .to_bytes()
        .unwrap();
    assert_eq!(binary.as_ref(), expected.binary_detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_call_passes_through_with_te_trailers() {
    let mut setup = setup(json!({})).await;
    let response = setup
        .client
        .echo(EchoRequest {
            text: "héllo, gRPC".into(),
        })
        .await
        .unwrap();
    let via = response
        .metadata()
        .get("via")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        via.contains("2 gateway"),
        "the answer came through the worker: via {via:?}"
    );
    let reply = response.into_inner();
    assert_eq!(reply.text, "héllo, gRPC");
    assert_eq!(reply.te, "trailers", "TE: trailers reached the upstream");
    assert!(reply.via.contains("2 gateway"), "via {:?}", reply.via);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_and_its_trailing_metadata_arrive_unchanged() {
    let mut setup = setup(json!({})).await;

    // Trailers-only: the status is in the one HEADERS frame of the answer.
    let status = setup.client.fail(failure()).await.unwrap_err();
    assert_is_the_failure(&status);

    // Real trailers: the status follows the messages of a stream.
    let mut stream = setup
        .client
        .count(CountRequest {
            count: 3,
            interval_ms: 0,
            fail: Some(failure()),
        })
        .await
        .unwrap()
        .into_inner();
    for expected in 1..=3 {
        let message = stream.message().await.unwrap().expect("a message");
        assert_eq!(message.number, expected);
    }
    let status = stream.message().await.unwrap_err();
    assert_is_the_failure(&status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_in_every_direction_pass_through() {
    let mut setup = setup(json!({})).await;

    // Server streaming: every message, in order, then the OK trailers.
    check_server_stream(&mut setup.client, 1000).await;

    // Client streaming.
    let numbers = futures_util::stream::iter(1..=500).map(|number| SumRequest { number });
    let sum = setup.client.sum(numbers).await.unwrap().into_inner();
    assert_eq!((sum.total, sum.count), (125_250, 500));

    // Bidirectional, interleaved: each answer arrives before the next message is sent.
    check_chat(&mut setup.client, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_longer_than_the_route_timeout_are_not_cut() {
    let mut setup = setup(json!({"timeout": "1s"})).await;

    // The answer's headers come at once, the messages over twice the timeout.
    let mut stream = setup
        .client
        .count(CountRequest {
            count: 20,
            interval_ms: 100,
            fail: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut numbers = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        numbers.push(message.number);
    }
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());

    // The answer comes only once the client has sent everything, over twice the timeout, but
    // the client is never silent for as long as the timeout.
    let numbers = futures_util::stream::iter(1..=20).then(|number| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        SumRequest { number }
    });
    let sum = setup.client.sum(numbers).await.unwrap().into_inner();
    assert_eq!((sum.total, sum.count), (210, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_own_answers_to_grpc_clients_are_grpc_statuses() {
    // Only Echo is routed: Count matches no route.
    let mut only_echo =
        setup(json!({"paths": [{"exact": "/gateway.test.echo.v1.Echo/Echo"}]})).await;
    let status = only_echo
        .client
        .count(CountRequest {
            count: 1,
            interval_ms: 0,
            fail: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(status.message(), "no route matches the request");

    // The client's deadline, shorter than the route's timeout, is the worker's too: a call the
    // upstream does not answer (a client stream that never ends) ends with DEADLINE_EXCEEDED
    // from the worker. Sent by hand, since tonic also enforces the deadline itself.
    let every_call = setup(json!({})).await;
    let cluster = &every_call._cluster;
    let stream = tokio::net::TcpStream::connect(cluster.workers[0].proxy_addr)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let (_open, frames) =
        mpsc::channel::<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>(1);
    let body = http_body_util::StreamBody::new(ReceiverStream::new(frames));
    let request = hyper::Request::post(format!(
        "http://{}/gateway.test.echo.v1.Echo/Sum",
        cluster.workers[0].proxy_addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-timeout", "300m")
    .body(body)
    .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), sender.send_request(request))
        .await
        .expect("the worker answers by the client's deadline")
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "4", "{headers:?}");
    assert_eq!(
        headers["grpc-message"],
        "the upstream did not answer in time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_grpc_upstream_is_unavailable() {
    let cluster = Cluster::start(1).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = dead.local_addr().unwrap().to_string();
    drop(dead);
    let upstream = json!({"name": "grpc", "protocol": "h2c", "targets": [{"address": address}]});
    let route = json!({"name": "r", "paths": [{"prefix": "/gateway.test.echo.v1.Echo"}],
                       "backends": [{"upstream": "grpc"}]});
    cluster
        .apply(&json!({"upstreams": [upstream], "routes": [route]}))
        .await;
    let channel = Channel::from_shared(format!("http://{}", cluster.workers[0].proxy_addr))
        .unwrap()
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let status = EchoClient::new(channel)
        .echo(EchoRequest { text: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
