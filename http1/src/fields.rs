//! Header fields of HTTP/1 heads as both roles read and write them: positions of fields parsed
//! by httparse, kept so that `http` values can share the head's bytes once the head leaves its
//! read buffer; what `Connection` says about keeping the connection and whether it names other
//! fields; and a field in wire form.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Version};

// The per-field helpers of this module are `#[inline]`: they run for every field of every head on
// both sides of the worker, and across the crate boundary the optimizer otherwise keeps them as
// calls (measured: about 2 % of the instructions of a proxied request).

/// Header fields parsed in place from one head, in either role: a request with more goes to
/// hyper, which applies the configured limit; a response with more is refused. The same number
/// as hyper's default, so that both paths of the worker agree.
pub const MAX_FIELDS: usize = 100;

/// The fields the codec reads itself, to frame the body and to decide about the connection;
/// known when the span is taken so that no later pass compares names again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Connection,
    ContentLength,
    Expect,
    KeepAlive,
    Te,
    TransferEncoding,
    Upgrade,
    Other,
}

impl FieldKind {
    #[inline]
    fn of(name: &[u8]) -> FieldKind {
        // The length picks the one candidate worth comparing.
        let (candidate, kind) = match name.len() {
            2 => (&b"te"[..], FieldKind::Te),
            6 => (&b"expect"[..], FieldKind::Expect),
            7 => (&b"upgrade"[..], FieldKind::Upgrade),
            10 if name[0].eq_ignore_ascii_case(&b'c') => {
                (&b"connection"[..], FieldKind::Connection)
            }
            10 => (&b"keep-alive"[..], FieldKind::KeepAlive),
            14 => (&b"content-length"[..], FieldKind::ContentLength),
            17 => (&b"transfer-encoding"[..], FieldKind::TransferEncoding),
            _ => return FieldKind::Other,
        };
        if name.eq_ignore_ascii_case(candidate) {
            kind
        } else {
            FieldKind::Other
        }
    }
}

/// Byte ranges of one header field within the head it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpan {
    name: (usize, usize),
    value: (usize, usize),
    kind: FieldKind,
}

impl FieldSpan {
    /// The position of `field`, which httparse parsed from the head that starts at address
    /// `head_start` (taken before parsing, while the buffer is not yet borrowed).
    #[inline]
    pub fn of(field: &httparse::Header<'_>, head_start: usize) -> FieldSpan {
        let name = field.name.as_ptr() as usize - head_start;
        let value = field.value.as_ptr() as usize - head_start;
        FieldSpan {
            name: (name, name + field.name.len()),
            value: (value, value + field.value.len()),
            kind: FieldKind::of(field.name.as_bytes()),
        }
    }

    pub fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.name.0..self.name.1]
    }

    pub fn value<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.value.0..self.value.1]
    }

    pub(crate) fn kind(&self) -> FieldKind {
        self.kind
    }

    /// The field appended to `headers`, its value sharing `head`'s bytes; `None` when the name or
    /// the value is not valid.
    #[inline]
    pub fn append_to(&self, head: &Bytes, headers: &mut HeaderMap) -> Option<()> {
        let name = HeaderName::from_bytes(self.name(head)).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(self.value.0..self.value.1)).ok()?;
        headers.append(name, value);
        Some(())
    }
}

/// Whether `value` is what `HeaderValue::to_str` accepts: visible ASCII, spaces and tabs. hyper
/// reads list-valued fields (`Connection`, `TE`, `Transfer-Encoding`) only when they are, and both
/// paths of the worker must read them alike.
#[inline]
pub(crate) fn is_visible_ascii(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| *b == b'\t' || (b' '..=b'~').contains(b))
}

/// The comma-separated elements of a list-valued field, trimmed; nothing for a value hyper would
/// not read.
#[inline]
pub(crate) fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let readable = is_visible_ascii(value);
    value
        .split(|b| *b == b',')
        .filter(move |_| readable)
        .map(<[u8]>::trim_ascii)
}

/// What the `Connection` fields of a message say about its connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
}

