//! The HTTP/1.1 exchange for requests without a body, run by the request's own task: the
//! request head goes out in one write on a kept-alive connection the request holds, the response
//! head is parsed from the same read buffer, and the response body is read from the connection
//! by the body itself, which puts the connection back in its pool when the body ends. Heads and
//! bodies are read and written by `gateway-http1`; this module owns the connection and its
//! buffers.
//!
//! Nothing sits between the request and the socket: no connection task, no channel, no wake-up
//! of a second task. Requests with a body and upgrades take hyper's client connection instead
//! (see the HTTP/1 pool), which sends the request body while the response comes in.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use gateway_http1::fields::FieldSpan;
use gateway_http1::{BodyDecoder, Decoded, encode_request_head, parse_response_head};
use http::{HeaderMap, Method, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt;

use super::connector::UpstreamConnection;

/// Where the informational (1xx) responses an upstream sends before its final one wait to be
/// passed on to the client. It is filled while the request's own task polls the exchange, so
/// whoever owns it looks after each poll of the request, with no wake-up of its own: checking
/// costs one atomic load.
#[derive(Debug, Default)]
pub struct Interim {
    waiting: AtomicBool,
    heads: Mutex<Vec<http::response::Parts>>,
}

impl Interim {
    pub fn push(&self, head: http::response::Parts) {
        if let Ok(mut heads) = self.heads.lock() {
            heads.push(head);
            self.waiting.store(true, Ordering::Release);
        }
    }

    /// Whether a head is waiting.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// The heads that came, oldest first.
    pub fn take(&self) -> Vec<http::response::Parts> {
        if !self.waiting.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        self.heads
            .lock()
            .map(|mut heads| std::mem::take(&mut *heads))
            .unwrap_or_default()
    }
}

/// Where a connection goes once its response has ended and it may carry another request.
pub trait Lend {
    fn give_back(self, connection: Connection);
}

/// Largest response head accepted from an upstream, counted as its fields' `name: value` lines
/// (see `transport`); the exchange also stops reading a head at this many bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What hyper's clients may buffer of a head: room beyond the limit, which is checked on the
/// parsed fields, for a status line and line ends.
pub const MAX_HEAD_READ: usize = 2 * MAX_HEAD_BYTES;

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("upstream connection: {0}")]
    Io(#[from] std::io::Error),
    /// The connection ended before any byte of an answer came; on a kept-alive connection this
    /// is the target having closed it as the request went out.
    #[error("the upstream closed the connection without answering")]
    ClosedBeforeAnswer,
    #[error("the upstream closed the connection before the response ended")]
    ClosedMidResponse,
    #[error("the upstream's response head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("invalid response from the upstream: {0}")]
    InvalidResponse(&'static str),
}

/// A connection to a target with its buffers, which keep their capacity across requests.
pub struct Connection {
    io: UpstreamConnection,
    read: BytesMut,
    write: Vec<u8>,
    /// Scratch space for parsing heads, kept so that parsing allocates nothing.
    spans: Vec<FieldSpan>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("buffered", &self.read.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub fn new(io: UpstreamConnection) -> Self {
        Connection {
            io,
            read: BytesMut::with_capacity(READ_CHUNK),
            write: Vec::with_capacity(512),
            spans: Vec::new(),
        }
    }

    /// Whether the connection can carry another request: open, and nothing unread on it.
    pub fn is_reusable(&mut self) -> bool {
        self.read.is_empty() && self.io.is_open_and_quiet()
    }

    /// Reads what the connection has into its buffer; `Ok(0)` is the end of the connection.
    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.read.capacity() - self.read.len() < READ_CHUNK / 2 {
            self.read.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(self.io.stream()), cx, &mut self.read)
    }

    /// Sends a bodyless request and reads the response head. Informational (1xx) responses
    /// other than 101 go to `interim`, if given, and are otherwise skipped. The body, if any, is
    /// read through the returned [`ResponseBody`].
    pub async fn send<L: Lend>(
        mut self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        lender: L,
        interim: Option<&Interim>,
    ) -> Result<Response<ResponseBody<L>>, ExchangeError> {
        encode_request_head(&mut self.write, method, path, headers);
        let stream = self.io.stream();
        let written = async {
            stream.write_all(&self.write).await?;
            stream.flush().await
        };
        written.await.map_err(unanswered)?;
        let mut received_any = false;
        loop {
            // Nothing to parse before the first read, which is the usual state after a write.
            let parsed = if self.read.is_empty() {
                None
            } else {
                parse_response_head(&mut self.read, &mut self.spans, method == Method::HEAD)
                    .map_err(|invalid| ExchangeError::InvalidResponse(invalid.reason()))?
            };
            if let Some(head) = parsed {
                if head.parts.status.is_informational() {
                    received_any = true;
                    if head.parts.status != http::StatusCode::SWITCHING_PROTOCOLS
                        && let Some(interim) = interim
                    {
                        interim.push(head.parts);
                    }
                    continue;
                }
                let body = ResponseBody::new(
                    self,
                    BodyDecoder::new(head.framing),
                    head.keep_alive,
                    lender,
                );
                return Ok(Response::from_parts(head.parts, body));
            }
            if self.read.len() >= MAX_HEAD_BYTES {
                return Err(ExchangeError::HeadTooLarge);
            }
            let read = match poll_fn(|cx| self.poll_read_more(cx)).await {
                Ok(read) => read,
                Err(error) if received_any => return Err(error.into()),
                Err(error) => return Err(unanswered(error)),
            };
            if read == 0 {
                return Err(if received_any || !self.read.is_empty() {
                    ExchangeError::ClosedMidResponse
                } else {
                    ExchangeError::ClosedBeforeAnswer
                });
            }
            received_any = true;
        }
    }
}

/// A connection that failed before any answer came: one the target had closed or reset is
/// [`ExchangeError::ClosedBeforeAnswer`].
fn unanswered(error: std::io::Error) -> ExchangeError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match error.kind() {
        BrokenPipe | ConnectionReset | ConnectionAborted => ExchangeError::ClosedBeforeAnswer,
        _ => ExchangeError::Io(error),
    }
}

