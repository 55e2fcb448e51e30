//! Sends one routed request to an upstream: choose a target (balancer, health, tries so far),
//! hold circuit-breaker slots, apply the route's timeout and per-try timeout, retry what may be
//! retried on another target after a jittered backoff, feed passive health checking, and tunnel
//! upgraded connections (WebSocket) end to end.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gateway_config::HashOn;
use http::header::{COOKIE, HOST, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::balance::hash_key;
use crate::connector::ConnectError;
use crate::proxy::error::ProxyError;
use crate::registry::{Choice, UpstreamRuntime};
use crate::retry::{Failure, RoutePolicy};

/// The request as it goes upstream, minus what depends on the target.
#[derive(Debug)]
pub struct Outgoing {
    pub method: Method,
    pub path: PathAndQuery,
    pub headers: HeaderMap,
    /// `Host` to send; `None` sends each target's own address.
    pub host: Option<Option<HeaderValue>>,
    /// The client side of an upgrade (WebSocket), when the request asks for one.
    pub upgrade: Option<OnUpgrade>,
}

/// The key `consistent_hash` hashes for this request, when the request carries one.
pub fn request_key(hash_on: Option<&HashOn>, headers: &HeaderMap, client: &str) -> Option<u64> {
    match hash_on? {
        HashOn::Header(name) => headers.get(name.as_str()).map(|v| hash_key(v.as_bytes())),
        HashOn::Cookie(name) => headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                (key == name).then(|| hash_key(value.as_bytes()))
            }),
        HashOn::ClientIp(_) => Some(hash_key(client.as_bytes())),
    }
}

/// Circuit-breaker and load slots of one request, given back when its response body ends.
#[derive(Debug)]
pub struct InFlight {
    upstream: Arc<UpstreamRuntime>,
    target: usize,
    pending: bool,
}

