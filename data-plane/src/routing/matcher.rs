//! The conditions of one route entry (host pattern, path condition, methods, headers, query) in
//! a form that matches without allocating, plus the helpers that extract a comparable host from a
//! request.

use std::cmp::Reverse;

use gateway_config::PathMatch;
use http::{HeaderMap, HeaderName, Method};
use regex::Regex;

use super::regex_memo::Regexes;

/// Longest host name accepted for matching (DNS limit plus a little slack for a trailing dot).
const MAX_HOST_LEN: usize = 255;

/// A route's host condition, lower-cased at compile time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone)]
pub enum PathCond {
    Exact(Box<str>),
    /// Segment-aware prefix without its trailing slash (`/` is stored as the empty string).
    Prefix(Box<str>),
    /// Anchored at both ends; `None` when the pattern did not compile, which validation rules
    /// out, so the condition then never matches instead of failing the whole table.
    Regex(Option<Regex>),
    Any,
}

impl PartialEq for PathCond {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathCond::Exact(a), PathCond::Exact(b))
            | (PathCond::Prefix(a), PathCond::Prefix(b)) => a == b,
            (PathCond::Regex(a), PathCond::Regex(b)) => {
                a.as_ref().map(Regex::as_str) == b.as_ref().map(Regex::as_str)
            }
            (PathCond::Any, PathCond::Any) => true,
            _ => false,
        }
    }
}

impl PathCond {
    pub fn from_config(path: &PathMatch, regexes: &Regexes<'_>) -> Self {
        match path {
            PathMatch::Exact(p) => PathCond::Exact(p.as_str().into()),
            PathMatch::Prefix(p) => PathCond::Prefix(p.trim_end_matches('/').into()),
            PathMatch::Regex(p) => PathCond::Regex(compile_regex(p, regexes)),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathCond::Exact(p) => path == &**p,
            PathCond::Prefix(p) => prefix_matches(p, path),
            PathCond::Regex(re) => re.as_ref().is_some_and(|re| re.is_match(path)),
            PathCond::Any => true,
        }
    }

    /// Sort key, smaller first: exact; then prefixes, longer first (no condition ranks as the
    /// shortest prefix, just after `/`); then regex.
    pub fn specificity(&self) -> (u8, Reverse<usize>) {
        match self {
            PathCond::Exact(_) => (0, Reverse(0)),
            PathCond::Prefix(p) => (1, Reverse(p.len() + 1)),
            PathCond::Any => (1, Reverse(0)),
            PathCond::Regex(_) => (2, Reverse(0)),
        }
    }

    /// Bytes of the request path that `strip_prefix` removes after this condition matched.
    pub fn strip_len(&self) -> usize {
        match self {
            PathCond::Prefix(p) => p.len(),
            PathCond::Exact(_) | PathCond::Regex(_) | PathCond::Any => 0,
        }
    }

    /// Bytes of `path` this condition matched, the part a prefix rewrite replaces: the prefix,
    /// the whole path for exact and regex conditions, nothing without a condition.
    pub fn matched_len(&self, path: &str) -> usize {
        match self {
            PathCond::Prefix(p) => p.len(),
            PathCond::Exact(_) | PathCond::Regex(_) => path.len(),
            PathCond::Any => 0,
        }
    }
}

/// Compiles a full-match regex with the same limits validation used, reusing the one a recent
/// table build compiled from the same pattern.
pub fn compile_regex(pattern: &str, regexes: &Regexes<'_>) -> Option<Regex> {
    regexes.regex(
        pattern,
        |pattern| match gateway_config::compile_full_match(pattern) {
            Ok(re) => Some(re),
            Err(error) => {
                tracing::warn!(%error, "regex condition never matches");
                None
            }
        },
    )
}

/// A header or query value condition.
#[derive(Debug, Clone)]
pub enum ValueCond {
    Exact(Box<[u8]>),
    Regex(Option<Regex>),
    Present,
}

impl ValueCond {
    pub fn from_config(exact: Option<&str>, regex: Option<&str>, regexes: &Regexes<'_>) -> Self {
        match (exact, regex) {
            (Some(value), _) => ValueCond::Exact(value.as_bytes().into()),
            (None, Some(pattern)) => ValueCond::Regex(compile_regex(pattern, regexes)),
            (None, None) => ValueCond::Present,
        }
    }

    fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueCond::Exact(expected) => value == &**expected,
            ValueCond::Regex(re) => std::str::from_utf8(value)
                .is_ok_and(|v| re.as_ref().is_some_and(|re| re.is_match(v))),
            ValueCond::Present => true,
        }
    }
}

/// A request header condition; one matching value of a repeated header is enough.
#[derive(Debug, Clone)]
pub struct HeaderCond {
    pub name: HeaderName,
    pub value: ValueCond,
    pub invert: bool,
}

impl HeaderCond {
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let hit = headers
            .get_all(&self.name)
            .iter()
            .any(|v| self.value.matches(v.as_bytes()));
        hit != self.invert
    }
}

/// Longest decoded query value a regex condition looks at; longer values do not match.
const MAX_QUERY_VALUE: usize = 1024;

/// A query parameter condition, compared after percent-decoding.
#[derive(Debug, Clone)]
pub struct QueryCond {
    pub name: Box<[u8]>,
    pub value: ValueCond,
}

