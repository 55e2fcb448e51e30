//! How a message body is delimited (RFC 9112 §6): the one framing both roles use, the one rule
//! for responses that cannot have a body, and the reading of `Content-Length` and
//! `Transfer-Encoding` values. A leaf, like hyper's `headers.rs`, so that the server role, the
//! client role and the proxy's framing checks cannot drift apart.

use std::fmt;

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::fields::list_tokens;

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all: a response to HEAD, or a status that has none (1xx, 204, 304).
    NoBody,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Chunked transfer coding, possibly with trailer fields.
    Chunked,
    /// Everything until the connection closes, which then cannot carry another message: a
    /// response that declares no length, or a transfer coding other than chunked last.
    UntilClose,
}

/// Whether a response with `status` has no body whatever its fields say (RFC 9110 §6.4.1): a
/// response to HEAD, an informational one (1xx), 204 and 304.
pub fn has_no_body(status: StatusCode, to_head_request: bool) -> bool {
    to_head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Whether the last transfer coding in a `Transfer-Encoding` value is `chunked`, which alone
/// delimits the body (RFC 9112 §6.3). As in hyper, a value that is not visible ASCII is not.
pub(crate) fn is_chunked(value: &[u8]) -> bool {
    list_tokens(value)
        .last()
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
}

/// Why a message's `Content-Length` cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidLength {
    NotANumber,
    Disagree,
}

impl fmt::Display for InvalidLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidLength::NotANumber => "invalid Content-Length",
            InvalidLength::Disagree => "Content-Length values disagree",
        })
    }
}

impl std::error::Error for InvalidLength {}

/// The body length a message declares with `Content-Length`, whose values (repeated fields or a
/// comma-separated list) must all be the same number; `None` without one.
pub fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, InvalidLength> {
    declared_length_of(
        headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// [`declared_length`] over the raw values of a message's `Content-Length` fields.
pub fn declared_length_of<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<u64>, InvalidLength> {
    let mut seen: Option<u64> = None;
    for value in values {
        for part in value.split(|b| *b == b',') {
            let part = part.trim_ascii();
            // Digits only: `u64::from_str` would take a sign.
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    #[test]
    fn raw_lengths_are_read_like_header_values() {
        let of = |values: &[&str]| declared_length_of(values.iter().map(|v| v.as_bytes()));
        assert_eq!(of(&[]), Ok(None));
        assert_eq!(of(&[" 42 ", "42,42"]), Ok(Some(42)));
        assert_eq!(of(&["18446744073709551615"]), Ok(Some(u64::MAX)));
        assert_eq!(
            of(&["18446744073709551616"]),
            Err(InvalidLength::NotANumber)
        );
        assert_eq!(of(&["4 2"]), Err(InvalidLength::NotANumber));
        assert_eq!(of(&["1,"]), Err(InvalidLength::NotANumber));
        assert_eq!(of(&["1", "2"]), Err(InvalidLength::Disagree));
        assert_eq!(of(&["+5"]), Err(InvalidLength::NotANumber));
        assert_eq!(of(&["-1"]), Err(InvalidLength::NotANumber));
        assert_eq!(of(&[""]), Err(InvalidLength::NotANumber));
    }

    #[test]
    fn lengths_of_a_map_are_all_its_values() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), Ok(None));
        let length = HeaderName::from_static("content-length");
        headers.append(&length, HeaderValue::from_static("5"));
        headers.append(&length, HeaderValue::from_static("5, 5"));
        assert_eq!(declared_length(&headers), Ok(Some(5)));
        headers.append(&length, HeaderValue::from_static("6"));
        assert_eq!(declared_length(&headers), Err(InvalidLength::Disagree));
    }

    #[test]
    fn bodiless_responses_are_one_rule() {
        for status in [100, 101, 103, 199, 204, 304] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(has_no_body(status, false), "{status}");
        }
        for status in [200, 201, 205, 206, 301, 404, 500] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(!has_no_body(status, false), "{status}");
            assert!(has_no_body(status, true), "{status} to HEAD");
        }
    }

    #[test]
    fn only_chunked_last_is_chunked() {
        assert!(is_chunked(b"chunked"));
        assert!(is_chunked(b"gzip, Chunked "));
        assert!(!is_chunked(b"chunked, gzip"));
        assert!(!is_chunked(b""));
        assert!(!is_chunked(b"xchunked"));
        assert!(!is_chunked(b"\xff, chunked"), "not readable, as in hyper");
    }
}
