//! The listener's own HTTP/1 serving, seen from raw client connections: keep-alive, pipelining,
//! HTTP/1.0, HEAD, response framing, hand-off to hyper on the same connection, the header-read
//! timeout and a client that goes away.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::listener::ListenerSettings;
use crate::proxy::tests::{
    Running, config, conversation, dead_address, scripted_upstream, start_proxy_with,
    start_upstream,
};

async fn proxy_to(upstream: SocketAddr, settings: ListenerSettings) -> Running {
    let compiled = config(upstream, dead_address().await, "/api");
    start_proxy_with(Some(compiled), settings).await
}

/// An upstream answering every request with a chunked body and a trailer it declares, by hand.
async fn chunked_upstream() -> SocketAddr {
    scripted_upstream(b"HTTP/1.1 200 OK\r\ntrailer: x-sum\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n").await
}

#[tokio::test]
async fn pipelined_and_kept_alive_requests_are_answered_in_order() {
    let proxy = proxy_to(start_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(
        &proxy,
        b"GET /api/one HTTP/1.1\r\nhost: a\r\n\r\nGET /api/two HTTP/1.1\r\nhost: a\r\n\r\n\
          GET /nowhere HTTP/1.1\r\nhost: a\r\n\r\nGET /api/three HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        replies.matches("HTTP/1.1 200 OK\r\n").count(),
        3,
        "{replies}"
    );
    assert_eq!(replies.matches("HTTP/1.1 404 Not Found\r\n").count(), 1);
    let one = replies.find("path=/one").unwrap();
    let two = replies.find("path=/two").unwrap();
    let missing = replies.find("no_route").unwrap();
    let three = replies.find("path=/three").unwrap();
    assert!(one < two && two < missing && missing < three, "{replies}");
    assert!(replies.contains("via: 1.1 gateway\r\n"));
    assert!(replies.contains("date: "), "{replies}");
    // Only the last answer says the connection ends.
    assert_eq!(replies.matches("connection: close\r\n").count(), 1);
}

#[tokio::test]
async fn http10_clients_keep_the_connection_only_when_they_ask() {
    let proxy = proxy_to(start_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(
        &proxy,
        b"GET /api/a HTTP/1.0\r\n\r\nGET /api/b HTTP/1.0\r\n\r\n",
    )
    .await;
    assert_eq!(replies.matches("HTTP/1.1 200 OK").count(), 1, "{replies}");
    assert!(replies.contains("connection: close\r\n"), "{replies}");

    let replies = conversation(
        &proxy,
        b"GET /api/a HTTP/1.0\r\nconnection: keep-alive\r\n\r\nGET /api/b HTTP/1.0\r\n\r\n",
    )
    .await;
    assert_eq!(replies.matches("HTTP/1.1 200 OK").count(), 2, "{replies}");
    assert!(replies.contains("connection: keep-alive\r\n"), "{replies}");
    assert!(replies.contains("path=/b"), "{replies}");
}

#[tokio::test]
async fn responses_to_head_carry_the_length_but_no_body() {
    let proxy = proxy_to(start_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(
        &proxy,
        b"HEAD /api/x HTTP/1.1\r\nhost: a\r\n\r\nGET /api/after HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (head, after) = replies.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-length: "), "{head}");
    // The next bytes are the second response, not a body.
    assert!(after.starts_with("HTTP/1.1 200 OK\r\n"), "{after}");
    assert!(after.contains("path=/after"), "{after}");
}

#[tokio::test]
async fn bodies_of_unknown_length_are_chunked_or_close_the_connection() {
    let proxy = proxy_to(chunked_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(
        &proxy,
        b"GET /api/x HTTP/1.1\r\nhost: a\r\nte: trailers\r\n\r\nGET /api/y HTTP/1.1\r\nhost: a\r\nte: trailers\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(replies.matches("transfer-encoding: chunked\r\n").count(), 2);
    assert_eq!(
        replies
            .matches("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n")
            .count(),
        2,
        "{replies}"
    );
    let replies = conversation(&proxy, b"GET /api/x HTTP/1.0\r\n\r\n").await;
    assert!(
        replies.ends_with("\r\nconnection: close\r\n\r\nabcde"),
        "{replies}"
    );
    assert!(!replies.contains("transfer-encoding"), "{replies}");
}

#[tokio::test]
async fn a_request_with_a_body_hands_the_connection_to_hyper() {
    let proxy = proxy_to(start_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(
        &proxy,
        b"GET /api/before HTTP/1.1\r\nhost: a\r\n\r\n\
          POST /api/upload HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello\
          GET /api/after HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        replies.matches("HTTP/1.1 200 OK\r\n").count(),
        3,
        "{replies}"
    );
    for path in ["path=/before", "path=/upload", "path=/after"] {
        assert!(replies.contains(path), "{path}: {replies}");
    }
    // A declared empty body is no body: served by the listener like any bodyless request.
    let replies = conversation(
        &proxy,
        b"DELETE /api/x HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(replies.starts_with("HTTP/1.1 200 OK\r\n"), "{replies}");
}

#[tokio::test]
async fn malformed_and_oversized_heads_get_hypers_answers() {
    let proxy = proxy_to(start_upstream().await, ListenerSettings::default()).await;
    let replies = conversation(&proxy, b"GET /api/x HTTP/1.1\r\nbad header\r\n\r\n").await;
    assert!(
        replies.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{replies}"
    );

    let mut big = b"GET /api/x HTTP/1.1\r\nhost: a\r\n".to_vec();
    for i in 0..2000 {
        big.extend_from_slice(format!("x-filler-{i}: {}\r\n", "v".repeat(32)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let replies = conversation(&proxy, &big).await;
    assert!(
        replies.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{replies}"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_closed() {
    let settings = ListenerSettings {
        header_read_timeout: Duration::from_millis(200),
        ..ListenerSettings::default()
    };
    let proxy = proxy_to(start_upstream().await, settings).await;
    // A first request answered, then half a head: the timeout counts from the wait for it.
    let replies = conversation(
        &proxy,
        b"GET /api/x HTTP/1.1\r\nhost: a\r\n\r\nGET /api/y HTTP/1.1\r\nhost:",
    )
    .await;
    assert_eq!(
        replies.matches("HTTP/1.1 200 OK\r\n").count(),
        1,
        "{replies}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_cancels_its_request_upstream() {
    // An upstream that never answers, and reports when a request arrives and when the proxy's
    // connection to it closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let events = events_tx.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 1024];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let _ = events.send("request");
                }
                let _ = events.send("closed");
            });
        }
    });
    let proxy = proxy_to(upstream, ListenerSettings::default()).await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    client
        .write_all(b"GET /api/slow HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("the upstream sees the request, then its end")
    };
    assert_eq!(next().await, Some("request"));
    drop(client);
    assert_eq!(next().await, Some("closed"));
}
