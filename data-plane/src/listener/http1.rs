//! Client connections served by the listener itself while their requests have no body: the
//! head is parsed from the connection's read buffer, the request runs on the connection's own
//! task, and the response head and the first of its body go out in one write. Keep-alive,
//! pipelining, HTTP/1.0, `HEAD`, chunked and close-delimited bodies, the header-read timeout
//! and the drain are handled here.
//!
//! Anything else (a request with a body or an upgrade, `Expect`, `CONNECT`, HTTP/2 with prior
//! knowledge, a malformed or oversized head) hands the connection to hyper for the rest of its
//! life, with the bytes already read put back in front.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::Method;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use gateway_http1::body::{chunk_end, chunk_header, last_chunk};
use gateway_http1::fields::{FieldSpan, push_field};
use gateway_http1::{Framing, Parsed, encode_response_head, parse_request};
use http::{HeaderMap, Request, Version};

use super::activity::{ConnectionActivity, closable};
use super::idle::RELEASE_AFTER;
use super::rewind::Rewind;
use super::settings::ListenerSettings;
use crate::body::ClientBody;
use crate::proxy::{Peer, Proxy};
use crate::upstream::exchange::Interim;

/// The least free room in the read buffer before a read.
const MIN_READ_ROOM: usize = 1024;
/// Body data up to this size is copied behind the head (or the previous data) so that both go
/// out in one write; larger pieces are written on their own.
const COALESCE_LIMIT: usize = 16 * 1024;

/// How serving a connection ended.
pub enum Ended<S> {
    Closed,
    /// hyper serves the rest of the connection, starting with the bytes read so far.
    HandOff(Rewind<S>),
    /// No request came for [`RELEASE_AFTER`]: the connection is idle, and what served it has
    /// been let go.
    Idle(S),
}

/// What the connection's timer waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Nothing yet.
    None,
    /// The next request, with the buffers held.
    Request,
    /// The rest of a head whose first bytes have come.
    Head,
}

/// Why a response could not be written whole; the connection is given up either way.
#[derive(Debug)]
enum WriteError {
    Io,
    /// The response body failed, or did not match its declared length.
    Body,
}

impl From<io::Error> for WriteError {
    fn from(_: io::Error) -> Self {
        WriteError::Io
    }
}

/// What serving a connection's requests uses and does not own.
pub struct Shared<'a> {
    pub proxy: &'a Proxy,
    pub peer: &'a Peer,
    pub activity: &'a Arc<ConnectionActivity>,
    pub settings: &'a ListenerSettings,
}

/// The listener's drain, as a connection sees it.
pub struct Drain<'a> {
    /// Turns true when the drain begins; waited on while the connection waits for a request.
    pub signal: &'a mut watch::Receiver<bool>,
    /// The same, read once per response.
    pub started: &'a AtomicBool,
}

