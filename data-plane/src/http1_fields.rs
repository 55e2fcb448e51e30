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
