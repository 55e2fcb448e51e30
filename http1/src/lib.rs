//! HTTP/1.1 for the gateway's worker, without I/O: one codec with a server role (the listener's
//! own fast path for bodyless requests) and a client role (the upstream exchange), sharing one
//! framing model, one rule for bodies that cannot exist, and hyper's reading of every field that
//! decides framing or the connection, so that a message means the same on the fast path and on
//! the hyper path of the worker.
//!
//! The caller owns the connection and its buffers: it fills a `BytesMut`, hands it to a parser
//! or to a [`body::BodyDecoder`], and writes what the encoders put into a `Vec<u8>`. Limits
//! that depend on the connection (how large a head may grow before it is refused, timeouts)
//! are the caller's; limits of the grammar (fields per head, chunk-size lines, trailers) are
//! here.
//!
//! | module | role | what |
//! |---|---|---|
//! | [`request`] | server; client | parse a request head; encode one |
//! | [`response`] | client; server | parse a response head and decide its framing; encode one |
//! | [`body`] | both | decode a body; encode chunks and trailers |
//! | [`framing`] | both | [`Framing`], [`framing::has_no_body`], `Content-Length` |
//! | [`fields`] | both | field positions, `Connection` tokens, a field in wire form |
//! | [`date`] | server | the cached `Date` value |

pub mod body;
pub mod date;
mod error;
pub mod fields;
pub mod framing;
pub mod request;
pub mod response;

pub use body::{BodyDecoder, Decoded};
pub use error::{InvalidMessage, Truncated};
pub use framing::Framing;
pub use request::{Parsed, RequestHead, encode_request_head, parse_request};
pub use response::{ResponseFraming, ResponseHead, encode_response_head, parse_response_head};