/// Serves the connection's requests while they have no body, starting with the bytes in
/// `read`.
pub async fn serve<S>(
    mut stream: S,
    mut read: BytesMut,
    mut deadline: Pin<&mut Sleep>,
    shared: Shared<'_>,
    drain: Drain<'_>,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Shared {
        proxy,
        peer,
        activity,
        settings,
    } = shared;
    let mut write: Vec<u8> = Vec::with_capacity(1024);
    let mut spans: Vec<FieldSpan> = Vec::new();
    // The connection's one timer (see `serve_connection`), moved to a new deadline whenever the
    // listener starts waiting for the next request or for the rest of a head.
    let release_after = RELEASE_AFTER.min(settings.idle_timeout);
    loop {
        let mut waiting = Waiting::None;
        let head = loop {
            if !read.is_empty() {
                match parse_within(&mut read, &mut spans, settings) {
                    Parsed::Request(head) => break head,
                    Parsed::Partial if read.len() < settings.max_header_bytes => {}
                    // A head over the limit is hyper's to refuse, like any other it cannot take.
                    Parsed::Partial => {
                        return Ended::HandOff(Rewind::new(read.freeze(), stream));
                    }
                    // hyper refuses what must be refused (both Content-Length and
                    // Transfer-Encoding, say) the same way on every request of a connection.
                    Parsed::HandOff => {
                        return Ended::HandOff(Rewind::new(read.freeze(), stream));
                    }
                }
                // The head timeout runs from a head's first bytes; one that came whole needed
                // no timer at all.
                if waiting != Waiting::Head {
                    deadline
                        .as_mut()
                        .reset(Instant::now() + settings.header_read_timeout);
                    waiting = Waiting::Head;
                }
            } else if waiting == Waiting::None {
                deadline.as_mut().reset(Instant::now() + release_after);
                waiting = Waiting::Request;
            }
            read.reserve(MIN_READ_ROOM);
            let idle = read.is_empty();
            tokio::select! {
                biased;
                result = stream.read_buf(&mut read) => match result {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
                () = deadline.as_mut() => {
                    return if idle { Ended::Idle(stream) } else { Ended::Closed };
                }
                () = closable(drain.signal, activity, settings.drain_idle_grace), if idle => {
                    return Ended::Closed;
                }
            }
        };

        let version = head.parts.version;
        let to_head_request = head.parts.method == Method::HEAD;
        let accepts_trailers = head.accepts_trailers;
        let in_flight = activity.request_started(version);
        let request = Request::from_parts(head.parts, ClientBody::Empty);
        // Informational responses go to HTTP/1.1 clients only (RFC 9110 §15.2).
        let interim = Interim::default();
        let to_pass_on = (version == Version::HTTP_11).then_some(&interim);
        let response = {
            let mut handled = std::pin::pin!(proxy.handle_with_interim(request, peer, to_pass_on));
            loop {
                tokio::select! {
                    biased;
                    response = handled.as_mut() => break response,
                    // Filled only while `handled` is polled, just before this is.
                    () = std::future::poll_fn(|_| {
                        if interim.is_waiting() { Poll::Ready(()) } else { Poll::Pending }
                    }) => {
                        if pass_on(&mut stream, &mut write, &interim).await.is_err() {
                            return Ended::Closed;
                        }
                    }
                    () = client_gone(&mut stream, &mut read, settings.max_header_bytes) => {
                        return Ended::Closed;
                    }
                }
            }
        };
        // Those that came with the answer go out before it.
        if pass_on(&mut stream, &mut write, &interim).await.is_err() {
            return Ended::Closed;
        }
        let (parts, body) = response.into_parts();
        let close = !head.keep_alive
            || drain.started.load(Ordering::Relaxed)
            || activity.at_request_limit(settings.max_requests_per_connection);
        let framing = encode_response_head(
            &mut write,
            &parts,
            body.size_hint().exact(),
            to_head_request,
            version,
            close,
        );
        // Trailers go only to a client that said it takes them, and only those the response
        // declared (as hyper does on the other path).
        let declared = accepts_trailers.then_some(&parts.headers);
        let written = write_body(
            &mut stream,
            &mut write,
            body,
            framing.framing,
            declared,
            (&mut read, settings.max_header_bytes),
        )
        .await;
        drop(in_flight);
        if written.is_err() {
            return Ended::Closed;
        }
        if framing.close {
            let _ = stream.shutdown().await;
            return Ended::Closed;
        }
    }
}

/// Writes the informational response heads waiting in `interim`, if any, through `write`.
async fn pass_on<S: AsyncWrite + Unpin>(
    stream: &mut S,
    write: &mut Vec<u8>,
    interim: &Interim,
) -> io::Result<()> {
    for head in interim.take() {
        encode_interim(write, head);
    }
    flush(stream, write).await
}