impl InFlight {
    fn acquire(upstream: &Arc<UpstreamRuntime>, target: usize) -> Option<Self> {
        let breaker = &upstream.breaker;
        if !breaker.requests.try_acquire() {
            return None;
        }
        if !breaker.pending.try_acquire() {
            breaker.requests.release();
            return None;
        }
        if let Some(t) = upstream.targets().get(target) {
            t.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        Some(InFlight {
            upstream: upstream.clone(),
            target,
            pending: true,
        })
    }

    fn headers_received(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.upstream.breaker.pending.release();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.headers_received();
        self.upstream.breaker.requests.release();
        if let Some(t) = self.upstream.targets().get(self.target) {
            t.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An upstream response body, streamed through; it holds the request's slots until it ends.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Incoming,
    in_flight: Option<InFlight>,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pub type ProxyBody = Either<UpstreamBody, Full<Bytes>>;

/// Sends `request` to `upstream` and returns its response, trying again where the route allows.
pub async fn forward(
    upstream: &Arc<UpstreamRuntime>,
    mut request: Outgoing,
    body: Incoming,
    key: Option<u64>,
    policy: Option<RoutePolicy>,
    default_timeout: Duration,
) -> Result<Response<ProxyBody>, ProxyError> {
    let policy = policy.unwrap_or_default();
    let deadline = Instant::now() + policy.timeout.unwrap_or(default_timeout);
    let retries = policy
        .retries
        .filter(|r| request.upgrade.is_none() && r.allows(&request.method, body.is_end_stream()));
    let tries = 1 + retries.map_or(0, |r| r.attempts);
    let mut body = Some(body);
    let mut tried: u64 = 0;
    let mut last_error = ProxyError::UpstreamUnavailable;
    for attempt in 0..tries {
        if attempt > 0
            && let Some(retries) = retries
        {
            let wait = retries.backoff(attempt);
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let index = match upstream.choose(key, tried) {
            Choice::Target(index) => index,
            Choice::NoHealthyTarget => return Err(ProxyError::NoHealthyTarget),
        };
        if index < 64 {
            tried |= 1 << index;
        }
        let target = &upstream.targets()[index];
        let mut in_flight = InFlight::acquire(upstream, index).ok_or(ProxyError::CircuitOpen)?;
        let last = attempt + 1 == tries;
        let mut headers = if last {
            std::mem::take(&mut request.headers)
        } else {
            request.headers.clone()
        };
        match &request.host {
            None => {
                headers.insert(HOST, target.host_header.clone());
            }
            Some(Some(host)) => {
                headers.insert(HOST, host.clone());
            }
            Some(None) => {
                headers.remove(HOST);
            }
        }
        let uri = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(target.authority.clone())
            .path_and_query(request.path.clone())
            .build()
            .map_err(|_| ProxyError::InvalidRequest)?;
        let mut outgoing = Request::new(match body.take() {
            Some(body) => Either::Left(body),
            None => Either::Right(Full::new(Bytes::new())),
        });
        *outgoing.method_mut() = request.method.clone();
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = upstream.version;
        *outgoing.headers_mut() = headers;

        let now = Instant::now();
        let try_deadline = retries
            .and_then(|r| r.per_try_timeout)
            .map_or(deadline, |t| (now + t).min(deadline));
        let failure = match tokio::time::timeout_at(try_deadline, upstream.client.request(outgoing))
            .await
        {
            Ok(Ok(mut response)) => {
                in_flight.headers_received();
                let status = response.status();
                let failed = status.is_server_error();
                upstream.record(index, failed);
                let failure = Failure::Status(status.as_u16());
                if failed && !last && retries.is_some_and(|r| r.retries_on(failure)) {
                    tracing::debug!(upstream = %upstream.name, %status, attempt, "retrying");
                    last_error = ProxyError::UpstreamUnavailable;
                    continue;
                }
                if status == StatusCode::SWITCHING_PROTOCOLS
                    && let Some(client) = request.upgrade.take()
                {
                    let server = hyper::upgrade::on(&mut response);
                    tokio::spawn(tunnel(client, server, in_flight));
                    let (parts, body) = response.into_parts();
                    return Ok(Response::from_parts(
                        parts,
                        Either::Left(UpstreamBody {
                            inner: body,
                            in_flight: None,
                        }),
                    ));
                }
                let (parts, body) = response.into_parts();
                return Ok(Response::from_parts(
                    parts,
                    Either::Left(UpstreamBody {
                        inner: body,
                        in_flight: Some(in_flight),
                    }),
                ));
            }
            Ok(Err(error)) => {
                if refused_by_breaker(&error) {
                    return Err(ProxyError::CircuitOpen);
                }
                tracing::debug!(upstream = %upstream.name, target = %target.authority,
                    error = %crate::proxy::handler::DisplayChain(&error), "upstream request failed");
                if error.is_connect() {
                    last_error = if connect_timed_out(&error) {
                        ProxyError::UpstreamTimeout
                    } else {
                        ProxyError::UpstreamUnavailable
                    };
                    Failure::Connect
                } else {
                    last_error = ProxyError::UpstreamUnavailable;
                    Failure::Reset
                }
            }
            Err(_) => {
                tracing::debug!(upstream = %upstream.name, target = %target.authority, "upstream try timed out");
                last_error = ProxyError::UpstreamTimeout;
                Failure::Timeout
            }
        };
        upstream.record(index, true);
        drop(in_flight);
        let retry = !last && retries.is_some_and(|r| r.retries_on(failure));
        if !retry || Instant::now() >= deadline {
            return Err(last_error);
        }
        tracing::debug!(upstream = %upstream.name, ?failure, attempt, "retrying");
    }
    Err(last_error)
}

fn refused_by_breaker(error: &hyper_util::client::legacy::Error) -> bool {
    find::<ConnectError>(error).is_some_and(|e| matches!(e, ConnectError::CircuitOpen))
}

fn connect_timed_out(error: &hyper_util::client::legacy::Error) -> bool {
    find::<ConnectError>(error).is_some_and(|e| matches!(e, ConnectError::Timeout))
}

fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Copies bytes both ways between the client's and the target's upgraded connections until
/// either side closes; the request keeps its slots meanwhile.
async fn tunnel(client: OnUpgrade, server: OnUpgrade, in_flight: InFlight) {
    let (client, server) = match tokio::try_join!(client, server) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut server = TokioIo::new(server);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(%error, "upgraded connection ended with an error");
    }
    drop(in_flight);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_keys() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("alice"));
        headers.append(COOKIE, HeaderValue::from_static("a=1; session=abc"));
        let header = request_key(Some(&HashOn::Header("x-user".into())), &headers, "1.2.3.4");
        assert_eq!(header, Some(hash_key(b"alice")));
        let cookie = request_key(Some(&HashOn::Cookie("session".into())), &headers, "");
        assert_eq!(cookie, Some(hash_key(b"abc")));
        assert_eq!(
            request_key(Some(&HashOn::Cookie("other".into())), &headers, ""),
            None
        );
        assert_eq!(
            request_key(Some(&HashOn::ClientIp(true)), &headers, "1.2.3.4"),
            Some(hash_key(b"1.2.3.4"))
        );
        assert_eq!(request_key(None, &headers, "1.2.3.4"), None);
    }
}
