//! The conditions of one route entry (host pattern, path condition, methods) in a form that
//! matches without allocating, plus the helpers that extract a comparable host from a request.

use std::cmp::Reverse;

use gateway_config::PathMatch;
use http::Method;

/// Longest host name accepted for matching (DNS limit plus a little slack for a trailing dot).
const MAX_HOST_LEN: usize = 255;

/// A route's host condition, lower-cased at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(Box<str>),
    /// The suffix including its leading dot: `*.example.com` is stored as `.example.com`.
    Wildcard(Box<str>),
    Any,
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Self {
        let lower = pattern.trim_end_matches('.').to_ascii_lowercase();
        match lower.strip_prefix('*') {
            Some(suffix) => HostPattern::Wildcard(suffix.into()),
            None => HostPattern::Exact(lower.into()),
        }
    }

    /// Sort key: smaller is more specific (exact, then longer wildcard suffixes, then any host).
    pub fn specificity(&self) -> (u8, Reverse<usize>) {
        match self {
            HostPattern::Exact(_) => (0, Reverse(0)),
            HostPattern::Wildcard(suffix) => (1, Reverse(suffix.len())),
            HostPattern::Any => (2, Reverse(0)),
        }
    }
}

/// A route's path condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathCond {
    Exact(Box<str>),
    /// Segment-aware prefix without its trailing slash (`/` is stored as the empty string).
    Prefix(Box<str>),
    Any,
}

impl PathCond {
    pub fn from_config(path: &PathMatch) -> Self {
        match path {
            PathMatch::Exact(p) => PathCond::Exact(p.as_str().into()),
            PathMatch::Prefix(p) => PathCond::Prefix(p.trim_end_matches('/').into()),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathCond::Exact(p) => path == &**p,
            PathCond::Prefix(p) => prefix_matches(p, path),
            PathCond::Any => true,
        }
    }

    /// Sort key: exact first, then longer prefixes, then no condition.
    pub fn specificity(&self) -> (u8, Reverse<usize>) {
        match self {
            PathCond::Exact(_) => (0, Reverse(0)),
            PathCond::Prefix(p) => (1, Reverse(p.len())),
            PathCond::Any => (2, Reverse(0)),
        }
    }

    /// Bytes of the request path that `strip_prefix` removes after this condition matched.
    pub fn strip_len(&self) -> usize {
        match self {
            PathCond::Prefix(p) => p.len(),
            PathCond::Exact(_) | PathCond::Any => 0,
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
        && path.starts_with('/')
}

/// The methods a route accepts; empty accepts every method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MethodSet(Box<[Method]>);

impl MethodSet {
    pub fn new(methods: Box<[Method]>) -> Self {
        MethodSet(methods)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, method: &Method) -> bool {
        self.0.is_empty() || self.0.iter().any(|m| m == method)
    }
}

/// The host part of a `Host` header or URI authority: port and a trailing dot removed.
pub fn host_without_port(raw: &str) -> &str {
    let host = if raw.starts_with('[') {
        // IPv6 literal: keep the brackets, drop what follows them.
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => raw,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// `host` in lower case, using `buf` only when it has upper-case letters. `None` when the host is
/// too long to be a real host name.
pub fn lowercase_host<'a>(host: &'a str, buf: &'a mut [u8; MAX_HOST_LEN]) -> Option<&'a str> {
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(host);
    }
    let out = buf.get_mut(..host.len())?;
    out.copy_from_slice(host.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Buffer for [`lowercase_host`], kept on the stack.
pub fn host_buffer() -> [u8; MAX_HOST_LEN] {
    [0; MAX_HOST_LEN]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_segment_aware_and_ignores_trailing_slash() {
        let api = PathCond::from_config(&PathMatch::Prefix("/api/".into()));
        assert!(api.matches("/api"));
        assert!(api.matches("/api/"));
        assert!(api.matches("/api/x/y"));
        assert!(!api.matches("/apix"));
        assert!(!api.matches("/ap"));
        let root = PathCond::from_config(&PathMatch::Prefix("/".into()));
        assert!(root.matches("/"));
        assert!(root.matches("/anything"));
        assert_eq!(root.strip_len(), 0);
        let exact = PathCond::from_config(&PathMatch::Exact("/health".into()));
        assert!(exact.matches("/health"));
        assert!(!exact.matches("/health/"));
        assert_eq!(exact.strip_len(), 0);
    }

    #[test]
    fn hosts_lose_port_case_and_trailing_dot() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com."), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        let mut buf = host_buffer();
        assert_eq!(
            lowercase_host("Api.Example.COM", &mut buf),
            Some("api.example.com")
        );
        let mut buf = host_buffer();
        assert_eq!(lowercase_host(&"A".repeat(300), &mut buf), None);
        assert_eq!(
            HostPattern::parse("*.Example.com"),
            HostPattern::Wildcard(".example.com".into())
        );
    }

    #[test]
    fn methods() {
        let set = MethodSet::new(vec![Method::GET, Method::POST].into());
        assert!(set.matches(&Method::GET));
        assert!(!set.matches(&Method::DELETE));
        assert!(MethodSet::default().matches(&Method::DELETE));
    }
}
