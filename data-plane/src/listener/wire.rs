//! The HTTP/1 wire form of what the listener reads and writes itself: request heads parsed with
//! httparse into `http` types whose values share the bytes read, and response heads encoded
//! into one buffer.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::{HeaderMap, Method, Request, StatusCode, Uri, Version};

use crate::body::ClientBody;
use crate::http1_fields::declared_length_of;
use crate::http1_fields::{ConnectionTokens, FieldSpan, MAX_FIELDS, push_field};

/// A request head the listener answers itself.
#[derive(Debug)]
pub struct RequestHead {
    pub request: Request<ClientBody>,
    /// Whether the client asked to keep the connection after the response.
    pub keep_alive: bool,
}

// The request is moved out at once; boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    Request(RequestHead),
    /// A request that is hyper's to serve, along with the rest of the connection: one with a
    /// body, an upgrade, `Expect` or `CONNECT`, the HTTP/2 preface, or a head that is malformed
    /// or over the limits (hyper answers those with the right error).
    HandOff,
}

/// What the fields of a request head say about how the listener may serve it.
#[derive(Debug, Default)]
struct Fields {
    hand_off: bool,
    connection: ConnectionTokens,
}

impl Fields {
    fn note(&mut self, name: &[u8], value: &[u8]) {
        if name.eq_ignore_ascii_case(b"content-length") {
            // A declared empty body is no body; any other is streamed by hyper.
            self.hand_off |= value.trim_ascii() != b"0";
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
        {
            self.hand_off = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            self.connection.read(value);
        }
    }
}

/// The request target and header fields, as `http` types sharing `head`'s bytes; `None` when
/// one of them is invalid.
fn uri_and_headers(
    head: &Bytes,
    path: std::ops::Range<usize>,
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

/// Parses a request head at the start of `buffer` and, when it is one the listener serves,
/// takes it out of the buffer. `spans` is scratch space kept by the connection.
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
            fields.note(field.name.as_bytes(), field.value);
            spans.push(FieldSpan::of(field, start));
        }
        let (Some(method), Some(path), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Parsed::HandOff;
        };
        let path_start = path.as_ptr() as usize - start;
        let path = path_start..path_start + path.len();
        (head_len, method, path, minor)
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::HandOff;
    };
    if fields.hand_off || method == Method::CONNECT {
        return Parsed::HandOff;
    }
    let head = buffer.split_to(head_len).freeze();
    let Some((uri, headers)) = uri_and_headers(&head, path, spans) else {
        // hyper answers it, from the start of the head.
        let mut whole = BytesMut::with_capacity(head.len() + buffer.len());
        whole.extend_from_slice(&head);
        whole.extend_from_slice(buffer);
        *buffer = whole;
        return Parsed::HandOff;
    };
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let keep_alive = fields.connection.keep_alive(version);
    let mut request = Request::new(ClientBody::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Parsed::Request(RequestHead {
        request,
        keep_alive,
    })
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body is sent: a response to HEAD, or a status that has none (1xx, 204, 304).
    NoBody,
    Length(u64),
    Chunked,
    /// Until the connection closes: the length is unknown and the client speaks HTTP/1.0.
    UntilClose,
}

/// What the encoded head committed the connection to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFraming {
    pub body: BodyFraming,
    /// The head said `Connection: close`; the connection ends after this response.
    pub close: bool,
}

/// Writes the status line, the header fields, `Date` when the response has none, the framing
/// and the connection fields, and the blank line into `out`. The response's own framing and
/// connection fields are replaced by the ones that fit this connection; a `Connection: close`
/// the response carries is kept.
pub fn encode_response_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    exact_length: Option<u64>,
    to_head_request: bool,
    client: Version,
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
        CACHED_DATE.with_borrow_mut(|date| push_field(out, b"date", date.now()));
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
    let has_no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || to_head_request;
    let body = if has_no_body {
        // A response to HEAD and a 304 describe the representation the request would have had.
        let describes =
            (to_head_request && !status.is_informational() && status != StatusCode::NO_CONTENT)
                || status == StatusCode::NOT_MODIFIED;
        if describes
            && let Some(length) = declared_length.or(exact_length.filter(|_| to_head_request))
        {
            length_field(out, length);
        }
        BodyFraming::NoBody
    } else if let Some(length) = declared_length.or(exact_length) {
        length_field(out, length);
        BodyFraming::Length(length)
    } else if client == Version::HTTP_11 {
        push_field(out, b"transfer-encoding", b"chunked");
        BodyFraming::Chunked
    } else {
        close = true;
        BodyFraming::UntilClose
    };
    if close {
        push_field(out, b"connection", b"close");
    } else if client == Version::HTTP_10 {
        push_field(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
    ResponseFraming { body, close }
}

fn length_field(out: &mut Vec<u8>, length: u64) {
    out.extend_from_slice(b"content-length: ");
    push_number(out, length, 10);
    out.extend_from_slice(b"\r\n");
}

/// Appends `value` in `radix` (10 or 16), without going through the formatting machinery.
fn push_number(out: &mut Vec<u8>, value: u64, radix: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = DIGITS[(rest % radix) as usize];
        rest /= radix;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The `Date` value of the current second, formatted once per second per thread.
struct CachedDate {
    second: u64,
    value: Vec<u8>,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second || self.value.is_empty() {
            self.second = second;
            self.value = httpdate::fmt_http_date(now).into_bytes();
        }
        &self.value
    }
}

thread_local! {
    static CACHED_DATE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { second: 0, value: Vec::new() })
    };
}

/// Appends the line that starts a chunk of `len` bytes.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    push_number(out, len as u64, 16);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, the trailer fields, if any, and the blank line that ends the body.
pub fn last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        push_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}
