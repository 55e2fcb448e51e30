//! The response body of an exchange, read from its connection as the client's side polls it:
//! a known length, chunks (with trailers), or everything until the target closes. Once the body
//! has ended on a connection that may be kept, the connection goes back to its pool at once.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};

use super::head::Framing;
use super::{Connection, ExchangeError, Lend, READ_CHUNK};

/// Longest chunk-size line (with extensions) and trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;
const MAX_TRAILERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

#[derive(Debug)]
pub struct ResponseBody<L> {
    connection: Option<Connection>,
    state: State,
    keep_alive: bool,
    /// Where the connection goes once the response has ended; taken then.
    lender: Option<L>,
}

/// Reads what the connection has into its buffer; `Ok(0)` is the end of the connection.
pub(super) fn poll_read_more(
    connection: &mut Connection,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if connection.read.capacity() - connection.read.len() < READ_CHUNK / 2 {
        connection.read.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(connection.io.stream()), cx, &mut connection.read)
}

pub(super) async fn read_more(connection: &mut Connection) -> std::io::Result<usize> {
    poll_fn(|cx| poll_read_more(connection, cx)).await
}

impl<L: Lend> ResponseBody<L> {
    pub(super) fn new(
        connection: Connection,
        framing: Framing,
        keep_alive: bool,
        lender: L,
    ) -> Self {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(length) => State::Length(length),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = ResponseBody {
            connection: Some(connection),
            state,
            keep_alive,
            lender: Some(lender),
        };
        body.settle();
        body
    }

    /// Moves a body that has nothing more to read to `Done`, and lets its connection go: back to
    /// the pool when it may be kept and nothing unasked-for follows the response, closed
    /// otherwise.
    fn settle(&mut self) {
        if self.state == State::Length(0) {
            self.state = State::Done;
        }
        if self.state != State::Done {
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
        self.state = State::Done;
        self.keep_alive = false;
        self.connection = None;
        Poll::Ready(Some(Err(error)))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        loop {
            self.settle();
            let Some(connection) = self.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) | State::ChunkData(left) if !connection.read.is_empty() => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(connection.read.len());
                    let data = connection.read.split_to(take).freeze();
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    self.settle();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose if !connection.read.is_empty() => {
                    let data = connection.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkSize if !connection.read.is_empty() => {
                    match httparse::parse_chunk_size(&connection.read) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            let _ = connection.read.split_to(used);
                            self.state = if size == 0 {
                                State::Trailers
                            } else {
                                State::ChunkData(size)
                            };
                            continue;
                        }
                        Ok(httparse::Status::Partial) if connection.read.len() < MAX_CHUNK_LINE => {
                        }
                        _ => {
                            return self.fail(ExchangeError::InvalidResponse("invalid chunk size"));
                        }
                    }
                }
                State::ChunkEnd if connection.read.len() >= 2 => {
                    if &connection.read[..2] != b"\r\n" {
                        return self
                            .fail(ExchangeError::InvalidResponse("chunk not ended by CRLF"));
                    }
                    let _ = connection.read.split_to(2);
                    self.state = State::ChunkSize;
                    continue;
                }
                State::Trailers if !connection.read.is_empty() => {
                    match parse_trailers(connection) {
                        Ok(Some(trailers)) => {
                            self.state = State::Done;
                            self.settle();
                            if trailers.is_empty() {
                                return Poll::Ready(None);
                            }
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        Ok(None) if connection.read.len() < MAX_TRAILER_BYTES => {}
                        Ok(None) => {
                            return self.fail(ExchangeError::InvalidResponse("trailers too large"));
                        }
                        Err(error) => return self.fail(error),
                    }
                }
                _ => {}
            }
            match ready!(poll_read_more(connection, cx)) {
                Ok(0) if self.state == State::UntilClose => {
                    self.state = State::Done;
                    self.keep_alive = false;
                }
                Ok(0) => return self.fail(ExchangeError::ClosedMidResponse),
                Ok(_) => {}
                Err(error) => return self.fail(error.into()),
            }
        }
    }
}

/// Parses the trailer section after the last chunk, up to and including its blank line.
fn parse_trailers(connection: &mut Connection) -> Result<Option<HeaderMap>, ExchangeError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
    let parsed = httparse::parse_headers(&connection.read, &mut fields)
        .map_err(|_| ExchangeError::InvalidResponse("invalid trailers"))?;
    let httparse::Status::Complete((used, fields)) = parsed else {
        return Ok(None);
    };
    let mut trailers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| ExchangeError::InvalidResponse("invalid trailer name"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| ExchangeError::InvalidResponse("invalid trailer value"))?;
        trailers.append(name, value);
    }
    let _ = connection.read.split_to(used);
    Ok(Some(trailers))
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
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(left) => SizeHint::with_exact(left),
            _ => SizeHint::default(),
        }
    }
}
