//! Header fields of HTTP/1 heads as both sides of the proxy read and write them: positions of
//! fields parsed by httparse, kept so that `http` values can share the head's bytes once the head
//! leaves its read buffer; what `Connection` says about keeping the connection; and a field in
//! wire form.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Version};

/// Header fields parsed in place from one head, on either side: a request with more goes to
/// hyper, which applies the configured limit; a response with more is refused.
pub const MAX_FIELDS: usize = 100;

/// Byte ranges of one header field within the head it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpan {
    name: (usize, usize),
    value: (usize, usize),
}

impl FieldSpan {
    /// The position of `field` in the head that starts at address `head_start`.
    pub fn of(field: &httparse::Header<'_>, head_start: usize) -> FieldSpan {
        let name = field.name.as_ptr() as usize - head_start;
        let value = field.value.as_ptr() as usize - head_start;
        FieldSpan {
            name: (name, name + field.name.len()),
            value: (value, value + field.value.len()),
        }
    }

    pub fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.name.0..self.name.1]
    }

    pub fn value<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.value.0..self.value.1]
    }

    /// The field appended to `headers`, its value sharing `head`'s bytes; `None` when the name or
    /// the value is not valid.
    pub fn append_to(&self, head: &Bytes, headers: &mut HeaderMap) -> Option<()> {
        let name = HeaderName::from_bytes(self.name(head)).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(self.value.0..self.value.1)).ok()?;
        headers.append(name, value);
        Some(())
    }
}

/// What the `Connection` fields of a message say about its connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
}

impl ConnectionTokens {
    pub fn read(&mut self, value: &[u8]) {
        for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
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

/// Appends `name: value` and its line end.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Why a message's `Content-Length` cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidLength {
    NotANumber,
    Disagree,
}

/// [`declared_length`] over the raw values of a message's `Content-Length` fields.
pub fn declared_length_of<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<u64>, InvalidLength> {
    let mut seen: Option<u64> = None;
    for value in values {
        for part in value.split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(InvalidLength::NotANumber);
            }
            let length = part.iter().try_fold(0u64, |length, digit| {
                length.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            });
            let length = length.ok_or(InvalidLength::NotANumber)?;
            if seen.is_some_and(|s| s != length) {
                return Err(InvalidLength::Disagree);
            }
            seen = Some(length);
        }
    }
    Ok(seen)
}

/// A Connection token that names no header of its own to remove.
pub fn is_plain_token(token: &[u8]) -> bool {
    token.is_empty()
        || token.eq_ignore_ascii_case(b"keep-alive")
        || token.eq_ignore_ascii_case(b"close")
}

/// Whether a Connection value names headers to remove besides the hop-by-hop ones. A value that
/// is not visible ASCII names nothing that could be looked up.
pub fn names_headers(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| *b == b'\t' || (b' '..=b'~').contains(b))
        && !value
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .all(is_plain_token)
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
    fn spans_locate_fields_in_their_head() {
        let head = Bytes::from_static(b"GET / HTTP/1.1\r\nX-A: one\r\n\r\n");
        let mut slots = [httparse::EMPTY_HEADER; 4];
        let mut request = httparse::Request::new(&mut slots);
        request.parse(&head).unwrap();
        let span = FieldSpan::of(&request.headers[0], head.as_ptr() as usize);
        assert_eq!(span.name(&head), b"X-A");
        assert_eq!(span.value(&head), b"one");
        let mut headers = HeaderMap::new();
        span.append_to(&head, &mut headers).unwrap();
        assert_eq!(headers["x-a"], "one");
    }
}
