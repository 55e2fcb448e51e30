//! A route's own filters: what it does to a request besides choosing its backends. Each filter
//! is one module with its compiled data, built once per revision off the request path, and its
//! application. A route without any filter has no [`RouteFilters`] at all, so the request path
//! pays one branch for them.
//!
//! They run in one fixed order, and each request-side filter either lets the request go on or
//! answers it ([`Flow`], or the proxy's error for a refusal):
//!
//! 0. The route's policies ([`RouteFilters::admit`]), right after routing: [`request_id`] gives
//!    the request its id (echoed in whatever answers it, refusals included), [`ip_restriction`]
//!    refuses a client address (403), and `request_size_limit` a body whose declared length is
//!    over the limit (413; a streamed body is cut, and answered 413, as soon as it passes it).
//! 1. [`answer`]: a redirect or a fixed response; the request goes no further.
//! 2. [`rewrite`]: the path the upstream gets (`strip_prefix`, then `rewrite`; a path that cannot
//!    be rewritten is a 400 before anything is sent) and its `Host` (`preserve_host`, then
//!    `host_rewrite`).
//! 3. [`mirror`]: whether a copy of the request (as the client sent it, without its body) goes
//!    to the mirror upstream.
//! 4. The proxy's own forwarding rules (hop-by-hop headers, `Via`, `X-Forwarded-*`), which are
//!    not filters: they hold for every route.
//! 5. [`headers`] on the request: the route's header edits, last, so they may override step 4.
//!
//! On the way back, after the proxy's own rules, [`headers`] edits the response (also the
//! answers of step 1). Later policies (authentication, rate limits, CORS) are filters of the
//! same shape and take their place in step 0.

pub mod answer;
pub mod headers;
pub mod ip_restriction;
pub mod mirror;
pub mod request_id;
pub mod rewrite;
mod values;

use std::net::IpAddr;

use gateway_config::{Rewrite, Route};
use http::{HeaderMap, HeaderValue, Response, request};

use crate::body::LocalBody;
use crate::error::ProxyError;
use answer::Answer;
use headers::HeaderEdits;
use ip_restriction::IpRules;
use mirror::MirrorAction;
use request_id::{Echo, RequestIdPolicy};
use rewrite::PathRewrite;
use values::header_value;

/// What a request-side filter decided.
#[derive(Debug)]
pub enum Flow {
    /// The request goes on to the next filter.
    Continue,
    /// The filter answered the request; nothing after it runs.
    Respond(Response<LocalBody>),
}

/// Everything a route does besides picking a backend.
#[derive(Debug, Default)]
pub struct RouteFilters {
    pub request_id: Option<RequestIdPolicy>,
    pub ip_restriction: Option<IpRules>,
    /// `request_size_limit`: the most bytes of body a request may have.
    pub body_limit: Option<u64>,
    pub answer: Option<Answer>,
    pub mirror: Option<MirrorAction>,
    pub rewrite: Option<PathRewrite>,
    pub host_rewrite: Option<HeaderValue>,
    pub request_headers: Option<HeaderEdits>,
    pub response_headers: Option<HeaderEdits>,
}

impl RouteFilters {
    /// `None` when the route has no filters, which is what keeps the request path free of them.
    pub fn compile(route: &Route, upstream_index: &impl Fn(&str) -> Option<usize>) -> Option<Self> {
        let name = route.name.as_str();
        let plugins = &route.plugins;
        let filters = RouteFilters {
            request_id: plugins
                .request_id
                .as_ref()
                .and_then(|config| RequestIdPolicy::compile(name, config)),
            ip_restriction: plugins
                .ip_restriction
                .as_ref()
                .map(|config| IpRules::compile(name, config)),
            body_limit: plugins.request_size_limit.as_ref().map(|l| l.max_bytes),
            answer: Answer::compile(route),
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
        };
        let empty = filters.request_id.is_none()
            && filters.ip_restriction.is_none()
            && filters.body_limit.is_none()
            && filters.answer.is_none()
            && filters.mirror.is_none()
            && filters.rewrite.is_none()
            && filters.host_rewrite.is_none()
            && filters.request_headers.is_none()
            && filters.response_headers.is_none();
        (!empty).then_some(filters)
    }

    /// Step 0: the route's policies. Sets the request's id in `headers` and puts what the
    /// response is to echo in `echo` (first, so that a refusal carries it too); then refuses
    /// the client's address, which `client` works out (only for a route that checks it), or
    /// a body whose declared length (`declared_len`, a lower bound) is over the limit.
    pub fn admit(
        &self,
        headers: &mut HeaderMap,
        declared_len: u64,
        client: impl FnOnce(&HeaderMap) -> IpAddr,
        echo: &mut Option<Echo>,
    ) -> Result<(), ProxyError> {
        if let Some(policy) = &self.request_id {
            *echo = policy.apply(headers);
        }
        if let Some(rules) = &self.ip_restriction
            && !rules.admits(client(headers))
        {
            return Err(ProxyError::AddressRefused);
        }
        if self.body_limit.is_some_and(|limit| declared_len > limit) {
            return Err(ProxyError::BodyTooLarge);
        }
        Ok(())
    }

