//! The exchange through real connections: request heads on the wire, response framing (length,
//! chunked with trailers, HEAD/204/304, 1xx, until close), keep-alive and reuse decisions, bad
//! heads and bodies, and connections the target closed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gateway_config::Protocol;
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderMap, HeaderValue, Method};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::upstream::connector::UpstreamConnector;
use crate::upstream::error::SendError;
use crate::upstream::pool::http1::Http1Pool;
use crate::upstream::test_support::{connector, counting_upstream};

/// What the scripted upstream does with a request, chosen by its path.
fn reply(path: &str) -> Option<&'static [u8]> {
    Some(match path {
        "/length" | "/then-close" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"
        }
        "/chunked" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n"
        }
        "/chunked-plain" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        }
        "/continue" => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        "/no-content" => b"HTTP/1.1 204 No Content\r\n\r\n",
        "/not-modified" => b"HTTP/1.1 304 Not Modified\r\ncontent-length: 100\r\n\r\n",
        "/close" => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        "/http10" => b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "/http10-keep" => b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok",
        "/keep-alive" => {
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\nok"
        }
        "/naming" => {
            b"HTTP/1.1 200 OK\r\nconnection: keep-alive, X-Internal\r\nx-internal: 1\r\nCONTENT-LENGTH: 2\r\n\r\nok"
        }
        "/close-upper" => b"HTTP/1.1 200 OK\r\nConnection: CLOSE\r\ncontent-length: 2\r\n\r\nok",
        "/te-not-chunked" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\ncontent-length: 3\r\n\r\nraw bytes"
        }
        "/until-close" => b"HTTP/1.1 200 OK\r\n\r\nall of it",
        "/http10-chunked" => {
            b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        }
        "/chunked-and-length" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        }
        "/short" => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
        "/bad-length" => b"HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabc",
        "/bad-chunk" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        "/not-http" => b"SSH-2.0-OpenSSH\r\n\r\n",
        "/upgrade" => b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        // Nothing: the connection closes without an answer.
        _ => return None,
    })
}

/// Reads request heads and answers each by [`reply`]; a response ending the connection, or a
/// request without a reply, closes it. Requests heads are kept in `seen`.
async fn serve_scripted<S>(mut stream: S, seen: Arc<std::sync::Mutex<Vec<String>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buffer = Vec::new();
    loop {
        let end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buffer.drain(..end).collect()).unwrap();
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let to_head = head.starts_with("HEAD ");
        seen.lock().unwrap().push(head);
        let Some(mut bytes) = reply(&path) else {
            return;
        };
        if to_head {
            let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            bytes = &bytes[..end + 4];
        }
        if stream.write_all(bytes).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        let closes = path == "/close"
            || path == "/close-upper"
            || path == "/te-not-chunked"
            || path == "/http10"
            || path == "/until-close"
            || path == "/short"
            || path == "/then-close";
        if closes {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

struct Upstream {
    authority: Authority,
    accepted: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn scripted() -> Upstream {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = seen.clone();
    let (authority, accepted) =
        counting_upstream(move |stream| serve_scripted(stream, heads.clone())).await;
    Upstream {
        authority,
        accepted,
        seen,
    }
}

fn pool() -> Arc<Http1Pool> {
    Arc::new(Http1Pool::new(
        connector(Protocol::Http1),
        1,
        Duration::from_secs(60),
    ))
}

fn headers(authority: &Authority) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_str(authority.as_str()).unwrap());
    headers
}

async fn send(
    pool: &Arc<Http1Pool>,
    upstream: &Upstream,
    method: Method,
    path: &str,
) -> Result<http::Response<ResponseBody<crate::upstream::pool::http1::Lender>>, SendError> {
    let headers = headers(&upstream.authority);
    pool.send_bodyless(0, &upstream.authority, &method, path, &headers, None)
        .await
}

/// The body's data and trailers, read to the end.
async fn read(
    response: http::Response<ResponseBody<crate::upstream::pool::http1::Lender>>,
) -> (Bytes, Option<HeaderMap>) {
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes(), trailers)
}

#[tokio::test]
async fn a_response_with_a_length_is_read_and_its_connection_reused() {
    let upstream = scripted().await;
    let pool = pool();
    for _ in 0..3 {
        let response = send(&pool, &upstream, Method::GET, "/length")
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-a"], "1");
        assert_eq!(response.headers()["content-length"], "5");
        assert_eq!(read(response).await.0, "hello");
        assert_eq!(pool.idle(0), 1, "given back as soon as the body ended");
    }
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    let seen = upstream.seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET /length HTTP/1.1\r\nhost: 127.0.0.1:"),
        "{}",
        seen[0]
    );
}

