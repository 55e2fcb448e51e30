//! The HTTP/1.1 exchange for requests without a body, run by the request's own task: the
//! request head goes out in one write on a kept-alive connection the request holds, the response
//! head is parsed from the same read buffer, and the response body is read from the connection
//! by the body itself, which puts the connection back in its pool when the body ends.
//!
//! Nothing sits between the request and the socket: no connection task, no channel, no wake-up
//! of a second task. Requests with a body and upgrades take hyper's client connection instead
//! (see the HTTP/1 pool), which sends the request body while the response comes in.

mod body;
mod head;

use bytes::BytesMut;
use http::{HeaderMap, Method, Response};
use tokio::io::AsyncWriteExt;

pub use body::ResponseBody;
pub use head::encode_request_head;

use super::connector::UpstreamConnection;

/// Where a connection goes once its response has ended and it may carry another request.
pub trait Lend {
    fn give_back(self, connection: Connection);
}

/// Largest response head accepted from an upstream.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

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
    spans: Vec<(crate::http1_fields::FieldSpan, head::FieldKind)>,
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

    /// Sends a bodyless request and reads the response head. Informational (1xx) responses are
    /// skipped. The body, if any, is read through the returned [`ResponseBody`].
    pub async fn send<L: Lend>(
        mut self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        lender: L,
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
                head::parse_response_head(&mut self.read, &mut self.spans, method == Method::HEAD)?
            };
            if let Some(parsed) = parsed {
                if parsed.parts.status.is_informational() {
                    received_any = true;
                    continue;
                }
                let body = ResponseBody::new(self, parsed.framing, parsed.keep_alive, lender);
                return Ok(Response::from_parts(parsed.parts, body));
            }
            if self.read.len() >= MAX_HEAD_BYTES {
                return Err(ExchangeError::HeadTooLarge);
            }
            let read = match body::read_more(&mut self).await {
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

#[cfg(test)]
mod tests;
