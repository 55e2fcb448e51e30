//! Request heads in both roles. Server role: a request head parsed with httparse into `http`
//! types whose values share the bytes read, when it is one the worker's own fast path may serve
//! (no body, no upgrade); every other request is left to hyper with the buffer untouched, so that
//! hyper answers it exactly as it would have from the start. Client role: the request head
//! written as one buffer.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};

use crate::fields::{ConnectionTokens, FieldKind, FieldSpan, MAX_FIELDS, list_tokens, push_field};

/// A request head the fast path serves itself.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target, version and header fields; the target and the values share the bytes
    /// read.
    pub parts: Parts,
    /// Whether the client asked to keep the connection after the response.
    pub keep_alive: bool,
    /// Whether the client said, with `TE: trailers`, that it takes trailer fields (hyper's rule:
    /// the token `trailers` in any `TE` field).
    pub accepts_trailers: bool,
}

// The head is moved out at once; boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet; the caller decides when it has waited or read too much.
    Partial,
    /// A bodyless request, taken out of the buffer.
    Request(RequestHead),
    /// A request that is hyper's to serve, along with the rest of the connection: one with a
    /// body (other than `Content-Length: 0`), a transfer coding, an upgrade, `Expect` or
    /// `CONNECT`, the HTTP/2 preface, or a head that is malformed or over the limits (hyper
    /// answers those with the right error). The buffer still holds the whole head.
    HandOff,
}

/// What the fields of a request head say about how it may be served.
#[derive(Debug, Default)]
struct Fields {
    hand_off: bool,
    has_length: bool,
    connection: ConnectionTokens,
    accepts_trailers: bool,
}

impl Fields {
    fn note(&mut self, kind: FieldKind, value: &[u8]) {
        match kind {
            FieldKind::ContentLength => {
                // A declared empty body is no body; any other is streamed by hyper. hyper keeps
                // one of repeated equal lengths, which it is simplest to leave to hyper.
                self.hand_off |= self.has_length || value.trim_ascii() != b"0";
                self.has_length = true;
            }
            FieldKind::TransferEncoding | FieldKind::Upgrade | FieldKind::Expect => {
                self.hand_off = true;
            }
            FieldKind::Connection => self.connection.read(value),
            FieldKind::Te => {
                self.accepts_trailers |=
                    list_tokens(value).any(|token| token.eq_ignore_ascii_case(b"trailers"));
            }
            FieldKind::KeepAlive | FieldKind::Other => {}
        }
    }
}

/// The request target and header fields, as `http` types sharing `head`'s bytes; `None` when
/// one of them is invalid.
fn uri_and_headers(
    head: &Bytes,
    path: Range<usize>,
    spans: &[FieldSpan],
) -> Option<(Uri, HeaderMap)> {
    let uri = Uri::from_maybe_shared(head.slice(path)).ok()?;
    // Room for what the proxy adds: Via, X-Forwarded-For/-Proto/-Host and Host.
    let mut headers = HeaderMap::with_capacity(spans.len() + 5);
    for span in spans {
        span.append_to(head, &mut headers)?;
    }
    Some((uri, headers))
}

/// Parses a request head at the start of `buffer` and, when it is one the fast path serves,
/// takes it out of the buffer. `spans` is scratch space kept by the connection, so that parsing
/// needs neither an allocation nor a large zeroed array; a head with more than `max_headers`
/// fields is handed off.
pub fn parse_request(
    buffer: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    max_headers: usize,
) -> Parsed {
    spans.clear();
    let mut fields = Fields::default();
    let (head_len, method, path, minor) = {
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_FIELDS];
        let mut request = httparse::Request::new(&mut []);
        let start = buffer.as_ptr() as usize;
        let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut request,
            buffer,
            &mut slots,
        );
        let head_len = match parsed {
            Ok(httparse::Status::Complete(head_len)) => head_len,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::HandOff,
        };
        if request.headers.len() > max_headers {
            return Parsed::HandOff;
        }
        for field in request.headers.iter() {
            let span = FieldSpan::of(field, start);
            fields.note(span.kind(), field.value);
            spans.push(span);
        }
        let (Some(method), Some(path), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Parsed::HandOff;
        };
        let path_start = path.as_ptr() as usize - start;
        (head_len, method, path_start..path_start + path.len(), minor)
    };
    if fields.hand_off {
        return Parsed::HandOff;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::HandOff;
    };
    if method == Method::CONNECT {
        return Parsed::HandOff;
    }
    let head = buffer.split_to(head_len).freeze();
    let Some((uri, headers)) = uri_and_headers(&head, path, spans) else {
        put_back(buffer, head);
        return Parsed::HandOff;
    };
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();
    Parsed::Request(RequestHead {
        parts,
        keep_alive: fields.connection.keep_alive(version),
        accepts_trailers: fields.accepts_trailers,
    })
}

