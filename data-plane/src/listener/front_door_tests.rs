//! The worker's front door on both of its server paths: every request here is sent twice, once
//! without a body (the listener's own HTTP/1 code serves it, unless the head makes it hand the
//! connection to hyper) and once with a body (hyper serves it), and both must be answered the
//! same way, so that the two paths cannot drift apart.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use crate::listener::ListenerSettings;
use crate::observe::metrics::Outcome;
use crate::proxy::ProxySettings;
use crate::proxy::tests::{
    Running, config, conversation, dead_address, scripted_upstream, start_proxy_configured,
    start_proxy_with, start_upstream,
};

async fn proxy_to(upstream: SocketAddr) -> Running {
    let compiled = config(upstream, dead_address().await, "/api");
    start_proxy_with(Some(compiled), ListenerSettings::default()).await
}

/// The request line, the given header lines and `connection: close`, without a body and with a
/// two-byte one.
fn both_ways(request_line: &str, fields: &str) -> [(&'static str, Vec<u8>); 2] {
    let head = format!("{request_line}\r\n{fields}connection: close\r\n");
    [
        ("without a body", format!("{head}\r\n").into_bytes()),
        (
            "with a body",
            format!("{head}content-length: 2\r\n\r\nhi").into_bytes(),
        ),
    ]
}

fn status_of(response: &str) -> &str {
    response.get(9..12).unwrap_or("")
}

/// `(what, request line, header lines, expected status)`.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "a plain request",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\n",
        "200",
    ),
    ("no Host on HTTP/1.1", "GET /api/x HTTP/1.1", "", "400"),
    (
        "two Host fields",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\nhost: a.test\r\n",
        "400",
    ),
    (
        "a Host with a space",
        "GET /api/x HTTP/1.1",
        "host: a b\r\n",
        "400",
    ),
    (
        "a Host with user info",
        "GET /api/x HTTP/1.1",
        "host: me@a.test\r\n",
        "400",
    ),
    (
        "a Host with a path",
        "GET /api/x HTTP/1.1",
        "host: a.test/x\r\n",
        "400",
    ),
    (
        "a Host with a bad port",
        "GET /api/x HTTP/1.1",
        "host: a.test:8o\r\n",
        "400",
    ),
    ("an empty Host", "GET /api/x HTTP/1.1", "host:\r\n", "200"),
    ("HTTP/1.0 without Host", "GET /api/x HTTP/1.0", "", "200"),
    (
        "an invalid target",
        "GET /api/a b HTTP/1.1",
        "host: a.test\r\n",
        "400",
    ),
    (
        "a folded field",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\nx-a: 1\r\n  more\r\n",
        "400",
    ),
    (
        "a space before the colon",
        "GET /api/x HTTP/1.1",
        "host : a.test\r\n",
        "400",
    ),
    (
        "a NUL in a value",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\nx-a: a\0b\r\n",
        "400",
    ),
    (
        "a field without a colon",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\nbad field\r\n",
        "400",
    ),
    (
        "an unknown HTTP version",
        "GET /api/x HTTP/1.7",
        "host: a.test\r\n",
        "400",
    ),
    (
        "a Content-Length that is not a number",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\ncontent-length: +0\r\n",
        "400",
    ),
    (
        "Content-Length values that disagree",
        "GET /api/x HTTP/1.1",
        "host: a.test\r\ncontent-length: 0\r\ncontent-length: 1\r\n",
        "400",
    ),
];

#[tokio::test]
async fn both_server_paths_answer_each_request_alike() {
    let proxy = proxy_to(start_upstream().await).await;
    for (what, request_line, fields, expected) in CASES {
        for (how, request) in both_ways(request_line, fields) {
            let response = conversation(&proxy, &request).await;
            assert_eq!(
                status_of(&response),
                *expected,
                "{what}, {how}:\n{response}"
            );
        }
    }
}

#[tokio::test]
async fn an_absolute_target_wins_over_host_on_both_paths() {
    let proxy = proxy_to(start_upstream().await).await;
    for (how, request) in both_ways(
        "GET http://x.preserved.test/p HTTP/1.1",
        "host: elsewhere.test\r\n",
    ) {
        let response = conversation(&proxy, &request).await;
        assert_eq!(status_of(&response), "200", "{how}:\n{response}");
        assert!(
            response.contains("host=x.preserved.test\n"),
            "{how}:\n{response}"
        );
    }
}

