//! Header names and values of a route's filters, parsed once when the route is compiled.
//! Validation rules out bad ones; one that slips through is skipped with a warning rather than
//! failing the whole revision.

use http::{HeaderName, HeaderValue};

pub fn header_name(route: &str, name: &str) -> Option<HeaderName> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
    if parsed.is_none() {
        tracing::warn!(route, header = name, "invalid header name skipped");
    }
    parsed
}

pub fn header_value(route: &str, value: &str) -> Option<HeaderValue> {
    let parsed = HeaderValue::from_str(value).ok();
    if parsed.is_none() {
        tracing::warn!(route, "invalid header value skipped");
    }
    parsed
}

pub fn header_pair(route: &str, name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((header_name(route, name)?, header_value(route, value)?))
}