/// Puts a head taken out of `buffer` back in front of what followed it, for hyper to read from
/// the start. A copy: the rest still shares the head's allocation, so the two cannot be joined
/// again in place, and only a request hyper is about to refuse comes this way.
fn put_back(buffer: &mut BytesMut, head: Bytes) {
    let mut whole = BytesMut::with_capacity(head.len() + buffer.len());
    whole.extend_from_slice(&head);
    whole.extend_from_slice(buffer);
    *buffer = whole;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::HOST;

    fn parse(bytes: &[u8]) -> (Parsed, BytesMut) {
        let mut buffer = BytesMut::from(bytes);
        let mut spans = Vec::new();
        let parsed = parse_request(&mut buffer, &mut spans, MAX_FIELDS);
        (parsed, buffer)
    }

    fn request(bytes: &[u8]) -> (RequestHead, BytesMut) {
        match parse(bytes) {
            (Parsed::Request(head), rest) => (head, rest),
            (other, _) => panic!("{other:?} for {:?}", String::from_utf8_lossy(bytes)),
        }
    }

    /// Asserts what `read` says of each request head.
    fn assert_each(cases: &[(&[u8], bool)], read: impl Fn(&RequestHead) -> bool) {
        for (bytes, expected) in cases {
            let (head, _) = request(bytes);
            assert_eq!(
                read(&head),
                *expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_bodyless_request_is_taken_out_of_the_buffer() {
        let (head, rest) = request(
            b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Tag: a\r\nX-Tag: b\r\n\r\nGET /next",
        );
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "/a?b=1");
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.parts.headers["host"], "example.com");
        let tags: Vec<_> = head.parts.headers.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
        assert!(head.keep_alive);
        assert!(!head.accepts_trailers);
        assert_eq!(&rest[..], b"GET /next", "a pipelined request stays");
    }

    #[test]
    fn values_share_the_bytes_read() {
        let mut buffer = BytesMut::from(&b"GET / HTTP/1.1\r\nx-long: 0123456789abcdef\r\n\r\n"[..]);
        let range = buffer.as_ptr_range();
        let mut spans = Vec::new();
        let Parsed::Request(head) = parse_request(&mut buffer, &mut spans, MAX_FIELDS) else {
            panic!("not served");
        };
        let value = head.parts.headers["x-long"].as_bytes().as_ptr();
        assert!(range.contains(&value), "the value was copied");
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let cases = [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: CLOSE\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n", true),
        ];
        assert_each(&cases, |head| head.keep_alive);
    }

    #[test]
    fn trailers_are_accepted_only_with_te_trailers() {
        let cases = [
            (&b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n"[..], true),
            (b"GET / HTTP/1.1\r\nte: gzip, Trailers\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nte: gzip\r\nte: trailers\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nte: gzip\r\n\r\n", false),
            // hyper compares whole elements, parameters included.
            (b"GET / HTTP/1.1\r\nte: trailers;q=1\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nx-te: trailers\r\n\r\n", false),
        ];
        assert_each(&cases, |head| head.accepts_trailers);
    }

    #[test]
    fn a_declared_empty_body_is_no_body() {
        let (head, _) = request(b"DELETE /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(head.parts.headers["content-length"], "0");
        let (head, _) = request(b"DELETE /x HTTP/1.1\r\ncontent-length:  0 \r\n\r\n");
        assert_eq!(head.parts.method, Method::DELETE);
    }

    #[test]
    fn requests_the_fast_path_does_not_serve_are_handed_off_whole() {
        for bytes in [
            &b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 00\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            b"PUT / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nx : y\r\n\r\n",
            b"GET / HTTP/1.1\r\nx: a\r\n b\r\n\r\n",
            b"GET /a<b HTTP/1.1\r\n\r\n",
            b"GET a/b HTTP/1.1\r\nx: y\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"GET http://[::1 HTTP/1.1\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
        ] {
            let (parsed, rest) = parse(bytes);
            assert!(
                matches!(parsed, Parsed::HandOff),
                "{parsed:?} for {:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(&rest[..], bytes, "the buffer holds the whole head");
        }
    }

    #[test]
    fn heads_with_too_many_fields_are_handed_off() {
        let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..10 {
            bytes.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        let mut buffer = BytesMut::from(&bytes[..]);
        let mut spans = Vec::new();
        assert!(matches!(
            parse_request(&mut buffer, &mut spans, 9),
            Parsed::HandOff
        ));
        assert!(matches!(
            parse_request(&mut buffer, &mut spans, 10),
            Parsed::Request(_)
        ));
        let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_FIELDS {
            bytes.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&bytes).0, Parsed::HandOff));
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        for bytes in [&b""[..], b"GET", b"GET / HTTP/1.1\r\nhost: a\r\n", b"\r\n"] {
            let (parsed, rest) = parse(bytes);
            assert!(matches!(parsed, Parsed::Partial), "{parsed:?}");
            assert_eq!(&rest[..], bytes);
        }
    }

    #[test]
    fn leading_empty_lines_and_bare_line_feeds_are_read_as_hyper_reads_them() {
        let (head, rest) = request(b"\r\nGET / HTTP/1.1\nhost: a\n\n");
        assert_eq!(head.parts.headers["host"], "a");
        assert!(rest.is_empty());
    }

    #[test]
    fn the_request_head_is_one_buffer_in_wire_form() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("api.example.com"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        let mut out = b"left over".to_vec();
        encode_request_head(&mut out, &Method::DELETE, "/items/1?force=yes", &headers);
        assert_eq!(
            out,
            b"DELETE /items/1?force=yes HTTP/1.1\r\nhost: api.example.com\r\nx-tag: a\r\nx-tag: b\r\n\r\n"
        );
    }
}