#[tokio::test]
async fn heads_over_the_limits_are_refused_on_both_paths() {
    let proxy = proxy_to(start_upstream().await).await;
    let long = format!("host: a.test\r\nx-long: {}\r\n", "a".repeat(70 * 1024));
    let many: String = (0..120).map(|i| format!("x-{i}: {i}\r\n")).collect();
    for (what, fields) in [
        ("a head over 64 KiB", long),
        ("over 100 fields", format!("host: a.test\r\n{many}")),
    ] {
        for (how, request) in both_ways("GET /api/x HTTP/1.1", &fields) {
            let response = conversation(&proxy, &request).await;
            assert_eq!(status_of(&response), "431", "{what}, {how}:\n{response}");
        }
    }
}

/// An upstream answering every request with a chunked body whose `Trailer` declares `x-sum` and
/// `set-cookie`, followed by those two trailers and an undeclared one.
async fn trailing_upstream() -> SocketAddr {
    scripted_upstream(b"HTTP/1.1 200 OK\r\ntrailer: x-sum, set-cookie\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 3\r\nset-cookie: a=b\r\nx-undeclared: 1\r\n\r\n").await
}

/// The trailer section of a chunked response: what follows its last chunk.
fn trailers_of(response: &str) -> &str {
    let at = response
        .find("\r\n0\r\n")
        .map_or(response.len(), |at| at + 5);
    response[at..].trim_end_matches("\r\n")
}

#[tokio::test]
async fn trailers_follow_one_rule_on_both_paths() {
    let proxy = proxy_to(trailing_upstream().await).await;
    for (how, request) in both_ways("GET /api/x HTTP/1.1", "host: a.test\r\nte: trailers\r\n") {
        let response = conversation(&proxy, &request).await;
        assert_eq!(status_of(&response), "200", "{how}:\n{response}");
        assert!(
            response
                .to_lowercase()
                .contains("\r\ntrailer: x-sum, set-cookie\r\n"),
            "`Trailer` is end to end; {how}:\n{response}"
        );
        // Declared and allowed: sent. Forbidden in a trailer, or undeclared: not.
        assert_eq!(trailers_of(&response), "x-sum: 3", "{how}:\n{response}");
    }
    for (how, request) in both_ways("GET /api/x HTTP/1.1", "host: a.test\r\n") {
        let response = conversation(&proxy, &request).await;
        assert_eq!(status_of(&response), "200", "{how}:\n{response}");
        assert_eq!(
            trailers_of(&response),
            "",
            "no trailers without `TE: trailers`; {how}:\n{response}"
        );
    }
}

/// Which server answered can be told from its status line to an HTTP/1.0 request: the
/// listener's own code answers in HTTP/1.1, as RFC 9110 §2.5 recommends; hyper in HTTP/1.0.
#[tokio::test]
async fn with_the_fast_path_off_hyper_serves_every_request() {
    let upstream = start_upstream().await;
    for (fast_path, status_line) in [
        (true, "HTTP/1.1 200 OK\r\n"),
        (false, "HTTP/1.0 200 OK\r\n"),
    ] {
        let compiled = config(upstream, dead_address().await, "/api");
        let settings = ListenerSettings {
            http1_fast_path: fast_path,
            ..ListenerSettings::default()
        };
        let proxy = start_proxy_with(Some(compiled), settings).await;
        let response = conversation(&proxy, b"GET /api/x HTTP/1.0\r\n\r\n").await;
        assert!(
            response.starts_with(status_line),
            "fast path {fast_path}:\n{response}"
        );
        assert!(response.contains("path=/x\n"), "{response}");
    }
}

/// An upstream that answers `200` with an empty body to every request, and hands each request
/// head (as text) to the test.
async fn recording_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                        buffer.drain(..end + 4);
                        let _ = heads.send(head);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                        continue;
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
    (addr, received)
}

