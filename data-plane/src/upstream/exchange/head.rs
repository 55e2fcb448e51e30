//! Message heads: the request head written as one buffer, the response head parsed with
//! httparse into `http` types whose values share the bytes read (nothing is copied per field).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::response::Parts;
use http::{HeaderMap, Method, Response, StatusCode, Version};

use super::ExchangeError;
use crate::http1_fields::{
    ConnectionTokens, FieldSpan, InvalidLength, MAX_FIELDS, declared_length_of, names_headers,
    push_field,
};

/// How the response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the target closes the connection, which then cannot be reused.
    UntilClose,
}

#[derive(Debug)]
pub struct ParsedHead {
    pub parts: Parts,
    pub framing: Framing,
    /// Whether the connection may carry another request once this response has ended.
    pub keep_alive: bool,
}

/// Writes `METHOD path HTTP/1.1`, the header fields and the blank line into `out`.
pub fn encode_request_head(out: &mut Vec<u8>, method: &Method, path: &str, headers: &HeaderMap) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields the exchange reads itself, to frame the body and to decide about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Connection,
    KeepAlive,
    TransferEncoding,
    ContentLength,
    Other,
}

impl FieldKind {
    fn of(name: &[u8]) -> FieldKind {
        if name.eq_ignore_ascii_case(b"connection") {
            FieldKind::Connection
        } else if name.eq_ignore_ascii_case(b"keep-alive") {
            FieldKind::KeepAlive
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            FieldKind::TransferEncoding
        } else if name.eq_ignore_ascii_case(b"content-length") {
            FieldKind::ContentLength
        } else {
            FieldKind::Other
        }
    }
}

/// Parses a complete response head at the start of `buffer` and takes it out of the buffer;
/// `None` while the head is incomplete. `spans` is scratch space, kept by the connection so that
/// parsing needs neither an allocation nor a large zeroed array.
///
/// The connection-management fields are read here, where the connection is managed, and left
/// out of the parsed headers: `Keep-Alive`, and `Connection` unless it names other headers
/// (which the proxy's hop-by-hop rules then remove along with it). Framing fields stay.
pub fn parse_response_head(
    buffer: &mut BytesMut,
    spans: &mut Vec<(FieldSpan, FieldKind)>,
    to_head_request: bool,
) -> Result<Option<ParsedHead>, ExchangeError> {
    spans.clear();
    let (head_len, code, minor) = {
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_FIELDS];
        let mut response = httparse::Response::new(&mut []);
        let start = buffer.as_ptr() as usize;
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut response, buffer, &mut slots)
            .map_err(|error| {
                ExchangeError::InvalidResponse(match error {
                    httparse::Error::TooManyHeaders => "more than 100 header fields",
                    httparse::Error::Status => "invalid status line",
                    httparse::Error::Version => "not HTTP/1.x",
                    _ => "malformed response head",
                })
            })?;
        let httparse::Status::Complete(head_len) = parsed else {
            return Ok(None);
        };
        spans.extend(response.headers.iter().map(|field| {
            (
                FieldSpan::of(field, start),
                FieldKind::of(field.name.as_bytes()),
            )
        }));
        (
            head_len,
            response.code.unwrap_or_default(),
            response.version.unwrap_or_default(),
        )
    };
    let head: Bytes = buffer.split_to(head_len).freeze();
    let status = StatusCode::from_u16(code)
        .map_err(|_| ExchangeError::InvalidResponse("invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ExchangeError::InvalidResponse(
            "101 Switching Protocols to a request that asked for no upgrade",
        ));
    }
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };

    let mut tokens = ConnectionTokens::default();
    let mut last_transfer_coding: Option<&[u8]> = None;
    let mut has_length = false;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (span, kind) in spans.iter() {
        let value = span.value(&head);
        match kind {
            FieldKind::KeepAlive => continue,
            FieldKind::Connection => {
                tokens.read(value);
                if !names_headers(value) {
                    continue;
                }
            }
            FieldKind::TransferEncoding => last_transfer_coding = Some(value),
            FieldKind::ContentLength => has_length = true,
            FieldKind::Other => {}
        }
        span.append_to(&head, &mut headers)
            .ok_or(ExchangeError::InvalidResponse("invalid header field"))?;
    }

    let framing = if to_head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if let Some(last) = last_transfer_coding {
        let chunked_last = last
            .rsplit(|b| *b == b',')
            .next()
            .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if has_length {
        let lengths = spans
            .iter()
            .filter(|(_, kind)| *kind == FieldKind::ContentLength)
            .map(|(span, _)| span.value(&head));
        let length = declared_length_of(lengths).map_err(|invalid| {
            ExchangeError::InvalidResponse(match invalid {
                InvalidLength::NotANumber => "invalid Content-Length",
                InvalidLength::Disagree => "Content-Length values disagree",
            })
        })?;
        length.map_or(Framing::UntilClose, Framing::Length)
    } else {
        Framing::UntilClose
    };
    let keep_alive = framing != Framing::UntilClose && tokens.keep_alive(version);
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    let (parts, ()) = response.into_parts();
    Ok(Some(ParsedHead {
        parts,
        framing,
        keep_alive,
    }))
}
