//! Route actions on the request path: answers the gateway gives itself (redirects, fixed
//! responses), path and host rewrites, header edits and fire-and-forget mirroring.
//!
//! Each function takes the route's compiled actions as an `Option` and returns at once when the
//! route has none, so a plain route pays one branch per call: no lock, no allocation. The handler
//! calls them in request order: [`answer`] right after routing, [`rewritten_path`] and [`mirror`]
//! before the upstream request is built, [`edit_request`] after the proxy's own header rewriting
//! (so a route can override `X-Forwarded-*` but never the framing headers), [`edit_response`] on
//! whatever comes back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, TRANSFER_ENCODING};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Request, Response, Uri, request};
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::proxy::ProxyError;
use crate::proxy::handler::ProxyBody;
use crate::proxy::headers::remove_hop_by_hop_request;
use crate::routing::actions::{Answer, MirrorAction, PathRewrite, RedirectAction, RouteActions};
use crate::routing::matcher::host_without_port;
use crate::routing::table::RouteMatch;

/// Mirrored requests in flight on this worker; above the limit, copies are skipped so that a slow
/// mirror cannot pile up memory.
const MAX_MIRRORS_IN_FLIGHT: usize = 1024;
/// A mirrored request (including reading its answer) is abandoned after this long.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);
const MIRROR_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

static MIRRORS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The answer of a route that answers by itself (`redirect`, `direct_response`), with its
/// response header edits applied. `host` is the request's host as the client sent it.
pub fn answer(
    matched: &RouteMatch<'_>,
    parts: &request::Parts,
    host: Option<&HeaderValue>,
) -> Option<Response<ProxyBody>> {
    let actions = matched.route.actions.as_deref()?;
    let mut response = match actions.answer.as_ref()? {
        Answer::Redirect(redirect) => redirect_response(redirect, matched.matched_len, parts, host),
        Answer::Direct {
            status,
            body,
            content_type,
        } => {
            let mut response = Response::new(Either::Right(Full::new(body.clone())));
            *response.status_mut() = *status;
            if let Some(content_type) = content_type {
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, content_type.clone());
            }
            response
        }
    };
    edit_response(Some(actions), response.headers_mut());
    Some(response)
}

fn redirect_response(
    redirect: &RedirectAction,
    matched_len: usize,
    parts: &request::Parts,
    host: Option<&HeaderValue>,
) -> Response<ProxyBody> {
    let location = location(redirect, matched_len, parts, host);
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = redirect.status;
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
        }
        // Only a request target with bytes a header cannot carry gets here.
        Err(_) => *response.status_mut() = ProxyError::InvalidRequest.status(),
    }
    response
}

/// The `Location` of a redirect: every part the redirect leaves out comes from the request.
fn location(
    redirect: &RedirectAction,
    matched_len: usize,
    parts: &request::Parts,
    host: Option<&HeaderValue>,
) -> String {
    let request_scheme = parts.uri.scheme_str().unwrap_or("http");
    let scheme = redirect.scheme.as_deref().unwrap_or(request_scheme);
    let raw_host = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    let request_host = host_without_port(raw_host);
    let request_port = raw_host
        .strip_prefix(request_host)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|port| port.parse::<u16>().ok());
    let host = redirect.host.as_deref().unwrap_or(request_host);
    // A new scheme or host means the request's port no longer applies.
    let port = redirect.port.or_else(|| {
        (redirect.scheme.is_none() && redirect.host.is_none())
            .then_some(request_port)
            .flatten()
    });
    let default_port = match scheme {
        "https" => 443,
        _ => 80,
    };
    let path = parts.uri.path();
    let new_path = match &redirect.path {
        None => path.to_owned(),
        Some(rewrite) => rewrite_path(rewrite, path, matched_len),
    };
    let mut location = format!("{scheme}://{host}");
    if let Some(port) = port.filter(|p| *p != default_port) {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(&new_path);
    if let Some(query) = parts.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    location
}