/// An upstream that reads whatever it is sent and never answers.
async fn silent_upstream() -> SocketAddr {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// A proxy to `upstream` with the fast path on, and one with hyper serving every request.
async fn both_servers(upstream: SocketAddr) -> [(&'static str, Running); 2] {
    let fast = proxy_to(upstream).await;
    let hyper_only = start_proxy_with(
        Some(config(upstream, dead_address().await, "/api")),
        ListenerSettings {
            http1_fast_path: false,
            ..ListenerSettings::default()
        },
    )
    .await;
    [("fast path on", fast), ("hyper only", hyper_only)]
}

const CHUNKED_HI: &str = "2\r\nhi\r\n0\r\n\r\n";

#[tokio::test]
async fn transfer_codings_and_targets_are_checked_on_both_paths() {
    let (upstream, _heads) = recording_upstream().await;
    let post = |fields: &str, body: &str| {
        format!("POST /api/x HTTP/1.1\r\nhost: a.test\r\n{fields}connection: close\r\n\r\n{body}")
    };
    let cases = [
        ("chunked", post("transfer-encoding: chunked\r\n", CHUNKED_HI), "200"),
        (
            "chunked with an empty list element",
            post("transfer-encoding: chunked,\r\n", CHUNKED_HI),
            "200",
        ),
        (
            "chunked after empty list elements",
            post("transfer-encoding: , ,chunked , \r\n", CHUNKED_HI),
            "200",
        ),
        (
            "both Content-Length and Transfer-Encoding",
            post(
                "transfer-encoding: chunked\r\ncontent-length: 2\r\n",
                CHUNKED_HI,
            ),
            "400",
        ),
        (
            "both Transfer-Encoding and Content-Length",
            post(
                "content-length: 2\r\ntransfer-encoding: chunked\r\n",
                CHUNKED_HI,
            ),
            "400",
        ),
        (
            "a coding the worker does not decode",
            post("transfer-encoding: gzip, chunked\r\n", CHUNKED_HI),
            "501",
        ),
        (
            "chunked twice in one field",
            post("transfer-encoding: chunked, chunked\r\n", CHUNKED_HI),
            "400",
        ),
        (
            "Transfer-Encoding twice",
            post(
                "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n",
                CHUNKED_HI,
            ),
            "400",
        ),
        (
            "chunked not last",
            post("transfer-encoding: chunked, gzip\r\n", CHUNKED_HI),
            "400",
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            format!("POST /api/x HTTP/1.0\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n{CHUNKED_HI}"),
            "400",
        ),
        (
            "authority form without a body",
            "GET a.test:80 HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n".to_owned(),
            "400",
        ),
        (
            "authority form with a body",
            "POST a.test:80 HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi".to_owned(),
            "400",
        ),
    ];
    for (server, proxy) in both_servers(upstream).await {
        for (what, request, expected) in &cases {
            let response = conversation(&proxy, request.as_bytes()).await;
            assert_eq!(
                status_of(&response),
                *expected,
                "{what}, {server}:\n{response}"
            );
        }
    }
}

/// The same framing rules hold for a request that arrives on a connection hyper already serves
/// (after a request with a body), not only for the first one.
#[tokio::test]
async fn framing_is_checked_on_every_request_of_a_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (upstream, _heads) = recording_upstream().await;
    let first = "POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\n\r\nhi";
    let second = |fields: &str| {
        format!(
            "POST /api/x HTTP/1.1\r\nhost: a.test\r\n{fields}\r\n{CHUNKED_HI}\
             GET /api/after HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n"
        )
    };
    let cases = [
        ("chunked,", second("transfer-encoding: chunked,\r\n"), 3),
        (
            "Content-Length and Transfer-Encoding",
            second("content-length: 2\r\ntransfer-encoding: chunked\r\n"),
            2,
        ),
    ];
    for (server, proxy) in both_servers(upstream).await {
        for (what, second, answers) in &cases {
            let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
            stream.write_all(first.as_bytes()).await.unwrap();
            stream.write_all(second.as_bytes()).await.unwrap();
            let mut received = Vec::new();
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                stream.read_to_end(&mut received),
            )
            .await
            .expect("the proxy closes the connection")
            .unwrap();
            let received = String::from_utf8_lossy(&received);
            let statuses: Vec<&str> = received
                .match_indices("HTTP/1.1 ")
                .map(|(at, _)| &received[at + 9..at + 12])
                .collect();
            // Accepted: all three answered; refused: 400, closed, and nothing after it served.
            let expected: &[&str] = if *answers == 3 {
                &["200", "200", "200"]
            } else {
                &["200", "400"]
            };
            assert_eq!(statuses, expected, "{what}, {server}:\n{received}");
        }
    }
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_error_on_both_paths() {
    let upstream = silent_upstream().await;
    let bodies = [
        ("a size with 0x", "0x2\r\nhi\r\n0\r\n\r\n"),
        ("a bare LF", "2\nhi\r\n0\r\n\r\n"),
        (
            "a size that overflows",
            "fffffffffffffffffff\r\nhi\r\n0\r\n\r\n",
        ),
        ("an empty size", "\r\nhi\r\n0\r\n\r\n"),
        ("data past the size", "2\r\nhiya\r\n0\r\n\r\n"),
    ];
    for (server, proxy) in both_servers(upstream).await {
        for (what, body) in bodies {
            let request = format!(
                "POST /api/x HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n{body}"
            );
            let response = conversation(&proxy, request.as_bytes()).await;
            assert_eq!(status_of(&response), "400", "{what}, {server}:\n{response}");
        }
        // Counted as the client's error; the upstream took no blame.
        let metrics = proxy.state.metrics();
        assert_eq!(metrics.requests(Outcome::BadRequest), 5, "{server}");
        assert_eq!(
            metrics.requests(Outcome::UpstreamUnavailable),
            0,
            "{server}"
        );
    }
}

#[tokio::test]
async fn only_websocket_upgrades_go_through_and_underscored_names_do_not() {
    let (upstream, mut heads) = recording_upstream().await;
    for (server, proxy) in both_servers(upstream).await {
        for (what, fields) in [
            (
                "h2c",
                "connection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
            ),
            (
                "another protocol",
                "connection: upgrade\r\nupgrade: foo/1\r\n",
            ),
        ] {
            let request = format!(
                "GET /api/x HTTP/1.1\r\nhost: a.test\r\n{fields}x_forwarded_for: 6.6.6.6\r\nx-kept: 1\r\n\r\n"
            );
            let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = vec![0u8; 4096];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
                    .await
                    .unwrap()
                    .unwrap();
            let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
            assert_eq!(status_of(&answer), "200", "{what}, {server}:\n{answer}");
            let head = heads.recv().await.unwrap().to_ascii_lowercase();
            assert!(
                !head.contains("upgrade"),
                "{what}, {server}: forwarded {head}"
            );
            assert!(
                !head.contains("x_forwarded_for"),
                "{what}, {server}: {head}"
            );
            assert!(head.contains("x-kept: 1"), "{what}, {server}: {head}");
        }
    }
}

#[tokio::test]
async fn a_switch_nobody_asked_for_is_a_502() {
    let upstream = scripted_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n",
    )
    .await;
    for (server, proxy) in both_servers(upstream).await {
        for (what, fields) in [
            ("no upgrade", ""),
            (
                "a WebSocket upgrade",
                "connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            ),
        ] {
            let request =
                format!("GET /api/x HTTP/1.1\r\nhost: a.test\r\n{fields}connection: close\r\n\r\n");
            let response = conversation(&proxy, request.as_bytes()).await;
            assert_eq!(status_of(&response), "502", "{what}, {server}:\n{response}");
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_answered_408_on_both_paths() {
    let upstream = silent_upstream().await;
    for fast_path in [true, false] {
        let proxy = start_proxy_configured(
            Some(config(upstream, dead_address().await, "/api")),
            ListenerSettings {
                http1_fast_path: fast_path,
                ..ListenerSettings::default()
            },
            ProxySettings {
                body_read_timeout: std::time::Duration::from_millis(200),
                ..ProxySettings::default()
            },
        )
        .await;
        for request in [
            "POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 10\r\n\r\nhi",
            "POST /api/x HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n",
        ] {
            let response = conversation(&proxy, request.as_bytes()).await;
            assert_eq!(
                status_of(&response),
                "408",
                "fast path {fast_path}:\n{response}"
            );
            assert!(response.contains("request_timeout"), "{response}");
        }
        let metrics = proxy.state.metrics();
        assert_eq!(metrics.requests(Outcome::RequestTimeout), 2);
        assert_eq!(metrics.requests(Outcome::UpstreamUnavailable), 0);
    }
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait_for_one_to_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = start_upstream().await;
    let proxy = start_proxy_with(
        Some(config(upstream, dead_address().await, "/api")),
        ListenerSettings {
            max_connections: 2,
            ..ListenerSettings::default()
        },
    )
    .await;
    let request = b"GET /api/x HTTP/1.1\r\nhost: a.test\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = [0u8; 1024];
        let read = stream.read(&mut answer).await.unwrap();
        assert_eq!(status_of(&String::from_utf8_lossy(&answer[..read])), "200");
        open.push(stream);
    }
    // The kernel completes the third handshake; the worker does not take the connection.
    let mut waiting = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    waiting.write_all(request).await.unwrap();
    let mut answer = [0u8; 1024];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        waiting.read(&mut answer),
    )
    .await;
    assert!(early.is_err(), "answered beyond the limit");
    drop(open.pop());
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        waiting.read(&mut answer),
    )
    .await
    .expect("served once a connection closed")
    .unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&answer[..read])), "200");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_with_goaway() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let upstream = start_upstream().await;
    let proxy = start_proxy_with(
        Some(config(upstream, dead_address().await, "/api")),
        ListenerSettings {
            idle_timeout: std::time::Duration::from_millis(200),
            ..ListenerSettings::default()
        },
    )
    .await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("http://h2.example/api")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    // Idle now: the worker ends the connection, and the client's side of it ends cleanly.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), connection)
        .await
        .expect("the idle connection is closed");
    assert!(ended.unwrap().is_ok(), "closed with GOAWAY, not reset");
}