/// Appends an informational response head as HTTP/1.1 writes it, without the upstream's
/// hop-by-hop fields (those `Connection` names included) and without a framing it does not have.
fn encode_interim(out: &mut Vec<u8>, parts: http::response::Parts) {
    let parts = super::informational::cleaned(parts);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses the request head at the start of `read`, looking at no more than the head limit: a
/// head that is not complete within it stays `Partial` even when it arrived whole, so that hyper
/// refuses it as it refuses one that arrived in pieces.
fn parse_within(
    read: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    settings: &ListenerSettings,
) -> Parsed {
    if read.len() <= settings.max_header_bytes {
        return parse_request(read, spans, settings.max_headers);
    }
    // Only with a head over the limit or pipelined requests behind one, so rarely; joining the
    // two parts again is free, as they are still contiguous.
    let beyond = read.split_off(settings.max_header_bytes);
    let parsed = parse_request(read, spans, settings.max_headers);
    read.unsplit(beyond);
    parsed
}

/// Completes when the client has closed its side (or the connection failed) while its request
/// is being answered. Bytes it sends meanwhile (a pipelined request) are kept in `read`, up to
/// `limit`, after which the connection is no longer watched. A read that has not completed when
/// the answer is ready takes nothing from the connection (`read_buf` is cancel-safe).
async fn client_gone<S: AsyncRead + Unpin>(stream: &mut S, read: &mut BytesMut, limit: usize) {
    loop {
        if read.len() >= limit {
            return std::future::pending().await;
        }
        read.reserve(MIN_READ_ROOM);
        match stream.read_buf(read).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Writes the head already in `write` and the body after it, framed as the head said. Body data
/// that is ready at once goes out with the head. Trailers are written when `trailers_declared`
/// holds the response head's fields, and then only those it declares.
async fn write_body<S, B>(
    stream: &mut S,
    write: &mut Vec<u8>,
    body: B,
    framing: Framing,
    trailers_declared: Option<&HeaderMap>,
    (read, read_limit): (&mut BytesMut, usize),
) -> Result<(), WriteError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
{
    if framing == Framing::NoBody {
        drop(body);
        stream.write_all(write).await?;
        return Ok(());
    }
    let mut body = body;
    let mut sent: u64 = 0;
    let mut trailers = None;
    loop {
        let frame = match poll_now(&mut body) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                flush(stream, write).await?;
                // A client that leaves while the upstream is quiet (server-sent events, a long
                // poll) is noticed now, not when the next piece is written; dropping the body
                // then ends the upstream request too.
                tokio::select! {
                    biased;
                    frame = body.frame() => frame,
                    () = client_gone(stream, read, read_limit) => return Err(WriteError::Io),
                }
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(_)) => return Err(WriteError::Body),
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                trailers = frame.into_trailers().ok();
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if let Framing::Length(length) = framing
            && sent > length
        {
            return Err(WriteError::Body);
        }
        if framing == Framing::Chunked {
            chunk_header(write, data.len());
        }
        if data.len() <= COALESCE_LIMIT {
            write.extend_from_slice(&data);
        } else {
            flush(stream, write).await?;
            while data.has_remaining() {
                let n = stream.write(&data).await?;
                if n == 0 {
                    return Err(WriteError::Io);
                }
                data.advance(n);
            }
        }
        if framing == Framing::Chunked {
            chunk_end(write);
        }
        if write.len() > COALESCE_LIMIT {
            flush(stream, write).await?;
        }
    }
    match (framing, trailers_declared) {
        (Framing::Length(length), _) if sent != length => return Err(WriteError::Body),
        (Framing::Chunked, Some(declared)) => last_chunk(write, trailers.as_ref(), declared),
        (Framing::Chunked, None) => last_chunk(write, None, &HeaderMap::new()),
        _ => {}
    }
    flush(stream, write).await?;
    Ok(())
}

type NextFrame<B> = Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>;

/// The body's next frame if it is ready now; otherwise the body will wake the task.
fn poll_now<B: Body + Unpin>(body: &mut B) -> Poll<NextFrame<B>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    Pin::new(body).poll_frame(&mut cx)
}

async fn flush<S: AsyncWrite + Unpin>(stream: &mut S, write: &mut Vec<u8>) -> io::Result<()> {
    if !write.is_empty() {
        stream.write_all(write).await?;
        write.clear();
    }
    Ok(())
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
