//! The request path, as orchestration only: load the live config once, check the request, route
//! it, run the route's filters in their fixed order (see [`crate::filters`]) around the proxy's
//! own forwarding rules ([`super::forwarding`]), and hand it to [`super::attempts`], which picks
//! the target, retries and streams the answer back; on the way back, the forwarding rules and the
//! route's response filters again.
//!
//! The config guard is released before anything is awaited, so a request never holds a revision
//! longer than it takes to route it, and a new revision never affects a request in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::Either;
use ipnet::IpNet;

use super::attempts::{Outgoing, forward};
use super::body::ProxyBody;
use super::forwarding::{
    append_via, check_framing, check_host, remove_hop_by_hop, remove_hop_by_hop_request,
    set_forwarded,
};
use super::mirror::Mirrors;
use crate::body::ClientBody;
use crate::error::ProxyError;
use crate::filters::{Flow, RouteFilters, rewrite};
use crate::keys::request_key;
use crate::observe::metrics::Outcome;
use crate::routing::RequestInfo;
use crate::served::State;

const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Limit for the upstream's response headers to arrive, for routes without a `timeout`.
    pub upstream_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            trusted_proxies: Vec::new(),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Proxy {
    state: Arc<State>,
    trusted_proxies: Box<[IpNet]>,
    upstream_timeout: Duration,
    mirrors: Mirrors,
}

/// What the proxy knows about a client connection, worked out once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    ip_value: HeaderValue,
    trusted: bool,
}

impl Proxy {
    pub fn new(state: Arc<State>, settings: ProxySettings) -> Self {
        Proxy {
            state,
            trusted_proxies: settings.trusted_proxies.into(),
            upstream_timeout: settings.upstream_timeout,
            mirrors: Mirrors::default(),
        }
    }

    pub fn peer(&self, addr: SocketAddr) -> Peer {
        let ip = addr.ip().to_canonical();
        let trusted = self.trusted_proxies.iter().any(|net| net.contains(&ip));
        let ip_value = HeaderValue::try_from(ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer { ip_value, trusted }
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
                self.state.metrics().request(error.into());
                tracing::debug!(code = error.code(), "request answered by the proxy");
                let mut response = error.response().map(Either::Right);
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
        let host_field = check_host(request.version(), request.headers())?.cloned();
        let upgrade =
            upgrade_protocol(&request).map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
        let (mut parts, body) = request.into_parts();
        // HTTP/2 and absolute-form requests carry the host in the URI, which then wins over Host.
        let original_host = match parts.uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
            None => host_field,
        };
        let filters: Option<Arc<RouteFilters>>;
        let (upstream, preserve_host, path, policy) = {
            let live = self.state.load();
            let compiled = live.as_ref().ok_or(ProxyError::NoConfig)?;
            let host = original_host.as_ref().and_then(|h| h.to_str().ok());
            let matched = compiled
                .routes
                .lookup(&RequestInfo::new(host, &parts))
                .ok_or(ProxyError::NoRoute)?;
            let route = matched.route;
            if let Some(filters) = &route.filters
                && let Flow::Respond(response) =
                    filters.answer(&parts, original_host.as_ref(), matched.matched_len)
            {
                return Ok(response.map(Either::Right));
            }
            let path = rewrite::upstream_path(
                &parts.uri,
                matched.strip_len,
                route.filters.as_ref().and_then(|f| f.rewrite.as_ref()),
                matched.matched_len,
            )?;
            if let Some(mirror) = route
                .filters
                .as_ref()
                .and_then(|f| f.mirror())
                .and_then(|index| compiled.upstreams.get(index))
            {
                self.mirrors.send(mirror.runtime(), &parts);
            }
            filters = route.filters.clone();
            let upstream = compiled
                .upstreams
                .get(route.pick_upstream_for(&parts.headers))
                .ok_or(ProxyError::NoRoute)?;
            (
                upstream.runtime().clone(),
                route.preserve_host,
                path,
                route.policy,
            )
        };

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
        let host = rewrite::upstream_host(
            preserve_host,
            original_host.as_ref(),
            filters.as_ref().and_then(|f| f.host_rewrite.as_ref()),
        );
        append_via(&mut parts.headers, version);
        set_forwarded(
            &mut parts.headers,
            &peer.ip_value,
            peer.trusted,
            original_host.as_ref(),
        );
        if let Some(filters) = &filters {
            filters.edit_request(&mut parts.headers);
        }
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
        if let Some(filters) = &filters {
            filters.edit_response(&mut parts.headers);
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::served::NodeIdentity;

    #[test]
    fn peers_are_trusted_by_cidr_including_mapped_v4() {
        let state = Arc::new(State::new(NodeIdentity {
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