#[tokio::test]
async fn a_connection_is_closed_after_its_last_allowed_request_on_both_paths() {
    let upstream = start_upstream().await;
    for fast_path in [true, false] {
        let proxy = start_proxy_with(
            Some(config(upstream, dead_address().await, "/api")),
            ListenerSettings {
                http1_fast_path: fast_path,
                max_requests_per_connection: 2,
                ..ListenerSettings::default()
            },
        )
        .await;
        let request = "GET /api/x HTTP/1.1\r\nhost: a.test\r\n\r\n";
        let three = request.repeat(3);
        let answers = conversation(&proxy, three.as_bytes()).await;
        assert_eq!(
            answers.matches("HTTP/1.1 200").count(),
            2,
            "fast path {fast_path}:\n{answers}"
        );
        let last = answers.rfind("HTTP/1.1 200").unwrap();
        assert!(
            answers[last..]
                .to_ascii_lowercase()
                .contains("connection: close"),
            "fast path {fast_path}:\n{answers}"
        );
    }
}

/// An upstream that answers with a chunked stream, one chunk and then a long quiet, and tells
/// the test whether its connection was closed before the quiet ended.
async fn quiet_stream_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, told) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let start = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                if stream.write_all(start).await.is_err() {
                    return;
                }
                let mut rest = [0u8; 64];
                let early =
                    tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut rest))
                        .await;
                let _ = closed.send(matches!(early, Ok(Ok(0)) | Ok(Err(_))));
            });
        }
    });
    (addr, told)
}