impl ConnectionTokens {
    /// Notes the tokens of one `Connection` value; a `close` anywhere wins over any `keep-alive`.
    #[inline]
    pub fn read(&mut self, value: &[u8]) {
        for token in list_tokens(value) {
            self.close |= token.eq_ignore_ascii_case(b"close");
            self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }

    /// HTTP/1.1 keeps the connection unless it says `close`; HTTP/1.0 only if it says
    /// `keep-alive`.
    pub fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// A Connection token that names no header of its own to remove.
#[inline]
pub fn is_plain_token(token: &[u8]) -> bool {
    token.is_empty()
        || token.eq_ignore_ascii_case(b"keep-alive")
        || token.eq_ignore_ascii_case(b"close")
}

/// Whether a Connection value names headers to remove besides the hop-by-hop ones. A value that
/// is not visible ASCII names nothing that could be looked up.
pub fn names_headers(value: &[u8]) -> bool {
    is_visible_ascii(value)
        && !value
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .all(is_plain_token)
}

/// Appends `name: value` and its line end.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `value` in `radix` (10 or 16), without going through the formatting machinery.
pub(crate) fn push_number(out: &mut Vec<u8>, value: u64, radix: u64) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens_decide_keep_alive_per_version() {
        let mut tokens = ConnectionTokens::default();
        assert!(tokens.keep_alive(Version::HTTP_11));
        assert!(!tokens.keep_alive(Version::HTTP_10));
        tokens.read(b" Keep-Alive ,x-other");
        assert!(tokens.keep_alive(Version::HTTP_10));
        tokens.read(b"CLOSE");
        assert!(!tokens.keep_alive(Version::HTTP_11));
    }

    #[test]
    fn connection_values_hyper_cannot_read_say_nothing() {
        let mut tokens = ConnectionTokens::default();
        tokens.read(b"close, caf\xc3\xa9");
        tokens.read(b"keep-alive, \x7f");
        assert!(!tokens.close && !tokens.keep_alive);
        tokens.read(b"\tclose\t");
        assert!(tokens.close);
    }

    #[test]
    fn spans_locate_fields_in_their_head() {
        let head = Bytes::from_static(b"GET / HTTP/1.1\r\nX-A: one\r\nContent-LENGTH: 0\r\n\r\n");
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let mut request = httparse::Request::new(&mut slots);
        request.parse(&head).unwrap();
        let span = FieldSpan::of(&request.headers[0], head.as_ptr() as usize);
        assert_eq!(span.name(&head), b"X-A");
        assert_eq!(span.value(&head), b"one");
        assert_eq!(span.kind(), FieldKind::Other);
        let mut headers = HeaderMap::new();
        span.append_to(&head, &mut headers).unwrap();
        assert_eq!(headers["x-a"], "one");
        let length = FieldSpan::of(&request.headers[1], head.as_ptr() as usize);
        assert_eq!(length.kind(), FieldKind::ContentLength);
    }

    #[test]
    fn field_kinds_are_matched_without_regard_to_case() {
        for (name, kind) in [
            (&b"TE"[..], FieldKind::Te),
            (b"Expect", FieldKind::Expect),
            (b"UPGRADE", FieldKind::Upgrade),
            (b"Connection", FieldKind::Connection),
            (b"Keep-Alive", FieldKind::KeepAlive),
            (b"content-length", FieldKind::ContentLength),
            (b"Transfer-Encoding", FieldKind::TransferEncoding),
            (b"connectiox", FieldKind::Other),
            (b"keep-alivx", FieldKind::Other),
            (b"tf", FieldKind::Other),
            (b"x-forwarded-for", FieldKind::Other),
        ] {
            assert_eq!(FieldKind::of(name), kind, "{name:?}");
        }
    }

    #[test]
    fn connection_values_naming_fields_are_told_apart() {
        assert!(names_headers(b"keep-alive, X-Internal"));
        assert!(!names_headers(b"Keep-Alive , close,"));
        assert!(!names_headers(b"x-\xff"), "not a header name");
    }

    #[test]
    fn numbers_are_written_in_either_radix() {
        let mut out = Vec::new();
        for (value, radix) in [
            (0, 10),
            (1234567890, 10),
            (u64::MAX, 10),
            (255, 16),
            (u64::MAX, 16),
        ] {
            out.clear();
            push_number(&mut out, value, radix);
            let expected = if radix == 10 {
                value.to_string()
            } else {
                format!("{value:x}")
            };
            assert_eq!(out, expected.as_bytes());
        }
    }
}