/// `path` after a rewrite; `matched_len` bytes of it are what a prefix rewrite replaces.
fn rewrite_path(rewrite: &PathRewrite, path: &str, matched_len: usize) -> String {
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

/// The path and query to forward when the route rewrites the path; `None` leaves it as it is.
pub fn rewritten_path(
    matched: &RouteMatch<'_>,
    uri: &Uri,
) -> Result<Option<PathAndQuery>, ProxyError> {
    let Some(rewrite) = matched
        .route
        .actions
        .as_deref()
        .and_then(|a| a.rewrite.as_ref())
    else {
        return Ok(None);
    };
    let mut new = rewrite_path(rewrite, uri.path(), matched.matched_len);
    if let Some(query) = uri.query() {
        new.push('?');
        new.push_str(query);
    }
    PathAndQuery::from_maybe_shared(Bytes::from(new))
        .map(Some)
        .map_err(|_| ProxyError::InvalidRequest)
}

/// The `Host` the route forwards instead of the target's (`host_rewrite`).
pub fn host_rewrite(actions: Option<&RouteActions>) -> Option<HeaderValue> {
    actions?.host_rewrite.clone()
}

/// Applies the route's request header edits.
pub fn edit_request(actions: Option<&RouteActions>, headers: &mut HeaderMap) {
    if let Some(edits) = actions.and_then(|a| a.request_headers.as_ref()) {
        edits.apply(headers);
    }
}

/// Applies the route's response header edits.
pub fn edit_response(actions: Option<&RouteActions>, headers: &mut HeaderMap) {
    if let Some(edits) = actions.and_then(|a| a.response_headers.as_ref()) {
        edits.apply(headers);
    }
}

/// Index of the upstream this request is copied to, after the route's `percent` draw; `None`
/// for most requests and for every route without a mirror.
pub fn mirror_upstream(matched: &RouteMatch<'_>) -> Option<usize> {
    let MirrorAction { upstream, percent } = matched.route.actions.as_deref()?.mirror?;
    (percent >= 100 || fastrand::u32(0..100) < percent).then_some(upstream)
}

fn mirror_client() -> &'static Client<HttpConnector, Empty<Bytes>> {
    static CLIENT: OnceLock<Client<HttpConnector, Empty<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(MIRROR_CONNECT_TIMEOUT));
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .set_host(false)
            .build(connector)
    })
}

/// Releases a mirror slot however the mirrored request ends.
struct MirrorSlot;