#[tokio::test]
async fn a_client_that_leaves_a_quiet_stream_ends_the_upstream_request_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (upstream, mut told) = quiet_stream_upstream().await;
    for (server, proxy) in both_servers(upstream).await {
        let mut client = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        client
            .write_all(b"GET /api/events HTTP/1.1\r\nhost: a.test\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        while !String::from_utf8_lossy(&received).contains("first") {
            let mut chunk = [0u8; 1024];
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "{server}: closed early");
            received.extend_from_slice(&chunk[..n]);
        }
        drop(client);
        let closed_early = told.recv().await.unwrap();
        assert!(
            closed_early,
            "{server}: the upstream kept streaming to a client that left"
        );
    }
}

#[tokio::test]
async fn an_upstream_coding_the_worker_does_not_decode_is_a_502_on_both_paths() {
    for (what, answer, expected) in [
        (
            "gzip, close-delimited",
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\nconnection: close\r\n\r\nraw bytes"[..],
            "502",
        ),
        (
            "gzip, then chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "502",
        ),
        (
            "chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "200",
        ),
    ] {
        let upstream = scripted_upstream(answer).await;
        for (server, proxy) in both_servers(upstream).await {
            for request in [
                "GET /api/x HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n",
                "POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
            ] {
                let response = conversation(&proxy, request.as_bytes()).await;
                assert_eq!(
                    status_of(&response),
                    expected,
                    "{what}, {server}, {}:\n{response}",
                    &request[..4]
                );
                if expected == "502" {
                    assert!(!response.contains("raw bytes") && !response.contains("abc"));
                }
            }
        }
    }
}

/// One HTTP/2 frame: the 9-byte header and the payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![length[1], length[2], length[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK field literal, never indexed, with a literal name and no Huffman coding.
fn hpack_literal(name: &str, value: &str) -> Vec<u8> {
    let mut field = vec![0x10, u8::try_from(name.len()).unwrap()];
    field.extend_from_slice(name.as_bytes());
    field.push(u8::try_from(value.len()).unwrap());
    field.extend_from_slice(value.as_bytes());
    field
}

