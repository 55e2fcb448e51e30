//! Header rules of a forwarding proxy (RFC 9110 §7.6, RFC 9112 §3.2): hop-by-hop headers
//! removed in both directions, `Via` appended, `X-Forwarded-*` set with the client's values kept
//! only from trusted peers, message framing that could smuggle a second request refused, and a
//! request without exactly one valid `Host` refused. `Trailer` is end to end (RFC 9110 §6.6.2)
//! and stays.

use http::header::{
    CONNECTION, CONTENT_LENGTH, COOKIE, Entry, HOST, HeaderMap, HeaderName, HeaderValue, TE,
};
use http::header::{TRANSFER_ENCODING, UPGRADE, VIA};
use http::{Method, Uri, Version};

use crate::error::ProxyError;
use gateway_http1::fields::{is_plain_token, names_headers};
use gateway_http1::framing::declared_length;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

const VIA_10: HeaderValue = HeaderValue::from_static("1.0 gateway");
const VIA_11: HeaderValue = HeaderValue::from_static("1.1 gateway");
const VIA_2: HeaderValue = HeaderValue::from_static("2 gateway");
const PROTO_HTTP: HeaderValue = HeaderValue::from_static("http");
const PROTO_HTTPS: HeaderValue = HeaderValue::from_static("https");
const TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

/// Refuses a request whose body length is ambiguous: both Content-Length and Transfer-Encoding,
/// Content-Length values that disagree or are not numbers, or a Transfer-Encoding other than one
/// `chunked` (RFC 9112 §6.1): a coding the worker does not decode is 501, `chunked` twice, or
/// `Transfer-Encoding` in more than one field, 400. Empty list elements are ignored (RFC 9110
/// §5.6.1).
pub fn check_framing(headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(first) = codings.next() {
        if codings.next().is_some() || headers.contains_key(CONTENT_LENGTH) {
            return Err(ProxyError::BadFraming);
        }
        return only_chunked(first);
    }
    if headers.contains_key(CONTENT_LENGTH) {
        declared_length(headers).map_err(|_| ProxyError::BadFraming)?;
    }
    Ok(())
}

/// Checks that a `Transfer-Encoding` value is one `chunked` (empty list elements ignored, RFC
/// 9110 §5.6.1): another coding is [`ProxyError::UnsupportedCoding`], `chunked` twice or none
/// [`ProxyError::BadFraming`].
pub fn only_chunked(value: &HeaderValue) -> Result<(), ProxyError> {
    let mut chunked = 0;
    for coding in value.as_bytes().split(|&b| b == b',') {
        let coding = coding.trim_ascii();
        if coding.is_empty() {
            continue;
        }
        if !coding.eq_ignore_ascii_case(b"chunked") {
            return Err(ProxyError::UnsupportedCoding);
        }
        chunked += 1;
    }
    if chunked == 1 {
        Ok(())
    } else {
        Err(ProxyError::BadFraming)
    }
}

/// Whether an upstream's response is framed in a way the worker reads: no `Transfer-Encoding`,
/// or one field of exactly `chunked`. A coding the worker does not decode (`gzip, chunked`)
/// would otherwise reach the client as raw bytes under the worker's own framing.
pub fn readable_response_framing(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(TRANSFER_ENCODING).iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => only_chunked(value).is_ok(),
        (Some(_), Some(_)) => false,
    }
}

/// Refuses a request target in authority form (`host:port`) on anything but `CONNECT`
/// (RFC 9112 §3.2.3).
pub fn check_target(method: &Method, uri: &Uri) -> Result<(), ProxyError> {
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    if authority_form && *method != Method::CONNECT {
        return Err(ProxyError::InvalidRequest);
    }
    Ok(())
}

/// Drops header fields whose names contain `_`: many backends (CGI, WSGI, Rack and the
/// frameworks on them) read `X_Forwarded_For` and `X-Forwarded-For` as the same variable, so a
/// client could pass one the proxy never checked.
pub fn drop_underscored(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in names {
        headers.remove(&name);
    }
}

/// Joins the `cookie` fields an HTTP/2 client sent separately into the one field HTTP/1.1
/// allows (RFC 9113 §8.2.3).
pub fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(COOKIE).iter();
    if values.next().is_none() || values.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, value);
    }
}