    /// Step 1: the route's own answer, with its response header edits applied. `host` is the
    /// request's host as the client sent it, `matched_len` the bytes of its path the route
    /// matched.
    pub fn answer(
        &self,
        parts: &request::Parts,
        host: Option<&HeaderValue>,
        matched_len: usize,
    ) -> Flow {
        let Some(answer) = &self.answer else {
            return Flow::Continue;
        };
        let mut response = answer.respond(parts, host, matched_len);
        self.edit_response(response.headers_mut());
        Flow::Respond(response)
    }

    /// Step 3: the upstream index this request is copied to, if any.
    pub fn mirror(&self) -> Option<usize> {
        self.mirror.as_ref()?.draw()
    }

    /// Step 5: the route's request header edits.
    pub fn edit_request(&self, headers: &mut HeaderMap) {
        if let Some(edits) = &self.request_headers {
            edits.apply(headers);
        }
    }

    /// The route's response header edits.
    pub fn edit_response(&self, headers: &mut HeaderMap) {
        if let Some(edits) = &self.response_headers {
            edits.apply(headers);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::StatusCode;
    use http::header::CONTENT_TYPE;

    use super::*;
    use answer::Answer;
    use answer::tests::parts;

    fn route(json: serde_json::Value) -> Route {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn routes_without_actions_compile_to_nothing() {
        let plain = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
                                             "strip_prefix": true, "preserve_host": true}),
        );
        assert!(RouteFilters::compile(&plain, &|_| Some(0)).is_none());
    }

    #[test]
    fn header_edits_remove_then_set_then_add() {
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
            "request_headers": {"remove": ["x-drop", "x-set"], "set": {"x-set": "new"},
                                "add": {"x-add": "two"}}}),
        );
        let actions = RouteFilters::compile(&r, &|_| Some(0)).unwrap();
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
        let actions = RouteFilters::compile(&r, &|_| None).unwrap();
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
        let actions = RouteFilters::compile(&r, &|_| None).unwrap();
        assert!(matches!(
            actions.answer,
            Some(Answer::Direct { status, ref body, .. }) if status == 418 && body == "tea"
        ));
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "a"}],
            "mirror": {"upstream": "shadow", "percent": 30}}),
        );
        let actions = RouteFilters::compile(&r, &|name| (name == "shadow").then_some(7)).unwrap();
        assert_eq!(
            actions.mirror,
            Some(MirrorAction {
                upstream: 7,
                percent: 30
            })
        );
        assert!(RouteFilters::compile(&r, &|_| None).is_none());
    }

    #[test]
    fn direct_responses_carry_their_body_and_response_headers() {
        let r = route(serde_json::json!(
            {"name": "teapot", "direct_response": {"status": 418, "body": "short and stout", "content_type": "text/plain"},
             "response_headers": {"set": {"x-route": "teapot"}}}));
        let filters = RouteFilters::compile(&r, &|_| None).unwrap();
        let Flow::Respond(response) = filters.answer(&parts("/", "h.com"), None, 0) else {
            panic!("no answer");
        };
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(response.headers()["x-route"], "teapot");
    }

    #[test]
    fn a_route_that_forwards_lets_requests_go_on() {
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "u"}],
            "request_headers": {"set": {"x-a": "1"}}}),
        );
        let filters = RouteFilters::compile(&r, &|_| Some(0)).unwrap();
        assert!(matches!(
            filters.answer(&parts("/x", "h.com"), None, 0),
            Flow::Continue
        ));
        assert!(filters.mirror().is_none());
    }

    #[test]
    fn policies_run_first_and_a_refusal_still_carries_the_request_id() {
        let r = route(
            serde_json::json!({"name": "r", "backends": [{"upstream": "u"}],
            "plugins": {"request_id": {}, "ip_restriction": {"deny": ["10.0.0.0/8"]},
                        "request_size_limit": {"max_bytes": 10}}}),
        );
        let filters = RouteFilters::compile(&r, &|_| Some(0)).unwrap();
        let client = |ip: &'static str| move |_: &HeaderMap| ip.parse::<IpAddr>().unwrap();

        let mut echo = None;
        let mut headers = HeaderMap::new();
        assert!(
            filters
                .admit(&mut headers, 10, client("192.0.2.1"), &mut echo)
                .is_ok()
        );
        let (name, id) = echo.unwrap();
        assert_eq!(headers[&name], id);

        let mut echo = None;
        let refused = filters.admit(&mut HeaderMap::new(), 0, client("10.1.1.1"), &mut echo);
        assert_eq!(refused, Err(ProxyError::AddressRefused));
        assert!(echo.is_some());

        let mut echo = None;
        let refused = filters.admit(&mut HeaderMap::new(), 11, client("192.0.2.1"), &mut echo);
        assert_eq!(refused, Err(ProxyError::BodyTooLarge));
    }

    #[test]
    fn mirror_percent_is_a_share_of_requests() {
        let share = |percent: u32| {
            let action = MirrorAction {
                upstream: 1,
                percent,
            };
            (0..4_000).filter(|_| action.draw() == Some(1)).count()
        };
        assert_eq!(share(100), 4_000);
        assert_eq!(share(0), 0);
        assert!((800..1_200).contains(&share(25)));
    }
}
