//! The worker's front door on both of its server paths: every request here is sent twice, once
//! without a body (the listener's own HTTP/1 code serves it, unless the head makes it hand the
//! connection to hyper) and once with a body (hyper serves it), and both must be answered the
//! same way, so that the two paths cannot drift apart.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use crate::listener::ListenerSettings;
use crate::proxy::tests::{
    Running, config, conversation, dead_address, scripted_upstream, start_proxy_with,
    start_upstream,
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
