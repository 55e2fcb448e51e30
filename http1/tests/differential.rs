//! Differential tests against hyper 1.x, whose HTTP/1 code serves every request the worker's
//! own fast path does not: the same bytes go into this crate and into a hyper connection over an
//! in-memory duplex stream, and both must come to the same decision.
//!
//! Server role: request bytes into [`parse_request`] (read in pieces, as the listener reads) and
//! into a hyper HTTP/1 server. When the crate serves a request, hyper must serve the same one
//! (method, target, version, fields, no body), keep the connection exactly when the crate says
//! so, and send trailers exactly when the crate says the client accepts them. When the crate
//! hands a request off, hyper decides: that is never a disagreement. When the crate waits for
//! more, hyper must not have served anything.
//!
//! Client role: response bytes into [`parse_response_head`] and [`BodyDecoder`] (read in pieces,
//! as the exchange reads) and into a hyper HTTP/1 client connection. Both must refuse the head,
//! fail in the body, or read the same status, version, fields, body and trailers, and agree on
//! whether the connection can carry another request. The few places where the crate differs on
//! purpose are [`Difference`]; each is asserted where it occurs.
//!
//! The clock is paused: when nothing can make progress, time jumps, so "hyper is waiting for
//! more" shows as a timeout that costs nothing.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fastrand::Rng;
use gateway_http1::body::{chunk_end, chunk_header, last_chunk};
use gateway_http1::fields::names_headers;
use gateway_http1::{
    BodyDecoder, Decoded, Framing, Parsed, encode_request_head, encode_response_head,
    parse_request, parse_response_head,
};
use http::header::{CONTENT_LENGTH, HOST, TRAILER, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// The head-size limit of the listener and the exchange, which is theirs to apply.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How much the listener and the exchange read at a time (at most).
const READ: usize = 8 * 1024;
/// Virtual time after which a side that made no progress is taken to wait for more.
const STALL: Duration = Duration::from_secs(5);
const SEED: u64 = 0x6874_7470_2f31_2e31;

type Fields = Vec<(String, Vec<u8>)>;

/// The fields of a map by name, each name's values in their order: what a `HeaderMap` means,
/// whatever order its names were first inserted in.
fn fields_of(headers: &HeaderMap) -> Fields {
    let mut fields: Fields = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() > 600 {
        format!(
            "{}… ({} bytes)",
            &text[..text.floor_char_boundary(600)],
            bytes.len()
        )
    } else {
        format!("{text:?}")
    }
}

/// `start`, then `count` fields `x-0: v` to `x-{count - 1}: v`, then `end`: a section of many
/// fields, for the limits on how many there may be.
fn with_numbered_fields(start: &[u8], count: usize, end: &[u8]) -> Vec<u8> {
    let mut out = start.to_vec();
    for i in 0..count {
        out.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    out.extend_from_slice(end);
    out
}

/// `start`, then fields of 2000 bytes until the head is `len` bytes or more, then the blank
/// line: a head over a size limit with no more fields than any other.
fn padded_head(start: &[u8], len: usize) -> Vec<u8> {
    let mut head = start.to_vec();
    while head.len() < len {
        head.extend_from_slice(b"x-filler: ");
        head.resize(head.len() + 2000, b'v');
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

// ---------------------------------------------------------------------------------------------
// Server role
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct ServedRequest {
    method: Method,
    uri: String,
    version: Version,
    fields: Fields,
}

#[derive(Debug)]
enum OurRequest {
    Served {
        request: ServedRequest,
        keep_alive: bool,
        accepts_trailers: bool,
        consumed: usize,
    },
    HandOff,
    Waiting,
}

/// What the listener makes of `input`, read in pieces as it reads them.
fn our_request(input: &[u8]) -> OurRequest {
    let mut buffer = BytesMut::new();
    let mut spans = Vec::new();
    let mut fed = 0;
    loop {
        let more = (input.len() - fed).min(READ);
        buffer.extend_from_slice(&input[fed..fed + more]);
        fed += more;
        if buffer.is_empty() {
            return OurRequest::Waiting;
        }
        let before = buffer.clone();
        match parse_request(&mut buffer, &mut spans, 100) {
            Parsed::Request(head) => {
                return OurRequest::Served {
                    request: ServedRequest {
                        method: head.parts.method,
                        uri: head.parts.uri.to_string(),
                        version: head.parts.version,
                        fields: fields_of(&head.parts.headers),
                    },
                    keep_alive: head.keep_alive,
                    accepts_trailers: head.accepts_trailers,
                    consumed: fed - buffer.len(),
                };
            }
            Parsed::HandOff => {
                assert_eq!(buffer, before, "a hand-off leaves the buffer as it was");
                return OurRequest::HandOff;
            }
            Parsed::Partial => assert_eq!(buffer, before),
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return OurRequest::HandOff;
        }
        if fed == input.len() {
            return OurRequest::Waiting;
        }
    }
}

/// A body of unknown length with a trailer field, which hyper sends chunked.
struct WithTrailer {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for WithTrailer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

type AnswerBody = http_body_util::Either<Full<Bytes>, WithTrailer>;

#[derive(Debug)]
struct HyperServed {
    requests: Vec<(ServedRequest, bool)>,
    response: Vec<u8>,
    /// hyper closed the connection after answering.
    closed: bool,
}

/// What a hyper HTTP/1 server, configured as the listener configures it, makes of `input`; with
/// `then_close`, the client closes its side after sending.
async fn hyper_request(input: &[u8], then_close: bool) -> HyperServed {
    let (client, server) = duplex(1 << 20);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let record = record.clone();
        async move {
            let (parts, body) = request.into_parts();
            let empty = body.is_end_stream();
            record.lock().unwrap().push((
                ServedRequest {
                    method: parts.method.clone(),
                    uri: parts.uri.to_string(),
                    version: parts.version,
                    fields: fields_of(&parts.headers),
                },
                empty,
            ));
            let body = if parts.version == Version::HTTP_11 && parts.method != Method::HEAD {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-t", HeaderValue::from_static("1"));
                AnswerBody::Right(WithTrailer {
                    data: Some(Bytes::from_static(b"ok")),
                    trailers: Some(trailers),
                })
            } else {
                AnswerBody::Left(Full::new(Bytes::from_static(b"ok")))
            };
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(TRAILER, HeaderValue::from_static("x-t"));
            Ok::<_, Infallible>(response)
        }
    });
    let connection = tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.max_buf_size(MAX_HEAD_BYTES);
        let _ = builder
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    let (mut reader, mut writer) = tokio::io::split(client);
    let write = async {
        let _ = timeout(STALL, writer.write_all(input)).await;
        if then_close {
            let _ = writer.shutdown().await;
        }
        writer
    };
    let read = async {
        let mut response = Vec::new();
        loop {
            match timeout(STALL, reader.read_buf(&mut response)).await {
                Ok(Ok(0) | Err(_)) => return (response, true),
                Ok(Ok(_)) => {}
                Err(_) => return (response, false),
            }
        }
    };
    let (_writer, (response, closed)) = tokio::join!(write, read);
    connection.abort();
    let requests = seen.lock().unwrap().clone();
    HyperServed {
        requests,
        response,
        closed,
    }
}

/// Checks one request both ways; `Err` says how they disagree.
async fn compare_request(input: &[u8]) -> Result<&'static str, String> {
    match our_request(input) {
        OurRequest::HandOff => Ok("handed off"),
        OurRequest::Waiting => {
            let hyper = hyper_request(input, true).await;
            if hyper.requests.is_empty() {
                Ok("waiting")
            } else {
                Err(format!(
                    "we wait for more, hyper served {:?}",
                    hyper.requests
                ))
            }
        }
        OurRequest::Served {
            request,
            keep_alive,
            accepts_trailers,
            consumed,
        } => {
            // Only the head: what follows would be hyper's next request, not this one.
            let hyper = hyper_request(&input[..consumed], false).await;
            let [(served, empty)] = &hyper.requests[..] else {
                return Err(format!(
                    "we serve {request:?}, hyper served {:?}; response {}",
                    hyper.requests,
                    show(&hyper.response)
                ));
            };
            if *served != request {
                return Err(format!("we serve {request:?}, hyper {served:?}"));
            }
            if !empty {
                return Err("hyper expects a body".to_owned());
            }
            if keep_alive == hyper.closed {
                return Err(format!(
                    "we keep the connection: {keep_alive}, hyper closed it: {}; response {}",
                    hyper.closed,
                    show(&hyper.response)
                ));
            }
            if request.version == Version::HTTP_11 && request.method != Method::HEAD {
                let sent = hyper
                    .response
                    .windows(13)
                    .any(|w| w == b"0\r\nx-t: 1\r\n\r\n");
                if sent != accepts_trailers {
                    return Err(format!(
                        "we accept trailers: {accepts_trailers}, hyper sent them: {sent}"
                    ));
                }
            }
            Ok("served")
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn edge_case_requests_agree_with_hyper() {
    // Long fields rather than many, so that only the size is over a limit.
    let huge = padded_head(b"GET / HTTP/1.1\r\nhost: a\r\n", 70 * 1024);
    let many = with_numbered_fields(b"GET / HTTP/1.1\r\n", 101, b"\r\n");
    let hundred = with_numbered_fields(b"GET / HTTP/1.1\r\n", 100, b"\r\n");

    // (bytes, what the crate does with them)
    let cases: Vec<(&[u8], &str)> = vec![
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "served"),
        (
            b"GET /a?b=c HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
            "served",
        ),
        (b"HEAD / HTTP/1.1\r\nhost: a\r\n\r\n", "served"),
        (b"OPTIONS * HTTP/1.1\r\nhost: a\r\n\r\n", "served"),
        (b"GET http://example.com/x HTTP/1.1\r\n\r\n", "served"),
        (b"GET /a#frag HTTP/1.1\r\n\r\n", "served"),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", "served"),
        (b"get / HTTP/1.1\r\n\r\n", "served"),
        (b"M-SEARCH * HTTP/1.1\r\n\r\n", "served"),
        // HTTP/1.0 and keep-alive.
        (b"GET / HTTP/1.0\r\n\r\n", "served"),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            "served",
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive, x-a\r\n\r\n",
            "served",
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            "served",
        ),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nConnection: x, CLOSE\r\n\r\n", "served"),
        (
            b"GET / HTTP/1.1\r\nConnection: close, caf\xc3\xa9\r\n\r\n",
            "served",
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive, \xff\r\n\r\n",
            "served",
        ),
        (b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nKeep-Alive: timeout=5\r\n\r\n", "served"),
        // TE: trailers.
        (b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nTE: gzip, Trailers \r\n\r\n", "served"),
        (
            b"GET / HTTP/1.1\r\nTE: gzip\r\nTE: trailers\r\n\r\n",
            "served",
        ),
        (b"GET / HTTP/1.1\r\nTE: trailers;q=1\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nTE: trailers, \xff\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nTE:\r\n\r\n", "served"),
        // Bodies and framing: all hyper's, whatever they say.
        (b"DELETE / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "served"),
        (
            b"DELETE / HTTP/1.1\r\nContent-Length:  0  \r\n\r\n",
            "served",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: +0\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "handed off",
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "handed off",
        ),
        (
            b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "handed off",
        ),
        (
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "handed off",
        ),
        (
            b"GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n",
            "handed off",
        ),
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", "handed off"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "handed off"),
        // Malformed heads: hyper answers them.
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "handed off",
        ),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "handed off"),
        (b"GET  / HTTP/1.1\r\n\r\n", "handed off"),
        (b"GET\t/ HTTP/1.1\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.2\r\n\r\n", "handed off"),
        (b"GET / http/1.1\r\n\r\n", "handed off"),
        (b"GET /\x7f HTTP/1.1\r\n\r\n", "handed off"),
        (b"GET /a<b HTTP/1.1\r\n\r\n", "handed off"),
        (b"GET a/b HTTP/1.1\r\n\r\n", "handed off"),
        (b"G(T / HTTP/1.1\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\nx: a\x00b\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\nx: a\x7fb\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\nx: a\rb\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", "handed off"),
        (&many, "handed off"),
        (&huge, "handed off"),
        (&hundred, "served"),
        // Line ends.
        (b"GET / HTTP/1.1\nHost: a\n\n", "served"),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", "served"),
        (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", "handed off"),
        (b"GET / HTTP/1.1\r\nx: obs-text \xe9\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nx:\tv\t\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nx:\r\n\r\n", "served"),
        // Pipelining and incomplete heads.
        (b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", "served"),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", "waiting"),
        (b"GET / HTTP/1.1\r\n\r", "waiting"),
        (b"GET / HTTP/1.1", "waiting"),
        (b"", "waiting"),
    ];
    for (input, expected) in cases {
        let verdict = compare_request(input).await;
        assert_eq!(verdict, Ok(expected), "{}", show(input));
    }
}

fn pick<'a, T: ?Sized>(rng: &mut Rng, items: &[&'a T]) -> &'a T {
    items[rng.usize(..items.len())]
}

/// A few byte-level edits: the kind of damage that finds edges a grammar misses.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const INTERESTING: &[u8] = b" \t\r\n:;,0aF\x00\x7f\xff";
    for _ in 0..rng.usize(1..=3) {
        if bytes.is_empty() {
            bytes.push(b'x');
            continue;
        }
        let at = rng.usize(..bytes.len());
        let byte = INTERESTING[rng.usize(..INTERESTING.len())];
        match rng.u8(..4) {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 => {
                bytes.remove(at);
            }
            _ => {
                let end = (at + rng.usize(1..16)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
}

fn line_end(rng: &mut Rng) -> &'static [u8] {
    match rng.u8(..20) {
        0 => b"\n",
        1 => b"\r",
        _ => b"\r\n",
    }
}

/// Mostly what clients send, with a share of what they should not: the fast path must see
/// enough requests it serves for the comparison to mean something.
fn random_request(rng: &mut Rng) -> Vec<u8> {
    let odd = |rng: &mut Rng| rng.u8(..8) == 0;
    let mut out = Vec::new();
    let method: &[u8] = if odd(rng) {
        pick(
            rng,
            &[&b"POST"[..], b"CONNECT", b"get", b"M-SEARCH", b"G(T", b""],
        )
    } else {
        pick(rng, &[&b"GET"[..], b"GET", b"HEAD", b"DELETE", b"OPTIONS"])
    };
    out.extend_from_slice(method);
    out.extend_from_slice(if odd(rng) {
        pick(rng, &[&b"  "[..], b"\t"])
    } else {
        b" "
    });
    let target: &[u8] = if odd(rng) {
        pick(
            rng,
            &[
                &b"*"[..],
                b"example.com:443",
                b"/caf\xc3\xa9",
                b"/a<b",
                b"//x",
                b"/a#f",
                b"?",
                b"/a\"b",
            ],
        )
    } else {
        pick(
            rng,
            &[
                &b"/"[..],
                b"/a/b?c=d",
                b"http://example.com/x",
                b"/api/v1/items",
            ],
        )
    };
    out.extend_from_slice(target);
    out.push(b' ');
    let version: &[u8] = if odd(rng) {
        pick(
            rng,
            &[&b"HTTP/1.2"[..], b"HTTP/2.0", b"http/1.1", b"HTTP/1.0"],
        )
    } else {
        pick(rng, &[&b"HTTP/1.1"[..], b"HTTP/1.1", b"HTTP/1.0"])
    };
    out.extend_from_slice(version);
    out.extend_from_slice(line_end(rng));
    for _ in 0..rng.usize(..6) {
        let field: &[u8] = if odd(rng) {
            pick(
                rng,
                &[
                    &b"content-length: 5"[..],
                    b"Content-Length: 0, 0",
                    b"Transfer-Encoding: chunked",
                    b"Expect: 100-continue",
                    b"Upgrade: websocket",
                    b"Host : a",
                    b" folded",
                    b"X-A: a\x00b",
                ],
            )
        } else {
            pick(
                rng,
                &[
                    &b"Host: example.com"[..],
                    b"host: a",
                    b"Content-Length: 0",
                    b"Content-Length:  0 ",
                    b"Connection: close",
                    b"Connection: keep-alive",
                    b"connection: Keep-Alive, X-A",
                    b"Connection: close, \xff",
                    b"Connection: keep-alive, \xff",
                    b"Connection: te",
                    b"TE: trailers",
                    b"te: gzip, trailers",
                    b"TE: trailers;q=0.5",
                    b"te: Trailers ",
                    b"TE: \xfftrailers, trailers",
                    b"Keep-Alive: timeout=5",
                    b"X-A: caf\xc3\xa9",
                    b"x-a: ",
                    b"X-Empty:",
                    b"Cookie: a=b; c=d",
                ],
            )
        };
        out.extend_from_slice(field);
        out.extend_from_slice(line_end(rng));
    }
    out.extend_from_slice(line_end(rng));
    match rng.u8(..6) {
        0 => out.extend_from_slice(b"hello"),
        1 => out.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n"),
        _ => {}
    }
    if rng.u8(..4) == 0 {
        mutate(rng, &mut out);
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn random_requests_agree_with_hyper() {
    let mut rng = Rng::with_seed(SEED);
    let mut verdicts = std::collections::BTreeMap::new();
    for _ in 0..5000 {
        let input = random_request(&mut rng);
        match compare_request(&input).await {
            Ok(verdict) => *verdicts.entry(verdict).or_insert(0) += 1,
            Err(disagreement) => panic!("{disagreement}\ninput: {}", show(&input)),
        }
    }
    println!("{verdicts:?}");
    // The corpus must exercise every outcome, or it tests less than it seems to.
    for verdict in ["served", "handed off", "waiting"] {
        assert!(
            verdicts.get(verdict).copied().unwrap_or(0) > 20,
            "{verdicts:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Client role
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Message {
    status: u16,
    version: Version,
    fields: Fields,
    body: Vec<u8>,
    trailers: Option<Fields>,
    /// The connection can carry another request: kept alive, ended without the connection
    /// closing, nothing unasked-for after the response.
    reusable: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    HeadRefused,
    BodyFailed { status: u16 },
    Complete(Message),
}

#[derive(Debug)]
struct Ours {
    outcome: Outcome,
    reason: &'static str,
    framing: Option<Framing>,
}

/// What the exchange makes of `input`, read in pieces as it reads them.
fn our_response(input: &[u8], to_head_request: bool) -> Ours {
    let mut buffer = BytesMut::new();
    let mut spans = Vec::new();
    let mut fed = 0;
    let mut read_more = |buffer: &mut BytesMut| {
        let more = (input.len() - fed).min(READ);
        buffer.extend_from_slice(&input[fed..fed + more]);
        fed += more;
        more > 0
    };
    let refused = |reason| Ours {
        outcome: Outcome::HeadRefused,
        reason,
        framing: None,
    };
    let head = loop {
        if !buffer.is_empty() {
            match parse_response_head(&mut buffer, &mut spans, to_head_request) {
                Err(error) => return refused(error.reason()),
                Ok(Some(head)) if head.parts.status.is_informational() => continue,
                Ok(Some(head)) => break head,
                Ok(None) => {}
            }
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return refused("head over the limit");
        }
        if !read_more(&mut buffer) {
            return refused("closed before the head ended");
        }
    };
    let status = head.parts.status.as_u16();
    let mut decoder = BodyDecoder::new(head.framing);
    let mut body = Vec::new();
    let mut trailers = None;
    let mut closed = false;
    let failed = |reason| Ours {
        outcome: Outcome::BodyFailed { status },
        reason,
        framing: Some(head.framing),
    };
    loop {
        let consumed_before = buffer.len();
        match decoder.decode(&mut buffer) {
            Ok(Decoded::Data(data)) => {
                assert!(!data.is_empty() && data.len() <= consumed_before);
                body.extend_from_slice(&data);
            }
            Ok(Decoded::Trailers(map)) => {
                assert!(decoder.is_done());
                trailers = Some(fields_of(&map));
            }
            Ok(Decoded::End) => break,
            Ok(Decoded::NeedMore) => {
                if !read_more(&mut buffer) {
                    closed = true;
                    if decoder.end_of_input().is_err() {
                        return failed("closed mid-body");
                    }
                }
            }
            Err(error) => return failed(error.reason()),
        }
    }
    let reusable = head.keep_alive && !closed && buffer.is_empty() && fed == input.len();
    Ours {
        outcome: Outcome::Complete(Message {
            status,
            version: head.parts.version,
            fields: fields_of(&head.parts.headers),
            body,
            trailers,
            reusable,
        }),
        reason: "complete",
        framing: Some(head.framing),
    }
}

/// Awaits `future`; if it makes no progress, closes the target's side of the connection (the
/// only thing that can end a wait for more) and awaits it again.
async fn settle<F: Future>(future: F, close: &mut Option<oneshot::Sender<()>>) -> F::Output {
    let mut future = std::pin::pin!(future);
    if let Ok(output) = timeout(STALL, &mut future).await {
        return output;
    }
    if let Some(close) = close.take() {
        let _ = close.send(());
    }
    timeout(STALL, future)
        .await
        .expect("hyper still waits after the connection closed")
}

/// What a hyper HTTP/1 client connection, configured as the worker's pool configures it,
/// makes of `input` as the answer to a GET (or HEAD).
async fn hyper_response(input: &[u8], to_head_request: bool) -> (Outcome, String) {
    let (client, mut server) = duplex(64 * 1024);
    let (close_tx, mut close_rx) = oneshot::channel::<()>();
    let input = input.to_vec();
    let target = tokio::spawn(async move {
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match server.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        tokio::select! {
            _ = server.write_all(&input) => { let _ = (&mut close_rx).await; }
            _ = &mut close_rx => {}
        }
    });
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let method = if to_head_request {
        Method::HEAD
    } else {
        Method::GET
    };
    let request = Request::builder()
        .method(method)
        .uri("/")
        .header(HOST, "upstream")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut close = Some(close_tx);
    let outcome = match settle(sender.send_request(request), &mut close).await {
        Err(error) => (Outcome::HeadRefused, error.to_string()),
        Ok(response) => {
            let (parts, mut body) = response.into_parts();
            let status = parts.status.as_u16();
            let mut data = Vec::new();
            let mut trailers = None;
            let mut failure = None;
            loop {
                match settle(body.frame(), &mut close).await {
                    None => break,
                    Some(Err(error)) => {
                        failure = Some(error.to_string());
                        break;
                    }
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(bytes) => data.extend_from_slice(&bytes),
                        Err(frame) => {
                            // hyper passes on an empty trailer section (one whose lines httparse
                            // reads as no field) as an empty frame; the crate, as nothing.
                            if let Ok(map) = frame.into_trailers()
                                && !map.is_empty()
                            {
                                trailers = Some(fields_of(&map));
                            }
                        }
                    },
                }
            }
            if let Some(failure) = failure {
                (Outcome::BodyFailed { status }, failure)
            } else {
                let reusable = close.is_some()
                    && timeout(STALL, sender.ready())
                        .await
                        .expect("hyper neither reuses nor closes")
                        .is_ok();
                // The crate leaves out what only managed the connection.
                let fields = fields_of(&parts.headers)
                    .into_iter()
                    .filter(|(name, value)| {
                        name != "keep-alive" && (name != "connection" || names_headers(value))
                    })
                    .collect();
                let message = Message {
                    status,
                    version: parts.version,
                    fields,
                    body: data,
                    trailers,
                    reusable,
                };
                (Outcome::Complete(message), String::new())
            }
        }
    };
    drop(close);
    connection.abort();
    target.abort();
    outcome
}

/// The places where the crate and hyper's client differ on purpose.
///
/// | difference | the crate | hyper | why |
/// |---|---|---|---|
/// | `Upgrade101` | refuses a `101` | reads it as an upgrade | the exchange never asks for an upgrade (upgrades go through hyper end to end); an unasked-for switch leaves the connection in an unknown protocol |
/// | `TransferEncodingWithLength` | frames by `Transfer-Encoding`, does not reuse the connection | frames the same, reuses it | RFC 9112 §6.3: such a message "ought to be handled as an error" (it is how responses are split); closing costs one connection |
/// | `Http10TransferEncodingWithoutBody` | refuses any HTTP/1.0 head with `Transfer-Encoding` | checks only when a body may follow (not for 1xx, 204, 304, HEAD) | RFC 9112 §6.1: a recipient MUST treat it as faulty framing, whether or not a body follows |
/// | `HeadOverLimit` | refuses a head of 64 KiB or more (the exchange's limit) | reads up to about 400 KiB | a bounded limit the operator can reason about, the same as the listener's |
/// | `LengthBeyondHyper` | reads `Content-Length` up to `u64::MAX` | refuses the two largest values | hyper keeps them as markers; no body is that large, so the crate's body simply ends early |
/// | `ChunkLineOverLimit` | refuses a chunk-size line over 4 KiB | only limits extensions to 16 KiB per body | the crate also bounds each line, so a line is never buffered past 4 KiB |
/// | `TrailersOverCount` | refuses more than 32 trailer fields | up to 100 | trailers carry a few checksums or statuses; 32 is plenty |
///
/// Not differences, only two ways of saying the same, which the comparison reads alike: hyper
/// passes a trailer section whose lines httparse reads as no field as an empty trailers frame,
/// the crate as none; and the order in which names were first inserted into a `HeaderMap`.
///
/// The server role has no deliberate difference: every request the crate serves, hyper serves
/// the same way, and every other request is hyper's to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Difference {
    Upgrade101,
    TransferEncodingWithLength,
    Http10TransferEncodingWithoutBody,
    HeadOverLimit,
    LengthBeyondHyper,
    ChunkLineOverLimit,
    TrailersOverCount,
}

fn has_field(message: &Message, name: &str) -> bool {
    message.fields.iter().any(|(field, _)| field == name)
}

/// Which deliberate difference explains a disagreement, checked against its exact shape.
fn explain(ours: &Ours, hyper: &Outcome, to_head_request: bool) -> Option<Difference> {
    use Outcome::{BodyFailed, Complete, HeadRefused};
    match (&ours.outcome, hyper) {
        (HeadRefused, Complete(message))
            if message.status == 101 && ours.reason.starts_with("101 ") =>
        {
            Some(Difference::Upgrade101)
        }
        (HeadRefused, BodyFailed { status: 101 }) if ours.reason.starts_with("101 ") => {
            Some(Difference::Upgrade101)
        }
        (HeadRefused, hyper) if ours.reason == "Transfer-Encoding in an HTTP/1.0 response" => {
            match hyper {
                // hyper refuses it too wherever a body may follow; if the response hyper read
                // is such a one, the crate's refusal is not this difference.
                Complete(message)
                    if message.version == Version::HTTP_10
                        && has_field(message, TRANSFER_ENCODING.as_str())
                        && !message_has_no_body(message, to_head_request) =>
                {
                    None
                }
                // Otherwise the refused head had no body, or was an interim (1xx) response,
                // which hyper skips unread.
                _ => Some(Difference::Http10TransferEncodingWithoutBody),
            }
        }
        (HeadRefused, _) if ours.reason == "head over the limit" => Some(Difference::HeadOverLimit),
        (Complete(a), Complete(b))
            if !a.reusable
                && b.reusable
                && has_field(a, TRANSFER_ENCODING.as_str())
                && has_field(a, CONTENT_LENGTH.as_str())
                && *a
                    == Message {
                        reusable: false,
                        ..b.clone()
                    } =>
        {
            Some(Difference::TransferEncodingWithLength)
        }
        (BodyFailed { .. } | Complete(_), HeadRefused) if matches!(ours.framing, Some(Framing::Length(n)) if n > u64::MAX - 2) => {
            Some(Difference::LengthBeyondHyper)
        }
        (BodyFailed { .. }, _) if ours.reason == "chunk-size line too long" => {
            Some(Difference::ChunkLineOverLimit)
        }
        (BodyFailed { .. }, _) if ours.reason == "too many trailer fields" => {
            Some(Difference::TrailersOverCount)
        }
        _ => None,
    }
}

fn message_has_no_body(message: &Message, to_head_request: bool) -> bool {
    StatusCode::from_u16(message.status)
        .is_ok_and(|status| gateway_http1::framing::has_no_body(status, to_head_request))
}

/// Checks one response both ways: `Ok(None)` when they agree, `Ok(Some(_))` for a deliberate
/// difference, `Err` for any other disagreement.
async fn compare_response(
    input: &[u8],
    to_head_request: bool,
) -> Result<Option<Difference>, String> {
    let ours = our_response(input, to_head_request);
    let (hyper, why) = hyper_response(input, to_head_request).await;
    if ours.outcome == hyper {
        return Ok(None);
    }
    explain(&ours, &hyper, to_head_request)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "to HEAD: {to_head_request}\nours:  {:?} ({})\nhyper: {hyper:?} ({why})",
                ours.outcome, ours.reason
            )
        })
}

fn chunked(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        chunk_header(&mut out, piece.len());
        out.extend_from_slice(piece);
        chunk_end(&mut out);
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn edge_case_responses_agree_with_hyper() {
    // Long fields rather than many: more than 100 is a limit both apply.
    let huge_head = padded_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n", 100 * 1024);
    let many_fields =
        with_numbered_fields(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n", 100, b"\r\n");
    let hundred_fields =
        with_numbered_fields(b"HTTP/1.1 200 OK\r\n", 99, b"content-length: 0\r\n\r\n");
    let mut long_line = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
    long_line.resize(long_line.len() + 5000, b'x');
    long_line.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
    let mut many_extensions = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..6 {
        many_extensions.extend_from_slice(b"1;");
        many_extensions.resize(many_extensions.len() + 3000, b'x');
        many_extensions.extend_from_slice(b"\r\na\r\n");
    }
    many_extensions.extend_from_slice(b"0\r\n\r\n");
    let many_trailers = with_numbered_fields(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n",
        40,
        b"\r\n",
    );
    let mut big_trailers =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: ".to_vec();
    big_trailers.resize(big_trailers.len() + 17_000, b'v');
    big_trailers.extend_from_slice(b"\r\n\r\n");
    let two_chunks = [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..],
        &chunked(&[b"hello", b" world"]),
        b"0\r\nx-sum: 1\r\n\r\n",
    ]
    .concat();

    use Difference::*;
    // (bytes, to HEAD, the expected deliberate difference if any)
    let cases: Vec<(&[u8], bool, Option<Difference>)> = vec![
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", true, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello, more", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false, None),
        (&two_chunks, false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw bytes", false, None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \xffchunked\r\n\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\n\r\nall of it", false, None),
        (b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\nall of it", false, None),
        // Content-Length lists and duplicates.
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3,\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0x3\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length:\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551613\r\n\r\nabc", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\nabc", false, Some(LengthBeyondHyper)),
        // Both framings: smuggling-style.
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, Some(TransferEncodingWithLength)),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: nonsense\r\n\r\n0\r\n\r\n", false, Some(TransferEncodingWithLength)),
        (b"HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n", false, Some(TransferEncodingWithLength)),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked, gzip\r\n\r\nabc", false, None),
        (b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\nabc", false, None),
        (b"HTTP/1.0 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc", false, None),
        (b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n", true, Some(Http10TransferEncodingWithoutBody)),
        (b"HTTP/1.0 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n", false, Some(Http10TransferEncodingWithoutBody)),
        (b"HTTP/1.0 100 Continue\r\ntransfer-encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false, Some(Http10TransferEncodingWithoutBody)),
        // Malformed heads.
        (b"HTTP/1.1 200 OK\r\nx: a\r\n folded\r\ncontent-length: 0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\n content-length: 0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\r\n\r\nok", false, None),
        (b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 \xff\xfe\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1  200 OK\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.2 200 OK\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 099 Low\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 600 High\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 20 OK\r\n\r\n", false, None),
        (b"SSH-2.0-OpenSSH\r\n\r\n", false, None),
        (b"\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nx: a\x00b\r\ncontent-length: 0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\nx: caf\xc3\xa9\r\ncontent-length: 0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ncontent-le", false, None),
        (b"", false, None),
        (&huge_head, false, Some(HeadOverLimit)),
        (&many_fields, false, None),
        (&hundred_fields, false, None),
        // Status codes without bodies, and interim responses.
        (b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n", false, None),
        (b"HTTP/1.1 204 No Content\r\n\r\nhello", false, None),
        (b"HTTP/1.1 304 Not Modified\r\ncontent-length: 100\r\n\r\n", false, None),
        (b"HTTP/1.1 304 Not Modified\r\ncontent-length: nonsense\r\n\r\n", false, None),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false, None),
        (b"HTTP/1.1 100 Continue\r\n\r\n", false, None),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n", false, Some(Upgrade101)),
        // Connection management.
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nConnection: CLOSE\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nConnection: close, \xff\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nx-internal: 1\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.0 200 OK\r\nconnection: keep-alive, \xff\r\ncontent-length: 2\r\n\r\nok", false, None),
        (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\nuntil close", false, None),
        (b"HTTP/1.0 204 No Content\r\nconnection: keep-alive\r\n\r\n", false, None),
        // Chunk sizes and extensions.
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a=b;c=\"d\"\r\nhello\r\n0;x\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n00000000000000000000005\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\nhello", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nhello", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nleft over", false, None),
        (&long_line, false, Some(ChunkLineOverLimit)),
        (&many_extensions, false, None),
        // Trailers.
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nA: 1\r\nb: 2\r\nA: 3\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\na: 1\n\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\na: 1\nb: 2\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\na: 1\r\n folded\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\rx", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\n\n", false, None),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\ncontent-length: 5\r\n\r\n", false, None),
        (&many_trailers, false, Some(TrailersOverCount)),
        (&big_trailers, false, None),
    ];
    for (input, to_head, expected) in cases {
        let verdict = compare_response(input, to_head).await;
        assert_eq!(verdict, Ok(expected), "{}", show(input));
    }
}

/// Mostly what targets send, with a share of what they should not (and of what smuggling
/// attempts look like), so that every outcome is well represented.
fn random_response(rng: &mut Rng) -> Vec<u8> {
    let odd = |rng: &mut Rng| rng.u8(..10) == 0;
    // The status line is checked before anything else: damage there hides the rest.
    let rare = |rng: &mut Rng| rng.u8(..40) == 0;
    let mut out = Vec::new();
    if odd(rng) {
        out.extend_from_slice(pick(
            rng,
            &[
                &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
                b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
                b"HTTP/1.0 100 Continue\r\n\r\n",
            ],
        ));
    }
    let version: &[u8] = if rare(rng) {
        pick(rng, &[&b"HTTP/1.2"[..], b"HTTP/2", b"http/1.1"])
    } else {
        pick(
            rng,
            &[&b"HTTP/1.1"[..], b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"],
        )
    };
    out.extend_from_slice(version);
    out.extend_from_slice(if rare(rng) { b"  " } else { b" " });
    let status: &[u8] = if rare(rng) {
        pick(rng, &[&b"101"[..], b"199", b"099", b"999", b"20"])
    } else {
        pick(
            rng,
            &[
                &b"200"[..],
                b"200",
                b"200",
                b"201",
                b"204",
                b"206",
                b"304",
                b"404",
                b"500",
            ],
        )
    };
    out.extend_from_slice(status);
    out.extend_from_slice(pick(
        rng,
        &[&b" OK"[..], b" OK", b" OK", b"", b" ", b" \xff"],
    ));
    let line_end = |rng: &mut Rng| -> &'static [u8] {
        match rng.u8(..40) {
            0 => b"\r",
            1..=3 => b"\n",
            _ => b"\r\n",
        }
    };
    out.extend_from_slice(line_end(rng));
    let chunked = rng.bool();
    let length = rng.usize(..12);
    let te: Option<&[u8]> = chunked.then(|| {
        if odd(rng) {
            pick(
                rng,
                &[
                    &b"Transfer-Encoding: chunked, gzip"[..],
                    b"Transfer-Encoding: \xffchunked",
                    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
                ],
            )
        } else {
            pick(
                rng,
                &[
                    &b"Transfer-Encoding: chunked"[..],
                    b"transfer-encoding: gzip, chunked",
                    b"Transfer-Encoding: Chunked ",
                ],
            )
        }
    });
    let with_length = if chunked { odd(rng) } else { rng.u8(..5) != 0 };
    let cl: Option<Vec<u8>> = with_length.then(|| match rng.u8(..12) {
        0 => format!("Content-Length: {length}, {length}").into_bytes(),
        1 => format!("Content-Length: {length}, {}", length + 1).into_bytes(),
        2 => b"Content-Length: x".to_vec(),
        3 => format!("content-length: {length}\r\ncontent-length: {length}").into_bytes(),
        4 => format!("content-length: {length}\r\ncontent-length: 1{length}").into_bytes(),
        5 => format!("content-length: +{length}").into_bytes(),
        _ => format!("Content-Length: {length}").into_bytes(),
    });
    let mut fields: Vec<Vec<u8>> = Vec::new();
    fields.extend(te.map(<[u8]>::to_vec));
    fields.extend(cl);
    for _ in 0..rng.usize(..4) {
        fields.push(
            pick(
                rng,
                &[
                    &b"Connection: close"[..],
                    b"Connection: keep-alive",
                    b"Connection: keep-alive",
                    b"Connection: Keep-Alive, X-A",
                    b"Connection: close, \xff",
                    b"Keep-Alive: timeout=5",
                    b"Trailer: x-sum",
                    b"X-A: 1",
                    b"x-b: caf\xc3\xa9",
                    b"Server: test",
                ],
            )
            .to_vec(),
        );
    }
    rng.shuffle(&mut fields);
    for field in &fields {
        out.extend_from_slice(field);
        out.extend_from_slice(line_end(rng));
    }
    out.extend_from_slice(line_end(rng));
    if chunked {
        for _ in 0..rng.usize(..4) {
            let size = rng.usize(..20);
            let line: Vec<u8> = if odd(rng) {
                match rng.u8(..7) {
                    0 => format!(" {size:x}").into_bytes(),
                    1 => format!("0x{size:x}").into_bytes(),
                    2 => format!("{size:X};a\nb").into_bytes(),
                    3 => Vec::new(),
                    4 => format!("-{size:x}").into_bytes(),
                    5 => format!("{size:x}{size:x}{size:x}{size:x}{size:x}{size:x}ffffffffffff")
                        .into_bytes(),
                    _ => format!("{}", size + 1).into_bytes(),
                }
            } else {
                match rng.u8(..5) {
                    0 => format!("{size:x} ").into_bytes(),
                    1 => format!("{size:x};a=b").into_bytes(),
                    2 => format!("000000000000000000{size:X}").into_bytes(),
                    _ => format!("{size:x}").into_bytes(),
                }
            };
            out.extend_from_slice(&line);
            out.extend_from_slice(line_end(rng));
            out.extend((0..size).map(|i| b'a' + (i % 26) as u8));
            out.extend_from_slice(line_end(rng));
        }
        out.extend_from_slice(pick(rng, &[&b"0"[..], b"0", b"000", b"0;x"]));
        out.extend_from_slice(line_end(rng));
        for _ in 0..rng.usize(..3) {
            out.extend_from_slice(if odd(rng) {
                pick(rng, &[&b"bad trailer"[..], b"x : 1", b" folded"])
            } else {
                pick(
                    rng,
                    &[&b"x-sum: 1"[..], b"X-Other: a", b"content-length: 5"],
                )
            });
            out.extend_from_slice(line_end(rng));
        }
        out.extend_from_slice(line_end(rng));
    } else if odd(rng) {
        let body = rng.usize(..(length + 3));
        out.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    } else {
        out.extend((0..length).map(|i| b'a' + (i % 26) as u8));
    }
    if odd(rng) {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    }
    if rng.u8(..4) == 0 {
        mutate(rng, &mut out);
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn random_responses_agree_with_hyper() {
    let mut rng = Rng::with_seed(SEED);
    let mut verdicts = std::collections::BTreeMap::new();
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..5000 {
        let input = random_response(&mut rng);
        let to_head_request = rng.u8(..10) == 0;
        match compare_response(&input, to_head_request).await {
            Ok(verdict) => *verdicts.entry(format!("{verdict:?}")).or_insert(0) += 1,
            Err(disagreement) => panic!("{disagreement}\ninput: {}", show(&input)),
        }
        let outcome = match our_response(&input, to_head_request).outcome {
            Outcome::HeadRefused => "head refused",
            Outcome::BodyFailed { .. } => "body failed",
            Outcome::Complete(Message { reusable: true, .. }) => "complete, reusable",
            Outcome::Complete(_) => "complete, not reusable",
        };
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    println!("{verdicts:?}\n{outcomes:?}");
    assert!(
        verdicts.get("None").copied().unwrap_or(0) > 2000,
        "{verdicts:?}"
    );
    // The corpus must exercise every outcome, or it tests less than it seems to.
    for outcome in [
        "head refused",
        "body failed",
        "complete, reusable",
        "complete, not reusable",
    ] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) > 200,
            "{outcomes:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What the crate writes, read by hyper
// ---------------------------------------------------------------------------------------------

/// A response the server role writes.
struct Written {
    status: u16,
    fields: &'static [(&'static str, &'static str)],
    pieces: &'static [&'static [u8]],
    exact: Option<u64>,
    to_head: bool,
    version: Version,
}

impl Written {
    fn new(
        status: u16,
        fields: &'static [(&'static str, &'static str)],
        pieces: &'static [&'static [u8]],
        exact: Option<u64>,
        version: Version,
    ) -> Self {
        Written {
            status,
            fields,
            pieces,
            exact,
            to_head: false,
            version,
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn responses_the_crate_writes_are_read_alike_by_hyper() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("5"));
    trailers.insert("content-type", HeaderValue::from_static("text/plain"));
    const V11: Version = Version::HTTP_11;
    let cases = [
        Written::new(200, &[("x-a", "1")], &[b"hello"], Some(5), V11),
        Written::new(
            200,
            &[("trailer", "x-sum, content-type")],
            &[b"hel", b"lo"],
            None,
            V11,
        ),
        Written::new(200, &[("content-length", "5")], &[b"hello"], None, V11),
        Written::new(
            200,
            &[("transfer-encoding", "chunked")],
            &[b"abc"],
            Some(3),
            V11,
        ),
        Written::new(200, &[], &[b"abc"], None, Version::HTTP_10),
        Written::new(200, &[("connection", "close")], &[b"abc"], Some(3), V11),
        Written::new(304, &[("content-length", "9")], &[], Some(0), V11),
        Written::new(204, &[], &[], Some(0), V11),
        Written {
            to_head: true,
            ..Written::new(200, &[], &[], Some(5), V11)
        },
    ];
    for Written {
        status,
        fields,
        pieces,
        exact,
        to_head,
        version,
    } in cases
    {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in fields {
            response.headers_mut().append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (parts, ()) = response.into_parts();
        let mut out = Vec::new();
        let committed = encode_response_head(&mut out, &parts, exact, to_head, version, false);
        for piece in pieces {
            if committed.framing == Framing::Chunked {
                chunk_header(&mut out, piece.len());
            }
            if committed.framing != Framing::NoBody {
                out.extend_from_slice(piece);
            }
            if committed.framing == Framing::Chunked {
                chunk_end(&mut out);
            }
        }
        if committed.framing == Framing::Chunked {
            last_chunk(&mut out, Some(&trailers), &parts.headers);
        }
        let expected_body: Vec<u8> = if committed.framing == Framing::NoBody {
            Vec::new()
        } else {
            pieces.concat()
        };
        let (hyper, why) = hyper_response(&out, to_head).await;
        let ours = our_response(&out, to_head);
        assert_eq!(ours.outcome, hyper, "{why}: {}", show(&out));
        let Outcome::Complete(message) = hyper else {
            panic!("hyper refused {}: {why}", show(&out));
        };
        assert_eq!(message.body, expected_body, "{}", show(&out));
        assert_eq!(message.reusable, !committed.close, "{}", show(&out));
        let sent_trailers = message.trailers.unwrap_or_default();
        if fields.iter().any(|(name, _)| *name == "trailer") {
            assert_eq!(sent_trailers, [("x-sum".to_owned(), b"5".to_vec())]);
        } else {
            assert!(sent_trailers.is_empty());
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn requests_the_crate_writes_are_read_alike_by_hyper() {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("api.example.com"));
    headers.append("x-tag", HeaderValue::from_static("a"));
    headers.append("x-tag", HeaderValue::from_static("b"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    for (method, path) in [
        (Method::GET, "/items/1?force=yes"),
        (Method::DELETE, "/"),
        (Method::HEAD, "/x"),
        (Method::OPTIONS, "*"),
    ] {
        let mut out = Vec::new();
        encode_request_head(&mut out, &method, path, &headers);
        let hyper = hyper_request(&out, false).await;
        let [(served, true)] = &hyper.requests[..] else {
            panic!("{:?}", hyper.requests);
        };
        assert_eq!(served.method, method);
        assert_eq!(served.uri, path);
        assert_eq!(served.fields, fields_of(&headers));
        assert!(!hyper.closed);
        assert_eq!(compare_request(&out).await, Ok("served"));
    }
}
