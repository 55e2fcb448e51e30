//! The client's address as the route's policies see it: the peer's own, or, when the peer is
//! one of the worker's trusted proxies, the one `X-Forwarded-For` names: read from the right,
//! the first address that is not itself a trusted proxy (what nginx's `real_ip_recursive`
//! takes). Addresses further left were written by hops nobody vouches for, so a client cannot
//! pick its address by sending the header itself.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

use super::forwarding::X_FORWARDED_FOR;

/// Entries of `X-Forwarded-For` looked at, from the right: a chain of trusted proxies is never
/// this long, and it bounds the work a request can ask for.
const MAX_HOPS: usize = 32;

pub fn client_address(
    peer: IpAddr,
    peer_trusted: bool,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    if !peer_trusted {
        return peer;
    }
    let mut client = peer;
    let mut hops = 0;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            hops += 1;
            // An entry that is not an address ends what can be believed: the nearest trusted
            // hop is then the client.
            let Some(address) = parse_entry(entry.trim()) else {
                return client;
            };
            client = address.to_canonical();
            if hops >= MAX_HOPS || !trusted_proxies.iter().any(|net| net.contains(&client)) {
                return client;
            }
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, and the forms with a port some proxies write: `192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, `[2001:db8::1]`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse() {
        return Some(address);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (address, port) = entry.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let sent = headers(&["192.0.2.9"]);
        assert_eq!(
            client_address(ip("198.51.100.1"), false, &sent, &trusted()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        let sent = headers(&["203.0.113.66, 192.0.2.9", "10.0.0.2"]);
        assert_eq!(
            client_address(ip("10.0.0.1"), true, &sent, &trusted()),
            ip("192.0.2.9")
        );
        // Only trusted hops: the leftmost one they name.
        let sent = headers(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(
            client_address(ip("10.0.0.1"), true, &sent, &trusted()),
            ip("10.0.0.3")
        );
        // No header: the peer.
        assert_eq!(
            client_address(ip("10.0.0.1"), true, &HeaderMap::new(), &trusted()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read() {
        let sent = headers(&["192.0.2.9:4711"]);
        assert_eq!(
            client_address(ip("::1"), true, &sent, &trusted()),
            ip("192.0.2.9")
        );
        let sent = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(
            client_address(ip("::1"), true, &sent, &trusted()),
            ip("2001:db8::7")
        );
        let sent = headers(&["::ffff:192.0.2.9"]);
        assert_eq!(
            client_address(ip("::1"), true, &sent, &trusted()),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn garbage_ends_the_walk_at_the_nearest_trusted_hop() {
        let sent = headers(&["192.0.2.9, unknown, 10.0.0.2"]);
        assert_eq!(
            client_address(ip("10.0.0.1"), true, &sent, &trusted()),
            ip("10.0.0.2")
        );
        for bad in ["[::1", "1.2.3.4:", "1.2.3.4:123456", "[::1]x"] {
            assert_eq!(parse_entry(bad), None, "{bad}");
        }
    }
}
