//! The request path, as orchestration only: load the live config once, check the request, route
//! it, run the route's filters in their fixed order (see [`crate::filters`]) around the proxy's
//! own forwarding rules ([`super::forwarding`]), and hand it to [`super::attempts`], which picks
//! the target, retries and streams the answer back; on the way back, the forwarding rules and the
//! route's response filters again.
//!
//! The config guard is released before anything is awaited, so a request never holds a revision
//! longer than it takes to route it, and a new revision never affects a request in flight.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONNECTION, HeaderValue, STRICT_TRANSPORT_SECURITY, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::Either;
use ipnet::IpNet;

use super::attempts::{Outgoing, Timeouts, forward};
use super::body::ProxyBody;
use super::client_address::client_address;
use super::forwarding::{
    append_via, check_framing, check_host, check_target, drop_underscored, join_cookies,
    remove_hop_by_hop, remove_hop_by_hop_request, set_forwarded,
};
use super::mirror::Mirrors;
use crate::body::{BodyPace, ClientBody};
use crate::error::ProxyError;
use crate::filters::request_id::Echo;
use crate::filters::{Flow, RouteFilters, answer, rewrite};
use crate::keys::request_key;
use crate::observe::metrics::Outcome;
use crate::routing::RequestInfo;
use crate::served::State;
use crate::tls::TlsPeer;
use crate::upstream::exchange::Interim;

const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Limit for the upstream's response headers to arrive, for routes without a `timeout`.
    pub upstream_timeout: Duration,
    /// Forward header fields whose names contain `_` (dropped by default).
    pub keep_underscored_headers: bool,
    /// How long a client may send nothing of its request body before it is answered 408.
    pub body_read_timeout: Duration,
    /// Bytes a second a request body must average once it has been waited for longer than
    /// `body_read_timeout` (0: no minimum); then 408.
    pub body_min_rate: u64,
    /// Plain-HTTP requests are answered with a 308 to HTTPS on this port (ACME HTTP-01
    /// challenges under `/.well-known/acme-challenge/` excepted).
    pub https_redirect: Option<u16>,
    /// `Strict-Transport-Security` for responses over TLS that do not carry one already.
    pub hsts: Option<HeaderValue>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            trusted_proxies: Vec::new(),
            upstream_timeout: Duration::from_secs(60),
            keep_underscored_headers: false,
            body_read_timeout: Duration::from_secs(30),
            body_min_rate: 500,
            https_redirect: None,
            hsts: None,
        }
    }
}

pub struct Proxy {
    state: Arc<State>,
    trusted_proxies: Box<[IpNet]>,
    upstream_timeout: Duration,
    keep_underscored_headers: bool,
    body_pace: BodyPace,
    mirrors: Mirrors,
    https_redirect: Option<u16>,
    hsts: Option<HeaderValue>,
}

/// What the proxy knows about a client connection, worked out once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    ip: IpAddr,
    ip_value: HeaderValue,
    trusted: bool,
    /// Set on a TLS connection.
    tls: Option<Arc<TlsPeer>>,
}

/// Where ACME HTTP-01 challenges are answered: never redirected, since a certificate authority
/// checks them over plain HTTP.
const ACME_CHALLENGE: &str = "/.well-known/acme-challenge/";

impl Proxy {
    pub fn new(state: Arc<State>, settings: ProxySettings) -> Self {
        Proxy {
            state,
            trusted_proxies: settings.trusted_proxies.into(),
            upstream_timeout: settings.upstream_timeout,
            keep_underscored_headers: settings.keep_underscored_headers,
            body_pace: BodyPace {
                read_timeout: settings.body_read_timeout,
                min_rate: settings.body_min_rate,
            },
            mirrors: Mirrors::default(),
            https_redirect: settings.https_redirect,
            hsts: settings.hsts,
        }
    }

    #[cfg(test)]
    pub fn peer(&self, addr: SocketAddr) -> Peer {
        self.peer_over(addr, None)
    }