#[tokio::test]
async fn chunks_are_decoded_with_their_trailers() {
    let upstream = scripted().await;
    let pool = pool();
    let response = send(&pool, &upstream, Method::GET, "/chunked")
        .await
        .unwrap();
    let (data, trailers) = read(response).await;
    assert_eq!(data, "hello world");
    assert_eq!(trailers.unwrap()["x-checksum"], "abc");
    let response = send(&pool, &upstream, Method::GET, "/chunked-plain")
        .await
        .unwrap();
    assert_eq!(read(response).await, (Bytes::from("abc"), None));
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_that_cannot_exist_are_empty() {
    let upstream = scripted().await;
    let pool = pool();
    let head = send(&pool, &upstream, Method::HEAD, "/length")
        .await
        .unwrap();
    assert_eq!(head.headers()["content-length"], "5");
    assert!(head.body().is_end_stream());
    assert_eq!(read(head).await.0, "");
    for path in ["/no-content", "/not-modified"] {
        let response = send(&pool, &upstream, Method::GET, path).await.unwrap();
        assert_eq!(read(response).await.0, "");
    }
    let after = send(&pool, &upstream, Method::GET, "/length")
        .await
        .unwrap();
    assert_eq!(read(after).await.0, "hello");
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    let upstream = scripted().await;
    let response = send(&pool(), &upstream, Method::GET, "/continue")
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(read(response).await.0, "ok");
}

#[tokio::test]
async fn connections_that_do_not_stay_open_are_not_reused() {
    let upstream = scripted().await;
    let pool = pool();
    for (round, path) in ["/close", "/http10", "/until-close"]
        .into_iter()
        .enumerate()
    {
        let response = send(&pool, &upstream, Method::GET, path).await.unwrap();
        let (data, _) = read(response).await;
        assert!(!data.is_empty(), "{path}");
        assert_eq!(pool.idle(0), 0, "{path}");
        assert_eq!(upstream.accepted.load(Ordering::SeqCst), round + 1);
    }
    let response = send(&pool, &upstream, Method::GET, "/until-close")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "all of it");
    let response = send(&pool, &upstream, Method::GET, "/http10-keep")
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_10);
    read(response).await;
    assert_eq!(pool.idle(0), 1, "HTTP/1.0 with keep-alive is kept");
}

#[tokio::test]
async fn connection_fields_are_read_by_the_exchange_and_left_out() {
    let upstream = scripted().await;
    let pool = pool();
    let response = send(&pool, &upstream, Method::GET, "/keep-alive")
        .await
        .unwrap();
    assert!(response.headers().get("connection").is_none());
    assert!(response.headers().get("keep-alive").is_none());
    assert_eq!(read(response).await.0, "ok");
    assert_eq!(pool.idle(0), 1);
    // Fields named by Connection are the proxy's to remove, so Connection stays with them.
    let response = send(&pool, &upstream, Method::GET, "/naming")
        .await
        .unwrap();
    assert_eq!(response.headers()["connection"], "keep-alive, X-Internal");
    assert_eq!(response.headers()["x-internal"], "1");
    assert_eq!(response.headers()["content-length"], "2");
    assert_eq!(read(response).await.0, "ok");
    assert_eq!(pool.idle(0), 1);
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    // Tokens and names are matched without regard to case.
    let response = send(&pool, &upstream, Method::GET, "/close-upper")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "ok");
    assert_eq!(pool.idle(0), 0, "closed");
    // A transfer coding other than chunked last: the body runs until the connection closes,
    // whatever Content-Length says.
    let response = send(&pool, &upstream, Method::GET, "/te-not-chunked")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "raw bytes");
    assert_eq!(pool.idle(0), 0);
}

#[tokio::test]
async fn invalid_responses_are_errors() {
    let upstream = scripted().await;
    let pool = pool();
    for path in ["/bad-length", "/not-http", "/upgrade"] {
        let error = send(&pool, &upstream, Method::GET, path).await.unwrap_err();
        assert!(
            matches!(
                error,
                SendError::Exchange(ExchangeError::InvalidResponse(_))
            ),
            "{path}: {error}"
        );
    }
    for path in ["/short", "/bad-chunk"] {
        let response = send(&pool, &upstream, Method::GET, path).await.unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(
            matches!(
                error,
                ExchangeError::ClosedMidResponse | ExchangeError::InvalidResponse(_)
            ),
            "{path}: {error}"
        );
    }
    assert_eq!(pool.idle(0), 0);
}

#[tokio::test]
async fn framing_a_response_could_smuggle_with_is_refused_or_ends_its_connection() {
    let upstream = scripted().await;
    let pool = pool();
    // HTTP/1.0 has no transfer codings (RFC 9112 §6.1): such a response's framing is faulty.
    let error = send(&pool, &upstream, Method::GET, "/http10-chunked")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SendError::Exchange(ExchangeError::InvalidResponse(_))
        ),
        "{error}"
    );
    // With both fields, Transfer-Encoding frames the body, and the connection is not kept
    // (RFC 9112 §6.3).
    let response = send(&pool, &upstream, Method::GET, "/chunked-and-length")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "ok");
    assert_eq!(pool.idle(0), 0, "not pooled after CL + TE");
}

