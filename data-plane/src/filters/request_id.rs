//! `request_id`: every request of the route carries an id in one header, to the upstream and,
//! when asked, back to the client: a well-formed id the client (or a proxy in front) sent, or a
//! new one of 128 random bits in 32 hex digits.

use gateway_config::RequestId;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Longest id taken from a client; a longer one is replaced.
const MAX_INCOMING_LEN: usize = 200;

#[derive(Debug)]
pub struct RequestIdPolicy {
    header: HeaderName,
    keep_incoming: bool,
    echo: bool,
}

/// The header and id a response carries back to the client.
pub type Echo = (HeaderName, HeaderValue);

impl RequestIdPolicy {
    pub fn compile(route: &str, config: &RequestId) -> Option<Self> {
        match HeaderName::try_from(config.header.as_str()) {
            Ok(header) => Some(RequestIdPolicy {
                header,
                keep_incoming: config.keep_incoming,
                echo: config.echo,
            }),
            Err(_) => {
                tracing::warn!(route, header = %config.header, "request_id header is not a header name; no request ids");
                None
            }
        }
    }

    /// Gives the request its id (replacing every copy the client sent of the header) and
    /// returns what the response echoes, if anything.
    pub fn apply(&self, headers: &mut HeaderMap) -> Option<Echo> {
        let id = match headers.get(&self.header) {
            Some(incoming) if self.keep_incoming && well_formed(incoming) => incoming.clone(),
            _ => generate(),
        };
        headers.insert(self.header.clone(), id.clone());
        self.echo.then(|| (self.header.clone(), id))
    }
}

/// Visible ASCII only, 1 to [`MAX_INCOMING_LEN`] bytes: an id that can go into a log line and
/// a header as it is.
fn well_formed(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_INCOMING_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// 32 lowercase hex digits of 128 random bits (the thread's own generator: no lock, no system
/// call). Unique enough to find one request among billions, not a secret.
fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = fastrand::u128(..);
    let mut text = [0u8; 32];
    for digit in text.iter_mut().rev() {
        *digit = HEX[(bits & 0xf) as usize];
        bits >>= 4;
    }
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(keep_incoming: bool, echo: bool) -> RequestIdPolicy {
        RequestIdPolicy::compile(
            "r",
            &RequestId {
                header: "x-request-id".into(),
                keep_incoming,
                echo,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_new_id_is_32_hex_digits_and_differs_each_time() {
        let mut headers = HeaderMap::new();
        let (name, first) = policy(true, true).apply(&mut headers).unwrap();
        assert_eq!(name, "x-request-id");
        assert_eq!(headers.get("x-request-id"), Some(&first));
        assert_eq!(first.len(), 32);
        assert!(
            first
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let (_, second) = policy(true, true).apply(&mut HeaderMap::new()).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn an_incoming_id_is_kept_only_when_well_formed_and_asked_for() {
        let mut headers = HeaderMap::new();
        headers.append("x-request-id", HeaderValue::from_static("abc-123"));
        headers.append("x-request-id", HeaderValue::from_static("second copy"));
        let (_, id) = policy(true, true).apply(&mut headers).unwrap();
        assert_eq!(id, "abc-123");
        assert_eq!(headers.get_all("x-request-id").iter().count(), 1);

        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("abc-123"));
        let (_, id) = policy(false, true).apply(&mut headers).unwrap();
        assert_ne!(id, "abc-123");

        for bad in ["has space", ""] {
            let mut headers = HeaderMap::new();
            headers.insert("x-request-id", HeaderValue::from_str(bad).unwrap());
            let (_, id) = policy(true, true).apply(&mut headers).unwrap();
            assert_eq!(id.len(), 32, "{bad:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-request-id",
            HeaderValue::from_str(&"a".repeat(201)).unwrap(),
        );
        assert_eq!(policy(true, true).apply(&mut headers).unwrap().1.len(), 32);
    }

    #[test]
    fn without_echo_the_upstream_still_gets_the_id() {
        let mut headers = HeaderMap::new();
        assert!(policy(true, false).apply(&mut headers).is_none());
        assert_eq!(headers.get("x-request-id").unwrap().len(), 32);
    }
}