impl QueryCond {
    pub fn matches(&self, query: Option<&str>) -> bool {
        let Some(query) = query else {
            return false;
        };
        query.split('&').any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !decoded(name).eq(self.name.iter().copied()) {
                return false;
            }
            match &self.value {
                ValueCond::Present => true,
                ValueCond::Exact(expected) => decoded(value).eq(expected.iter().copied()),
                ValueCond::Regex(_) => {
                    let mut buf = [0u8; MAX_QUERY_VALUE];
                    let mut len = 0;
                    for byte in decoded(value) {
                        let Some(slot) = buf.get_mut(len) else {
                            return false;
                        };
                        *slot = byte;
                        len += 1;
                    }
                    self.value.matches(&buf[..len])
                }
            }
        })
    }
}

/// The bytes of a query component after percent-decoding (`+` is a space); a malformed escape
/// stays as it is.
fn decoded(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let bytes = raw.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *bytes.get(i)?;
        i += 1;
        match b {
            b'+' => Some(b' '),
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|h| (*h as char).to_digit(16));
                match (hex(i), hex(i + 1)) {
                    (Some(hi), Some(lo)) => {
                        i += 2;
                        Some((hi * 16 + lo) as u8)
                    }
                    _ => Some(b'%'),
                }
            }
            other => Some(other),
        }
    })
}

/// What routing looks at in a request, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The raw `Host` header or URI authority; `None` when the request named no host.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestInfo<'a> {
    pub fn new(host: Option<&'a str>, parts: &'a http::request::Parts) -> Self {
        RequestInfo {
            host,
            path: parts.uri.path(),
            query: parts.uri.query(),
            method: &parts.method,
            headers: &parts.headers,
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::host_without_port;

    #[test]
    fn prefix_is_segment_aware_and_ignores_trailing_slash() {
        let api = PathCond::from_config(&PathMatch::Prefix("/api/".into()), &Regexes::none());
        assert!(api.matches("/api"));
        assert!(api.matches("/api/"));
        assert!(api.matches("/api/x/y"));
        assert!(!api.matches("/apix"));
        assert!(!api.matches("/ap"));
        let root = PathCond::from_config(&PathMatch::Prefix("/".into()), &Regexes::none());
        assert!(root.matches("/"));
        assert!(root.matches("/anything"));
        assert_eq!(root.strip_len(), 0);
        let exact = PathCond::from_config(&PathMatch::Exact("/health".into()), &Regexes::none());
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
    fn regex_paths_match_the_whole_path() {
        let re = PathCond::from_config(&PathMatch::Regex("/users/[0-9]+".into()), &Regexes::none());
        assert!(re.matches("/users/42"));
        assert!(!re.matches("/users/42/x"));
        assert!(!re.matches("/x/users/42"));
        assert_eq!(re.matched_len("/users/42"), 9);
        assert_eq!(re.strip_len(), 0);
        let broken = PathCond::from_config(&PathMatch::Regex("(".into()), &Regexes::none());
        assert!(!broken.matches("("));
        assert!(PathCond::Regex(None) == broken);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    fn header(name: &'static str, value: ValueCond, invert: bool) -> HeaderCond {
        HeaderCond {
            name: HeaderName::from_static(name),
            value,
            invert,
        }
    }

    #[test]
    fn header_conditions() {
        let request = headers(&[("x-env", "prod"), ("x-env", "canary"), ("x-id", "123")]);
        let exact = header("x-env", ValueCond::Exact((*b"canary").into()), false);
        assert!(exact.matches(&request));
        assert!(!exact.matches(&headers(&[("x-env", "Canary")])));
        let regex = header(
            "x-id",
            ValueCond::from_config(None, Some("[0-9]+"), &Regexes::none()),
            false,
        );
        assert!(regex.matches(&request));
        assert!(!regex.matches(&headers(&[("x-id", "12a")])));
        let present = header("x-id", ValueCond::Present, false);
        assert!(present.matches(&request));
        assert!(!present.matches(&HeaderMap::new()));
        let absent = header("x-debug", ValueCond::Present, true);
        assert!(absent.matches(&request));
        assert!(!absent.matches(&headers(&[("x-debug", "1")])));
        let not_prod = header("x-env", ValueCond::Exact((*b"prod").into()), true);
        assert!(!not_prod.matches(&request));
        assert!(not_prod.matches(&HeaderMap::new()));
    }

    #[test]
    fn query_conditions_decode_and_need_the_parameter() {
        let exact = QueryCond {
            name: (*b"q").into(),
            value: ValueCond::from_config(Some("a b/c"), None, &Regexes::none()),
        };
        assert!(exact.matches(Some("x=1&q=a+b%2Fc")));
        assert!(exact.matches(Some("q=a%20b/c")));
        assert!(!exact.matches(Some("q=a")));
        assert!(!exact.matches(None));
        let present = QueryCond {
            name: (*b"debug").into(),
            value: ValueCond::Present,
        };
        assert!(present.matches(Some("debug")));
        assert!(present.matches(Some("a=1&debug=")));
        assert!(!present.matches(Some("debugger=1")));
        let regex = QueryCond {
            name: (*b"v").into(),
            value: ValueCond::from_config(None, Some("[0-9]+"), &Regexes::none()),
        };
        assert!(regex.matches(Some("v=42")));
        assert!(!regex.matches(Some("v=4x")));
        let long = format!("v={}", "1".repeat(MAX_QUERY_VALUE + 1));
        assert!(!regex.matches(Some(&long)));
        assert!(decoded("%zz%4").eq(*b"%zz%4"));
    }

    #[test]
    fn methods() {
        let set = MethodSet::new(vec![Method::GET, Method::POST].into());
        assert!(set.matches(&Method::GET));
        assert!(!set.matches(&Method::DELETE));
        assert!(MethodSet::default().matches(&Method::DELETE));
    }
}