/// What the worker did with stream 1 of a prior-knowledge HTTP/2 connection: `Ok(status byte)`
/// for a response head (HPACK-indexed `:status`), `Err(error code)` for a stream reset.
async fn h2_stream_outcome(
    proxy: &Running,
    extra_field: Option<(&str, &str)>,
    body: bool,
) -> Result<u8, u32> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEADERS: u8 = 0x1;
    const DATA: u8 = 0x0;
    const RST_STREAM: u8 = 0x3;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    // :method GET or POST, :scheme http, then :authority and :path as literals.
    let mut block = vec![if body { 0x83 } else { 0x82 }, 0x86];
    block.extend(hpack_literal(":authority", "a.test"));
    block.extend(hpack_literal(":path", "/api/x"));
    if let Some((name, value)) = extra_field {
        block.extend(hpack_literal(name, value));
    }
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(h2_frame(0x4, 0, 0, &[]));
    let flags = if body {
        END_HEADERS
    } else {
        END_HEADERS | END_STREAM
    };
    bytes.extend(h2_frame(HEADERS, flags, 1, &block));
    if body {
        bytes.extend(h2_frame(DATA, END_STREAM, 1, b"hi"));
    }
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let outcome = async {
        loop {
            let mut head = [0u8; 9];
            stream.read_exact(&mut head).await.unwrap();
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; length];
            stream.read_exact(&mut payload).await.unwrap();
            match (head[3], id) {
                (HEADERS, 1) => return Ok(payload[0]),
                (RST_STREAM, 1) => {
                    return Err(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), outcome)
        .await
        .expect("stream 1 is answered or reset")
}

#[tokio::test]
async fn http2_requests_with_connection_specific_fields_are_refused_on_both_paths() {
    const STATUS_200: u8 = 0x88;
    const PROTOCOL_ERROR: u32 = 0x1;
    let (upstream, mut heads) = recording_upstream().await;
    // RFC 9113 §8.2.2: a message with any of these is malformed; `te` only as `trailers`.
    let refused = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ];
    for (server, proxy) in both_servers(upstream).await {
        for body in [false, true] {
            assert_eq!(
                h2_stream_outcome(&proxy, None, body).await,
                Ok(STATUS_200),
                "a plain request, body {body}, {server}"
            );
            assert_eq!(
                h2_stream_outcome(&proxy, Some(("te", "trailers")), body).await,
                Ok(STATUS_200),
                "te: trailers, body {body}, {server}"
            );
            while heads.try_recv().is_ok() {}
            for field in refused {
                assert_eq!(
                    h2_stream_outcome(&proxy, Some(field), body).await,
                    Err(PROTOCOL_ERROR),
                    "{field:?}, body {body}, {server}"
                );
            }
            assert!(
                heads.try_recv().is_err(),
                "a refused request reached the upstream"
            );
        }
    }
}

/// An HTTP/2 (h2c) upstream whose answers carry `count` fields of `size` bytes.
async fn h2c_upstream_with_fields(size: usize, count: usize) -> SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(
                move |_request: http::Request<hyper::body::Incoming>| async move {
                    let mut response = http::Response::builder();
                    for i in 0..count {
                        response = response.header(format!("x-big-{i}"), "b".repeat(size));
                    }
                    let response = response
                        .body(http_body_util::Empty::<bytes::Bytes>::new())
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .max_header_list_size(1 << 20)
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// A config routing `/h1` to the HTTP/1 upstream `http1` and `/h2c` to the h2c one `h2c`.
fn by_protocol(http1: SocketAddr, h2c: SocketAddr) -> crate::served::Compiled {
    let json = format!(
        r#"{{"upstreams": [
                {{"name": "h1", "targets": [{{"address": "{http1}"}}]}},
                {{"name": "h2c", "protocol": "h2c", "targets": [{{"address": "{h2c}"}}]}}],
            "routes": [
                {{"name": "h1", "paths": [{{"prefix": "/h1"}}], "backends": [{{"upstream": "h1"}}]}},
                {{"name": "h2c", "paths": [{{"prefix": "/h2c"}}], "backends": [{{"upstream": "h2c"}}]}}]}}"#
    );
    let config: gateway_config::Config = serde_json::from_str(&json).unwrap();
    config.validate().unwrap();
    let digest = gateway_config::digest(&config);
    crate::served::Compiled::compile(1, digest, config).unwrap()
}

#[tokio::test]
async fn the_response_head_limit_is_the_same_on_every_path() {
    use crate::upstream::exchange::MAX_HEAD_BYTES;

    // Under the limit with room for the other fields, and over it (yet well under hyper's own
    // HTTP/1 default of about 400 KiB).
    let within = MAX_HEAD_BYTES - 1024;
    let beyond = MAX_HEAD_BYTES + 16 * 1024;
    for (size, expected) in [(within, "200"), (beyond, "502")] {
        head_limit_is_alike(size, 1, expected).await;
    }
    // And the field count, which HTTP/2 does not limit by itself.
    let fields = gateway_http1::fields::MAX_FIELDS;
    head_limit_is_alike(10, fields - 5, "200").await;
    head_limit_is_alike(10, fields + 5, "502").await;
}