/// The response body of an exchange, read from its connection as the client's side polls it.
/// Once the body has ended on a connection that may be kept, the connection goes back to its
/// pool at once; a body that fails or is dropped before its end closes it.
#[derive(Debug)]
pub struct ResponseBody<L> {
    connection: Option<Connection>,
    decoder: BodyDecoder,
    keep_alive: bool,
    /// Where the connection goes once the response has ended; taken then.
    lender: Option<L>,
}

impl<L: Lend> ResponseBody<L> {
    fn new(connection: Connection, decoder: BodyDecoder, keep_alive: bool, lender: L) -> Self {
        let mut body = ResponseBody {
            connection: Some(connection),
            decoder,
            keep_alive,
            lender: Some(lender),
        };
        body.settle();
        body
    }

    /// Lets the connection of a body that has ended go: back to the pool when it may be kept and
    /// nothing unasked-for follows the response, closed otherwise.
    fn settle(&mut self) {
        if !self.decoder.is_done() {
            return;
        }
        if let Some(connection) = self.connection.take()
            && self.keep_alive
            && connection.read.is_empty()
            && let Some(lender) = self.lender.take()
        {
            lender.give_back(connection);
        }
    }

    fn fail(&mut self, error: ExchangeError) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        self.keep_alive = false;
        self.connection = None;
        Poll::Ready(Some(Err(error)))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return Poll::Ready(None);
            };
            let frame = match self.decoder.decode(&mut connection.read) {
                Ok(Decoded::Data(data)) => Frame::data(data),
                Ok(Decoded::Trailers(trailers)) => Frame::trailers(trailers),
                Ok(Decoded::End) => {
                    self.settle();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => match ready!(connection.poll_read_more(cx)) {
                    Ok(0) => {
                        if self.decoder.end_of_input().is_err() {
                            return self.fail(ExchangeError::ClosedMidResponse);
                        }
                        // A body delimited by the close has ended with it.
                        self.keep_alive = false;
                        continue;
                    }
                    Ok(_) => continue,
                    Err(error) => return self.fail(error.into()),
                },
                Err(invalid) => return self.fail(ExchangeError::InvalidResponse(invalid.reason())),
            };
            self.settle();
            return Poll::Ready(Some(Ok(frame)));
        }
    }
}

impl<L: Lend + Unpin> Body for ResponseBody<L> {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        self.get_mut().poll_next(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