#[tokio::test]
async fn a_response_head_over_the_limit_is_refused() {
    let (authority, _) = counting_upstream(|mut stream: TcpStream| async move {
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).await;
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() <= MAX_HEAD_BYTES {
            head.extend_from_slice(b"x-filler: 0123456789012345678901234567890123456789\r\n");
        }
        let _ = stream.write_all(&head).await;
        let _ = stream.read(&mut request).await;
    })
    .await;
    let pool = pool();
    let headers = headers(&authority);
    let error = pool
        .send_bodyless(0, &authority, &Method::GET, "/", &headers, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SendError::Exchange(ExchangeError::HeadTooLarge | ExchangeError::InvalidResponse(_))
        ),
        "{error}"
    );
}

/// Gets an answer from a target that then closes the connection as it sits in the pool, and
/// polls the reaper until the pool has noticed.
async fn answer_then_close(pool: &Arc<Http1Pool>, upstream: &Upstream) {
    use crate::upstream::idle::Reap;

    let response = send(pool, upstream, Method::GET, "/then-close")
        .await
        .unwrap();
    read(response).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pool.idle(0) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close is never noticed"
        );
        pool.reap_at(pool.clock().now());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_target_is_not_used_again() {
    let upstream = scripted().await;
    let pool = pool();
    answer_then_close(&pool, &upstream).await;
    let response = send(&pool, &upstream, Method::GET, "/length")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "hello");
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_idempotent_request_unanswered_on_a_reused_connection_goes_out_again() {
    // Every connection answers its first request and closes without answering the second: the
    // second request on a reused connection gets no answer, so it is sent again on a new one.
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let (authority, accepted) = counting_upstream(move |mut stream: TcpStream| {
        let count = count.clone();
        async move {
            let mut request = [0u8; 4096];
            if stream.read(&mut request).await.unwrap_or(0) == 0 {
                return;
            }
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            let _ = stream.read(&mut request).await;
        }
    })
    .await;
    let pool = pool();
    let headers = headers(&authority);
    for _ in 0..3 {
        let response = pool
            .send_bodyless(0, &authority, &Method::GET, "/", &headers, None)
            .await
            .unwrap();
        assert_eq!(read(response).await.0, "ok");
    }
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    let response = pool
        .send_bodyless(0, &authority, &Method::POST, "/", &headers, None)
        .await;
    assert!(
        matches!(
            response,
            Err(SendError::Exchange(ExchangeError::ClosedBeforeAnswer))
        ),
        "a POST is not sent twice"
    );
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let upstream = scripted().await;
    let pool = pool();
    let response = send(&pool, &upstream, Method::GET, "/chunked")
        .await
        .unwrap();
    drop(response);
    assert_eq!(pool.idle(0), 0);
    let response = send(&pool, &upstream, Method::GET, "/length")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "hello");
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 2);
}

/// The scripted upstream behind TLS (TLS 1.3, which sends session tickets after the handshake).
async fn scripted_tls() -> (Upstream, UpstreamConnector) {
    let acceptor = crate::upstream::test_support::tls_acceptor();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = seen.clone();
    let (authority, accepted) = counting_upstream(move |stream| {
        let acceptor = acceptor.clone();
        let heads = heads.clone();
        async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_scripted(tls, heads).await;
            }
        }
    })
    .await;
    let tls = gateway_config::UpstreamTls {
        verify: false,
        ..gateway_config::UpstreamTls::default()
    };
    let connector = UpstreamConnector::new(
        Some(&tls),
        Protocol::Http1,
        Duration::from_secs(2),
        Arc::new(crate::upstream::circuit::Gauge::new(None)),
        Arc::new(crate::upstream::dns::DnsCache::default()),
        &crate::upstream::tls::SystemRoots::default(),
    );
    let upstream = Upstream {
        authority,
        accepted,
        seen,
    };
    (upstream, connector)
}

#[tokio::test]
async fn over_tls_connections_are_reused_and_a_close_is_noticed() {
    use crate::upstream::idle::Reap;

    let (upstream, connector) = scripted_tls().await;
    let pool = Arc::new(Http1Pool::new(connector, 1, Duration::from_secs(60)));
    for _ in 0..3 {
        let response = send(&pool, &upstream, Method::GET, "/length")
            .await
            .unwrap();
        assert_eq!(read(response).await.0, "hello");
        // The session tickets that arrived meanwhile do not make the connection look used.
        pool.reap_at(pool.clock().now());
        assert_eq!(pool.idle(0), 1);
    }
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    answer_then_close(&pool, &upstream).await;
    let response = send(&pool, &upstream, Method::POST, "/length")
        .await
        .unwrap();
    assert_eq!(read(response).await.0, "hello");
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 2);
}