/// Upstream answers with `count` fields of `size` bytes get `expected` on every path.
async fn head_limit_is_alike(size: usize, count: usize, expected: &str) {
    {
        let fields: String = (0..count)
            .map(|i| format!("x-big-{i}: {}\r\n", "b".repeat(size)))
            .collect();
        let head = format!("HTTP/1.1 200 OK\r\n{fields}content-length: 0\r\n\r\n");
        let http1 = scripted_upstream(Box::leak(head.into_boxed_str()).as_bytes()).await;
        let h2c = h2c_upstream_with_fields(size, count).await;
        for http1_fast_path in [true, false] {
            let compiled = by_protocol(http1, h2c);
            let settings = ListenerSettings {
                http1_fast_path,
                ..ListenerSettings::default()
            };
            let proxy = start_proxy_with(Some(compiled), settings).await;
            for path in ["/h1", "/h2c"] {
                for (shape, request) in
                    both_ways(&format!("GET {path} HTTP/1.1"), "host: a.test\r\n")
                {
                    let response = conversation(&proxy, &request).await;
                    assert_eq!(
                        status_of(&response),
                        expected,
                        "{count} × {size} bytes from {path}, {shape}, fast path {http1_fast_path}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_head_timeout_until_the_idle_timeout() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = start_upstream().await;
    for http1_fast_path in [true, false] {
        let settings = ListenerSettings {
            http1_fast_path,
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(3),
            ..ListenerSettings::default()
        };
        let proxy = start_proxy_with(
            Some(config(upstream, dead_address().await, "/api")),
            settings,
        )
        .await;
        for (shape, request) in [
            (
                "without a body",
                &b"GET /api/x HTTP/1.1\r\nhost: a.test\r\n\r\n"[..],
            ),
            (
                "with a body",
                &b"POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\n\r\nhi"[..],
            ),
        ] {
            let what = format!("{shape}, fast path {http1_fast_path}");
            let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
            let mut answer = [0u8; 4096];
            let mut answered = Instant::now();
            for _ in 0..2 {
                stream.write_all(request).await.unwrap();
                let read = stream.read(&mut answer).await.unwrap();
                answered = Instant::now();
                assert_eq!(
                    status_of(&String::from_utf8_lossy(&answer[..read])),
                    "200",
                    "{what}"
                );
                // Idle for more than the head timeout (and the time buffers are kept).
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
                .await
                .expect("closed at the idle timeout");
            assert!(matches!(read, Ok(0) | Err(_)), "{what}: {read:?}");
            // The worker closes 3 s after it answered, which was before the answer was read.
            assert!(
                answered.elapsed() >= Duration::from_millis(1500),
                "{what}: closed before the idle timeout"
            );
        }
    }
}

const EARLY_HINTS: &str = "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\nconnection: x-hop\r\nx-hop: 1\r\n\r\n";

/// An upstream that answers each request with 103 Early Hints at once and its final answer only
/// when the test says so.
async fn hinting_upstream() -> (SocketAddr, tokio::sync::mpsc::UnboundedSender<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, mut went) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buffer = Vec::new();
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the request came whole");
            buffer.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(EARLY_HINTS.as_bytes()).await.unwrap();
        went.recv().await;
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        stream.write_all(answer).await.unwrap();
        // Kept open, as a kept-alive upstream connection is.
        let _ = stream.read(&mut [0u8; 1]).await;
    });
    (addr, go)
}

/// A proxy to `upstream`, with the fast path on or off.
async fn proxy_with_fast_path(upstream: SocketAddr, http1_fast_path: bool) -> Running {
    start_proxy_with(
        Some(config(upstream, dead_address().await, "/api")),
        ListenerSettings {
            http1_fast_path,
            ..ListenerSettings::default()
        },
    )
    .await
}

#[tokio::test]
async fn early_hints_reach_an_http11_client_before_the_answer_on_both_paths() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let get = "GET /api/page HTTP/1.1\r\nhost: a.test\r\n\r\n";
    let post = "POST /api/form HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\n\r\nhi";
    for http1_fast_path in [true, false] {
        for request in [get, post] {
            let what = format!("fast path {http1_fast_path}: {request:?}");
            let (upstream, go) = hinting_upstream().await;
            let proxy = proxy_with_fast_path(upstream, http1_fast_path).await;
            let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            // The hint arrives while the upstream still holds its answer back.
            let mut received = Vec::new();
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 1024];
                let n = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    stream.read(&mut chunk),
                )
                .await
                .unwrap_or_else(|_| panic!("{what}: the hint is passed on before the answer"))
                .unwrap();
                assert!(n > 0, "{what}");
                received.extend_from_slice(&chunk[..n]);
            }
            let hint = String::from_utf8_lossy(&received).into_owned();
            assert!(
                hint.starts_with("HTTP/1.1 103 Early Hints\r\n"),
                "{what}: {hint}"
            );
            assert!(
                hint.contains("link: </style.css>; rel=preload\r\n"),
                "{what}: {hint}"
            );
            assert!(
                !hint.contains("x-hop") && !hint.contains("connection"),
                "{what}: {hint}"
            );
            assert!(!hint.contains("200 OK"), "{what}: {hint}");
            go.send(()).unwrap();
            let mut rest = vec![0u8; 1024];
            let n = stream.read(&mut rest).await.unwrap();
            let answer = String::from_utf8_lossy(&rest[..n]).into_owned();
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{what}: {answer}");
        }
    }
}

