//! The request path: load the live config once, route, pick a backend, rewrite the request and
//! hand it to [`crate::forward`], which picks the target, applies timeouts, retries and circuit
//! breaking and streams the request and the answer through the upstream's pool.
//!
//! The config guard is released before anything is awaited, so a request never holds a revision
//! longer than it takes to route it, and a new revision never affects a request in flight.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, HeaderValue, UPGRADE};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Version};
use ipnet::IpNet;

use crate::forward::{ClientBody, Outgoing, forward, request_key};
use crate::metrics::Outcome;
use crate::proxy::actions;
use crate::proxy::error::ProxyError;
use crate::proxy::headers::{
    append_via, check_framing, remove_hop_by_hop, remove_hop_by_hop_request, set_forwarded,
    strip_path_prefix,
};
use crate::routing::RequestInfo;
use crate::state::State;

/// Bodies stream through untouched; only the proxy's own answers are built in memory.
pub use crate::forward::ProxyBody;

const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub connect_timeout: Duration,
    /// Limit for the upstream's response headers to arrive, for routes without a `timeout`.
    pub upstream_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            trusted_proxies: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Proxy {
    state: Arc<State>,
    trusted_proxies: Box<[IpNet]>,
    upstream_timeout: Duration,
}

/// What the proxy knows about a client connection, worked out once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    ip_value: HeaderValue,
    trusted: bool,
}

