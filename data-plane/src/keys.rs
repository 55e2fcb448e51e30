//! What requests are keyed by when the worker must send the same client to the same place: the
//! host a request names (without its port), a cookie's value, and one stable hash of a key.
//! Sticky routes and consistent hashing both use these, so that a key means the same thing to
//! both and to every worker of every build.

use gateway_config::HashOn;
use http::HeaderMap;
use http::header::COOKIE;

/// The host part of a `Host` header or URI authority: port and a trailing dot removed.
pub fn host_without_port(raw: &str) -> &str {
    let host = if raw.starts_with('[') {
        // IPv6 literal: keep the brackets, drop what follows them.
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        // Bytes rather than `rsplit_once`, whose char searcher cost more than the whole lookup.
        match raw.bytes().rposition(|b| b == b':') {
            Some(colon) if raw.as_bytes()[colon + 1..].iter().all(u8::is_ascii_digit) => {
                &raw[..colon]
            }
            _ => raw,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// The value of cookie `name`, from any `Cookie` header. Values are compared as bytes, so a
/// cookie header with bytes outside visible ASCII still yields the cookies it carries.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get_all(COOKIE).iter().find_map(|value| {
        value.as_bytes().split(|b| *b == b';').find_map(|pair| {
            let pair = pair.trim_ascii();
            let at = pair.iter().position(|b| *b == b'=')?;
            (&pair[..at] == name.as_bytes()).then(|| &pair[at + 1..])
        })
    })
}

/// A stable 64-bit hash of a request key (FNV-1a, then a finalizer that spreads the bits), the
/// same on every worker and every build, so a key stays where it was whichever worker serves it.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    mix(hash)
}

/// The splitmix64 finalizer.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The key `consistent_hash` hashes for this request, when the request carries one.
pub fn request_key(hash_on: Option<&HashOn>, headers: &HeaderMap, client: &str) -> Option<u64> {
    match hash_on? {
        HashOn::Header(name) => headers
            .get(name.as_str())
            .map(|v| stable_hash(v.as_bytes())),
        HashOn::Cookie(name) => cookie(headers, name).map(stable_hash),
        HashOn::ClientIp(_) => Some(stable_hash(client.as_bytes())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn request_keys() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("alice"));
        headers.append(COOKIE, HeaderValue::from_static("a=1; session=abc"));
        let header = request_key(Some(&HashOn::Header("x-user".into())), &headers, "1.2.3.4");
        assert_eq!(header, Some(stable_hash(b"alice")));
        let cookie = request_key(Some(&HashOn::Cookie("session".into())), &headers, "");
        assert_eq!(cookie, Some(stable_hash(b"abc")));
        assert_eq!(
            request_key(Some(&HashOn::Cookie("other".into())), &headers, ""),
            None
        );
        assert_eq!(
            request_key(Some(&HashOn::ClientIp(true)), &headers, "1.2.3.4"),
            Some(stable_hash(b"1.2.3.4"))
        );
        assert_eq!(request_key(None, &headers, "1.2.3.4"), None);
    }

    #[test]
    fn one_cookie_reader_for_sticky_routes_and_hashing() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_bytes(b"x=\xff; id=7").unwrap());
        headers.append(COOKIE, HeaderValue::from_static(" session = ; other=2"));
        assert_eq!(cookie(&headers, "id"), Some(&b"7"[..]));
        assert_eq!(cookie(&headers, "other"), Some(&b"2"[..]));
        assert_eq!(cookie(&headers, "session"), None, "the name is `session `");
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
