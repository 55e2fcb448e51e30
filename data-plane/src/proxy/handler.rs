//! The request path: load the live config once, route, pick a backend and a target, rewrite the
//! request and stream it to the target with a pooled client, then stream the answer back.
//!
//! The config guard is released before anything is awaited, so a request never holds a revision
//! longer than it takes to route it, and a new revision never affects a request in flight.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ipnet::IpNet;

use crate::metrics::Outcome;
use crate::proxy::error::ProxyError;
use crate::proxy::headers::{
    append_via, check_framing, remove_hop_by_hop, remove_hop_by_hop_request, set_forwarded,
    strip_path_prefix,
};
use crate::state::State;

/// Bodies stream through untouched; only the proxy's own answers are built in memory.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// How long an idle pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub connect_timeout: Duration,
    /// Limit for the upstream's response headers to arrive.
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
    client: Client<HttpConnector, Incoming>,
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
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // The proxy always sets Host itself.
            .set_host(false)
            .build(connector);
        Proxy {
            state,
            client,
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
    pub async fn handle(&self, request: Request<Incoming>, peer: &Peer) -> Response<ProxyBody> {
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
        request: Request<Incoming>,
        peer: &Peer,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        check_framing(request.headers())?;
        let (mut parts, body) = request.into_parts();
        // HTTP/2 and absolute-form requests carry the host in the URI, which then wins over Host.
        let original_host = match parts.uri.authority() {
            Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
            None => parts.headers.get(HOST).cloned(),
        };
        let (target, preserve_host, strip_len) = {
            let live = self.state.load();
            let compiled = live.as_ref().ok_or(ProxyError::NoConfig)?;
            let host = original_host.as_ref().and_then(|h| h.to_str().ok());
            let matched = compiled
                .routes
                .lookup(host, parts.uri.path(), &parts.method)
                .ok_or(ProxyError::NoRoute)?;
            let upstream = compiled
                .upstreams
                .get(matched.route.pick_upstream())
                .ok_or(ProxyError::NoRoute)?;
            (
                upstream.pick().clone(),
                matched.route.preserve_host,
                matched.strip_len,
            )
        };

        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(target.authority);
        if strip_len > 0
            && let Some(path) = &uri.path_and_query
        {
            let stripped = strip_path_prefix(path.as_str(), strip_len);
            uri.path_and_query = Some(
                PathAndQuery::from_maybe_shared(Bytes::from(stripped))
                    .map_err(|_| ProxyError::InvalidRequest)?,
            );
        }
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        parts.uri = Uri::from_parts(uri).map_err(|_| ProxyError::InvalidRequest)?;

        let version = parts.version;
        remove_hop_by_hop_request(&mut parts.headers);
        let host = if preserve_host {
            original_host.clone()
        } else {
            Some(target.host_header)
        };
        match host {
            Some(host) => parts.headers.insert(HOST, host),
            None => parts.headers.remove(HOST),
        };
        append_via(&mut parts.headers, version);
        set_forwarded(
            &mut parts.headers,
            &peer.ip_value,
            peer.trusted,
            original_host.as_ref(),
        );
        // Upstream connections speak HTTP/1.1 whatever the client spoke.
        parts.version = Version::HTTP_11;

        let pending = self.client.request(Request::from_parts(parts, body));
        let response = match tokio::time::timeout(self.upstream_timeout, pending).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(classify(&error)),
            Err(_) => {
                tracing::debug!("upstream response timed out");
                return Err(ProxyError::UpstreamTimeout);
            }
        };
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        append_via(&mut parts.headers, parts.version);
        Ok(Response::from_parts(parts, Either::Left(body)))
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> ProxyError {
    tracing::debug!(error = %DisplayChain(error), "upstream request failed");
    if error.is_connect() && timed_out(error) {
        ProxyError::UpstreamTimeout
    } else {
        ProxyError::UpstreamUnavailable
    }
}

fn timed_out(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// An error with its sources, `outer: inner: innermost`.
struct DisplayChain<'a>(&'a (dyn StdError + 'static));

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