impl Proxy {
    pub fn new(state: Arc<State>, settings: ProxySettings) -> Self {
        Proxy {
            state,
            trusted_proxies: settings.trusted_proxies.into(),
            upstream_timeout: settings.upstream_timeout,
        }
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub fn peer(&self, addr: SocketAddr) -> Peer {
        let ip = addr.ip().to_canonical();
        let trusted = self.trusted_proxies.iter().any(|net| net.contains(&ip));
        let ip_value = HeaderValue::try_from(ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer {
            ip,
            ip_value,
            trusted,
        }
    }

    /// Answers one request: the upstream's response, or the proxy's own JSON error.
    pub async fn handle(&self, request: Request<ClientBody>, peer: &Peer) -> Response<ProxyBody> {
        let version = request.version();
        match self.forward(request, peer).await {
            Ok(response) => {
                self.state.metrics().request(Outcome::Ok);
                response
            }
            Err(error) => {
                self.state.metrics().request(error.outcome());
                tracing::debug!(code = error.code(), "request answered by the proxy");
                let mut response = error.response();
                if error == ProxyError::BadFraming && version < Version::HTTP_2 {
                    // Where the body ends is unknown, so the rest of the connection is too.
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        }
    }

    async fn forward(
        &self,
        mut request: Request<ClientBody>,
        peer: &Peer,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        check_framing(request.headers())?;
        let upgrade =
            upgrade_protocol(&request).map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
        let (mut parts, body) = request.into_parts();
        // HTTP/2 and absolute-form requests carry the host in the URI, which then wins over Host.
        let original_host = match parts.uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
            None => parts.headers.get(HOST).cloned(),
        };
        let rewritten;
        let route_actions: Option<std::sync::Arc<crate::routing::RouteActions>>;
        let (upstream, preserve_host, strip_len, policy) = {
            let live = self.state.load();
            let compiled = live.as_ref().ok_or(ProxyError::NoConfig)?;
            let host = original_host.as_ref().and_then(|h| h.to_str().ok());
            let matched = compiled
                .routes
                .lookup(&RequestInfo::new(host, &parts))
                .ok_or(ProxyError::NoRoute)?;
            if let Some(response) = actions::answer(&matched, &parts, original_host.as_ref()) {
                return Ok(response);
            }
            rewritten = actions::rewritten_path(&matched, &parts.uri)?;
            route_actions = matched.route.actions.clone();
            if let Some(mirror) =
                actions::mirror_upstream(&matched).and_then(|index| compiled.upstreams.get(index))
            {
                let target = mirror.pick();
                actions::mirror(&parts, target.authority.clone(), target.host_header.clone());
            }
            let upstream = compiled
                .upstreams
                .get(matched.route.pick_upstream_for(&parts.headers))
                .ok_or(ProxyError::NoRoute)?;
            (
                upstream.runtime().clone(),
                matched.route.preserve_host,
                matched.strip_len,
                matched.route.policy,
            )
        };

        let mut path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if strip_len > 0 {
            let stripped = strip_path_prefix(path.as_str(), strip_len);
            path = PathAndQuery::from_maybe_shared(Bytes::from(stripped))
                .map_err(|_| ProxyError::InvalidRequest)?;
        }
        if let Some(rewritten) = rewritten {
            path = rewritten;
        }

        let version = parts.version;
        remove_hop_by_hop_request(&mut parts.headers);
        // Via, three X-Forwarded-* and Host: growing the map once instead of step by step.
        parts.headers.reserve(5);
        let upgrade = upgrade.map(|(protocol, on_upgrade)| {
            // The one hop-by-hop exchange a proxy forwards: the request to switch protocols.
            parts.headers.insert(CONNECTION, UPGRADE_TOKEN);
            parts.headers.insert(UPGRADE, protocol);
            on_upgrade
        });
        let host = if preserve_host {
            Some(original_host.clone())
        } else {
            actions::host_rewrite(route_actions.as_deref()).map(Some)
        };
        append_via(&mut parts.headers, version);
        set_forwarded(
            &mut parts.headers,
            &peer.ip_value,
            peer.trusted,
            original_host.as_ref(),
        );
        actions::edit_request(route_actions.as_deref(), &mut parts.headers);
        let key = request_key(
            upstream.hash_on.as_ref(),
            &parts.headers,
            peer.ip_value.to_str().unwrap_or(""),
        );
        let outgoing = Outgoing {
            method: parts.method,
            path,
            headers: parts.headers,
            host,
            upgrade,
        };
        let response = forward(
            &upstream,
            outgoing,
            body,
            key,
            policy,
            self.upstream_timeout,
        )
        .await?;
        let (mut parts, body) = response.into_parts();
        let switching = parts.status == StatusCode::SWITCHING_PROTOCOLS;
        let protocol = switching
            .then(|| parts.headers.get(UPGRADE).cloned())
            .flatten();
        remove_hop_by_hop(&mut parts.headers);
        if let Some(protocol) = protocol {
            parts.headers.insert(CONNECTION, UPGRADE_TOKEN);
            parts.headers.insert(UPGRADE, protocol);
        }
        append_via(&mut parts.headers, parts.version);
        actions::edit_response(route_actions.as_deref(), &mut parts.headers);
        Ok(Response::from_parts(parts, body))
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` with `Upgrade`).
fn upgrade_protocol<B>(request: &Request<B>) -> Option<HeaderValue> {
    if request.version() != Version::HTTP_11 {
        return None;
    }
    let asks = request
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| request.headers().get(UPGRADE).cloned())
        .flatten()
}

/// An error with its sources, `outer: inner: innermost`.
pub(crate) struct DisplayChain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_trusted_by_cidr_including_mapped_v4() {
        let state = Arc::new(State::new(crate::state::NodeIdentity {
            id: "n".into(),
            group: "g".into(),
        }));
        let settings = ProxySettings {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..ProxySettings::default()
        };
        let proxy = Proxy::new(state, settings);
        let trusted = proxy.peer("10.2.3.4:5000".parse().unwrap());
        assert!(trusted.trusted);
        assert_eq!(trusted.ip_value, "10.2.3.4");
        let mapped = proxy.peer("[::ffff:10.0.0.1]:1".parse().unwrap());
        assert!(mapped.trusted);
        assert_eq!(mapped.ip_value, "10.0.0.1");
        let other = proxy.peer("192.168.0.1:1".parse().unwrap());
        assert!(!other.trusted);
    }
}