/// Refuses a request without exactly one valid `Host` (RFC 9112 §3.2): HTTP/1.1 must send one,
/// and no HTTP/1 request may send two or an invalid one. An absolute-form target names the host
/// itself and wins over the field, which must still be there. HTTP/2 carries `:authority`,
/// which hyper checks. Returns the field, which the proxy needs next.
pub fn check_host(
    version: Version,
    headers: &HeaderMap,
) -> Result<Option<&HeaderValue>, ProxyError> {
    let mut hosts = headers.get_all(HOST).iter();
    let host = hosts.next();
    if version > Version::HTTP_11 {
        return Ok(host);
    }
    match (host, hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Err(ProxyError::BadHost),
        (Some(_), Some(_)) => Err(ProxyError::BadHost),
        (Some(value), None) if !is_valid_host(value.as_bytes()) => Err(ProxyError::BadHost),
        (host, _) => Ok(host),
    }
}

/// The bytes of a `reg-name` or an IPv4 address (RFC 3986 §3.2.2): unreserved and sub-delims;
/// `%` starts an escape, checked on its own.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        byte += 1;
    }
    table
};

/// `uri-host [":" port]` of RFC 3986, or empty (the value a request whose target has no
/// authority sends).
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|b| *b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        let literal_ok = !literal.is_empty()
            && literal
                .iter()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        if !literal_ok {
            return false;
        }
        match &value[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|b| *b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        }
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut rest = host;
    while let Some((&b, after)) = rest.split_first() {
        rest = match (b, after) {
            (b'%', [hi, lo, after @ ..]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                after
            }
            _ if REG_NAME[usize::from(b)] => after,
            _ => return false,
        };
    }
    true
}

/// Whether `name` is one of the hop-by-hop headers every message loses.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
        || name == TE
        || name == UPGRADE
}

/// Removes the headers that describe one connection rather than the message. Returns whether the
/// message had a Transfer-Encoding (its Content-Length, if any, must then go as well).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the few names a message has is cheaper than hashing seven absent ones, and
    // most messages have none of them.
    if !headers.keys().any(is_hop_by_hop) {
        return false;
    }
    if let Entry::Occupied(connection) = headers.entry(CONNECTION) {
        // Nearly all a Connection header ever says is `keep-alive` or `close`, which name no
        // header to remove (`keep-alive` goes below anyway); only values naming others are kept
        // (reference-counted, so nothing is copied) while the map changes.
        let (_, values) = connection.remove_entry_mult();
        let naming: Vec<HeaderValue> = values.filter(|v| names_headers(v.as_bytes())).collect();
        for value in &naming {
            let Ok(value) = value.to_str() else { continue };
            for token in value.split(',').map(str::trim) {
                if !is_plain_token(token.as_bytes()) {
                    // By `&str`, the name is looked up without being allocated; an invalid one
                    // matches nothing.
                    headers.remove(token);
                }
            }
        }
        if !headers.keys().any(is_hop_by_hop) {
            return false;
        }
    }
    let had_transfer_encoding = headers.remove(TRANSFER_ENCODING).is_some();
    if had_transfer_encoding {
        headers.remove(CONTENT_LENGTH);
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    headers.remove(TE);
    headers.remove(UPGRADE);
    had_transfer_encoding
}

/// Request side of [`remove_hop_by_hop`]: `TE: trailers` survives, since gRPC needs it end to end.
pub fn remove_hop_by_hop_request(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let wants_trailers = headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| {
            let token = token.split(';').next().unwrap_or("").trim();
            token.eq_ignore_ascii_case("trailers")
        });
    remove_hop_by_hop(headers);
    if wants_trailers {
        headers.insert(TE, TRAILERS);
    }
}

/// Appends this proxy to `Via` for a message received with `version`.
pub fn append_via(headers: &mut HeaderMap, version: Version) {
    let value = match version {
        Version::HTTP_2 => VIA_2,
        Version::HTTP_10 | Version::HTTP_09 => VIA_10,
        _ => VIA_11,
    };
    headers.append(VIA, value);
}