impl Drop for MirrorSlot {
    fn drop(&mut self) {
        MIRRORS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends a copy of the request, as the client sent it but without its body, to `authority` in
/// the background. Its answer is read and dropped; its failures are logged at debug level and
/// never reach the client.
pub fn mirror(parts: &request::Parts, authority: Authority, host: HeaderValue) {
    if MIRRORS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed) >= MAX_MIRRORS_IN_FLIGHT {
        MIRRORS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!("mirror skipped: too many mirrored requests in flight");
        return;
    }
    let slot = MirrorSlot;
    let mut uri = Uri::builder().scheme(Scheme::HTTP).authority(authority);
    uri = match parts.uri.path_and_query() {
        Some(pq) => uri.path_and_query(pq.clone()),
        None => uri.path_and_query("/"),
    };
    let mut headers = parts.headers.clone();
    remove_hop_by_hop_request(&mut headers);
    headers.remove(CONTENT_LENGTH);
    headers.remove(TRANSFER_ENCODING);
    headers.insert(HOST, host);
    let request = uri.build().and_then(|uri| {
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(Empty::new())?;
        *request.headers_mut() = headers;
        Ok(request)
    });
    let Ok(request) = request else {
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let exchange = async {
            let response = mirror_client().request(request).await?;
            response.into_body().collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        };
        match tokio::time::timeout(MIRROR_TIMEOUT, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "mirrored request failed"),
            Err(_) => tracing::debug!("mirrored request timed out"),
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::Config;
    use http::StatusCode;

    use super::*;
    use crate::routing::{RequestInfo, RouteTable};

    fn table(routes: serde_json::Value) -> RouteTable {
        let mut config = Config::default();
        for route in routes.as_array().unwrap() {
            let route: gateway_config::Route = serde_json::from_value(route.clone()).unwrap();
            config.routes.insert(route.name.clone(), route);
        }
        RouteTable::build(&config, |_| Some(0)).unwrap()
    }

    fn parts(target: &str, host: &str) -> request::Parts {
        let (parts, ()) = Request::get(target)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    fn routed<'t>(table: &'t RouteTable, parts: &request::Parts) -> RouteMatch<'t> {
        let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
        table.lookup(&RequestInfo::new(host, parts)).unwrap()
    }

    fn location_of(table: &RouteTable, target: &str, host: &str) -> (StatusCode, String) {
        let parts = parts(target, host);
        let matched = routed(table, &parts);
        let response = answer(&matched, &parts, parts.headers.get(HOST)).unwrap();
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        (response.status(), location)
    }

    #[test]
    fn redirects_keep_what_they_do_not_replace() {
        let t = table(serde_json::json!([
            {"name": "https", "paths": [{"prefix": "/secure"}], "redirect": {"scheme": "https", "code": 301}},
            {"name": "moved", "paths": [{"prefix": "/old"}], "redirect": {"prefix": "/new", "code": 308}},
            {"name": "fixed", "paths": [{"exact": "/here"}], "redirect": {"host": "there.example.com", "port": 8443, "path": "/there"}},
            {"name": "keep", "paths": [{"prefix": "/keep"}], "redirect": {"path": "/kept"}}
        ]));
        assert_eq!(
            location_of(&t, "/secure/x?a=1", "shop.example.com:8080"),
            (
                StatusCode::MOVED_PERMANENTLY,
                "https://shop.example.com/secure/x?a=1".into()
            )
        );
        assert_eq!(
            location_of(&t, "/old/a/b", "h.com"),
            (
                StatusCode::PERMANENT_REDIRECT,
                "http://h.com/new/a/b".into()
            )
        );
        assert_eq!(
            location_of(&t, "/here", "h.com"),
            (
                StatusCode::FOUND,
                "http://there.example.com:8443/there".into()
            )
        );
        assert_eq!(
            location_of(&t, "/keep?q", "h.com:8080"),
            (StatusCode::FOUND, "http://h.com:8080/kept?q".into())
        );
    }

    #[test]
    fn direct_responses_carry_their_body_and_response_headers() {
        let t = table(serde_json::json!([
            {"name": "teapot", "direct_response": {"status": 418, "body": "short and stout", "content_type": "text/plain"},
             "response_headers": {"set": {"x-route": "teapot"}}}
        ]));
        let parts = parts("/", "h.com");
        let matched = routed(&t, &parts);
        let response = answer(&matched, &parts, None).unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(response.headers()["x-route"], "teapot");
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

        let t = table(serde_json::json!([
            {"name": "prefix", "paths": [{"prefix": "/api/"}], "backends": [{"upstream": "u"}], "rewrite": {"prefix": "/v2"}},
            {"name": "whole", "paths": [{"regex": "/item/[0-9]+"}], "backends": [{"upstream": "u"}], "rewrite": {"path": "/item"}},
            {"name": "plain", "paths": [{"prefix": "/plain"}], "backends": [{"upstream": "u"}]}
        ]));
        let check = |target: &str| {
            let parts = parts(target, "h.com");
            let matched = routed(&t, &parts);
            assert!(answer(&matched, &parts, None).is_none());
            rewritten_path(&matched, &parts.uri)
                .unwrap()
                .map(|pq| pq.as_str().to_owned())
        };
        assert_eq!(check("/api/users?id=1").as_deref(), Some("/v2/users?id=1"));
        assert_eq!(check("/item/42?x").as_deref(), Some("/item?x"));
        assert_eq!(check("/plain/x"), None);
    }

    #[test]
    fn routes_without_actions_do_nothing() {
        let t = table(serde_json::json!([{"name": "plain", "backends": [{"upstream": "u"}]}]));
        let mut parts = parts("/x", "h.com");
        let matched = routed(&t, &parts);
        assert!(matched.route.actions.is_none());
        assert!(answer(&matched, &parts, None).is_none());
        assert!(mirror_upstream(&matched).is_none());
        let before = parts.headers.clone();
        edit_request(None, &mut parts.headers);
        edit_response(None, &mut parts.headers);
        assert_eq!(parts.headers, before);
        assert!(host_rewrite(None).is_none());
    }

    #[test]
    fn mirror_percent_is_a_share_of_requests() {
        let mut config = Config::default();
        for json in [
            serde_json::json!({"name": "all", "paths": [{"prefix": "/all"}], "backends": [{"upstream": "u"}], "mirror": {"upstream": "m"}}),
            serde_json::json!({"name": "some", "paths": [{"prefix": "/some"}], "backends": [{"upstream": "u"}], "mirror": {"upstream": "m", "percent": 25}}),
            serde_json::json!({"name": "none", "paths": [{"prefix": "/none"}], "backends": [{"upstream": "u"}], "mirror": {"upstream": "m", "percent": 0}}),
        ] {
            let route: gateway_config::Route = serde_json::from_value(json).unwrap();
            config.routes.insert(route.name.clone(), route);
        }
        let t = RouteTable::build(&config, |name| Some(usize::from(name == "m"))).unwrap();
        let count = |target: &str| {
            let parts = parts(target, "h.com");
            let matched = routed(&t, &parts);
            (0..4_000)
                .filter(|_| mirror_upstream(&matched) == Some(1))
                .count()
        };
        assert_eq!(count("/all"), 4_000);
        assert_eq!(count("/none"), 0);
        assert!((800..1_200).contains(&count("/some")));
    }

    #[tokio::test]
    async fn a_dead_mirror_costs_nothing_but_a_slot() {
        let parts = parts("/x", "h.com");
        // Nothing listens on port 1; the copy fails in the background.
        mirror(
            &parts,
            Authority::from_static("127.0.0.1:1"),
            HeaderValue::from_static("m"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while MIRRORS_IN_FLIGHT.load(Ordering::Relaxed) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "mirror slot never released"
            );
            tokio::task::yield_now().await;
        }
    }
}
