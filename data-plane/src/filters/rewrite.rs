//! The `rewrite` filter: the path the upstream gets (the route's `strip_prefix`, then its
//! `rewrite`, which replaces the matched part or the whole path), and the `Host` it gets
//! (`preserve_host`, else `host_rewrite`, else the target's own address). Rewriting allocates
//! only for routes that rewrite.

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Uri};

use crate::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    /// Replaces the matched part of the path.
    Prefix(Box<str>),
    /// Replaces the whole path.
    Path(Box<str>),
}

/// The `Host` a request goes upstream with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamHost {
    /// Each target's own address.
    Target,
    /// This value, or no `Host` at all (a preserved request that named none).
    Fixed(Option<HeaderValue>),
}

/// `path` after a rewrite; `matched_len` bytes of it are what a prefix rewrite replaces.
pub fn rewrite_path(rewrite: &PathRewrite, path: &str, matched_len: usize) -> String {
    match rewrite {
        PathRewrite::Path(new) => new.to_string(),
        PathRewrite::Prefix(prefix) => {
            let rest = path.get(matched_len..).unwrap_or("");
            // `/v2/` + `/x` must not become `/v2//x`, and `/` + `` must stay `/`.
            let mut out = String::with_capacity(prefix.len() + rest.len());
            out.push_str(prefix.trim_end_matches('/'));
            if !rest.is_empty() && !rest.starts_with('/') {
                out.push('/');
            }
            out.push_str(rest);
            if out.is_empty() {
                out.push('/');
            }
            out
        }
    }
}

/// `path_and_query` without its first `len` path bytes; the path never becomes empty and the
/// query is kept (`/api/x?q` with 4 → `/x?q`, `/api` → `/`).
pub fn strip_path_prefix(path_and_query: &str, len: usize) -> String {
    let (path, query) = path_and_query
        .find('?')
        .map_or((path_and_query, ""), |at| path_and_query.split_at(at));
    let rest = path.get(len..).unwrap_or("");
    let mut out = String::with_capacity(1 + rest.len() + query.len());
    if !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    out.push_str(query);
    out
}

/// The path and query of `uri` after the route's rewrite, when it has one.
pub fn rewritten_path(
    rewrite: &PathRewrite,
    uri: &Uri,
    matched_len: usize,
) -> Result<PathAndQuery, ProxyError> {
    let mut new = rewrite_path(rewrite, uri.path(), matched_len);
    if let Some(query) = uri.query() {
        new.push('?');
        new.push_str(query);
    }
    PathAndQuery::from_maybe_shared(Bytes::from(new)).map_err(|_| ProxyError::InvalidRequest)
}

/// The path and query the upstream gets: `uri`'s, with `strip_len` bytes stripped, unless the
/// route rewrites it.
pub fn upstream_path(
    uri: &Uri,
    strip_len: usize,
    rewrite: Option<&PathRewrite>,
    matched_len: usize,
) -> Result<PathAndQuery, ProxyError> {
    if let Some(rewrite) = rewrite {
        return rewritten_path(rewrite, uri, matched_len);
    }
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if strip_len == 0 {
        return Ok(path);
    }
    let stripped = strip_path_prefix(path.as_str(), strip_len);
    PathAndQuery::from_maybe_shared(Bytes::from(stripped)).map_err(|_| ProxyError::InvalidRequest)
}

/// The `Host` the upstream gets: the client's with `preserve_host`, else the route's
/// `host_rewrite`, else each target's address.
pub fn upstream_host(
    preserve_host: bool,
    original: Option<&HeaderValue>,
    host_rewrite: Option<&HeaderValue>,
) -> UpstreamHost {
    if preserve_host {
        UpstreamHost::Fixed(original.cloned())
    } else {
        host_rewrite.map_or(UpstreamHost::Target, |host| {
            UpstreamHost::Fixed(Some(host.clone()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strip_prefix_keeps_a_path_and_the_query() {
        assert_eq!(strip_path_prefix("/api/x", 4), "/x");
        assert_eq!(strip_path_prefix("/api", 4), "/");
        assert_eq!(strip_path_prefix("/api/", 4), "/");
        assert_eq!(strip_path_prefix("/api?a=1&b", 4), "/?a=1&b");
        assert_eq!(strip_path_prefix("/api/x/y?q", 4), "/x/y?q");
        assert_eq!(strip_path_prefix("/any", 0), "/any");
    }

    fn upstream_of(
        target: &str,
        strip_len: usize,
        rewrite: Option<&PathRewrite>,
        matched_len: usize,
    ) -> String {
        let uri: Uri = target.parse().unwrap();
        upstream_path(&uri, strip_len, rewrite, matched_len)
            .unwrap()
            .as_str()
            .to_owned()
    }

    #[test]
    fn path_rewrites() {
        assert_eq!(
            rewrite_path(&PathRewrite::Prefix("/v2".into()), "/api/x", 4),
            "/v2/x"
        );
        assert_eq!(
            rewrite_path(&PathRewrite::Prefix("/v2/".into()), "/api/x", 4),
            "/v2/x"
        );
        assert_eq!(
            rewrite_path(&PathRewrite::Prefix("/".into()), "/api/x", 4),
            "/x"
        );
        assert_eq!(
            rewrite_path(&PathRewrite::Prefix("/".into()), "/api", 4),
            "/"
        );
        assert_eq!(
            rewrite_path(&PathRewrite::Prefix("/v2".into()), "/x", 0),
            "/v2/x"
        );
        assert_eq!(
            rewrite_path(&PathRewrite::Path("/fixed".into()), "/a/b", 2),
            "/fixed"
        );

        // A prefix `/api/` matches 4 bytes; a regex matches the whole path.
        let prefix = PathRewrite::Prefix("/v2".into());
        let whole = PathRewrite::Path("/item".into());
        assert_eq!(
            upstream_of("/api/users?id=1", 0, Some(&prefix), 4),
            "/v2/users?id=1"
        );
        assert_eq!(upstream_of("/item/42?x", 0, Some(&whole), 8), "/item?x");
        assert_eq!(upstream_of("/plain/x", 0, None, 6), "/plain/x");
        // A rewrite replaces what strip_prefix would have left.
        assert_eq!(upstream_of("/api/users", 4, Some(&prefix), 4), "/v2/users");
        assert_eq!(upstream_of("/api/users?a", 4, None, 4), "/users?a");
    }

    #[test]
    fn the_host_is_preserved_rewritten_or_the_targets() {
        let client = HeaderValue::from_static("shop.example");
        let rewrite = HeaderValue::from_static("internal");
        assert_eq!(
            upstream_host(true, Some(&client), Some(&rewrite)),
            UpstreamHost::Fixed(Some(client.clone()))
        );
        assert_eq!(upstream_host(true, None, None), UpstreamHost::Fixed(None));
        assert_eq!(
            upstream_host(false, Some(&client), Some(&rewrite)),
            UpstreamHost::Fixed(Some(rewrite))
        );
        assert_eq!(
            upstream_host(false, Some(&client), None),
            UpstreamHost::Target
        );
    }
}