    /// The peer of a connection at `addr`, over TLS when `tls` is given.
    pub fn peer_over(&self, addr: SocketAddr, tls: Option<Arc<TlsPeer>>) -> Peer {
        let ip = addr.ip().to_canonical();
        let trusted = self.trusted_proxies.iter().any(|net| net.contains(&ip));
        let ip_value = HeaderValue::try_from(ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer {
            ip,
            ip_value,
            trusted,
            tls,
        }
    }

    /// The live state this proxy serves from.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Answers one request: the upstream's response, or the proxy's own error (JSON, or a gRPC
    /// status for a gRPC client).
    pub async fn handle(&self, request: Request<ClientBody>, peer: &Peer) -> Response<ProxyBody> {
        self.handle_with_interim(request, peer, None).await
    }

    /// As [`Proxy::handle`], passing the upstream's informational (1xx) responses to `interim`
    /// as they come, for a server that can send them on before the answer.
    pub async fn handle_with_interim(
        &self,
        request: Request<ClientBody>,
        peer: &Peer,
        interim: Option<&Interim>,
    ) -> Response<ProxyBody> {
        if peer.tls.is_none()
            && let Some(port) = self.https_redirect
            && !request.uri().path().starts_with(ACME_CHALLENGE)
        {
            return self.redirect_to_https(request, port);
        }
        let mut response = self.answer(request, peer, interim).await;
        if peer.tls.is_some()
            && let Some(hsts) = &self.hsts
            && !response.headers().contains_key(STRICT_TRANSPORT_SECURITY)
        {
            response
                .headers_mut()
                .insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        response
    }

    fn redirect_to_https(&self, request: Request<ClientBody>, port: u16) -> Response<ProxyBody> {
        self.state.metrics().request(Outcome::Ok);
        let (parts, _) = request.into_parts();
        let host = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| parts.headers.get(http::header::HOST).cloned());
        answer::https_redirect(&parts, host.as_ref(), port).map(Either::Right)
    }

    async fn answer(
        &self,
        request: Request<ClientBody>,
        peer: &Peer,
        interim: Option<&Interim>,
    ) -> Response<ProxyBody> {
        let version = request.version();
        let grpc = is_grpc(request.headers());
        let mut echo = None;
        let mut response = match self.forward(request, peer, interim, &mut echo).await {
            Ok(response) => {
                self.state.metrics().request(Outcome::Ok);
                response
            }
            Err(error) => {
                self.state.metrics().request(error.into());
                tracing::debug!(code = error.code(), "request answered by the proxy");
                let mut response = if grpc {
                    error.grpc_response().map(Either::Right)
                } else {
                    error.response().map(Either::Right)
                };
                if error.loses_framing() && version < Version::HTTP_2 {
                    // Where the body ends is unknown, so the rest of the connection is too.
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        };
        if let Some((name, id)) = echo {
            response.headers_mut().insert(name, id);
        }
        response
    }

    async fn forward(
        &self,
        mut request: Request<ClientBody>,
        peer: &Peer,
        interim: Option<&Interim>,
        echo: &mut Option<Echo>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        check_framing(request.headers())?;
        check_target(request.method(), request.uri())?;
        let host_field = check_host(request.version(), request.headers())?.cloned();
        // `h2c` is never switched to (it would carry requests past the route table); other
        // protocols only where the route allows them, WebSocket everywhere. A request whose
        // upgrade is not allowed goes on as a plain request, without it.
        let mut upgrade = upgrade_protocol(&request)
            .filter(|protocol| !is_h2c(protocol))
            .map(|protocol| (protocol, hyper::upgrade::on(&mut request)));
        let client_timeout = grpc_timeout(request.headers());
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
            if let Some(filters) = &route.filters {
                filters.admit(
                    &mut parts.headers,
                    body.size_hint().lower(),
                    |headers| client_address(peer.ip, peer.trusted, headers, &self.trusted_proxies),
                    echo,
                )?;
                if let Flow::Respond(response) =
                    filters.answer(&parts, original_host.as_ref(), matched.matched_len)
                {
                    return Ok(response.map(Either::Right));
                }
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
            if upgrade
                .as_ref()
                .is_some_and(|(protocol, _)| !route.allows_upgrade(protocol.as_bytes()))
            {
                upgrade = None;
            }
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
        if !self.keep_underscored_headers {
            drop_underscored(&mut parts.headers);
        }
        if version == Version::HTTP_2 && upstream.version < Version::HTTP_2 {
            join_cookies(&mut parts.headers);
        }
        // Via, three X-Forwarded-* and Host: growing the map once instead of step by step.
        parts.headers.reserve(5);
        let upgrade_protocol = upgrade.as_ref().map(|(protocol, _)| protocol.clone());
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
            peer.tls.is_some(),
            original_host.as_ref(),
        );
        if let Some(tls) = &peer.tls {
            for name in &tls.strip {
                parts.headers.remove(name);
            }
            for (name, value) in &tls.add {
                parts.headers.insert(name.clone(), value.clone());
            }
        }
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
            upgrade_protocol,
            body_limit: filters.as_ref().and_then(|f| f.body_limit),
        };
        let response = forward(
            &upstream,
            outgoing,
            body,
            key,
            policy,
            Timeouts {
                default: self.upstream_timeout,
                client: client_timeout,
                body: self.body_pace,
            },
            interim,
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

/// Whether the request is gRPC (`application/grpc`, `application/grpc+proto`, …).
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

fn is_h2c(protocol: &HeaderValue) -> bool {
    protocol
        .as_bytes()
        .split(|&b| b == b',')
        .any(|p| p.trim_ascii().eq_ignore_ascii_case(b"h2c"))
}

/// The longest `grpc-timeout` taken: its eight digits of hours.
const MAX_GRPC_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// The deadline a gRPC client sent (`grpc-timeout: 250m`: at most 8 digits and a unit of `H`,
/// `M`, `S`, `m`, `u` or `n`); an unreadable one is ignored, as gRPC servers do.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.as_bytes();
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let timeout = match unit {
        b'H' => Duration::from_secs(amount.checked_mul(3600)?),
        b'M' => Duration::from_secs(amount.checked_mul(60)?),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(timeout.min(MAX_GRPC_TIMEOUT))
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
    fn grpc_timeouts() {
        let timeout = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", HeaderValue::from_str(value).unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "123456789m", "1x", "-1S", "1.5S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
    }

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
