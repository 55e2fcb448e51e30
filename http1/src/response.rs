//! Response heads in both roles. Client role: a response head parsed with httparse into `http`
//! types whose values share the bytes read, with the framing of its body and whether the
//! connection may carry another request decided here, where the connection is managed. Server
//! role: a response head encoded into one buffer with the framing and connection fields that fit
//! the client's connection.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::{HeaderMap, Response, StatusCode, Version};

use crate::date::push_date;
use crate::error::InvalidMessage;
use crate::fields::{
    ConnectionTokens, FieldKind, FieldSpan, MAX_FIELDS, names_headers, push_field, push_number,
};
use crate::framing::{Framing, InvalidLength, declared_length_of, has_no_body, is_chunked};

/// A response head read from a connection.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status, version and header fields, without `Keep-Alive`, and without `Connection` unless
    /// it names other fields (which the proxy's hop-by-hop rules then remove along with it).
    /// Framing fields stay.
    pub parts: Parts,
    pub framing: Framing,
    /// Whether the connection may carry another request once this response has ended.
    pub keep_alive: bool,
}

fn invalid(reason: &'static str) -> InvalidMessage {
    InvalidMessage::new(reason)
}

/// Parses a complete response head at the start of `buffer` and takes it out of the buffer;
/// `None` while the head is incomplete (how long a head may grow is the caller's limit). `spans`
/// is scratch space, kept by the connection so that parsing needs neither an allocation nor a
/// large zeroed array.
///
/// Informational responses (1xx) are returned like any other, for the caller to skip; `101
/// Switching Protocols` is refused, since the requests sent this way never ask for an upgrade.
/// So is an HTTP/1.0 response with `Transfer-Encoding` (RFC 9112 §6.1: its framing is faulty).
/// A response with both `Transfer-Encoding` and `Content-Length` is framed by the transfer
/// coding, and its connection is not kept (RFC 9112 §6.3: it may be an attempt at response
/// splitting).
pub fn parse_response_head(
    buffer: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    to_head_request: bool,
) -> Result<Option<ResponseHead>, InvalidMessage> {
    spans.clear();
    let (head_len, code, minor) = {
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_FIELDS];
        let mut response = httparse::Response::new(&mut []);
        let start = buffer.as_ptr() as usize;
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut response, buffer, &mut slots)
            .map_err(|error| {
                invalid(match error {
                    httparse::Error::TooManyHeaders => "more than 100 header fields",
                    httparse::Error::Status => "invalid status line",
                    httparse::Error::Version => "not HTTP/1.x",
                    _ => "malformed response head",
                })
            })?;
        let httparse::Status::Complete(head_len) = parsed else {
            return Ok(None);
        };
        spans.extend(
            response
                .headers
                .iter()
                .map(|field| FieldSpan::of(field, start)),
        );
        (
            head_len,
            response.code.unwrap_or_default(),
            response.version.unwrap_or_default(),
        )
    };
    let head: Bytes = buffer.split_to(head_len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| invalid("invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(invalid(
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
    for span in spans.iter() {
        let value = span.value(&head);
        match span.kind() {
            FieldKind::KeepAlive => continue,
            FieldKind::Connection => {
                tokens.read(value);
                if !names_headers(value) {
                    continue;
                }
            }
            FieldKind::TransferEncoding => last_transfer_coding = Some(value),
            FieldKind::ContentLength => has_length = true,
            _ => {}
        }
        span.append_to(&head, &mut headers)
            .ok_or(invalid("invalid header field"))?;
    }
    if version == Version::HTTP_10 && last_transfer_coding.is_some() {
        return Err(invalid("Transfer-Encoding in an HTTP/1.0 response"));
    }

    let framing = if has_no_body(status, to_head_request) {
        Framing::NoBody
    } else if let Some(last) = last_transfer_coding {
        if is_chunked(last) {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if has_length {
        let lengths = spans
            .iter()
            .filter(|span| span.kind() == FieldKind::ContentLength)
            .map(|span| span.value(&head));
        let length = declared_length_of(lengths).map_err(|error| {
            invalid(match error {
                InvalidLength::NotANumber => "invalid Content-Length",
                InvalidLength::Disagree => "Content-Length values disagree",
            })
        })?;
        length.map_or(Framing::UntilClose, Framing::Length)
    } else {
        Framing::UntilClose
    };
    let smuggling = has_length && last_transfer_coding.is_some();
    let keep_alive = framing != Framing::UntilClose && !smuggling && tokens.keep_alive(version);
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    let (parts, ()) = response.into_parts();
    Ok(Some(ResponseHead {
        parts,
        framing,
        keep_alive,
    }))
}

/// What an encoded response head committed the connection to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFraming {
    /// How the body must follow the head.
    pub framing: Framing,
    /// The head said `Connection: close`; the connection ends after this response.
    pub close: bool,
}

/// Writes the status line, the header fields, `Date` when the response has none, the framing
/// and the connection fields, and the blank line into `out`. The response's own framing and
/// connection fields are replaced by the ones that fit this connection; a `Connection: close`
/// the response carries is kept. `exact_length` is the body's length when it is known ahead;
/// `client_version` the version of the request answered; `close` whether the connection must
/// end after this response anyway.
pub fn encode_response_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    exact_length: Option<u64>,
    to_head_request: bool,
    client_version: Version,
    mut close: bool,
) -> ResponseFraming {
    let status = parts.status;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    let mut has_length = false;
    for (name, value) in &parts.headers {
        if *name == CONNECTION {
            let mut tokens = ConnectionTokens::default();
            tokens.read(value.as_bytes());
            close |= tokens.close;
            continue;
        }
        if *name == TRANSFER_ENCODING {
            continue;
        }
        if *name == CONTENT_LENGTH {
            has_length = true;
            continue;
        }
        has_date |= *name == DATE;
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        push_date(out);
        out.extend_from_slice(b"\r\n");
    }
    // Another pass over the few fields rather than a lookup by name, which would hash it.
    let declared_length = has_length
        .then(|| {
            let lengths = parts
                .headers
                .iter()
                .filter(|(name, _)| **name == CONTENT_LENGTH);
            declared_length_of(lengths.map(|(_, value)| value.as_bytes()))
        })
        .and_then(|length| length.ok().flatten());
    let framing = if has_no_body(status, to_head_request) {
        // A response to HEAD and a 304 describe the representation the request would have had.
        let describes =
            (to_head_request && !status.is_informational() && status != StatusCode::NO_CONTENT)
                || status == StatusCode::NOT_MODIFIED;
        if describes
            && let Some(length) = declared_length.or(exact_length.filter(|_| to_head_request))
        {
            length_field(out, length);
        }
        Framing::NoBody
    } else if let Some(length) = declared_length.or(exact_length) {
        length_field(out, length);
        Framing::Length(length)
    } else if client_version == Version::HTTP_11 {
        push_field(out, b"transfer-encoding", b"chunked");
        Framing::Chunked
    } else {
        close = true;
        Framing::UntilClose
    };
    if close {
        push_field(out, b"connection", b"close");
    } else if client_version == Version::HTTP_10 {
        push_field(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    ResponseFraming { framing, close }
}

fn length_field(out: &mut Vec<u8>, length: u64) {
    out.extend_from_slice(b"content-length: ");
    push_number(out, length, 10);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(bytes: &[u8], to_head_request: bool) -> Result<Option<ResponseHead>, InvalidMessage> {
        let mut buffer = BytesMut::from(bytes);
        let mut spans = Vec::new();
        parse_response_head(&mut buffer, &mut spans, to_head_request)
    }

    fn head(bytes: &[u8]) -> ResponseHead {
        parse(bytes, false).unwrap().unwrap()
    }

    #[test]
    fn a_response_with_a_length_is_framed_by_it() {
        let mut buffer =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello"[..]);
        let mut spans = Vec::new();
        let head = parse_response_head(&mut buffer, &mut spans, false)
            .unwrap()
            .unwrap();
        assert_eq!(head.parts.status, 200);
        assert_eq!(head.parts.headers["x-a"], "1");
        assert_eq!(head.parts.headers["content-length"], "5");
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&buffer[..], b"hello", "the body stays in the buffer");
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        assert!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-le", false)
                .unwrap()
                .is_none()
        );
        assert!(parse(b"", false).unwrap().is_none());
    }

    #[test]
    fn transfer_codings_frame_the_body_when_chunked_is_last() {
        let chunked = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(chunked.keep_alive);
        let gzip = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
        );
        assert_eq!(gzip.framing, Framing::Chunked);
        // A transfer coding other than chunked last: the body runs until the connection closes,
        // whatever Content-Length says.
        let raw = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\ncontent-length: 3\r\n\r\n",
        );
        assert_eq!(raw.framing, Framing::UntilClose);
        assert!(!raw.keep_alive);
    }

    #[test]
    fn transfer_encoding_with_content_length_is_chunked_and_not_kept() {
        let head =
            head(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive);
        // Whatever the length says: the transfer coding decides.
        let head = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive);
    }

    #[test]
    fn http10_responses_with_transfer_encoding_are_refused() {
        for bytes in [
            &b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            b"HTTP/1.0 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            let error = parse(bytes, false).unwrap_err();
            assert_eq!(error.reason(), "Transfer-Encoding in an HTTP/1.0 response");
        }
    }

    #[test]
    fn bodies_that_cannot_exist_are_not_framed() {
        let to_head = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(to_head.framing, Framing::NoBody);
        assert_eq!(to_head.parts.headers["content-length"], "5");
        assert!(to_head.keep_alive);
        for bytes in [
            &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 100\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: nonsense\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            let head = head(bytes);
            assert_eq!(head.framing, Framing::NoBody);
            assert!(head.keep_alive);
        }
    }

    #[test]
    fn informational_responses_are_returned_before_the_final_one() {
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"[..],
        );
        let mut spans = Vec::new();
        let first = parse_response_head(&mut buffer, &mut spans, false)
            .unwrap()
            .unwrap();
        assert_eq!(first.parts.status, 100);
        let last = parse_response_head(&mut buffer, &mut spans, false)
            .unwrap()
            .unwrap();
        assert_eq!(last.parts.status, 201);
        assert_eq!(last.framing, Framing::Length(2));
        assert_eq!(&buffer[..], b"ok");
    }

    #[test]
    fn connections_that_do_not_stay_open_are_not_kept() {
        for (bytes, keep) in [
            (&b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n"[..], false),
            (b"HTTP/1.1 200 OK\r\nConnection: CLOSE\r\ncontent-length: 2\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", false),
        ] {
            let parsed = head(bytes);
            assert_eq!(parsed.keep_alive, keep, "{:?}", String::from_utf8_lossy(bytes));
        }
        let until_close = head(b"HTTP/1.1 200 OK\r\n\r\nall of it");
        assert_eq!(until_close.framing, Framing::UntilClose);
        assert_eq!(
            head(b"HTTP/1.0 200 OK\r\n\r\n").parts.version,
            Version::HTTP_10
        );
    }

    #[test]
    fn connection_fields_are_read_here_and_left_out() {
        let parsed = head(b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\n");
        assert!(parsed.parts.headers.get("connection").is_none());
        assert!(parsed.parts.headers.get("keep-alive").is_none());
        assert!(parsed.keep_alive);
        // Fields named by Connection are the proxy's to remove, so Connection stays with them.
        let parsed = head(b"HTTP/1.1 200 OK\r\nconnection: keep-alive, X-Internal\r\nx-internal: 1\r\nCONTENT-LENGTH: 2\r\n\r\n");
        assert_eq!(parsed.parts.headers["connection"], "keep-alive, X-Internal");
        assert_eq!(parsed.parts.headers["x-internal"], "1");
        assert_eq!(parsed.parts.headers["content-length"], "2");
        assert!(parsed.keep_alive);
    }

    #[test]
    fn invalid_responses_are_refused() {
        for (bytes, reason) in [
            (
                &b"HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabc"[..],
                "Content-Length values disagree",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
                "Content-Length values disagree",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: -3\r\n\r\n",
                "invalid Content-Length",
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.x"),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
                "101 Switching Protocols to a request that asked for no upgrade",
            ),
            (b"HTTP/1.1 099 Low\r\n\r\n", "invalid status code"),
            (b"HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"),
            (
                b"HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
                "malformed response head",
            ),
            (
                b"HTTP/1.1 200 OK\r\nx : a\r\n\r\n",
                "malformed response head",
            ),
        ] {
            let error = parse(bytes, false).unwrap_err();
            assert_eq!(
                error.reason(),
                reason,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_FIELDS {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse(&many, false).unwrap_err().reason(),
            "more than 100 header fields"
        );
    }

    /// The head `encode_response_head` writes for a response of `status` with `fields`, and
    /// what it committed the connection to.
    fn encode(
        status: u16,
        fields: &[(&str, &str)],
        exact: Option<u64>,
        to_head: bool,
        version: Version,
        close: bool,
    ) -> (String, ResponseFraming) {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in fields {
            response.headers_mut().append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let mut out = b"left over".to_vec();
        let framing = encode_response_head(
            &mut out,
            &response.into_parts().0,
            exact,
            to_head,
            version,
            close,
        );
        (String::from_utf8(out).unwrap(), framing)
    }

    /// Asserts each encoded head whole, and its framing and `close`.
    fn assert_heads(cases: &[((String, ResponseFraming), &str, Framing, bool)]) {
        for ((head, committed), expected, framing, close) in cases {
            assert_eq!(head, expected);
            assert_eq!(
                *committed,
                ResponseFraming {
                    framing: *framing,
                    close: *close
                },
                "{head}"
            );
        }
    }

    const V10: Version = Version::HTTP_10;
    const V11: Version = Version::HTTP_11;

    #[test]
    fn a_response_head_is_one_buffer_with_a_date() {
        let fields = [("x-a", "1"), ("content-length", "5")];
        let (head, framing) = encode(200, &fields, None, false, V11, false);
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: "),
            "{head}"
        );
        assert!(
            head.ends_with(" GMT\r\ncontent-length: 5\r\n\r\n"),
            "{head}"
        );
        assert_eq!(
            framing,
            ResponseFraming {
                framing: Framing::Length(5),
                close: false
            }
        );
        let dated = [("date", "Sun, 06 Nov 1994 08:49:37 GMT")];
        assert_heads(&[(
            encode(404, &dated, Some(0), false, V11, false),
            "HTTP/1.1 404 Not Found\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 0\r\n\r\n",
            Framing::Length(0),
            false,
        )]);
    }

    #[test]
    fn bodies_of_unknown_length_are_chunked_or_close_the_connection() {
        let dated = [("date", "x"), ("transfer-encoding", "gzip")];
        assert_heads(&[
            (
                encode(200, &dated, None, false, V11, false),
                "HTTP/1.1 200 OK\r\ndate: x\r\ntransfer-encoding: chunked\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                encode(200, &dated, None, false, V10, false),
                "HTTP/1.1 200 OK\r\ndate: x\r\nconnection: close\r\n\r\n",
                Framing::UntilClose,
                true,
            ),
        ]);
    }

    #[test]
    fn connection_fields_fit_the_client() {
        let dated = [("date", "x")];
        // The response's own `Connection: close` is kept, its other tokens are not.
        let closing = [("date", "x"), ("connection", "x-a, Close")];
        let closed = "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n";
        assert_heads(&[
            (
                encode(200, &dated, Some(2), false, V10, false),
                "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n",
                Framing::Length(2),
                false,
            ),
            (
                encode(200, &dated, Some(2), false, V11, true),
                closed,
                Framing::Length(2),
                true,
            ),
            (
                encode(200, &closing, Some(2), false, V11, false),
                closed,
                Framing::Length(2),
                true,
            ),
        ]);
    }

    #[test]
    fn responses_to_head_and_304_carry_the_length_but_no_body() {
        let dated = [("date", "x")];
        let declared = [("date", "x"), ("content-length", "9")];
        assert_heads(&[
            (
                encode(200, &dated, Some(7), true, V11, false),
                "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 7\r\n\r\n",
                Framing::NoBody,
                false,
            ),
            // No chunked coding without a body.
            (
                encode(200, &dated, None, true, V11, false),
                "HTTP/1.1 200 OK\r\ndate: x\r\n\r\n",
                Framing::NoBody,
                false,
            ),
            (
                encode(304, &declared, Some(0), false, V11, false),
                "HTTP/1.1 304 Not Modified\r\ndate: x\r\ncontent-length: 9\r\n\r\n",
                Framing::NoBody,
                false,
            ),
            (
                encode(304, &dated, Some(0), false, V11, false),
                "HTTP/1.1 304 Not Modified\r\ndate: x\r\n\r\n",
                Framing::NoBody,
                false,
            ),
            (
                encode(204, &declared, Some(0), true, V11, false),
                "HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n",
                Framing::NoBody,
                false,
            ),
        ]);
    }
}