/// Sets `X-Forwarded-For/-Proto/-Host`. A trusted peer's values are extended or kept; anyone
/// else's are replaced, since a client can write anything there.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer_ip: &HeaderValue,
    trusted: bool,
    https: bool,
    original_host: Option<&HeaderValue>,
) {
    let appended = if trusted && headers.contains_key(&X_FORWARDED_FOR) {
        let mut joined = Vec::with_capacity(64);
        for value in headers.get_all(&X_FORWARDED_FOR) {
            joined.extend_from_slice(value.as_bytes());
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(peer_ip.as_bytes());
        HeaderValue::from_bytes(&joined).ok()
    } else {
        None
    };
    headers.insert(X_FORWARDED_FOR, appended.unwrap_or_else(|| peer_ip.clone()));
    if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(
            X_FORWARDED_PROTO,
            if https { PROTO_HTTPS } else { PROTO_HTTP },
        );
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match original_host {
            Some(host) => headers.insert(X_FORWARDED_HOST, host.clone()),
            None => headers.remove(X_FORWARDED_HOST),
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "close"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("content-length", "10"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("x-kept", "yes"),
        ]);
        assert!(remove_hop_by_hop(&mut headers));
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert_eq!(headers["x-kept"], "yes");
        assert_eq!(headers["trailer"], "x-checksum", "Trailer is end to end");
        let mut plain = map(&[("content-length", "3")]);
        assert!(!remove_hop_by_hop(&mut plain));
        assert_eq!(plain["content-length"], "3");
    }

    #[test]
    fn connection_tokens_are_matched_without_regard_to_case() {
        let mut headers = map(&[
            ("connection", "Keep-Alive, X-Internal, not a name"),
            ("x-internal", "1"),
            ("keep-alive", "timeout=5"),
            ("content-length", "3"),
        ]);
        assert!(!remove_hop_by_hop(&mut headers));
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["content-length"], "3");
        let mut only_connection = map(&[("connection", "keep-alive"), ("x-kept", "yes")]);
        assert!(!remove_hop_by_hop(&mut only_connection));
        assert_eq!(only_connection.len(), 1, "{only_connection:?}");
        let mut request = map(&[("connection", "te"), ("te", "trailers"), ("x-kept", "yes")]);
        remove_hop_by_hop_request(&mut request);
        assert_eq!(request["te"], "trailers");
        assert_eq!(request.len(), 2, "{request:?}");
    }

    #[test]
    fn te_trailers_survives_on_requests() {
        let mut headers = map(&[("te", "trailers, deflate;q=0.5"), ("connection", "TE")]);
        remove_hop_by_hop_request(&mut headers);
        assert_eq!(headers["te"], "trailers");
        let mut headers = map(&[("te", "gzip")]);
        remove_hop_by_hop_request(&mut headers);
        assert!(headers.get("te").is_none());
    }

    #[test]
    fn via_is_appended_with_the_received_version() {
        let mut headers = map(&[("via", "1.1 edge")]);
        append_via(&mut headers, Version::HTTP_11);
        let all: Vec<_> = headers.get_all(VIA).iter().collect();
        assert_eq!(all, ["1.1 edge", "1.1 gateway"]);
        let mut headers = HeaderMap::new();
        append_via(&mut headers, Version::HTTP_2);
        assert_eq!(headers[VIA], "2 gateway");
    }

    #[test]
    fn forwarded_headers_from_untrusted_peers_are_replaced() {
        let peer = HeaderValue::from_static("10.1.1.1");
        let host = HeaderValue::from_static("shop.example.com");
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
        ]);
        set_forwarded(&mut headers, &peer, false, false, Some(&host));
        assert_eq!(headers[X_FORWARDED_FOR], "10.1.1.1");
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "shop.example.com");
    }

    #[test]
    fn forwarded_headers_from_trusted_peers_are_extended() {
        let peer = HeaderValue::from_static("10.1.1.1");
        let mut headers = map(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
            ("x-forwarded-proto", "https"),
        ]);
        set_forwarded(&mut headers, &peer, true, false, None);
        assert_eq!(headers[X_FORWARDED_FOR], "1.2.3.4, 5.6.7.8, 10.1.1.1");
        assert_eq!(headers.get_all(X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(headers[X_FORWARDED_PROTO], "https");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, &peer, true, false, None);
        let mut over_tls = HeaderMap::new();
        set_forwarded(&mut over_tls, &peer, false, true, None);
        assert_eq!(over_tls[X_FORWARDED_PROTO], "https");
        assert_eq!(fresh[X_FORWARDED_FOR], "10.1.1.1");
        assert_eq!(fresh[X_FORWARDED_PROTO], "http");
    }

    #[test]
    fn a_request_needs_exactly_one_valid_host() {
        let v11 = Version::HTTP_11;
        for good in [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com.",
            "10.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "a-b_c~d%41:",
            "",
        ] {
            let headers = map(&[("host", good)]);
            assert_eq!(
                check_host(v11, &headers).map(|h| h.map(HeaderValue::as_bytes)),
                Ok(Some(good.as_bytes())),
                "{good:?}"
            );
        }
        for bad in [
            "exa mple.com",
            "user@example.com",
            "example.com/path",
            "example.com:80x",
            "[::1",
            "[::1]x",
            "[zz]",
            "%4",
            "a\"b",
        ] {
            assert_eq!(
                check_host(v11, &map(&[("host", bad)])),
                Err(ProxyError::BadHost),
                "{bad:?}"
            );
        }
        assert_eq!(check_host(v11, &HeaderMap::new()), Err(ProxyError::BadHost));
        assert_eq!(check_host(Version::HTTP_10, &HeaderMap::new()), Ok(None));
        let twice = map(&[("host", "a.test"), ("host", "a.test")]);
        assert_eq!(check_host(v11, &twice), Err(ProxyError::BadHost));
        assert_eq!(
            check_host(Version::HTTP_10, &twice),
            Err(ProxyError::BadHost)
        );
        assert_eq!(check_host(Version::HTTP_2, &HeaderMap::new()), Ok(None));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        assert!(check_framing(&map(&[("content-length", "5")])).is_ok());
        assert!(check_framing(&map(&[("content-length", "5, 5")])).is_ok());
        assert!(check_framing(&map(&[("transfer-encoding", "chunked")])).is_ok());
        for bad in [
            &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
            &[("content-length", "5"), ("content-length", "6")],
            &[("content-length", "5, 6")],
            &[("content-length", "-1")],
            &[("content-length", "+5")],
        ] {
            assert_eq!(
                check_framing(&map(bad)),
                Err(ProxyError::BadFraming),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn transfer_codings_are_one_chunked() {
        for fine in ["chunked", "Chunked", "chunked,", ", chunked", " chunked , "] {
            assert!(
                check_framing(&map(&[("transfer-encoding", fine)])).is_ok(),
                "{fine:?}"
            );
        }
        for (value, error) in [
            ("gzip, chunked", ProxyError::UnsupportedCoding),
            ("identity", ProxyError::UnsupportedCoding),
            ("chunked, chunked", ProxyError::BadFraming),
            ("", ProxyError::BadFraming),
            (",", ProxyError::BadFraming),
        ] {
            assert_eq!(
                check_framing(&map(&[("transfer-encoding", value)])),
                Err(error),
                "{value:?}"
            );
        }
        let twice = map(&[
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ]);
        assert_eq!(check_framing(&twice), Err(ProxyError::BadFraming));
    }

    #[test]
    fn authority_form_is_only_for_connect() {
        let uri: Uri = "a.test:443".parse().unwrap();
        assert_eq!(
            check_target(&Method::GET, &uri),
            Err(ProxyError::InvalidRequest)
        );
        assert!(check_target(&Method::CONNECT, &uri).is_ok());
        for fine in ["/x", "http://a.test/x", "*"] {
            let uri: Uri = fine.parse().unwrap();
            assert!(check_target(&Method::GET, &uri).is_ok(), "{fine}");
        }
    }

    #[test]
    fn underscored_names_go_and_cookies_are_joined() {
        let mut headers = map(&[
            ("x_forwarded_for", "6.6.6.6"),
            ("transfer_encoding", "chunked"),
            ("x-kept", "1"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        drop_underscored(&mut headers);
        assert!(!headers.contains_key("x_forwarded_for"));
        assert!(!headers.contains_key("transfer_encoding"));
        assert_eq!(headers["x-kept"], "1");
        join_cookies(&mut headers);
        let cookies: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2"]);
        let mut one = map(&[("cookie", "a=1")]);
        join_cookies(&mut one);
        assert_eq!(one[COOKIE], "a=1");
    }
}
