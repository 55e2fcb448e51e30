//! The `answer` filter: routes that answer by themselves instead of forwarding, with a redirect
//! (every part of the `Location` the redirect leaves out comes from the request) or a fixed
//! response. It runs first, so such a route never touches an upstream.

use bytes::Bytes;
use gateway_config::{Redirect, Route};
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode, request};
use http_body_util::Full;

use super::rewrite::{PathRewrite, rewrite_path};
use super::values::header_value;
use crate::body::LocalBody;
use crate::error::ProxyError;
use crate::keys::host_without_port;

/// An answer the gateway gives itself instead of forwarding.
#[derive(Debug)]
pub enum Answer {
    Redirect(RedirectAction),
    Direct {
        status: StatusCode,
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
}

/// A redirect; parts left `None` keep the request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectAction {
    pub scheme: Option<Box<str>>,
    pub host: Option<Box<str>>,
    pub port: Option<u16>,
    pub path: Option<PathRewrite>,
    pub status: StatusCode,
}

impl Answer {
    /// The route's own answer, if it has one.
    pub fn compile(route: &Route) -> Option<Answer> {
        if let Some(redirect) = &route.redirect {
            return Some(Answer::Redirect(compile_redirect(redirect)));
        }
        let direct = route.direct_response.as_ref()?;
        Some(Answer::Direct {
            status: StatusCode::from_u16(direct.status).unwrap_or(StatusCode::OK),
            body: Bytes::from(direct.body.clone()),
            content_type: direct
                .content_type
                .as_deref()
                .and_then(|ct| header_value(&route.name, ct)),
        })
    }

    /// The response to a request. `host` is the request's host as the client sent it and
    /// `matched_len` the bytes of its path the route matched.
    pub fn respond(
        &self,
        parts: &request::Parts,
        host: Option<&HeaderValue>,
        matched_len: usize,
    ) -> Response<LocalBody> {
        match self {
            Answer::Redirect(redirect) => redirect_response(redirect, matched_len, parts, host),
            Answer::Direct {
                status,
                body,
                content_type,
            } => {
                let mut response = Response::new(Full::new(body.clone()));
                *response.status_mut() = *status;
                if let Some(content_type) = content_type {
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, content_type.clone());
                }
                response
            }
        }
    }
}

fn compile_redirect(redirect: &Redirect) -> RedirectAction {
    let path = match (&redirect.path, &redirect.prefix) {
        (Some(path), _) => Some(PathRewrite::Path(path.as_str().into())),
        (None, Some(prefix)) => Some(PathRewrite::Prefix(prefix.as_str().into())),
        (None, None) => None,
    };
    RedirectAction {
        scheme: redirect.scheme.as_deref().map(Into::into),
        host: redirect.host.as_deref().map(Into::into),
        port: redirect.port,
        path,
        status: StatusCode::from_u16(redirect.code).unwrap_or(StatusCode::FOUND),
    }
}

/// A permanent redirect (308, so that the method and body are kept) to the same host, path and
/// query over HTTPS on `port`: what a plain-HTTP listener answers when the worker redirects
/// plain HTTP to its TLS listener.
pub fn https_redirect(
    parts: &request::Parts,
    host: Option<&HeaderValue>,
    port: u16,
) -> Response<LocalBody> {
    let redirect = RedirectAction {
        scheme: Some("https".into()),
        host: None,
        port: (port != 443).then_some(port),
        path: None,
        status: StatusCode::PERMANENT_REDIRECT,
    };
    redirect_response(&redirect, 0, parts, host)
}

fn redirect_response(
    redirect: &RedirectAction,
    matched_len: usize,
    parts: &request::Parts,
    host: Option<&HeaderValue>,
) -> Response<LocalBody> {
    let location = location(redirect, matched_len, parts, host);
    let mut response = Response::new(Full::new(Bytes::new()));
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use http::Request;
    use http::header::HOST;

    use super::*;

    /// The head of a GET of `target` with `host`.
    pub(in crate::filters) fn parts(target: &str, host: &str) -> request::Parts {
        let (parts, ()) = Request::get(target)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn redirects_keep_what_they_do_not_replace() {
        // The route, the request's target and host, the bytes of its path the route's path
        // condition matched, and the redirect expected.
        let cases = [
            (
                serde_json::json!({"name": "https", "paths": [{"prefix": "/secure"}], "redirect": {"scheme": "https", "code": 301}}),
                ("/secure/x?a=1", "shop.example.com:8080", 7),
                (
                    StatusCode::MOVED_PERMANENTLY,
                    "https://shop.example.com/secure/x?a=1",
                ),
            ),
            (
                serde_json::json!({"name": "moved", "paths": [{"prefix": "/old"}], "redirect": {"prefix": "/new", "code": 308}}),
                ("/old/a/b", "h.com", 4),
                (StatusCode::PERMANENT_REDIRECT, "http://h.com/new/a/b"),
            ),
            (
                serde_json::json!({"name": "fixed", "paths": [{"exact": "/here"}], "redirect": {"host": "there.example.com", "port": 8443, "path": "/there"}}),
                ("/here", "h.com", 5),
                (StatusCode::FOUND, "http://there.example.com:8443/there"),
            ),
            (
                serde_json::json!({"name": "keep", "paths": [{"prefix": "/keep"}], "redirect": {"path": "/kept"}}),
                ("/keep?q", "h.com:8080", 5),
                (StatusCode::FOUND, "http://h.com:8080/kept?q"),
            ),
        ];
        for (route, (target, host, matched_len), (status, location)) in cases {
            let route: Route = serde_json::from_value(route).unwrap();
            let answer = Answer::compile(&route).unwrap();
            let parts = parts(target, host);
            let response = answer.respond(&parts, parts.headers.get(HOST), matched_len);
            assert_eq!(
                (
                    response.status(),
                    response.headers()[LOCATION].to_str().unwrap()
                ),
                (status, location),
                "{}",
                route.name
            );
        }
    }
}