/// An upstream that answers each request with 103 Early Hints and 200 at once.
async fn hinted_upstream() -> SocketAddr {
    let answer = format!("{EARLY_HINTS}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    scripted_upstream(Box::leak(answer.into_boxed_str()).as_bytes()).await
}

/// The statuses of the response heads in `response`, in order.
fn statuses(response: &str) -> Vec<&str> {
    response
        .match_indices("HTTP/1.")
        .map(|(at, _)| &response[at + 9..at + 12])
        .collect()
}

#[tokio::test]
async fn early_hints_go_only_where_they_can() {
    let upstream = hinted_upstream().await;
    let get = b"GET /api/x HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n";
    let get_10 = b"GET /api/x HTTP/1.0\r\nhost: a.test\r\n\r\n";
    let post =
        b"POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi";
    let post_10 = b"POST /api/x HTTP/1.0\r\nhost: a.test\r\ncontent-length: 2\r\n\r\nhi";
    for (server, proxy) in both_servers(upstream).await {
        for (what, request, expected) in [
            ("HTTP/1.1 without a body", &get[..], &["103", "200"][..]),
            ("HTTP/1.1 with a body", &post[..], &["103", "200"]),
            // HTTP/1.0 clients never get a 1xx (RFC 9110 §15.2).
            ("HTTP/1.0 without a body", &get_10[..], &["200"]),
            ("HTTP/1.0 with a body", &post_10[..], &["200"]),
        ] {
            let response = conversation(&proxy, request).await;
            assert_eq!(
                statuses(&response),
                expected,
                "{what}, {server}:\n{response}"
            );
        }
    }
}

#[tokio::test]
async fn a_client_that_expects_100_continue_gets_one() {
    // The upstream's own 100 comes too, after the worker's.
    let upstream = scripted_upstream(
        Box::leak(
            format!(
                "HTTP/1.1 100 Continue\r\n\r\n{EARLY_HINTS}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            )
            .into_boxed_str(),
        )
        .as_bytes(),
    )
    .await;
    let expecting = b"POST /api/x HTTP/1.1\r\nhost: a.test\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi";
    let not_expecting =
        b"POST /api/x HTTP/1.1\r\nhost: a.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi";
    for (server, proxy) in both_servers(upstream).await {
        for (what, request, expected) in [
            ("expecting", &expecting[..], &["100", "103", "200"][..]),
            ("not expecting", &not_expecting[..], &["103", "200"]),
        ] {
            let response = conversation(&proxy, request).await;
            assert_eq!(
                statuses(&response),
                expected,
                "{what}, {server}:\n{response}"
            );
        }
    }
}

/// An HTTP/2 (h2c) upstream that answers each request with 103 Early Hints (with a field an
/// HTTP/2 head may not carry), then 200.
async fn hinting_h2c_upstream() -> SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(
                move |request: http::Request<hyper::body::Incoming>| async move {
                    let hints = http::Response::builder()
                        .status(103)
                        .header("link", "</style.css>; rel=preload")
                        .body(())
                        .unwrap();
                    request
                        .extensions()
                        .get::<hyper::ext::InformationalSender>()
                        .expect("an HTTP/2 request can take informational responses")
                        .send(hints)
                        .unwrap();
                    // The hint goes out before the answer is ready.
                    tokio::task::yield_now().await;
                    let response = http::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"ok"),
                    ));
                    Ok::<_, std::convert::Infallible>(response)
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn early_hints_reach_an_http2_client_from_either_upstream_protocol() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::{Arc, Mutex};

    let http1 = hinted_upstream().await;
    let h2c = hinting_h2c_upstream().await;
    let compiled = by_protocol(http1, h2c);
    let proxy = start_proxy_with(Some(compiled), ListenerSettings::default()).await;

    let stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for path in ["/h1", "/h2c"] {
        for body in ["", "hi"] {
            let what = format!("{path}, body {body:?}");
            let mut request = http::Request::builder()
                .method(if body.is_empty() { "GET" } else { "POST" })
                .uri(format!("http://a.test{path}/x"))
                .body(Full::new(bytes::Bytes::from_static(body.as_bytes())))
                .unwrap();
            let hints = Arc::new(Mutex::new(Vec::new()));
            let seen = hints.clone();
            hyper::ext::on_informational(&mut request, move |response| {
                seen.lock().unwrap().push((
                    response.status(),
                    response.headers().get("link").cloned(),
                    response.headers().len(),
                ));
            });
            let response = client.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200, "{what}");
            let answer = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&answer[..], b"ok", "{what}");
            let link = http::HeaderValue::from_static("</style.css>; rel=preload");
            // The hop-by-hop fields are gone: `link` is all that is left.
            assert_eq!(
                *hints.lock().unwrap(),
                [(http::StatusCode::EARLY_HINTS, Some(link), 1)],
                "{what}"
            );
        }
    }
}
