//! The compiled form of what a route does besides choosing backends: path and host rewrites,
//! header edits, its own answers (redirects and fixed responses) and mirroring. Everything is
//! parsed once per revision, so applying an action costs no parsing on the request path.
//!
//! A route without any of these has no [`RouteActions`] at all, so the request path pays nothing
//! for them.

use bytes::Bytes;
use gateway_config::{HeaderTransform, Redirect, Rewrite, Route};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Everything a route does besides picking a backend.
#[derive(Debug, Default)]
pub struct RouteActions {
    pub rewrite: Option<PathRewrite>,
    pub host_rewrite: Option<HeaderValue>,
    pub request_headers: Option<HeaderEdits>,
    pub response_headers: Option<HeaderEdits>,
    pub answer: Option<Answer>,
    pub mirror: Option<MirrorAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    /// Replaces the matched part of the path.
    Prefix(Box<str>),
    /// Replaces the whole path.
    Path(Box<str>),
}

/// Header edits in the order they apply: remove, set, add.
#[derive(Debug, Default)]
pub struct HeaderEdits {
    remove: Box<[HeaderName]>,
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
}

impl HeaderEdits {
    fn compile(route: &str, transform: &HeaderTransform) -> Option<Self> {
        if transform.is_empty() {
            return None;
        }
        let pairs = |map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .filter_map(|(name, value)| header_pair(route, name, value))
                .collect()
        };
        Some(HeaderEdits {
            remove: transform
                .remove
                .iter()
                .filter_map(|name| header_name(route, name))
                .collect(),
            set: pairs(&transform.set),
            add: pairs(&transform.add),
        })
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorAction {
    /// Index of the mirror upstream in the compiled config.
    pub upstream: usize,
    /// 0–100.
    pub percent: u32,
}

impl RouteActions {
    /// `None` when the route has no actions, which is what keeps the request path free of them.
    pub fn compile(route: &Route, upstream_index: &impl Fn(&str) -> Option<usize>) -> Option<Self> {
        let name = route.name.as_str();
        let actions = RouteActions {
            rewrite: route.rewrite.as_ref().map(|rewrite| match rewrite {
                Rewrite::Prefix(p) => PathRewrite::Prefix(p.as_str().into()),
                Rewrite::Path(p) => PathRewrite::Path(p.as_str().into()),
            }),
            host_rewrite: route
                .host_rewrite
                .as_deref()
                .and_then(|host| header_value(name, host)),
            request_headers: HeaderEdits::compile(name, &route.request_headers),
            response_headers: HeaderEdits::compile(name, &route.response_headers),
            answer: compile_answer(route),
            mirror: route.mirror.as_ref().and_then(|mirror| {
                let upstream = upstream_index(&mirror.upstream);
                if upstream.is_none() {
                    tracing::warn!(route = name, upstream = %mirror.upstream, "mirror upstream does not exist; not mirroring");
                }
                Some(MirrorAction {
                    upstream: upstream?,
                    percent: mirror.percent.min(100),
                })
            }),
        };
        let empty = actions.rewrite.is_none()
            && actions.host_rewrite.is_none()
            && actions.request_headers.is_none()
            && actions.response_headers.is_none()
            && actions.answer.is_none()
            && actions.mirror.is_none();
        (!empty).then_some(actions)
    }
}

fn compile_answer(route: &Route) -> Option<Answer> {
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

// Validation rules out bad names and values; one that slips through is skipped, not fatal.
fn header_name(route: &str, name: &str) -> Option<HeaderName> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
    if parsed.is_none() {
        tracing::warn!(route, header = name, "invalid header name skipped");
    }
    parsed
}

fn header_value(route: &str, value: &str) -> Option<HeaderValue> {
    let parsed = HeaderValue::from_str(value).ok();
    if parsed.is_none() {
        tracing::warn!(route, "invalid header value skipped");
    }
    parsed
}

fn header_pair(route: &str, name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((header_name(route, name)?, header_value(route, value)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(json: serde_json::Value) -> Route {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn routes_without_actions_compile_to_nothing() {
        let plain = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
                                             "strip_prefix": true, "preserve_host": true}),
        );
        assert!(RouteActions::compile(&plain, &|_| Some(0)).is_none());
    }

    #[test]
    fn header_edits_remove_then_set_then_add() {
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
            "request_headers": {"remove": ["x-drop", "x-set"], "set": {"x-set": "new"},
                                "add": {"x-add": "two"}}}),
        );
        let actions = RouteActions::compile(&r, &|_| Some(0)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-drop", HeaderValue::from_static("1"));
        headers.append("x-set", HeaderValue::from_static("old1"));
        headers.append("x-set", HeaderValue::from_static("old2"));
        headers.insert("x-add", HeaderValue::from_static("one"));
        actions
            .request_headers
            .as_ref()
            .unwrap()
            .apply(&mut headers);
        assert!(!headers.contains_key("x-drop"));
        assert_eq!(headers.get_all("x-set").iter().count(), 1);
        assert_eq!(headers["x-set"], "new");
        let added: Vec<_> = headers.get_all("x-add").iter().collect();
        assert_eq!(added, ["one", "two"]);
        assert!(actions.response_headers.is_none());
    }

    #[test]
    fn answers_and_mirror() {
        let r = route(serde_json::json!({"name": "r",
            "redirect": {"scheme": "https", "prefix": "/new", "code": 301}}));
        let actions = RouteActions::compile(&r, &|_| None).unwrap();
        match actions.answer {
            Some(Answer::Redirect(redirect)) => {
                assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
                assert_eq!(redirect.path, Some(PathRewrite::Prefix("/new".into())));
                assert_eq!(redirect.scheme.as_deref(), Some("https"));
            }
            other => panic!("{other:?}"),
        }
        let r = route(serde_json::json!({"name": "r",
            "direct_response": {"status": 418, "body": "tea", "content_type": "text/plain"}}));
        let actions = RouteActions::compile(&r, &|_| None).unwrap();
        assert!(matches!(
            actions.answer,
            Some(Answer::Direct { status, ref body, .. }) if status == 418 && body == "tea"
        ));
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
            "mirror": {"upstream": "shadow", "percent": 30}}),
        );
        let actions = RouteActions::compile(&r, &|name| (name == "shadow").then_some(7)).unwrap();
        assert_eq!(
            actions.mirror,
            Some(MirrorAction {
                upstream: 7,
                percent: 30
            })
        );
        assert!(RouteActions::compile(&r, &|_| None).is_none());
    }
}
